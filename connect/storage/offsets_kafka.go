package storage

import (
	"context"
	"fmt"
	"log/slog"
	"sync"

	"github.com/twmb/franz-go/pkg/kgo"
)

// KafkaOffsetStoreOptions configure OpenKafkaOffsetStore.
type KafkaOffsetStoreOptions struct {
	// Client are the franz-go options reaching the cluster.
	Client []kgo.Opt
	// Topic is offset.storage.topic (default connect-offsets),
	// offset.storage.partitions (default 25) and
	// offset.storage.replication.factor.
	Topic  TopicSettings
	Logger *slog.Logger
}

// KafkaOffsetStore keeps source offsets in the offsets topic, as Kafka's
// KafkaOffsetBackingStore: key ["<connector>",{partition}], value the offset
// object, a tombstone resetting a partition. Records are partitioned by
// key with Kafka's murmur2 hash (franz-go's default for keyed records).
type KafkaOffsetStore struct {
	log *topicLog

	mu    sync.Mutex
	state *offsetState
}

var _ OffsetStore = (*KafkaOffsetStore)(nil)

// OpenKafkaOffsetStore creates the offsets topic when it is missing and
// reads it to the end.
func OpenKafkaOffsetStore(ctx context.Context, o KafkaOffsetStoreOptions) (*KafkaOffsetStore, error) {
	if o.Topic.Topic == "" {
		o.Topic.Topic = DefaultOffsetTopic
	}
	if o.Topic.Partitions <= 0 {
		o.Topic.Partitions = 25
	}
	logger := orDiscard(o.Logger)
	s := &KafkaOffsetStore{state: newOffsetState(logger.With("store", "offsets"))}
	spec := topicSpec{TopicSettings: o.Topic, settingName: "offset.storage.topic", purpose: "source connector offsets"}
	l, err := openTopicLog(ctx, o.Client, spec, logger, func(r *kgo.Record) {
		s.mu.Lock()
		s.state.apply(r.Key, r.Value)
		s.mu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	s.log = l
	if err := l.readToEnd(ctx); err != nil {
		l.close()
		return nil, fmt.Errorf("reading offsets topic: %w", err)
	}
	return s, nil
}

// Offsets reads the topic to its end, then answers from what it read.
func (s *KafkaOffsetStore) Offsets(ctx context.Context, connector string) ([]ConnectorOffset, error) {
	if err := s.log.readToEnd(ctx); err != nil {
		return nil, fmt.Errorf("reading offsets of connector %q: %w", connector, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.offsets(connector), nil
}

// Write produces the batch and returns once every record is acknowledged
// by all in-sync replicas and read back.
func (s *KafkaOffsetStore) Write(ctx context.Context, connector string, offsets []ConnectorOffset) error {
	s.mu.Lock()
	enc, err := s.state.encodeOffsets(connector, offsets)
	s.mu.Unlock()
	if err != nil {
		return fmt.Errorf("writing offsets of connector %q: %w", connector, err)
	}
	if len(enc) == 0 {
		return nil
	}
	recs := make([]*kgo.Record, len(enc))
	for i, e := range enc {
		recs[i] = &kgo.Record{Key: e.key, Value: e.value}
	}
	if err := s.log.produce(ctx, recs...); err != nil {
		return fmt.Errorf("writing offsets of connector %q: %w", connector, err)
	}
	return nil
}

// Close stops following the topic.
func (s *KafkaOffsetStore) Close() error {
	s.log.close()
	return nil
}
