package deploy

import (
	"slices"
	"strings"
	"testing"
)

// metricNames returns the metric names a PromQL expression selects, in
// order of first appearance. It is a scanner, not a parser: it only has to
// tell metric names apart from everything else that looks like an
// identifier (functions and aggregations, which a '(' follows; keywords;
// label names inside {} and in by/without/on/ignoring/group_* lists),
// and skip strings, numbers, durations, ranges and Grafana variables.
func metricNames(expr string) []string {
	var names []string
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(expr, i)
		case c == '#': // a comment runs to the end of the line
			if nl := strings.IndexByte(expr[i:], '\n'); nl >= 0 {
				i += nl
			} else {
				i = len(expr)
			}
		case c == '{':
			i = skipGroup(expr, i, '{', '}')
		case c == '[': // ranges, subqueries, Grafana's [[var]]
			i = skipGroup(expr, i, '[', ']')
		case c == '$':
			i = skipVariable(expr, i)
		case isDigit(c) || c == '.' && i+1 < len(expr) && isDigit(expr[i+1]):
			i = skipNumber(expr, i)
		case isIdentStart(c):
			j := i
			for j < len(expr) && isIdentChar(expr[j]) {
				j++
			}
			word, next := expr[i:j], skipSpace(expr, j)
			lower := strings.ToLower(word) // PromQL keywords ignore case
			switch {
			case labelListKeywords[lower]:
				if next < len(expr) && expr[next] == '(' {
					j = skipGroup(expr, next, '(', ')')
				}
			case keywords[lower]:
			case next < len(expr) && expr[next] == '(': // a function or aggregation
			case isAggregation(expr, next): // sum by (le) (...)
			default:
				if !slices.Contains(names, word) {
					names = append(names, word)
				}
			}
			i = j
		default:
			i++
		}
	}
	return names
}

// Keywords followed by a parenthesised list of label names.
var labelListKeywords = map[string]bool{
	"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true,
}

// Keywords and literals that are not metric names. start() and end() of
// the @ modifier are calls and need no entry.
var keywords = map[string]bool{
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true,
	"inf": true, "nan": true,
}

// isAggregation reports whether a by or without clause starts at i, so the
// word before it is an aggregation operator, not a metric.
func isAggregation(s string, i int) bool {
	j := i
	for j < len(s) && isIdentChar(s[j]) {
		j++
	}
	w := strings.ToLower(s[i:j])
	next := skipSpace(s, j)
	return (w == "by" || w == "without") && next < len(s) && s[next] == '('
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}
func isIdentChar(c byte) bool { return isIdentStart(c) || isDigit(c) }

func skipSpace(s string, i int) int {
	for i < len(s) && strings.IndexByte(" \t\r\n", s[i]) >= 0 {
		i++
	}
	return i
}

// skipString returns the index after the string literal starting at i;
// backquoted strings have no escapes.
func skipString(s string, i int) int {
	q := s[i]
	for i++; i < len(s); i++ {
		switch {
		case s[i] == '\\' && q != '`':
			i++
		case s[i] == q:
			return i + 1
		}
	}
	return len(s)
}

// skipGroup returns the index after the bracket that closes the one at i,
// looking through nested brackets and strings ("}" in a matcher's value).
func skipGroup(s string, i int, open, closing byte) int {
	depth := 0
	for i < len(s) {
		switch c := s[i]; {
		case c == '"' || c == '\'' || c == '`':
			i = skipString(s, i)
			continue
		case c == open:
			depth++
		case c == closing:
			depth--
			if depth == 0 {
				return i + 1
			}
		}
		i++
	}
	return len(s)
}

// skipVariable returns the index after a Grafana variable: $name or
// ${name[:format]}.
func skipVariable(s string, i int) int {
	if i+1 < len(s) && s[i+1] == '{' {
		if end := strings.IndexByte(s[i:], '}'); end >= 0 {
			return i + end + 1
		}
		return len(s)
	}
	i++
	for i < len(s) && isIdentChar(s[i]) {
		i++
	}
	return i
}

// skipNumber returns the index after a number or duration: 42, 0.99, 1e-3,
// 0x1F, 1h30m.
func skipNumber(s string, i int) int {
	start := i
	for i < len(s) {
		c := s[i]
		switch {
		case isIdentChar(c) || c == '.':
			i++
		case (c == '+' || c == '-') && (s[i-1] == 'e' || s[i-1] == 'E') && isMantissa(s[start:i-1]):
			i++
		default:
			return i
		}
	}
	return i
}

func isMantissa(s string) bool {
	return s != "" && strings.Trim(s, "0123456789.") == ""
}

func TestMetricNames(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`sluice_ready`, []string{"sluice_ready"}},
		{`sum by (api) (rate(sluice_request_handle_seconds_count{instance=~"$instance",api=~"$api"}[$__rate_interval]))`,
			[]string{"sluice_request_handle_seconds_count"}},
		{`histogram_quantile(0.999, sum by (le, api) (rate(req_seconds_bucket{api="Produce", x="a}b\"c"}[5m])))`,
			[]string{"req_seconds_bucket"}},
		{`max_over_time(build_info[10m]) unless build_info`, []string{"build_info"}},
		{`a / on(instance) group_left(version) b offset -5m`, []string{"a", "b"}},
		{`a * ignoring (mode) group_right c`, []string{"a", "c"}},
		{`sum(x) by (job) > bool 1e-3 AND y @ start()`, []string{"x", "y"}},
		{`count(up == 0) or vector(0)`, []string{"up"}},
		{`label_replace(m, "dst", "$1", "src", "(.*)")`, []string{"m"}},
		{`sum without (le) (rate(ns:req:rate5m[5m:30s])) * 100 - 0x1F + .5 > Inf`, []string{"ns:req:rate5m"}},
		{"topk(${limit}, lag{group=~\"$group\"}) # ratio of other_metric\n / on() total", []string{"lag", "total"}},
		{`deriv(lag[15m]) > 0 and sum by (instance, group) (lag) > 1h30m`, []string{"lag"}},
		{`count_values("version", info) atan2 other`, []string{"info", "other"}},
		{`quantile_over_time(0.9, rss[[interval]]) / 1024 ^ 2`, []string{"rss"}},
		{`vector(1) + scalar(time())`, nil},
	}
	for _, c := range cases {
		if got := metricNames(c.expr); !slices.Equal(got, c.want) {
			t.Errorf("metricNames(%s) = %q, want %q", c.expr, got, c.want)
		}
	}
}

func TestTemplateRefs(t *testing.T) {
	got := templateRefs(`rate(x{a=~"$topic",b=~"${group:regex}"}[$__rate_interval]) [[old]] $`)
	if want := []string{"topic", "group", "__rate_interval", "old"}; !slices.Equal(got, want) {
		t.Errorf("templateRefs = %q, want %q", got, want)
	}
}
