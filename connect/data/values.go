package data

import (
	"encoding/base64"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// FormatFloat formats f as Java's Double.toString (bits 64) or
// Float.toString (bits 32): shortest digits, plain between 10^-3 and 10^7,
// else d.dddE±n; NaN and infinities as Java spells them.
func FormatFloat(f float64, bits int) string {
	switch {
	case math.IsNaN(f):
		return "NaN"
	case math.IsInf(f, 1):
		return "Infinity"
	case math.IsInf(f, -1):
		return "-Infinity"
	}
	if f == 0 {
		if math.Signbit(f) {
			return "-0.0"
		}
		return "0.0"
	}
	// Shortest round-tripping digits and the decimal exponent.
	e := strconv.FormatFloat(f, 'e', -1, bits) // -d.dddde±XX
	if !strings.Contains(e, ".") {
		// Java always prints two significant digits at least, and then
		// the two closest to the exact value (4.9E-324, not 5.0E-324).
		e = strconv.FormatFloat(f, 'e', 1, bits)
	}
	neg := e[0] == '-'
	if neg {
		e = e[1:]
	}
	mant, expStr, _ := strings.Cut(e, "e")
	exp, _ := strconv.Atoi(expStr)
	digits := strings.Replace(mant, ".", "", 1)
	if t := strings.TrimRight(digits, "0"); t != "" {
		digits = t // the two-digit form's trailing zero; layout adds ".0"
	}
	var s string
	abs := math.Abs(f)
	if abs >= 1e-3 && abs < 1e7 {
		s = plainDigits(digits, exp)
	} else {
		frac := digits[1:]
		if frac == "" {
			frac = "0"
		}
		s = digits[:1] + "." + frac + "E" + strconv.Itoa(exp)
	}
	if neg {
		s = "-" + s
	}
	return s
}

// plainDigits places the point in digits d (value d[0].d[1:] × 10^exp)
// with at least one digit on each side.
func plainDigits(d string, exp int) string {
	point := exp + 1 // digits before the point
	switch {
	case point <= 0:
		return "0." + strings.Repeat("0", -point) + d
	case point >= len(d):
		return d + strings.Repeat("0", point-len(d)) + ".0"
	}
	return d[:point] + "." + d[point:]
}

// ToString renders v as Kafka's Values.convertToString, the text that
// SimpleHeaderConverter writes and Cast produces: numbers and booleans
// as Java prints them, bytes as base64, dates in ISO 8601 UTC, and arrays,
// maps and structs in a JSON-like form with quoted strings. nil is "null".
func ToString(v any) string {
	var b strings.Builder
	appendString(&b, v, false)
	return b.String()
}

func appendString(b *strings.Builder, v any, embedded bool) {
	quote := func(s string) {
		if embedded {
			b.WriteByte('"')
			b.WriteString(s)
			b.WriteByte('"')
		} else {
			b.WriteString(s)
		}
	}
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case int8, int16, int32, int64, int:
		b.WriteString(strconv.FormatInt(toInt64(x), 10))
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case float32:
		b.WriteString(FormatFloat(float64(x), 32))
	case float64:
		b.WriteString(FormatFloat(x, 64))
	case Decimal:
		b.WriteString(x.String())
	case string:
		if embedded {
			x = strings.ReplaceAll(strings.ReplaceAll(x, `\`, `\\`), `"`, `\"`)
		}
		quote(x)
	case []byte:
		quote(base64.StdEncoding.EncodeToString(x))
	case time.Time:
		b.WriteString(FormatTime(x))
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			appendString(b, e, true)
		}
		b.WriteByte(']')
	case map[string]any, *Map:
		b.WriteByte('{')
		first := true
		for k, e := range Entries(x) {
			if !first {
				b.WriteByte(',')
			}
			first = false
			appendString(b, k, true)
			b.WriteByte(':')
			appendString(b, e, true)
		}
		b.WriteByte('}')
	case *Struct:
		b.WriteByte('{')
		for i, f := range x.schema.Fields {
			if i > 0 {
				b.WriteByte(',')
			}
			appendString(b, f.Name, true)
			b.WriteByte(':')
			appendString(b, x.Get(f.Name), true)
		}
		b.WriteByte('}')
	default:
		fmt.Fprint(b, x)
	}
}

// JavaString renders v as Java's toString of the value Kafka would hold,
// which is what StringConverter writes for a non-string value: numbers as
// Java prints them, lists as [a, b], maps as {k=v, k2=v2} (keys sorted),
// structs as Struct{a=1}, dates as java.util.Date does in UTC. Bytes,
// which Java would print as an object address, are written as they are.
func JavaString(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case []byte:
		return string(x)
	case time.Time:
		return x.UTC().Format("Mon Jan 02 15:04:05 MST 2006")
	case *Struct:
		if x == nil {
			return "null"
		}
		return x.String()
	case []any:
		parts := make([]string, len(x))
		for i, e := range x {
			parts[i] = JavaString(e)
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case map[string]any, *Map:
		var parts []string
		for k, e := range Entries(x) {
			parts = append(parts, JavaString(k)+"="+JavaString(e))
		}
		return "{" + strings.Join(parts, ", ") + "}"
	}
	return ToString(v)
}

func toInt64(v any) int64 {
	switch x := v.(type) {
	case int8:
		return int64(x)
	case int16:
		return int64(x)
	case int32:
		return int64(x)
	case int64:
		return x
	case int:
		return int64(x)
	}
	return 0
}

// ISO 8601 layouts of Kafka's Values (always UTC).
const (
	ISODateLayout      = "2006-01-02"
	ISOTimeLayout      = "15:04:05.000Z"
	ISOTimestampLayout = "2006-01-02T15:04:05.000Z"
)

// FormatTime formats t as Kafka's Values.dateFormatFor: a time of day if
// t is within the first day of the epoch, a date if it is midnight, else a
// timestamp, all in UTC.
func FormatTime(t time.Time) string {
	ms := t.UnixMilli()
	u := t.UTC()
	switch {
	case ms >= 0 && ms < millisPerDay:
		return u.Format(ISOTimeLayout)
	case ms%millisPerDay == 0:
		return u.Format(ISODateLayout)
	}
	return u.Format(ISOTimestampLayout)
}

func isNumberToken(t string) bool {
	if t == "" {
		return false
	}
	digits := false
	for i := 0; i < len(t); i++ {
		c := t[i]
		switch {
		case c >= '0' && c <= '9':
			digits = true
		case c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-':
		default:
			return false
		}
	}
	return digits
}

func parseNumber(d Decimal) (*Schema, any) {
	r := d.Rat()
	if r.IsInt() && r.Num().IsInt64() {
		n := r.Num().Int64()
		switch {
		case n == int64(int8(n)):
			return Int8Schema, int8(n)
		case n == int64(int16(n)):
			return Int16Schema, int16(n)
		case n == int64(int32(n)):
			return Int32Schema, int32(n)
		}
		return Int64Schema, n
	}
	if d.Scale != 0 {
		if f, _ := r.Float32(); !math.IsInf(float64(f), 0) {
			return Float32Schema, f
		}
		if f, _ := r.Float64(); !math.IsInf(f, 0) {
			return Float64Schema, f
		}
	}
	return DecimalSchema(int(d.Scale)), d
}
