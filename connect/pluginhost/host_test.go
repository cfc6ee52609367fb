package pluginhost_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/pluginhost"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/proto/connectv1/connectv1test"
)

var (
	buildOnce sync.Once
	buildDir  string
	buildErr  error
)

// testPlugin builds testdata/testplugin once per test run (go build
// inherits GOFLAGS from the environment) and returns a fresh copy in its
// own plugin.path directory, so a test may tamper with it.
func testPlugin(t testing.TB) (dir, path string) {
	t.Helper()
	buildOnce.Do(func() {
		buildDir, buildErr = os.MkdirTemp("", "pluginhost-build")
		if buildErr != nil {
			return
		}
		out, err := exec.Command("go", "build", "-o", filepath.Join(buildDir, "testplugin"), "./testdata/testplugin").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build testplugin: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	dir = t.TempDir()
	path = filepath.Join(dir, "testplugin")
	b, err := os.ReadFile(filepath.Join(buildDir, "testplugin"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir, path
}

func TestMain(m *testing.M) {
	if p := os.Getenv("PLUGINHOST_HELPER_PLUGIN"); p != "" {
		helperHost(p)
		return
	}
	code := m.Run()
	if buildDir != "" {
		_ = os.RemoveAll(buildDir)
	}
	os.Exit(code)
}

// syncBuffer collects the host's log so tests can check what plugins'
// stderr turned into.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newHost(t testing.TB, opts pluginhost.Options) (*pluginhost.Host, *syncBuffer) {
	t.Helper()
	sock, err := os.MkdirTemp("", "ph") // short: socket paths max 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	opts.SocketDir = sock
	opts.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	h, err := pluginhost.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = h.Close()
		_ = os.RemoveAll(sock)
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	return h, logs
}

func discoverOne(t testing.TB, h *pluginhost.Host, dir string) pluginhost.Plugin {
	t.Helper()
	ps, errs := h.Discover(context.Background(), []string{dir})
	if len(errs) > 0 || len(ps) != 1 {
		t.Fatalf("discover: %v %v", ps, errs)
	}
	return ps[0]
}

func TestDiscoverDescribesEveryConnector(t *testing.T) {
	dir, path := testPlugin(t)
	// Not plugins: a non-executable file and a directory.
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	h, _ := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	if pl.Path != path || len(pl.SHA256) != 64 {
		t.Fatalf("plugin %+v", pl)
	}
	got, d, ok := pluginhost.Find([]pluginhost.Plugin{pl}, "TestSource")
	if !ok || got.Path != path || d.GetClassName() != "test.Source" || d.GetType() != connectv1.ConnectorType_CONNECTOR_TYPE_SOURCE ||
		d.GetVersion() != "1.0" || len(d.GetConfig()) != 1 || d.GetConfig()[0].GetDefaultValue() != "generate" {
		t.Fatalf("find TestSource: %v %v", d, ok)
	}
	if _, d, ok := pluginhost.Find([]pluginhost.Plugin{pl}, "test.Sink"); !ok || d.GetType() != connectv1.ConnectorType_CONNECTOR_TYPE_SINK {
		t.Fatalf("find test.Sink: %v", d)
	}
	if _, _, ok := pluginhost.Find([]pluginhost.Plugin{pl}, "nope"); ok {
		t.Fatal("found a class nobody implements")
	}
	_, errs := h.Discover(context.Background(), []string{filepath.Join(dir, "missing")})
	if len(errs) != 1 {
		t.Fatalf("missing plugin.path dir: %v", errs)
	}
	// A binary that cannot start is reported with what it said on stderr,
	// and does not hide the good one.
	broken := filepath.Join(dir, "broken")
	if err := os.WriteFile(broken, []byte("#!/bin/sh\necho 'cannot start: missing libfoo' >&2\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	ps, errs := h.Discover(context.Background(), []string{dir})
	if len(ps) != 1 || ps[0].Path != path || len(errs) != 1 ||
		!strings.Contains(errs[0].Error(), broken) || !strings.Contains(errs[0].Error(), "missing libfoo") {
		t.Fatalf("discover with a broken binary: %v %v", ps, errs)
	}
}

// Every Connect type crosses the contract both ways through a real
// plugin process: the source emits connectv1test.AllTypes, the sink
// checks what it receives against the same definition.
func TestEveryValueTypeRoundTrips(t *testing.T) {
	dir, _ := testPlugin(t)
	h, logs := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	ctx := context.Background()
	p, err := h.Launch(ctx, pl, "rt", pluginhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = p.Close() }()
	if rss, err := p.ResidentBytes(); err != nil || rss < 1<<20 {
		t.Fatalf("resident memory of a live plugin: %d %v", rss, err)
	}

	cfgs, err := p.TaskConfigs(ctx, "test.Source", map[string]string{"mode": "alltypes"}, 2)
	if err != nil || len(cfgs) != 2 || cfgs[1]["mode"] != "alltypes" {
		t.Fatalf("task configs: %v %v", cfgs, err)
	}
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := src.Start(ctx, "test.Source", cfgs[0], nil); err != nil {
		t.Fatal(err)
	}
	b, err := src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 100, MaxWait: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	want := connectv1test.AllTypes()
	if b.Seq != 1 || len(b.Records) != len(want) {
		t.Fatalf("batch %d with %d records, want 1 with %d", b.Seq, len(b.Records), len(want))
	}
	for i := range want {
		if err := connectv1test.Diff(want[i], b.Records[i]); err != nil {
			t.Errorf("record %d: %v", i, err)
		}
	}
	if err := src.Commit(ctx, b.Seq, nil); err != nil {
		t.Fatal(err)
	}
	if err := src.Stop(ctx); err != nil {
		t.Fatal(err)
	}

	sink := p.SinkTask(pluginhost.TaskID{Task: 1, Generation: 1})
	if err := sink.Start(ctx, "TestSink", map[string]string{"mode": "expect-alltypes"}); err != nil {
		t.Fatal(err)
	}
	res, err := sink.Put(ctx, connectv1test.AllTypes())
	if err != nil || res.Retry != 0 || len(res.Errors) != 0 {
		t.Fatalf("put AllTypes: %+v %v", res, err)
	}
	// A task's log lines carry the connector and the task; plain
	// os.Stderr writes after the handshake reach the log too.
	waitFor(t, 5*time.Second, "plugin log lines", func() bool {
		l := logs.String()
		return strings.Contains(l, `msg="source task starting" plugin=testplugin connector=rt task=0`) &&
			strings.Contains(l, "said on os.Stderr")
	})
	changed := connectv1test.AllTypes()
	changed[1].Value.(map[string]any)["i8"] = int8(2)
	res, err = sink.Put(ctx, changed)
	if err != nil || len(res.Errors) != 1 || res.Errors[1] == "" {
		t.Fatalf("put a changed record: %+v %v", res, err)
	}
}

func TestPollBatchesAreBoundedAndNumbered(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	ctx := context.Background()
	p, err := h.Launch(ctx, pl, "gen", pluginhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 7})
	// Offsets committed before: resume after n=9.
	committed := []connectv1.Position{{Partition: map[string]any{"p": "gen"}, Offset: map[string]any{"n": int64(9)}}}
	if err := src.Start(ctx, "test.Source", map[string]string{"mode": "generate", "count": "260"}, committed); err != nil {
		t.Fatal(err)
	}
	lim := pluginhost.PollLimits{MaxRecords: 100, MaxBytes: 1 << 20, MaxWait: 200 * time.Millisecond}
	var sizes []int
	next := int64(10)
	for seq := uint64(1); ; seq++ {
		b, err := src.Poll(ctx, lim)
		if err != nil {
			t.Fatal(err)
		}
		if len(b.Records) == 0 {
			if b.Seq != 0 {
				t.Fatalf("empty batch numbered %d", b.Seq)
			}
			break
		}
		if b.Seq != seq {
			t.Fatalf("batch seq %d, want %d", b.Seq, seq)
		}
		for _, r := range b.Records {
			if string(r.Value.([]byte)) != fmt.Sprintf("record-%d", next) || r.SourceOffset["n"] != next {
				t.Fatalf("record %v offset %v, want %d", r.Value, r.SourceOffset, next)
			}
			next++
		}
		sizes = append(sizes, len(b.Records))
	}
	if fmt.Sprint(sizes) != "[100 100 50]" {
		t.Fatalf("batch sizes %v", sizes)
	}
	// Byte-bounded: "record-N" is 8 bytes, so 25 bytes fit 3 records.
	src2 := p.SourceTask(pluginhost.TaskID{Task: 1, Generation: 1})
	if err := src2.Start(ctx, "test.Source", map[string]string{"mode": "generate", "count": "200"}, nil); err != nil {
		t.Fatal(err)
	}
	b, err := src2.Poll(ctx, pluginhost.PollLimits{MaxRecords: 100, MaxBytes: 25, MaxWait: time.Second})
	if err != nil || len(b.Records) != 3 {
		t.Fatalf("byte-bounded batch: %d records, %v", len(b.Records), err)
	}
	// A stale generation is refused.
	stale := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 6})
	var rerr *pluginhost.RPCError
	if _, err := stale.Poll(ctx, lim); !errors.As(err, &rerr) || rerr.Code != "FailedPrecondition" {
		t.Fatalf("stale generation poll: %v", err)
	}
	if err := src.Commit(ctx, 3, nil); err != nil {
		t.Fatal(err)
	}
}

func TestSinkRetriableAndDeadlines(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	ctx := context.Background()
	p, err := h.Launch(ctx, pl, "s", pluginhost.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	sink := p.SinkTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := sink.Start(ctx, "test.Sink", map[string]string{"mode": "retry"}); err != nil {
		t.Fatal(err)
	}
	res, err := sink.Put(ctx, []*data.Record{{Topic: "t", Value: []byte("x")}})
	if err != nil || res.Retry != 250*time.Millisecond || res.RetryMessage != "destination busy" {
		t.Fatalf("retriable put: %+v %v", res, err)
	}
	offs := []*connectv1.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 5}}
	safe, err := sink.PreCommit(ctx, offs)
	if err != nil || len(safe) != 1 || safe[0].GetOffset() != 5 {
		t.Fatalf("precommit: %v %v", safe, err)
	}
}
