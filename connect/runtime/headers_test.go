package runtime

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"strconv"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/convert"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// reference converts headers the plain way, one fresh slice per record.
func reference(hs []data.Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	out := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: h.Key, Value: headerBytes(h.Value)}
	}
	return out
}

func sameKafkaHeaders(a, b []kgo.RecordHeader) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key || !bytes.Equal(a[i].Value, b[i].Value) || (a[i].Value == nil) != (b[i].Value == nil) {
			return false
		}
	}
	return true
}

// The cache converts every record's headers exactly as the plain way
// does (null stays distinct from empty), shares a conversion only
// between equal headers, and is not fooled by a slice changed in place
// after it was converted.
func TestHeaderCacheConvertsExactly(t *testing.T) {
	path := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}
	mutable := []data.Header{{Key: "file", Value: "/var/log/a.log"}}
	seq := []struct {
		hs     []data.Header
		shared bool // shares the previous record's conversion
	}{
		{path, false}, {path, true}, {[]data.Header{{Key: "file", Value: "/var/log/a.log"}}, true},
		{[]data.Header{{Key: "file", Value: "/var/log/b.log"}}, false},
		{nil, false},
		{mutable, false}, {mutable, true},
		{[]data.Header{{Key: "a", Value: nil}}, false}, {[]data.Header{{Key: "a", Value: []byte{}}}, false},
		{[]data.Header{{Key: "a", Value: []byte{}}}, true}, {[]data.Header{{Key: "a", Value: []byte("x")}}, false},
		{[]data.Header{{Key: "n", Value: int32(7)}}, false}, {[]data.Header{{Key: "n", Value: int32(7)}}, false},
		{[]data.Header{{Key: "n", Value: int32(7)}, {Key: "file", Value: "x"}}, false},
	}
	var c headerCache
	var prev []kgo.RecordHeader
	for i, s := range seq {
		got := c.convert(s.hs)
		if want := reference(s.hs); !sameKafkaHeaders(got, want) {
			t.Fatalf("record %d: %+v, want %+v", i, got, want)
		}
		if shared := len(got) > 0 && len(prev) > 0 && &got[0] == &prev[0]; shared != s.shared {
			t.Fatalf("record %d: shared %v, want %v", i, shared, s.shared)
		}
		prev = got
		if i == 5 {
			mutable[0].Value = "/var/log/changed.log" // after its conversion
			seq[6].shared = false
		}
	}
	if got := c.convert(mutable); string(got[0].Value) != "/var/log/changed.log" {
		t.Fatalf("a slice changed in place converts to %q", got[0].Value)
	}
}

// Converted headers are copies: neither a key nor a value points into the
// memory the record's text came from (a whole Poll batch, which a cached
// conversion would otherwise keep alive for as long as the slab lives),
// and null, empty and large values convert as before.
func TestHeaderCacheOwnsItsBytes(t *testing.T) {
	batch := []byte("file/var/log/a.log" + "file/var/log/b.log")
	text := unsafe.String(unsafe.SliceData(batch), len(batch)) // as UnpackShared shares it
	within := func(p unsafe.Pointer) bool {
		start := uintptr(unsafe.Pointer(unsafe.SliceData(batch)))
		return uintptr(p) >= start && uintptr(p) < start+uintptr(len(batch))
	}
	big := bytes.Repeat([]byte("v"), headerArena)
	var c headerCache
	for _, hs := range [][]data.Header{
		{{Key: text[0:4], Schema: data.StringSchema, Value: text[4:18]}},
		{{Key: text[18:22], Value: []byte(text[22:36])}, {Key: "null", Value: nil}, {Key: "empty", Value: ""}},
		{{Key: "big", Value: big}},
	} {
		got := c.convert(hs)
		if want := reference(hs); !sameKafkaHeaders(got, want) {
			t.Fatalf("%+v converts to %+v, want %+v", hs, got, want)
		}
		for _, h := range got {
			if within(unsafe.Pointer(unsafe.StringData(h.Key))) || (len(h.Value) > 0 && within(unsafe.Pointer(&h.Value[0]))) {
				t.Fatalf("header %q points into the record's batch", h.Key)
			}
			if cap(h.Value) != len(h.Value) {
				t.Fatalf("header %q's value can be appended into its neighbour", h.Key)
			}
		}
		if hs[0].Key == "big" && &got[0].Value[0] == &big[0] {
			t.Fatal("a large value was not copied")
		}
	}
	if got := c.convert([]data.Header{{Key: "null", Value: nil}, {Key: "empty", Value: ""}}); got[0].Value != nil || got[1].Value == nil {
		t.Fatalf("null and empty values: %#v", got)
	}
}

