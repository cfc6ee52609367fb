package convert

import (
	"fmt"
	"math"
	"math/rand/v2"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// The tests here hold the optimized converter to the frozen pre-issue-20
// one (refJSON, json_ref*_test.go): the same bytes, the same values read
// back and the same error text, over random schemas, values and damaged
// messages, in every configuration.

var equivConfigs = []map[string]string{
	{SchemasEnableConfig: "true"},
	{SchemasEnableConfig: "false"},
	{SchemasEnableConfig: "true", DecimalFormatConfig: "NUMERIC"},
	{SchemasEnableConfig: "false", DecimalFormatConfig: "NUMERIC"},
	{SchemasEnableConfig: "true", ReplaceNullWithDefaultConfig: "false"},
	{SchemasEnableConfig: "true", SchemasCacheSizeConfig: "2"},
	{SchemasEnableConfig: "true", SchemasCacheSizeConfig: "0"},
}

// pair is one configuration of both converters; the same instances are
// used for a whole test so their schema caches are warm, as in a worker.
type pair struct {
	props    map[string]string
	old, new jsonImpl
}

func newPairs(t *testing.T) []pair {
	var ps []pair
	for _, props := range equivConfigs {
		im := newImpls(t, props)
		ps = append(ps, pair{props: props, old: im[0].c, new: im[1].c})
	}
	return ps
}

func errText(err error) string {
	if err == nil {
		return "<nil>"
	}
	return err.Error()
}

// checkFrom compares FromConnect and then ToConnect of its output.
func (p pair) checkFrom(t *testing.T, what string, s *data.Schema, v any) []byte {
	t.Helper()
	want, werr := p.old.FromConnect("t", s, v)
	got, gerr := p.new.FromConnect("t", s, v)
	if string(got) != string(want) || errText(gerr) != errText(werr) || (got == nil) != (want == nil) {
		t.Fatalf("%s %v: FromConnect differs\nold %q (%v)\nnew %q (%v)", what, p.props, want, werr, got, gerr)
	}
	if werr == nil {
		p.checkTo(t, what, want)
	}
	return want
}

// checkTo compares ToConnect: the schema, the value (types included) and
// the error text.
func (p pair) checkTo(t *testing.T, what string, b []byte) {
	t.Helper()
	ws, wv, werr := p.old.ToConnect("t", b)
	gs, gv, gerr := p.new.ToConnect("t", b)
	if errText(gerr) != errText(werr) {
		t.Fatalf("%s %v: ToConnect(%q) error differs\nold %v\nnew %v", what, p.props, b, werr, gerr)
	}
	if !ws.Equal(gs) || dump(ws) != dump(gs) {
		t.Fatalf("%s %v: ToConnect(%q) schema differs\nold %v\nnew %v", what, p.props, b, ws, gs)
	}
	if w, g := dump(wv), dump(gv); w != g {
		t.Fatalf("%s %v: ToConnect(%q) value differs\nold %s\nnew %s", what, p.props, b, w, g)
	}
}

// dump renders a Connect value or schema exactly: Go types, float bits,
// struct fields and schemas, map entries in key order.
func dump(v any) string {
	var b strings.Builder
	dumpTo(&b, v)
	return b.String()
}

func dumpTo(b *strings.Builder, v any) {
	switch x := v.(type) {
	case nil:
		b.WriteString("nil")
	case float32:
		fmt.Fprintf(b, "float32(%#x)", math.Float32bits(x))
	case float64:
		fmt.Fprintf(b, "float64(%#x)", math.Float64bits(x))
	case []any:
		b.WriteString("[]any{")
		for _, e := range x {
			dumpTo(b, e)
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteString("map{")
		for _, k := range keys {
			b.WriteString(strconv.Quote(k) + ":")
			dumpTo(b, x[k])
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case *data.Map:
		b.WriteString("Map{")
		for _, e := range x.Entries {
			dumpTo(b, e.Key)
			b.WriteByte(':')
			dumpTo(b, e.Value)
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case *data.Struct:
		b.WriteString("Struct{")
		dumpTo(b, x.Schema())
		for _, f := range x.Schema().Fields {
			b.WriteString(f.Name + "=")
			dumpTo(b, x.GetWithoutDefault(f.Name))
			b.WriteByte(',')
		}
		b.WriteByte('}')
	case *data.Schema:
		if x == nil {
			b.WriteString("schema(nil)")
			return
		}
		fmt.Fprintf(b, "schema(%s,%v,%q,%d,%q,%v,", x.Type, x.Optional, x.Name, x.Version, x.Doc, x.Parameters)
		dumpTo(b, x.Default)
		for _, sub := range []*data.Schema{x.Items, x.Keys, x.Values} {
			if sub != nil {
				dumpTo(b, sub)
			}
		}
		for _, f := range x.Fields {
			fmt.Fprintf(b, "%s#%d:", f.Name, f.Index)
			dumpTo(b, f.Schema)
		}
		b.WriteByte(')')
	case data.Decimal:
		fmt.Fprintf(b, "Decimal(%s,%d)", x.Unscaled, x.Scale)
	case time.Time:
		fmt.Fprintf(b, "time(%s)", x.Format(time.RFC3339Nano))
	default:
		fmt.Fprintf(b, "%T(%#v)", v, v)
	}
}

func TestJSONMatchesReferenceWithSchemas(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 1))
	pairs := newPairs(t)
	for i := range 1500 {
		s := randSchema(r, 0)
		v := wild(r, randValue(r, s))
		if r.IntN(10) == 0 {
			v = nil // a required field's null is an error, an optional's null
		}
		for _, p := range pairs {
			p.checkFrom(t, fmt.Sprintf("case %d", i), s, v)
		}
	}
}

func TestJSONMatchesReferenceSchemaless(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 2))
	pairs := newPairs(t)
	for i := range 1500 {
		v := randSchemaless(r, 0)
		for _, p := range pairs {
			p.checkFrom(t, fmt.Sprintf("case %d", i), nil, v)
		}
	}
	for _, p := range pairs {
		p.checkFrom(t, "syslog", nil, benchSyslogValue())
	}
}

