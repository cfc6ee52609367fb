package convert

import (
	"encoding/base64"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-io/sluice/connect/data"
)

// This file writes JSON text byte for byte as Kafka's JsonConverter does
// through Jackson: objects keep insertion order, floats print as Java's
// Float/Double.toString, decimals as BigDecimal.toString, bytes as padded
// base64, and strings escape only what Jackson escapes.

// field is one name and value of an object being written or read.
type field struct {
	k string
	v any
}

// appendObject writes a string-keyed map as a JSON object in key order,
// as the general map path (data.Entries) does, without its iterator, key
// boxing and per-call key slice for the usual small map.
func (c *JSONConverter) appendObject(b []byte, vs *data.Schema, m map[string]any) ([]byte, error) {
	var buf [32]field
	fields := buf[:0]
	for k, v := range m {
		fields = append(fields, field{k, v})
	}
	slices.SortFunc(fields, func(a, b field) int { return strings.Compare(a.k, b.k) })
	b = append(b, '{')
	var err error
	for i, f := range fields {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, f.k)
		b = append(b, ':')
		if b, err = c.appendValue(b, vs, f.v); err != nil {
			return nil, err
		}
	}
	return append(b, '}'), nil
}

// plain marks the ASCII bytes a string may carry unescaped.
var plain = func() (t [utf8.RuneSelf]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	// Runs of plain ASCII, the whole string usually, are copied at once.
	i := 0
	for i < len(s) && s[i] < utf8.RuneSelf && plain[s[i]] {
		i++
	}
	b = append(b, s[:i]...)
	if i == len(s) {
		return append(b, '"')
	}
	return appendStringSlow(b, s[i:])
}

// appendStringSlow escapes s (after the plain prefix) and closes the
// string.
func appendStringSlow(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf && plain[c] {
			j := i + 1
			for j < len(s) && s[j] < utf8.RuneSelf && plain[s[j]] {
				j++
			}
			b = append(b, s[i:j]...)
			i = j
			continue
		}
		if c >= utf8.RuneSelf {
			r, n := utf8.DecodeRuneInString(s[i:])
			switch {
			case r == utf8.RuneError && n == 1:
				b = append(b, "\uFFFD"...)
			case r > 0xFFFF:
				// Jackson escapes characters outside the BMP as their
				// UTF-16 surrogate pair (jackson-core #223; still the
				// default).
				hi, lo := utf16.EncodeRune(r)
				b = appendUnicodeEscape(appendUnicodeEscape(b, hi), lo)
			default:
				b = append(b, s[i:i+n]...)
			}
			i += n
			continue
		}
		switch {
		case c == '"':
			b = append(b, '\\', '"')
		case c == '\\':
			b = append(b, '\\', '\\')
		case c == '\n':
			b = append(b, '\\', 'n')
		case c == '\r':
			b = append(b, '\\', 'r')
		case c == '\t':
			b = append(b, '\\', 't')
		case c == '\b':
			b = append(b, '\\', 'b')
		case c == '\f':
			b = append(b, '\\', 'f')
		default: // c < 0x20
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		}
		i++
	}
	return append(b, '"')
}

func appendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789ABCDEF"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

func appendBase64(b []byte, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// appendJavaFloat writes f as Java's Double.toString (bits 64) or
// Float.toString (bits 32); NaN and infinities are quoted as Jackson does.
func appendJavaFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	// Java prints whole numbers below 10^7 as "123.0"; only other values
	// need the shortest-digits search.
	if a := math.Abs(f); a < 1e7 && a >= 1 && f == math.Trunc(f) {
		b = strconv.AppendInt(b, int64(f), 10)
		return append(b, '.', '0')
	}
	return append(b, data.FormatFloat(f, bits)...)
}
