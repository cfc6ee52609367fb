package storage

import (
	"log/slog"
	"sort"
	"strings"
)

// Status topic keys (KafkaStatusBackingStore).
const (
	connectorStatusPrefix = "status-connector-"
	taskStatusPrefix      = "status-task-"
	topicStatusPrefix     = "status-topic-"
	topicStatusSeparator  = ":connector-"
)

// State is a connector's or task's runtime state.
type State string

// Runtime states (Kafka's AbstractStatus.State).
const (
	StateUnassigned State = "UNASSIGNED"
	StateRunning    State = "RUNNING"
	StatePaused     State = "PAUSED"
	StateFailed     State = "FAILED"
	StateRestarting State = "RESTARTING"
	StateStopped    State = "STOPPED"
	// StateDestroyed is never stored: putting it writes a tombstone.
	StateDestroyed State = "DESTROYED"
)

func (s State) valid() bool {
	switch s {
	case StateUnassigned, StateRunning, StatePaused, StateFailed, StateRestarting, StateStopped, StateDestroyed:
		return true
	}
	return false
}

// Status is a connector's or task's state as one worker reported it.
type Status struct {
	State      State
	Trace      string // the failure's stack trace or reason; "" = none
	WorkerID   string // host:port of the worker's REST listener
	Generation int32  // the group generation it was reported in
}

// TopicStatus records that a connector's task used a topic (KIP-558).
type TopicStatus struct {
	Topic             string
	Connector         string
	Task              int
	DiscoverTimestamp int64 // ms
}

// Status topic values, fields in the order of Kafka's Connect schemas.
type statusValue struct {
	State      string  `json:"state"`
	Trace      *string `json:"trace"`
	WorkerID   string  `json:"worker_id"`
	Generation int32   `json:"generation"`
}

type topicStatusValue struct {
	Topic topicStatusInner `json:"topic"`
}

type topicStatusInner struct {
	Name              string `json:"name"`
	Connector         string `json:"connector"`
	Task              int    `json:"task"`
	DiscoverTimestamp int64  `json:"discoverTimestamp"`
}

func connectorStatusKey(connector string) string { return connectorStatusPrefix + connector }

func taskStatusKey(id TaskID) string { return taskStatusPrefix + id.String() }

func topicStatusKey(topic, connector string) string {
	return topicStatusPrefix + topic + topicStatusSeparator + connector
}

// encodeStatus is the record value for st; DESTROYED is a tombstone.
func encodeStatus(st Status) ([]byte, error) {
	if st.State == StateDestroyed {
		return nil, nil
	}
	v := statusValue{State: string(st.State), WorkerID: st.WorkerID, Generation: st.Generation}
	if st.Trace != "" {
		v.Trace = &st.Trace
	}
	return marshal(v)
}

// statusState applies status topic records; it does no I/O. Its rules are
// KafkaStatusBackingStore.read's.
type statusState struct {
	connectors map[string]Status
	tasks      map[string]map[int]Status
	topics     map[string]map[string]TopicStatus // connector -> topic -> status
	log        *slog.Logger
}

func newStatusState(log *slog.Logger) *statusState {
	return &statusState{
		connectors: map[string]Status{},
		tasks:      map[string]map[int]Status{},
		topics:     map[string]map[string]TopicStatus{},
		log:        log,
	}
}

func (s *statusState) apply(key string, value []byte) {
	switch {
	case strings.HasPrefix(key, connectorStatusPrefix):
		conn := strings.TrimPrefix(key, connectorStatusPrefix)
		if conn == "" {
			s.log.Warn("discarding status record with an empty connector", "key", key)
			return
		}
		if value == nil {
			// A deleted connector takes its tasks' statuses with it.
			delete(s.connectors, conn)
			delete(s.tasks, conn)
			return
		}
		if st, ok := s.parseStatus(key, value); ok {
			s.connectors[conn] = st
		}
	case strings.HasPrefix(key, taskStatusPrefix):
		id, ok := parseTaskKey(strings.TrimPrefix(key, taskStatusPrefix))
		if !ok {
			s.log.Warn("discarding status record with an invalid task key", "key", key)
			return
		}
		if value == nil {
			delete(s.tasks[id.Connector], id.Task)
			return
		}
		st, ok := s.parseStatus(key, value)
		if !ok {
			return
		}
		cur, had := s.tasks[id.Connector][id.Task]
		// A worker that lost a task reports it UNASSIGNED; the one that
		// took it over may already have said RUNNING in the same or a
		// later generation.
		if had && st.State == StateUnassigned && cur.State == StateRunning && cur.Generation >= st.Generation {
			return
		}
		if s.tasks[id.Connector] == nil {
			s.tasks[id.Connector] = map[int]Status{}
		}
		s.tasks[id.Connector][id.Task] = st
	case strings.HasPrefix(key, topicStatusPrefix):
		topic, conn, ok := strings.Cut(strings.TrimPrefix(key, topicStatusPrefix), topicStatusSeparator)
		if !ok || topic == "" || conn == "" {
			s.log.Warn("discarding status record with an invalid topic key", "key", key)
			return
		}
		if value == nil {
			delete(s.topics[conn], topic)
			return
		}
		v, err := decodeJSON(value)
		obj, _ := v.(map[string]any)
		inner, _ := obj["topic"].(map[string]any)
		name, ok1 := inner["name"].(string)
		c, ok2 := inner["connector"].(string)
		task, ok3 := inner["task"].(int64)
		ts, ok4 := inner["discoverTimestamp"].(int64)
		if err != nil || !ok1 || !ok2 || !ok3 || !ok4 {
			s.log.Warn("discarding malformed topic status", "key", key)
			return
		}
		if s.topics[conn] == nil {
			s.topics[conn] = map[string]TopicStatus{}
		}
		s.topics[conn][topic] = TopicStatus{Topic: name, Connector: c, Task: int(task), DiscoverTimestamp: ts}
	default:
		s.log.Warn("discarding status record with an unknown key", "key", key)
	}
}

func (s *statusState) parseStatus(key string, value []byte) (Status, bool) {
	v, err := decodeJSON(value)
	obj, _ := v.(map[string]any)
	state, _ := obj["state"].(string)
	gen, okGen := obj["generation"].(int64)
	if err != nil || obj == nil || !State(state).valid() || !okGen {
		s.log.Warn("discarding malformed status", "key", key)
		return Status{}, false
	}
	trace, _ := obj["trace"].(string)
	worker, _ := obj["worker_id"].(string)
	return Status{State: State(state), Trace: trace, WorkerID: worker, Generation: int32(gen)}, true
}

// canWriteSafely is Kafka's rule for putSafe: no status yet, or ours, or
// one from an older (or the same) generation.
func canWriteSafely(cur Status, had bool, st Status) bool {
	return !had || cur.WorkerID == st.WorkerID || cur.Generation <= st.Generation
}

func (s *statusState) connectorNames() []string {
	names := make([]string, 0, len(s.connectors))
	for n := range s.connectors {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

func (s *statusState) topicList(connector string) []TopicStatus {
	out := make([]TopicStatus, 0, len(s.topics[connector]))
	for _, t := range s.topics[connector] {
		out = append(out, t)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Topic < out[j].Topic })
	return out
}
