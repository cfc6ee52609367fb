package storage

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The key and value bytes are what Kafka Connect's OffsetStorageWriter
// writes (JsonConverter, schemas.enable=false), so offsets move between a
// Kafka worker and a Sluice worker; partition keys are sorted so one
// partition always has one key.
func TestOffsetEncodingGolden(t *testing.T) {
	for _, tc := range []struct {
		conn      string
		partition map[string]any
		offset    map[string]any
		key, val  string
	}{
		{"local-file-source", map[string]any{"filename": "/tmp/test.txt"}, map[string]any{"position": int64(42)},
			`["local-file-source",{"filename":"/tmp/test.txt"}]`, `{"position":42}`},
		{"c", map[string]any{"z": "1", "a": int32(2), "m": true}, map[string]any{"f": 2.0, "g": 1.5e-7, "h": 1e21, "i": nil, "j": 0.25},
			`["c",{"a":2,"m":true,"z":"1"}]`, `{"f":2.0,"g":1.5E-7,"h":1.0E21,"i":null,"j":0.25}`},
		{"q\"<&>", map[string]any{"b": []byte{0xff, 0}}, map[string]any{"s": "ü\n"},
			`["q\"<&>",{"b":"/wA="}]`, `{"s":"ü\n"}`},
		{"empty", nil, map[string]any{}, `["empty",{}]`, `{}`},
	} {
		k, err := OffsetKey(tc.conn, tc.partition)
		must(t, err)
		v, err := OffsetValue(tc.offset)
		must(t, err)
		if string(k) != tc.key || string(v) != tc.val {
			t.Errorf("%s: got %s = %s, want %s = %s", tc.conn, k, v, tc.key, tc.val)
		}
		conn, part, ok := ParseOffsetKey(k)
		if !ok || conn != tc.conn {
			t.Errorf("%s: key does not parse back: %q %v %v", tc.conn, conn, part, ok)
		}
	}
	if v, err := OffsetValue(nil); v != nil || err != nil {
		t.Fatalf("nil offset = %q, %v; want a tombstone", v, err)
	}
	if _, err := OffsetValue(map[string]any{"nested": map[string]any{}}); err == nil ||
		!strings.Contains(err.Error(), "Offsets may only contain primitive types as values") {
		t.Fatalf("nested offset value accepted: %v", err)
	}
	for _, bad := range []string{`"x"`, `["c"]`, `[1,{}]`, `["c",[]]`, `["c",{},1]`, `{`, ``} {
		if _, _, ok := ParseOffsetKey([]byte(bad)); ok {
			t.Errorf("key %s accepted", bad)
		}
	}
}

// Numbers read back with the types they were written with: whole numbers
// as int64, the rest as float64 (2.0 stays a float).
func TestOffsetsRoundTripTypes(t *testing.T) {
	st := newOffsetState(discard())
	enc, err := st.encodeOffsets("c", []ConnectorOffset{{
		Partition: map[string]any{"p": int64(1)},
		Offset:    map[string]any{"i": int64(1) << 60, "f": 2.0, "s": "x", "b": false},
	}})
	must(t, err)
	for _, e := range enc {
		st.apply(e.key, e.value)
	}
	got := st.offsets("c")
	want := []ConnectorOffset{{
		Partition: map[string]any{"p": int64(1)},
		Offset:    map[string]any{"i": int64(1) << 60, "f": 2.0, "s": "x", "b": false},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %#v, want %#v", got, want)
	}
}

func offsetStoreContract(t *testing.T, open func() OffsetStore) {
	t.Helper()
	ctx := testCtx(t)
	s := open()
	p1 := map[string]any{"filename": "/a"}
	p2 := map[string]any{"filename": "/b"}
	must(t, s.Write(ctx, "src", []ConnectorOffset{
		{Partition: p1, Offset: map[string]any{"position": int64(1)}},
		{Partition: p2, Offset: map[string]any{"position": int64(7)}},
	}))
	must(t, s.Write(ctx, "other", []ConnectorOffset{{Partition: p1, Offset: map[string]any{"position": int64(99)}}}))
	must(t, s.Write(ctx, "src", []ConnectorOffset{
		{Partition: p1, Offset: map[string]any{"position": int64(2)}},
		{Partition: p2}, // reset
	}))
	want := []ConnectorOffset{{Partition: p1, Offset: map[string]any{"position": int64(2)}}}
	got, err := s.Offsets(ctx, "src")
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}
	must(t, s.Write(ctx, "gone", []ConnectorOffset{{Partition: p1, Offset: map[string]any{"x": 1}}, {Partition: p2, Offset: map[string]any{"x": 2}}}))
	must(t, ResetOffsets(ctx, s, "gone"))
	must(t, s.Close())

	again := open()
	defer again.Close()
	got, err = again.Offsets(ctx, "src")
	must(t, err)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after reopening: offsets %v, want %v", got, want)
	}
	if got, err := again.Offsets(ctx, "gone"); err != nil || len(got) != 0 {
		t.Fatalf("offsets after a reset: %v %v", got, err)
	}
	got, err = again.Offsets(ctx, "other")
	must(t, err)
	if len(got) != 1 || got[0].Offset["position"] != int64(99) {
		t.Fatalf("other connector's offsets %v", got)
	}
}

