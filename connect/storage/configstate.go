package storage

import (
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"sort"
	"strconv"
	"strings"
)

// Config topic keys (KafkaConfigBackingStore).
const (
	connectorPrefix   = "connector-"
	taskPrefix        = "task-"
	commitPrefix      = "commit-"
	targetStatePrefix = "target-state-"
	restartPrefix     = "restart-connector-"
	taskCountPrefix   = "tasks-fencing-"
	sessionKeyKey     = "session-key"
	loggerPrefix      = "logger-cluster-"
)

// UpdateKind says what a config topic record changed.
type UpdateKind int

// The changes a ConfigStore reports (Kafka's ConfigBackingStore.UpdateListener).
const (
	ConnectorConfigUpdated UpdateKind = iota + 1
	ConnectorConfigRemoved
	TaskConfigsCommitted // Tasks lists the tasks whose configs changed; empty when the commit was incomplete
	TargetStateChanged
	RestartRequested   // Restart holds the request
	SessionKeyUpdated  // the snapshot holds the key
	LoggerLevelChanged // Namespace and Level
)

func (k UpdateKind) String() string {
	switch k {
	case ConnectorConfigUpdated:
		return "connector-config-updated"
	case ConnectorConfigRemoved:
		return "connector-config-removed"
	case TaskConfigsCommitted:
		return "task-configs-committed"
	case TargetStateChanged:
		return "target-state-changed"
	case RestartRequested:
		return "restart-requested"
	case SessionKeyUpdated:
		return "session-key-updated"
	case LoggerLevelChanged:
		return "logger-level-changed"
	}
	return "UpdateKind(" + strconv.Itoa(int(k)) + ")"
}

// ConfigUpdate is one change read from the config topic.
type ConfigUpdate struct {
	Kind      UpdateKind
	Connector string
	Tasks     []TaskID
	Restart   RestartRequest
	Namespace string
	Level     string
}

// ConfigSnapshot is the cluster's configuration as of Offset (Kafka's
// ClusterConfigState). Its maps are shared with later snapshots: read only.
type ConfigSnapshot struct {
	// Offset is the config topic offset just past the last record read, -1
	// before any (ClusterConfigState.offset(): the "config offset" workers
	// compare in the connect group protocol).
	Offset int64
	// Connectors maps a connector name to its config.
	Connectors map[string]map[string]string
	// TargetStates maps every connector (and a target state seen before
	// its connector) to its target state.
	TargetStates map[string]TargetState
	// TaskCounts is the task count of each connector's last commit.
	TaskCounts map[string]int
	// TaskConfigs holds each connector's committed task configs, index =
	// task number. A connector whose last commit was incomplete is absent
	// (see Inconsistent).
	TaskConfigs map[string][]map[string]string
	// AppliedConfigs is each connector's config as of its last complete
	// task commit: the config its current tasks were generated from.
	AppliedConfigs map[string]map[string]string
	// Generations counts each connector's complete task commits from 0.
	Generations map[string]int
	// Inconsistent connectors committed task configs that were not all
	// there (compaction after a failed write): the herder must regenerate.
	Inconsistent map[string]bool
	// SessionKey is the last session key written, nil if none.
	SessionKey *SessionKey
}

// Contains reports whether connector has a config.
func (s ConfigSnapshot) Contains(connector string) bool {
	_, ok := s.Connectors[connector]
	return ok
}

