package convert

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
)

// EncodingConfig is StringConverter's charset key.
const EncodingConfig = "converter.encoding"

// StringConverter is Kafka's StringConverter: values are written as their
// text (strings as is, other values as Java's toString, data.JavaString) in
// converter.encoding, and read back as optional strings.
type StringConverter struct {
	enc string // canonical charset name
}

// Configure reads converter.encoding (default UTF-8). Supported: UTF-8,
// US-ASCII, ISO-8859-1, UTF-16, UTF-16BE, UTF-16LE (Java's names and
// common aliases).
func (c *StringConverter) Configure(props map[string]string, _ bool) error {
	enc, ok := props[EncodingConfig]
	if !ok || strings.TrimSpace(enc) == "" {
		c.enc = "UTF-8"
		return nil
	}
	switch e := strings.ToUpper(strings.ReplaceAll(strings.TrimSpace(enc), "_", "-")); e {
	case "UTF-8", "UTF8":
		c.enc = "UTF-8"
	case "US-ASCII", "ASCII":
		c.enc = "US-ASCII"
	case "ISO-8859-1", "LATIN1", "ISO8859-1":
		c.enc = "ISO-8859-1"
	case "UTF-16", "UTF-16BE", "UTF-16LE":
		c.enc = e
	default:
		return fmt.Errorf("unsupported %s %q", EncodingConfig, enc)
	}
	return nil
}

// FromConnect encodes v's text; nil is a tombstone.
func (c *StringConverter) FromConnect(_ string, _ *data.Schema, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	s, ok := v.(string)
	if !ok {
		s = data.JavaString(v)
	}
	return encodeString(c.enc, s), nil
}

// SharedBytes is FromConnect for a text value in UTF-8 without the copy:
// the string's own bytes, which the caller must only read. It reports
// false for anything else (another type, another encoding), which
// FromConnect then encodes. A source task's producer only reads a
// record's value, so a line of text costs no allocation and no copy.
func (c *StringConverter) SharedBytes(v any) ([]byte, bool) {
	s, ok := v.(string)
	if !ok || (c.enc != "UTF-8" && c.enc != "") {
		return nil, false
	}
	if s == "" {
		return []byte{}, true // empty, not null: unsafe.Slice of "" may be nil
	}
	return unsafe.Slice(unsafe.StringData(s), len(s)), true
}

// ToConnect decodes b as an optional string; nil stays nil.
func (c *StringConverter) ToConnect(_ string, b []byte) (*data.Schema, any, error) {
	if b == nil {
		return data.OptionalStringSchema, nil, nil
	}
	return data.OptionalStringSchema, decodeString(c.enc, b), nil
}

// FromConnectHeader is FromConnect.
func (c *StringConverter) FromConnectHeader(topic, _ string, s *data.Schema, v any) ([]byte, error) {
	return c.FromConnect(topic, s, v)
}

// ToConnectHeader is ToConnect.
func (c *StringConverter) ToConnectHeader(topic, _ string, b []byte) (*data.Schema, any, error) {
	return c.ToConnect(topic, b)
}

func encodeString(enc, s string) []byte {
	switch enc {
	case "US-ASCII", "ISO-8859-1":
		limit := rune(0x7f)
		if enc == "ISO-8859-1" {
			limit = 0xff
		}
		out := make([]byte, 0, len(s))
		for _, r := range s {
			if r > limit {
				r = '?' // Java's replacement for unmappable characters
			}
			out = append(out, byte(r))
		}
		return out
	case "UTF-16", "UTF-16BE", "UTF-16LE":
		units := utf16.Encode([]rune(s))
		out := make([]byte, 0, 2*len(units)+2)
		if enc == "UTF-16" { // Java writes a big-endian byte order mark
			out = append(out, 0xfe, 0xff)
		}
		for _, u := range units {
			if enc == "UTF-16LE" {
				out = append(out, byte(u), byte(u>>8))
			} else {
				out = append(out, byte(u>>8), byte(u))
			}
		}
		return out
	}
	return []byte(s)
}

func decodeString(enc string, b []byte) string {
	switch enc {
	case "US-ASCII", "ISO-8859-1":
		var sb strings.Builder
		for _, c := range b {
			if enc == "US-ASCII" && c > 0x7f {
				sb.WriteRune(utf8.RuneError)
				continue
			}
			sb.WriteRune(rune(c))
		}
		return sb.String()
	case "UTF-16", "UTF-16BE", "UTF-16LE":
		le := enc == "UTF-16LE"
		if enc == "UTF-16" {
			switch {
			case bytes.HasPrefix(b, []byte{0xfe, 0xff}):
				b = b[2:]
			case bytes.HasPrefix(b, []byte{0xff, 0xfe}):
				b, le = b[2:], true
			}
		}
		units := make([]uint16, 0, len(b)/2)
		for i := 0; i+1 < len(b); i += 2 {
			if le {
				units = append(units, uint16(b[i])|uint16(b[i+1])<<8)
			} else {
				units = append(units, uint16(b[i])<<8|uint16(b[i+1]))
			}
		}
		return string(utf16.Decode(units))
	}
	return string(b)
}

// SimpleHeaderConverter is Kafka's default header converter: header values
// are written as text (data.ToString) and read back with a schema inferred
// from the text (data.ParseString).
type SimpleHeaderConverter struct{}

// Configure accepts and ignores props.
func (*SimpleHeaderConverter) Configure(map[string]string, bool) error { return nil }

// FromConnectHeader writes v's text in UTF-8; nil stays nil.
func (*SimpleHeaderConverter) FromConnectHeader(_, _ string, _ *data.Schema, v any) ([]byte, error) {
	if v == nil {
		return nil, nil
	}
	return []byte(data.ToString(v)), nil
}

// ToConnectHeader infers a schema and value from the text.
func (*SimpleHeaderConverter) ToConnectHeader(_, _ string, b []byte) (*data.Schema, any, error) {
	if b == nil {
		return nil, nil, nil
	}
	if !utf8.Valid(b) {
		return data.BytesSchema, b, nil
	}
	s, v := data.ParseString(string(b))
	return s, v, nil
}

// FromConnect lets SimpleHeaderConverter satisfy Converter internally.
func (c *SimpleHeaderConverter) FromConnect(topic string, s *data.Schema, v any) ([]byte, error) {
	return c.FromConnectHeader(topic, "", s, v)
}

// ToConnect lets SimpleHeaderConverter satisfy Converter internally.
func (c *SimpleHeaderConverter) ToConnect(topic string, b []byte) (*data.Schema, any, error) {
	return c.ToConnectHeader(topic, "", b)
}
