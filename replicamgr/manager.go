// Package replicamgr is the replica manager: it owns the lifecycle of this
// node's partition replicas. It chooses each replica's log dir, opens,
// closes and deletes replicas as the metadata image says (ApplyImage), gives
// each the role the image gives this node (leader or follower), and runs the
// periodic work on them (flush.ms, retention, producer expiry) on an
// injected clock.
//
// An image's replica work runs on a pool of ioWorkers goroutines: opening
// the replicas it adds, and the replicas' role changes (BecomeLeader writes
// the leader-epoch checkpoint with two fsyncs; a broker's death makes
// thousands of partitions led here in one image). What the manager shares
// (its topic maps, the fetcher, the leaders' replication state) is changed
// on the caller's goroutine only, in the image's order: a follower stops
// fetching before its role changes and is handed to the fetcher after
// (roles.go). A replica that cannot take its role is taken offline alone.
//
// Handlers never open or look a partition up themselves: they ask the
// manager for the leader replica of (topic, partition) and get the replica
// or a typed error (Leader). Replication changes where a follower's data
// comes from, not how handlers find a partition.
package replicamgr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/cleaner"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// The errors Leader returns. Each wraps the Kafka error clients get, so the
// broker's one error mapping needs no case of its own; an offline replica's
// error wraps kerr.KafkaStorageError with its cause.
var (
	// ErrUnknownTopicOrPartition: the image has no such topic or partition.
	ErrUnknownTopicOrPartition = fmt.Errorf("replicamgr: %w", kerr.UnknownTopicOrPartition)
	// ErrNotLeaderOrFollower: the partition exists but this node does not
	// lead it (it follows, or is not a replica at all): the client asks
	// Metadata for the leader and goes there.
	ErrNotLeaderOrFollower = fmt.Errorf("replicamgr: %w", kerr.NotLeaderForPartition)
)

// Role is what this node is for one partition, as the image says.
type Role int8

const (
	// NotHosted: this node is not among the partition's replicas; it has
	// no replica of it open.
	NotHosted Role = iota
	// Leader: this node leads the partition; clients produce and fetch here.
	Leader
	// Follower: this node holds a replica another broker leads; the
	// fetcher (Deps.Followers) copies into it. It answers clients
	// NOT_LEADER_OR_FOLLOWER.
	Follower
)

func (r Role) String() string {
	switch r {
	case Leader:
		return "leader"
	case Follower:
		return "follower"
	}
	return "not hosted"
}

// Partition is this node's view of one partition, as last applied.
type Partition struct {
	Index       int32
	Role        Role
	LeaderEpoch int32 // from the image
	// Replica is the open local replica; nil when the partition is not
	// hosted here or offline.
	Replica *replica.Partition
	// Repl is the leader-side replication state when this node leads a
	// partition with more than one replica; nil otherwise.
	Repl *Replication
	// followedLeader is the leader a follower was last pointed at.
	followedLeader int32
	// Dir is the log dir that holds the replica ("" when not hosted).
	Dir string
	// Offline is why a hosted replica is not served (its files could not
	// be read, so they are left as they are, or it could not take its
	// role, so it is closed); it wraps kerr.KafkaStorageError. Nil when
	// served or not hosted.
	Offline error
}

// Topic is one topic as the manager last applied it. A published Topic is
// never changed: a change publishes a new one, so readers need no lock.
type Topic struct {
	Name       string
	ID         controller.TopicID
	Config     config.Topic
	Partitions []Partition
}

// Local returns this node's open replica of partition i, whatever its
// role, or why there is none.
func (t *Topic) Local(i int32) (*replica.Partition, error) {
	if t == nil || i < 0 || int(i) >= len(t.Partitions) {
		return nil, ErrUnknownTopicOrPartition
	}
	p := &t.Partitions[i]
	switch {
	case p.Offline != nil:
		return nil, p.Offline
	case p.Replica == nil:
		return nil, ErrNotLeaderOrFollower
	}
	return p.Replica, nil
}

// Leader returns partition i's replica if this node leads it, else the
// error clients get: ErrUnknownTopicOrPartition, ErrNotLeaderOrFollower,
// or the offline replica's KAFKA_STORAGE_ERROR. t may be nil (no such
// topic).
func (t *Topic) Leader(i int32) (*replica.Partition, error) {
	p, err := t.Local(i)
	if err != nil {
		return nil, err
	}
	if t.Partitions[i].Role != Leader {
		return nil, ErrNotLeaderOrFollower
	}
	return p, nil
}

// Deps are what the manager takes from the broker.
type Deps struct {
	// FS holds the log dirs: partition directories, partition.metadata,
	// strays.
	FS segment.FS
	// Files bounds the segment files replicas hold open; nil means none.
	Files *segment.FileCache
	// Config gives the log dirs, the topic defaults and the schedule's
	// intervals.
	Config *config.Broker
	// NodeID is this node: the image's replicas and leader are compared
	// with it.
	NodeID int32
	// Clock decides flush.ms, retention, segment.ms and producer expiry,
	// and wakes Run when the next task is due; nil means the wall clock.
	Clock clock.Clock
	// Logger; nil discards.
	Logger *slog.Logger
	// OnHighWatermark is told, from the manager's own goroutine, when a
	// replicated partition's high watermark advanced: acks=all produces
	// and fetches waiting on it can finish. Nil: nobody is told.
	OnHighWatermark func(topic string, partition int32)
	// AlterPartition sends a leader's ISR change to the controller and
	// returns its answer. Nil: ISR changes are never proposed (the
	// leader's ISR stays what the metadata says).
	AlterPartition func(ctx context.Context, topic controller.TopicID, partition int32, p isr.Proposal) isr.AlterResult
	// Followers copies the partitions this node follows from their
	// leaders (the fetcher). Nil: followers are opened but not fed.
	Followers Followers
}

