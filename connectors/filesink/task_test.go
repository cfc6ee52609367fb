package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

func startTask(t *testing.T, dir string, extra ...string) *task {
	t.Helper()
	cfg := map[string]string{"directory": dir}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "fs", Logger: slog.Default()}, cfg); err != nil {
		t.Fatal(err)
	}
	return tk
}

func rec(topic string, part int32, off int64, v any) *data.Record {
	return &data.Record{Topic: topic, Partition: part, Value: v, Timestamp: 1700000000000 + off, KafkaOffset: off,
		OriginalTopic: topic, OriginalPartition: part, OriginalOffset: off}
}

func ls(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range es {
		out = append(out, e.Name())
	}
	sort.Strings(out)
	return out
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var ctx = context.Background()

func TestNDJSONLinesCommittedUnderTheirOffsets(t *testing.T) {
	dir := t.TempDir()
	tk := startTask(t, dir, "record.fields", "key,headers,timestamp,offset")
	if _, err := tk.Open(ctx, []sdk.TopicPartition{{Topic: "t", Partition: 0}}); err != nil {
		t.Fatal(err)
	}
	r := rec("t", 0, 7, `{"a": 1}`)
	r.Key = "k1"
	r.Headers = []data.Header{{Key: "h", Value: "v"}}
	if err := tk.Put(ctx, []*data.Record{r, rec("t", 0, 8, []byte("text")), rec("t", 0, 9, map[string]any{"n": int64(2)})}); err != nil {
		t.Fatal(err)
	}
	if got := ls(t, dir); len(got) != 1 || got[0] != ".t-0-7.tmp" {
		t.Fatalf("before the commit: %v, want only the temp file", got)
	}
	offs, err := tk.PreCommit(ctx, []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 10}})
	if err != nil || len(offs) != 1 || offs[0].Offset != 10 {
		t.Fatalf("PreCommit: %v %v", offs, err)
	}
	if got := ls(t, dir); len(got) != 1 || got[0] != "t-0-7-9.ndjson" {
		t.Fatalf("after the commit: %v, want t-0-7-9.ndjson", got)
	}
	want := `{"offset":7,"timestamp":1700000000007,"key":"k1","headers":[{"key":"h","value":"v"}],"value":{"a":1}}
{"offset":8,"timestamp":1700000000008,"key":null,"headers":[],"value":"text"}
{"offset":9,"timestamp":1700000000009,"key":null,"headers":[],"value":{"n":2}}
`
	if got := read(t, filepath.Join(dir, "t-0-7-9.ndjson")); got != want {
		t.Fatalf("file:\n%s\nwant:\n%s", got, want)
	}
	// Nothing new: a commit makes no empty file.
	if _, err := tk.PreCommit(ctx, nil); err != nil || len(ls(t, dir)) != 1 {
		t.Fatalf("an idle commit changed the directory: %v %v", ls(t, dir), err)
	}
}

func TestJSONFilesAreArraysAndRawFilesAreValues(t *testing.T) {
	dir := t.TempDir()
	tk := startTask(t, dir, "format", "json", "record.fields", "topic,partition")
	_ = tk.Put(ctx, []*data.Record{rec("t", 1, 0, "a"), rec("t", 1, 1, "b")})
	if _, err := tk.PreCommit(ctx, nil); err != nil {
		t.Fatal(err)
	}
	var arr []map[string]any
	if err := json.Unmarshal([]byte(read(t, filepath.Join(dir, "t-1-0-1.json"))), &arr); err != nil || len(arr) != 2 || arr[1]["value"] != "b" || arr[0]["topic"] != "t" {
		t.Fatalf("json file: %v %v", arr, err)
	}

	dir = t.TempDir()
	tk = startTask(t, dir, "format", "raw")
	_ = tk.Put(ctx, []*data.Record{rec("t", 0, 3, "line one"), rec("t", 0, 4, []byte("line two"))})
	_, _ = tk.PreCommit(ctx, nil)
	if got := read(t, filepath.Join(dir, "t-0-3-4.txt")); got != "line one\nline two\n" {
		t.Fatalf("raw file %q", got)
	}
}

func TestRotationCommitsFilesInPut(t *testing.T) {
	dir := t.TempDir()
	tk := startTask(t, dir, "flush.size", "3", "format", "raw")
	var recs []*data.Record
	for off := int64(0); off < 8; off++ {
		recs = append(recs, rec("t", 0, off, fmt.Sprint(off)))
	}
	if err := tk.Put(ctx, recs); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(ls(t, dir), " "); got != ".t-0-6.tmp t-0-0-2.txt t-0-3-5.txt" {
		t.Fatalf("after 8 records with flush.size=3: %s", got)
	}
	dir = t.TempDir()
	tk = startTask(t, dir, "rotate.size.bytes", "4", "format", "raw")
	_ = tk.Put(ctx, []*data.Record{rec("t", 0, 0, "abc"), rec("t", 0, 1, "d"), rec("t", 0, 2, "e"), rec("t", 0, 3, "f")})
	if got := strings.Join(ls(t, dir), " "); got != ".t-0-3.tmp t-0-0-0.txt t-0-1-2.txt" {
		t.Fatalf("after rotating at 4 bytes: %s", got)
	}
}

