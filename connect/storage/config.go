package storage

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/twmb/franz-go/pkg/kgo"
)

// Default internal topic names (Kafka's connect-distributed.properties).
const (
	DefaultConfigTopic = "connect-configs"
	DefaultOffsetTopic = "connect-offsets"
	DefaultStatusTopic = "connect-status"
)

// ConfigStoreOptions configure OpenConfigStore.
type ConfigStoreOptions struct {
	// Client are the franz-go options reaching the cluster (seed brokers,
	// TLS, SASL, client ID); the store adds its own consumer options.
	Client []kgo.Opt
	// Topic is config.storage.topic (default connect-configs) and
	// config.storage.replication.factor. Partitions is ignored: always 1.
	Topic  TopicSettings
	Logger *slog.Logger
	// OnUpdate, if set, is called for each change read after
	// OpenConfigStore returned, once Snapshot includes it. It runs on the
	// store's reader goroutine: it must not block, nor call the store's
	// write methods or ReadToEnd (they wait for that goroutine).
	OnUpdate func(ConfigUpdate)
}

// ConfigStore keeps connector and task configs, target states and restart
// requests in the config topic (Kafka's KafkaConfigBackingStore), and
// follows the topic so every worker sees every write. Only the leader
// should write; the store does not enforce it.
type ConfigStore struct {
	log      *topicLog
	onUpdate func(ConfigUpdate)
	started  atomic.Bool

	mu    sync.Mutex
	state *configState
}

// OpenConfigStore creates the config topic when it is missing (one
// partition, compacted), refuses a topic with more partitions or another
// cleanup policy, and reads it to the end before returning.
func OpenConfigStore(ctx context.Context, o ConfigStoreOptions) (*ConfigStore, error) {
	if o.Topic.Topic == "" {
		o.Topic.Topic = DefaultConfigTopic
	}
	logger := orDiscard(o.Logger)
	s := &ConfigStore{onUpdate: o.OnUpdate, state: newConfigState(logger.With("store", "config"))}
	spec := topicSpec{TopicSettings: o.Topic, settingName: "config.storage.topic", purpose: "connector configurations", single: true}
	l, err := openTopicLog(ctx, o.Client, spec, logger, s.apply)
	if err != nil {
		return nil, err
	}
	s.log = l
	if err := l.readToEnd(ctx); err != nil {
		l.close()
		return nil, fmt.Errorf("reading config topic: %w", err)
	}
	s.started.Store(true)
	return s, nil
}

func (s *ConfigStore) apply(r *kgo.Record) {
	s.mu.Lock()
	updates := s.state.apply(string(r.Key), r.Value, r.Offset)
	s.mu.Unlock()
	if s.onUpdate == nil || !s.started.Load() {
		return
	}
	for _, u := range updates {
		s.onUpdate(u)
	}
}

// Snapshot is the configuration as read so far.
func (s *ConfigStore) Snapshot() ConfigSnapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.state.snapshot()
}

// ReadToEnd returns once every record in the topic when it was called has
// been applied, so a following Snapshot includes all of them.
func (s *ConfigStore) ReadToEnd(ctx context.Context) error { return s.log.readToEnd(ctx) }

