package broker

import (
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// topic is the broker's live view of one topic.
type topic struct {
	name  string
	id    controller.TopicID
	cfg   config.Topic
	parts []*replica.Partition // nil for an offline partition
	dirs  []string             // log directory of each partition
	// offline holds, per partition, why it is not served (nil when it
	// is): its files could not be read, so they are left as they are and
	// clients get KAFKA_STORAGE_ERROR.
	offline []error
	epochs  []int32
	m       *topicMetrics
}

// topicRegistry holds the open partitions. Reads take the read lock only to
// look a topic up; partitions do their own locking.
type topicRegistry struct {
	b *Broker
	// admin serializes changes (create, grow, reconfigure, delete); a topic
	// value is never mutated once published, changes publish a new one, so
	// readers need no lock beyond the lookup.
	admin sync.Mutex
	mu    sync.RWMutex
	m     map[string]*topic
	byID  map[controller.TopicID]*topic
	// version grows with every published change, so views built from the
	// registry (the group coordinator's topic image) know when to rebuild.
	version atomic.Uint64

	lastFlush map[*replica.Partition]time.Time // owned by the flush task
	// loading is set while load opens what the metadata lists, before
	// anything is served: only then is a partition directory without
	// partition.metadata taken for the listed partition's own.
	loading bool
}

func newTopicRegistry(b *Broker) *topicRegistry {
	return &topicRegistry{b: b, m: map[string]*topic{}, byID: map[controller.TopicID]*topic{}}
}

func (r *topicRegistry) get(name string) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.m[name]
}

func (r *topicRegistry) getByID(id controller.TopicID) *topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.byID[id]
}

func (r *topicRegistry) count() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.m)
}

// all returns the topics sorted by name.
func (r *topicRegistry) all() []*topic {
	r.mu.RLock()
	defer r.mu.RUnlock()
	ts := make([]*topic, 0, len(r.m))
	for _, t := range r.m {
		ts = append(ts, t)
	}
	sortTopics(ts)
	return ts
}

// partition returns an online partition, nil for one that does not exist
// or is offline (partitionError tells which).
func (t *topic) partition(i int32) *replica.Partition {
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}

// partitionError is why partition i is offline, nil if it is served or
// does not exist; it wraps KAFKA_STORAGE_ERROR.
func (t *topic) partitionError(i int32) error {
	if i < 0 || int(i) >= len(t.offline) {
		return nil
	}
	return t.offline[i]
}

// unavailable is the error for a partition that partition(i) returned nil
// for: KAFKA_STORAGE_ERROR with its cause when it is offline, which clients
// retry and operators can fix, else UNKNOWN_TOPIC_OR_PARTITION. t may be
// nil (no such topic).
func (t *topic) unavailable(i int32) error {
	if t != nil {
		if err := t.partitionError(i); err != nil {
			return err
		}
	}
	return kerr.UnknownTopicOrPartition
}

// load opens every partition the metadata lists, then sets aside (never
// deletes) partition directories that belong to none of them.
func (r *topicRegistry) load(img *controller.Image) error {
	r.loading = true
	defer func() { r.loading = false }()
	for _, name := range img.TopicNames() {
		mt, _ := img.Topic(name)
		if _, err := r.open(mt); err != nil {
			return err
		}
	}
	r.setStraysAside()
	return nil
}

// open brings a topic from the metadata online, creating directories for
// partitions that have none yet.
func (r *topicRegistry) open(mt *controller.Topic) (_ *topic, err error) {
	cfg, err := r.b.cfg.TopicConfig(mt.Configs)
	if err != nil {
		return nil, fmt.Errorf("topic %s: %w", mt.Name, err)
	}
	r.admin.Lock()
	defer r.admin.Unlock()
	t := &topic{name: mt.Name, id: mt.ID, cfg: cfg, m: r.b.metrics.topic(mt.Name)}
	if old := r.get(mt.Name); old != nil {
		t.parts = append(t.parts, old.parts...)
		t.dirs = append(t.dirs, old.dirs...)
		t.epochs = append(t.epochs, old.epochs...)
		t.offline = append(t.offline, old.offline...)
	}
	// On failure, close what this call opened: a create fails most often
	// because descriptors ran out (see undoCreate in limits_rollback.go).
	have := len(t.parts)
	defer func() {
		if err != nil {
			closeUnpublished(t.parts[have:], r.b.logger)
		}
	}()
	for _, mp := range mt.Partitions[len(t.parts):] {
		dir, offline, err := r.partitionDir(mt, mp.Index)
		if err != nil {
			return nil, err
		}
		if offline != nil {
			r.b.logger.Error("partition offline: its files could not be read and are left as they are; clients get KAFKA_STORAGE_ERROR until it is fixed and the broker restarted",
				"topic", mt.Name, "partition", mp.Index, "err", offline)
			t.parts = append(t.parts, nil)
			t.dirs = append(t.dirs, dir)
			t.epochs = append(t.epochs, mp.LeaderEpoch)
			t.offline = append(t.offline, fmt.Errorf("%w: %s partition %d is offline: %w", kerr.KafkaStorageError, mt.Name, mp.Index, offline))
			continue
		}
		p, err := replica.Open(r.b.logFS(), filepath.Join(dir, partitionDirName(mt.Name, mp.Index)), mt.Name, mp.Index, mp.LeaderEpoch, replicaConfig(cfg, r.b.cfg), r.b.now, r.b.logger)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", mt.Name, mp.Index, err)
		}
		t.parts = append(t.parts, p)
		t.dirs = append(t.dirs, dir)
		t.epochs = append(t.epochs, mp.LeaderEpoch)
		t.offline = append(t.offline, nil)
	}
	r.mu.Lock()
	r.m[t.name] = t
	r.byID[t.id] = t
	r.version.Add(1)
	r.mu.Unlock()
	return t, nil
}

