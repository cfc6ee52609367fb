package connectv1_test

import (
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// allTypesSchema has a field of every Connect type, required and
// optional, logical types, nested structs, arrays and maps of either key
// kind, and every schema attribute (name, version, doc, parameters,
// defaults of primitives and of an array).
func allTypesSchema() *data.Schema {
	inner := data.StructOf("inner", data.F("n", data.Int32Schema), data.F("s", data.OptionalStringSchema))
	inner.Optional = true
	enum := &data.Schema{Type: data.TypeString, Optional: true, Name: "io.debezium.data.Enum", Version: 1,
		Doc: "an enum", Parameters: map[string]string{"allowed": "a,b", "z": "", "a": "1"}, Default: "a"}
	fields := []data.Field{
		data.F("i8", data.Int8Schema), data.F("i16", data.Int16Schema), data.F("i32", data.Int32Schema),
		data.F("i64", data.Int64Schema), data.F("f32", data.Float32Schema), data.F("f64", data.Float64Schema),
		data.F("bool", data.BooleanSchema), data.F("str", data.StringSchema), data.F("bytes", data.BytesSchema),
		data.F("oi8", data.OptionalInt8Schema), data.F("oi16", data.OptionalInt16Schema),
		data.F("oi32", data.OptionalInt32Schema), data.F("oi64", data.OptionalInt64Schema),
		data.F("of32", data.OptionalFloat32Schema), data.F("of64", data.OptionalFloat64Schema),
		data.F("obool", data.OptionalBooleanSchema), data.F("ostr", data.OptionalStringSchema),
		data.F("obytes", data.OptionalBytesSchema),
		data.F("decimal", data.DecimalSchema(2)), data.F("odecimal", data.DecimalSchema(-3).AsOptional()),
		data.F("date", data.DateSchema), data.F("time", data.TimeSchema), data.F("ts", data.TimestampSchema),
		data.F("ots", data.TimestampSchema.AsOptional()),
		data.F("enum", enum), data.F("withDefault", &data.Schema{Type: data.TypeInt64, Default: int64(42), Doc: "d"}),
		data.F("array", data.ArrayOf(data.OptionalStringSchema)),
		data.F("arrayOfStructs", data.ArrayOf(inner)),
		data.F("stringMap", data.MapOf(data.StringSchema, data.OptionalInt64Schema)),
		data.F("intMap", data.MapOf(data.Int32Schema, data.ArrayOf(data.Float64Schema))),
		data.F("namedKeyMap", data.MapOf(&data.Schema{Type: data.TypeString, Name: "k"}, data.BooleanSchema)),
		data.F("inner", inner),
		// A struct default would be a struct of its own schema, which
		// Schema.Equal (as Kafka's equals) cannot compare: arrays instead.
		data.F("arrayWithDefault", &data.Schema{Type: data.TypeArray, Items: data.Int32Schema, Optional: true,
			Default: []any{int32(1), int32(2)}}),
		data.F("requiredUnset", data.StringSchema),
	}
	s := data.StructOf("all.Types", fields...)
	s.Version, s.Doc, s.Parameters = 7, "every type", map[string]string{"p": "q"}
	return s
}

func allTypesValue(s *data.Schema, i int) *data.Struct {
	inner := s.Field("inner").Schema
	st := data.NewStruct(s).
		MustPut("i8", int8(-128+i)).MustPut("i16", int16(-300*i)).MustPut("i32", int32(1<<30+i)).
		MustPut("i64", int64(-1<<62+i)).MustPut("f32", float32(1.5)*float32(i)).MustPut("f64", -2.25e300).
		MustPut("bool", i%2 == 0).MustPut("str", "ünïcode "+strconv.Itoa(i)).MustPut("bytes", []byte{0, 255, byte(i)}).
		MustPut("decimal", data.NewDecimal(int64(-12345+i), 2)).
		MustPut("date", data.DateFromDays(int32(19000+i))).
		MustPut("time", time.UnixMilli(int64(3_600_000+i)).UTC()).
		MustPut("ts", time.UnixMilli(1_700_000_000_000+int64(i)).UTC()).
		MustPut("array", []any{"a", nil, ""}).
		MustPut("arrayOfStructs", []any{data.NewStruct(inner).MustPut("n", int32(i)), nil}).
		MustPut("stringMap", map[string]any{"x": int64(i), "y": nil}).
		MustPut("intMap", &data.Map{Entries: []data.MapEntry{{Key: int32(3), Value: []any{1.5}}, {Key: int32(-1), Value: []any{}}}}).
		MustPut("namedKeyMap", &data.Map{Entries: []data.MapEntry{{Key: "k1", Value: true}}}).
		MustPut("inner", data.NewStruct(inner).MustPut("n", int32(7)).MustPut("s", "x"))
	if i%2 == 1 { // the optional half set, the other half null
		st.MustPut("oi8", int8(1)).MustPut("oi16", int16(2)).MustPut("oi32", int32(3)).MustPut("oi64", int64(4)).
			MustPut("of32", float32(5)).MustPut("of64", 6.0).MustPut("obool", false).MustPut("ostr", "").
			MustPut("obytes", []byte{}).MustPut("odecimal", data.NewDecimal(9, -3)).
			MustPut("ots", time.UnixMilli(-1).UTC()).MustPut("enum", "b").MustPut("withDefault", int64(0)).
			MustPut("arrayWithDefault", []any{})
	}
	return st
}

// schemaRecords are sink records under schemas: the all-types struct as
// value, a struct key, schema'd primitives and logical values at the top
// level and in headers, a null value under a schema (a tombstone), and
// plain raw and schemaless records between them.
func schemaRecords() []*data.Record {
	s := allTypesSchema()
	key := data.StructOf("k", data.F("id", data.Int64Schema))
	var recs []*data.Record
	for i := range 6 {
		recs = append(recs, &data.Record{Topic: "db.public.t", Partition: int32(i / 3), KafkaOffset: int64(100 + i),
			Timestamp: int64(i), KeySchema: key, Key: data.NewStruct(key).MustPut("id", int64(i)),
			ValueSchema: s, Value: allTypesValue(s, i), OriginalTopic: "db.public.t", OriginalPartition: int32(i / 3),
			OriginalOffset: int64(100 + i),
			Headers:        []data.Header{{Key: "h", Schema: data.Int32Schema, Value: int32(i)}, {Key: "raw", Value: []byte("r")}}})
	}
	return append(recs,
		&data.Record{Topic: "db.public.t", Partition: 1, KafkaOffset: 200, KeySchema: key,
			Key: data.NewStruct(key).MustPut("id", int64(9)), ValueSchema: s, Value: nil, OriginalTopic: "x"},
		&data.Record{Topic: "other", Partition: -1, Timestamp: -1, KeySchema: data.OptionalInt64Schema, Key: nil,
			ValueSchema: data.TimestampSchema, Value: time.UnixMilli(5).UTC(),
			Headers: []data.Header{{Key: "d", Schema: data.DecimalSchema(0), Value: data.NewDecimal(-1, 0)},
				{Key: "m", Schema: data.MapOf(data.StringSchema, data.StringSchema), Value: map[string]any{}}}},
		&data.Record{Topic: "other", Partition: -1, Timestamp: -1, KeySchema: data.StringSchema, Key: "plain",
			Value: []byte("raw")},
		&data.Record{Topic: "other", Partition: -1, Timestamp: -1, Value: map[string]any{"schemaless": []any{int64(1)}}},
		&data.Record{Topic: "other", Partition: -1, Timestamp: -1,
			ValueSchema: &data.Schema{Type: data.TypeBytes, Doc: "raw with a doc"}, Value: []byte(nil)},
		&data.Record{Topic: "other", Partition: -1, Timestamp: -1,
			ValueSchema: data.ArrayOf(data.ArrayOf(data.Int8Schema)), Value: []any{[]any{int8(1)}, []any{}}},
	)
}

// sinkViaMessages is what r decodes to sent as a SinkRecord message.
func sinkViaMessages(t testing.TB, r *data.Record) *data.Record {
	t.Helper()
	p, err := connectv1.SinkRecordToProto(r)
	if err != nil {
		t.Fatalf("SinkRecordToProto: %v", err)
	}
	b, err := proto.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q connectv1.SinkRecord
	if err := proto.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	back, err := connectv1.SinkRecordFromProto(&q)
	if err != nil {
		t.Fatalf("SinkRecordFromProto: %v", err)
	}
	return back
}

// checkSchemasRoundTrip packs recs in version 3 and checks every record
// decodes deep-equal to the original (data.ValueEqual, Schema.Equal) and
// to what messages decode it to, field for field (reflect.DeepEqual): a
// converter cannot tell which way a batch came.
func checkSchemasRoundTrip(t *testing.T, recs []*data.Record) []*data.Record {
	t.Helper()
	b, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(recs) {
		t.Fatalf("%d records back, want %d", len(got), len(recs))
	}
	for i, r := range recs {
		g := got[i]
		if !r.KeySchema.Equal(g.KeySchema) || !r.ValueSchema.Equal(g.ValueSchema) ||
			!data.ValueEqual(r.Key, g.Key) || !data.ValueEqual(r.Value, g.Value) {
			t.Fatalf("record %d: key %v=%v value %v=%v, want %v=%v %v=%v", i, g.KeySchema, g.Key, g.ValueSchema, g.Value,
				r.KeySchema, r.Key, r.ValueSchema, r.Value)
		}
		for j, h := range r.Headers {
			if gh := g.Headers[j]; gh.Key != h.Key || !h.Schema.Equal(gh.Schema) || !data.ValueEqual(h.Value, gh.Value) {
				t.Fatalf("record %d header %d: %+v, want %+v", i, j, gh, h)
			}
		}
		if want := sinkViaMessages(t, r); !reflect.DeepEqual(want, g) {
			wv, gv := reflect.ValueOf(want).Elem(), reflect.ValueOf(g).Elem()
			for f := range wv.NumField() {
				if !reflect.DeepEqual(wv.Field(f).Interface(), gv.Field(f).Interface()) {
					t.Fatalf("record %d: %s differs from messages:\npacked   %#v\nmessages %#v", i, wv.Type().Field(f).Name,
						gv.Field(f).Interface(), wv.Field(f).Interface())
				}
			}
		}
	}
	return got
}

func TestPackedSchemasDecodeAsMessagesDo(t *testing.T) {
	recs := schemaRecords()
	got := checkSchemasRoundTrip(t, recs)
	// One schema per batch: records naming the same schema share the
	// decoded one.
	if got[0].ValueSchema != got[5].ValueSchema || got[0].KeySchema != got[1].KeySchema {
		t.Fatal("records with one schema decoded to separate schemas")
	}
}

// Randomly built schemas and values, null anywhere optional allows.
func TestPackedSchemasRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	r := rand.New(rand.NewPCG(seed, 3))
	for round := range 300 {
		s := randomSchema(r, 0)
		recs := make([]*data.Record, 1+r.IntN(4))
		for i := range recs {
			recs[i] = &data.Record{Topic: "t", KafkaOffset: int64(i), ValueSchema: s, Value: randomValue(r, s, 0),
				OriginalTopic: "t", OriginalOffset: int64(i)}
		}
		t.Run(strconv.Itoa(round), func(t *testing.T) {
			defer func() {
				if t.Failed() {
					t.Logf("seed %d", seed)
				}
			}()
			checkSchemasRoundTrip(t, recs)
		})
	}
}

