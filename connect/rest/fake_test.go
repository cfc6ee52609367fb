package rest

import (
	"context"
	"sort"
	"sync"

	"github.com/sluice-io/sluice/connect/api"
)

// fakeHerder is an in-memory api.Herder: enough state to answer every route
// plausibly, plus switches to make it a follower, block, or fail.
type fakeHerder struct {
	mu         sync.Mutex
	conns      map[string]*fakeConn
	follower   *api.NotLeaderError // when set, writes return it
	failWrites error               // when set, writes return it
	block      bool                // when set, every call waits for ctx to end
	ignoreCtx  chan struct{}       // when set, every call waits for it to close, ignoring ctx
	ready      bool
	healthy    bool
	tracking   bool
	loggers    map[string]api.LoggerLevel
	calls      []string
	lastConfig map[string]string
}

type fakeConn struct {
	config  map[string]string
	target  api.TargetState
	typ     api.ConnectorType
	state   api.ConnectorState
	tasks   []api.TaskState
	topics  []string
	offsets []api.ConnectorOffset
}

func newFake() *fakeHerder {
	last := int64(1700000000000)
	return &fakeHerder{
		conns:    map[string]*fakeConn{},
		ready:    true,
		healthy:  true,
		tracking: true,
		loggers: map[string]api.LoggerLevel{
			"org.apache.kafka.connect": {Level: "INFO", LastModified: &last},
			"root":                     {Level: "WARN"},
		},
	}
}

// addSink adds a running sink connector with n running tasks.
func (f *fakeHerder) addSink(name string, n int) *fakeConn {
	c := &fakeConn{
		config: map[string]string{"name": name, "connector.class": "FileStreamSink", "topics": "t", "file": "/tmp/out.txt"},
		target: api.TargetStarted,
		typ:    api.TypeSink,
		state:  api.ConnectorState{State: api.StateRunning, WorkerID: "10.0.0.1:8083"},
		topics: []string{"t"},
	}
	for i := 0; i < n; i++ {
		c.tasks = append(c.tasks, api.TaskState{ID: i, State: api.StateRunning, WorkerID: "10.0.0.1:8083"})
	}
	f.conns[name] = c
	return c
}

func (f *fakeHerder) enter(ctx context.Context, call string, write bool) error {
	f.mu.Lock()
	f.calls = append(f.calls, call)
	block, ignore, follower, fail := f.block, f.ignoreCtx, f.follower, f.failWrites
	f.mu.Unlock()
	if ignore != nil {
		<-ignore
	}
	if block {
		<-ctx.Done()
		return ctx.Err()
	}
	if write && follower != nil {
		return follower
	}
	if write && fail != nil {
		return fail
	}
	return nil
}

func (f *fakeHerder) conn(name string) (*fakeConn, error) {
	c, ok := f.conns[name]
	if !ok {
		return nil, api.ConnectorNotFound(name)
	}
	return c, nil
}

func (c *fakeConn) info(name string) *api.ConnectorInfo {
	info := &api.ConnectorInfo{Name: name, Config: c.config, Type: c.typ}
	for _, t := range c.tasks {
		info.Tasks = append(info.Tasks, api.ConnectorTaskID{Connector: name, Task: t.ID})
	}
	return info
}

func (c *fakeConn) status(name string) *api.ConnectorStateInfo {
	return &api.ConnectorStateInfo{Name: name, Connector: c.state, Tasks: append([]api.TaskState(nil), c.tasks...), Type: c.typ}
}

