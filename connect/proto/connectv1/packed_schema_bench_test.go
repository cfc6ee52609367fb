package connectv1_test

import (
	"strconv"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// debeziumRecords are n change events shaped as connectors/postgrescdc
// makes them: a Debezium envelope (before, after, source block,
// transaction, op, timestamps) over a row of typical columns, with the
// primary key struct as the key.
func debeziumRecords(n int) []*data.Record {
	snap := &data.Schema{Type: data.TypeString, Optional: true, Name: "io.debezium.data.Enum", Version: 1,
		Parameters: map[string]string{"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
		Default:    "false"}
	source := data.StructOf("io.debezium.connector.postgresql.Source",
		data.F("version", data.StringSchema), data.F("connector", data.StringSchema), data.F("name", data.StringSchema),
		data.F("ts_ms", data.Int64Schema), data.F("snapshot", snap), data.F("db", data.StringSchema),
		data.F("sequence", data.OptionalStringSchema), data.F("ts_us", data.OptionalInt64Schema),
		data.F("ts_ns", data.OptionalInt64Schema), data.F("schema", data.StringSchema), data.F("table", data.StringSchema),
		data.F("txId", data.OptionalInt64Schema), data.F("lsn", data.OptionalInt64Schema), data.F("xmin", data.OptionalInt64Schema))
	block := data.StructOf("event.block", data.F("id", data.StringSchema),
		data.F("total_order", data.Int64Schema), data.F("data_collection_order", data.Int64Schema))
	block.Optional, block.Version = true, 1
	row := data.StructOf("bench.public.orders.Value",
		data.F("id", data.Int64Schema), data.F("customer", data.OptionalStringSchema),
		data.F("amount", data.DecimalSchema(2).AsOptional()), data.F("qty", data.OptionalInt32Schema),
		data.F("paid", data.OptionalBooleanSchema), data.F("note", data.OptionalStringSchema),
		data.F("created", data.TimestampSchema.AsOptional()))
	row.Optional = true
	key := data.StructOf("bench.public.orders.Key", data.F("id", data.Int64Schema))
	env := data.StructOf("bench.public.orders.Envelope",
		data.F("before", row), data.F("after", row), data.F("source", source),
		data.F("transaction", block), data.F("op", data.StringSchema),
		data.F("ts_ms", data.OptionalInt64Schema), data.F("ts_us", data.OptionalInt64Schema), data.F("ts_ns", data.OptionalInt64Schema))
	env.Version = 2
	now := time.UnixMilli(1_764_900_000_000).UTC()
	recs := make([]*data.Record, n)
	for i := range recs {
		after := data.NewStruct(row).MustPut("id", int64(i)).MustPut("customer", "customer-"+strconv.Itoa(i%97)).
			MustPut("amount", data.NewDecimal(int64(1999+i), 2)).MustPut("qty", int32(i%7)).MustPut("paid", i%2 == 0).
			MustPut("note", "a short note about the order").MustPut("created", now)
		src := data.NewStruct(source).MustPut("version", "2.7.0.Final").MustPut("connector", "postgresql").
			MustPut("name", "bench").MustPut("ts_ms", now.UnixMilli()).MustPut("snapshot", "false").MustPut("db", "bench").
			MustPut("ts_us", now.UnixMicro()).MustPut("ts_ns", now.UnixNano()).MustPut("schema", "public").
			MustPut("table", "orders").MustPut("txId", int64(1000+i/10)).MustPut("lsn", int64(0x1000000+i*128))
		v := data.NewStruct(env).MustPut("after", after).MustPut("source", src).MustPut("op", "c").
			MustPut("ts_ms", now.UnixMilli()).MustPut("ts_us", now.UnixMicro()).MustPut("ts_ns", now.UnixNano())
		recs[i] = &data.Record{Topic: "bench.public.orders", Partition: -1, Timestamp: -1,
			KeySchema: key, Key: data.NewStruct(key).MustPut("id", int64(i)), ValueSchema: env, Value: v}
	}
	return recs
}

// BenchmarkDebeziumWire is one Poll's trip for a batch of 1000 change
// events, side by side: encode in the plugin, marshal, unmarshal and
// decode in the host, as packed version 3 and as one message per record
// (what postgrescdc sent before). ns/record is the figure to compare.
func BenchmarkDebeziumWire(b *testing.B) {
	recs := debeziumRecords(1000)
	per := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		b.ReportMetric(0, "ns/op")
	}
	b.Run("packed-v3", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
			if err != nil {
				b.Fatal(err)
			}
			wire, err := proto.Marshal(&connectv1.PollResponse{BatchSeq: 1, Packed: buf})
			if err != nil {
				b.Fatal(err)
			}
			var resp connectv1.PollResponse
			if err := proto.Unmarshal(wire, &resp); err != nil {
				b.Fatal(err)
			}
			if got, err := connectv1.Unpack(resp.GetPacked()); err != nil || len(got) != len(recs) {
				b.Fatal(err)
			}
		}
		per(b)
	})
	b.Run("messages", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			out := &connectv1.PollResponse{BatchSeq: 1, Records: make([]*connectv1.SourceRecord, len(recs))}
			for i, r := range recs {
				p, err := connectv1.SourceRecordBodyToProto(r)
				if err != nil {
					b.Fatal(err)
				}
				out.Records[i] = p
			}
			wire, err := proto.Marshal(out)
			if err != nil {
				b.Fatal(err)
			}
			var resp connectv1.PollResponse
			if err := proto.Unmarshal(wire, &resp); err != nil {
				b.Fatal(err)
			}
			for _, p := range resp.GetRecords() {
				if _, err := connectv1.SourceRecordFromProto(p); err != nil {
					b.Fatal(err)
				}
			}
		}
		per(b)
	})
}

// The benchmark's batch decodes as messages do, so the figures compare
// like with like.
func TestDebeziumRecordsRoundTrip(t *testing.T) {
	checkSchemasRoundTrip(t, debeziumRecords(20))
}