// A file tail's path header arrives on every record exactly as sent, end
// to end: packed in version 4 (the header sent once per run of a file's
// lines), unpacked, converted by the source task and produced, then read
// back with a Kafka client.
func TestSourceTaskPathHeadersEndToEnd(t *testing.T) {
	c, producer := fakeClusterProducer(t, "logs")
	paths := []string{"/var/log/a.log", "/var/log/b.log", "/var/log/dir with space/ü.log"}
	cached := map[string][]data.Header{}
	var recs []*data.Record
	var want []string
	for i := range 3000 {
		p := paths[(i/700)%len(paths)] // runs of one file's lines
		if cached[p] == nil {
			cached[p] = []data.Header{{Key: "file", Schema: data.StringSchema, Value: p}}
		}
		recs = append(recs, &data.Record{Topic: "logs", Partition: 0, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: "line " + strconv.Itoa(i), Headers: cached[p]})
		want = append(want, p)
	}
	packed, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedNewestVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(packed)
	if err != nil {
		t.Fatal(err)
	}
	conv := &gatedConverter{release: make(chan struct{})}
	close(conv.release)
	for n, r := range sendAndReadBack(t, c, producer, conv, "logs", got) {
		if string(r.Value) != "line "+strconv.Itoa(n) {
			t.Fatalf("record %d value %q", n, r.Value)
		}
		if len(r.Headers) != 1 || r.Headers[0].Key != "file" || string(r.Headers[0].Value) != want[n] {
			t.Fatalf("record %d headers %+v, want file=%q", n, r.Headers, want[n])
		}
	}
}

// fakeClusterProducer starts a one-broker kfake cluster and a producer to
// it writing to topic, partitions chosen by the records; both close when
// the test ends.
func fakeClusterProducer(t *testing.T, topic string) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	producer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation(),
		kgo.RecordPartitioner(kgo.ManualPartitioner()), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(producer.Close)
	return c, producer
}

