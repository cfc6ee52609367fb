package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/filetail/tail"
)

func TestValidateNamesEachBadKey(t *testing.T) {
	base := map[string]string{"topic": "logs", "include": "/var/log/*.log"}
	for _, tc := range []struct{ key, value, want string }{
		{"topic", "", "Missing required"},
		{"include", "", "Missing required"},
		{"include", "/var/log/[.log", "Invalid glob"},
		{"read_from", "middle", "beginning or end"},
		{"max_line_bytes", "0", "at least 1"},
		{"max_line_bytes", "lots", "must be an integer"},
		{"long_lines", "wrap", "truncate or split"},
		{"multiline.start_pattern", "([", "Invalid regular expression"},
		{"multiline.start_pattern", `^\S`, "set both or neither"},
		{"multiline.mode", "continue", "halt_with"},
		{"record.key", "host", "none or path"},
	} {
		cfg := map[string]string{}
		for k, v := range base {
			cfg[k] = v
		}
		cfg[tc.key] = tc.value
		vals, err := connector{}.Validate(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, v := range vals {
			if v.Name == tc.key {
				got = v.Errors
			}
		}
		if len(got) == 0 || !strings.Contains(strings.Join(got, ";"), tc.want) {
			t.Errorf("%s=%q: errors %q, want one saying %q", tc.key, tc.value, got, tc.want)
		}
		if err := (&task{}).Start(context.Background(), sdk.TaskContext{Logger: slog.Default()}, cfg, nil); err == nil {
			t.Errorf("%s=%q: a task started", tc.key, tc.value)
		}
	}
	vals, _ := connector{}.Validate(context.Background(), base)
	for _, v := range vals {
		if len(v.Errors) > 0 {
			t.Errorf("a good config: %s: %v", v.Name, v.Errors)
		}
	}
}

var limits = sdk.PollLimits{MaxRecords: 10000, MaxBytes: 1 << 20, MaxWait: 300 * time.Millisecond}

func startTask(t *testing.T, cfg map[string]string, committed []sdk.Position) *task {
	t.Helper()
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "tail", Logger: slog.Default()}, cfg, committed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tk.Stop(context.Background()) })
	return tk
}

// pollUntil polls until n records came (or 10 s passed).
func pollUntil(t *testing.T, tk *task, n int) []*data.Record {
	t.Helper()
	var all []*data.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(all) < n && time.Now().Before(deadline) {
		recs, err := tk.Poll(context.Background(), limits)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, withOffsets(t, tk, recs)...)
	}
	return all
}

// withOffsets gives each record of tk's latest Poll its source offset, as
// the SDK asks for it (sdk.SourceOffsetsAt): the records leave it nil.
func withOffsets(t *testing.T, tk *task, recs []*data.Record) []*data.Record {
	t.Helper()
	for i, r := range recs {
		if r.SourceOffset != nil {
			t.Fatalf("record %d carries its own offset %v", i, r.SourceOffset)
		}
		if r.SourceOffset = tk.SourceOffsetAt(i); r.SourceOffset == nil {
			t.Fatalf("no offset for record %d of %d", i, len(recs))
		}
	}
	if tk.SourceOffsetAt(len(recs)) != nil || tk.SourceOffsetAt(-1) != nil {
		t.Fatal("an offset past the latest Poll's records")
	}
	return recs
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
}

func TestTaskTailsThroughRotationAndResumesFromCommitted(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "one\ntwo\n")
	cfg := map[string]string{"topic": "logs", "include": filepath.Join(dir, "*.log"), "record.key": "path",
		"glob_minimum_cooldown_ms": "50", "rotate_wait_secs": "0"}
	tk := startTask(t, cfg, nil)
	recs := pollUntil(t, tk, 2)
	if len(recs) != 2 || recs[0].Value != "one" || recs[1].Value != "two" {
		t.Fatalf("first records: %v", recs)
	}
	r := recs[1]
	if r.Topic != "logs" || r.Key != log || r.Header("file") == nil || r.Header("file").Value != log ||
		r.SourceOffset["position"] != int64(8) || !strings.HasPrefix(r.SourcePartition["fingerprint"].(string), "crc64:") {
		t.Fatalf("record: %+v", r)
	}
	// Rotation by rename (out of the glob) and create.
	appendFile(t, log, "three\n")
	if err := os.Rename(log, filepath.Join(dir, "app.log.1")); err != nil {
		t.Fatal(err)
	}
	appendFile(t, log, "new one\n")
	recs = pollUntil(t, tk, 2)
	got := map[string]bool{}
	for _, r := range recs {
		got[r.Value.(string)] = true
	}
	if len(recs) != 2 || !got["three"] || !got["new one"] {
		t.Fatalf("after rotation: %v", recs)
	}
	var committed []sdk.Position
	for _, r := range recs {
		if r.Value == "new one" {
			committed = append(committed, sdk.Position{Partition: r.SourcePartition, Offset: r.SourceOffset})
		}
	}
	if err := tk.Commit(context.Background(), sdk.Commit{BatchSeq: 2, Positions: committed}); err != nil {
		t.Fatal(err)
	}
	_ = tk.Stop(context.Background())
	appendFile(t, log, "after restart\n")
	tk2 := startTask(t, cfg, committed)
	recs = pollUntil(t, tk2, 1)
	if len(recs) != 1 || recs[0].Value != "after restart" {
		t.Fatalf("after restart: %v", recs)
	}
}