// Followers is what the manager needs of the replica fetcher.
type Followers interface {
	// Follow starts (or moves) copying a partition from its leader in a
	// leader epoch; r is already a follower in that epoch.
	Follow(topic string, topicID controller.TopicID, partition int32, r *replica.Partition, leader int32, leaderEpoch int32)
	// Unfollow stops copying it; nothing is appended to it afterwards.
	Unfollow(topic string, partition int32)
}

// Manager holds this node's replicas.
type Manager struct {
	fs     segment.FS
	logFS  segment.FS // fs with the segment file cache: what replicas open on
	cfg    *config.Broker
	nodeID int32
	clock  clock.Clock
	now    func() time.Time // clock.Now
	logger *slog.Logger

	// admin serializes changes (ApplyImage, RemoveCreatedDirs, Close);
	// replicas are opened and closed under it with mu released. mu is
	// held only to publish a new *Topic or look one up.
	admin   sync.Mutex
	applied int64 // offset of the last image applied; under admin
	// loading is set while Load opens what the image lists, before
	// anything is served: only then is a partition directory without
	// partition.metadata taken for the listed partition's own.
	loading bool
	mu      sync.RWMutex
	byName  map[string]*Topic
	byID    map[controller.TopicID]*Topic
	// version grows with every published change, so views built from
	// the topics know when to rebuild.
	version atomic.Uint64

	sched   *schedule        // the periodic tasks (schedule.go)
	cleaner *cleaner.Cleaner // log compaction (compaction.go)

	hw        *hwNotifier // high-watermark advances, told to Deps.OnHighWatermark
	alter     func(ctx context.Context, topic controller.TopicID, partition int32, p isr.Proposal) isr.AlterResult
	followers Followers
	image     *controller.Image // the last image applied; under admin
	// failed are the topics the last image could not open replicas of:
	// the next image tries them again even if they did not change.
	failed map[string]bool
	// topicApplies counts planTopic calls, for tests; under admin.
	topicApplies int
	// dirCounts chooses new partitions' log dirs while preOpen runs.
	dirCounts dirCounter
	// roleWorkers is how many replicas change role at once (ioWorkers;
	// the takeover benchmark sets 1 to compare with one at a time).
	roleWorkers int
}

// New returns a manager with no replicas; Load opens what an image lists.
func New(d Deps) (*Manager, error) {
	if d.FS == nil || d.Config == nil {
		return nil, errors.New("replicamgr: Deps.FS and Deps.Config are required")
	}
	if d.Clock == nil {
		d.Clock = clock.Real()
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
	m := &Manager{
		fs: d.FS, logFS: d.FS, cfg: d.Config, nodeID: d.NodeID, clock: d.Clock, now: d.Clock.Now, logger: d.Logger,
		applied: -1, byName: map[string]*Topic{}, byID: map[controller.TopicID]*Topic{}, roleWorkers: ioWorkers,
	}
	if d.Files != nil {
		m.logFS = segment.WithFileCache(d.FS, d.Files)
	}
	m.sched = newSchedule(m)
	m.cleaner = m.newCleaner()
	m.hw = newHWNotifier(d.OnHighWatermark)
	m.alter, m.followers = d.AlterPartition, d.Followers
	return m, nil
}

// Topic returns the topic named name, nil if this node has none.
func (m *Manager) Topic(name string) *Topic {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byName[name]
}

// TopicByID returns the topic with id, nil if this node has none.
func (m *Manager) TopicByID(id controller.TopicID) *Topic {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.byID[id]
}

// Leader returns the replica of (topic, partition) this node leads, or the
// error clients get (see Topic.Leader).
func (m *Manager) Leader(topic string, partition int32) (*replica.Partition, error) {
	return m.Topic(topic).Leader(partition)
}

// Topics returns every topic, sorted by name.
func (m *Manager) Topics() []*Topic {
	m.mu.RLock()
	ts := make([]*Topic, 0, len(m.byName))
	for _, t := range m.byName {
		ts = append(ts, t)
	}
	m.mu.RUnlock()
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	return ts
}

// Version grows with every change to the topics this manager publishes.
func (m *Manager) Version() uint64 { return m.version.Load() }

// eachReplica calls fn with every open local replica.
func (m *Manager) eachReplica(fn func(t *Topic, p *replica.Partition)) {
	for _, t := range m.Topics() {
		for _, p := range t.Partitions {
			if p.Replica != nil {
				fn(t, p.Replica)
			}
		}
	}
}

// Close closes every replica (flushing it), ioWorkers at a time; the
// first error (in topic and partition order) is returned after all were
// tried, and each is logged.
func (m *Manager) Close() error {
	m.admin.Lock()
	defer m.admin.Unlock()
	defer m.hw.close()
	var ps []*replica.Partition
	m.eachReplica(func(_ *Topic, p *replica.Partition) { ps = append(ps, p) })
	errs := make([]error, len(ps))
	forEach(len(ps), func(i int) {
		if errs[i] = ps[i].Close(); errs[i] != nil {
			m.logger.Error("closing partition", "topic", ps[i].Topic(), "partition", ps[i].Index(), "err", errs[i])
		}
	})
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}
