package convert

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// parseJSON reads the first JSON value in b into the tree the converter
// walks: map[string]any, []any, json.Number (the literal, so integral and
// exact decimal values survive), string, bool and nil. It accepts what
// Kafka's JsonDeserializer (Jackson) accepts: numbers with leading zeros,
// and trailing text after the value, which is ignored. It is also much
// cheaper than encoding/json's reflection on the record path.
func parseJSON(b []byte) (any, error) {
	v, _, err := parseJSONEnvelope(b)
	return v, err
}

// parseJSONEnvelope is parseJSON that also returns where the value of a
// top-level "schema" field lies in b, so the schema text can key a cache.
func parseJSONEnvelope(b []byte) (any, [2]int, error) {
	p := &jsonParser{b: b}
	v, err := p.top()
	return v, p.spans[0], err
}

// skipped stands for a top-level "schema" or "payload" object or array
// that was delimited rather than built (see jsonParser.skipEnvelope).
type skipped struct{}

func (p *jsonParser) top() (any, error) {
	p.space()
	if p.i >= len(p.b) {
		return nil, errEmpty
	}
	return p.value(0)
}

var errEmpty = fmt.Errorf("no content")

type jsonParser struct {
	b []byte
	i int
	// spans are where the values of the top-level "schema" and
	// "payload" fields lie.
	spans [2][2]int
	// skipEnvelope has a top-level "schema" or "payload" object or array
	// only delimited, not built; its value in the tree is skipped{}. The
	// delimiting is lax (brackets and string quotes only), so a schema
	// span may be trusted only if its text was parsed in full before, and
	// a payload span only if a strict parse from its start ends at its
	// end; otherwise, and on any error, parse again without skipping.
	skipEnvelope bool
	// plain builds numbers as the converter's schemaless values (int64
	// or float64, see plainNumber) instead of json.Number.
	plain bool
}

// envelopeField returns 0 for "schema", 1 for "payload", else -1.
func envelopeField(k string) int {
	switch k {
	case "schema":
		return 0
	case "payload":
		return 1
	}
	return -1
}

// maxDepth bounds nesting so a hostile message cannot exhaust the stack.
const maxDepth = 1000

func (p *jsonParser) errorf(format string, args ...any) error {
	return fmt.Errorf("json: "+format+" at offset %d", append(args, p.i)...)
}

func (p *jsonParser) space() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

func (p *jsonParser) value(depth int) (any, error) {
	if depth > maxDepth {
		return nil, p.errorf("nesting deeper than %d", maxDepth)
	}
	if p.i >= len(p.b) {
		return nil, p.errorf("unexpected end of input")
	}
	switch c := p.b[p.i]; {
	case c == '{':
		return p.object(depth)
	case c == '[':
		return p.array(depth)
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	default:
		return nil, p.errorf("unexpected character %q", c)
	}
}

func (p *jsonParser) literal(word string) bool {
	if len(p.b)-p.i >= len(word) && string(p.b[p.i:p.i+len(word)]) == word {
		p.i += len(word)
		return true
	}
	return false
}

// scratchLen is how many fields or elements are gathered on the stack
// before an object's map or an array's slice is made at its final size.
const scratchLen = 16

func (p *jsonParser) object(depth int) (any, error) {
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return map[string]any{}, nil
	}
	// The fields are gathered first so the map is made once at its size
	// rather than grown (and copied) as they come.
	var buf [scratchLen]field
	fields := buf[:0]
	for {
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != '"' {
			return nil, p.errorf("expected a field name")
		}
		k, err := p.str()
		if err != nil {
			return nil, err
		}
		p.space()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return nil, p.errorf("expected ':'")
		}
		p.i++
		p.space()
		start := p.i
		f := -1
		if depth == 0 {
			f = envelopeField(k)
		}
		var v any
		switch {
		case f >= 0 && p.skipEnvelope && p.spans[f][1] != 0:
			// Only the last of repeated fields counts, but the others
			// must be valid JSON: leave that to the full parse.
			return nil, p.errorf("repeated %s", k)
		case f >= 0 && p.skipEnvelope && p.i < len(p.b) && (p.b[p.i] == '{' || p.b[p.i] == '['):
			v, err = skipped{}, p.skip()
		default:
			v, err = p.value(depth + 1)
		}
		if err != nil {
			return nil, err
		}
		if f >= 0 {
			p.spans[f] = [2]int{start, p.i}
		}
		fields = append(fields, field{k, v})
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of object")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			m := make(map[string]any, len(fields))
			for _, f := range fields {
				m[f.k] = f.v // a repeated name keeps the last value, as Jackson
			}
			return m, nil
		default:
			return nil, p.errorf("expected ',' or '}'")
		}
	}
}