var primitives = []*data.Schema{data.Int8Schema, data.Int16Schema, data.Int32Schema, data.Int64Schema,
	data.Float32Schema, data.Float64Schema, data.BooleanSchema, data.StringSchema, data.BytesSchema,
	data.DecimalSchema(4), data.DateSchema, data.TimeSchema, data.TimestampSchema}

func randomSchema(r *rand.Rand, depth int) *data.Schema {
	var s *data.Schema
	switch n := r.IntN(16); {
	case depth > 3 || n < 10:
		s = primitives[r.IntN(len(primitives))].Copy()
	case n < 12:
		s = data.ArrayOf(randomSchema(r, depth+1))
	case n < 14:
		k := data.StringSchema
		if r.IntN(2) == 0 {
			k = data.Int16Schema
		}
		s = data.MapOf(k, randomSchema(r, depth+1))
	default:
		fs := make([]data.Field, r.IntN(12))
		for i := range fs {
			fs[i] = data.F("f"+strconv.Itoa(i), randomSchema(r, depth+1))
		}
		s = data.StructOf("s"+strconv.Itoa(depth), fs...)
	}
	s.Optional = r.IntN(2) == 0
	if r.IntN(4) == 0 {
		s.Doc = "doc"
	}
	return s
}

func randomValue(r *rand.Rand, s *data.Schema, depth int) any {
	if s.Optional && r.IntN(3) == 0 {
		return nil
	}
	switch s.Name {
	case data.DecimalName:
		return data.NewDecimal(int64(r.Uint64()), 4)
	case data.DateName:
		return data.DateFromDays(int32(r.IntN(100000)))
	case data.TimeName:
		return time.UnixMilli(int64(r.IntN(86400000))).UTC()
	case data.TimestampName:
		return time.UnixMilli(int64(r.Uint64() >> 20)).UTC()
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
		return float32(r.NormFloat64())
	case data.TypeFloat64:
		return r.NormFloat64()
	case data.TypeBoolean:
		return r.IntN(2) == 0
	case data.TypeString:
		return strconv.Itoa(r.IntN(1000))
	case data.TypeBytes:
		return []byte(strconv.Itoa(r.IntN(1000)))
	case data.TypeArray:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = randomValue(r, s.Items, depth+1)
		}
		return a
	case data.TypeMap:
		if s.Keys.Type == data.TypeString {
			m := map[string]any{}
			for i := range r.IntN(4) {
				m[strconv.Itoa(i)] = randomValue(r, s.Values, depth+1)
			}
			return m
		}
		dm := &data.Map{}
		for i := range r.IntN(4) {
			dm.Entries = append(dm.Entries, data.MapEntry{Key: int16(i), Value: randomValue(r, s.Values, depth+1)})
		}
		return dm
	}
	st := data.NewStruct(s)
	for _, f := range s.Fields {
		if v := randomValue(r, f.Schema, depth+1); v != nil || r.IntN(8) != 0 {
			if v != nil {
				st.MustPut(f.Name, v)
			}
		}
	}
	return st
}

