package data

import (
	"strings"
	"time"
)

// ParseString infers a schema and value from text as Kafka's
// Values.parseString does (SimpleHeaderConverter and InsertHeader use it):
// "" is a string; true/false booleans; null nil; integers the smallest int
// type that holds them; other numbers float32, float64 or Decimal; ISO 8601
// dates, times and timestamps their logical types; [a,b] arrays and {k:v}
// maps of such values (quoted strings inside), with a common element schema
// when the elements agree (numbers widen); anything else, including
// brackets that do not parse, the string itself.
//
// Two deliberate differences from Kafka: a top-level value must use the
// whole text ("12 apples" is a string, not 12), and quoted strings are
// unescaped (\" and \\), so ParseString reads back what ToString writes
// (Kafka keeps the backslashes, which double on every round trip).
func ParseString(s string) (*Schema, any) {
	if s == "" {
		return StringSchema, s
	}
	p := &valueParser{s: s}
	p.space()
	if p.i < len(s) && (s[p.i] == '[' || s[p.i] == '{') {
		if sch, v, err := p.value(); err == nil {
			if p.space(); p.i == len(s) {
				return sch, v
			}
		}
		return StringSchema, s
	}
	t := strings.TrimSpace(s)
	switch t { // case-sensitive, as Kafka: TRUE is a string
	case "null":
		return nil, nil
	case "true":
		return BooleanSchema, true
	case "false":
		return BooleanSchema, false
	}
	if sch, v, ok := parseScalar(t); ok {
		return sch, v
	}
	return StringSchema, s
}

// parseScalar reads a whole token as a temporal or a number.
func parseScalar(t string) (*Schema, any, bool) {
	if sch, v, ok := parseTemporal(t); ok {
		return sch, v, true
	}
	if isNumberToken(t) {
		if d, err := ParseDecimal(t); err == nil {
			sch, v := parseNumber(d)
			return sch, v, true
		}
	}
	return nil, nil, false
}

func parseTemporal(t string) (*Schema, any, bool) {
	switch len(t) {
	case len(ISOTimestampLayout):
		if tm, err := time.Parse(ISOTimestampLayout, t); err == nil {
			return TimestampSchema, tm, true
		}
	case len(ISODateLayout):
		if tm, err := time.Parse(ISODateLayout, t); err == nil {
			return DateSchema, tm, true
		}
	case len(ISOTimeLayout):
		if tm, err := time.Parse(ISOTimeLayout, t); err == nil {
			ms := tm.Hour()*3600_000 + tm.Minute()*60_000 + tm.Second()*1000 + tm.Nanosecond()/1e6
			return TimeSchema, time.UnixMilli(int64(ms)).UTC(), true
		}
	}
	return nil, nil, false
}

type valueParser struct {
	s string
	i int
}

type parseError struct{}

func (parseError) Error() string { return "data: not a value" }

func (p *valueParser) space() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t' || p.s[p.i] == '\n' || p.s[p.i] == '\r') {
		p.i++
	}
}

func (p *valueParser) consume(c byte) bool {
	p.space()
	if p.i < len(p.s) && p.s[p.i] == c {
		p.i++
		return true
	}
	return false
}

// value parses one embedded value: quoted string, array, map, or a bare
// token (null, booleans, numbers, temporals).
func (p *valueParser) value() (*Schema, any, error) {
	p.space()
	if p.i >= len(p.s) {
		return nil, nil, parseError{}
	}
	switch p.s[p.i] {
	case '"':
		p.i++
		var b strings.Builder
		for p.i < len(p.s) {
			c := p.s[p.i]
			p.i++
			switch c {
			case '\\':
				if p.i < len(p.s) {
					b.WriteByte(p.s[p.i])
					p.i++
				}
			case '"':
				str := b.String()
				if sch, v, ok := parseTemporal(str); ok {
					return sch, v, nil
				}
				return StringSchema, str, nil
			default:
				b.WriteByte(c)
			}
		}
		return nil, nil, parseError{}
	case '[':
		p.i++
		return p.array()
	case '{':
		p.i++
		return p.object()
	}
	// A bare token runs to the next delimiter; temporals contain ':', so
	// they are tried first at their fixed lengths.
	for _, n := range []int{len(ISOTimestampLayout), len(ISOTimeLayout), len(ISODateLayout)} {
		if p.i+n <= len(p.s) {
			if sch, v, ok := parseTemporal(p.s[p.i : p.i+n]); ok {
				p.i += n
				return sch, v, nil
			}
		}
	}
	start := p.i
	for p.i < len(p.s) && !strings.ContainsRune(`:,{}[]"`, rune(p.s[p.i])) {
		p.i++
	}
	t := strings.TrimSpace(p.s[start:p.i])
	switch t {
	case "null":
		return nil, nil, nil
	case "true":
		return BooleanSchema, true, nil
	case "false":
		return BooleanSchema, false, nil
	}
	if sch, v, ok := parseScalar(t); ok {
		return sch, v, nil
	}
	return nil, nil, parseError{}
}

