package convert

import (
	"errors"
	"unicode/utf8"

	"github.com/sluice-io/sluice/connect/data"
)

// This file reads a payload straight into Connect values when its schema
// is known, without the intermediate tree of maps and json.Numbers that
// ToConnect's general path builds and then converts. It handles the
// common shapes (structs, integers, schemaless values) itself and hands
// every other value to the general conversion (toConnect) on its parsed
// node, so the two cannot disagree on a successful read. Any error makes
// the caller start over on the general path, which words it.

// errDirect is a failure of the direct read; its text is never shown.
var errDirect = errors.New("direct read failed")

// decodeDirect reads the payload at b[span] with schema s. It reports
// false unless a strict parse from the span's start ends exactly at its
// end (the span came from a lax scan) and converts without error.
func (c *JSONConverter) decodeDirect(b []byte, span [2]int, s *data.Schema) (any, bool) {
	p := &jsonParser{b: b, i: span[0]}
	v, err := c.decode(p, s, 1)
	if err != nil || p.i != span[1] {
		return nil, false
	}
	return v, true
}

func isLogicalName(name string) bool {
	switch name {
	case data.DecimalName, data.DateName, data.TimeName, data.TimestampName:
		return true
	}
	return false
}

// decode reads one value at depth (as jsonParser.value counts it) and
// converts it as toConnect(s, node, true) would.
func (c *JSONConverter) decode(p *jsonParser, s *data.Schema, depth int) (any, error) {
	if depth > maxDepth || p.i >= len(p.b) {
		return nil, errDirect
	}
	if s == nil {
		p.plain = true // schemaless: the plain tree is the value
		v, err := p.value(depth)
		p.plain = false
		return v, err
	}
	switch ch := p.b[p.i]; {
	case ch == '{' && s.Type == data.TypeStruct && !isLogicalName(s.Name):
		return c.decodeStruct(p, s, depth)
	case (ch == '-' || ch >= '0' && ch <= '9') && !isLogicalName(s.Name):
		switch s.Type {
		case data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64:
			start := p.i
			lit, err := p.numberText()
			if err != nil {
				return nil, err
			}
			l, ok := smallInt(lit)
			if !ok {
				p.i = start // fraction, exponent or long: the general way
				break
			}
			switch s.Type {
			case data.TypeInt8:
				return int8(l), nil
			case data.TypeInt16:
				return int16(l), nil
			case data.TypeInt32:
				return int32(l), nil
			}
			return l, nil
		}
	}
	node, err := p.value(depth)
	if err != nil {
		return nil, err
	}
	return c.toConnect(s, node, true)
}

// maxDirectFields bounds the structs read directly (fields seen are kept
// in a uint64).
const maxDirectFields = 64

// decodeStruct reads a JSON object as a struct of schema s: each field's
// value converted with its schema (the last of repeated names winning),
// missing ones as a null, unknown names parsed and dropped, as toConnect
// does with the object's map.
func (c *JSONConverter) decodeStruct(p *jsonParser, s *data.Schema, depth int) (any, error) {
	n := len(s.Fields)
	if n > maxDirectFields {
		node, err := p.value(depth)
		if err != nil {
			return nil, err
		}
		return c.toConnect(s, node, true)
	}
	var buf [16]any
	var vals []any
	if n <= len(buf) {
		vals = buf[:n]
	} else {
		vals = make([]any, n)
	}
	var seen uint64
	p.i++ // {
	p.space()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
	} else {
		for {
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != '"' {
				return nil, errDirect
			}
			k, err := p.key()
			if err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.b) || p.b[p.i] != ':' {
				return nil, errDirect
			}
			p.i++
			p.space()
			if f := fieldIndex(s, k); f >= 0 {
				if vals[f], err = c.decode(p, s.Fields[f].Schema, depth+1); err != nil {
					return nil, err
				}
				seen |= 1 << f
			} else if _, err := p.value(depth + 1); err != nil {
				return nil, err
			}
			p.space()
			if p.i >= len(p.b) {
				return nil, errDirect
			}
			if p.b[p.i] == '}' {
				p.i++
				break
			}
			if p.b[p.i] != ',' {
				return nil, errDirect
			}
			p.i++
		}
	}
	st := data.NewStruct(s)
	for i, f := range s.Fields {
		v := vals[i]
		if seen&(1<<i) == 0 {
			var err error
			if v, err = c.toConnect(f.Schema, nil, true); err != nil {
				return nil, err
			}
		}
		if err := st.Put(f.Name, v); err != nil {
			return nil, err
		}
	}
	return st, nil
}

// fieldIndex returns the position in s.Fields of the field named k, or -1.
func fieldIndex(s *data.Schema, k []byte) int {
	for i := range s.Fields {
		if s.Fields[i].Name == string(k) {
			return i
		}
	}
	return -1
}

// key reads an object's field name as str does, without allocating when
// it has no escapes; the result may alias p.b.
func (p *jsonParser) key() ([]byte, error) {
	for j := p.i + 1; j < len(p.b); j++ {
		c := p.b[j]
		if c == '"' {
			k := p.b[p.i+1 : j]
			if !utf8.Valid(k) {
				break
			}
			p.i = j + 1
			return k, nil
		}
		if c == '\\' || c < 0x20 {
			break
		}
	}
	k, err := p.str()
	return []byte(k), err
}