// A task that dies mid-file (no Stop, no Close: a kill -9) leaves a temp
// file; the next task deletes it, resumes after the committed files, and
// skips records the worker hands it again from before that point: every
// record ends in exactly one final file.
func TestCrashRecoveryKeepsEveryRecordOnce(t *testing.T) {
	dir := t.TempDir()
	tp := []sdk.TopicPartition{{Topic: "t", Partition: 0}, {Topic: "t", Partition: 1}}
	batch := func(p int32, from, to int64) []*data.Record {
		var out []*data.Record
		for o := from; o < to; o++ {
			out = append(out, rec("t", p, o, fmt.Sprintf("%d-%d", p, o)))
		}
		return out
	}
	a := startTask(t, dir, "format", "raw")
	if off, _ := a.Open(ctx, tp); len(off) != 0 {
		t.Fatalf("fresh directory: rewind %v", off)
	}
	_ = a.Put(ctx, append(batch(0, 0, 10), batch(1, 0, 5)...))
	_, _ = a.PreCommit(ctx, nil)
	_ = a.Put(ctx, batch(0, 10, 15)) // never committed: a crash follows

	b := startTask(t, dir, "format", "raw")
	off, err := b.Open(ctx, tp)
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(off, func(i, j int) bool { return off[i].Partition < off[j].Partition })
	if len(off) != 2 || off[0].Offset != 10 || off[1].Offset != 5 {
		t.Fatalf("rewind %v, want t/0 at 10 and t/1 at 5", off)
	}
	for _, n := range ls(t, dir) {
		if strings.HasSuffix(n, ".tmp") {
			t.Fatalf("temp file %s survived recovery", n)
		}
	}
	// The worker's group offset was older: it hands over 3..20 again.
	_ = b.Put(ctx, append(batch(0, 3, 20), batch(1, 0, 8)...))
	_, _ = b.PreCommit(ctx, nil)
	for p, n := range map[int32]int64{0: 20, 1: 8} {
		var got []string
		for _, name := range ls(t, dir) {
			if f, ok := parseName(name); ok && f.partition == p {
				got = append(got, fileLines(t, filepath.Join(dir, name))...)
			}
		}
		sort.Slice(got, func(i, j int) bool { return num(got[i]) < num(got[j]) })
		if int64(len(got)) != n {
			t.Fatalf("partition %d: %d records in final files, want %d: %v", p, len(got), n, got)
		}
		for i, l := range got {
			if l != fmt.Sprintf("%d-%d", p, i) {
				t.Fatalf("partition %d: record %d is %q", p, i, l)
			}
		}
	}
}

func fileLines(t *testing.T, path string) []string {
	return strings.Split(strings.TrimSuffix(read(t, path), "\n"), "\n")
}

func num(l string) int {
	var p, o int
	_, _ = fmt.Sscanf(l, "%d-%d", &p, &o)
	return o
}

func TestValidate(t *testing.T) {
	vals, _ := connector{}.Validate(ctx, map[string]string{"directory": "rel/dir", "format": "csv", "record.fields": "key,color", "flush.size": "-1"})
	bad := map[string]bool{}
	for _, v := range vals {
		if len(v.Errors) > 0 {
			bad[v.Name] = true
		}
	}
	for _, k := range []string{"directory", "format", "record.fields", "flush.size"} {
		if !bad[k] {
			t.Errorf("%s: no error", k)
		}
	}
}

// BenchmarkPutNDJSON measures the sink alone: 200-byte string values in
// batches of 500, a commit (fsync and rename) every 20 batches.
func BenchmarkPutNDJSON(b *testing.B) {
	dir := b.TempDir()
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(ctx, sdk.TaskContext{Logger: slog.Default()}, map[string]string{"directory": dir}); err != nil {
		b.Fatal(err)
	}
	value := strings.Repeat("x", 200)
	batch := make([]*data.Record, 500)
	b.SetBytes(int64(len(batch) * len(value)))
	off := int64(0)
	for i := 0; b.Loop(); i++ {
		for j := range batch {
			batch[j] = rec("t", 0, off, value)
			off++
		}
		if err := tk.Put(ctx, batch); err != nil {
			b.Fatal(err)
		}
		if i%20 == 19 {
			if _, err := tk.PreCommit(ctx, nil); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.ReportMetric(float64(off)/b.Elapsed().Seconds(), "records/s")
}
