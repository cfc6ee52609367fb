// Command testplugin is the Go plugin pluginhost's tests run. Its
// behaviour is chosen by environment variables (process-level faults) and
// by task configs (what tasks do):
//
//	TESTPLUGIN_GARBAGE=1          print to stdout before the handshake
//	TESTPLUGIN_CRASH_AFTER=100ms  exit(3) that long after starting
//	TESTPLUGIN_PANIC_AFTER=100ms  panic in a goroutine of its own
//	TESTPLUGIN_STOP_AFTER=100ms   SIGSTOP itself (hangs, health checks fail)
//	TESTPLUGIN_LEAK=1             allocate and touch 8 MiB every 10ms
//
// test.Source task config mode: generate (count records, default
// unbounded), alltypes (connectv1test.AllTypes once), gogc (one record
// whose value is $GOGC), hang (Poll ignores its context and never
// returns). test.Sink task config mode: discard, expect-alltypes
// (per-record errors for records that differ from AllTypes), expect-raw
// (per-record errors for records that differ from RawRecord(i)), retry
// (every Put is retriable).
package main

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1/connectv1test"
	"github.com/sluice-io/sluice/connect/sdk"
)

func init() {
	if os.Getenv("TESTPLUGIN_GARBAGE") != "" {
		fmt.Println("garbage from init, before the handshake")
	}
}

func main() {
	if os.Getenv("TESTPLUGIN_GARBAGE") != "" {
		fmt.Println("garbage from main|1|unix|/nope|grpc")
		_, _ = os.Stdout.WriteString("more garbage\n")
	}
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_CRASH_AFTER")); err == nil {
		time.AfterFunc(d, func() {
			sdk.Logger.Error("testplugin: crashing on purpose")
			os.Exit(3)
		})
	}
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_PANIC_AFTER")); err == nil {
		time.AfterFunc(d, func() { panic("testplugin: panicking on purpose") })
	}
	if d, err := time.ParseDuration(os.Getenv("TESTPLUGIN_STOP_AFTER")); err == nil {
		time.AfterFunc(d, func() { _ = syscall.Kill(os.Getpid(), syscall.SIGSTOP) })
	}
	if os.Getenv("TESTPLUGIN_LEAK") != "" {
		go leak()
	}
	sdk.Serve(source{}, sink{})
}

var leaked [][]byte

func leak() {
	for {
		b := make([]byte, 8<<20)
		for i := 0; i < len(b); i += 4096 {
			b[i] = 1
		}
		leaked = append(leaked, b)
		time.Sleep(10 * time.Millisecond)
	}
}

type base struct{}

func (base) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	return nil, nil
}

func (base) TaskConfigs(_ context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	out := make([]map[string]string, maxTasks)
	for i := range out {
		out[i] = map[string]string{"mode": cfg["mode"], "count": cfg["count"], "task": strconv.Itoa(i)}
	}
	return out, nil
}

func (base) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return true, nil
}

type source struct{ base }

func (source) Describe() sdk.Descriptor {
	dflt := "generate"
	return sdk.Descriptor{Type: sdk.Source, Class: "test.Source", Aliases: []string{"TestSource"}, Version: "1.0",
		Config: []sdk.ConfigKey{{Name: "mode", Type: "STRING", Default: &dflt, Importance: "HIGH"}}}
}

func (source) NewTask() sdk.SourceTask { return &sourceTask{} }

type sourceTask struct {
	mode  string
	count int64
	next  int64
	done  chan struct{}
	sent  bool
}

func (t *sourceTask) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string, committed []sdk.Position) error {
	tc.Logger.Info("source task starting", "mode", cfg["mode"])
	t.mode, t.done = cfg["mode"], make(chan struct{})
	t.count = -1
	if c, err := strconv.ParseInt(cfg["count"], 10, 64); err == nil {
		t.count = c
	}
	for _, p := range committed {
		if n, ok := p.Offset["n"].(int64); ok && n+1 > t.next {
			t.next = n + 1
		}
	}
	return nil
}

func (t *sourceTask) Poll(ctx context.Context, lim sdk.PollLimits) ([]*data.Record, error) {
	switch t.mode {
	case "hang":
		select {} //nolint:staticcheck // hangs on purpose, deaf to ctx
	case "alltypes", "gogc":
		if t.sent {
			<-ctx.Done()
			return nil, nil
		}
		t.sent = true
		if t.mode == "gogc" {
			return []*data.Record{{Topic: "env", Partition: -1, Timestamp: -1, Value: os.Getenv("GOGC")}}, nil
		}
		return connectv1test.AllTypes(), nil
	}
	var out []*data.Record
	for len(out) < lim.MaxRecords && (t.count < 0 || t.next < t.count) {
		out = append(out, &data.Record{Topic: "gen", Partition: -1, Timestamp: -1,
			Value:           []byte("record-" + strconv.FormatInt(t.next, 10)),
			SourcePartition: map[string]any{"p": "gen"}, SourceOffset: map[string]any{"n": t.next}})
		t.next++
	}
	if len(out) == 0 {
		select {
		case <-ctx.Done():
		case <-t.done:
		}
	}
	return out, nil
}

func (t *sourceTask) Commit(context.Context, sdk.Commit) error { return nil }

func (t *sourceTask) Stop(context.Context) error {
	close(t.done)
	return nil
}

type sink struct{ base }

func (sink) Describe() sdk.Descriptor {
	return sdk.Descriptor{Type: sdk.Sink, Class: "test.Sink", Aliases: []string{"TestSink"}, Version: "1.0"}
}

func (sink) NewTask() sdk.SinkTask { return &sinkTask{} }

type sinkTask struct {
	mode string
	seen atomic.Int64
	want []*data.Record
}

func (t *sinkTask) Start(_ context.Context, _ sdk.TaskContext, cfg map[string]string) error {
	fmt.Fprintln(os.Stderr, "sink task starting, said on os.Stderr")
	t.mode = cfg["mode"]
	t.want = connectv1test.AllTypes()
	return nil
}

func (t *sinkTask) Open(context.Context, []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	return nil, nil
}

func (t *sinkTask) Put(_ context.Context, recs []*data.Record) error {
	switch t.mode {
	case "retry":
		return sdk.Retriable(250*time.Millisecond, fmt.Errorf("destination busy"))
	case "expect-alltypes":
		errs := map[int]error{}
		for i, r := range recs {
			if i >= len(t.want) {
				errs[i] = fmt.Errorf("unexpected record %d", i)
				continue
			}
			w := t.want[i]
			if !w.KeySchema.Equal(r.KeySchema) || !data.ValueEqual(w.Key, r.Key) ||
				!w.ValueSchema.Equal(r.ValueSchema) || !data.ValueEqual(w.Value, r.Value) || len(w.Headers) != len(r.Headers) {
				errs[i] = fmt.Errorf("record %d differs: %v %v", i, r.ValueSchema, r.Value)
			}
		}
		if len(errs) > 0 {
			return &sdk.PutErrors{Errors: errs}
		}
	case "expect-raw":
		errs := map[int]error{}
		for i, r := range recs {
			if err := connectv1test.DiffSink(connectv1test.RawRecord(i), r); err != nil {
				errs[i] = err
			}
		}
		if len(errs) > 0 {
			return &sdk.PutErrors{Errors: errs}
		}
	}
	t.seen.Add(int64(len(recs)))
	return nil
}

func (t *sinkTask) PreCommit(_ context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	return offs, nil
}

func (t *sinkTask) Close(context.Context, []sdk.TopicPartition) error { return nil }
func (t *sinkTask) Stop(context.Context) error                        { return nil }
