package storage

import (
	"context"
	"fmt"
	"log/slog"
	"maps"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// StatusStore keeps connector, task and topic statuses (Kafka's
// StatusBackingStore). Reads answer from what the store has seen; a put
// returns once its own reads include it.
type StatusStore interface {
	// PutConnector records a connector's status; StateDestroyed deletes it
	// and its tasks' statuses.
	PutConnector(ctx context.Context, connector string, st Status) error
	// PutConnectorSafe is PutConnector unless another worker reported the
	// connector in a newer generation, in which case it does nothing.
	PutConnectorSafe(ctx context.Context, connector string, st Status) error
	// PutTask records a task's status; StateDestroyed deletes it.
	PutTask(ctx context.Context, id TaskID, st Status) error
	// PutTaskSafe is PutTask unless another worker reported the task in a
	// newer generation.
	PutTaskSafe(ctx context.Context, id TaskID, st Status) error
	// PutTopic records that a connector used a topic.
	PutTopic(ctx context.Context, ts TopicStatus) error
	// DeleteTopic forgets that connector used topic.
	DeleteTopic(ctx context.Context, connector, topic string) error

	Connector(connector string) (Status, bool)
	Task(id TaskID) (Status, bool)
	// Tasks is every task status of connector, by task number.
	Tasks(connector string) map[int]Status
	// Topics is the topics connector used, sorted by name.
	Topics(connector string) []TopicStatus
	// Connectors is the sorted names of connectors with a status.
	Connectors() []string
	Close() error
}

// statusBase is the part of both stores that reads the state and encodes
// records; write stores one record (nil value = tombstone).
type statusBase struct {
	mu    sync.Mutex
	state *statusState
	write func(ctx context.Context, key string, value []byte) error
}

func (b *statusBase) put(ctx context.Context, key string, st Status) error {
	if !st.State.valid() {
		return fmt.Errorf("invalid state %q", st.State)
	}
	v, err := encodeStatus(st)
	if err != nil {
		return err
	}
	if err := b.write(ctx, key, v); err != nil {
		return fmt.Errorf("writing status %s: %w", key, err)
	}
	return nil
}

func (b *statusBase) PutConnector(ctx context.Context, connector string, st Status) error {
	if err := checkName("connector", connector); err != nil {
		return err
	}
	return b.put(ctx, connectorStatusKey(connector), st)
}

func (b *statusBase) PutConnectorSafe(ctx context.Context, connector string, st Status) error {
	cur, had := b.Connector(connector)
	if !canWriteSafely(cur, had, st) {
		return nil
	}
	return b.PutConnector(ctx, connector, st)
}

func (b *statusBase) PutTask(ctx context.Context, id TaskID, st Status) error {
	if err := checkName("connector", id.Connector); err != nil {
		return err
	}
	return b.put(ctx, taskStatusKey(id), st)
}

func (b *statusBase) PutTaskSafe(ctx context.Context, id TaskID, st Status) error {
	cur, had := b.Task(id)
	if !canWriteSafely(cur, had, st) {
		return nil
	}
	return b.PutTask(ctx, id, st)
}

func (b *statusBase) PutTopic(ctx context.Context, ts TopicStatus) error {
	if ts.Topic == "" || ts.Connector == "" {
		return fmt.Errorf("topic status needs a topic and a connector")
	}
	v, err := marshal(topicStatusValue{topicStatusInner{ts.Topic, ts.Connector, ts.Task, ts.DiscoverTimestamp}})
	if err != nil {
		return err
	}
	key := topicStatusKey(ts.Topic, ts.Connector)
	if err := b.write(ctx, key, v); err != nil {
		return fmt.Errorf("writing status %s: %w", key, err)
	}
	return nil
}

func (b *statusBase) DeleteTopic(ctx context.Context, connector, topic string) error {
	key := topicStatusKey(topic, connector)
	if err := b.write(ctx, key, nil); err != nil {
		return fmt.Errorf("deleting status %s: %w", key, err)
	}
	return nil
}

func (b *statusBase) Connector(connector string) (Status, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.state.connectors[connector]
	return st, ok
}

func (b *statusBase) Task(id TaskID) (Status, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st, ok := b.state.tasks[id.Connector][id.Task]
	return st, ok
}

func (b *statusBase) Tasks(connector string) map[int]Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	return maps.Clone(b.state.tasks[connector])
}

func (b *statusBase) Topics(connector string) []TopicStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.topicList(connector)
}

func (b *statusBase) Connectors() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state.connectorNames()
}

func (b *statusBase) apply(key string, value []byte) {
	b.mu.Lock()
	b.state.apply(key, value)
	b.mu.Unlock()
}

// MemoryStatusStore keeps statuses in memory, for a standalone worker. Its
// records go through the same encoding and rules as the topic's.
type MemoryStatusStore struct {
	statusBase
}

var _ StatusStore = (*MemoryStatusStore)(nil)

// NewMemoryStatusStore returns an empty store.
func NewMemoryStatusStore(logger *slog.Logger) *MemoryStatusStore {
	logger = orDiscard(logger)
	s := &MemoryStatusStore{statusBase{state: newStatusState(logger.With("store", "status"))}}
	s.write = func(_ context.Context, key string, value []byte) error {
		s.apply(key, value)
		return nil
	}
	return s
}

// Close does nothing.
func (s *MemoryStatusStore) Close() error { return nil }

// KafkaStatusStoreOptions configure OpenKafkaStatusStore.
type KafkaStatusStoreOptions struct {
	// Client are the franz-go options reaching the cluster.
	Client []kgo.Opt
	// Topic is status.storage.topic (default connect-status),
	// status.storage.partitions (default 5) and
	// status.storage.replication.factor.
	Topic  TopicSettings
	Logger *slog.Logger
}

// KafkaStatusStore keeps statuses in the status topic and follows it, so
// every worker sees every worker's statuses.
type KafkaStatusStore struct {
	statusBase
	log *topicLog
}

var _ StatusStore = (*KafkaStatusStore)(nil)

// OpenKafkaStatusStore creates the status topic when it is missing and
// reads it to the end.
func OpenKafkaStatusStore(ctx context.Context, o KafkaStatusStoreOptions) (*KafkaStatusStore, error) {
	if o.Topic.Topic == "" {
		o.Topic.Topic = DefaultStatusTopic
	}
	if o.Topic.Partitions <= 0 {
		o.Topic.Partitions = 5
	}
	logger := orDiscard(o.Logger)
	s := &KafkaStatusStore{statusBase: statusBase{state: newStatusState(logger.With("store", "status"))}}
	spec := topicSpec{TopicSettings: o.Topic, settingName: "status.storage.topic", purpose: "connector and task statuses"}
	l, err := openTopicLog(ctx, o.Client, spec, logger, func(r *kgo.Record) { s.apply(string(r.Key), r.Value) })
	if err != nil {
		return nil, err
	}
	s.log = l
	s.write = func(ctx context.Context, key string, value []byte) error {
		return l.produce(ctx, &kgo.Record{Key: []byte(key), Value: value})
	}
	if err := l.readToEnd(ctx); err != nil {
		l.close()
		return nil, fmt.Errorf("reading status topic: %w", err)
	}
	return s, nil
}

// ReadToEnd returns once every status in the topic when it was called has
// been read.
func (s *KafkaStatusStore) ReadToEnd(ctx context.Context) error { return s.log.readToEnd(ctx) }

// Close stops following the topic.
func (s *KafkaStatusStore) Close() error {
	s.log.close()
	return nil
}
