package convert

import (
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// TestJSONRandomRoundTrip writes random schemas and values, reads them
// back and writes them again: the bytes must not change, in both decimal
// formats and with and without schemas in the message.
func TestJSONRandomRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 8))
	for i := range 400 {
		s := randSchema(r, 0)
		v := randValue(r, s)
		if err := s.Validate(v); err != nil {
			t.Fatalf("generator made an invalid value: %v", err)
		}
		for _, props := range []map[string]string{nil, {"decimal.format": "NUMERIC"}} {
			c := mustJSON(t, props)
			b1, err := c.FromConnect("t", s, v)
			if err != nil {
				t.Fatalf("case %d: write: %v", i, err)
			}
			s2, v2, err := c.ToConnect("t", b1)
			if err != nil {
				t.Fatalf("case %d: read %s: %v", i, b1, err)
			}
			b2, err := c.FromConnect("t", s2, v2)
			if err != nil || string(b1) != string(b2) {
				t.Fatalf("case %d: round trip changed\n%s\n%s (%v)", i, b1, b2, err)
			}
		}
	}
}

func randSchema(r *rand.Rand, depth int) *data.Schema {
	var s *data.Schema
	n := 14
	if depth >= 3 {
		n = 11 // primitives and logical types only
	}
	switch k := r.IntN(n); k {
	case 0, 1, 2, 3, 4, 5, 6, 7, 8:
		s = data.PrimitiveSchema([]data.Type{data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64,
			data.TypeFloat32, data.TypeFloat64, data.TypeBoolean, data.TypeString, data.TypeBytes}[k], false)
	case 9:
		s = data.DecimalSchema(r.IntN(6) - 1).Copy()
	case 10:
		s = []*data.Schema{data.DateSchema, data.TimeSchema, data.TimestampSchema}[r.IntN(3)].Copy()
	case 11:
		s = data.ArrayOf(randSchema(r, depth+1))
	case 12:
		keys := randSchema(r, 3)
		s = data.MapOf(keys, randSchema(r, depth+1))
	default:
		var fs []data.Field
		for j := range r.IntN(4) + 1 {
			fs = append(fs, data.F(fmt.Sprintf("f%d", j), randSchema(r, depth+1)))
		}
		s = data.StructOf(fmt.Sprintf("s%d", depth), fs...)
	}
	s.Optional = r.IntN(3) == 0
	if r.IntN(5) == 0 {
		s.Doc = "doc \"quoted\" é"
	}
	return s
}

func randValue(r *rand.Rand, s *data.Schema) any {
	if s.Optional && r.IntN(4) == 0 {
		return nil
	}
	switch s.Name {
	case data.DecimalName:
		scale, _ := data.DecimalScale(s)
		u := new(big.Int).SetUint64(r.Uint64() >> uint(r.IntN(64)))
		u.Lsh(u, uint(r.IntN(40)))
		if r.IntN(2) == 0 {
			u.Neg(u)
		}
		return data.Decimal{Unscaled: u, Scale: scale}
	case data.DateName:
		return data.DateFromDays(int32(r.IntN(40000) - 20000))
	case data.TimeName:
		tm, _ := data.TimeFromMillis(int32(r.IntN(86400000)))
		return tm
	case data.TimestampName:
		return time.UnixMilli(r.Int64N(1<<45) - 1<<44).UTC()
	}
	switch s.Type {
	case data.TypeInt8:
		return int8(r.Uint32())
	case data.TypeInt16:
		return int16(r.Uint32())
	case data.TypeInt32:
		return int32(r.Uint32())
	case data.TypeInt64:
		return int64(r.Uint64())
	case data.TypeFloat32:
		return math.Float32frombits(r.Uint32()&^(0xff<<23) | uint32(r.IntN(254)+1)<<23)
	case data.TypeFloat64:
		return []float64{r.NormFloat64() * 1e6, math.Inf(1), math.NaN(), 0, -1e-300}[r.IntN(5)]
	case data.TypeBoolean:
		return r.IntN(2) == 0
	case data.TypeString:
		return []string{"", "plain", "q\"\\\n\x01", "é😀", "a/b<c>"}[r.IntN(5)]
	case data.TypeBytes:
		b := make([]byte, r.IntN(5))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case data.TypeArray:
		out := []any{}
		for range r.IntN(3) {
			out = append(out, randValue(r, s.Items))
		}
		return out
	case data.TypeMap:
		if s.Keys.Type == data.TypeString && s.Keys.Name == "" {
			m := map[string]any{}
			for range r.IntN(3) {
				k, _ := randValue(r, s.Keys).(string)
				m[k] = randValue(r, s.Values)
			}
			return m
		}
		m := &data.Map{}
		for range r.IntN(3) {
			k := randValue(r, s.Keys)
			if k == nil {
				continue
			}
			if f, ok := k.(float64); ok && math.IsNaN(f) {
				continue // NaN never equals itself as a key
			}
			m.Put(k, randValue(r, s.Values))
		}
		return m
	}
	st := data.NewStruct(s)
	for _, f := range s.Fields {
		st.MustPut(f.Name, randValue(r, f.Schema))
	}
	return st
}