func TestTaskNoticesNewLinesPromptly(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "first\n")
	// A long rescan period: only notifications can make this prompt.
	tk := startTask(t, map[string]string{"topic": "logs", "include": log, "glob_minimum_cooldown_ms": "60000"}, nil)
	pollUntil(t, tk, 1)
	time.AfterFunc(50*time.Millisecond, func() { appendFile(t, log, "second\n") })
	start := time.Now()
	recs := pollUntil(t, tk, 1)
	if len(recs) != 1 || recs[0].Value != "second" {
		t.Fatalf("records: %v", recs)
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("a new line took %v", d)
	}
	// A new file in a watched directory is found before the rescan.
	other := filepath.Join(dir, "other.log")
	tk2 := startTask(t, map[string]string{"topic": "logs", "include": filepath.Join(dir, "*.log"), "glob_minimum_cooldown_ms": "60000"}, nil)
	pollUntil(t, tk2, 2)
	appendFile(t, other, fmt.Sprintln("in a new file"))
	recs = pollUntil(t, tk2, 1)
	if len(recs) != 1 || recs[0].Value != "in a new file" {
		t.Fatalf("new file: %v", recs)
	}
}

func TestDescribeAndAlterOffsets(t *testing.T) {
	d := connector{}.Describe()
	if d.Type != sdk.Source || d.Class != "sluice.connect.FileTailSource" || !d.AlterOffsets {
		t.Fatalf("descriptor %+v", d)
	}
	ok := sdk.Offsets{Source: []sdk.Position{
		{Partition: map[string]any{"fingerprint": "crc64:00"}, Offset: map[string]any{"position": float64(12)}},
		{Partition: map[string]any{"fingerprint": "crc64:01"}}, // a reset
	}}
	if accepted, err := (connector{}).AlterOffsets(context.Background(), nil, ok); err != nil || !accepted {
		t.Fatalf("good offsets: %v %v", accepted, err)
	}
	for _, bad := range []sdk.Position{
		{Partition: map[string]any{"filename": "/x"}, Offset: map[string]any{"position": int64(1)}},
		{Partition: map[string]any{"fingerprint": "crc64:00"}, Offset: map[string]any{"position": int64(-1)}},
		{Partition: map[string]any{"fingerprint": "crc64:00"}, Offset: map[string]any{"position": "ten"}},
	} {
		if _, err := (connector{}).AlterOffsets(context.Background(), nil, sdk.Offsets{Source: []sdk.Position{bad}}); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
}

// The multiline and long-line keys reach the engine: a stack trace is one
// record, the last event goes out on its timeout, a long line is split.
func TestTaskMultilineAndLongLineConfig(t *testing.T) {
	dir := t.TempDir()
	log := filepath.Join(dir, "app.log")
	appendFile(t, log, "Exception in main\n  at a.b\n  at c.d\nnext event\n"+strings.Repeat("z", 25)+"\n")
	tk := startTask(t, map[string]string{"topic": "logs", "include": log,
		"multiline.start_pattern": `^\S`, "multiline.condition_pattern": `^\s`, "multiline.mode": "continue_through",
		"multiline.timeout_ms": "100", "max_line_bytes": "20", "long_lines": "split"}, nil)
	recs := pollUntil(t, tk, 4)
	var got []string
	for _, r := range recs {
		got = append(got, r.Value.(string))
	}
	want := []string{"Exception in main\n  at a.b\n  at c.d", "next event", strings.Repeat("z", 20), "zzzzz"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("records %q, want %q", got, want)
	}
	if end := recs[len(recs)-1].SourceOffset["position"]; end != int64(len("Exception in main\n  at a.b\n  at c.d\nnext event\n")+26) {
		t.Fatalf("last position %v", end)
	}
}

// The shipped example is a valid config.
func TestExampleConfigIsValid(t *testing.T) {
	b, err := os.ReadFile("../../examples/connect/filetail.json")
	if err != nil {
		t.Fatal(err)
	}
	var ex struct {
		Name   string            `json:"name"`
		Config map[string]string `json:"config"`
	}
	if err := json.Unmarshal(b, &ex); err != nil {
		t.Fatal(err)
	}
	if ex.Name == "" || ex.Config["connector.class"] != class {
		t.Fatalf("example: %+v", ex)
	}
	vals, _ := connector{}.Validate(context.Background(), ex.Config)
	for _, v := range vals {
		if len(v.Errors) > 0 {
			t.Errorf("%s: %v", v.Name, v.Errors)
		}
	}
}

// Every record carries its own file's path under file_key, across runs of
// several files' lines in one Poll, and none when file_key is empty.
func TestTaskPathHeaderPerRecord(t *testing.T) {
	for _, key := range []string{"file", "source_path", ""} {
		dir := t.TempDir()
		paths := []string{filepath.Join(dir, "a.log"), filepath.Join(dir, "b.log"), filepath.Join(dir, "c d.log")}
		for _, p := range paths {
			var lines strings.Builder // distinct first lines: distinct files
			for i := range 3000 {
				fmt.Fprintf(&lines, "%s line %d\n", filepath.Base(p), i)
			}
			appendFile(t, p, lines.String())
		}
		cfg := map[string]string{"topic": "logs", "include": filepath.Join(dir, "*.log"), "file_key": key,
			"max_read_bytes": "4096"} // short turns: runs of each file's lines interleave
		tk := startTask(t, cfg, nil)
		recs := pollUntil(t, tk, 3*3000)
		if len(recs) != 3*3000 {
			t.Fatalf("file_key %q: %d records, want %d", key, len(recs), 3*3000)
		}
		runs, perFile := 0, map[string]int{}
		for i, r := range recs {
			p, _ := r.SourceOffset["path"].(string)
			perFile[p]++
			if i == 0 || recs[i-1].SourceOffset["path"] != p {
				runs++
			}
			if key == "" {
				if r.Headers != nil {
					t.Fatalf("file_key empty: record %d has headers %+v", i, r.Headers)
				}
				continue
			}
			if len(r.Headers) != 1 || r.Headers[0].Key != key || r.Headers[0].Value != p ||
				!r.Headers[0].Schema.Equal(data.StringSchema) {
				t.Fatalf("file_key %q: record %d of %s has headers %+v", key, i, p, r.Headers)
			}
		}
		if runs < 4 || len(perFile) != 3 {
			t.Fatalf("file_key %q: %d runs over files %v; the test wants interleaved runs", key, runs, perFile)
		}
	}
}

// Records of runs of lines share their file's partition and header,
// looked up once per run: each record still gets the partition of its
// own file, also when a rotated file's successor has the same path.
func TestRecordsOfRunsKeepTheirFile(t *testing.T) {
	tk := &task{parts: map[tail.FileID]map[string]any{}, headers: map[string][]data.Header{}}
	tk.s.topic, tk.s.fileKey = "logs", "file"
	outs := []tail.Output{
		{ID: "crc64:a", Path: "/l/a.log", Text: "1", End: 2}, {ID: "crc64:a", Path: "/l/a.log", Text: "2", End: 4},
		{ID: "crc64:b", Path: "/l/b.log", Text: "3", End: 2},
		{ID: "crc64:a2", Path: "/l/a.log", Text: "4", End: 2}, // a.log rotated
		{ID: "crc64:a", Path: "/l/a.log.1", Text: "5", End: 6},
	}
	recs := withOffsets(t, tk, tk.records(outs))
	for i, r := range recs {
		o := outs[i]
		if r.SourcePartition[fingerprintPart] != string(o.ID) || r.SourceOffset[positionOffset] != o.End ||
			r.SourceOffset[pathOffset] != o.Path || r.Headers[0].Value != o.Path || r.Value != o.Text {
			t.Errorf("record %d: partition %v, offset %v, headers %v, value %v; want those of %+v",
				i, r.SourcePartition, r.SourceOffset, r.Headers, r.Value, o)
		}
	}
}

// boxText gives the interface any(s) would: the same type, the same text,
// comparable and switchable as usual.
func TestBoxText(t *testing.T) {
	slab := []string{"a line", "", "ü"}
	for i := range slab {
		v := boxText(&slab[i])
		s, ok := v.(string)
		if !ok || s != slab[i] || v != any(slab[i]) {
			t.Fatalf("boxText(%q) = %#v", slab[i], v)
		}
	}
	if allocs := testing.AllocsPerRun(100, func() { _ = boxText(&slab[0]) }); allocs != 0 {
		t.Errorf("%v allocations per box", allocs)
	}
}
