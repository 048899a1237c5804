package config_test

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/smsbridge/smsbridge/config"
)

// Every key the configuration has is documented in config.example.toml:
// set, or shown commented out, under its table's header.
func TestExampleDocumentsEveryKey(t *testing.T) {
	b, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	example := string(b)
	tables := map[string]string{} // table path -> its text in the example, headers commented out or not
	header := regexp.MustCompile(`(?m)^#?\s*\[\[?([a-z_.]+)\]\]?\s*$`)
	locs := header.FindAllStringSubmatchIndex(example, -1)
	for i, l := range locs {
		end := len(example)
		if i+1 < len(locs) {
			end = locs[i+1][0]
		}
		name := example[l[2]:l[3]]
		tables[name] += example[l[1]:end]
	}
	var missing []string
	var walk func(table string, t reflect.Type)
	walk = func(table string, typ reflect.Type) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" || key == "-" {
				continue
			}
			ft := f.Type
			for ft.Kind() == reflect.Pointer || ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct && ft.PkgPath() == typ.PkgPath() {
				sub := key
				if table != "" {
					sub = table + "." + key
				}
				if _, ok := tables[sub]; !ok {
					missing = append(missing, "["+sub+"]")
				}
				walk(sub, ft)
				continue
			}
			if table == "" {
				continue
			}
			line := regexp.MustCompile(`(?m)^#?\s*` + regexp.QuoteMeta(key) + `\s*=`)
			if !line.MatchString(tables[table]) {
				missing = append(missing, table+"."+key)
			}
		}
	}
	walk("", reflect.TypeFor[config.Config]())
	walk("providers", reflect.TypeFor[config.Provider]())
	for _, m := range missing {
		t.Errorf("config.example.toml does not document %s", m)
	}
}