// ConnectorNames is the sorted names of the configured connectors.
func (s ConfigSnapshot) ConnectorNames() []string {
	names := make([]string, 0, len(s.Connectors))
	for n := range s.Connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Tasks is connector's committed tasks; none while it is inconsistent.
func (s ConfigSnapshot) Tasks(connector string) []TaskID {
	if s.Inconsistent[connector] {
		return nil
	}
	n := s.TaskCounts[connector]
	ids := make([]TaskID, n)
	for i := range ids {
		ids[i] = TaskID{connector, i}
	}
	return ids
}

// TaskConfig is one committed task's config, nil if there is none.
func (s ConfigSnapshot) TaskConfig(id TaskID) map[string]string {
	cfgs := s.TaskConfigs[id.Connector]
	if id.Task < 0 || id.Task >= len(cfgs) {
		return nil
	}
	return cfgs[id.Task]
}

// configState applies config topic records in order; it does no I/O. Its
// rules are KafkaConfigBackingStore's ConsumeCallback.
type configState struct {
	snap     ConfigSnapshot
	deferred map[string]map[int]map[string]string // task configs awaiting their commit
	log      *slog.Logger
}

func newConfigState(log *slog.Logger) *configState {
	return &configState{
		snap: ConfigSnapshot{
			Offset:         -1,
			Connectors:     map[string]map[string]string{},
			TargetStates:   map[string]TargetState{},
			TaskCounts:     map[string]int{},
			TaskConfigs:    map[string][]map[string]string{},
			AppliedConfigs: map[string]map[string]string{},
			Generations:    map[string]int{},
			Inconsistent:   map[string]bool{},
		},
		deferred: map[string]map[int]map[string]string{},
		log:      log,
	}
}

// snapshot copies the outer maps; the inner ones are never mutated.
func (s *configState) snapshot() ConfigSnapshot {
	c := s.snap
	c.Connectors = maps.Clone(s.snap.Connectors)
	c.TargetStates = maps.Clone(s.snap.TargetStates)
	c.TaskCounts = maps.Clone(s.snap.TaskCounts)
	c.TaskConfigs = maps.Clone(s.snap.TaskConfigs)
	c.AppliedConfigs = maps.Clone(s.snap.AppliedConfigs)
	c.Generations = maps.Clone(s.snap.Generations)
	c.Inconsistent = maps.Clone(s.snap.Inconsistent)
	return c
}

// apply applies the record at offset and returns what it changed. A nil
// value is a tombstone.
func (s *configState) apply(key string, value []byte, offset int64) []ConfigUpdate {
	var v map[string]any
	if value != nil {
		parsed, err := decodeJSON(value)
		if err != nil {
			s.log.Error("ignoring config record that is not JSON", "key", key, "offset", offset, "err", err)
			return nil
		}
		s.snap.Offset = offset + 1
		m, ok := parsed.(map[string]any)
		if !ok {
			s.log.Error("ignoring config record whose value is not a JSON object", "key", key, "offset", offset)
			return nil
		}
		v = m
	}
	s.snap.Offset = offset + 1
	// Prefix order matters: "target-state-" before "task-", like Kafka.
	switch {
	case strings.HasPrefix(key, targetStatePrefix):
		return s.targetState(strings.TrimPrefix(key, targetStatePrefix), v, value == nil)
	case strings.HasPrefix(key, connectorPrefix):
		return s.connectorConfig(strings.TrimPrefix(key, connectorPrefix), v, value == nil)
	case strings.HasPrefix(key, taskPrefix):
		id, ok := parseTaskKey(strings.TrimPrefix(key, taskPrefix))
		if !ok {
			s.log.Error("ignoring task config whose key is not task-<connector>-<n>", "key", key)
			return nil
		}
		s.taskConfig(id, v, value == nil)
		return nil
	case strings.HasPrefix(key, commitPrefix):
		return s.commit(strings.TrimPrefix(key, commitPrefix), v, value == nil)
	case strings.HasPrefix(key, restartPrefix):
		if value == nil {
			return nil // compaction's cleanup of a served request
		}
		return []ConfigUpdate{{Kind: RestartRequested, Connector: strings.TrimPrefix(key, restartPrefix),
			Restart: RestartRequest{
				Connector:    strings.TrimPrefix(key, restartPrefix),
				IncludeTasks: boolField(v, "include-tasks"),
				OnlyFailed:   boolField(v, "only-failed"),
			}}}
	case strings.HasPrefix(key, taskCountPrefix):
		return nil // exactly-once zombie fencing (KIP-618): not supported yet
	case key == sessionKeyKey:
		return s.sessionKey(v)
	case strings.HasPrefix(key, loggerPrefix):
		level, ok := v["level"].(string)
		if !ok {
			s.log.Error("ignoring logger level record without a string level", "key", key)
			return nil
		}
		return []ConfigUpdate{{Kind: LoggerLevelChanged, Namespace: strings.TrimPrefix(key, loggerPrefix), Level: level}}
	default:
		s.log.Error("discarding config record with an unknown key", "key", key, "offset", offset)
		return nil
	}
}

func (s *configState) targetState(conn string, v map[string]any, tombstone bool) []ConfigUpdate {
	if tombstone {
		delete(s.snap.TargetStates, conn)
		if _, ok := s.snap.Connectors[conn]; ok {
			s.snap.TargetStates[conn] = TargetStarted
		}
		return nil
	}
	// Newer workers write state.v2 (which may say STOPPED); older ones only
	// know state, where STOPPED is written as PAUSED.
	raw, ok := v["state.v2"].(string)
	if !ok {
		if raw, ok = v["state"].(string); !ok {
			s.log.Error("ignoring target state without a string state", "connector", conn)
			return nil
		}
	}
	st := TargetState(raw)
	if !st.valid() {
		s.log.Error("ignoring invalid target state", "connector", conn, "state", raw)
		return nil
	}
	prev, had := s.snap.TargetStates[conn]
	s.snap.TargetStates[conn] = st
	if _, ok := s.snap.Connectors[conn]; ok && (!had || prev != st) {
		return []ConfigUpdate{{Kind: TargetStateChanged, Connector: conn}}
	}
	return nil
}

func (s *configState) connectorConfig(conn string, v map[string]any, tombstone bool) []ConfigUpdate {
	if tombstone {
		s.removeConnector(conn)
		return []ConfigUpdate{{Kind: ConnectorConfigRemoved, Connector: conn}}
	}
	props, ok := properties(v)
	if !ok {
		s.log.Error("ignoring connector config without a properties object", "connector", conn)
		return nil
	}
	s.snap.Connectors[conn] = props
	if _, ok := s.snap.TargetStates[conn]; !ok {
		s.snap.TargetStates[conn] = TargetStarted
	}
	return []ConfigUpdate{{Kind: ConnectorConfigUpdated, Connector: conn}}
}

func (s *configState) taskConfig(id TaskID, v map[string]any, tombstone bool) {
	if tombstone {
		s.log.Error("ignoring task config tombstone", "task", id.String())
		return
	}
	props, ok := properties(v)
	if !ok {
		s.log.Error("ignoring task config without a properties object", "task", id.String())
		return
	}
	d := s.deferred[id.Connector]
	if d == nil {
		d = map[int]map[string]string{}
		s.deferred[id.Connector] = d
	}
	d[id.Task] = props
}

// commit applies the buffered task configs of conn atomically, if all of
// tasks 0..n-1 are there.
func (s *configState) commit(conn string, v map[string]any, tombstone bool) []ConfigUpdate {
	applied, ok := s.snap.Connectors[conn]
	if !ok {
		// Deleted, and compaction has removed the rest of its records.
		s.removeConnector(conn)
		return nil
	}
	if tombstone {
		s.log.Error("ignoring task commit tombstone", "connector", conn)
		return nil
	}
	n, ok := v["tasks"].(int64)
	if !ok || n < 0 || n > 1<<20 {
		s.log.Error("ignoring task commit without a valid task count", "connector", conn)
		return nil
	}
	d := s.deferred[conn]
	complete := true
	for i := range int(n) {
		if _, ok := d[i]; !ok {
			complete = false
			break
		}
	}
	var changed []TaskID
	if complete {
		cfgs := make([]map[string]string, n)
		for i := range cfgs {
			cfgs[i] = d[i]
		}
		s.snap.TaskConfigs[conn] = cfgs
		if len(d) > 0 {
			for t := range d {
				changed = append(changed, TaskID{conn, t})
			}
			sort.Slice(changed, func(i, j int) bool { return changed[i].Task < changed[j].Task })
			if g, ok := s.snap.Generations[conn]; ok {
				s.snap.Generations[conn] = g + 1
			} else {
				s.snap.Generations[conn] = 0
			}
		}
		delete(s.snap.Inconsistent, conn)
		s.snap.AppliedConfigs[conn] = applied
	} else {
		s.log.Warn("task commit without all its task configs, probably after compaction: the connector's tasks must be regenerated",
			"connector", conn, "tasks", n)
		s.snap.Inconsistent[conn] = true
	}
	delete(s.deferred, conn)
	s.snap.TaskCounts[conn] = int(n)
	return []ConfigUpdate{{Kind: TaskConfigsCommitted, Connector: conn, Tasks: changed}}
}

func (s *configState) sessionKey(v map[string]any) []ConfigUpdate {
	k, ok1 := v["key"].(string)
	alg, ok2 := v["algorithm"].(string)
	ts, ok3 := v["creation-timestamp"].(int64)
	if !ok1 || !ok2 || !ok3 {
		s.log.Error("ignoring malformed session key record")
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(k)
	if err != nil {
		s.log.Error("ignoring session key that is not base64", "err", err)
		return nil
	}
	s.snap.SessionKey = &SessionKey{Key: raw, Algorithm: alg, CreationTimestamp: ts}
	return []ConfigUpdate{{Kind: SessionKeyUpdated}}
}

func (s *configState) removeConnector(conn string) {
	delete(s.snap.Connectors, conn)
	delete(s.snap.TaskCounts, conn)
	delete(s.snap.TaskConfigs, conn)
	delete(s.snap.AppliedConfigs, conn)
	delete(s.deferred, conn)
}

// parseTaskKey splits "<connector>-<n>"; the connector may contain dashes.
func parseTaskKey(rest string) (TaskID, bool) {
	i := strings.LastIndexByte(rest, '-')
	if i <= 0 {
		return TaskID{}, false
	}
	n, err := strconv.Atoi(rest[i+1:])
	if err != nil || n < 0 {
		return TaskID{}, false
	}
	return TaskID{rest[:i], n}, true
}

// properties reads {"properties":{k:v}}. Values are strings; a null value
// is dropped, anything else is kept as its JSON text.
func properties(v map[string]any) (map[string]string, bool) {
	m, ok := v["properties"].(map[string]any)
	if !ok {
		return nil, false
	}
	props := make(map[string]string, len(m))
	for k, e := range m {
		switch x := e.(type) {
		case nil:
		case string:
			props[k] = x
		default:
			b, err := appendJSON(nil, x)
			if err != nil {
				return nil, false
			}
			props[k] = string(b)
		}
	}
	return props, true
}

func boolField(v map[string]any, k string) bool {
	b, _ := v[k].(bool)
	return b
}

// Config topic values, fields in the order of Kafka's Connect schemas.
type propertiesValue struct {
	Properties map[string]string `json:"properties"`
}

type commitValue struct {
	Tasks int `json:"tasks"`
}

type targetStateValue struct {
	State   string `json:"state"`
	StateV2 string `json:"state.v2"`
}

type restartValue struct {
	IncludeTasks bool `json:"include-tasks"`
	OnlyFailed   bool `json:"only-failed"`
}

type sessionKeyValue struct {
	Key               string `json:"key"`
	Algorithm         string `json:"algorithm"`
	CreationTimestamp int64  `json:"creation-timestamp"`
}

type loggerLevelValue struct {
	Level string `json:"level"`
}

func targetStateRecord(st TargetState) targetStateValue {
	old := st
	if st == TargetStopped {
		old = TargetPaused // workers before 3.5 know no STOPPED
	}
	return targetStateValue{State: string(old), StateV2: string(st)}
}

func checkName(kind, name string) error {
	if name == "" {
		return fmt.Errorf("%s name must not be empty", kind)
	}
	return nil
}