func partitionDirName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// remove takes a deleted topic offline and deletes its data.
func (r *topicRegistry) remove(name string) {
	r.admin.Lock()
	defer r.admin.Unlock()
	r.mu.Lock()
	t := r.m[name]
	delete(r.m, name)
	if t != nil {
		delete(r.byID, t.id)
	}
	r.version.Add(1)
	r.mu.Unlock()
	if t == nil {
		return
	}
	r.b.metrics.forgetTopic(name)
	for i, p := range t.parts {
		if p == nil {
			// Offline: its files are left alone; the next start sets
			// them aside as a stray.
			continue
		}
		if err := p.Delete(); err != nil {
			r.b.logger.Error("deleting partition", "topic", name, "partition", i, "err", err)
		}
	}
	// Fetches waiting on the topic are answered now (the partition is
	// gone), not at max_wait_ms.
	for i := range t.parts {
		r.b.wakeFetches(name, int32(i))
	}
}

// reconfigure applies changed topic configs to its open partitions.
func (r *topicRegistry) reconfigure(mt *controller.Topic) error {
	cfg, err := r.b.cfg.TopicConfig(mt.Configs)
	if err != nil {
		return err
	}
	r.admin.Lock()
	defer r.admin.Unlock()
	old := r.get(mt.Name)
	if old == nil {
		return nil
	}
	t := *old
	t.cfg = cfg
	r.mu.Lock()
	r.m[t.name] = &t
	r.byID[t.id] = &t
	r.version.Add(1)
	r.mu.Unlock()
	for _, p := range t.parts {
		if p != nil {
			p.SetConfig(replicaConfig(cfg, r.b.cfg))
		}
	}
	return nil
}

func (r *topicRegistry) closeAll() error {
	var first error
	for _, t := range r.all() {
		for i, p := range t.parts {
			if p == nil {
				continue
			}
			if err := p.Close(); err != nil {
				r.b.logger.Error("closing partition", "topic", t.name, "partition", i, "err", err)
				if first == nil {
					first = err
				}
			}
		}
	}
	return first
}

// flushDue fsyncs partitions whose flush.ms has elapsed since the last
// time this task flushed them. It runs on one goroutine, which owns
// lastFlush.
func (r *topicRegistry) flushDue() {
	now := r.b.now()
	if r.lastFlush == nil {
		r.lastFlush = map[*replica.Partition]time.Time{}
	}
	live := map[*replica.Partition]time.Time{}
	for _, t := range r.all() {
		for i, p := range t.parts {
			if p == nil {
				continue
			}
			last, seen := r.lastFlush[p]
			if !seen {
				last = now
			}
			live[p] = last
			if t.cfg.FlushMs <= 0 || t.cfg.FlushMs == maxLong || now.Sub(last) < time.Duration(t.cfg.FlushMs)*time.Millisecond {
				continue
			}
			if err := p.Flush(); err != nil {
				r.b.logger.Error("flush", "topic", t.name, "partition", i, "err", err)
				continue
			}
			live[p] = now
		}
	}
	r.lastFlush = live
}

func (r *topicRegistry) applyRetention() {
	for _, t := range r.all() {
		for i, p := range t.parts {
			if p == nil {
				continue
			}
			n, err := p.ApplyRetention()
			if err != nil {
				r.b.logger.Error("retention", "topic", t.name, "partition", i, "err", err)
			} else if n > 0 {
				r.b.logger.Info("retention deleted segments", "topic", t.name, "partition", i, "segments", n, "log_start_offset", p.LogStartOffset())
			}
		}
	}
}

func (r *topicRegistry) expireProducers() {
	for _, t := range r.all() {
		for _, p := range t.parts {
			if p != nil {
				p.ExpireProducers()
			}
		}
	}
}

const maxLong = int64(^uint64(0) >> 1)

// replicaConfig turns a topic's effective config into what a partition needs.
func replicaConfig(c config.Topic, b *config.Broker) replica.Config {
	log := segmentConfig(c)
	log.CheckpointIntervalMs = b.FlushOffsetCheckpointIntervalMs
	return replica.Config{
		Log:                    log,
		MaxMessageBytes:        int(c.MaxMessageBytes),
		LogAppendTime:          c.LogAppendTime,
		ProducerIDExpirationMs: b.ProducerIDExpirationMs,
	}
}

func segmentConfig(c config.Topic) segment.Config {
	if !strings.Contains(c.CleanupPolicy, "delete") {
		// A compacted topic keeps the latest record of every key for
		// ever; deleting old segments by age or size would lose keys
		// (for __consumer_offsets, committed offsets).
		c.RetentionMs, c.RetentionBytes = -1, -1
	}
	return segment.Config{
		SegmentBytes:                  c.SegmentBytes,
		SegmentMs:                     c.SegmentMs,
		IndexIntervalBytes:            c.IndexIntervalBytes,
		RetentionBytes:                c.RetentionBytes,
		RetentionMs:                   c.RetentionMs,
		FlushIntervalMessages:         c.FlushMessages,
		FlushIntervalMs:               c.FlushMs,
		MessageTimestampLogAppendTime: c.LogAppendTime,
	}
}
