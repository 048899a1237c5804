package promsel

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

func TestNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`rate(smsbridge_sends_total[5m])`, []string{"smsbridge_sends_total"}},
		{`sum by (le, provider) (rate(smsbridge_provider_request_seconds_bucket{instance=~"$instance"}[$__rate_interval]))`,
			[]string{"smsbridge_provider_request_seconds_bucket"}},
		{`histogram_quantile(0.95, sum(rate(a_bucket[5m])) by (le))`, []string{"a_bucket"}},
		{`SUM BY (job) (a) / ON (job) GROUP_LEFT (provider) b`, []string{"a", "b"}},
		{`a * on(instance) group_left b`, []string{"a", "b"}},
		{`a and ignoring(x) b or c unless d`, []string{"a", "b", "c", "d"}},
		{`sum without (instance, job) (a)`, []string{"a"}},
		{`a > bool 5`, []string{"a"}},
		{`a offset 5m @ start()`, []string{"a"}},
		{`a @ 1609746000 offset -1h30m`, []string{"a"}},
		{`max_over_time(a[1h:5m])`, []string{"a"}},
		{`label_replace(a, "dst", "$1", "src", "(.*)")`, []string{"a"}},
		{`count_values("version", build_info)`, []string{"build_info"}},
		{`topk(5, a) + quantile(0.9, b)`, []string{"a", "b"}},
		{`{__name__="a", job="x"}`, []string{"a"}},
		{`{"a.b", job="x"} + {job="y", "c"}`, []string{"a.b", "c"}},
		{`a{"label.x"="v", y!~"w,}z"}`, []string{"a"}},
		{`vector(1) + time() - pi()`, nil},
		{`1e-3 * a + 0x1F - .5 + Inf - NaN`, []string{"a"}},
		{`a > $threshold and b > ${x:raw}`, []string{"a", "b"}},
		{"a # a comment naming b\n+ c", []string{"a", "c"}},
		{"a + `raw {string}` + c", []string{"a", "c"}},
		{`recording:rule:rate5m > 1`, []string{"recording:rule:rate5m"}},
		{`a + fill(0) b`, []string{"a", "b"}},
		{`fill + fill_left`, []string{"fill", "fill_left"}},
		{`a + a{x="1"}`, []string{"a"}},
		{`rate (a [5m])`, []string{"a"}},
		{"a {\n  job = \"x\"\n}", []string{"a"}},
	} {
		got, err := Names(c.expr)
		if err != nil {
			t.Errorf("Names(%q): %v", c.expr, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Names(%q) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestSelectorsKeepMatchers(t *testing.T) {
	expr := `sum(rate(a{instance=~"$instance", x="}"}[5m])) / b`
	got, err := Selectors(expr)
	if err != nil {
		t.Fatal(err)
	}
	want := []Selector{{Name: "a", Matchers: `instance=~"$instance", x="}"`, Offset: 9}, {Name: "b", Offset: len(expr) - 1}}
	if !slices.Equal(got, want) {
		t.Errorf("Selectors = %+v, want %+v", got, want)
	}
}

func TestErrors(t *testing.T) {
	for _, c := range []struct{ expr, want string }{
		{`rat(a[5m])`, "rat( is no PromQL function"},
		{`label_values(a, instance)`, "label_values( is no PromQL function"},
		{`a{job="x}`, "unterminated string"},
		{`a{job="x"`, "unterminated label matchers"},
		{`rate(a[5m)`, "unterminated range"},
		{`rate(a[5m{x="1"}])`, "{ in a range"},
		{`rate(a[5m]`, "unclosed ("},
		{`a)`, "unbalanced )"},
		{`sum by (job (a)`, "( in a label list"},
		{`{__name__=~"smsbridge_.*"}`, "names no metric"},
		{`a{__name__="b"}`, "named twice"},
		{`{"a", __name__="b"}`, "named twice"},
		{`a + $`, "$ without a variable name"},
		{`a ~ b`, "unexpected"},
		{"a{x=\"1\n\"}", "newline in string"},
	} {
		_, err := Names(c.expr)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Names(%q) = %v, want an error with %q", c.expr, err, c.want)
		}
	}
}

var plainName = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)

// FuzzSelectors: any input ends without a panic; a selector's offset is
// in the input, and a name that is not quoted there is a valid metric
// name found at that offset.
func FuzzSelectors(f *testing.F) {
	for _, s := range []string{
		`sum by (le) (rate(a_bucket{instance=~"$instance"}[$__rate_interval]))`,
		`{"a.b", job="x"} + c offset 5m @ end()`,
		`a * on(x) group_left(y) b > bool 1e-3`,
		"a # b\n+ `c`",
		`label_replace(a, "d", "$1", "s", "(.*)")`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, expr string) {
		sels, err := Selectors(expr)
		if err != nil {
			return
		}
		for _, s := range sels {
			if s.Offset < 0 || s.Offset >= len(expr) {
				t.Fatalf("selector %+v: offset outside %q", s, expr)
			}
			if expr[s.Offset] == '{' {
				continue
			}
			if !plainName.MatchString(s.Name) || !strings.HasPrefix(expr[s.Offset:], s.Name) {
				t.Fatalf("selector %+v: not a metric name at its offset in %q", s, expr)
			}
		}
	})
}
