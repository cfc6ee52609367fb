package broker

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// partitionMetadataFile ties a partition directory to its topic's ID, so a
// directory left behind by a deleted topic is never mistaken for the data of
// a new topic of the same name.
const partitionMetadataFile = "partition.metadata"

// topic is the broker's live view of one topic.
type topic struct {
	name   string
	id     controller.TopicID
	cfg    config.Topic
	parts  []*replica.Partition
	dirs   []string // log directory of each partition
	epochs []int32
	m      *topicMetrics
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

func (t *topic) partition(i int32) *replica.Partition {
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}

// load opens every partition the metadata lists and removes partition
// directories that belong to no live topic.
func (r *topicRegistry) load(st *controller.State) error {
	for _, name := range st.TopicNames() {
		mt := st.Topics[name]
		if _, err := r.open(mt); err != nil {
			return err
		}
	}
	r.removeStrays()
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
		dir, err := r.partitionDir(mt, mp.Index)
		if err != nil {
			return nil, err
		}
		p, err := replica.Open(r.b.fs, filepath.Join(dir, partitionDirName(mt.Name, mp.Index)), mt.Name, mp.Index, mp.LeaderEpoch, replicaConfig(cfg, r.b.cfg), r.b.now, r.b.logger)
		if err != nil {
			return nil, fmt.Errorf("topic %s partition %d: %w", mt.Name, mp.Index, err)
		}
		t.parts = append(t.parts, p)
		t.dirs = append(t.dirs, dir)
		t.epochs = append(t.epochs, mp.LeaderEpoch)
	}
	r.mu.Lock()
	r.m[t.name] = t
	r.byID[t.id] = t
	r.version.Add(1)
	r.mu.Unlock()
	return t, nil
}

func partitionDirName(topic string, p int32) string { return topic + "-" + strconv.Itoa(int(p)) }

// partitionDir returns the log directory that holds (or will hold) a
// partition: the one where it already exists with the right topic ID, else the
// directory with the fewest partitions.
func (r *topicRegistry) partitionDir(mt *controller.Topic, p int32) (string, error) {
	name := partitionDirName(mt.Name, p)
	best, bestN := "", -1
	for _, dir := range r.b.cfg.LogDirs {
		pd := filepath.Join(dir, name)
		if _, err := os.Stat(pd); err == nil {
			id, err := readPartitionMetadata(pd)
			if err == nil && id == mt.ID.String() {
				return dir, nil
			}
			// A leftover of a deleted topic with the same name.
			r.b.logger.Warn("removing stray partition directory", "dir", pd, "want_topic_id", mt.ID.String(), "found", id)
			if err := os.RemoveAll(pd); err != nil {
				return "", fmt.Errorf("remove stray %s: %w", pd, err)
			}
		}
		entries, _ := os.ReadDir(dir)
		if best == "" || len(entries) < bestN {
			best, bestN = dir, len(entries)
		}
	}
	pd := filepath.Join(best, name)
	if err := os.MkdirAll(pd, 0o755); err != nil {
		return "", err
	}
	if err := writePartitionMetadata(pd, mt.ID.String()); err != nil {
		return "", fmt.Errorf("partition %s: %w", pd, err)
	}
	return best, nil
}

func readPartitionMetadata(dir string) (string, error) {
	b, err := os.ReadFile(filepath.Join(dir, partitionMetadataFile))
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "topic_id: "); ok {
			return strings.TrimSpace(v), nil
		}
	}
	return "", errors.New("no topic_id")
}

func writePartitionMetadata(dir, id string) error {
	tmp := filepath.Join(dir, partitionMetadataFile+".tmp")
	if err := os.WriteFile(tmp, []byte("version: 0\ntopic_id: "+id+"\n"), 0o644); err != nil {
		return err
	}
	f, err := os.Open(tmp)
	if err == nil {
		err = f.Sync()
		f.Close()
	}
	if err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, partitionMetadataFile))
}

// removeStrays deletes partition directories whose topic no longer exists
// (a deletion interrupted by a crash).
func (r *topicRegistry) removeStrays() {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, dir := range r.b.cfg.LogDirs {
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !e.IsDir() {
				continue
			}
			pd := filepath.Join(dir, e.Name())
			if _, err := os.Stat(filepath.Join(pd, partitionMetadataFile)); err != nil {
				continue // not a partition directory of ours
			}
			i := strings.LastIndexByte(e.Name(), '-')
			if i <= 0 {
				continue
			}
			t := r.m[e.Name()[:i]]
			n, err := strconv.Atoi(e.Name()[i+1:])
			if t != nil && err == nil && n < len(t.parts) && t.dirs[n] == dir {
				continue
			}
			r.b.logger.Warn("removing partition directory of a deleted topic", "dir", pd)
			if err := os.RemoveAll(pd); err != nil {
				r.b.logger.Error("removing stray partition directory", "dir", pd, "err", err)
			}
		}
	}
}

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
		if err := p.Delete(); err != nil {
			r.b.logger.Error("deleting partition", "topic", name, "partition", i, "err", err)
		}
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
		p.SetConfig(replicaConfig(cfg, r.b.cfg))
	}
	return nil
}

func (r *topicRegistry) closeAll() error {
	var first error
	for _, t := range r.all() {
		for i, p := range t.parts {
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
			p.ExpireProducers()
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
