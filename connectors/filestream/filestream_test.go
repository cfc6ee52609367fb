package main

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

var limits = sdk.PollLimits{MaxRecords: 100, MaxWait: 50 * time.Millisecond}

func startSource(t *testing.T, file string, committed []sdk.Position) *sourceTask {
	t.Helper()
	task := sourceConnector{}.NewTask().(*sourceTask)
	tc := sdk.TaskContext{Connector: "src", Logger: slog.Default()}
	if err := task.Start(context.Background(), tc, map[string]string{"file": file, "topic": "lines"}, committed); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = task.Stop(context.Background()) })
	return task
}

func values(recs []*data.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Value.(string))
	}
	return out
}

func TestSourceReadsCompleteLinesAndResumesFromThePosition(t *testing.T) {
	file := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(file, []byte("one\r\ntwo\nthr"), 0o644); err != nil {
		t.Fatal(err)
	}
	task := startSource(t, file, nil)
	recs, err := task.Poll(context.Background(), limits)
	if err != nil {
		t.Fatal(err)
	}
	if got := values(recs); len(got) != 2 || got[0] != "one" || got[1] != "two" {
		t.Fatalf("first poll: %q", got)
	}
	if pos := recs[1].SourceOffset[positionKey]; pos != int64(9) {
		t.Fatalf("position after two lines: %v, want 9", pos)
	}
	if recs[1].SourcePartition[filenameKey] != file || recs[1].Topic != "lines" {
		t.Fatalf("record: %+v", recs[1])
	}
	// The unfinished line is read once it ends.
	f, _ := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	_, _ = f.WriteString("ee\nfour\n")
	_ = f.Close()
	recs, _ = task.Poll(context.Background(), limits)
	if got := values(recs); len(got) != 2 || got[0] != "three" || got[1] != "four" {
		t.Fatalf("second poll: %q", got)
	}
	// A new task started from the committed position reads only what
	// follows it.
	again := startSource(t, file, []sdk.Position{{Partition: map[string]any{filenameKey: file}, Offset: map[string]any{positionKey: int64(9)}}})
	recs, _ = again.Poll(context.Background(), limits)
	if got := values(recs); len(got) != 2 || got[0] != "three" {
		t.Fatalf("resumed: %q", got)
	}
}

func TestSourceWaitsForAMissingFile(t *testing.T) {
	file := filepath.Join(t.TempDir(), "later.txt")
	task := startSource(t, file, nil)
	if recs, err := task.Poll(context.Background(), limits); err != nil || len(recs) != 0 {
		t.Fatalf("missing file: %v %v", recs, err)
	}
	_ = os.WriteFile(file, []byte("hello\n"), 0o644)
	recs, err := task.Poll(context.Background(), limits)
	if err != nil || len(values(recs)) != 1 {
		t.Fatalf("after creation: %v %v", values(recs), err)
	}
}

func TestSinkAppendsValuesAndSyncsOnPreCommit(t *testing.T) {
	file := filepath.Join(t.TempDir(), "out.txt")
	task := sinkConnector{}.NewTask()
	ctx := context.Background()
	if err := task.Start(ctx, sdk.TaskContext{}, map[string]string{"file": file}); err != nil {
		t.Fatal(err)
	}
	if err := task.Put(ctx, []*data.Record{{Value: "a"}, {Value: nil}, {Value: int64(7)}}); err != nil {
		t.Fatal(err)
	}
	// Visible in the file once Put returns, as with Kafka's sink.
	if b, _ := os.ReadFile(file); string(b) != "a\nnull\n7\n" {
		t.Fatalf("file after Put: %q", b)
	}
	offs := []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 3}}
	safe, err := task.PreCommit(ctx, offs)
	if err != nil || len(safe) != 1 || safe[0].Offset != 3 {
		t.Fatalf("pre-commit: %v %v", safe, err)
	}
	b, _ := os.ReadFile(file)
	if string(b) != "a\nnull\n7\n" {
		t.Fatalf("file: %q", b)
	}
	_ = task.Stop(ctx)
}

func TestValidateRequiresOneTopic(t *testing.T) {
	vals, _ := sourceConnector{}.Validate(context.Background(), map[string]string{"topic": "a,b"})
	for _, v := range vals {
		if v.Name == "topic" && len(v.Errors) == 1 {
			return
		}
	}
	t.Fatalf("a topic list was accepted: %+v", vals)
}