func TestKafkaOffsetStore(t *testing.T) {
	opts := newCluster(t)
	offsetStoreContract(t, func() OffsetStore {
		s, err := OpenKafkaOffsetStore(testCtx(t), KafkaOffsetStoreOptions{Client: opts})
		must(t, err)
		return s
	})
	adm := kadm.NewClient(mustClient(t, opts))
	td, err := adm.ListTopics(testCtx(t), DefaultOffsetTopic)
	must(t, err)
	if n := len(td[DefaultOffsetTopic].Partitions); n != 25 {
		t.Fatalf("offsets topic has %d partitions, want 25", n)
	}
	// The records are Kafka's shape, keyed so compaction keeps one per partition.
	var keys []string
	for _, r := range rawRecords(t, opts, DefaultOffsetTopic) {
		if string(r.Key) == `["src",{"filename":"/b"}]` && r.Value != nil || strings.HasPrefix(string(r.Key), `["gone"`) {
			continue
		}
		keys = append(keys, string(r.Key)+"="+string(r.Value))
	}
	want := map[string]bool{
		`["src",{"filename":"/a"}]={"position":1}`:    true,
		`["src",{"filename":"/a"}]={"position":2}`:    true,
		`["src",{"filename":"/b"}]=`:                  true,
		`["other",{"filename":"/a"}]={"position":99}`: true,
	}
	if len(keys) != len(want) {
		t.Fatalf("records %v", keys)
	}
	for _, k := range keys {
		if !want[k] {
			t.Fatalf("unexpected record %s among %v", k, keys)
		}
	}
}

// Records another writer keyed with the partition's fields in another order,
// and records that are not offsets, are read correctly; a write supersedes
// the foreign key for good (tombstoning it).
func TestKafkaOffsetStoreForeignKeys(t *testing.T) {
	opts := newCluster(t)
	ctx := testCtx(t)
	s, err := OpenKafkaOffsetStore(ctx, KafkaOffsetStoreOptions{Client: opts, Topic: TopicSettings{Partitions: 3}})
	must(t, err)
	defer s.Close()
	cl := mustClient(t, opts)
	for _, kv := range [][2]string{
		{`["c",{"z":1,"a":2}]`, `{"pos":5}`},
		{`["c",{"a":3}]`, `not json`},
		{`{"not":"a list"}`, `{"pos":1}`},
		{`["c",{"a":4}, 5]`, `{"pos":1}`},
	} {
		must(t, cl.ProduceSync(ctx, &kgo.Record{Topic: DefaultOffsetTopic, Key: []byte(kv[0]), Value: []byte(kv[1])}).FirstErr())
	}
	got, err := s.Offsets(ctx, "c")
	must(t, err)
	want := []ConnectorOffset{{Partition: map[string]any{"a": int64(2), "z": int64(1)}, Offset: map[string]any{"pos": int64(5)}}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("offsets %v, want %v", got, want)
	}
	must(t, s.Write(ctx, "c", []ConnectorOffset{{Partition: map[string]any{"z": 1, "a": 2}, Offset: map[string]any{"pos": 6}}}))
	s.Close()
	// Replayed from scratch, whatever order the partitions are read in.
	s2, err := OpenKafkaOffsetStore(ctx, KafkaOffsetStoreOptions{Client: opts})
	must(t, err)
	defer s2.Close()
	got, err = s2.Offsets(ctx, "c")
	must(t, err)
	if len(got) != 1 || got[0].Offset["pos"] != int64(6) {
		t.Fatalf("offsets after rewrite %v", got)
	}
	s2.mu.Lock()
	defer s2.mu.Unlock()
	if _, ok := s2.state.values[`["c",{"z":1,"a":2}]`]; ok {
		t.Fatalf("the foreign key was not tombstoned")
	}
}

