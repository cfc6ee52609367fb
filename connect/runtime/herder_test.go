package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/api"
)

// standaloneFixture is a standalone worker (herder, worker, memory stores,
// fake plugins) against an in-process kfake cluster.
type standaloneFixture struct {
	t       *testing.T
	herder  *Herder
	plugins *fakePlugins
	status  *MemoryStatus
	offsets *memOffsets
	seeds   []string
	cancel  context.CancelFunc
	done    chan struct{}
}

func newStandaloneFixture(t *testing.T) *standaloneFixture {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	cfg, err := LoadWorkerConfig("", []string{
		"bootstrap.servers=" + c.ListenAddrs()[0], "offset.flush.interval.ms=100", "listeners=http://127.0.0.1:18083",
	})
	if err != nil {
		t.Fatal(err)
	}
	f := &standaloneFixture{t: t, plugins: newFakePlugins(), status: NewMemoryStatus(), offsets: newMemOffsets(),
		seeds: c.ListenAddrs(), done: make(chan struct{})}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	w := NewWorker(cfg, Deps{
		Launcher: f.plugins, Offsets: f.offsets, Status: f.status,
		NewConverter: func(string, map[string]string, bool) (Converter, error) { return stringConverter{}, nil },
		ClientOpts:   []kgo.Opt{kgo.SeedBrokers(c.ListenAddrs()...), kgo.AllowAutoTopicCreation()},
		Logger:       logger,
	})
	configs := NewMemoryConfigs()
	admin, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	f.herder = NewHerder(cfg, w, HerderOptions{
		Configs: configs, Status: f.status, Offsets: f.offsets, Catalog: f.plugins, Assignment: Standalone{}, Logger: logger,
		SinkOffsets: groupOffsets{kadm.NewClient(admin)},
	})
	configs.OnRestart(f.herder.ApplyRestart)
	ctx, cancel := context.WithCancel(context.Background())
	f.cancel = cancel
	go func() { defer close(f.done); f.herder.Run(ctx) }()
	t.Cleanup(f.stop)
	return f
}

func (f *standaloneFixture) stop() {
	f.cancel()
	<-f.done
}

