// Package connectv1test holds sample records that use every Connect type,
// for round-trip tests of the plugin contract: a plugin echoing them and a
// host comparing what came back share one definition.
package connectv1test

import (
	"fmt"
	"math"
	"math/big"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// AllTypes returns records whose keys, values and headers cover every
// schema type, every logical type, schemaless values, null, maps with
// string and non-string keys, nested structs with unset optional fields,
// schema defaults and source positions with integers beyond float64's
// exact range. Each call builds fresh values.
func AllTypes() []*data.Record {
	inner := data.StructOf("inner",
		data.F("n", data.OptionalInt32Schema),
		data.F("s", data.OptionalStringSchema)).AsOptional()
	withDefault := &data.Schema{Type: data.TypeString, Optional: true, Default: "dflt", Doc: "has a default",
		Parameters: map[string]string{"p": "v"}}
	all := data.StructOf("com.example.All",
		data.F("i8", data.Int8Schema), data.F("i16", data.Int16Schema),
		data.F("i32", data.Int32Schema), data.F("i64", data.Int64Schema),
		data.F("f32", data.Float32Schema), data.F("f64", data.Float64Schema),
		data.F("b", data.BooleanSchema), data.F("s", data.StringSchema), data.F("by", data.BytesSchema),
		data.F("dec", data.DecimalSchema(3)), data.F("date", data.DateSchema),
		data.F("time", data.TimeSchema), data.F("ts", data.TimestampSchema),
		data.F("arr", data.ArrayOf(data.OptionalInt64Schema)),
		data.F("smap", data.MapOf(data.StringSchema, data.Float64Schema)),
		data.F("imap", data.MapOf(data.Int32Schema, inner)),
		data.F("inner", inner),
		data.F("unset", data.OptionalStringSchema),
		data.F("dflt", withDefault))
	all.Version = 7
	all.Doc = "every type"

	v := data.NewStruct(all)
	in := data.NewStruct(inner).MustPut("n", int32(5))
	v.MustPut("i8", int8(-8)).MustPut("i16", int16(-1600)).MustPut("i32", int32(math.MinInt32)).
		MustPut("i64", int64(math.MaxInt64)).MustPut("f32", float32(1.5)).MustPut("f64", math.Inf(-1)).
		MustPut("b", true).MustPut("s", "héllo").MustPut("by", []byte{0, 1, 255}).
		MustPut("dec", data.Decimal{Unscaled: new(big.Int).Neg(new(big.Int).Lsh(big.NewInt(1), 100)), Scale: 3}).
		MustPut("date", time.Date(2024, 2, 29, 0, 0, 0, 0, time.UTC)).
		MustPut("time", time.UnixMilli(12*3600*1000+34).UTC()).
		MustPut("ts", time.UnixMilli(1733350000123).UTC()).
		MustPut("arr", []any{int64(1), nil, int64(-3)}).
		MustPut("smap", map[string]any{"a": 1.0, "b": -2.5}).
		MustPut("imap", &data.Map{Entries: []data.MapEntry{{Key: int32(2), Value: in}, {Key: int32(1), Value: nil}}}).
		MustPut("inner", in.Clone())

	pos := func(n int64) (map[string]any, map[string]any) {
		return map[string]any{"file": "/var/log/x", "shard": int64(3)},
			map[string]any{"pos": n, "lsn": int64(math.MaxInt64 - 1), "ratio": 0.25, "tag": "t", "ok": true,
				"list": []any{int64(1), "two"}}
	}
	p1, o1 := pos(1)
	p2, o2 := pos(2)
	p3, o3 := pos(3)
	return []*data.Record{
		{Topic: "structs", Partition: 2, KeySchema: data.StringSchema, Key: "k1", ValueSchema: all, Value: v,
			Timestamp: 1733350000000, SourcePartition: p1, SourceOffset: o1, KafkaOffset: -1,
			Headers: []data.Header{
				{Key: "h-int", Schema: data.Int16Schema, Value: int16(7)},
				{Key: "h-null", Schema: data.OptionalStringSchema, Value: nil},
				{Key: "h-schemaless", Value: map[string]any{"x": []any{"y", int64(1)}}},
				{Key: "h-raw", Value: []byte("raw header")},
			}},
		{Topic: "schemaless", Partition: -1, Key: nil,
			Value: map[string]any{"i8": int8(1), "i16": int16(2), "i32": int32(3), "f32": float32(0.5),
				"nested": map[string]any{"bytes": []byte("b"), "null": nil},
				"mixed":  &data.Map{Entries: []data.MapEntry{{Key: int64(1), Value: "one"}, {Key: "two", Value: false}}}},
			Timestamp: -1, SourcePartition: p2, SourceOffset: o2, KafkaOffset: -1},
		{Topic: "raw", Partition: 0, Key: []byte("key"), ValueSchema: data.OptionalBytesSchema, Value: []byte("a log line\n"),
			Timestamp: 1, SourcePartition: p3, SourceOffset: o3, KafkaOffset: -1},
		{Topic: "tombstone", Partition: 0, KeySchema: data.Int64Schema, Key: int64(42),
			ValueSchema: data.OptionalStringSchema, Value: nil, Timestamp: -1,
			SourcePartition: p3, SourceOffset: nil, KafkaOffset: -1},
	}
}

// Diff reports the first difference between two records in what the
// contract carries for both kinds (topic, partition, timestamp, key, value,
// headers, source position), or nil.
func Diff(a, b *data.Record) error {
	switch {
	case a.Topic != b.Topic || a.Partition != b.Partition || a.Timestamp != b.Timestamp:
		return fmt.Errorf("topic/partition/timestamp %s/%d/%d != %s/%d/%d", a.Topic, a.Partition, a.Timestamp, b.Topic, b.Partition, b.Timestamp)
	case !a.KeySchema.Equal(b.KeySchema) || !data.ValueEqual(a.Key, b.Key):
		return fmt.Errorf("key %v %#v != %v %#v", a.KeySchema, a.Key, b.KeySchema, b.Key)
	case !a.ValueSchema.Equal(b.ValueSchema) || !data.ValueEqual(a.Value, b.Value):
		return fmt.Errorf("value %v %v != %v %v", a.ValueSchema, a.Value, b.ValueSchema, b.Value)
	case !data.ValueEqual(a.SourcePartition, b.SourcePartition) && (len(a.SourcePartition) > 0 || len(b.SourcePartition) > 0):
		return fmt.Errorf("source partition %v != %v", a.SourcePartition, b.SourcePartition)
	case !data.ValueEqual(a.SourceOffset, b.SourceOffset) && (len(a.SourceOffset) > 0 || len(b.SourceOffset) > 0):
		return fmt.Errorf("source offset %v != %v", a.SourceOffset, b.SourceOffset)
	case len(a.Headers) != len(b.Headers):
		return fmt.Errorf("%d headers != %d", len(a.Headers), len(b.Headers))
	}
	for i := range a.Headers {
		x, y := a.Headers[i], b.Headers[i]
		if x.Key != y.Key || !x.Schema.Equal(y.Schema) || !data.ValueEqual(x.Value, y.Value) {
			return fmt.Errorf("header %d: %v %v %v != %v %v %v", i, x.Key, x.Schema, x.Value, y.Key, y.Schema, y.Value)
		}
	}
	return nil
}

// RawRecord returns the i'th record of a packable sink batch: string
// keys, byte values (null every seventh), a header, two topic-partitions
// alternating in runs of three, and a renamed original every fifth.
func RawRecord(i int) *data.Record {
	r := &data.Record{Topic: "raw", Partition: int32(i / 3 % 2), KafkaOffset: int64(100 + i), Timestamp: int64(1700000000000 + i),
		KeySchema: data.OptionalStringSchema, Key: fmt.Sprintf("key-%d", i), Value: fmt.Appendf(nil, "value-%d", i),
		Headers: []data.Header{{Key: "h", Value: []byte{byte(i)}}}}
	if i%7 == 6 {
		r.Value = nil
	}
	r.OriginalTopic, r.OriginalPartition, r.OriginalOffset = r.Topic, r.Partition, r.KafkaOffset
	if i%5 == 4 {
		r.OriginalTopic = "before-rename"
	}
	return r
}

// DiffSink is Diff plus what sink records add: the Kafka offset and the
// original position.
func DiffSink(a, b *data.Record) error {
	if a.KafkaOffset != b.KafkaOffset || a.OriginalTopic != b.OriginalTopic ||
		a.OriginalPartition != b.OriginalPartition || a.OriginalOffset != b.OriginalOffset {
		return fmt.Errorf("offset/original %d/%s/%d/%d != %d/%s/%d/%d", a.KafkaOffset, a.OriginalTopic, a.OriginalPartition,
			a.OriginalOffset, b.KafkaOffset, b.OriginalTopic, b.OriginalPartition, b.OriginalOffset)
	}
	return Diff(a, b)
}
