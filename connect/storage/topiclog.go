package storage

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TopicSettings says which internal topic a store uses and how to create it
// when it is missing (Kafka's <x>.storage.topic, .partitions and
// .replication.factor worker settings).
type TopicSettings struct {
	Topic string
	// Partitions for a new topic; 0 = the store's default (1 for configs,
	// 25 for offsets, 5 for statuses). The config topic is always 1.
	Partitions int32
	// ReplicationFactor for a new topic; 0 or -1 = the broker's default.
	ReplicationFactor int16
	// Configs are extra topic configs for a new topic (Kafka's
	// <x>.storage.* passthrough); cleanup.policy is always compact.
	Configs map[string]string
}

// topicSpec is what a store requires of its topic.
type topicSpec struct {
	TopicSettings
	settingName string // the worker setting naming the topic, for errors
	purpose     string // what the topic holds, for errors
	single      bool   // must have exactly one partition
}

// topicLog is Kafka's KafkaBasedLog over franz-go: it reads a topic from the
// beginning, hands every record to apply on one goroutine, and lets callers
// wait until it has read up to an offset (their own write, or the end).
type topicLog struct {
	topic string
	cl    *kgo.Client
	adm   *kadm.Client
	log   *slog.Logger
	apply func(*kgo.Record)

	mu      sync.Mutex
	next    map[int32]int64 // next offset the reader will hand over
	changed chan struct{}   // closed (and replaced) whenever next advances

	cancel context.CancelFunc
	done   chan struct{}

	// The reader's last logged error, so a broker that stays away is
	// logged once a minute rather than on every poll.
	lastErr    string
	lastErrLog time.Time
}