// randString mixes plain ASCII runs with everything the string writer
// treats specially: quotes, backslashes, control characters, the BMP,
// astral characters, invalid UTF-8 and U+FFFD itself.
func randString(r *rand.Rand) string {
	parts := []string{"a", "plain text ", "\"", "\\", "\n", "\r", "\t", "\b", "\f", "\x00", "\x1f", "\x7f", "/",
		"é", "€", "\u2028", "\uFFFD", "😀", "\U0010FFFF", "\xff", "\xc3", "\xed\xa0\x80", "<>&", " "}
	var b strings.Builder
	for range r.IntN(8) {
		b.WriteString(parts[r.IntN(len(parts))])
	}
	return b.String()
}

// wild replaces some strings in v, map keys included, by randString.
func wild(r *rand.Rand, v any) any {
	switch x := v.(type) {
	case string:
		if r.IntN(2) == 0 {
			return randString(r)
		}
	case []any:
		for i := range x {
			x[i] = wild(r, x[i])
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			if r.IntN(2) == 0 {
				k = randString(r)
			}
			out[k] = wild(r, e)
		}
		return out
	case *data.Map:
		for i := range x.Entries {
			x.Entries[i].Value = wild(r, x.Entries[i].Value)
		}
	case *data.Struct:
		for _, f := range x.Schema().Fields {
			if f.Schema.Name == "" {
				x.MustPut(f.Name, wild(r, x.GetWithoutDefault(f.Name)))
			}
		}
	}
	return v
}

// randSchemaless makes a value without a schema: every Go type the
// converter infers, nested, with awkward floats and strings.
func randSchemaless(r *rand.Rand, depth int) any {
	n := 14
	if depth >= 3 {
		n = 10
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return int64(r.Uint64()) >> r.IntN(64)
	case 2:
		return []any{int8(r.Uint32()), int16(r.Uint32()), int32(r.Uint32())}[r.IntN(3)]
	case 3:
		return []float64{r.NormFloat64() * 1e6, math.Inf(1), math.Inf(-1), math.NaN(), 0, math.Copysign(0, -1), -1e-300,
			1, -3, 1e7, 9999999, 1e7 - 0.5, 123456789012, 0.001, 0.0009999, 1e300, 5e-324, float64(r.IntN(20000000) - 10000000)}[r.IntN(18)]
	case 4:
		return []float32{float32(r.NormFloat64()), 1, 16777216, 1e7, 9999999, float32(math.NaN()), float32(math.Inf(-1))}[r.IntN(7)]
	case 5:
		return r.IntN(2) == 0
	case 6, 7:
		return randString(r)
	case 8:
		b := make([]byte, r.IntN(6))
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		return b
	case 9:
		return []string{"facility", "message", "x"}[r.IntN(3)]
	case 10:
		out := []any{}
		for range r.IntN(4) {
			out = append(out, randSchemaless(r, depth+1))
		}
		return out
	case 11:
		m := &data.Map{}
		for range r.IntN(3) {
			m.Put(int64(r.IntN(5)), randSchemaless(r, depth+1))
		}
		return m
	}
	m := map[string]any{}
	for range r.IntN(40) { // more keys than appendObject keeps on the stack
		k := []string{"k", "a", "b", "A", "", "é", "key with space"}[r.IntN(7)] + strconv.Itoa(r.IntN(50))
		if r.IntN(4) == 0 {
			k = randString(r)
		}
		m[k] = randSchemaless(r, depth+1)
	}
	return m
}
