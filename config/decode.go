package config

import (
	"encoding"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// decoder turns the generic document toml.Decode produces
// (map[string]any) into the config structs. It exists because decoding
// straight into a struct stops at the first value of the wrong type, and
// md.Undecoded() drops array indexes (accounts.colour: which account?).
// Walking the document ourselves reports every unknown key and every
// wrong type at once, each with its full path, and refuses what the
// library would accept silently: an integer for a duration is nanoseconds
// to it, which nobody writing `shutdown_grace = 15` meant.
type decoder struct {
	probs Problems
	// bad holds the paths that got a problem here, so validation does not
	// add a second, derived problem for a value that was never decoded.
	bad []string
}

func (d *decoder) add(path, format string, args ...any) {
	d.probs = append(d.probs, path+": "+fmt.Sprintf(format, args...))
	d.bad = append(d.bad, path)
}

var (
	durationType    = reflect.TypeFor[time.Duration]()
	unmarshalerType = reflect.TypeFor[toml.Unmarshaler]()
	textType        = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// table decodes tbl into the structs dsts (addressable struct values):
// a key goes to every struct that has a field of that name, as
// md.PrimitiveDecode does for a provider's common and own keys. A key none
// of them has is unknown, unless strict is false (a table whose type is
// unknown: its keys cannot be judged, and its type is the problem).
func (d *decoder) table(path string, tbl map[string]any, strict bool, dsts ...reflect.Value) {
	for _, k := range sortedKeys(tbl) {
		v := tbl[k]
		kp := join(path, k)
		found := false
		for _, dst := range dsts {
			if f, ok := field(dst, k); ok {
				found = true
				d.value(kp, v, f)
			}
		}
		if !found && strict {
			d.unknown(kp, v)
		}
	}
}

// unknown reports a key no struct has. A whole table is one problem, not
// one per key in it: a misspelt [smpt] is one mistake.
func (d *decoder) unknown(path string, v any) {
	switch v.(type) {
	case map[string]any:
		d.add("["+path+"]", "unknown section")
	case []map[string]any:
		d.add("[["+path+"]]", "unknown section")
	default:
		d.add(path, "unknown key")
	}
}

// value decodes v into dst, reporting a mismatch at path.
func (d *decoder) value(path string, v any, dst reflect.Value) {
	t := dst.Type()
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		if err := dst.Addr().Interface().(toml.Unmarshaler).UnmarshalTOML(v); err != nil {
			d.add(path, "%v", err)
		}
		return
	}
	if t == durationType {
		d.duration(path, v, dst)
		return
	}
	if reflect.PointerTo(t).Implements(textType) {
		s, ok := v.(string)
		if !ok {
			d.mismatch(path, "a string", v)
			return
		}
		if err := dst.Addr().Interface().(encoding.TextUnmarshaler).UnmarshalText([]byte(s)); err != nil {
			d.add(path, "%v", err)
		}
		return
	}
	switch t.Kind() {
	case reflect.String:
		if s, ok := v.(string); ok {
			dst.SetString(s)
			return
		}
		d.mismatch(path, "a string", v)
	case reflect.Bool:
		if b, ok := v.(bool); ok {
			dst.SetBool(b)
			return
		}
		d.mismatch(path, "true or false", v)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n, ok := v.(int64)
		switch {
		case !ok:
			d.mismatch(path, "an integer", v)
		case dst.OverflowInt(n):
			d.add(path, "%d is out of range", n)
		default:
			dst.SetInt(n)
		}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, ok := v.(int64)
		switch {
		case !ok:
			d.mismatch(path, "an integer", v)
		case n < 0 || dst.OverflowUint(uint64(n)):
			d.add(path, "%d is out of range", n)
		default:
			dst.SetUint(uint64(n))
		}
	case reflect.Float32, reflect.Float64:
		switch n := v.(type) {
		case float64:
			dst.SetFloat(n)
		case int64:
			dst.SetFloat(float64(n))
		default:
			d.mismatch(path, "a number", v)
		}
	case reflect.Slice:
		var elems []any
		switch a := v.(type) {
		case []any:
			elems = a
		case []map[string]any:
			for _, m := range a {
				elems = append(elems, m)
			}
		default:
			d.mismatch(path, "an array", v)
			return
		}
		s := reflect.MakeSlice(t, len(elems), len(elems))
		for i, e := range elems {
			d.value(fmt.Sprintf("%s[%d]", path, i), e, s.Index(i))
		}
		dst.Set(s)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok || t.Key().Kind() != reflect.String {
			d.mismatch(path, "a table", v)
			return
		}
		out := reflect.MakeMapWithSize(t, len(m))
		for _, k := range sortedKeys(m) {
			e := reflect.New(t.Elem()).Elem()
			d.value(join(path, k), m[k], e)
			out.SetMapIndex(reflect.ValueOf(k).Convert(t.Key()), e)
		}
		dst.Set(out)
	case reflect.Pointer:
		p := reflect.New(t.Elem())
		d.value(path, v, p.Elem())
		dst.Set(p)
	case reflect.Struct:
		m, ok := v.(map[string]any)
		if !ok {
			d.mismatch(path, "a table", v)
			return
		}
		d.table(path, m, true, dst)
	case reflect.Interface:
		if reflect.TypeOf(v).AssignableTo(t) {
			dst.Set(reflect.ValueOf(v))
			return
		}
		d.mismatch(path, t.String(), v)
	default:
		// A field type this decoder was not taught: a programming
		// error, reported rather than silently skipped.
		d.add(path, "cannot decode into %s", t)
	}
}

// duration takes a string with a unit ("30s", "5m", "1h"). An integer is
// refused, but for 0: toml would read `15` as 15 nanoseconds, which is never
// what was meant, while 0 is 0 in any unit.
func (d *decoder) duration(path string, v any, dst reflect.Value) {
	switch x := v.(type) {
	case string:
		dur, err := time.ParseDuration(x)
		if err != nil {
			d.add(path, "%q is not a duration: write a number with a unit, such as \"30s\", \"5m\" or \"1h\"", x)
			return
		}
		dst.SetInt(int64(dur))
	case int64:
		if x != 0 {
			d.add(path, "%d has no unit: write a string such as \"%ds\" for %d seconds", x, x, x)
			return
		}
		dst.SetInt(0)
	default:
		d.mismatch(path, "a duration such as \"30s\"", v)
	}
}

func (d *decoder) mismatch(path, want string, v any) {
	d.add(path, "must be %s, not %s", want, tomlType(v))
}

// tomlType names a decoded value's TOML type, as the operator wrote it.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date-time"
	case []any:
		return "an array"
	case []map[string]any:
		return "an array of tables"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// field finds the field of struct value s that TOML key k names: its toml
// tag, or for an untagged field its name in any case (toml's own rule).
func field(s reflect.Value, k string) (reflect.Value, bool) {
	t := s.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		switch {
		case name == "-":
			continue
		case name == "" && strings.EqualFold(f.Name, k), name == k:
			return s.Field(i), true
		}
	}
	return reflect.Value{}, false
}

func join(path, k string) string {
	if path == "" {
		return k
	}
	return path + "." + k
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// covers reports whether problem p is about a path decoding already
// reported (the path itself or a key under it).
func (d *decoder) covers(p string) bool {
	key, _, _ := strings.Cut(p, ": ")
	for _, b := range d.bad {
		if key == b || strings.HasPrefix(key, b+".") || strings.HasPrefix(key, b+"[") {
			return true
		}
	}
	return false
}
