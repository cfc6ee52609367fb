package convert

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

func mustJSON(t *testing.T, props map[string]string) *JSONConverter {
	t.Helper()
	c, err := New("JsonConverter", props, false)
	if err != nil {
		t.Fatal(err)
	}
	return c.(*JSONConverter)
}

var person = data.StructOf("com.example.Person", data.F("id", data.Int32Schema), data.F("name", data.OptionalStringSchema))

// TestJSONFromConnectGolden pins the exact bytes Kafka's JsonConverter
// writes (key order, number and bytes formats), so consumers that compare
// or hash messages see no difference between Sluice and Kafka Connect.
func TestJSONFromConnectGolden(t *testing.T) {
	withDefault := &data.Schema{Type: data.TypeString, Optional: true, Default: "default"}
	tests := []struct {
		name  string
		props map[string]string
		s     *data.Schema
		v     any
		want  string
	}{
		{"quickstart line", nil, data.StringSchema, "foo", `{"schema":{"type":"string","optional":false},"payload":"foo"}`},
		{"struct", nil, person, data.NewStruct(person).MustPut("id", int32(1)).MustPut("name", "ann"),
			`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"com.example.Person"},"payload":{"id":1,"name":"ann"}}`},
		{"struct null optional field", nil, person, data.NewStruct(person).MustPut("id", int32(2)),
			`{"schema":{"type":"struct","fields":[{"type":"int32","optional":false,"field":"id"},{"type":"string","optional":true,"field":"name"}],"optional":false,"name":"com.example.Person"},"payload":{"id":2,"name":null}}`},
		{"schemaless map in envelope", nil, nil, map[string]any{"a": int64(1), "b": []any{true, nil}}, `{"schema":null,"payload":{"a":1,"b":[true,null]}}`},
		{"schemas disabled", map[string]string{"schemas.enable": "false"}, person, data.NewStruct(person).MustPut("id", int32(1)), `{"id":1,"name":null}`},
		{"decimal base64", nil, data.DecimalSchema(2), data.NewDecimal(156, 2),
			`{"schema":{"type":"bytes","optional":false,"name":"org.apache.kafka.connect.data.Decimal","version":1,"parameters":{"scale":"2"}},"payload":"AJw="}`},
		{"decimal numeric keeps trailing zeros", map[string]string{"decimal.format": "numeric", "schemas.enable": "false"}, data.DecimalSchema(4), data.NewDecimal(15600, 4), `1.5600`},
		{"decimal numeric tiny", map[string]string{"decimal.format": "NUMERIC", "schemas.enable": "false"}, data.DecimalSchema(9), data.NewDecimal(1, 9), `1E-9`},
		{"int-keyed map", nil, data.MapOf(data.Int32Schema, data.StringSchema), &data.Map{Entries: []data.MapEntry{{Key: int32(1), Value: "a"}, {Key: int32(2), Value: "b"}}},
			`{"schema":{"type":"map","keys":{"type":"int32","optional":false},"values":{"type":"string","optional":false},"optional":false},"payload":[[1,"a"],[2,"b"]]}`},
		{"array", map[string]string{"schemas.enable": "false"}, data.ArrayOf(data.Int64Schema), []any{int64(1), int64(-2)}, `[1,-2]`},
		{"float32", map[string]string{"schemas.enable": "false"}, data.Float32Schema, float32(12.34), `12.34`},
		{"float64 whole", map[string]string{"schemas.enable": "false"}, data.Float64Schema, 100.0, `100.0`},
		{"float64 large", map[string]string{"schemas.enable": "false"}, data.Float64Schema, 1e20, `1.0E20`},
		{"float64 small", map[string]string{"schemas.enable": "false"}, data.Float64Schema, 0.0001, `1.0E-4`},
		{"float64 nan", map[string]string{"schemas.enable": "false"}, data.Float64Schema, math.NaN(), `"NaN"`},
		{"bytes", map[string]string{"schemas.enable": "false"}, data.BytesSchema, []byte("hi!"), `"aGkh"`},
		{"escapes as jackson", map[string]string{"schemas.enable": "false"}, data.StringSchema, "a\"b\\c\n\x01é/<", `"a\"b\\c\n\u0001é/<"`},
		{"date", nil, data.DateSchema, time.Date(1970, 1, 11, 0, 0, 0, 0, time.UTC),
			`{"schema":{"type":"int32","optional":false,"name":"org.apache.kafka.connect.data.Date","version":1},"payload":10}`},
		{"timestamp", map[string]string{"schemas.enable": "false"}, data.TimestampSchema, time.UnixMilli(1700000000123), `1700000000123`},
		{"null replaced by default", nil, withDefault, nil, `{"schema":{"type":"string","optional":true,"default":"default"},"payload":"default"}`},
		{"null kept without replace", map[string]string{"replace.null.with.default": "false"}, withDefault, nil, `{"schema":{"type":"string","optional":true,"default":"default"},"payload":null}`},
		{"schema metadata", nil, &data.Schema{Type: data.TypeBoolean, Name: "bool", Version: 3, Doc: "the documentation", Parameters: map[string]string{"foo": "bar"}}, true,
			`{"schema":{"type":"boolean","optional":false,"name":"bool","version":3,"doc":"the documentation","parameters":{"foo":"bar"}},"payload":true}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mustJSON(t, tc.props).FromConnect("t", tc.s, tc.v)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != tc.want {
				t.Fatalf("got  %s\nwant %s", got, tc.want)
			}
		})
	}
}

func TestJSONTombstoneAndErrors(t *testing.T) {
	c := mustJSON(t, nil)
	if b, err := c.FromConnect("t", nil, nil); b != nil || err != nil {
		t.Fatalf("tombstone: %q %v", b, err)
	}
	if s, v, err := c.ToConnect("t", nil); s != nil || v != nil || err != nil {
		t.Fatalf("tombstone read: %v %v %v", s, v, err)
	}
	if _, err := c.FromConnect("t", data.StringSchema, nil); err == nil {
		t.Fatal("null for a required schema accepted")
	}
	if _, err := c.FromConnect("t", data.Int32Schema, "x"); err == nil {
		t.Fatal("string for int32 accepted")
	}
	_, _, err := c.ToConnect("t", []byte(`{"a":1}`))
	if err == nil || !strings.Contains(err.Error(), "set schemas.enable=false") {
		t.Fatalf("plain JSON with schemas.enable: %v", err)
	}
	for _, bad := range []map[string]string{{"schemas.enable": "yes"}, {"decimal.format": "HEX"}} {
		if _, err := New(JSONConverterClass, bad, false); err == nil {
			t.Errorf("config %v accepted", bad)
		}
	}
}

func TestJSONToConnect(t *testing.T) {
	c := mustJSON(t, nil)
	tests := []struct {
		in    string
		s     *data.Schema
		v     any
		props map[string]string
	}{
		{`{ "schema": { "type": "boolean", "optional": true }, "payload": null }`, data.OptionalBooleanSchema, nil, nil},
		{`{ "schema": { "type": "int8" }, "payload": 12 }`, data.Int8Schema, int8(12), nil},
		{`{ "schema": { "type": "int64" }, "payload": 4398046511104 }`, data.Int64Schema, int64(4398046511104), nil},
		{`{ "schema": { "type": "float" }, "payload": 12.34 }`, data.Float32Schema, float32(12.34), nil},
		{`{ "schema": { "type": "bytes" }, "payload": "Zm9v" }`, data.BytesSchema, []byte("foo"), nil},
		{`{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "2" } }, "payload": "AJw=" }`,
			data.DecimalSchema(2), data.NewDecimal(156, 2), nil},
		{`{ "schema": { "type": "bytes", "name": "org.apache.kafka.connect.data.Decimal", "version": 1, "parameters": { "scale": "2" } }, "payload": 1.56 }`,
			data.DecimalSchema(2), data.NewDecimal(156, 2), nil},
		{`{ "schema": { "type": "int32", "name": "org.apache.kafka.connect.data.Date", "version": 1 }, "payload": 10 }`,
			data.DateSchema, time.Date(1970, 1, 11, 0, 0, 0, 0, time.UTC), nil},
		{`{"schema":{"type":"map","keys":{"type":"int32"},"values":{"type":"string"}},"payload":[[1,"a"]]}`,
			data.MapOf(data.Int32Schema, data.StringSchema), &data.Map{Entries: []data.MapEntry{{Key: int32(1), Value: "a"}}}, nil},
		{`{"a":1,"b":1.5,"c":[true,null],"d":{"e":"f"}}`, nil,
			map[string]any{"a": int64(1), "b": 1.5, "c": []any{true, nil}, "d": map[string]any{"e": "f"}}, map[string]string{"schemas.enable": "false"}},
	}
	for _, tc := range tests {
		conv := c
		if tc.props != nil {
			conv = mustJSON(t, tc.props)
		}
		s, v, err := conv.ToConnect("t", []byte(tc.in))
		if err != nil {
			t.Errorf("%s: %v", tc.in, err)
			continue
		}
		if !s.Equal(tc.s) || !data.ValueEqual(v, tc.v) {
			t.Errorf("%s:\n got %v %#v\nwant %v %#v", tc.in, s, v, tc.s, tc.v)
		}
	}
}

// TestJSONRoundTrip checks that what FromConnect writes ToConnect reads
// back to an equal schema and value, including nested and logical types.
func TestJSONRoundTrip(t *testing.T) {
	inner := data.StructOf("inner", data.F("when", data.TimestampSchema.AsOptional()), data.F("amount", data.DecimalSchema(3)))
	outer := data.StructOf("outer",
		data.F("tags", data.ArrayOf(data.StringSchema)),
		data.F("scores", data.MapOf(data.StringSchema, data.Float64Schema)),
		data.F("byid", data.MapOf(data.Int64Schema, inner)),
		data.F("blob", data.OptionalBytesSchema),
		data.F("n", &data.Schema{Type: data.TypeInt16, Optional: true, Default: int16(7)}),
	)
	in := data.NewStruct(inner).MustPut("when", time.UnixMilli(1234).UTC()).MustPut("amount", data.NewDecimal(-12345, 3))
	v := data.NewStruct(outer).
		MustPut("tags", []any{"a", "b"}).
		MustPut("scores", map[string]any{"x": 1.5}).
		MustPut("byid", &data.Map{Entries: []data.MapEntry{{Key: int64(9), Value: in}}}).
		MustPut("blob", []byte{0, 1, 2}).
		MustPut("n", int16(3))
	for _, format := range []string{"BASE64", "NUMERIC"} {
		c := mustJSON(t, map[string]string{"decimal.format": format})
		b, err := c.FromConnect("t", outer, v)
		if err != nil {
			t.Fatal(err)
		}
		s, got, err := c.ToConnect("t", b)
		if err != nil {
			t.Fatalf("%s: %v\n%s", format, err, b)
		}
		if !s.Equal(outer) {
			t.Fatalf("%s: schema %v differs after round trip\n%s", format, s, b)
		}
		// The value's struct schemas are the parsed ones; compare by
		// re-serializing, which covers every field.
		again, err := c.FromConnect("t", s, got)
		if err != nil || string(again) != string(b) {
			t.Fatalf("%s: round trip differs\n%s\n%s (%v)", format, b, again, err)
		}
	}
}

func TestParseJSONAsJackson(t *testing.T) {
	c := mustJSON(t, nil)
	// Kafka's JsonDeserializer allows leading zeros.
	s, v, err := c.ToConnect("t", []byte(`{ "schema": { "type": "int32" }, "payload": 000012345 }`))
	if err != nil || !s.Equal(data.Int32Schema) || v != int32(12345) {
		t.Fatalf("leading zeros: %v %v %v", s, v, err)
	}
	plain := mustJSON(t, map[string]string{"schemas.enable": "false"})
	for in, want := range map[string]any{
		`"a\"b\\c\/\n\u00e9\ud83d\ude00"`: "a\"b\\c/\né😀",
		`[1, -2.5e3, true, null, {}]`:     []any{int64(1), -2500.0, true, nil, map[string]any{}},
		`{"a":1,"a":2} trailing`:          map[string]any{"a": int64(2)},
		``:                                nil,
	} {
		_, got, err := plain.ToConnect("t", []byte(in))
		if err != nil || !data.ValueEqual(got, want) {
			t.Errorf("%s: %#v %v, want %#v", in, got, err, want)
		}
	}
	for _, bad := range []string{`{"a":}`, `[1,]`, `"x`, "\"\x01\"", `NaN`, `{"a" 1}`, `-`, `1.`, `"\q"`, "\"\xff\""} {
		if _, _, err := plain.ToConnect("t", []byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func BenchmarkJSONRoundTrip(b *testing.B) {
	c := &JSONConverter{}
	if err := c.Configure(nil, false); err != nil {
		b.Fatal(err)
	}
	v := data.NewStruct(person).MustPut("id", int32(1)).MustPut("name", "a line of text of typical length for a log record")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		raw, err := c.FromConnect("t", person, v)
		if err != nil {
			b.Fatal(err)
		}
		if _, _, err := c.ToConnect("t", raw); err != nil {
			b.Fatal(err)
		}
	}
}

// TestJSONSchemaCache checks that records sharing a schema share one
// parsed *Schema (SMTs key their own caches on it) and that a cached
// written schema is the same text.
func TestJSONSchemaCache(t *testing.T) {
	c := mustJSON(t, nil)
	v := data.NewStruct(person).MustPut("id", int32(1))
	a, _ := c.FromConnect("t", person, v)
	b, _ := c.FromConnect("t", person, v)
	if string(a) != string(b) {
		t.Fatalf("cached schema wrote %s then %s", a, b)
	}
	s1, _, err1 := c.ToConnect("t", a)
	s2, _, err2 := c.ToConnect("t", []byte(strings.Replace(string(a), `"id":1`, `"id":2`, 1)))
	if err1 != nil || err2 != nil || s1 != s2 {
		t.Fatalf("same schema text parsed twice: %p %p %v %v", s1, s2, err1, err2)
	}
	off := mustJSON(t, map[string]string{"schemas.cache.size": "0"})
	s3, _, _ := off.ToConnect("t", a)
	s4, _, _ := off.ToConnect("t", a)
	if s3 == s4 || !s3.Equal(s4) {
		t.Fatal("schemas.cache.size=0 still cached, or parsed differently")
	}
}
