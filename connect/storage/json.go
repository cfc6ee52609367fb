package storage

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// The internal topics hold what Kafka Connect's JsonConverter writes with
// schemas.enable=false: plain JSON, no envelope. Fixed-shape values (a
// status, a target state) are Go structs whose field order is the order of
// Kafka's Connect schema. Free-form maps (source partitions and offsets) go
// through appendJSON, which writes one canonical form: keys sorted, no
// spaces, numbers as Java prints them. The offsets topic is compacted by key
// bytes, so the same partition must always encode to the same bytes.

// marshal encodes v as JsonConverter would: no HTML escaping (Jackson writes
// '<' and '&' as they are) and no trailing newline.
func marshal(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(b.Bytes(), []byte("\n")), nil
}

// decodeJSON parses one JSON value the way JsonConverter's schemaless
// reader types it: objects map[string]any, arrays []any, whole numbers
// int64, other numbers float64.
func decodeJSON(b []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	if d.More() {
		return nil, errors.New("trailing data after the JSON value")
	}
	return numbers(v), nil
}

// numbers replaces every json.Number in v by an int64 or a float64.
func numbers(v any) any {
	switch x := v.(type) {
	case json.Number:
		s := string(x)
		if !strings.ContainsAny(s, ".eE") {
			if i, err := strconv.ParseInt(s, 10, 64); err == nil {
				return i
			}
		}
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return s // out of float range: keep the digits rather than lose them
		}
		return f
	case map[string]any:
		for k, e := range x {
			x[k] = numbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = numbers(e)
		}
	}
	return v
}

// appendJSON appends the canonical encoding of v.
func appendJSON(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		return strconv.AppendBool(b, x), nil
	case string:
		return appendString(b, x), nil
	case []byte:
		// JsonConverter writes bytes as base64 text.
		return appendString(b, base64.StdEncoding.EncodeToString(x)), nil
	case int:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int8:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int16:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int32:
		return strconv.AppendInt(b, int64(x), 10), nil
	case int64:
		return strconv.AppendInt(b, x, 10), nil
	case uint8:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint16:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint32:
		return strconv.AppendUint(b, uint64(x), 10), nil
	case uint64:
		return strconv.AppendUint(b, x, 10), nil
	case float32:
		return appendJavaDouble(b, float64(x), 32)
	case float64:
		return appendJavaDouble(b, x, 64)
	case json.Number:
		return append(b, x...), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendJSON(b, x[k]); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case []any:
		b = append(b, '[')
		for i, e := range x {
			if i > 0 {
				b = append(b, ',')
			}
			var err error
			if b, err = appendJSON(b, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	default:
		return nil, fmt.Errorf("cannot encode a %T as JSON", v)
	}
}

func appendString(b []byte, s string) []byte {
	enc, _ := marshal(s) // a string always encodes
	return append(b, enc...)
}

// appendJavaDouble writes f as Java's Double.toString (and so Jackson) does:
// plain with at least one fractional digit in [1e-3, 1e7), otherwise
// d.dddE±n; the shortest digits that read back to f.
func appendJavaDouble(b []byte, f float64, bits int) ([]byte, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return nil, fmt.Errorf("cannot encode %v as JSON", f)
	}
	if f == 0 {
		if math.Signbit(f) {
			return append(b, "-0.0"...), nil
		}
		return append(b, "0.0"...), nil
	}
	if a := math.Abs(f); a >= 1e-3 && a < 1e7 {
		s := strconv.FormatFloat(f, 'f', -1, bits)
		if !strings.Contains(s, ".") {
			s += ".0"
		}
		return append(b, s...), nil
	}
	s := strconv.FormatFloat(f, 'e', -1, bits) // 1.5e-07
	mant, exp, _ := strings.Cut(s, "e")
	if !strings.Contains(mant, ".") {
		mant += ".0"
	}
	e, err := strconv.Atoi(exp)
	if err != nil {
		return nil, fmt.Errorf("formatting %v: %w", f, err)
	}
	b = append(b, mant...)
	b = append(b, 'E')
	return strconv.AppendInt(b, int64(e), 10), nil
}
