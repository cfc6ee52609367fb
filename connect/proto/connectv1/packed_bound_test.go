package connectv1

import (
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
)

// fileTailBatch is n 199-byte lines of one file, sharing its path header
// as the file tail sends them.
func fileTailBatch(n int) []*data.Record {
	path := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/tmp/sluice-connectorbench-1234567890/bench-filetail/logs-1/app-0.log"}}
	recs := make([]*data.Record, n)
	for i := range recs {
		recs[i] = &data.Record{Topic: "logs", Partition: -1, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: strings.Repeat("x", 199), Headers: path}
	}
	return recs
}

// packedBound is an upper bound in every version, whether headers are
// shared, equal, different or absent (so AppendPackedVersion allocates
// its buffer once).
func TestPackedBoundHolds(t *testing.T) {
	a := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}
	b := []data.Header{{Key: "file", Value: []byte("/var/log/b.log")}, {Key: "n", Value: nil}}
	batches := map[string][]*data.Record{"file tail": fileTailBatch(500)}
	var mixed []*data.Record
	for i, h := range [][]data.Header{a, a, b, nil, a, {{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}, b, b} {
		topic := "t1"
		if i >= 5 {
			topic = "t2"
		}
		mixed = append(mixed, &data.Record{Topic: topic, Partition: int32(i % 2), Timestamp: 1 << 40,
			Key: []byte("k"), ValueSchema: data.StringSchema, Value: "v", Headers: h})
	}
	batches["mixed"] = mixed
	for name, recs := range batches {
		for v := uint32(PackedVersion); v <= PackedNewestVersion; v++ {
			bound := packedBound(recs, v, -1)
			buf, err := AppendPackedVersion(nil, recs, v)
			if err != nil {
				t.Fatalf("%s v%d: %v", name, v, err)
			}
			if len(buf) > bound {
				t.Errorf("%s v%d: %d bytes packed, bound %d", name, v, len(buf), bound)
			}
		}
	}
}

// A file tail's path header, sent once per run from version 4, is
// counted once too: the buffer is not much larger than what it holds
// (counting it per line made it ~65% larger, all of it zeroed).
func TestPackedBoundCountsSharedHeadersOnce(t *testing.T) {
	recs := fileTailBatch(8000)
	buf, err := AppendPackedVersion(nil, recs, PackedSharedHeadersVersion)
	if err != nil {
		t.Fatal(err)
	}
	if float64(cap(buf)) > 1.3*float64(len(buf)) {
		t.Errorf("%d bytes packed into a buffer of %d", len(buf), cap(buf))
	}
	back, err := Unpack(buf)
	if err != nil || len(back) != len(recs) || back[7999].Headers[0].Value != recs[0].Headers[0].Value {
		t.Fatalf("unpacked %d records, %v", len(back), err)
	}
}

// AppendPackedVersionSized writes what AppendPackedVersion does, and the
// bound it takes from the caller's payload (not walking the values) still
// holds for text lines and for syslog-like maps of maps.
func TestPackedSizedBound(t *testing.T) {
	var maps []*data.Record
	for i := range 200 {
		maps = append(maps, &data.Record{Topic: "logs", Partition: -1, Timestamp: 1 << 40, Value: map[string]any{
			"facility": int64(20), "severity": int64(5), "timestamp": "2026-12-05T01:02:03.004Z",
			"hostname": "web-01", "app_name": "nginx", "proc_id": "4242", "msg_id": "ACCESS",
			"structured_data": map[string]any{"req@32473": map[string]any{"id": strings.Repeat("7", i%9), "zone": "eu-west-1"}},
			"message":         "GET /api/v1/items/5 200 1532", "format": "rfc5424", "remote_address": "127.0.0.1:4242",
		}})
	}
	for name, recs := range map[string][]*data.Record{"file tail": fileTailBatch(500), "maps": maps} {
		payload := 0
		for _, r := range recs {
			payload += PackedSize(r)
		}
		want, err := AppendPackedVersion(nil, recs, PackedNewestVersion)
		if err != nil {
			t.Fatal(err)
		}
		got, err := AppendPackedVersionSized(nil, recs, PackedNewestVersion, payload)
		if err != nil || len(got) != len(want) {
			t.Fatalf("%s: sized packing differs (%v)", name, err)
		}
		// Maps are written in their iteration order: compare what is read.
		back, err := Unpack(got)
		if err != nil || len(back) != len(recs) {
			t.Fatalf("%s: unpacked %d records, %v", name, len(back), err)
		}
		for i := range back {
			if !data.ValueEqual(back[i].Value, recs[i].Value) {
				t.Fatalf("%s: record %d is %v, want %v", name, i, back[i].Value, recs[i].Value)
			}
		}
		if bound := packedBound(recs, PackedNewestVersion, payload); len(got) > bound || float64(bound) > 1.6*float64(len(got)) {
			t.Errorf("%s: %d bytes packed, sized bound %d", name, len(got), bound)
		}
	}
	if _, err := AppendPackedVersionSized(nil, nil, PackedNewestVersion+1, 0); err == nil {
		t.Error("an unknown version: no error")
	}
}
