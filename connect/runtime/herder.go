package runtime

import (
	"context"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/storage"
)

// ConfigBackend is where connector configs, task configs, target states
// and restart requests live: the config topic in distributed mode, memory
// in standalone mode. Writes return once the snapshot includes them.
type ConfigBackend interface {
	Snapshot() storage.ConfigSnapshot
	PutConnectorConfig(ctx context.Context, name string, config map[string]string, target *storage.TargetState) error
	RemoveConnectorConfig(ctx context.Context, name string) error
	PutTaskConfigs(ctx context.Context, name string, tasks []map[string]string) error
	PutTargetState(ctx context.Context, name string, state storage.TargetState) error
	PutRestartRequest(ctx context.Context, req storage.RestartRequest) error
}

// Assignment says what runs on this worker and who leads: everything and
// this worker in standalone mode, the connect group's assignment in
// distributed mode.
type Assignment interface {
	// Owns reports whether this worker runs a connector instance or task.
	OwnsConnector(name string) bool
	OwnsTask(id TaskID) bool
	// Leader reports whether this worker performs writes; when not,
	// LeaderURL is where REST writes are forwarded ("" = unknown).
	Leader() bool
	LeaderURL() string
	// TaskOwnerURL is, at the leader, the REST URL of the worker the
	// last assignment gave a task to ("" when unknown or not leader).
	TaskOwnerURL(id TaskID) string
}

// SinkOffsets reads and changes sink connectors' offsets: the consumer
// group connect-<name>.
type SinkOffsets interface {
	Read(ctx context.Context, connector string) ([]api.ConnectorOffset, error)
	Alter(ctx context.Context, connector string, offsets []api.ConnectorOffset) error
	Reset(ctx context.Context, connector string) error
}

// Catalog is what the worker knows about installed plugins: connectors
// from plugin.path, and the converters, transforms and predicates built
// into the host.
type Catalog interface {
	Plugins(connectorsOnly bool) []api.PluginInfo
	PluginConfig(plugin string) ([]api.ConfigKeyInfo, error)
	Validate(ctx context.Context, config map[string]string) (*api.ConfigInfos, error)
	// Kind is "source", "sink", or "" for an unknown connector class.
	Kind(class string) string
}

// Herder decides what runs on this worker and answers the REST API
// (it implements api.Herder). One goroutine, Run, reconciles what runs
// with the config snapshot and the assignment whenever either changes.
type Herder struct {
	cfg        *WorkerConfig
	worker     *Worker
	configs    ConfigBackend
	status     StatusBackend
	offsets    OffsetStore
	sinks      SinkOffsets
	catalog    Catalog
	assignment Assignment
	logger     *slog.Logger
	clusterID  func(context.Context) (string, error)
	version    api.ServerInfo

	wake    chan struct{}
	pings   chan chan struct{}
	ready   atomic.Bool
	loggers loggerLevels

	mu    sync.Mutex
	conns map[string]*connState // connector instances owned here
	// restarts holds task restarts asked for, done by the next reconcile.
	restarts map[TaskID]bool
}

// connState is a connector instance on this worker: the config it last
// generated task configs from, and its target state.
type connState struct {
	config  map[string]string
	target  storage.TargetState
	failed  bool
	retryAt time.Time
	backoff restartBackoff
	restart bool
}

// HerderOptions are the herder's collaborators besides the worker.
type HerderOptions struct {
	Configs     ConfigBackend
	Status      StatusBackend
	Offsets     OffsetStore
	SinkOffsets SinkOffsets
	Catalog     Catalog
	Assignment  Assignment
	// ClusterID answers GET /'s kafka_cluster_id.
	ClusterID func(context.Context) (string, error)
	Version   api.ServerInfo
	Logger    *slog.Logger
	// LogLevel is changed by PUT /admin/loggers/root (and "" = root).
	LogLevel *slog.LevelVar
}

// NewHerder returns a herder; Run starts it.
func NewHerder(cfg *WorkerConfig, worker *Worker, o HerderOptions) *Herder {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Herder{
		cfg: cfg, worker: worker, configs: o.Configs, status: o.Status, offsets: o.Offsets,
		sinks: o.SinkOffsets, catalog: o.Catalog, assignment: o.Assignment, logger: o.Logger,
		clusterID: o.ClusterID, version: o.Version,
		wake: make(chan struct{}, 1), pings: make(chan chan struct{}),
		loggers:  newLoggerLevels(o.LogLevel),
		conns:    map[string]*connState{},
		restarts: map[TaskID]bool{},
	}
}

// Wake asks for a reconcile: the config snapshot or the assignment changed.
func (h *Herder) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

// Run reconciles until ctx ends, then stops everything this worker runs.
func (h *Herder) Run(ctx context.Context) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	defer h.worker.Close()
	h.reconcile(ctx)
	h.ready.Store(true)
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.wake:
		case <-tick.C:
		case done := <-h.pings:
			close(done)
			continue
		}
		h.reconcile(ctx)
	}
}

func targetOf(snap storage.ConfigSnapshot, name string) storage.TargetState {
	if t, ok := snap.TargetStates[name]; ok {
		return t
	}
	return storage.TargetStarted
}

