package runtime

import (
	"context"
	"maps"
	"sync"

	"github.com/sluice-io/sluice/connect/storage"
)

// MemoryConfigs is the standalone ConfigBackend: configs live in memory,
// as in Kafka's standalone mode (connectors given on the command line are
// created again at every start). Restart requests are handed to onRestart
// at once.
type MemoryConfigs struct {
	mu        sync.Mutex
	snap      storage.ConfigSnapshot
	onRestart func(storage.RestartRequest)
}

// NewMemoryConfigs returns an empty standalone config backend.
func NewMemoryConfigs() *MemoryConfigs {
	return &MemoryConfigs{snap: storage.ConfigSnapshot{
		Offset:         -1,
		Connectors:     map[string]map[string]string{},
		TargetStates:   map[string]storage.TargetState{},
		TaskCounts:     map[string]int{},
		TaskConfigs:    map[string][]map[string]string{},
		AppliedConfigs: map[string]map[string]string{},
		Generations:    map[string]int{},
		Inconsistent:   map[string]bool{},
	}}
}

// OnRestart sets where restart requests go (the herder's ApplyRestart).
func (m *MemoryConfigs) OnRestart(f func(storage.RestartRequest)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onRestart = f
}

// Snapshot returns a copy of the current configuration: later writes do
// not change a snapshot already handed out.
func (m *MemoryConfigs) Snapshot() storage.ConfigSnapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.snap
	s.Connectors = maps.Clone(s.Connectors)
	s.TargetStates = maps.Clone(s.TargetStates)
	s.TaskCounts = maps.Clone(s.TaskCounts)
	s.TaskConfigs = maps.Clone(s.TaskConfigs)
	s.AppliedConfigs = maps.Clone(s.AppliedConfigs)
	s.Generations = maps.Clone(s.Generations)
	s.Inconsistent = maps.Clone(s.Inconsistent)
	return s
}

func (m *MemoryConfigs) bump() { m.snap.Offset++ }

// PutConnectorConfig creates or replaces a connector's config, and sets
// its target state when target is not nil.
func (m *MemoryConfigs) PutConnectorConfig(_ context.Context, name string, config map[string]string, target *storage.TargetState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if target != nil {
		m.snap.TargetStates[name] = *target
		m.bump()
	}
	m.snap.Connectors[name] = maps.Clone(config)
	m.bump()
	return nil
}

// RemoveConnectorConfig deletes a connector and its tasks.
func (m *MemoryConfigs) RemoveConnectorConfig(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.snap.Connectors, name)
	delete(m.snap.TargetStates, name)
	delete(m.snap.TaskCounts, name)
	delete(m.snap.TaskConfigs, name)
	delete(m.snap.AppliedConfigs, name)
	delete(m.snap.Generations, name)
	delete(m.snap.Inconsistent, name)
	m.bump()
	return nil
}

// PutTaskConfigs replaces a connector's task configs at once.
func (m *MemoryConfigs) PutTaskConfigs(_ context.Context, name string, tasks []map[string]string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	cp := make([]map[string]string, len(tasks))
	for i, t := range tasks {
		cp[i] = maps.Clone(t)
	}
	m.snap.TaskConfigs[name] = cp
	m.snap.TaskCounts[name] = len(cp)
	m.snap.AppliedConfigs[name] = maps.Clone(m.snap.Connectors[name])
	m.snap.Generations[name]++
	m.bump()
	return nil
}

// PutTargetState sets a connector's target state.
func (m *MemoryConfigs) PutTargetState(_ context.Context, name string, state storage.TargetState) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.snap.TargetStates[name] = state
	m.bump()
	return nil
}

// PutRestartRequest hands a restart request to the herder.
func (m *MemoryConfigs) PutRestartRequest(_ context.Context, req storage.RestartRequest) error {
	m.mu.Lock()
	f := m.onRestart
	m.mu.Unlock()
	if f != nil {
		f(req)
	}
	return nil
}

// Standalone is the standalone Assignment: this worker runs everything
// and performs every write.
type Standalone struct{}

// OwnsConnector is always true in standalone mode.
func (Standalone) OwnsConnector(string) bool { return true }

// OwnsTask is always true in standalone mode.
func (Standalone) OwnsTask(TaskID) bool { return true }

// Leader is always true in standalone mode.
func (Standalone) Leader() bool { return true }

// LeaderURL is empty: there is no other worker.
func (Standalone) LeaderURL() string { return "" }

// TaskOwnerURL is empty: every task runs here.
func (Standalone) TaskOwnerURL(TaskID) string { return "" }
