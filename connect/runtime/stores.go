package runtime

import (
	"context"
	"log/slog"
	"time"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/storage"
)

// Adapters from connect/storage's stores to the runtime's interfaces.

// storageOffsets is an OffsetStore over a storage offsets store (the
// offsets topic or the standalone file).
type storageOffsets struct {
	store interface {
		Offsets(ctx context.Context, connector string) ([]storage.ConnectorOffset, error)
		Write(ctx context.Context, connector string, offsets []storage.ConnectorOffset) error
	}
}

func (s storageOffsets) Read(ctx context.Context, connector string) ([]SourceOffset, error) {
	offs, err := s.store.Offsets(ctx, connector)
	if err != nil {
		return nil, err
	}
	out := make([]SourceOffset, 0, len(offs))
	for _, o := range offs {
		out = append(out, SourceOffset{Partition: o.Partition, Offset: o.Offset})
	}
	return out, nil
}

func (s storageOffsets) Write(ctx context.Context, connector string, offsets []SourceOffset) error {
	in := make([]storage.ConnectorOffset, 0, len(offsets))
	for _, o := range offsets {
		in = append(in, storage.ConnectorOffset{Partition: o.Partition, Offset: o.Offset})
	}
	return s.store.Write(ctx, connector, in)
}

// topicConfigs is the distributed ConfigBackend: the config topic.
type topicConfigs struct{ *storage.ConfigStore }

func (c topicConfigs) PutConnectorConfig(ctx context.Context, name string, cfg map[string]string, target *storage.TargetState) error {
	var t storage.TargetState
	if target != nil {
		t = *target
	} else if !c.Snapshot().Contains(name) {
		// A new connector gets its target state written with it, as
		// Kafka does, so a stale target of an earlier connector of
		// the same name does not apply.
		t = storage.TargetStarted
	}
	return c.ConfigStore.PutConnectorConfig(ctx, name, cfg, t)
}

// asyncStatus is a StatusBackend over a storage status store. Puts are
// queued and written in order by one goroutine: a task's state change
// must not wait for the status topic, and RUNNING must not overtake the
// FAILED before it.
type asyncStatus struct {
	store  storage.StatusStore
	gen    func() int32
	queue  chan func(context.Context) error
	logger *slog.Logger
}

func newAsyncStatus(ctx context.Context, store storage.StatusStore, gen func() int32, logger *slog.Logger) *asyncStatus {
	s := &asyncStatus{store: store, gen: gen, queue: make(chan func(context.Context) error, 1024), logger: logger}
	go s.run(ctx)
	return s
}

func (s *asyncStatus) run(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case put := <-s.queue:
			wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
			if err := put(wctx); err != nil && ctx.Err() == nil {
				s.logger.Warn("writing a status to the status topic failed", "err", err)
			}
			cancel()
		}
	}
}

func (s *asyncStatus) enqueue(put func(context.Context) error) {
	select {
	case s.queue <- put:
	default:
		s.logger.Warn("status queue full; dropping a status update")
	}
}

func (s *asyncStatus) toStorage(st Status) storage.Status {
	return storage.Status{State: storage.State(st.State), Trace: st.Trace, WorkerID: st.WorkerID, Generation: s.gen()}
}

func (s *asyncStatus) PutConnector(name string, st Status) {
	v := s.toStorage(st)
	s.enqueue(func(ctx context.Context) error { return s.store.PutConnector(ctx, name, v) })
}

func (s *asyncStatus) PutTask(id TaskID, st Status) {
	v := s.toStorage(st)
	sid := storage.TaskID{Connector: id.Connector, Task: id.Task}
	s.enqueue(func(ctx context.Context) error { return s.store.PutTask(ctx, sid, v) })
}

// Forget tombstones every task status the store holds for the connector,
// then the connector's own, as Kafka's AbstractHerder.onDeletion does. The
// per-task tombstones matter: task records live on other partitions of the
// status topic than the connector's, so another worker may read the
// connector's tombstone before a task's last record and would keep that
// task's status forever without a tombstone under the task's own key.
func (s *asyncStatus) Forget(name string) {
	s.enqueue(func(ctx context.Context) error {
		for task := range s.store.Tasks(name) {
			id := storage.TaskID{Connector: name, Task: task}
			if err := s.store.PutTask(ctx, id, storage.Status{State: storage.StateDestroyed}); err != nil {
				return err
			}
		}
		return s.store.PutConnector(ctx, name, storage.Status{State: storage.StateDestroyed})
	})
}

func fromStorage(st storage.Status) Status {
	return Status{State: api.State(st.State), Trace: st.Trace, WorkerID: st.WorkerID, Generation: st.Generation}
}

func (s *asyncStatus) Connector(name string) (Status, bool) {
	st, ok := s.store.Connector(name)
	return fromStorage(st), ok
}

func (s *asyncStatus) Tasks(name string) map[int]Status {
	out := map[int]Status{}
	for k, v := range s.store.Tasks(name) {
		out[k] = fromStorage(v)
	}
	return out
}

func (s *asyncStatus) AddTopic(connector, topic string) {
	ts := storage.TopicStatus{Topic: topic, Connector: connector, DiscoverTimestamp: time.Now().UnixMilli()}
	s.enqueue(func(ctx context.Context) error { return s.store.PutTopic(ctx, ts) })
}

func (s *asyncStatus) Topics(connector string) []string {
	out := []string{}
	for _, t := range s.store.Topics(connector) {
		out = append(out, t.Topic)
	}
	return out
}

func (s *asyncStatus) ResetTopics(connector string) {
	for _, t := range s.store.Topics(connector) {
		topic := t.Topic
		s.enqueue(func(ctx context.Context) error { return s.store.DeleteTopic(ctx, connector, topic) })
	}
}
