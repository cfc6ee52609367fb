package segment

import (
	"bytes"
	"errors"
	"testing"
)

func TestBuildBatchEachRecordRoundTrip(t *testing.T) {
	in := []KV{{Key: []byte("k1"), Value: []byte("v1")}, {Key: []byte("k2")}, {Value: []byte{}}}
	b, err := BuildBatch(in, 1234)
	if err != nil {
		t.Fatal(err)
	}
	// The batch passes the same validation as a producer's.
	if _, err := ValidateBatches(b, 1<<20); err != nil {
		t.Fatalf("built batch invalid: %v", err)
	}
	SetBaseOffset(b, 100)
	var got []Record
	if err := EachRecord(b, func(r Record) error {
		got = append(got, Record{Offset: r.Offset, Timestamp: r.Timestamp, Key: bytes.Clone(r.Key), Value: r.Value})
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("%d records", len(got))
	}
	for i, r := range got {
		if r.Offset != 100+int64(i) || r.Timestamp != 1234 || !bytes.Equal(r.Key, in[i].Key) || (r.Value == nil) != (in[i].Value == nil) || !bytes.Equal(r.Value, in[i].Value) {
			t.Errorf("record %d: %+v, want %+v", i, r, in[i])
		}
	}
	if _, err := BuildBatch(nil, 0); err == nil {
		t.Fatal("empty batch built")
	}
	// A truncated batch is an error, not a panic.
	if err := EachRecord(b[:len(b)-3], func(Record) error { return nil }); !errors.Is(err, ErrCorruptBatch) {
		t.Fatalf("truncated batch: %v", err)
	}
	// A lying record length inside an intact header is caught too.
	bad := bytes.Clone(b)
	bad[BatchHeaderSize] = 0x7f
	if err := EachRecord(bad, func(Record) error { return nil }); !errors.Is(err, ErrInvalidRecord) {
		t.Fatalf("bad record length: %v", err)
	}
}

// BenchmarkEachRecord decodes a batch of 100 small records, as the group
// coordinator's replay does; a record that decodes fine costs no
// allocation.
func BenchmarkEachRecord(b *testing.B) {
	in := make([]KV, 100)
	for i := range in {
		in[i] = KV{Key: []byte("group-member-key"), Value: bytes.Repeat([]byte{'v'}, 64)}
	}
	batch, err := BuildBatch(in, 1234)
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(batch)))
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		if err := EachRecord(batch, func(r Record) error { n += len(r.Key); return nil }); err != nil {
			b.Fatal(err)
		}
	}
	if n == 0 {
		b.Fatal("no records")
	}
}

// A malformed record body is ErrInvalidRecord; a good one decodes without
// allocating (the replay of a large coordinator log decodes millions).
func TestDecodeRecordErrorsAndAllocations(t *testing.T) {
	b, err := BuildBatch([]KV{{Key: []byte("k"), Value: []byte("value")}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	l, p, ok := varint(b, BatchHeaderSize)
	if !ok {
		t.Fatal("no record length")
	}
	body := b[p : p+int(l)]
	for _, bad := range [][]byte{nil, body[:1], body[:len(body)-2], append(bytes.Clone(body[:3]), 0x7f)} {
		if _, err := decodeRecord(bad); !errors.Is(err, ErrInvalidRecord) {
			t.Errorf("decodeRecord(%x): %v", bad, err)
		}
	}
	var rec Record
	if n := testing.AllocsPerRun(100, func() { rec, err = decodeRecord(body) }); n != 0 || err != nil {
		t.Fatalf("good record: %v, %.0f allocations", err, n)
	}
	if string(rec.Key) != "k" || string(rec.Value) != "value" {
		t.Fatalf("decoded %+v", rec)
	}
}
