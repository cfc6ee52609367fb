package sdk

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// fakeSource returns its scripted batches, one per Poll, and records
// commits.
type fakeSource struct {
	batches [][]*data.Record
	commits []Commit
	stopped bool
}

func (f *fakeSource) Start(context.Context, TaskContext, map[string]string, []Position) error {
	return nil
}
func (f *fakeSource) Poll(ctx context.Context, _ PollLimits) ([]*data.Record, error) {
	if len(f.batches) == 0 {
		<-ctx.Done()
		return nil, ctx.Err() // the wait running out is not a failure
	}
	b := f.batches[0]
	f.batches = f.batches[1:]
	return b, nil
}
func (f *fakeSource) Commit(_ context.Context, c Commit) error {
	f.commits = append(f.commits, c)
	return nil
}
func (f *fakeSource) Stop(context.Context) error { f.stopped = true; return nil }

type fakeConnector struct {
	task SourceTask
}

func (c fakeConnector) Describe() Descriptor {
	return Descriptor{Type: Source, Class: "fake.Source", Aliases: []string{"Fake"}}
}
func (fakeConnector) Validate(context.Context, map[string]string) ([]ConfigValue, error) {
	return nil, nil
}
func (fakeConnector) TaskConfigs(context.Context, map[string]string, int) ([]map[string]string, error) {
	return nil, nil
}
func (fakeConnector) AlterOffsets(context.Context, map[string]string, Offsets) (bool, error) {
	return false, nil
}
func (c fakeConnector) NewTask() SourceTask { return c.task }

func rec(file string, pos int64) *data.Record {
	return &data.Record{Topic: "t", Partition: -1, Value: []byte(fmt.Sprintf("%s:%d", file, pos)),
		SourcePartition: map[string]any{"file": file}, SourceOffset: map[string]any{"pos": pos}}
}