// TestJSONMatchesReferenceDamaged reads valid messages (so their schemas
// are cached) and then damaged copies of them: the fast path that skips a
// known schema must fall back wherever the full parse would fail or read
// differently.
func TestJSONMatchesReferenceDamaged(t *testing.T) {
	r := rand.New(rand.NewPCG(20, 3))
	pairs := newPairs(t)
	cdc := newBenchCDC()
	inserts := []rune(`{}[]",:\ 0-.eEtrunlf"schema"payload"`)
	for i := range 900 {
		var s *data.Schema
		var v any
		switch i % 3 {
		case 0:
			s, v = cdc.env, cdc.event(int64(i), i%2 == 0)
		case 1:
			s = randSchema(r, 0)
			v = randValue(r, s)
		default:
			v = randSchemaless(r, 0)
		}
		for _, p := range pairs {
			msg := p.checkFrom(t, fmt.Sprintf("case %d", i), s, v)
			if msg == nil {
				continue
			}
			for range 8 {
				b := []byte(string(msg))
				switch k := r.IntN(len(b) + 1); r.IntN(5) {
				case 0: // delete a byte
					if k < len(b) {
						b = append(b[:k], b[k+1:]...)
					}
				case 1: // insert a structural character
					b = append(b[:k], append([]byte(string(inserts[r.IntN(len(inserts))])), b[k:]...)...)
				case 2: // truncate
					b = b[:k]
				case 3: // repeat the schema or add a field
					extra := []string{`"schema":null,`, `"schema":{"type":"int32"},`, `"schema":{"type":tru},`, `"x":1,`, `"payload":1,`}[r.IntN(5)]
					if len(b) > 0 && b[0] == '{' {
						b = append([]byte("{"+extra), b[1:]...)
					}
				default: // replace a byte
					if k < len(b) {
						b[k] = byte(inserts[r.IntN(len(inserts))])
					}
				}
				p.checkTo(t, fmt.Sprintf("case %d damaged", i), b)
			}
		}
	}
}

// TestJSONSchemaCacheSameName writes and reads two different schemas with
// the same name through one converter: neither cache may confuse them.
func TestJSONSchemaCacheSameName(t *testing.T) {
	a := data.StructOf("same", data.F("x", data.Int32Schema))
	b := data.StructOf("same", data.F("x", data.StringSchema), data.F("y", data.OptionalInt64Schema))
	c := mustJSON(t, nil)
	for range 3 {
		for _, tc := range []struct {
			s    *data.Schema
			v    *data.Struct
			want string
		}{
			{a, data.NewStruct(a).MustPut("x", int32(1)), `{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"x"}],"optional":false,"name":"same"},"payload":{"x":1}}`},
			{b, data.NewStruct(b).MustPut("x", "1"), `{"schema":{"type":"struct","fields":[{"type":"string","optional":false,"field":"x"},{"type":"int64","optional":true,"field":"y"}],"optional":false,"name":"same"},"payload":{"x":"1","y":null}}`},
		} {
			got, err := c.FromConnect("t", tc.s, tc.v)
			if err != nil || string(got) != tc.want {
				t.Fatalf("wrote %s (%v), want %s", got, err, tc.want)
			}
			s, v, err := c.ToConnect("t", got)
			if err != nil || !s.Equal(tc.s) || !data.ValueEqual(v, tc.v) {
				t.Fatalf("read %v %v (%v), want %v %v", s, v, err, tc.s, tc.v)
			}
		}
	}
}