// openTopicLog creates or verifies the topic, then starts following it from
// the beginning. It does not wait for the reader to catch up: call readToEnd.
func openTopicLog(ctx context.Context, opts []kgo.Opt, spec topicSpec, logger *slog.Logger, apply func(*kgo.Record)) (*topicLog, error) {
	if strings.TrimSpace(spec.Topic) == "" {
		return nil, fmt.Errorf("must specify a topic for %s (%s)", spec.purpose, spec.settingName)
	}
	logger = orDiscard(logger)
	all := append([]kgo.Opt{}, opts...)
	all = append(all,
		kgo.ConsumeTopics(spec.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		// Control records carry offsets too: without them a transactional
		// marker at the end would leave the reader short of the end offset.
		kgo.KeepControlRecords(),
		kgo.RequiredAcks(kgo.AllISRAcks()),
	)
	cl, err := kgo.NewClient(all...)
	if err != nil {
		return nil, fmt.Errorf("client for topic %q: %w", spec.Topic, err)
	}
	l := &topicLog{
		topic:   spec.Topic,
		cl:      cl,
		adm:     kadm.NewClient(cl),
		log:     logger.With("topic", spec.Topic),
		apply:   apply,
		next:    make(map[int32]int64),
		changed: make(chan struct{}),
		done:    make(chan struct{}),
	}
	if err := l.ensureTopic(ctx, spec); err != nil {
		cl.Close()
		return nil, err
	}
	rctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	go l.run(rctx)
	return l, nil
}

// ensureTopic creates the topic when it is missing; an existing topic must be
// compacted (and single-partition when the spec says so), as Kafka checks.
func (l *topicLog) ensureTopic(ctx context.Context, spec topicSpec) error {
	created := false
	for {
		details, err := l.adm.ListTopics(ctx, spec.Topic)
		if err != nil {
			return fmt.Errorf("describing topic %q: %w", spec.Topic, err)
		}
		d, ok := details[spec.Topic]
		switch {
		case ok && d.Err == nil && len(d.Partitions) > 0:
			if spec.single && len(d.Partitions) > 1 {
				return fmt.Errorf("Topic '%s' supplied via the '%s' property is required to have a single partition in order to guarantee consistency of connector configurations, but found %d partitions.", //nolint:revive,staticcheck // Kafka's message, word for word
					spec.Topic, spec.settingName, len(d.Partitions))
			}
			if created {
				return nil
			}
			return l.verifyCompacted(ctx, spec)
		case ok && d.Err != nil && !errors.Is(d.Err, kerr.UnknownTopicOrPartition):
			return fmt.Errorf("describing topic %q: %w", spec.Topic, d.Err)
		case !created:
			if err := l.createTopic(ctx, spec); err != nil {
				return err
			}
			created = true
		default:
			// Created, but metadata does not show its partitions yet.
			select {
			case <-ctx.Done():
				return fmt.Errorf("waiting for topic %q to appear: %w", spec.Topic, ctx.Err())
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
}

func (l *topicLog) createTopic(ctx context.Context, spec topicSpec) error {
	configs := make(map[string]*string, len(spec.Configs)+1)
	for k, v := range spec.Configs {
		configs[k] = kadm.StringPtr(v)
	}
	configs["cleanup.policy"] = kadm.StringPtr("compact")
	rf := spec.ReplicationFactor
	if rf == 0 {
		rf = -1
	}
	partitions := spec.Partitions
	if spec.single {
		partitions = 1
	}
	_, err := l.adm.CreateTopic(ctx, partitions, rf, configs, spec.Topic)
	if errors.Is(err, kerr.InvalidReplicationFactor) {
		return fmt.Errorf("creating topic %q for %s with replication factor %d (%s): %w",
			spec.Topic, spec.purpose, rf, strings.TrimSuffix(spec.settingName, ".topic")+".replication.factor", err)
	}
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("creating topic %q for %s: %w", spec.Topic, spec.purpose, err)
	}
	if err == nil {
		l.log.Info("created internal topic", "purpose", spec.purpose, "partitions", partitions, "replication_factor", rf)
	}
	return nil
}

// verifyCompacted refuses a topic whose cleanup.policy is not exactly
// compact: a deleting policy would lose state.
func (l *topicLog) verifyCompacted(ctx context.Context, spec topicSpec) error {
	rcs, err := l.adm.DescribeTopicConfigs(ctx, spec.Topic)
	if err != nil {
		l.log.Info("could not verify the cleanup policy", "err", err)
		return nil
	}
	rc, err := rcs.On(spec.Topic, nil)
	if err != nil || rc.Err != nil {
		l.log.Info("could not verify the cleanup policy", "err", errors.Join(err, rc.Err))
		return nil
	}
	for _, c := range rc.Configs {
		if c.Key != "cleanup.policy" || c.Value == nil {
			continue
		}
		if policy := strings.ReplaceAll(*c.Value, " ", ""); policy != "compact" {
			return fmt.Errorf("Topic '%s' supplied via the '%s' property is required to have 'cleanup.policy=compact' to guarantee consistency and durability of %s, but found the topic currently has 'cleanup.policy=%s'. Continuing would likely result in eventually losing %s and problems restarting this Connect cluster in the future. Change the '%s' property in the Connect worker configurations to use a topic with 'cleanup.policy=compact'.", //nolint:revive,staticcheck // Kafka's message, word for word
				spec.Topic, spec.settingName, spec.purpose, policy, spec.purpose, spec.settingName)
		}
	}
	return nil
}

// run is the reader goroutine.
func (l *topicLog) run(ctx context.Context) {
	defer close(l.done)
	for {
		fs := l.cl.PollFetches(ctx)
		if fs.IsClientClosed() || ctx.Err() != nil {
			return
		}
		failed := false
		fs.EachError(func(t string, p int32, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			failed = true
			l.warnOnce(p, err)
		})
		advanced := map[int32]int64{}
		fs.EachRecord(func(r *kgo.Record) {
			if !r.Attrs.IsControl() {
				l.apply(r)
			}
			advanced[r.Partition] = r.Offset + 1
		})
		if len(advanced) > 0 {
			l.mu.Lock()
			for p, o := range advanced {
				if o > l.next[p] {
					l.next[p] = o
				}
			}
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		} else if failed {
			select { // do not spin on a persistent error
			case <-ctx.Done():
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// warnOnce logs a read error unless the same one was logged within a
// minute. Only the reader goroutine calls it.
func (l *topicLog) warnOnce(p int32, err error) {
	msg := err.Error()
	if msg == l.lastErr && time.Since(l.lastErrLog) < time.Minute {
		return
	}
	l.lastErr, l.lastErrLog = msg, time.Now()
	l.log.Warn("reading internal topic", "partition", p, "err", err)
}

// waitFor returns once the reader has handed over every record of partition
// p below offset.
func (l *topicLog) waitFor(ctx context.Context, p int32, offset int64) error {
	for {
		l.mu.Lock()
		reached, ch := l.next[p] >= offset, l.changed
		l.mu.Unlock()
		if reached {
			return nil
		}
		select {
		case <-ch:
		case <-l.done:
			return fmt.Errorf("reading topic %q: store closed", l.topic)
		case <-ctx.Done():
			return fmt.Errorf("reading topic %q to offset %d of partition %d: %w", l.topic, offset, p, ctx.Err())
		}
	}
}

// readToEnd returns once every record that was in the topic when it was
// called has been applied. It relies, as Kafka's log does, on the last
// record of a partition never being compacted away (it is in the active
// segment), so the reader reaches the end offset.
func (l *topicLog) readToEnd(ctx context.Context) error {
	starts, ends, err := l.listOffsets(ctx)
	if err != nil {
		return err
	}
	// Data in a partition the reader has never read from may be in a
	// partition added since the client last loaded metadata, which it
	// otherwise reloads only every few minutes.
	l.mu.Lock()
	unseen := false
	ends.Each(func(e kadm.ListedOffset) {
		if _, ok := l.next[e.Partition]; !ok && e.Offset > 0 {
			unseen = true
		}
	})
	l.mu.Unlock()
	if unseen {
		l.cl.ForceMetadataRefresh()
	}
	var waitErr error
	ends.Each(func(e kadm.ListedOffset) {
		if waitErr != nil {
			return
		}
		// A partition whose records were all deleted has nothing to hand
		// over, and the reader would never report reaching its end.
		if s, ok := starts.Lookup(e.Topic, e.Partition); ok && s.Offset >= e.Offset {
			return
		}
		waitErr = l.waitFor(ctx, e.Partition, e.Offset)
	})
	return waitErr
}

// listOffsets lists the topic's start and end offsets, retrying while a
// partition has no leader yet (a topic just created).
func (l *topicLog) listOffsets(ctx context.Context) (starts, ends kadm.ListedOffsets, err error) {
	for {
		ends, err = l.adm.ListEndOffsets(ctx, l.topic)
		if err == nil {
			err = ends.Error()
		}
		if err == nil {
			starts, err = l.adm.ListStartOffsets(ctx, l.topic)
			if err == nil {
				err = starts.Error()
			}
		}
		if err == nil {
			return starts, ends, nil
		}
		if !kerr.IsRetriable(err) {
			return nil, nil, fmt.Errorf("listing offsets of %q: %w", l.topic, err)
		}
		select {
		case <-ctx.Done():
			return nil, nil, fmt.Errorf("listing offsets of %q: %w (last error: %w)", l.topic, ctx.Err(), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// produce writes records in order and returns once all are acknowledged by
// every in-sync replica and read back by this log.
func (l *topicLog) produce(ctx context.Context, recs ...*kgo.Record) error {
	for _, r := range recs {
		r.Topic = l.topic
	}
	if err := l.cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		return fmt.Errorf("writing to topic %q: %w", l.topic, err)
	}
	for _, r := range recs {
		if err := l.waitFor(ctx, r.Partition, r.Offset+1); err != nil {
			return err
		}
	}
	return nil
}

// close stops the reader and the client.
func (l *topicLog) close() {
	l.cancel()
	l.cl.Close()
	<-l.done
}

// orDiscard is l, or a logger that drops everything when l is nil.
func orDiscard(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
