package sdk

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// linesTask returns the same batch of file-tail-like records on every
// Poll: one partition map and one header slice shared by the run, a
// source offset of its own per record.
type linesTask struct{ recs []*data.Record }

func (t *linesTask) Start(context.Context, TaskContext, map[string]string, []Position) error {
	return nil
}
func (t *linesTask) Poll(context.Context, PollLimits) ([]*data.Record, error) { return t.recs, nil }
func (t *linesTask) Commit(context.Context, Commit) error                     { return nil }
func (t *linesTask) Stop(context.Context) error                               { return nil }

// BenchmarkSourceLines is the SDK's share of a file tail's Poll: fill
// (partition keys, sizes) and takeBatch (positions, packing) for 8000
// 200-byte lines of one file, as the worker asks for them.
func BenchmarkSourceLines(b *testing.B) {
	const n = 8000
	part := map[string]any{"fingerprint": "0123456789abcdef"}
	path := "/tmp/sluice-connectorbench-1234567890/bench-filetail/logs-1/app-0.log" // as long as the benchmark's
	headers := []data.Header{{Key: "file", Schema: data.StringSchema, Value: path}}
	pad := strings.Repeat("x", 200)
	recs := make([]*data.Record, n)
	for i := range recs {
		recs[i] = &data.Record{Topic: "t", Partition: -1, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: fmt.Sprintf("line %012d %s", i, pad)[:199],
			SourcePartition: part, SourceOffset: map[string]any{"position": int64(i * 200), "path": path},
			Headers: headers}
	}
	t := &sourceTask{task: &linesTask{recs: recs}}
	limits := PollLimits{MaxRecords: n, MaxBytes: 4 << 20, MaxWait: time.Second}
	w := wire{positions: true, packed: connectv1.NegotiatePacked(connectv1.PackedNewestVersion)}
	b.SetBytes(n * 200)
	b.ReportAllocs()
	for b.Loop() {
		if err := t.fill(context.Background(), limits, w); err != nil {
			b.Fatal(err)
		}
		for len(t.pending) > 0 {
			if _, err := t.takeBatch(limits, w); err != nil {
				b.Fatal(err)
			}
		}
		t.batches = t.batches[:0]
	}
}
