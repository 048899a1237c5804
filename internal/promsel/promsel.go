// Package promsel lists the vector selectors of a PromQL expression, as
// the dashboard and the alert rules in contrib/ write them, so a test can
// check each metric they name against what the daemon exports.
//
// It is a tokenizer, not a parser: it knows PromQL's lexical rules
// (strings, numbers and durations, comments, label matchers, ranges), its
// keywords and its function and aggregation names, and Grafana's
// $variables, which is all it takes to tell a metric name from the other
// identifiers. It does not check the expression's grammar: promtool does
// that for the rules. Prometheus' own parser would, but it comes with a
// module whose dependencies would triple go.sum for one test.
package promsel

import (
	"fmt"
	"strings"
)

// Selector is one vector selector: a metric name and the text of its
// label matchers (between the braces, as written), if any.
type Selector struct {
	Name     string // "" when only a __name__ regexp selects the metric
	Matchers string
	Offset   int // byte offset in the expression
}

// functions are PromQL's function names (Prometheus 3.x), with the
// duration preprocessors written like calls (start(), step(), …).
var functions = set(`abs absent absent_over_time acos acosh asin asinh atan atanh avg_over_time
	ceil changes clamp clamp_max clamp_min cos cosh count_over_time days_in_month day_of_month
	day_of_week day_of_year deg delta deriv double_exponential_smoothing end exp
	first_over_time floor histogram_avg histogram_count histogram_fraction histogram_quantile
	histogram_quantiles histogram_stddev histogram_stdvar histogram_sum holt_winters hour idelta
	increase info integral irate label_join label_replace last_over_time ln log10 log2
	mad_over_time max_of max_over_time min_of min_over_time minute month pi predict_linear
	present_over_time quantile_over_time rad range rate resets round scalar sgn sin sinh sort
	sort_by_label sort_by_label_desc sort_desc sqrt start start_timestamp step stddev_over_time
	stdvar_over_time sum_over_time tan tanh time timestamp ts_of_first_over_time
	ts_of_last_over_time ts_of_max_over_time ts_of_min_over_time vector year`)

// aggregations take an optional by/without clause before or after their
// arguments.
var aggregations = set(`avg bottomk count count_values group limit_ratio limitk max min quantile
	stddev stdvar sum topk`)

// labelLists are the keywords followed by a parenthesised list of label
// names (optional after group_left and group_right).
var labelLists = set(`by without on ignoring group_left group_right`)

// operators are the keywords that stand between or after expressions.
// fill, fill_left and fill_right are keywords only before "(" (a number
// in parentheses follows); elsewhere they are names, as in Prometheus.
var operators = set(`and or unless atan2 bool offset anchored smoothed inf nan`)

var fills = set(`fill fill_left fill_right`)

func set(words string) map[string]bool {
	m := map[string]bool{}
	for _, w := range strings.Fields(words) {
		m[w] = true
	}
	return m
}

// Selectors returns the vector selectors of expr in the order they appear.
// An identifier followed by "(" that is no PromQL function is an error,
// as is an unterminated string, matcher list or range.
func Selectors(expr string) ([]Selector, error) {
	l := lexer{s: expr}
	return l.run()
}

// Names returns the distinct metric names expr selects, in order of first
// appearance.
func Names(expr string) ([]string, error) {
	sels, err := Selectors(expr)
	if err != nil {
		return nil, err
	}
	var out []string
	seen := map[string]bool{}
	for _, s := range sels {
		if s.Name == "" {
			return nil, fmt.Errorf("offset %d: selector {%s} names no metric", s.Offset, s.Matchers)
		}
		if !seen[s.Name] {
			seen[s.Name] = true
			out = append(out, s.Name)
		}
	}
	return out, nil
}

type lexer struct {
	s     string
	pos   int
	depth int // open parentheses
	out   []Selector
}

func (l *lexer) errorf(at int, format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", at, fmt.Sprintf(format, args...))
}

