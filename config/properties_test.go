package config

import (
	"errors"
	"maps"
	"strings"
	"testing"
)

func TestParseProperties(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string]string
	}{
		{"empty", "", map[string]string{}},
		{"comments and blanks", "# c\n! also\n\n   \n  # indented\n", map[string]string{}},
		{"equals", "a=1\nb = 2 \n", map[string]string{"a": "1", "b": "2"}},
		{"colon", "a:1\nb : two words \n", map[string]string{"a": "1", "b": "two words"}},
		{"blank separator", "a 1\n", map[string]string{"a": "1"}},
		{"empty value", "a=\n", map[string]string{"a": ""}},
		{"value keeps separators", "listeners=PLAINTEXT://h:9092\n", map[string]string{"listeners": "PLAINTEXT://h:9092"}},
		{"crlf", "a=1\r\nb=2\r\n", map[string]string{"a": "1", "b": "2"}},
		{"bom", "\ufeffa=1\n", map[string]string{"a": "1"}},
		{"last wins", "a=1\na=2\n", map[string]string{"a": "2"}},
		{"continuation", "a=one,\\\n    two,\\\n  three\n", map[string]string{"a": "one,two,three"}},
		{"continuation line looks like comment", "a=x\\\n # y\n", map[string]string{"a": "x# y"}},
		{"even backslashes do not continue", "a=x\\\\\nb=2\n", map[string]string{"a": `x\`, "b": "2"}},
		{"continuation at eof", "a=x\\", map[string]string{"a": "x"}},
		{"escapes", `a=t\tn\nu\u0041\:x`, map[string]string{"a": "t\tn\nuA:x"}},
		{"escaped separator in key", `a\=b=c`, map[string]string{"a=b": "c"}},
		{"no trailing newline", "a=1", map[string]string{"a": "1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseProperties(strings.NewReader(tc.in))
			if err != nil {
				t.Fatalf("error: %v", err)
			}
			if !maps.Equal(got, tc.want) {
				t.Fatalf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestParsePropertiesErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		line int
		msg  string
	}{
		{"key without value", "a=1\n# c\nlonely\n", 3, `"lonely" has no value`},
		{"empty key", "a=1\n=2\n", 2, "empty key"},
		{"empty key colon", ": x\n", 1, "empty key"},
		{"bad unicode", "a=1\nb=\\u00zz\n", 2, `malformed \u escape`},
		{"short unicode", "b=\\u00\n", 1, `malformed \u escape`},
		{"continued pair error reports first line", "a=1\nbad\\\nkey\n", 2, `"badkey" has no value`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParseProperties(strings.NewReader(tc.in))
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("want *ParseError, got %v", err)
			}
			if pe.Line != tc.line || !strings.Contains(pe.Msg, tc.msg) {
				t.Fatalf("got line %d %q, want line %d containing %q", pe.Line, pe.Msg, tc.line, tc.msg)
			}
			if !strings.HasPrefix(err.Error(), "line ") {
				t.Fatalf("error text %q should start with the line", err)
			}
		})
	}
}

func FuzzParseProperties(f *testing.F) {
	for _, s := range []string{"a=1\n", "a: b\\\n c\n", "# x\n!y\nk v", `\u0041=\t`, "=\n", "a=\\u12"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		m, err := ParseProperties(strings.NewReader(in))
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line < 1 {
				t.Fatalf("bad error %v", err)
			}
			return
		}
		for k := range m {
			if k == "" {
				t.Fatalf("empty key accepted from %q", in)
			}
		}
	})
}