func (f *fakeHerder) Connectors(ctx context.Context) ([]string, error) {
	if err := f.enter(ctx, "Connectors", false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	var names []string
	for n := range f.conns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, nil
}

// withConn runs fn on the named connector under the lock.
func (f *fakeHerder) withConn(ctx context.Context, call string, write bool, name string, fn func(c *fakeConn) error) error {
	if err := f.enter(ctx, call, write); err != nil {
		return err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	c, err := f.conn(name)
	if err != nil {
		return err
	}
	return fn(c)
}

func (f *fakeHerder) ConnectorInfo(ctx context.Context, name string) (info *api.ConnectorInfo, err error) {
	err = f.withConn(ctx, "ConnectorInfo", false, name, func(c *fakeConn) error {
		info = c.info(name)
		return nil
	})
	return info, err
}

func (f *fakeHerder) ConnectorStatus(ctx context.Context, name string) (st *api.ConnectorStateInfo, err error) {
	err = f.withConn(ctx, "ConnectorStatus", false, name, func(c *fakeConn) error {
		st = c.status(name)
		return nil
	})
	return st, err
}

func (f *fakeHerder) CreateConnector(ctx context.Context, name string, config map[string]string, initial api.TargetState) (*api.ConnectorInfo, error) {
	if err := f.enter(ctx, "CreateConnector", true); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.conns[name]; ok {
		return nil, api.ConnectorExists(name)
	}
	f.lastConfig = config
	c := &fakeConn{config: config, target: initial, typ: api.TypeSource}
	f.conns[name] = c
	return c.info(name), nil
}

func (f *fakeHerder) PutConnectorConfig(ctx context.Context, name string, config map[string]string) (*api.ConnectorInfo, bool, error) {
	if err := f.enter(ctx, "PutConnectorConfig", true); err != nil {
		return nil, false, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lastConfig = config
	c, ok := f.conns[name]
	if ok {
		c.config = config
		return c.info(name), false, nil
	}
	c = &fakeConn{config: config, target: api.TargetStarted, typ: api.TypeSink}
	f.conns[name] = c
	return c.info(name), true, nil
}

func (f *fakeHerder) PatchConnectorConfig(ctx context.Context, name string, patch api.ConfigPatch) (info *api.ConnectorInfo, err error) {
	err = f.withConn(ctx, "PatchConnectorConfig", true, name, func(c *fakeConn) error {
		c.config = patch.Apply(c.config)
		info = c.info(name)
		return nil
	})
	return info, err
}

func (f *fakeHerder) DeleteConnector(ctx context.Context, name string) error {
	return f.withConn(ctx, "DeleteConnector", true, name, func(*fakeConn) error {
		delete(f.conns, name)
		return nil
	})
}

func (f *fakeHerder) ConnectorConfig(ctx context.Context, name string) (cfg map[string]string, err error) {
	err = f.withConn(ctx, "ConnectorConfig", false, name, func(c *fakeConn) error {
		cfg = c.config
		return nil
	})
	return cfg, err
}

func (f *fakeHerder) TaskConfigs(ctx context.Context, name string) (out []api.TaskInfo, err error) {
	err = f.withConn(ctx, "TaskConfigs", false, name, func(c *fakeConn) error {
		for _, t := range c.tasks {
			out = append(out, api.TaskInfo{ID: api.ConnectorTaskID{Connector: name, Task: t.ID},
				Config: map[string]string{"task.class": "FileStreamSinkTask", "file": c.config["file"]}})
		}
		return nil
	})
	return out, err
}

func (f *fakeHerder) TasksConfig(ctx context.Context, name string) (map[string]map[string]string, error) {
	tasks, err := f.TaskConfigs(ctx, name)
	if err != nil {
		return nil, err
	}
	return api.TasksConfigMap(tasks), nil
}

func (f *fakeHerder) TaskStatus(ctx context.Context, id api.ConnectorTaskID) (st *api.TaskState, err error) {
	err = f.withConn(ctx, "TaskStatus", false, id.Connector, func(c *fakeConn) error {
		for _, t := range c.tasks {
			if t.ID == id.Task {
				st = &t
				return nil
			}
		}
		return api.TaskNotFound(id)
	})
	return st, err
}

func (f *fakeHerder) RestartConnector(ctx context.Context, req api.RestartRequest) (st *api.ConnectorStateInfo, err error) {
	err = f.withConn(ctx, "RestartConnector", true, req.Connector, func(c *fakeConn) error {
		if req.ConnectorOnly() {
			return nil
		}
		st = c.status(req.Connector)
		if req.RestartConnector(st.Connector.State) {
			st.Connector = api.ConnectorState{State: api.StateRestarting, WorkerID: st.Connector.WorkerID}
		}
		for i, t := range st.Tasks {
			if req.RestartTask(t.State) {
				st.Tasks[i] = api.TaskState{ID: t.ID, State: api.StateRestarting, WorkerID: t.WorkerID}
			}
		}
		return nil
	})
	return st, err
}

func (f *fakeHerder) RestartTask(ctx context.Context, id api.ConnectorTaskID) error {
	_, err := f.TaskStatus(ctx, id)
	if err != nil {
		return err
	}
	return f.enter(ctx, "RestartTask", true)
}

func (f *fakeHerder) setTarget(ctx context.Context, call, name string, t api.TargetState) error {
	return f.withConn(ctx, call, true, name, func(c *fakeConn) error {
		c.target = t
		return nil
	})
}

func (f *fakeHerder) PauseConnector(ctx context.Context, name string) error {
	return f.setTarget(ctx, "PauseConnector", name, api.TargetPaused)
}

func (f *fakeHerder) ResumeConnector(ctx context.Context, name string) error {
	return f.setTarget(ctx, "ResumeConnector", name, api.TargetStarted)
}

func (f *fakeHerder) StopConnector(ctx context.Context, name string) error {
	return f.setTarget(ctx, "StopConnector", name, api.TargetStopped)
}

func (f *fakeHerder) ConnectorTopics(ctx context.Context, name string) (topics []string, err error) {
	err = f.withConn(ctx, "ConnectorTopics", false, name, func(c *fakeConn) error {
		if !f.tracking {
			return api.ErrTopicTrackingDisabled
		}
		topics = c.topics
		return nil
	})
	return topics, err
}

func (f *fakeHerder) ResetConnectorTopics(ctx context.Context, name string) error {
	return f.withConn(ctx, "ResetConnectorTopics", true, name, func(c *fakeConn) error {
		c.topics = nil
		return nil
	})
}

func (f *fakeHerder) ConnectorOffsets(ctx context.Context, name string) (offs *api.ConnectorOffsets, err error) {
	err = f.withConn(ctx, "ConnectorOffsets", false, name, func(c *fakeConn) error {
		offs = &api.ConnectorOffsets{Offsets: c.offsets}
		return nil
	})
	return offs, err
}

func (f *fakeHerder) modifyOffsets(ctx context.Context, call, name string, offs []api.ConnectorOffset, msg string) (string, error) {
	err := f.withConn(ctx, call, true, name, func(c *fakeConn) error {
		if c.target != api.TargetStopped {
			return api.NotStopped(name)
		}
		c.offsets = offs
		return nil
	})
	if err != nil {
		return "", err
	}
	return msg, nil
}

func (f *fakeHerder) AlterConnectorOffsets(ctx context.Context, name string, offs []api.ConnectorOffset) (string, error) {
	return f.modifyOffsets(ctx, "AlterConnectorOffsets", name, offs, api.MsgOffsetsAltered)
}

func (f *fakeHerder) ResetConnectorOffsets(ctx context.Context, name string) (string, error) {
	return f.modifyOffsets(ctx, "ResetConnectorOffsets", name, nil, api.MsgOffsetsResetExternal)
}

func (f *fakeHerder) Plugins(ctx context.Context, connectorsOnly bool) ([]api.PluginInfo, error) {
	if err := f.enter(ctx, "Plugins", false); err != nil {
		return nil, err
	}
	ps := []api.PluginInfo{
		{Class: "org.apache.kafka.connect.file.FileStreamSinkConnector", Type: api.PluginSink, Version: "0.1.0"},
		{Class: "org.apache.kafka.connect.file.FileStreamSourceConnector", Type: api.PluginSource, Version: "0.1.0"},
	}
	if !connectorsOnly {
		ps = append(ps,
			api.PluginInfo{Class: "org.apache.kafka.connect.transforms.InsertField$Value", Type: api.PluginTransformation},
			api.PluginInfo{Class: "org.apache.kafka.connect.json.JsonConverter", Type: api.PluginConverter})
	}
	return ps, nil
}

func fileKey() api.ConfigKeyInfo {
	return api.ConfigKeyInfo{Name: "file", Type: "STRING", Importance: "HIGH",
		Documentation: "Destination filename. If not specified, the standard output will be used",
		Width:         "NONE", DisplayName: "file"}
}

func (f *fakeHerder) PluginConfig(ctx context.Context, plugin string) ([]api.ConfigKeyInfo, error) {
	if err := f.enter(ctx, "PluginConfig", false); err != nil {
		return nil, err
	}
	if plugin != "FileStreamSink" && plugin != "org.apache.kafka.connect.file.FileStreamSinkConnector" {
		return nil, api.NotFound("Unknown plugin %s.", plugin)
	}
	def := "1"
	return []api.ConfigKeyInfo{fileKey(), {Name: "batch.size", Type: "INT", DefaultValue: &def, Importance: "LOW",
		Documentation: "Records per write", Group: "Common", OrderInGroup: 2, Width: "SHORT", DisplayName: "Batch size",
		Dependents: []string{"file"}}}, nil
}

func (f *fakeHerder) ValidateConfig(ctx context.Context, config map[string]string) (*api.ConfigInfos, error) {
	if err := f.enter(ctx, "ValidateConfig", false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.lastConfig = config
	f.mu.Unlock()
	v := api.ConfigValueInfo{Name: "file", Visible: true}
	errs := 0
	if fv, ok := config["file"]; ok {
		v.Value = &fv
	} else {
		v.Errors = []string{"Missing required configuration \"file\" which has no default value."}
		errs = 1
	}
	return &api.ConfigInfos{Name: config["connector.class"], ErrorCount: errs, Groups: []string{"Common"},
		Configs: []api.ConfigInfo{{Definition: fileKey(), Value: v}}}, nil
}

func (f *fakeHerder) Loggers(ctx context.Context) (map[string]api.LoggerLevel, error) {
	if err := f.enter(ctx, "Loggers", false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.loggers, nil
}

func (f *fakeHerder) Logger(ctx context.Context, name string) (*api.LoggerLevel, error) {
	if err := f.enter(ctx, "Logger", false); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	l, ok := f.loggers[name]
	if !ok {
		return nil, nil
	}
	return &l, nil
}

func (f *fakeHerder) SetLoggerLevel(ctx context.Context, name, level string, scope api.LoggerScope) ([]string, error) {
	if err := f.enter(ctx, "SetLoggerLevel", scope == api.ScopeCluster); err != nil {
		return nil, err
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.loggers[name] = api.LoggerLevel{Level: level}
	if scope == api.ScopeCluster {
		return nil, nil
	}
	return []string{name, name + ".runtime"}, nil
}

func (f *fakeHerder) HealthCheck(ctx context.Context) error {
	if err := f.enter(ctx, "HealthCheck", false); err != nil {
		return err
	}
	f.mu.Lock()
	healthy := f.healthy
	f.mu.Unlock()
	if !healthy {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (f *fakeHerder) Ready() bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.ready
}

func (f *fakeHerder) ServerInfo(ctx context.Context) (api.ServerInfo, error) {
	if err := f.enter(ctx, "ServerInfo", false); err != nil {
		return api.ServerInfo{}, err
	}
	return api.ServerInfo{Version: "0.1.0-sluice", Commit: "c4ba89b", KafkaClusterID: "MkU3OEVBNTcwNTJENDM2Qk"}, nil
}