// reconcile makes what runs here match the snapshot and the assignment:
// connector instances generate task configs when their config changes,
// tasks start, stop, pause and resume. It is idempotent.
func (h *Herder) reconcile(ctx context.Context) {
	snap := h.configs.Snapshot()
	h.reconcileConnectors(ctx, snap)
	h.reconcileTasks(snap)
}

func (h *Herder) reconcileConnectors(ctx context.Context, snap storage.ConfigSnapshot) {
	h.mu.Lock()
	for name := range h.conns {
		if !snap.Contains(name) || !h.assignment.OwnsConnector(name) {
			delete(h.conns, name)
		}
	}
	h.mu.Unlock()
	for _, name := range snap.ConnectorNames() {
		if !h.assignment.OwnsConnector(name) {
			continue
		}
		h.reconcileConnector(ctx, snap, name)
	}
}

func (h *Herder) reconcileConnector(ctx context.Context, snap storage.ConfigSnapshot, name string) {
	cfg := snap.Connectors[name]
	target := targetOf(snap, name)
	h.mu.Lock()
	cs := h.conns[name]
	if cs == nil {
		cs = &connState{}
		policy, _ := parseRestartPolicy(cfg)
		cs.backoff = restartBackoff{policy: policy}
		h.conns[name] = cs
	}
	changed := cs.config == nil || !maps.Equal(cs.config, cfg) || cs.target != target || cs.restart || snap.Inconsistent[name]
	retry := cs.failed && !cs.retryAt.IsZero() && time.Now().After(cs.retryAt)
	h.mu.Unlock()
	if !changed && !retry {
		return
	}
	report := func(state api.State, trace string) {
		h.status.PutConnector(name, Status{State: state, Trace: trace, WorkerID: h.worker.ID()})
	}
	if target == storage.TargetStopped {
		// A stopped connector has no tasks (KIP-875): its task configs
		// are emptied so that every worker stops them.
		if snap.TaskCounts[name] > 0 {
			if err := h.configs.PutTaskConfigs(ctx, name, nil); err != nil {
				h.logger.Error("stopping a connector's tasks", "connector", name, "err", err)
				return
			}
		}
		report(api.StateStopped, "")
		h.setConn(name, cfg, target, nil)
		return
	}
	tasks, err := h.worker.TaskConfigs(ctx, name, cfg)
	if err != nil {
		h.logger.Error("connector failed", "connector", name, "err", err)
		report(api.StateFailed, err.Error())
		h.setConn(name, cfg, target, err)
		return
	}
	if snap.Inconsistent[name] || !equalTaskConfigs(tasks, snap.TaskConfigs[name]) {
		if err := h.configs.PutTaskConfigs(ctx, name, tasks); err != nil {
			h.logger.Error("writing task configs", "connector", name, "err", err)
			return
		}
	}
	if target == storage.TargetPaused {
		report(api.StatePaused, "")
	} else {
		report(api.StateRunning, "")
	}
	h.setConn(name, cfg, target, nil)
}

func (h *Herder) setConn(name string, cfg map[string]string, target storage.TargetState, err error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	cs := h.conns[name]
	if cs == nil {
		return
	}
	cs.config, cs.target, cs.restart = cfg, target, false
	cs.failed = err != nil
	cs.retryAt = time.Time{}
	if err != nil {
		if d, ok := cs.backoff.failed(0); ok {
			cs.retryAt = time.Now().Add(d)
		}
	} else {
		cs.backoff.failures = 0
	}
}

func equalTaskConfigs(a, b []map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !maps.Equal(a[i], b[i]) {
			return false
		}
	}
	return true
}

// reconcileTasks stops tasks that no longer belong here or whose config
// changed, starts the ones that should run, and applies pause/resume.
func (h *Herder) reconcileTasks(snap storage.ConfigSnapshot) {
	h.mu.Lock()
	restarts := h.restarts
	h.restarts = map[TaskID]bool{}
	h.mu.Unlock()
	for _, id := range h.worker.RunningTasks() {
		want := snap.TaskConfig(storage.TaskID{Connector: id.Connector, Task: id.Task})
		have, _ := h.worker.Running(id)
		if want == nil || !h.assignment.OwnsTask(id) || targetOf(snap, id.Connector) == storage.TargetStopped ||
			!maps.Equal(have, want) || restarts[id] {
			h.worker.StopTask(id)
		}
	}
	for _, name := range snap.ConnectorNames() {
		target := targetOf(snap, name)
		if target == storage.TargetStopped {
			continue
		}
		for _, sid := range snap.Tasks(name) {
			id := TaskID{Connector: sid.Connector, Task: sid.Task}
			if !h.assignment.OwnsTask(id) {
				continue
			}
			if _, running := h.worker.Running(id); running {
				h.worker.PauseTask(id, target == storage.TargetPaused)
				continue
			}
			h.worker.StartTask(id, snap.Connectors[name], snap.TaskConfig(sid), target == storage.TargetPaused)
		}
	}
}

// ping waits for the reconcile loop to answer: the health check.
func (h *Herder) ping(ctx context.Context) error {
	done := make(chan struct{})
	select {
	case h.pings <- done:
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
