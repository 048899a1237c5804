package selfcheck

import (
	"reflect"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/smsbridge/smsbridge/config"
	"github.com/smsbridge/smsbridge/providers"
)

// Redactor returns a function that replaces every secret of cfg in a text
// with [REDACTED]: each config.Secret anywhere in it, the values read from
// *_file keys that the provider settings keep unexported included, and
// the password inside store.url. The checks' own errors are written to
// carry none; this is the net under them.
func Redactor(cfg *config.Config) func(string) string {
	var secrets []string
	collect(reflect.ValueOf(cfg), map[uintptr]bool{}, &secrets)
	if u := cfg.Store.URL.Value(); u != "" {
		if pc, err := pgconn.ParseConfig(u); err == nil {
			secrets = append(secrets, pc.Password)
		}
	}
	return func(s string) string { return providers.Redact(s, secrets...) }
}

var secretType = reflect.TypeFor[config.Secret]()

// collect appends the value of every config.Secret reachable from v.
// Unexported fields are read too (reflection may read what it may not
// set), so a resolved token kept in a private field is found.
func collect(v reflect.Value, seen map[uintptr]bool, out *[]string) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() || seen[v.Pointer()] {
			return
		}
		seen[v.Pointer()] = true
		collect(v.Elem(), seen, out)
	case reflect.Interface:
		if !v.IsNil() {
			collect(v.Elem(), seen, out)
		}
	case reflect.Struct:
		for i := range v.NumField() {
			collect(v.Field(i), seen, out)
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			collect(v.Index(i), seen, out)
		}
	case reflect.Map:
		for it := v.MapRange(); it.Next(); {
			collect(it.Value(), seen, out)
		}
	case reflect.String:
		if v.Type() == secretType && v.String() != "" {
			*out = append(*out, v.String())
		}
	}
}
