package pluginhost_test

import (
	"context"
	"fmt"
	"reflect"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/pluginhost"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/proto/connectv1/connectv1test"
)

// A worker asking for batch positions gets the newest position per source
// partition on the batch, keyed by its canonical JSON, and records without
// positions of their own; one that does not still gets both.
func TestPollBatchPositions(t *testing.T) {
	ctx := context.Background()
	p := launchTestPlugin(t, "pos")
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := src.Start(ctx, "test.Source", map[string]string{"mode": "generate", "count": "250"}, nil); err != nil {
		t.Fatal(err)
	}
	next := int64(0)
	for _, perBatch := range []bool{true, false, true} {
		b, err := src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 100, MaxWait: time.Second, BatchPositions: perBatch})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range b.Records {
			if r.Topic != "gen" || r.Partition != -1 || r.KafkaOffset != -1 || string(r.Value.([]byte)) != fmt.Sprintf("record-%d", next) {
				t.Fatalf("record %d: %+v", next, r)
			}
			if hasPos := r.SourcePartition != nil && r.SourceOffset["n"] == next; hasPos == perBatch {
				t.Fatalf("batch positions %v, record %d has its position: %v", perBatch, next, hasPos)
			}
			next++
		}
		want := []pluginhost.BatchPosition{{Key: `{"p":"gen"}`, Position: connectv1.Position{
			Partition: map[string]any{"p": "gen"}, Offset: map[string]any{"n": next - 1}}}}
		if !reflect.DeepEqual(b.Positions, want) {
			t.Fatalf("positions %+v, want %+v", b.Positions, want)
		}
	}
	if next != 250 {
		t.Fatalf("%d records, want 250", next)
	}
	// Records the packed form cannot carry still come, as messages.
	at := p.SourceTask(pluginhost.TaskID{Task: 1, Generation: 1})
	if err := at.Start(ctx, "test.Source", map[string]string{"mode": "alltypes"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := at.Poll(ctx, pluginhost.PollLimits{MaxRecords: 100, MaxWait: time.Second, BatchPositions: true})
	if err != nil {
		t.Fatal(err)
	}
	want := connectv1test.AllTypes()
	if len(b.Records) != len(want) || len(b.Positions) == 0 {
		t.Fatalf("%d records, %d positions", len(b.Records), len(b.Positions))
	}
	for i := range want {
		want[i].SourcePartition, want[i].SourceOffset = nil, nil
		if err := connectv1test.Diff(want[i], b.Records[i]); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
}

// Raw sink batches reach the plugin exactly (packed), and per-record
// errors keep their indexes whether the batch went packed or as messages.
func TestPutRawBatches(t *testing.T) {
	ctx := context.Background()
	p := launchTestPlugin(t, "raw")
	sink := p.SinkTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := sink.Start(ctx, "test.Sink", map[string]string{"mode": "expect-raw"}); err != nil {
		t.Fatal(err)
	}
	batch := func() []*data.Record {
		recs := make([]*data.Record, 20)
		for i := range recs {
			recs[i] = connectv1test.RawRecord(i)
		}
		return recs
	}
	if res, err := sink.Put(ctx, batch()); err != nil || len(res.Errors) != 0 {
		t.Fatalf("put raw: %+v %v", res, err)
	}
	changed := batch()
	changed[13].Value = []byte("something else")
	if res, err := sink.Put(ctx, changed); err != nil || len(res.Errors) != 1 || res.Errors[13] == "" {
		t.Fatalf("put a changed raw record: %+v %v", res, err)
	}
	mixed := batch()
	mixed[5].Value = map[string]any{"not": "raw"}
	if res, err := sink.Put(ctx, mixed); err != nil || len(res.Errors) != 1 || res.Errors[5] == "" {
		t.Fatalf("put a mixed batch: %+v %v", res, err)
	}
}

// Plugins run with GOGC=400 unless the worker's environment says otherwise.
func TestPluginsGetGOGC(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	ctx := context.Background()
	for _, c := range []struct {
		env  []string
		want string
	}{{nil, "400"}, {[]string{"GOGC=off"}, "off"}} {
		p, err := h.Launch(ctx, pl, "gogc", pluginhost.Limits{Env: c.env})
		if err != nil {
			t.Fatal(err)
		}
		src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 1})
		if err := src.Start(ctx, "test.Source", map[string]string{"mode": "gogc"}, nil); err != nil {
			t.Fatal(err)
		}
		b, err := src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 1, MaxWait: time.Second, BatchPositions: true})
		_ = p.Close()
		if err != nil || len(b.Records) != 1 || b.Records[0].Value != c.want {
			t.Fatalf("env %v: plugin's GOGC %v (%v), want %q", c.env, b.Records, err, c.want)
		}
	}
}

// launchTestPlugin starts the test plugin for connector name; it is
// closed when the test ends.
func launchTestPlugin(t *testing.T, name string) *pluginhost.Process {
	t.Helper()
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{})
	p, err := h.Launch(context.Background(), discoverOne(t, h, dir), name, pluginhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}