func TestFileOffsetStore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "connect.offsets")
	offsetStoreContract(t, func() OffsetStore {
		s, err := OpenFileOffsetStore(path, nil)
		must(t, err)
		return s
	})
	b, err := os.ReadFile(path)
	must(t, err)
	got, err := readJavaOffsets(b)
	must(t, err)
	want := map[string][]byte{
		`["other",{"filename":"/a"}]`: []byte(`{"position":99}`),
		`["src",{"filename":"/a"}]`:   []byte(`{"position":2}`),
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("file holds %q, want %q", got, want)
	}
}

// The files under testdata were written by Java as Kafka Connect's
// FileOffsetBackingStore writes them (testdata/GenOffsets.java): they read,
// and written back they have the same header and length, and the same
// bytes for the empty map (a HashMap of byte[] keys orders its entries by
// identity hash, which differs from run to run of Java).
func TestJavaOffsetsGolden(t *testing.T) {
	for _, tc := range []struct {
		file      string
		n         int
		identical bool
	}{{"kafka-two.offsets", 2, false}, {"kafka-empty.offsets", 0, true}, {"kafka-13.offsets", 13, false}} {
		b, err := os.ReadFile(filepath.Join("testdata", tc.file))
		must(t, err)
		m, err := readJavaOffsets(b)
		must(t, err)
		if len(m) != tc.n {
			t.Fatalf("%s: %d entries, want %d", tc.file, len(m), tc.n)
		}
		out := writeJavaOffsets(m)
		if tc.identical && !bytes.Equal(out, b) {
			t.Fatalf("%s: rewritten as\n%x\nwant\n%x", tc.file, out, b)
		}
		// Same header either way: class, load factor, threshold, buckets, size.
		if !bytes.Equal(out[:0x50], b[:0x50]) || len(out) != len(b) {
			t.Fatalf("%s: header or length differs", tc.file)
		}
		back, err := readJavaOffsets(out)
		must(t, err)
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("%s: does not read back", tc.file)
		}
	}
	b, _ := os.ReadFile("testdata/kafka-two.offsets")
	m, _ := readJavaOffsets(b)
	if string(m[`["local-file-source",{"filename":"test.txt"}]`]) != `{"position":42}` {
		t.Fatalf("entries %q", m)
	}
	// Through the store: the quickstart's offset, and a key whose fields
	// Java's HashMap ordered differently.
	path := filepath.Join(t.TempDir(), "connect.offsets")
	must(t, os.WriteFile(path, b, 0o644))
	s, err := OpenFileOffsetStore(path, nil)
	must(t, err)
	got, _ := s.Offsets(testCtx(t), "other")
	if len(got) != 1 || got[0].Offset["offset"] != int64(7) || got[0].Partition["a"] != "x" {
		t.Fatalf("offsets %v", got)
	}
}

