// Code frozen from the pre-issue-20 JsonConverter (git show a72e9a9:connect/convert/jsonwrite.go)
// by renaming; the reference the optimized converter is compared against.
// Do not edit except to keep it compiling.

package convert

import (
	"encoding/base64"
	"math"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sluice-io/sluice/connect/data"
)

// This file writes JSON text byte for byte as Kafka's JsonConverter does
// through Jackson: objects keep insertion order, floats print as Java's
// Float/Double.toString, decimals as BigDecimal.toString, bytes as padded
// base64, and strings escape only what Jackson escapes.

func refAppendString(b []byte, s string) []byte {
	const hex = "0123456789ABCDEF"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
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
				b = refAppendUnicodeEscape(refAppendUnicodeEscape(b, hi), lo)
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
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
		default:
			b = append(b, c)
		}
		i++
	}
	return append(b, '"')
}

func refAppendUnicodeEscape(b []byte, r rune) []byte {
	const hex = "0123456789ABCDEF"
	return append(b, '\\', 'u', hex[r>>12&0xf], hex[r>>8&0xf], hex[r>>4&0xf], hex[r&0xf])
}

func refAppendBase64(b []byte, p []byte) []byte {
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, p)
	return append(b, '"')
}

// appendJavaFloat writes f as Java's Double.toString (bits 64) or
// Float.toString (bits 32); NaN and infinities are quoted as Jackson does.
func refAppendJavaFloat(b []byte, f float64, bits int) []byte {
	switch {
	case math.IsNaN(f):
		return append(b, `"NaN"`...)
	case math.IsInf(f, 1):
		return append(b, `"Infinity"`...)
	case math.IsInf(f, -1):
		return append(b, `"-Infinity"`...)
	}
	return append(b, data.FormatFloat(f, bits)...)
}