func (p *valueParser) array() (*Schema, any, error) {
	var m schemaMerger
	out := []any{}
	if p.consume(']') {
		return ArrayOf(nil), out, nil
	}
	for {
		sch, v, err := p.value()
		if err != nil {
			return nil, nil, err
		}
		m.merge(sch, v)
		out = append(out, v)
		if p.consume(']') {
			break
		}
		if !p.consume(',') {
			return nil, nil, parseError{}
		}
	}
	items, err := m.schema()
	if err != nil {
		return nil, nil, err
	}
	for i := range out {
		out[i] = widen(out[i], items)
	}
	return ArrayOf(items), out, nil
}

func (p *valueParser) object() (*Schema, any, error) {
	var km, vm schemaMerger
	var keys, vals []any
	if !p.consume('}') {
		for {
			ks, k, err := p.value()
			if err != nil || k == nil || !p.consume(':') {
				return nil, nil, parseError{}
			}
			vs, v, err := p.value()
			if err != nil {
				return nil, nil, err
			}
			km.merge(ks, k)
			vm.merge(vs, v)
			keys, vals = append(keys, k), append(vals, v)
			if p.consume('}') {
				break
			}
			if !p.consume(',') {
				return nil, nil, parseError{}
			}
		}
	}
	kSchema, err := km.schema()
	if err != nil {
		return nil, nil, err
	}
	vSchema, err := vm.schema()
	if err != nil {
		return nil, nil, err
	}
	if kSchema != nil && kSchema.Type == TypeString {
		out := make(map[string]any, len(keys))
		for i, k := range keys {
			out[k.(string)] = widen(vals[i], vSchema)
		}
		return MapOf(kSchema, vSchema), out, nil
	}
	out := &Map{}
	for i, k := range keys {
		out.Put(widen(k, kSchema), widen(vals[i], vSchema))
	}
	return MapOf(kSchema, vSchema), out, nil
}

// schemaMerger finds the schema common to a run of values, as Kafka's
// Values.SchemaMerger: equal schemas agree, numbers widen along int8 <
// int16 < int32 < int64 < float32 < float64, anything else has none. A nil
// among values that have a common schema fails the parse, as Kafka's
// (which then keeps the whole text as a string).
type schemaMerger struct {
	common       *Schema
	incompatible bool
	sawNull      bool
}

var widening = []Type{TypeInt8, TypeInt16, TypeInt32, TypeInt64, TypeFloat32, TypeFloat64}

func rank(t Type) int {
	for i, w := range widening {
		if w == t {
			return i
		}
	}
	return -1
}

func (m *schemaMerger) merge(s *Schema, v any) {
	if v == nil {
		m.sawNull = true
		return
	}
	if s == nil || m.incompatible {
		return
	}
	switch {
	case m.common == nil:
		m.common = s
	case m.common.Type == s.Type && m.common.Name == "" && s.Name == "":
	case m.common.Equal(s):
	case rank(m.common.Type) >= 0 && rank(s.Type) >= 0 && m.common.Name == "" && s.Name == "":
		if rank(s.Type) > rank(m.common.Type) {
			m.common = s
		}
	default:
		m.common, m.incompatible = nil, true
	}
}

func (m *schemaMerger) schema() (*Schema, error) {
	if m.common != nil && m.sawNull {
		return nil, parseError{}
	}
	return m.common, nil
}

// widen converts a number to the wider numeric type of s.
func widen(v any, s *Schema) any {
	if v == nil || s == nil || rank(s.Type) < 0 || InferType(v) == s.Type {
		return v
	}
	var f float64
	var n int64
	switch x := v.(type) {
	case int8:
		n = int64(x)
	case int16:
		n = int64(x)
	case int32:
		n = int64(x)
	case int64:
		n = x
	case float32:
		f = float64(x)
		if s.Type == TypeFloat64 {
			return f
		}
		return v
	default:
		return v
	}
	f = float64(n)
	switch s.Type {
	case TypeInt16:
		return int16(n)
	case TypeInt32:
		return int32(n)
	case TypeInt64:
		return n
	case TypeFloat32:
		return float32(f)
	case TypeFloat64:
		return f
	}
	return v
}
