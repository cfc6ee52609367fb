package connectv1_test

import (
	"reflect"
	"strconv"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// sharedHeaderRecords: a file tail's batch (one headers slice per file,
// shared by its lines), equal headers built per record, headers that
// differ by a value, a schema or a nil, a record without headers between
// two with the same, and runs of two topics.
func sharedHeaderRecords() []*data.Record {
	pathA := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}
	pathB := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/b.log"}}
	var recs []*data.Record
	add := func(topic string, h []data.Header) {
		recs = append(recs, &data.Record{Topic: topic, Partition: -1, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: "line " + strconv.Itoa(len(recs)), Headers: h})
	}
	for range 3 {
		add("logs", pathA)
	}
	add("logs", pathB)
	add("logs", pathA)
	add("logs", nil)
	add("logs", pathA)
	add("other", pathA) // a new run keeps the previous record's headers
	for range 2 {
		add("other", []data.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}, {Key: "c", Value: "x"}})
	}
	add("other", []data.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}, {Key: "c", Value: "y"}})
	add("other", []data.Header{{Key: "a", Value: []byte("1")}, {Key: "b", Value: []byte{}}, {Key: "c", Value: "y"}})
	add("other", []data.Header{{Key: "a", Schema: data.BytesSchema, Value: []byte("1")}, {Key: "b", Value: []byte{}}, {Key: "c", Value: "y"}})
	return recs
}

// Version 4 decodes to exactly what version 3 does, and sends each run
// of equal headers once.
func TestPackedSharedHeadersRoundTrip(t *testing.T) {
	recs := sharedHeaderRecords()
	v3, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSchemasVersion)
	if err != nil {
		t.Fatal(err)
	}
	v4, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedSharedHeadersVersion)
	if err != nil {
		t.Fatal(err)
	}
	want, err := connectv1.Unpack(v3)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(v4)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(want, got) {
		for i := range want {
			if !reflect.DeepEqual(want[i], got[i]) {
				t.Fatalf("record %d:\n got %+v\nwant %+v", i, got[i], want[i])
			}
		}
		t.Fatal("version 4 decodes differently")
	}
	for i, r := range got {
		if !reflect.DeepEqual(r.Headers, recs[i].Headers) && len(recs[i].Headers) > 0 {
			t.Fatalf("record %d headers %+v, want %+v", i, r.Headers, recs[i].Headers)
		}
	}
	// Records 1, 2 and 7 repeat the path header before them, record 9
	// the three small headers: those are not sent again.
	// A path header is its count, "file" and the text; the three small
	// ones are their count, "a" and 1 byte, "b" and a null, "c" and "x".
	saved := 3*(1+1+len("file")+1+1+len("/var/log/a.log")) + (1 + 5 + 3 + 5)
	if len(v3)-len(v4) != saved {
		t.Fatalf("version 4 is %d bytes shorter than version 3, want %d", len(v3)-len(v4), saved)
	}
}

// Records decoded with shared headers each own their slice: a transform
// changing one record's headers in place (DropHeaders compacts them) or
// appending to them leaves the other records' as they were.
func TestPackedSharedHeadersAreCopies(t *testing.T) {
	h := []data.Header{{Key: "a", Value: "1"}, {Key: "b", Value: "2"}}
	recs := []*data.Record{{Topic: "t", Value: "x", Headers: h}, {Topic: "t", Value: "y", Headers: h}, {Topic: "t", Value: "z", Headers: h}}
	b, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedNewestVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(b)
	if err != nil {
		t.Fatal(err)
	}
	got[1].Headers[0] = got[1].Headers[1] // DropHeaders("a") on record 1
	got[1].Headers = got[1].Headers[:1]
	got[0].Headers = append(got[0].Headers, data.Header{Key: "c", Value: "3"}) // InsertHeader on record 0
	if !reflect.DeepEqual(got[2].Headers, h) {
		t.Fatalf("record 2 headers %+v after changing the others', want %+v", got[2].Headers, h)
	}
	if !reflect.DeepEqual(got[0].Headers[:2], h) || !reflect.DeepEqual(got[1].Headers, h[1:]) {
		t.Fatalf("headers %+v and %+v", got[0].Headers, got[1].Headers)
	}
}