// The SDK cuts batches to the host's limits, keeps the overflow for the
// next Poll without calling the task again, numbers non-empty batches and
// hands Commit the latest position per source partition of the committed
// batches only.
func TestSourceBatchingAndCommitPositions(t *testing.T) {
	ctx := context.Background()
	task := &fakeSource{batches: [][]*data.Record{
		{rec("a", 1), rec("b", 1), rec("a", 2), rec("a", 3), rec("b", 2)},
		{rec("c", 1)},
	}}
	srv := newServer([]Connector{fakeConnector{task: task}}, "conn")
	id := &connectv1.TaskId{Connector: "conn", Task: 0}
	if _, err := srv.source.Start(ctx, &connectv1.SourceStartRequest{Task: id, Generation: 2, ConnectorClass: "Fake"}); err != nil {
		t.Fatal(err)
	}
	poll := func() *connectv1.PollResponse {
		t.Helper()
		resp, err := srv.source.Poll(ctx, &connectv1.PollRequest{Task: id, Generation: 2, MaxRecords: 2, MaxWaitMs: 10})
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	var got []string
	for _, want := range []struct {
		seq uint64
		n   int
	}{{1, 2}, {2, 2}, {3, 1}, {4, 1}, {0, 0}} {
		r := poll()
		if r.GetBatchSeq() != want.seq || len(r.GetRecords()) != want.n {
			t.Fatalf("batch seq %d with %d records, want %d with %d", r.GetBatchSeq(), len(r.GetRecords()), want.seq, want.n)
		}
		for _, pr := range r.GetRecords() {
			got = append(got, string(pr.GetValue().GetRaw()))
		}
	}
	if fmt.Sprint(got) != "[a:1 b:1 a:2 a:3 b:2 c:1]" {
		t.Fatalf("records %v", got)
	}
	if _, err := srv.source.Commit(ctx, &connectv1.CommitRequest{Task: id, Generation: 2, BatchSeq: 2}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.source.Commit(ctx, &connectv1.CommitRequest{Task: id, Generation: 2, BatchSeq: 4}); err != nil {
		t.Fatal(err)
	}
	if len(task.commits) != 2 {
		t.Fatalf("commits %v", task.commits)
	}
	if c := task.commits[0]; c.BatchSeq != 2 || fmt.Sprint(c.Positions) != "[{map[file:a] map[pos:3]} {map[file:b] map[pos:1]}]" {
		t.Fatalf("first commit %+v", c)
	}
	if c := task.commits[1]; fmt.Sprint(c.Positions) != "[{map[file:b] map[pos:2]} {map[file:c] map[pos:1]}]" {
		t.Fatalf("second commit %+v", c)
	}
	_, err := srv.source.Commit(ctx, &connectv1.CommitRequest{Task: id, Generation: 2, BatchSeq: 9})
	if status.Code(err) != codes.InvalidArgument {
		t.Fatalf("commit past the last batch: %v", err)
	}
	_, err = srv.source.Poll(ctx, &connectv1.PollRequest{Task: id, Generation: 1})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("stale generation: %v", err)
	}
	_, err = srv.source.Start(ctx, &connectv1.SourceStartRequest{Task: id, Generation: 1, ConnectorClass: "Fake"})
	if status.Code(err) != codes.FailedPrecondition {
		t.Fatalf("start of an older generation: %v", err)
	}
	// The same generation may start again (a restart without a
	// rebalance); the running instance is stopped first.
	again := &fakeSource{}
	srv.source.tasks.byName["Fake"] = fakeConnector{task: again}
	if _, err := srv.source.Start(ctx, &connectv1.SourceStartRequest{Task: id, Generation: 2, ConnectorClass: "Fake"}); err != nil || !task.stopped {
		t.Fatalf("restart in the same generation: %v, old stopped %v", err, task.stopped)
	}
	if _, err := srv.source.Stop(ctx, &connectv1.StopRequest{Task: id, Generation: 2}); err != nil || !again.stopped {
		t.Fatalf("stop: %v", err)
	}
	_, err = srv.source.Poll(ctx, &connectv1.PollRequest{Task: id, Generation: 2})
	if status.Code(err) != codes.NotFound {
		t.Fatalf("poll after stop: %v", err)
	}
}

type panicky struct{ fakeSource }

func (*panicky) Poll(context.Context, PollLimits) ([]*data.Record, error) { panic("boom") }

func TestPanicFailsTheTaskNotThePlugin(t *testing.T) {
	ctx := context.Background()
	srv := newServer([]Connector{fakeConnector{task: &panicky{}}}, "c")
	id := &connectv1.TaskId{Connector: "c"}
	if _, err := srv.source.Start(ctx, &connectv1.SourceStartRequest{Task: id, Generation: 1, ConnectorClass: "fake.Source"}); err != nil {
		t.Fatal(err)
	}
	_, err := srv.source.Poll(ctx, &connectv1.PollRequest{Task: id, Generation: 1, MaxWaitMs: 10})
	if s, _ := status.FromError(err); s == nil || s.Code() != codes.Unknown || !strings.Contains(s.Message(), "panic: boom") {
		t.Fatalf("poll that panics: %v", err)
	}
}

func TestRetriableUnwrapsAndValidateRequired(t *testing.T) {
	err := Retriable(1500*time.Millisecond, errors.New("busy"))
	var re *RetriableError
	if !errors.As(fmt.Errorf("wrapped: %w", err), &re) || re.Backoff != 1500*time.Millisecond {
		t.Fatal("a wrapped retriable error is not found")
	}
	cv := ValidateRequired(Descriptor{Config: []ConfigKey{{Name: "file", Required: true}, {Name: "topic"}}}, map[string]string{"topic": "x"})
	if len(cv) != 2 || len(cv[0].Errors) != 1 || cv[0].Errors[0] != `Missing required configuration "file" which has no default value.` ||
		len(cv[1].Errors) != 0 || *cv[1].Value != "x" {
		t.Fatalf("ValidateRequired: %+v", cv)
	}
}
