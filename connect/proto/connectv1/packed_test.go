package connectv1_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"strconv"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/proto/connectv1/connectv1test"
)

// packedRecords covers what packing must keep exactly: null, empty and
// non-empty bytes and text under no schema and the four plain schemas,
// headers, runs of topic-partitions with offsets going either way,
// partition -1, originals equal, different and unset.
func packedRecords() []*data.Record {
	recs := []*data.Record{
		{Topic: "logs", Partition: -1, Timestamp: -1, Value: []byte("line one")},
		{Topic: "logs", Partition: -1, Timestamp: 1700000000000, Key: "k", Value: []byte{}},
		{Topic: "logs", Partition: 3, KafkaOffset: 41, Timestamp: 5, Key: []byte(nil), Value: "text",
			OriginalTopic: "logs", OriginalPartition: 3, OriginalOffset: 41},
		{Topic: "logs", Partition: 3, KafkaOffset: 42, KeySchema: data.StringSchema, Key: "id-1",
			ValueSchema: data.OptionalBytesSchema, Value: nil, OriginalTopic: "raw", OriginalPartition: 0, OriginalOffset: 7},
		{Topic: "logs", Partition: 3, KafkaOffset: 40, KeySchema: data.OptionalStringSchema,
			ValueSchema: data.BytesSchema, Value: []byte("back"), OriginalTopic: "logs", OriginalPartition: 3, OriginalOffset: 40,
			Headers: []data.Header{{Key: "a", Value: []byte("1")}, {Key: "", Value: nil},
				{Key: "ü", Schema: data.OptionalStringSchema, Value: "two"}, {Key: "b", Schema: data.BytesSchema, Value: []byte{}}}},
		{Topic: "métriques", Partition: 2147483647, KafkaOffset: 1 << 62, Timestamp: -1 << 40, Value: "x"},
		{Topic: "", Partition: 0, Value: nil},
	}
	// More byte and text values than Unpack's first slabs hold.
	many := &data.Record{Topic: "many", Key: "k", Value: []byte("v")}
	for i := range 40 {
		many.Headers = append(many.Headers, data.Header{Key: strconv.Itoa(i), Value: []byte{byte(i)}},
			data.Header{Key: "s" + strconv.Itoa(i), Value: strconv.Itoa(i)})
	}
	return append(recs, many)
}

func TestPackedRoundTrip(t *testing.T) {
	recs := packedRecords()
	for n := 0; n <= len(recs); n++ {
		b, err := connectv1.AppendPacked([]byte("prefix"), recs[:n])
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.HasPrefix(b, []byte("prefix")) {
			t.Fatal("AppendPacked lost what it appended to")
		}
		got, err := connectv1.Unpack(b[len("prefix"):])
		if err != nil {
			t.Fatalf("%d records: %v", n, err)
		}
		if len(got) != n {
			t.Fatalf("%d records back, want %d", len(got), n)
		}
		for i := range got {
			want := *recs[i]
			if b, ok := want.Key.([]byte); ok && b == nil {
				want.Key = []byte{} // as Data.raw: bytes are never nil
			}
			if !reflect.DeepEqual(&want, got[i]) {
				t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], &want)
			}
		}
	}
}

func TestPackedRejectsStructuredRecords(t *testing.T) {
	for i, r := range connectv1test.AllTypes() {
		if !connectv1.Packable(r) {
			continue
		}
		if _, err := connectv1.AppendPacked(nil, []*data.Record{r}); err != nil {
			t.Fatalf("AllTypes %d is packable but does not pack: %v", i, err)
		}
	}
	for name, r := range map[string]*data.Record{
		"int value":           {Value: int64(1)},
		"map value":           {Value: map[string]any{"a": "b"}},
		"named bytes schema":  {ValueSchema: &data.Schema{Type: data.TypeBytes, Name: data.DecimalName}, Value: []byte{1}},
		"string under bytes":  {ValueSchema: data.BytesSchema, Value: "s"},
		"bytes under string":  {KeySchema: data.StringSchema, Key: []byte("s")},
		"int32 schema, null":  {ValueSchema: data.OptionalInt32Schema},
		"schema with a doc":   {ValueSchema: &data.Schema{Type: data.TypeString, Doc: "d"}, Value: "s"},
		"structured header":   {Headers: []data.Header{{Key: "h", Value: int32(1)}}},
		"bytes header schema": {Headers: []data.Header{{Key: "h", Schema: data.BytesSchema, Value: "s"}}},
	} {
		if connectv1.Packable(r) {
			t.Errorf("%s: packable", name)
		}
		recs := []*data.Record{{Topic: "t", Value: []byte("ok")}, r}
		b, err := connectv1.AppendPacked([]byte("keep"), recs)
		if !errors.Is(err, connectv1.ErrNotPackable) || string(b) != "keep" {
			t.Errorf("%s: AppendPacked = %q, %v", name, b, err)
		}
	}
}