func (p *jsonParser) array(depth int) (any, error) {
	p.i++ // [
	p.space()
	if p.i < len(p.b) && p.b[p.i] == ']' {
		p.i++
		return []any{}, nil
	}
	var buf [scratchLen]any
	a := buf[:0]
	for {
		p.space()
		v, err := p.value(depth + 1)
		if err != nil {
			return nil, err
		}
		a = append(a, v)
		p.space()
		if p.i >= len(p.b) {
			return nil, p.errorf("unexpected end of array")
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case ']':
			p.i++
			return append(make([]any, 0, len(a)), a...), nil
		default:
			return nil, p.errorf("expected ',' or ']'")
		}
	}
}

func (p *jsonParser) number() (any, error) {
	lit, err := p.numberText()
	if err != nil {
		return nil, err
	}
	if p.plain {
		return plainNumber(lit), nil
	}
	return json.Number(lit), nil
}

// plainNumber is what the schemaless read makes of a number: integers are
// Jackson's longValue, other numbers float64.
func plainNumber(lit []byte) any {
	if v, ok := smallInt(lit); ok {
		return v
	}
	n := json.Number(lit)
	if isIntegral(n) {
		return javaLong(n)
	}
	f, _ := strconv.ParseFloat(string(n), 64)
	return f
}

// smallInt parses an integer literal of at most 18 digits, which cannot
// overflow, without allocating.
func smallInt(lit []byte) (int64, bool) {
	neg := len(lit) > 0 && lit[0] == '-'
	d := lit
	if neg {
		d = lit[1:]
	}
	if len(d) == 0 || len(d) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// numberText reads a number's literal.
func (p *jsonParser) numberText() ([]byte, error) {
	start := p.i
	if p.b[p.i] == '-' {
		p.i++
	}
	digits := func() int {
		n := 0
		for p.i < len(p.b) && p.b[p.i] >= '0' && p.b[p.i] <= '9' {
			p.i++
			n++
		}
		return n
	}
	if digits() == 0 {
		return nil, p.errorf("expected a digit")
	}
	if p.i < len(p.b) && p.b[p.i] == '.' {
		p.i++
		if digits() == 0 {
			return nil, p.errorf("expected a digit after the decimal point")
		}
	}
	if p.i < len(p.b) && (p.b[p.i] == 'e' || p.b[p.i] == 'E') {
		p.i++
		if p.i < len(p.b) && (p.b[p.i] == '+' || p.b[p.i] == '-') {
			p.i++
		}
		if digits() == 0 {
			return nil, p.errorf("expected a digit in the exponent")
		}
	}
	return p.b[start:p.i], nil
}

func (p *jsonParser) str() (string, error) {
	p.i++ // opening quote
	start := p.i
	// Fast path: no escapes.
	for p.i < len(p.b) {
		c := p.b[p.i]
		if c == '"' {
			s := p.b[start:p.i]
			p.i++
			if !utf8.Valid(s) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			return string(s), nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
		p.i++
	}
	buf := append([]byte(nil), p.b[start:p.i]...)
	for p.i < len(p.b) {
		c := p.b[p.i]
		switch {
		case c == '"':
			p.i++
			if !utf8.Valid(buf) {
				return "", p.errorf("invalid UTF-8 in string")
			}
			return string(buf), nil
		case c < 0x20:
			return "", p.errorf("unescaped control character in string")
		case c != '\\':
			buf = append(buf, c)
			p.i++
			continue
		}
		p.i++
		if p.i >= len(p.b) {
			break
		}
		e := p.b[p.i]
		p.i++
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, err := p.hex4()
			if err != nil {
				return "", err
			}
			if utf16.IsSurrogate(r) {
				// A pair becomes one rune; a lone half is U+FFFD and the
				// escape after it is read on its own.
				pair := utf8.RuneError
				if p.i+1 < len(p.b) && p.b[p.i] == '\\' && p.b[p.i+1] == 'u' {
					save := p.i
					p.i += 2
					r2, err := p.hex4()
					if err != nil {
						return "", err
					}
					if pair = utf16.DecodeRune(r, r2); pair == utf8.RuneError {
						p.i = save
					}
				}
				r = pair
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return "", p.errorf("unrecognized escape \\%c", e)
		}
	}
	return "", p.errorf("unterminated string")
}

func (p *jsonParser) hex4() (rune, error) {
	if p.i+4 > len(p.b) {
		return 0, p.errorf("short \\u escape")
	}
	n, err := strconv.ParseUint(string(p.b[p.i:p.i+4]), 16, 16)
	if err != nil {
		return 0, p.errorf("bad \\u escape")
	}
	p.i += 4
	return rune(n), nil
}

// skip moves past the object or array at p.i by counting brackets outside
// strings. It checks nothing else: see skipEnvelope.
func (p *jsonParser) skip() error {
	depth := 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				p.i++
				return nil
			}
		case '"':
			for p.i++; p.i < len(p.b) && p.b[p.i] != '"'; p.i++ {
				if p.b[p.i] == '\\' {
					p.i++
				}
			}
		}
		p.i++
	}
	return p.errorf("unterminated value")
}