func TestUnpackRejectsMalformedSharedHeaders(t *testing.T) {
	// Version 4 with an empty schema table, records of topic "t": each
	// record is flags, offset, timestamp, null key, null value, then
	// what the flags say.
	batch := func(version byte, recs ...[]byte) []byte {
		b := []byte{version}
		if version >= 3 {
			b = append(b, 0)
		}
		b = append(b, byte(len(recs)), 1, 't', 0, 0, byte(len(recs)))
		for _, r := range recs {
			b = append(b, r...)
		}
		return b
	}
	withHeader := []byte{1 | 4, 0, 0, 0, 0, 1, 1, 'h', 2, 1, 'v'}
	same := []byte{8 | 4, 0, 0, 0, 0}
	plain := []byte{4, 0, 0, 0, 0}
	for name, b := range map[string][]byte{
		"shared, first record":      batch(4, same),
		"shared after none":         batch(4, withHeader, plain, same),
		"shared and own headers":    batch(4, withHeader, append([]byte{8 | 1 | 4}, withHeader[1:]...)),
		"shared in version 3":       batch(3, withHeader, same),
		"shared in version 1":       batch(1, withHeader, same),
		"unknown flag in version 4": batch(4, []byte{16 | 4, 0, 0, 0, 0}),
	} {
		if recs, err := connectv1.Unpack(b); err == nil {
			t.Errorf("%s: %d records, no error", name, len(recs))
		}
	}
	// The same shapes, well formed, do decode.
	recs, err := connectv1.Unpack(batch(4, withHeader, same, same))
	if err != nil || len(recs) != 3 || len(recs[2].Headers) != 1 || recs[2].Headers[0].Value != "v" {
		t.Fatalf("well formed: %v %v", recs, err)
	}
}

// Unpack allocates per batch, not per record, for headers too.
func TestUnpackHeadersAllocatePerBatch(t *testing.T) {
	for _, version := range []uint32{connectv1.PackedSchemasVersion, connectv1.PackedSharedHeadersVersion} {
		h := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/app.log"}}
		recs := make([]*data.Record, 1000)
		for i := range recs {
			recs[i] = &data.Record{Topic: "logs", ValueSchema: data.StringSchema, Value: "line " + strconv.Itoa(i), Headers: h}
		}
		b, err := connectv1.AppendPackedVersion(nil, recs, version)
		if err != nil {
			t.Fatal(err)
		}
		if n := testing.AllocsPerRun(10, func() { _, _ = connectv1.Unpack(b) }); n > 12 {
			t.Fatalf("version %d: Unpack of 1000 records with a header: %v allocations", version, n)
		}
	}
}

// BenchmarkPackedPathHeader is a file tail's batch of 8000 200-byte
// lines, each with the path header, packed and unpacked, in version 3
// (the header on every record) and 4 (sent once).
func BenchmarkPackedPathHeader(b *testing.B) {
	h := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/tmp/sluice-connectorbench-2956622312/bench-filetail/logs-1/app-0.log"}}
	line := string(make([]byte, 199))
	for _, bc := range []struct {
		name    string
		version uint32
		headers []data.Header
	}{{"v3/no-header", 3, nil}, {"v3/header", 3, h}, {"v4/header", 4, h}} {
		recs := make([]*data.Record, 8000)
		for i := range recs {
			recs[i] = &data.Record{Topic: "logs", Partition: -1, Timestamp: -1, ValueSchema: data.StringSchema, Value: line, Headers: bc.headers}
		}
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			var buf []byte
			for b.Loop() {
				var err error
				if buf, err = connectv1.AppendPackedVersion(buf[:0], recs, bc.version); err != nil {
					b.Fatal(err)
				}
				if _, err := connectv1.Unpack(buf); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf))/float64(len(recs)), "bytes/record")
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(recs)), "ns/record")
		})
	}
}
