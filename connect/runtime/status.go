package runtime

import (
	"sort"
	"sync"

	"github.com/sluice-io/sluice/connect/api"
)

// Status is one connector's or task's reported state, as the status topic
// holds it ({"state","trace","worker_id","generation"}).
type Status struct {
	State      api.State
	Trace      string
	WorkerID   string
	Generation int32
}

// StatusBackend is where workers report states and read every worker's:
// the status topic in distributed mode, memory in standalone mode. Puts
// do not wait: a status is advisory, and Kafka writes them asynchronously
// too.
type StatusBackend interface {
	PutConnector(name string, s Status)
	PutTask(id TaskID, s Status)
	// Forget drops a deleted connector's statuses.
	Forget(name string)
	Connector(name string) (Status, bool)
	Tasks(name string) map[int]Status
	// AddTopic records that a connector used a topic (KIP-558).
	AddTopic(connector, topic string)
	Topics(connector string) []string
	ResetTopics(connector string)
}

// MemoryStatus is the standalone StatusBackend.
type MemoryStatus struct {
	mu         sync.Mutex
	connectors map[string]Status
	tasks      map[string]map[int]Status
	topics     map[string]map[string]bool
}

// NewMemoryStatus returns an empty in-memory status store.
func NewMemoryStatus() *MemoryStatus {
	return &MemoryStatus{connectors: map[string]Status{}, tasks: map[string]map[int]Status{}, topics: map[string]map[string]bool{}}
}

// PutConnector records a connector's state.
func (m *MemoryStatus) PutConnector(name string, s Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.connectors[name] = s
}

// PutTask records a task's state.
func (m *MemoryStatus) PutTask(id TaskID, s Status) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.tasks[id.Connector] == nil {
		m.tasks[id.Connector] = map[int]Status{}
	}
	m.tasks[id.Connector][id.Task] = s
}

// Forget drops a connector's statuses and topics.
func (m *MemoryStatus) Forget(name string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.connectors, name)
	delete(m.tasks, name)
	delete(m.topics, name)
}

// Connector returns a connector's last reported state.
func (m *MemoryStatus) Connector(name string) (Status, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s, ok := m.connectors[name]
	return s, ok
}

// Tasks returns the last reported state of each of a connector's tasks.
func (m *MemoryStatus) Tasks(name string) map[int]Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[int]Status{}
	for k, v := range m.tasks[name] {
		out[k] = v
	}
	return out
}

// AddTopic records a topic the connector used.
func (m *MemoryStatus) AddTopic(connector, topic string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.topics[connector] == nil {
		m.topics[connector] = map[string]bool{}
	}
	m.topics[connector][topic] = true
}

// Topics lists the topics the connector used, sorted.
func (m *MemoryStatus) Topics(connector string) []string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := []string{}
	for t := range m.topics[connector] {
		out = append(out, t)
	}
	sort.Strings(out)
	return out
}

// ResetTopics forgets the connector's topics.
func (m *MemoryStatus) ResetTopics(connector string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.topics, connector)
}