// A value that messages would carry differently from what its schema
// says (they keep the Go type, then fail or not at decoding) is not
// packed: the batch goes as messages, which keep their behaviour.
func TestPackedSchemasRejectWhatMessagesCarryAsIs(t *testing.T) {
	s := data.StructOf("s", data.F("a", data.Int32Schema))
	other := data.StructOf("other", data.F("a", data.Int32Schema))
	dupe := data.StructOf("dupe", data.F("a", data.Int32Schema), data.F("a", data.Int32Schema))
	badIndex := data.StructOf("bad", data.F("a", data.Int32Schema))
	badIndex.Fields[0].Index = 3
	for name, rec := range map[string]*data.Record{
		"int64 under int32":          {ValueSchema: data.Int32Schema, Value: int64(1)},
		"struct of another schema":   {ValueSchema: s, Value: data.NewStruct(other).MustPut("a", int32(1))},
		"nil struct pointer":         {ValueSchema: s, Value: (*data.Struct)(nil)},
		"array schema without items": {ValueSchema: &data.Schema{Type: data.TypeArray}, Value: []any{}},
		"map schema without values":  {ValueSchema: &data.Schema{Type: data.TypeMap, Keys: data.StringSchema}, Value: map[string]any{}},
		"decimal of another scale":   {ValueSchema: data.DecimalSchema(2), Value: data.NewDecimal(1, 3)},
		"date as int32":              {ValueSchema: data.DateSchema, Value: int32(1)},
		"string under string map key with a nil key": {ValueSchema: data.MapOf(data.OptionalStringSchema, data.Int8Schema),
			Value: &data.Map{Entries: []data.MapEntry{{Key: nil, Value: int8(1)}}}},
		"a field name twice":    {ValueSchema: dupe, Value: data.NewStruct(dupe)},
		"field index elsewhere": {ValueSchema: badIndex, Value: nil},
		"bytes under string":    {KeySchema: data.StringSchema, Key: []byte("k")},
		"unknown schema type":   {ValueSchema: &data.Schema{Type: "uint8"}, Value: nil},
		"struct with a default": {ValueSchema: &data.Schema{Type: data.TypeStruct, Default: data.NewStruct(s)}},
	} {
		rec.Topic = "t"
		if !connectv1.PackableVersion(rec, connectv1.PackedSchemasVersion) {
			t.Errorf("%s: not even tried in version 3", name)
		}
		if _, err := connectv1.AppendPackedVersion(nil, []*data.Record{rec}, connectv1.PackedSchemasVersion); !errors.Is(err, connectv1.ErrNotPackable) {
			t.Errorf("%s: %v, want ErrNotPackable", name, err)
		}
	}
	// Versions 1 and 2 never carry a schema'd struct.
	rec := schemaRecords()[0]
	for _, v := range []uint32{1, 2} {
		if connectv1.PackableVersion(rec, v) {
			t.Errorf("version %d says it packs a struct", v)
		}
		if _, err := connectv1.AppendPackedVersion(nil, []*data.Record{rec}, v); !errors.Is(err, connectv1.ErrNotPackable) {
			t.Errorf("version %d: %v, want ErrNotPackable", v, err)
		}
	}
	if _, err := connectv1.AppendPackedVersion(nil, nil, connectv1.PackedNewestVersion+1); err == nil {
		t.Error("a version past the newest packed")
	}
}