// PutConnectorConfig writes a connector's config, preceded by its target
// state unless target is "" (Kafka writes both for a new connector).
func (s *ConfigStore) PutConnectorConfig(ctx context.Context, connector string, props map[string]string, target TargetState) error {
	if err := checkName("connector", connector); err != nil {
		return err
	}
	var recs []*kgo.Record
	if target != "" {
		r, err := record(targetStatePrefix+connector, targetStateRecord(target))
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	if props == nil {
		props = map[string]string{}
	}
	r, err := record(connectorPrefix+connector, propertiesValue{props})
	if err != nil {
		return err
	}
	recs = append(recs, r)
	if err := s.log.produce(ctx, recs...); err != nil {
		return fmt.Errorf("writing config of connector %q: %w", connector, err)
	}
	return nil
}

// RemoveConnectorConfig deletes a connector: tombstones for its config and
// its target state.
func (s *ConfigStore) RemoveConnectorConfig(ctx context.Context, connector string) error {
	if err := checkName("connector", connector); err != nil {
		return err
	}
	err := s.log.produce(ctx,
		&kgo.Record{Key: []byte(connectorPrefix + connector)},
		&kgo.Record{Key: []byte(targetStatePrefix + connector)})
	if err != nil {
		return fmt.Errorf("removing connector %q: %w", connector, err)
	}
	return nil
}

// PutTaskConfigs replaces a connector's task configs: one record per task,
// then the commit record that makes them visible all at once.
func (s *ConfigStore) PutTaskConfigs(ctx context.Context, connector string, configs []map[string]string) error {
	if err := checkName("connector", connector); err != nil {
		return err
	}
	if err := s.log.readToEnd(ctx); err != nil {
		return fmt.Errorf("writing task configs of connector %q: %w", connector, err)
	}
	recs := make([]*kgo.Record, 0, len(configs))
	for i, c := range configs {
		if c == nil {
			c = map[string]string{}
		}
		r, err := record(fmt.Sprintf("%s%s-%d", taskPrefix, connector, i), propertiesValue{c})
		if err != nil {
			return err
		}
		recs = append(recs, r)
	}
	if len(recs) > 0 {
		if err := s.log.produce(ctx, recs...); err != nil {
			return fmt.Errorf("writing task configs of connector %q: %w", connector, err)
		}
	}
	commit, err := record(commitPrefix+connector, commitValue{len(configs)})
	if err != nil {
		return err
	}
	if err := s.log.produce(ctx, commit); err != nil {
		return fmt.Errorf("committing task configs of connector %q: %w", connector, err)
	}
	return nil
}

// PutTargetState writes a connector's target state, as both state (STOPPED
// downgraded to PAUSED for older workers) and state.v2.
func (s *ConfigStore) PutTargetState(ctx context.Context, connector string, st TargetState) error {
	if err := checkName("connector", connector); err != nil {
		return err
	}
	if !st.valid() {
		return fmt.Errorf("invalid target state %q", st)
	}
	r, err := record(targetStatePrefix+connector, targetStateRecord(st))
	if err != nil {
		return err
	}
	if err := s.log.produce(ctx, r); err != nil {
		return fmt.Errorf("writing target state of connector %q: %w", connector, err)
	}
	return nil
}

// PutRestartRequest persists a restart request for the leader to execute.
func (s *ConfigStore) PutRestartRequest(ctx context.Context, req RestartRequest) error {
	if err := checkName("connector", req.Connector); err != nil {
		return err
	}
	r, err := record(restartPrefix+req.Connector, restartValue{IncludeTasks: req.IncludeTasks, OnlyFailed: req.OnlyFailed})
	if err != nil {
		return err
	}
	if err := s.log.produce(ctx, r); err != nil {
		return fmt.Errorf("writing restart request of connector %q: %w", req.Connector, err)
	}
	return nil
}

// PutSessionKey distributes a new session key (the leader's job).
func (s *ConfigStore) PutSessionKey(ctx context.Context, k SessionKey) error {
	r, err := record(sessionKeyKey, sessionKeyValue{
		Key: base64.StdEncoding.EncodeToString(k.Key), Algorithm: k.Algorithm, CreationTimestamp: k.CreationTimestamp,
	})
	if err != nil {
		return err
	}
	if err := s.log.produce(ctx, r); err != nil {
		return fmt.Errorf("writing session key: %w", err)
	}
	return nil
}

// PutLoggerLevel asks every worker to set a logger namespace's level
// (PUT /admin/loggers/{ns}?scope=cluster, KIP-976).
func (s *ConfigStore) PutLoggerLevel(ctx context.Context, namespace, level string) error {
	r, err := record(loggerPrefix+namespace, loggerLevelValue{level})
	if err != nil {
		return err
	}
	if err := s.log.produce(ctx, r); err != nil {
		return fmt.Errorf("writing level of logger %q: %w", namespace, err)
	}
	return nil
}

// Close stops following the topic.
func (s *ConfigStore) Close() error {
	s.log.close()
	return nil
}

// record builds a keyed record whose value is v as JSON.
func record(key string, v any) (*kgo.Record, error) {
	b, err := marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encoding %s: %w", key, err)
	}
	return &kgo.Record{Key: []byte(key), Value: b}, nil
}
