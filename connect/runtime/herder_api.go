package runtime

import (
	"context"
	"fmt"
	"maps"
	"sort"
	"strings"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/storage"
)

// The REST API's side of the herder: every method answers from the config
// snapshot and the status store, and every write goes to the config
// backend (on the leader; a follower answers NotLeaderError and the REST
// layer forwards). Run's reconcile then acts on the write.

var _ api.Herder = (*Herder)(nil)

func (h *Herder) leaderOnly() error {
	if h.assignment.Leader() {
		return nil
	}
	if url := h.assignment.LeaderURL(); url != "" {
		return &api.NotLeaderError{LeaderURL: url}
	}
	return api.ErrNoLeader
}

func (h *Herder) connectorConfig(name string) (map[string]string, storage.ConfigSnapshot, error) {
	snap := h.configs.Snapshot()
	cfg, ok := snap.Connectors[name]
	if !ok {
		return nil, snap, api.ConnectorNotFound(name)
	}
	return cfg, snap, nil
}

func (h *Herder) connectorType(cfg map[string]string) api.ConnectorType {
	switch h.catalog.Kind(cfg["connector.class"]) {
	case "source":
		return api.TypeSource
	case "sink":
		return api.TypeSink
	}
	return api.TypeUnknown
}

// Connectors lists the connectors, sorted.
func (h *Herder) Connectors(context.Context) ([]string, error) {
	return h.configs.Snapshot().ConnectorNames(), nil
}

// ConnectorInfo describes one connector.
func (h *Herder) ConnectorInfo(_ context.Context, name string) (*api.ConnectorInfo, error) {
	cfg, snap, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	return h.info(snap, name, cfg), nil
}

func (h *Herder) info(snap storage.ConfigSnapshot, name string, cfg map[string]string) *api.ConnectorInfo {
	info := &api.ConnectorInfo{Name: name, Config: maps.Clone(cfg), Tasks: []api.ConnectorTaskID{}, Type: h.connectorType(cfg)}
	for _, id := range snap.Tasks(name) {
		info.Tasks = append(info.Tasks, api.ConnectorTaskID{Connector: name, Task: id.Task})
	}
	return info
}

// ConnectorStatus is the connector's and its tasks' reported states.
func (h *Herder) ConnectorStatus(_ context.Context, name string) (*api.ConnectorStateInfo, error) {
	cfg, snap, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	st := &api.ConnectorStateInfo{Name: name, Type: h.connectorType(cfg), Tasks: []api.TaskState{}}
	if s, ok := h.status.Connector(name); ok {
		st.Connector = api.ConnectorState{State: s.State, WorkerID: s.WorkerID, Trace: s.Trace}
	} else {
		st.Connector = api.ConnectorState{State: api.StateUnassigned}
	}
	tasks := h.status.Tasks(name)
	for _, id := range snap.Tasks(name) {
		ts := api.TaskState{ID: id.Task, State: api.StateUnassigned}
		if s, ok := tasks[id.Task]; ok {
			ts.State, ts.WorkerID, ts.Trace = s.State, s.WorkerID, s.Trace
		}
		st.Tasks = append(st.Tasks, ts)
	}
	return st, nil
}

// validateForWrite checks a connector config before it is stored, as
// Kafka does: the plugin's and the framework's validation must both pass.
func (h *Herder) validateForWrite(ctx context.Context, cfg map[string]string) error {
	if strings.TrimSpace(cfg["connector.class"]) == "" {
		return api.BadRequest("Connector config %v contains no connector type", cfg)
	}
	infos, err := h.catalog.Validate(ctx, cfg)
	if err != nil {
		return err
	}
	if infos.ErrorCount == 0 {
		return nil
	}
	var msgs []string
	for _, c := range infos.Configs {
		for _, e := range c.Value.Errors {
			msgs = append(msgs, c.Definition.Name+": "+e)
		}
	}
	sort.Strings(msgs)
	return api.BadRequest("Connector configuration is invalid and contains the following %d error(s):\n%s\n"+
		"You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`",
		infos.ErrorCount, strings.Join(msgs, "\n"))
}

// CreateConnector stores a new connector's config and initial state.
func (h *Herder) CreateConnector(ctx context.Context, name string, cfg map[string]string, initial api.TargetState) (*api.ConnectorInfo, error) {
	if err := h.leaderOnly(); err != nil {
		return nil, err
	}
	if h.configs.Snapshot().Contains(name) {
		return nil, api.ConnectorExists(name)
	}
	if err := h.validateForWrite(ctx, cfg); err != nil {
		return nil, err
	}
	var target *storage.TargetState
	if initial != "" && initial != api.TargetStarted {
		t := storage.TargetState(initial)
		target = &t
	}
	if err := h.configs.PutConnectorConfig(ctx, name, cfg, target); err != nil {
		return nil, err
	}
	h.Wake()
	return h.info(h.configs.Snapshot(), name, cfg), nil
}