func (l *lexer) run() ([]Selector, error) {
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		start := l.pos
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			l.pos++
		case c == '#':
			l.skipLine()
		case c == '"' || c == '\'' || c == '`':
			if err := l.skipString(); err != nil {
				return nil, err
			}
		case c == '$':
			if err := l.skipVariable(); err != nil {
				return nil, err
			}
		case isDigit(c) || (c == '.' && l.pos+1 < len(l.s) && isDigit(l.s[l.pos+1])):
			l.skipNumber()
		case isNameStart(c):
			if err := l.identifier(); err != nil {
				return nil, err
			}
		case c == '{':
			m, err := l.matchers()
			if err != nil {
				return nil, err
			}
			name, err := nameIn(m)
			if err != nil {
				return nil, l.errorf(start, "%v", err)
			}
			l.out = append(l.out, Selector{Name: name, Matchers: m, Offset: start})
		case c == '[':
			if err := l.skipRange(); err != nil {
				return nil, err
			}
		case c == '(':
			l.depth++
			l.pos++
		case c == ')':
			if l.depth == 0 {
				return nil, l.errorf(start, "unbalanced )")
			}
			l.depth--
			l.pos++
		case c == '}' || c == ']':
			return nil, l.errorf(start, "unbalanced %c", c)
		case strings.IndexByte("+-*/%^=!<>,@:", c) >= 0:
			l.pos++
		default:
			return nil, l.errorf(start, "unexpected %q", c)
		}
	}
	if l.depth != 0 {
		return nil, l.errorf(len(l.s), "%d unclosed (", l.depth)
	}
	return l.out, nil
}

// identifier reads a name and decides what it is: a function, a keyword
// or a metric (with the matchers that follow it).
func (l *lexer) identifier() error {
	start := l.pos
	for l.pos < len(l.s) && (isNameStart(l.s[l.pos]) || isDigit(l.s[l.pos])) {
		l.pos++
	}
	word := l.s[start:l.pos]
	lower := strings.ToLower(word)
	next := l.peek()
	switch {
	case labelLists[lower]:
		return l.skipLabelList()
	case aggregations[lower] || operators[lower]:
		return nil
	case fills[lower] && next == '(':
		return nil
	case next == '(':
		if !functions[word] {
			return l.errorf(start, "%s( is no PromQL function", word)
		}
		return nil
	}
	sel := Selector{Name: word, Offset: start}
	if next == '{' {
		l.skipSpace()
		m, err := l.matchers()
		if err != nil {
			return err
		}
		if n, err := nameIn(m); err != nil || n != "" {
			return l.errorf(start, "%s{%s}: the metric is named twice", word, m)
		}
		sel.Matchers = m
	}
	l.out = append(l.out, sel)
	return nil
}

// peek returns the next character after spaces, or 0 at the end.
func (l *lexer) peek() byte {
	i := l.pos
	for i < len(l.s) && strings.IndexByte(" \t\r\n", l.s[i]) >= 0 {
		i++
	}
	if i == len(l.s) {
		return 0
	}
	return l.s[i]
}

func (l *lexer) skipSpace() {
	for l.pos < len(l.s) && strings.IndexByte(" \t\r\n", l.s[l.pos]) >= 0 {
		l.pos++
	}
}

func (l *lexer) skipLine() {
	for l.pos < len(l.s) && l.s[l.pos] != '\n' {
		l.pos++
	}
}

// skipString skips a quoted string: "…" and '…' with backslash escapes,
// `…` raw.
func (l *lexer) skipString() error {
	start, q := l.pos, l.s[l.pos]
	for l.pos++; l.pos < len(l.s); l.pos++ {
		switch c := l.s[l.pos]; {
		case c == '\\' && q != '`':
			l.pos++
		case c == q:
			l.pos++
			return nil
		case c == '\n' && q != '`':
			return l.errorf(start, "newline in string")
		}
	}
	return l.errorf(start, "unterminated string")
}

// skipVariable skips a Grafana variable: $name or ${name[:format]}.
func (l *lexer) skipVariable() error {
	start := l.pos
	l.pos++
	if l.pos < len(l.s) && l.s[l.pos] == '{' {
		end := strings.IndexByte(l.s[l.pos:], '}')
		if end < 0 {
			return l.errorf(start, "unterminated ${")
		}
		l.pos += end + 1
		return nil
	}
	n := l.pos
	for l.pos < len(l.s) && (isNameStart(l.s[l.pos]) || isDigit(l.s[l.pos])) {
		l.pos++
	}
	if l.pos == n {
		return l.errorf(start, "$ without a variable name")
	}
	return nil
}

// skipNumber skips a number or a duration (1, 0.5, 1e-3, 0x1f, 5m, 1h30m).
func (l *lexer) skipNumber() {
	hex := strings.HasPrefix(strings.ToLower(l.s[l.pos:]), "0x")
	for l.pos < len(l.s) {
		c := l.s[l.pos]
		switch {
		case isDigit(c) || isNameStart(c) || c == '.':
			l.pos++
		case (c == '+' || c == '-') && !hex && (l.s[l.pos-1] == 'e' || l.s[l.pos-1] == 'E'):
			l.pos++
		default:
			return
		}
	}
}

