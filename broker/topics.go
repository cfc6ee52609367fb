package broker

import (
	"sync"
	"sync/atomic"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/replicamgr"
)

// The replica manager (package replicamgr) owns the partitions: it opens,
// closes and deletes them as the metadata image says. This file is the
// broker's view of its topics, decorated with what only the broker has
// (each topic's metrics), rebuilt whenever the manager publishes a change,
// so a handler's lookup takes no lock.

// topic is one topic of the replica manager, as the broker sees it.
type topic struct {
	rt   *replicamgr.Topic
	name string
	id   controller.TopicID
	cfg  config.Topic
	// parts are this node's open replicas, leader or follower; nil where
	// the partition is offline or hosted elsewhere.
	parts []*replica.Partition
	m     *topicMetrics
}

// leader is partition i's replica if this node leads it, else the error
// clients get: UNKNOWN_TOPIC_OR_PARTITION, NOT_LEADER_OR_FOLLOWER (a
// partition hosted elsewhere, or followed here), or KAFKA_STORAGE_ERROR
// with its cause (offline). t may be nil (no such topic).
func (t *topic) leader(i int32) (*replica.Partition, error) {
	if t == nil {
		return nil, replicamgr.ErrUnknownTopicOrPartition
	}
	return t.rt.Leader(i)
}

// partition returns this node's open replica of partition i, leader or
// follower; nil when there is none (partitionError says if it is offline).
func (t *topic) partition(i int32) *replica.Partition {
	if i < 0 || int(i) >= len(t.parts) {
		return nil
	}
	return t.parts[i]
}

// partitionError is why partition i is offline, nil if it is served,
// hosted elsewhere or does not exist; it wraps KAFKA_STORAGE_ERROR.
func (t *topic) partitionError(i int32) error {
	if i < 0 || int(i) >= len(t.rt.Partitions) {
		return nil
	}
	return t.rt.Partitions[i].Offline
}

// topicRegistry is the broker's view of the replica manager's topics.
type topicRegistry struct {
	rm      *replicamgr.Manager
	metrics *metrics
	// mu is held to rebuild the view, and to forget a removed topic's
	// metrics so no rebuild under way brings them back.
	mu   sync.Mutex
	view atomic.Pointer[topicView]
}

// topicView is the topics at one version of the manager; never changed
// once published.
type topicView struct {
	version uint64
	sorted  []*topic
	byName  map[string]*topic
	byID    map[controller.TopicID]*topic
}

func newTopicRegistry(rm *replicamgr.Manager, m *metrics) *topicRegistry {
	return &topicRegistry{rm: rm, metrics: m}
}

// current returns the view of the manager's current topics.
func (r *topicRegistry) current() *topicView {
	if v := r.view.Load(); v != nil && v.version == r.rm.Version() {
		return v
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	ver := r.rm.Version() // before the topics: a change after it rebuilds again
	old := r.view.Load()
	if old != nil && old.version == ver {
		return old
	}
	rts := r.rm.Topics()
	v := &topicView{version: ver, sorted: make([]*topic, 0, len(rts)),
		byName: make(map[string]*topic, len(rts)), byID: make(map[controller.TopicID]*topic, len(rts))}
	for _, rt := range rts {
		var t *topic
		if old != nil {
			if o := old.byName[rt.Name]; o != nil && o.rt == rt {
				t = o
			}
		}
		if t == nil {
			t = &topic{rt: rt, name: rt.Name, id: rt.ID, cfg: rt.Config, m: r.metrics.topic(rt.Name),
				parts: make([]*replica.Partition, len(rt.Partitions))}
			for i, p := range rt.Partitions {
				t.parts[i] = p.Replica
			}
		}
		v.sorted = append(v.sorted, t)
		v.byName[t.name] = t
		v.byID[t.id] = t
	}
	r.view.Store(v)
	return v
}

// forget drops a removed topic's metrics.
func (r *topicRegistry) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.metrics.forgetTopic(name)
}

func (r *topicRegistry) get(name string) *topic { return r.current().byName[name] }

func (r *topicRegistry) getByID(id controller.TopicID) *topic { return r.current().byID[id] }

func (r *topicRegistry) count() int { return len(r.current().sorted) }

// all returns the topics sorted by name.
func (r *topicRegistry) all() []*topic { return r.current().sorted }

// applyImage hands the current metadata image to the replica manager,
// which opens, closes and deletes replicas and sets their roles as it
// says, and acts on what it removed or stopped leading: a removed topic's
// metrics go, and fetches waiting on either are answered now, not at
// max_wait_ms. It returns, per topic, why replicas of it could not be
// opened. Call it after every metadata commit.
// applyControllerImage is applyImage after a controller handler's commit.
// A quorum voter answers brokers' registrations, heartbeats and
// AlterPartitions before its own broker side is loaded (NewWith is still
// setting it up on another goroutine): then it only wakes the metadata
// fetches, and the broker side applies the newest image once loaded.
func (b *Broker) applyControllerImage() {
	if b.ctrl != nil && !b.loaded.Load() {
		b.metaWatch.fire()
		return
	}
	b.applyImage()
}

func (b *Broker) applyImage() map[string]error {
	defer b.metaWatch.fire()
	if !b.imageReady.Load() {
		// A quorum voter's controller serves before this node's
		// replicas exist; they load the newest image when they do.
		return nil
	}
	ch := b.replicas.ApplyImage(b.metaImage())
	for _, rm := range ch.Removed {
		b.topics.forget(rm.Name)
		for i := range rm.Partitions {
			b.wakeFetches(rm.Name, i)
		}
	}
	for _, tp := range ch.Resigned {
		b.wakeFetches(tp.Topic, tp.Partition) // they answer NOT_LEADER_OR_FOLLOWER now
		b.produceWaits.Check(sessionKey{tp.Topic, tp.Partition})
	}
	if b.groups != nil {
		// The group coordinator serves the groups of the offsets
		// partitions led here: load or drop them (in the background: a
		// load replays the partition).
		for _, tp := range append(ch.Elected, ch.Resigned...) {
			if tp.Topic == coordinator.OffsetsTopic {
				go b.groups.Sync(tp.Partition)
			}
		}
	}
	for name, err := range ch.Failed {
		b.logger.Error("opening the replicas the metadata assigns to this node", "topic", name, "err", err)
	}
	return ch.Failed
}