// PutConnectorConfig creates or replaces a connector's config.
func (h *Herder) PutConnectorConfig(ctx context.Context, name string, cfg map[string]string) (*api.ConnectorInfo, bool, error) {
	if err := h.leaderOnly(); err != nil {
		return nil, false, err
	}
	created := !h.configs.Snapshot().Contains(name)
	if err := h.validateForWrite(ctx, cfg); err != nil {
		return nil, false, err
	}
	if err := h.configs.PutConnectorConfig(ctx, name, cfg, nil); err != nil {
		return nil, false, err
	}
	h.Wake()
	return h.info(h.configs.Snapshot(), name, cfg), created, nil
}

// PatchConnectorConfig merges a patch into an existing connector's config.
func (h *Herder) PatchConnectorConfig(ctx context.Context, name string, patch api.ConfigPatch) (*api.ConnectorInfo, error) {
	if err := h.leaderOnly(); err != nil {
		return nil, err
	}
	cfg, _, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	next := patch.Apply(maps.Clone(cfg))
	if v, ok := next["name"]; ok && v != name {
		return nil, api.BadRequest("Connector name configuration (%s) doesn't match connector name in the URL (%s)", v, name)
	}
	info, _, err := h.PutConnectorConfig(ctx, name, next)
	return info, err
}

// DeleteConnector removes a connector; its tasks stop on every worker.
func (h *Herder) DeleteConnector(ctx context.Context, name string) error {
	if err := h.leaderOnly(); err != nil {
		return err
	}
	if _, _, err := h.connectorConfig(name); err != nil {
		return err
	}
	if err := h.configs.RemoveConnectorConfig(ctx, name); err != nil {
		return err
	}
	h.status.Forget(name)
	h.Wake()
	return nil
}

// ConnectorConfig is a connector's config.
func (h *Herder) ConnectorConfig(_ context.Context, name string) (map[string]string, error) {
	cfg, _, err := h.connectorConfig(name)
	return maps.Clone(cfg), err
}

// TaskConfigs lists a connector's tasks with their configs.
func (h *Herder) TaskConfigs(_ context.Context, name string) ([]api.TaskInfo, error) {
	_, snap, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	out := []api.TaskInfo{}
	for _, id := range snap.Tasks(name) {
		out = append(out, api.TaskInfo{ID: api.ConnectorTaskID{Connector: name, Task: id.Task}, Config: maps.Clone(snap.TaskConfig(id))})
	}
	return out, nil
}

// TasksConfig is the deprecated map form of TaskConfigs.
func (h *Herder) TasksConfig(ctx context.Context, name string) (map[string]map[string]string, error) {
	tasks, err := h.TaskConfigs(ctx, name)
	if err != nil {
		return nil, err
	}
	out := map[string]map[string]string{}
	for _, t := range tasks {
		out[t.ID.String()] = t.Config
	}
	return out, nil
}

// TaskStatus is one task's reported state.
func (h *Herder) TaskStatus(ctx context.Context, id api.ConnectorTaskID) (*api.TaskState, error) {
	st, err := h.ConnectorStatus(ctx, id.Connector)
	if err != nil {
		return nil, err
	}
	for _, t := range st.Tasks {
		if t.ID == id.Task {
			return &t, nil
		}
	}
	return nil, api.TaskNotFound(id)
}

// RestartConnector restarts the connector instance and, as asked, its
// tasks (KIP-745).
func (h *Herder) RestartConnector(ctx context.Context, req api.RestartRequest) (*api.ConnectorStateInfo, error) {
	st, err := h.ConnectorStatus(ctx, req.Connector)
	if err != nil {
		return nil, err
	}
	if err := h.leaderOnly(); err != nil {
		return nil, err
	}
	if err := h.configs.PutRestartRequest(ctx, storage.RestartRequest{
		Connector: req.Connector, IncludeTasks: req.IncludeTasks, OnlyFailed: req.OnlyFailed,
	}); err != nil {
		return nil, err
	}
	if req.ConnectorOnly() {
		return nil, nil
	}
	if req.RestartConnector(st.Connector.State) {
		st.Connector.State = api.StateRestarting
	}
	for i := range st.Tasks {
		if req.RestartTask(st.Tasks[i].State) {
			st.Tasks[i].State = api.StateRestarting
		}
	}
	return st, nil
}