// skipLabelList skips the label names after by, without, on, ignoring,
// group_left and group_right, which are not metrics.
func (l *lexer) skipLabelList() error {
	if l.peek() != '(' {
		return nil // group_left and group_right may have none
	}
	l.skipSpace()
	start := l.pos
	for l.pos++; l.pos < len(l.s); l.pos++ {
		switch l.s[l.pos] {
		case ')':
			l.pos++
			return nil
		case '"', '\'', '`':
			if err := l.skipString(); err != nil {
				return err
			}
			l.pos--
		case '(', '[', '{':
			return l.errorf(l.pos, "%c in a label list", l.s[l.pos])
		}
	}
	return l.errorf(start, "unterminated label list")
}

// skipRange skips a range or subquery: [5m], [$__rate_interval], [1h:5m].
func (l *lexer) skipRange() error {
	start := l.pos
	for l.pos++; l.pos < len(l.s); l.pos++ {
		switch l.s[l.pos] {
		case ']':
			l.pos++
			return nil
		case '[', '{', '"', '\'', '`':
			return l.errorf(l.pos, "%c in a range", l.s[l.pos])
		}
	}
	return l.errorf(start, "unterminated range")
}

// matchers reads {…} and returns what is between the braces.
func (l *lexer) matchers() (string, error) {
	start := l.pos
	for l.pos++; l.pos < len(l.s); l.pos++ {
		switch l.s[l.pos] {
		case '}':
			l.pos++
			return l.s[start+1 : l.pos-1], nil
		case '"', '\'', '`':
			if err := l.skipString(); err != nil {
				return "", err
			}
			l.pos--
		case '{', '[', '(':
			return "", l.errorf(l.pos, "%c in label matchers", l.s[l.pos])
		}
	}
	return "", l.errorf(start, "unterminated label matchers")
}

// nameIn finds the metric name inside matchers: __name__="x", or a quoted
// name standing alone (Prometheus 3's {"x", job="y"}). It returns "" when
// there is none, or only a __name__ regexp.
func nameIn(m string) (string, error) {
	var name string
	for _, item := range splitItems(m) {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		if s, ok := unquote(item); ok {
			if name != "" {
				return "", fmt.Errorf("{%s}: the metric is named twice", m)
			}
			name = s
			continue
		}
		label, value, ok := strings.Cut(item, "=")
		if !ok || strings.TrimSpace(label) != "__name__" {
			continue
		}
		if s, ok := unquote(strings.TrimSpace(value)); ok {
			if name != "" {
				return "", fmt.Errorf("{%s}: the metric is named twice", m)
			}
			name = s
		}
	}
	return name, nil
}

// splitItems splits matchers at the commas outside strings.
func splitItems(m string) []string {
	var out []string
	var q byte
	start := 0
	for i := 0; i < len(m); i++ {
		c := m[i]
		switch {
		case q != 0 && c == '\\' && q != '`':
			i++
		case q != 0 && c == q:
			q = 0
		case q != 0:
		case c == '"' || c == '\'' || c == '`':
			q = c
		case c == ',':
			out = append(out, m[start:i])
			start = i + 1
		}
	}
	return append(out, m[start:])
}

// unquote returns the contents of a whole quoted string (escapes other
// than \\ and the quote itself are kept as written: metric names have
// none).
func unquote(s string) (string, bool) {
	if len(s) < 2 || s[0] != s[len(s)-1] || strings.IndexByte("\"'`", s[0]) < 0 {
		return "", false
	}
	q := s[0]
	inner := s[1 : len(s)-1]
	if q == '`' {
		return inner, !strings.Contains(inner, "`")
	}
	var b strings.Builder
	for i := 0; i < len(inner); i++ {
		c := inner[i]
		switch {
		case c == '\\' && i+1 < len(inner):
			i++
			b.WriteByte(inner[i])
		case c == q || c == '\\':
			return "", false // the quote ended earlier: not one string
		default:
			b.WriteByte(c)
		}
	}
	return b.String(), true
}

func isDigit(c byte) bool     { return c >= '0' && c <= '9' }
func isNameStart(c byte) bool { return c == '_' || c == ':' || (c|0x20 >= 'a' && c|0x20 <= 'z') }