// Equal schemas built separately per record share one table entry.
func TestPackedSchemasShareEqualSchemas(t *testing.T) {
	var recs []*data.Record
	for i := range 50 {
		s := data.StructOf("row", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
		recs = append(recs, &data.Record{Topic: "t", ValueSchema: s, Value: data.NewStruct(s).MustPut("id", int64(i))})
	}
	one, err := connectv1.AppendPackedVersion(nil, recs[:1], connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	all, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	// Each further record costs flags, offset, timestamp, 2 kinds, index,
	// presence, bitmap and a small id: well under the schema's size.
	if per := (len(all) - len(one)) / 49; per > 10 {
		t.Fatalf("%d bytes per record after the first: the schema travels again", per)
	}
	got := checkSchemasRoundTrip(t, recs)
	if got[0].ValueSchema != got[49].ValueSchema {
		t.Fatal("equal schemas decoded separately")
	}
}

func TestNegotiatePacked(t *testing.T) {
	for peer, want := range map[uint32]uint32{0: 1, 1: 1, 2: 2, 3: 3, 4: 4, 5: 4, 1 << 31: 4} {
		if got := connectv1.NegotiatePacked(peer); got != want {
			t.Errorf("NegotiatePacked(%d) = %d, want %d", peer, got, want)
		}
	}
	if connectv1.PackedNewestVersion != connectv1.PackedSharedHeadersVersion {
		t.Fatal("the newest version is not the shared headers version")
	}
}

func TestUnpackRejectsMalformedSchemas(t *testing.T) {
	good, err := connectv1.AppendPackedVersion(nil, schemaRecords(), connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	for n := 0; n < len(good); n++ {
		if _, err := connectv1.Unpack(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	// A batch of one record, topic "t", value under schema 0.
	rec := func(table []byte, value ...byte) []byte {
		b := append([]byte{3}, table...)
		b = append(b, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0)
		return append(b, value...)
	}
	i32 := []byte{1, 2, 0}                                 // one schema: int32, no flags
	st2 := []byte{1, 11, 0, 2, 1, 'a', 2, 0, 1, 'b', 6, 0} // struct{a int32, b boolean}
	for name, b := range map[string][]byte{
		"version 5":               {5, 0, 0},
		"schema index past table": rec(i32, 0x20, 1, 1, 2),
		"schema kind in v2":       {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 0x20, 0, 1, 2},
		"unknown schema type":     rec([]byte{1, 12, 0}, 0x20, 0, 0),
		"unknown schema flag":     rec([]byte{1, 2, 64}, 0x20, 0, 0),
		"schema count past bytes": rec([]byte{100, 2, 0}, 0x20, 0, 0),
		"empty parameters":        rec([]byte{1, 2, 16, 0}, 0x20, 0, 0),
		"null default":            rec([]byte{1, 2, 32, 0}, 0x20, 0, 0),
		"struct default":          rec([]byte{1, 11, 32, 0, 1}, 0x20, 0, 0),
		"bad presence byte":       rec(i32, 0x20, 0, 2, 2),
		"int32 out of range":      rec(i32, 0x20, 0, 1, 0x80, 0x80, 0x80, 0x80, 0x20),
		"int8 out of range":       rec([]byte{1, 0, 0}, 0x20, 0, 1, 0x80, 0x02),
		"boolean 2":               rec([]byte{1, 6, 0}, 0x20, 0, 1, 2),
		"short float64":           rec([]byte{1, 5, 0}, 0x20, 0, 1, 0, 0, 0),
		"bits past the fields":    rec(st2, 0x20, 0, 1, 4, 0),
		"struct short a field":    rec(st2, 0x20, 0, 1, 3, 2),
		"struct without bitmap":   rec(st2, 0x20, 0),
		"array count past bytes":  rec([]byte{1, 9, 0, 2, 0}, 0x20, 0, 1, 50),
		"null string map key":     rec([]byte{1, 10, 0, 7, 1, 2, 0}, 0x20, 0, 1, 1, 0, 1, 2),
		"decimal without scale":   rec([]byte{1, 8, 2, 37, 'o', 'r', 'g', '.', 'a', 'p', 'a', 'c', 'h', 'e', '.', 'k', 'a', 'f', 'k', 'a', '.', 'c', 'o', 'n', 'n', 'e', 'c', 't', '.', 'd', 'a', 't', 'a', '.', 'D', 'e', 'c', 'i', 'm', 'a', 'l'}, 0x20, 0, 1, 1, 5),
		"schema nested too deep":  deepSchema(200),
		"trailing bytes":          append(append([]byte{}, good...), 0),
	} {
		if recs, err := connectv1.Unpack(b); err == nil {
			t.Errorf("%s: %d records, no error", name, len(recs))
		}
	}
	// The same shapes, well formed, do decode: the cases above fail for
	// the reason named.
	for name, b := range map[string][]byte{
		"int32":      rec(i32, 0x20, 0, 1, 2),
		"struct":     rec(st2, 0x20, 0, 1, 3, 2, 1),
		"null value": rec(i32, 0x20, 0, 0),
	} {
		if _, err := connectv1.Unpack(b); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// deepSchema is a batch whose schema is n arrays deep.
func deepSchema(n int) []byte {
	b := []byte{3, 1}
	for range n {
		b = append(b, 9, 0)
	}
	b = append(b, 2, 0)
	return append(b, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 0x20, 0, 0)
}

// Unpack of structs allocates per batch, not per field or record: structs,
// their field values and boxed scalars come from slabs.
func TestUnpackSchemasAllocatesPerBatch(t *testing.T) {
	row := data.StructOf("row", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema),
		data.F("n", data.Int32Schema), data.F("at", data.TimestampSchema), data.F("x", data.Float64Schema))
	recs := make([]*data.Record, 1000)
	for i := range recs {
		recs[i] = &data.Record{Topic: "t", ValueSchema: row, Value: data.NewStruct(row).MustPut("id", int64(i)).
			MustPut("name", "n"+strconv.Itoa(i)).MustPut("n", int32(i)).MustPut("at", time.UnixMilli(int64(i)).UTC()).
			MustPut("x", float64(i)/3)}
	}
	b, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = connectv1.Unpack(b) }); n > 40 {
		t.Fatalf("Unpack of 1000 structs: %v allocations", n)
	}
}

// Decoded schemas own their memory: a converter may cache them past the
// batch, so they must not keep (or change with) the batch's buffer.
func TestUnpackedSchemasOwnTheirMemory(t *testing.T) {
	s := &data.Schema{Type: data.TypeBytes, Optional: true, Name: "blob", Doc: "d",
		Parameters: map[string]string{"k": "v"}, Default: []byte("default")}
	row := data.StructOf("row", data.F("b", s), data.F("a", &data.Schema{Type: data.TypeArray, Items: data.StringSchema,
		Default: []any{"x"}}))
	recs := []*data.Record{{Topic: "t", ValueSchema: row, Value: data.NewStruct(row).MustPut("b", []byte("value"))}}
	b, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(b)
	if err != nil {
		t.Fatal(err)
	}
	clear(b)
	if !got[0].ValueSchema.Equal(row) {
		t.Fatalf("schema changed with the buffer: %+v", got[0].ValueSchema.Fields[0].Schema)
	}
}
