package connectv1

import (
	"math"
	"slices"
	"strconv"
	"unicode/utf8"
)

// Source positions are JSON objects on the wire and every polled record
// carries one, so their encoding is on the hot path. Nearly all are flat
// ({"file":"/var/log/x","pos":123}); this file encodes and decodes flat
// objects by hand and leaves everything else to encoding/json. The fast
// paths produce and accept exactly what encoding/json does (tested).

// appendFlatJSON appends m as a JSON object with sorted keys, or reports
// false if a value is not a string, bool, nil, integer or finite float.
func appendFlatJSON(b []byte, m map[string]any) ([]byte, bool) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		var ok bool
		if b, ok = appendJSONString(b, k); !ok {
			return nil, false
		}
		b = append(b, ':')
		switch v := m[k].(type) {
		case nil:
			b = append(b, "null"...)
		case bool:
			b = strconv.AppendBool(b, v)
		case string:
			if b, ok = appendJSONString(b, v); !ok {
				return nil, false
			}
		case int64:
			b = strconv.AppendInt(b, v, 10)
		case int:
			b = strconv.AppendInt(b, int64(v), 10)
		case int32:
			b = strconv.AppendInt(b, int64(v), 10)
		default:
			return nil, false // floats and nested values: encoding/json's formats
		}
	}
	return append(b, '}'), true
}

// appendJSONString quotes plain printable ASCII (no quotes, backslashes,
// control characters or HTML-escaped <>&, which encoding/json would
// escape) and reports false otherwise.
func appendJSONString(b []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return nil, false
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"'), true
}

// parseFlatJSON decodes a flat object whose values are plain strings,
// integers, true, false or null, with no insignificant whitespace; it
// reports false for anything else.
func parseFlatJSON(b []byte) (map[string]any, bool) {
	if len(b) < 2 || b[0] != '{' || b[len(b)-1] != '}' {
		return nil, false
	}
	m := make(map[string]any, 2)
	i := 1
	if b[i] == '}' {
		return m, i == len(b)-1
	}
	for {
		k, n, ok := parsePlainString(b, i)
		if !ok || n >= len(b) || b[n] != ':' {
			return nil, false
		}
		i = n + 1
		if i >= len(b) {
			return nil, false
		}
		var v any
		switch c := b[i]; {
		case c == '"':
			var s string
			if s, i, ok = parsePlainString(b, i); !ok {
				return nil, false
			}
			v = s
		case c == '-' || (c >= '0' && c <= '9'):
			j := i + 1
			for j < len(b) && b[j] >= '0' && b[j] <= '9' {
				j++
			}
			n, err := strconv.ParseInt(string(b[i:j]), 10, 64)
			if err != nil || (b[i] == '0' && j-i > 1) || (b[i] == '-' && (j-i == 1 || b[i+1] == '0' && j-i > 2)) || n == math.MinInt64 {
				return nil, false // leading zeros, overflow: let encoding/json judge
			}
			v, i = n, j
		case hasPrefixAt(b, i, "true"):
			v, i = true, i+4
		case hasPrefixAt(b, i, "false"):
			v, i = false, i+5
		case hasPrefixAt(b, i, "null"):
			v, i = nil, i+4
		default:
			return nil, false
		}
		if _, dup := m[k]; dup {
			return nil, false
		}
		m[k] = v
		if i >= len(b) {
			return nil, false
		}
		switch b[i] {
		case ',':
			i++
		case '}':
			return m, i == len(b)-1
		default:
			return nil, false
		}
	}
}

func hasPrefixAt(b []byte, i int, s string) bool {
	return len(b)-i >= len(s) && string(b[i:i+len(s)]) == s
}

// parsePlainString reads a string without escapes or non-ASCII at b[i],
// returning it and the index after its closing quote.
func parsePlainString(b []byte, i int) (string, int, bool) {
	if i >= len(b) || b[i] != '"' {
		return "", 0, false
	}
	for j := i + 1; j < len(b); j++ {
		switch c := b[j]; {
		case c == '"':
			return string(b[i+1 : j]), j + 1, true
		case c == '\\' || c < 0x20 || c >= utf8.RuneSelf:
			return "", 0, false
		}
	}
	return "", 0, false
}