// ApplyRestart executes a restart request read from the config backend on
// the instances this worker owns.
func (h *Herder) ApplyRestart(req storage.RestartRequest) {
	r := api.RestartRequest{Connector: req.Connector, IncludeTasks: req.IncludeTasks, OnlyFailed: req.OnlyFailed}
	h.mu.Lock()
	if cs := h.conns[req.Connector]; cs != nil {
		s, _ := h.status.Connector(req.Connector)
		if r.RestartConnector(s.State) {
			cs.restart = true
		}
	}
	for task, s := range h.status.Tasks(req.Connector) {
		id := TaskID{Connector: req.Connector, Task: task}
		if _, running := h.worker.Running(id); running && r.RestartTask(s.State) {
			h.restarts[id] = true
		}
	}
	h.mu.Unlock()
	h.Wake()
}

// RestartTask restarts one task where it runs, routed as Kafka routes it:
// the worker running the task restarts it; any other worker forwards to
// the leader, and the leader forwards to the worker its last assignment
// gave the task to (connect/rest does the forwarding on NotLeaderError).
func (h *Herder) RestartTask(ctx context.Context, id api.ConnectorTaskID) error {
	if _, err := h.TaskStatus(ctx, id); err != nil {
		return err
	}
	rid := TaskID{Connector: id.Connector, Task: id.Task}
	if _, running := h.worker.Running(rid); running {
		h.mu.Lock()
		h.restarts[rid] = true
		h.mu.Unlock()
		h.Wake()
		return nil
	}
	if err := h.leaderOnly(); err != nil {
		return err
	}
	if owner := h.assignment.TaskOwnerURL(rid); owner != "" && owner != h.cfg.AdvertisedURL {
		return &api.NotLeaderError{LeaderURL: owner}
	}
	// Nobody runs it (unassigned, or its worker just went away): the
	// next worker to start it starts it fresh anyway.
	return nil
}

func (h *Herder) setTarget(ctx context.Context, name string, t storage.TargetState) error {
	if _, _, err := h.connectorConfig(name); err != nil {
		return err
	}
	if err := h.leaderOnly(); err != nil {
		return err
	}
	if err := h.configs.PutTargetState(ctx, name, t); err != nil {
		return err
	}
	h.Wake()
	return nil
}

// PauseConnector sets the target state PAUSED.
func (h *Herder) PauseConnector(ctx context.Context, name string) error {
	return h.setTarget(ctx, name, storage.TargetPaused)
}

// ResumeConnector sets the target state STARTED.
func (h *Herder) ResumeConnector(ctx context.Context, name string) error {
	return h.setTarget(ctx, name, storage.TargetStarted)
}

// StopConnector sets the target state STOPPED.
func (h *Herder) StopConnector(ctx context.Context, name string) error {
	return h.setTarget(ctx, name, storage.TargetStopped)
}

// ConnectorTopics lists the topics the connector used.
func (h *Herder) ConnectorTopics(_ context.Context, name string) ([]string, error) {
	if !h.cfg.TopicTrackingEnable {
		return nil, api.ErrTopicTrackingDisabled
	}
	if _, _, err := h.connectorConfig(name); err != nil {
		return nil, err
	}
	return h.status.Topics(name), nil
}

// ResetConnectorTopics forgets the connector's topics.
func (h *Herder) ResetConnectorTopics(_ context.Context, name string) error {
	if !h.cfg.TopicTrackingEnable {
		return api.ErrTopicTrackingDisabled
	}
	if !h.cfg.TopicTrackingReset {
		return api.ErrTopicResetDisabled
	}
	if _, _, err := h.connectorConfig(name); err != nil {
		return err
	}
	h.status.ResetTopics(name)
	return nil
}

// Plugins lists installed plugins.
func (h *Herder) Plugins(_ context.Context, connectorsOnly bool) ([]api.PluginInfo, error) {
	return h.catalog.Plugins(connectorsOnly), nil
}

// PluginConfig describes a plugin's config keys.
func (h *Herder) PluginConfig(_ context.Context, plugin string) ([]api.ConfigKeyInfo, error) {
	return h.catalog.PluginConfig(plugin)
}

// ValidateConfig validates a connector config.
func (h *Herder) ValidateConfig(ctx context.Context, cfg map[string]string) (*api.ConfigInfos, error) {
	return h.catalog.Validate(ctx, cfg)
}

// HealthCheck answers once the reconcile loop does.
func (h *Herder) HealthCheck(ctx context.Context) error { return h.ping(ctx) }

// Ready reports whether the first reconcile is done.
func (h *Herder) Ready() bool { return h.ready.Load() }

// ServerInfo answers GET /.
func (h *Herder) ServerInfo(ctx context.Context) (api.ServerInfo, error) {
	info := h.version
	if h.clusterID != nil {
		id, err := h.clusterID(ctx)
		if err != nil {
			return info, fmt.Errorf("reading the Kafka cluster id: %w", err)
		}
		info.KafkaClusterID = id
	}
	return info, nil
}