func (f *standaloneFixture) eventually(what string, cond func() bool) {
	f.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			f.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (f *standaloneFixture) state(name string) (api.State, []api.State) {
	st, err := f.herder.ConnectorStatus(context.Background(), name)
	if err != nil {
		return "", nil
	}
	var tasks []api.State
	for _, t := range st.Tasks {
		tasks = append(tasks, t.State)
	}
	return st.Connector.State, tasks
}

func TestSourceToSinkThroughTheClusterDeliversEveryRecordOnce(t *testing.T) {
	f := newStandaloneFixture(t)
	ctx := context.Background()
	// Positions per batch, as real plugins send them: the offset stored
	// must still be the last record's.
	if _, err := f.herder.CreateConnector(ctx, "gen", map[string]string{
		"name": "gen", "connector.class": "Gen", "topic": "numbers", "limit": "500", "batch.positions": "true",
	}, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.herder.CreateConnector(ctx, "collect", map[string]string{
		"name": "collect", "connector.class": "Collect", "topics": "numbers",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("500 records in the sink", func() bool { return len(f.plugins.values("collect")) >= 500 })
	got := f.plugins.values("collect")
	seen := map[string]bool{}
	for _, v := range got {
		if seen[v] {
			t.Fatalf("record %s delivered twice", v)
		}
		seen[v] = true
	}
	for i := 0; i < 500; i++ {
		if !seen[strconv.Itoa(i)] {
			t.Fatalf("record %d missing", i)
		}
	}
	if c, tasks := f.state("gen"); c != api.StateRunning || len(tasks) != 1 || tasks[0] != api.StateRunning {
		t.Fatalf("gen status: connector %s tasks %v", c, tasks)
	}
	// The source's offset is stored once the records are acknowledged,
	// and the plugin is told (Commit).
	f.eventually("the source offset stored", func() bool {
		offs, err := f.herder.ConnectorOffsets(ctx, "gen")
		if err != nil || len(offs.Offsets) != 1 {
			return false
		}
		n, _ := asInt(offs.Offsets[0].Offset["n"])
		return n == 499
	})
	topics, err := f.herder.ConnectorTopics(ctx, "gen")
	if err != nil || fmt.Sprint(topics) != "[numbers]" {
		t.Fatalf("gen topics: %v %v", topics, err)
	}
}

func TestStopEmptiesTasksAndOnlyAStoppedConnectorsOffsetsChange(t *testing.T) {
	f := newStandaloneFixture(t)
	ctx := context.Background()
	if _, err := f.herder.CreateConnector(ctx, "gen", map[string]string{
		"name": "gen", "connector.class": "Gen", "topic": "numbers", "limit": "10", "tasks.max": "2",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("two running tasks", func() bool {
		_, tasks := f.state("gen")
		return len(tasks) == 2 && tasks[0] == api.StateRunning && tasks[1] == api.StateRunning
	})
	alter := []api.ConnectorOffset{{Partition: map[string]any{"gen": "gen"}, Offset: map[string]any{"n": 3}}}
	_, err := f.herder.AlterConnectorOffsets(ctx, "gen", alter)
	var aerr *api.Error
	if !errors.As(err, &aerr) || aerr.Code != 400 {
		t.Fatalf("altering a running connector's offsets: %v, want a 400", err)
	}
	if err := f.herder.StopConnector(ctx, "gen"); err != nil {
		t.Fatal(err)
	}
	f.eventually("STOPPED with no tasks", func() bool {
		c, tasks := f.state("gen")
		return c == api.StateStopped && len(tasks) == 0 && len(f.herder.worker.RunningTasks()) == 0
	})
	msg, err := f.herder.AlterConnectorOffsets(ctx, "gen", alter)
	if err != nil || msg != api.MsgOffsetsAltered {
		t.Fatalf("alter: %q %v", msg, err)
	}
	if msg, err := f.herder.ResetConnectorOffsets(ctx, "gen"); err != nil || msg != api.MsgOffsetsReset {
		t.Fatalf("reset: %q %v", msg, err)
	}
	if offs, _ := f.herder.ConnectorOffsets(ctx, "gen"); len(offs.Offsets) != 0 {
		t.Fatalf("offsets after reset: %v", offs.Offsets)
	}
	if err := f.herder.ResumeConnector(ctx, "gen"); err != nil {
		t.Fatal(err)
	}
	f.eventually("two running tasks again", func() bool {
		c, tasks := f.state("gen")
		return c == api.StateRunning && len(tasks) == 2 && tasks[0] == api.StateRunning
	})
}

func TestAFailedTaskIsShownFailedThenRestartedByTheWorker(t *testing.T) {
	f := newStandaloneFixture(t)
	ctx := context.Background()
	f.plugins.failPolls = 1
	if _, err := f.herder.CreateConnector(ctx, "gen", map[string]string{
		"name": "gen", "connector.class": "Gen", "topic": "numbers", "limit": "10",
		"restart.backoff.ms": "300",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("the task FAILED with the reason", func() bool {
		st, err := f.herder.TaskStatus(ctx, api.ConnectorTaskID{Connector: "gen", Task: 0})
		return err == nil && st.State == api.StateFailed && st.Trace != ""
	})
	f.eventually("the task RUNNING again", func() bool {
		_, tasks := f.state("gen")
		return len(tasks) == 1 && tasks[0] == api.StateRunning
	})
}

func TestCreateRefusesInvalidConfigsAndDuplicates(t *testing.T) {
	f := newStandaloneFixture(t)
	ctx := context.Background()
	_, err := f.herder.CreateConnector(ctx, "x", map[string]string{"name": "x", "connector.class": "Nope"}, "")
	var aerr *api.Error
	if !errors.As(err, &aerr) || aerr.Code != 400 {
		t.Fatalf("unknown class: %v, want 400", err)
	}
	cfg := map[string]string{"name": "g", "connector.class": "Gen", "topic": "t", "limit": "0"}
	if _, err := f.herder.CreateConnector(ctx, "g", cfg, api.TargetPaused); err != nil {
		t.Fatal(err)
	}
	if _, err := f.herder.CreateConnector(ctx, "g", cfg, ""); !errors.As(err, &aerr) || aerr.Code != 409 {
		t.Fatalf("duplicate: %v, want 409", err)
	}
	f.eventually("PAUSED from its initial state", func() bool {
		c, tasks := f.state("g")
		return c == api.StatePaused && len(tasks) == 1 && tasks[0] == api.StatePaused
	})
}