// Kafka Connect (Java's ObjectInputStream, as FileOffsetBackingStore.load
// reads) reads the file Sluice writes. Skipped where there is no java.
func TestJavaReadsOurOffsets(t *testing.T) {
	if testing.Short() {
		t.Skip("starting a JVM takes seconds")
	}
	java, err := exec.LookPath("java")
	if err != nil {
		t.Skip("no java here:", err)
	}
	path := filepath.Join(t.TempDir(), "connect.offsets")
	s, err := OpenFileOffsetStore(path, nil)
	must(t, err)
	ctx := testCtx(t)
	var batch []ConnectorOffset
	for i := range 20 {
		batch = append(batch, ConnectorOffset{Partition: map[string]any{"file": fmt.Sprint("/f", i)}, Offset: map[string]any{"pos": i}})
	}
	must(t, s.Write(ctx, "src", batch))
	out, err := exec.CommandContext(ctx, java, "testdata/ReadOffsets.java", path).CombinedOutput()
	if err != nil {
		t.Fatalf("java: %v\n%s", err, out)
	}
	var want []string
	for i := range 20 {
		want = append(want, fmt.Sprintf(`["src",{"file":"/f%d"}] = {"pos":%d}`, i, i))
	}
	sort.Strings(want)
	if got := strings.TrimSpace(string(out)); got != strings.Join(want, "\n") {
		t.Fatalf("java read:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// A crash after the new file is written but before it is renamed leaves
// the old offsets in place; the leftover temporary file is ignored.
func TestFileOffsetStoreCrashBeforeRename(t *testing.T) {
	ctx := testCtx(t)
	path := filepath.Join(t.TempDir(), "connect.offsets")
	s, err := OpenFileOffsetStore(path, nil)
	must(t, err)
	part := map[string]any{"f": "x"}
	must(t, s.Write(ctx, "c", []ConnectorOffset{{Partition: part, Offset: map[string]any{"pos": 1}}}))
	s.beforeRename = func() error { return os.ErrDeadlineExceeded } // "crash"
	if err := s.Write(ctx, "c", []ConnectorOffset{{Partition: part, Offset: map[string]any{"pos": 2}}}); err == nil {
		t.Fatal("write succeeded despite the crash")
	}
	if _, err := os.Stat(path + ".tmp"); err != nil {
		t.Fatalf("the crash left no temporary file: %v", err)
	}
	got, err := s.Offsets(ctx, "c")
	must(t, err)
	if got[0].Offset["pos"] != int64(1) {
		t.Fatalf("a failed write changed the offsets in memory: %v", got)
	}

	// Also a torn temporary file, as a crash mid-write leaves it.
	must(t, os.WriteFile(path+".tmp", []byte{0xac, 0xed, 0, 5, tcObject, tcClassDesc, 0}, 0o644))
	re, err := OpenFileOffsetStore(path, nil)
	must(t, err)
	got, err = re.Offsets(ctx, "c")
	must(t, err)
	if len(got) != 1 || got[0].Offset["pos"] != int64(1) {
		t.Fatalf("after the crash: %v, want pos 1", got)
	}
	must(t, re.Write(ctx, "c", []ConnectorOffset{{Partition: part, Offset: map[string]any{"pos": 3}}}))
	re2, err := OpenFileOffsetStore(path, nil)
	must(t, err)
	got, _ = re2.Offsets(ctx, "c")
	if got[0].Offset["pos"] != int64(3) {
		t.Fatalf("write after the crash lost: %v", got)
	}
}

func TestFileOffsetStoreRefusesGarbage(t *testing.T) {
	path := filepath.Join(t.TempDir(), "connect.offsets")
	for _, content := range [][]byte{[]byte(`{"version":1}`), {0xac, 0xed, 0, 5, tcObject}, {0xac, 0xed, 0, 5, tcArray, tcNull}} {
		must(t, os.WriteFile(path, content, 0o644))
		if _, err := OpenFileOffsetStore(path, nil); err == nil {
			t.Fatalf("%q accepted", content)
		}
	}
}

// Offsets written to a partition added after the store started are read
// without waiting minutes for the consumer's periodic metadata reload (as
// soon as the listing of end offsets shows the partition).
func TestKafkaOffsetStoreSeesAddedPartitions(t *testing.T) {
	opts := append(newCluster(t), kgo.MetadataMinAge(50*time.Millisecond))
	ctx := testCtx(t)
	s, err := OpenKafkaOffsetStore(ctx, KafkaOffsetStoreOptions{Client: opts, Topic: TopicSettings{Partitions: 1}})
	must(t, err)
	defer s.Close()
	adm := kadm.NewClient(mustClient(t, opts))
	_, err = adm.CreatePartitions(ctx, 2, DefaultOffsetTopic)
	must(t, err)
	key, _ := OffsetKey("c", map[string]any{"p": 1})
	cl := mustClient(t, append(append([]kgo.Opt{}, opts...), kgo.RecordPartitioner(kgo.ManualPartitioner())))
	must(t, cl.ProduceSync(ctx, &kgo.Record{Topic: DefaultOffsetTopic, Partition: 2, Key: key, Value: []byte(`{"o":1}`)}).FirstErr())
	deadline := time.Now().Add(15 * time.Second)
	for {
		short, cancel := context.WithTimeout(ctx, time.Second)
		got, err := s.Offsets(short, "c")
		cancel()
		if err == nil && len(got) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the offset in the added partition is not read: %v %v", got, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