// sendAndReadBack sends recs through a source task of conv to producer,
// then reads that many records of topic back from the cluster c.
func sendAndReadBack(t *testing.T, c *kfake.Cluster, producer *kgo.Client, conv Converter, topic string, recs []*data.Record) []*kgo.Record {
	t.Helper()
	id := TaskID{Connector: topic, Task: 0}
	st := &sourceTask{
		taskPipeline: taskPipeline{id: id, keyConv: conv, valueConv: conv,
			logger:  slog.New(slog.NewTextHandler(io.Discard, nil)),
			metrics: NewMetrics(prometheus.NewRegistry()).task(id)},
		producer: producer, pending: map[string]SourceOffset{}, seenTopics: map[string]bool{},
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := st.send(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if err := producer.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	consumer, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer consumer.Close()
	var out []*kgo.Record
	for len(out) < len(recs) {
		fs := consumer.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("%d of %d records read: %v", len(out), len(recs), err)
		}
		out = append(out, fs.Records()...)
	}
	if len(out) != len(recs) {
		t.Fatalf("read %d records of %s, sent %d", len(out), topic, len(recs))
	}
	return out
}

// BenchmarkSourceHeaders is the worker's per-record header conversion of
// a file tail's batch: the path on every line, or no header, and the
// path converted afresh for each record as the task did before.
func BenchmarkSourceHeaders(b *testing.B) {
	h := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/app/app-0.log"}}
	for _, bc := range []struct {
		name  string
		hs    []data.Header
		fresh bool
	}{{"none", nil, false}, {"path", h, false}, {"path-per-record", h, true}} {
		b.Run(bc.name, func(b *testing.B) {
			var c headerCache
			recs := make([]kgo.Record, 8000)
			b.ReportAllocs()
			for b.Loop() {
				for i := range recs {
					if bc.fresh {
						recs[i].Headers = reference(bc.hs)
					} else {
						recs[i].Headers = c.convert(bc.hs)
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*8000), "ns/record")
		})
	}
}

// What a source task produces is byte for byte what the converters say,
// with StringConverter's keys and values shared rather than copied: text
// as its UTF-8, an empty value empty and a null one null, and headers
// (a path, empty text, null) the same way, read back with a Kafka client.
func TestSourceTaskProducesExactBytes(t *testing.T) {
	c, producer := fakeClusterProducer(t, "exact")
	conv, err := convert.New(convert.StringConverterClass, nil, false)
	if err != nil {
		t.Fatal(err)
	}
	type want struct {
		key, value *string
		headers    []kgo.RecordHeader
	}
	str := func(s string) *string { return &s }
	path := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/ü.log"}}
	odd := []data.Header{{Key: "empty", Schema: data.StringSchema, Value: ""}, {Key: "null", Value: nil}, {Key: "n", Value: int32(7)}}
	var recs []*data.Record
	var wants []want
	for i := range 50 {
		r := &data.Record{Topic: "exact", Partition: 0, Timestamp: -1, KeySchema: data.StringSchema, Key: "k" + strconv.Itoa(i),
			ValueSchema: data.StringSchema, Value: "line " + strconv.Itoa(i) + " é", Headers: path}
		w := want{key: str("k" + strconv.Itoa(i)), value: str("line " + strconv.Itoa(i) + " é"),
			headers: []kgo.RecordHeader{{Key: "file", Value: []byte("/var/log/ü.log")}}}
		switch i % 5 {
		case 1:
			r.Value, w.value = "", str("")
		case 2:
			r.Key, r.Value, w.key, w.value = nil, nil, nil, nil
		case 3:
			r.Headers = odd
			w.headers = []kgo.RecordHeader{{Key: "empty", Value: []byte{}}, {Key: "null"}, {Key: "n", Value: []byte("7")}}
		case 4:
			r.Value, w.value = int32(i), str(strconv.Itoa(i))
		}
		recs, wants = append(recs, r), append(wants, w)
	}
	same := func(b []byte, s *string) bool { return (s == nil) == (b == nil) && (s == nil || string(b) == *s) }
	for n, r := range sendAndReadBack(t, c, producer, conv, "exact", recs) {
		w := wants[n]
		if !same(r.Key, w.key) || !same(r.Value, w.value) {
			t.Fatalf("record %d: key %q (nil %v) value %q (nil %v), want %v %v", n, r.Key, r.Key == nil, r.Value, r.Value == nil, w.key, w.value)
		}
		if !sameKafkaHeaders(r.Headers, w.headers) {
			t.Fatalf("record %d: headers %+v, want %+v", n, r.Headers, w.headers)
		}
	}
}

// Records of one run share their header conversion, but a record whose
// own headers change after unpacking (a transform editing in place)
// arrives with its change, and its neighbours without it.
func TestSourceTaskSharedHeaderChangedOnOneRecord(t *testing.T) {
	c, producer := fakeClusterProducer(t, "edited")
	path := []data.Header{{Key: "file", Schema: data.StringSchema, Value: "/var/log/a.log"}}
	var recs []*data.Record
	for i := range 5 {
		recs = append(recs, &data.Record{Topic: "edited", Partition: 0, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: "line " + strconv.Itoa(i), Headers: path})
	}
	packed, err := connectv1.AppendPackedVersion(nil, recs, connectv1.PackedNewestVersion)
	if err != nil {
		t.Fatal(err)
	}
	got, err := connectv1.Unpack(packed)
	if err != nil {
		t.Fatal(err)
	}
	got[2].Headers[0].Value = "/var/log/edited.log"
	got[3].Headers[0].Key = "source"
	conv := &gatedConverter{release: make(chan struct{})}
	close(conv.release)
	want := []string{"file=/var/log/a.log", "file=/var/log/a.log", "file=/var/log/edited.log", "source=/var/log/a.log", "file=/var/log/a.log"}
	for n, r := range sendAndReadBack(t, c, producer, conv, "edited", got) {
		if len(r.Headers) != 1 || r.Headers[0].Key+"="+string(r.Headers[0].Value) != want[n] {
			t.Errorf("record %d headers %+v, want %s", n, r.Headers, want[n])
		}
	}
	if path[0].Value != "/var/log/a.log" || path[0].Key != "file" {
		t.Errorf("the plugin's shared header changed: %+v", path[0])
	}
}

// Every record toKafka gives is its own, across slabs: nothing produced
// shares a kgo.Record with another.
func TestSourceTaskRecordsAreDistinct(t *testing.T) {
	conv := &gatedConverter{release: make(chan struct{})}
	close(conv.release)
	st := &sourceTask{seenTopics: map[string]bool{}}
	st.keyConv, st.valueConv = conv, conv
	seen := map[*kgo.Record]bool{}
	var out []*kgo.Record
	for i := range 2*recordSlab + 3 {
		kr, err := st.toKafka(&data.Record{Topic: "t", Partition: -1, Timestamp: -1, Value: strconv.Itoa(i)})
		if err != nil {
			t.Fatal(err)
		}
		if seen[kr] {
			t.Fatalf("record %d reuses a kgo.Record", i)
		}
		seen[kr] = true
		out = append(out, kr)
	}
	for i, kr := range out {
		if string(kr.Value) != strconv.Itoa(i) || kr.Topic != "t" || kr.Headers != nil {
			t.Fatalf("record %d is %+v", i, kr)
		}
	}
}