// TestJSONMatchesReferencePayloads reads hand-made payloads for a known
// schema, aimed at the direct struct read: repeated, unknown, escaped and
// missing field names, integers it must leave to the general path, and
// nulls against defaults.
func TestJSONMatchesReferencePayloads(t *testing.T) {
	inner := data.StructOf("in", data.F("a", data.Int8Schema), data.F("é", data.OptionalStringSchema))
	inner.Optional = true
	def := &data.Schema{Type: data.TypeInt16, Default: int16(7)}
	s := data.StructOf("out", data.F("i", data.Int64Schema), data.F("n", data.OptionalInt32Schema), data.F("d", def),
		data.F("in", inner), data.F("ts", data.TimestampSchema), data.F("arr", data.ArrayOf(inner)))
	schemaJSON := string(mustJSON(t, nil).mustSchemaJSON(t, s))
	payloads := []string{
		`{"i":1,"n":2,"d":3,"in":{"a":4,"é":"x"},"ts":5,"arr":[]}`,
		`{"i":1,"i":2,"ts":0,"arr":[null]}`,
		`{"i":"x","i":2,"ts":0,"arr":[]}`,
		`{"i":2,"i":"x","ts":0,"arr":[]}`,
		`{"i":1,"zz":{"deep":[1,2,{"x":null}]},"ts":0,"arr":[]}`,
		`{"\u0069":1,"in":{"\u00e9":"y","a":-0},"ts":0,"arr":[]}`,
		`{ "i" : 9223372036854775807 , "n" : 1e3, "d" : 2.9, "ts" : -1 , "arr" : [ { "a" : 300 } ] }`,
		`{"i":123456789012345678901234,"n":-2147483649,"d":null,"ts":1.5e3,"arr":[]}`,
		`{"i":1,"ts":0}`,
		`{"i":9999999999999999999,"n":-999999999999999999,"ts":99999999999999999,"arr":[]}`,
		`{"i":-9223372036854775808,"n":000000000000000000001,"ts":0,"arr":[]}`,
		`{"i":1,"ts":0,"arr":[],"in":null}`,
		`{"i":null,"ts":0,"arr":[]}`,
		`{"i":1,"ts":0,"arr":[],"in":{"a":1,"a":2}}`,
		`{"i":1,"ts":0,"arr":[],"in":{"a":1,"é":"\xff"}}`,
		`{"i":1,"ts":0,"arr":[],"in":{"a":01}}`,
		`{"i":1,"ts":0,"arr":[],"in":{"a":1}`,
		`{"i":1,"ts":0,"arr":[],"in":{"a":1},}`,
		`{"i":1,"ts":0,"arr":[],"in":[]}`,
		`{}`,
		`[]`,
		`{"i":1 "ts":0}`,
	}
	for _, p := range newPairs(t) {
		if p.props[SchemasEnableConfig] != "true" {
			continue
		}
		for _, pl := range payloads {
			for _, msg := range []string{
				`{"schema":` + schemaJSON + `,"payload":` + pl + `}`,
				`{"payload":` + pl + `,"schema":` + schemaJSON + `}`,
				`{"schema":null,"payload":` + pl + `}`,
			} {
				// Twice: the first read caches the schema, the second
				// takes the direct path.
				p.checkTo(t, "payload", []byte(msg))
				p.checkTo(t, "payload", []byte(msg))
			}
		}
	}
}

func (c *JSONConverter) mustSchemaJSON(t *testing.T, s *data.Schema) []byte {
	t.Helper()
	b, err := c.schemaJSON(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestJSONConcurrent shares one converter (pooled buffers, both schema
// caches, kept small so they start over) among goroutines writing and
// reading different schemas; run with -race.
func TestJSONConcurrent(t *testing.T) {
	c := mustJSON(t, map[string]string{SchemasCacheSizeConfig: "3"})
	cdc := newBenchCDC()
	r := rand.New(rand.NewPCG(20, 5))
	type job struct {
		s    *data.Schema
		v    any
		want []byte
	}
	var jobs []job
	for i := range 12 {
		s, v := cdc.env, any(cdc.event(int64(i), i%2 == 0))
		if i%3 != 0 {
			s = randSchema(r, 0)
			v = randValue(r, s)
		}
		want, err := c.FromConnect("t", s, v)
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, job{s, v, want})
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			var err error
			for i := range 300 {
				j := jobs[(i*7+g)%len(jobs)]
				var b []byte
				if b, err = c.FromConnect("t", j.s, j.v); err == nil && string(b) != string(j.want) {
					err = fmt.Errorf("wrote %s, want %s", b, j.want)
				}
				if err != nil {
					break
				}
				var s *data.Schema
				var v any
				if s, v, err = c.ToConnect("t", b); err == nil {
					if b, err = c.FromConnect("t", s, v); err == nil && string(b) != string(j.want) {
						err = fmt.Errorf("read back as %s, want %s", b, j.want)
					}
				}
				if err != nil {
					break
				}
			}
			done <- err
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}