func TestUnpackRejectsMalformed(t *testing.T) {
	good, err := connectv1.AppendPacked(nil, packedRecords())
	if err != nil {
		t.Fatal(err)
	}
	// Every truncation of a valid buffer is an error, except the empty
	// prefix of runs (which only the record count could catch: it does).
	for n := 0; n < len(good); n++ {
		if _, err := connectv1.Unpack(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: no error", n, len(good))
		}
	}
	for name, b := range map[string][]byte{
		"version 4":           {4, 0},
		"count beyond buffer": {1, 100, 0, 0, 0, 1, 0, 0, 0, 0, 0},
		"zero-length run":     {1, 0, 1, 't', 0, 0, 0},
		"run past count":      {1, 1, 1, 't', 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0},
		"unknown flag":        {1, 1, 1, 't', 0, 0, 1, 8, 0, 0, 0, 0},
		"both original flags": {1, 1, 1, 't', 0, 0, 1, 6, 0, 0, 0, 0},
		"kind 3 in version 1": {1, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3, 0},
		"tree under a schema": {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3 | 1<<2, 0},
		"unknown tree tag":    {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3, 14},
		"int8 out of range":   {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3, 3, 0x80, 0x02},
		"array count":         {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3, 11, 0x7f},
		"short float64":       {2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3, 8, 0, 0},
		"string under bytes":  {1, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 2 | 1<<2, 0},
		"optional, no schema": {1, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 1 << 4},
		"partition overflow":  {1, 1, 1, 't', 0x80, 0x80, 0x80, 0x80, 0x20, 0, 1, 0, 0, 0, 0, 0},
		"trailing bytes":      append(append([]byte{}, good...), 0),
	} {
		if recs, err := connectv1.Unpack(b); err == nil {
			t.Errorf("%s: %d records, no error", name, len(recs))
		}
	}
}

// FuzzUnpack: any input decodes or fails, never panics, and what decodes
// packs back to a buffer that decodes the same.
func FuzzUnpack(f *testing.F) {
	good, _ := connectv1.AppendPacked(nil, packedRecords())
	f.Add(good)
	f.Add([]byte{1, 0})
	one, _ := connectv1.AppendPacked(nil, []*data.Record{{Topic: "t", Key: "k", Value: []byte("v"),
		Headers: []data.Header{{Key: "h", Value: "x"}}}})
	f.Add(one)
	tree, _ := connectv1.AppendPackedTrees(nil, treeRecords(rand.New(rand.NewPCG(1, 2)), 3))
	f.Add(tree)
	schemas, _ := connectv1.AppendPackedVersion(nil, schemaRecords(), connectv1.PackedSchemasVersion)
	f.Add(schemas)
	shared, _ := connectv1.AppendPackedVersion(nil, sharedHeaderRecords(), connectv1.PackedSharedHeadersVersion)
	f.Add(shared)
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := connectv1.Unpack(b)
		if err != nil {
			return
		}
		again, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedNewestVersion)
		if err != nil {
			t.Fatalf("decoded records do not pack: %v", err)
		}
		back, err := connectv1.Unpack(again)
		if err != nil || !reflect.DeepEqual(withoutNaN(recs), withoutNaN(back)) {
			t.Fatalf("repacked batch differs: %v", err)
		}
	})
}

// BenchmarkPacked against BenchmarkSourceRecordProto-style messages: one
// batch of 1000 100-byte log lines with string keys.
func BenchmarkPacked(b *testing.B) {
	recs := make([]*data.Record, 1000)
	for i := range recs {
		recs[i] = &data.Record{Topic: "logs", Partition: -1, Timestamp: int64(1700000000000 + i),
			KeySchema: data.StringSchema, Key: "key-" + strconv.Itoa(i),
			Value: []byte("a log line of a typical length, about one hundred bytes of text, give or take a few......")}
	}
	b.ReportAllocs()
	var buf []byte
	for b.Loop() {
		var err error
		if buf, err = connectv1.AppendPacked(buf[:0], recs); err != nil {
			b.Fatal(err)
		}
		if _, err := connectv1.Unpack(buf); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N*len(recs))/b.Elapsed().Seconds(), "records/s")
}

// Unpack allocates per batch, not per record: keys and values are boxed
// from slabs, text from one copy of the buffer.
func TestUnpackAllocatesPerBatch(t *testing.T) {
	recs := make([]*data.Record, 1000)
	for i := range recs {
		recs[i] = &data.Record{Topic: "logs", KeySchema: data.StringSchema, Key: "key-" + strconv.Itoa(i), Value: []byte("line")}
	}
	b, err := connectv1.AppendPacked(nil, recs)
	if err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(10, func() { _, _ = connectv1.Unpack(b) }); n > 10 {
		t.Fatalf("Unpack of 1000 records: %v allocations", n)
	}
}
