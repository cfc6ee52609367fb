package runtime

import (
	"context"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/distributed"
	"github.com/sluice-io/sluice/connect/storage"
)

// groupAssignment is the distributed Assignment: what the connect group's
// leader gave this worker. It applies each rebalance event: revoked work
// is stopped before the event returns (the group protocol's rule), the
// config topic is read up to the leader's offset, and the herder is woken
// to start what was assigned.
type groupAssignment struct {
	configs *storage.ConfigStore

	mu         sync.Mutex
	member     *distributed.Member // set once the worker joins; nil before
	worker     *Worker
	herder     *Herder
	owned      map[distributed.ID]bool
	generation int32
}

func (g *groupAssignment) OwnsConnector(name string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.owned[distributed.ConnectorID(name)]
}

func (g *groupAssignment) OwnsTask(id TaskID) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.owned[distributed.TaskID(id.Connector, int32(id.Task))]
}

// Leader and LeaderURL answer "no leader yet" until the member exists:
// the REST API listens before the worker joins its group.
func (g *groupAssignment) Leader() bool {
	m := g.getMember()
	return m != nil && m.IsLeader()
}

func (g *groupAssignment) LeaderURL() string {
	if m := g.getMember(); m != nil {
		return m.LeaderURL()
	}
	return ""
}

func (g *groupAssignment) TaskOwnerURL(id TaskID) string {
	m := g.getMember()
	if m == nil {
		return ""
	}
	url, _ := m.OwnerURL(distributed.TaskID(id.Connector, int32(id.Task)))
	return url
}

func (g *groupAssignment) getMember() *distributed.Member {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.member
}

func (g *groupAssignment) gen() int32 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.generation
}

// snapshot is what the leader assigns from: every connector and its task
// count (a stopped connector has none).
func (g *groupAssignment) snapshot() distributed.ConfigSnapshot {
	snap := g.configs.Snapshot()
	tasks := make(map[string]int, len(snap.Connectors))
	for name := range snap.Connectors {
		tasks[name] = len(snap.Tasks(name))
	}
	return distributed.ConfigSnapshot{Offset: snap.Offset, Tasks: tasks}
}

func (g *groupAssignment) onAssignment(ev distributed.Event) {
	if ev.Error != 0 {
		// The leader's config was behind ours or ours behind its: read
		// the config topic to the end; the member rejoins by itself.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		_ = g.configs.ReadToEnd(ctx)
		cancel()
		return
	}
	g.mu.Lock()
	g.generation = ev.Generation
	for _, id := range ev.Revoked {
		delete(g.owned, id)
	}
	g.mu.Unlock()
	for _, id := range ev.Revoked {
		if !id.IsConnector() {
			g.worker.StopTask(TaskID{Connector: id.Connector, Task: int(id.Task)})
		}
	}
	if len(ev.Assigned) > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		for g.configs.Snapshot().Offset < ev.ConfigOffset && ctx.Err() == nil {
			_ = g.configs.ReadToEnd(ctx)
		}
		cancel()
	}
	g.mu.Lock()
	for _, id := range ev.Assigned {
		g.owned[id] = true
	}
	g.mu.Unlock()
	if h := g.getHerder(); h != nil {
		h.Wake()
	}
}

func (g *groupAssignment) getHerder() *Herder {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.herder
}

// onConfigUpdate reacts to the config topic: a change of connectors or
// task counts needs a new assignment (the leader asks for it), and
// everything else a reconcile.
func (g *groupAssignment) onConfigUpdate(u storage.ConfigUpdate) {
	switch u.Kind {
	case storage.ConnectorConfigUpdated, storage.ConnectorConfigRemoved, storage.TaskConfigsCommitted:
		if m := g.getMember(); m != nil && m.IsLeader() {
			m.RequestRejoin()
		}
	case storage.RestartRequested:
		if h := g.getHerder(); h != nil {
			h.ApplyRestart(u.Restart)
		}
	}
	if h := g.getHerder(); h != nil {
		h.Wake()
	}
}
