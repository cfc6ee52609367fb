package fetcher

import (
	"cmp"
	"hash/fnv"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/internal/quota"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/replica"
)

// Config is the fetchers' configuration; zero values take Kafka's defaults.
type Config struct {
	NodeID int32
	// BrokerEpoch is this broker's current broker epoch, sent as
	// ReplicaState.ReplicaEpoch (KIP-903); -1 if unknown. Nil: -1.
	BrokerEpoch      func() int64
	MaxWait          time.Duration // replica.fetch.wait.max.ms (500ms)
	MinBytes         int32         // replica.fetch.min.bytes (1)
	MaxBytes         int32         // replica.fetch.max.bytes, per partition (1 MiB)
	ResponseMaxBytes int32         // replica.fetch.response.max.bytes (10 MiB)
	Backoff          time.Duration // replica.fetch.backoff.ms (1s)
	// NumFetchers is num.replica.fetchers (1): fetchers, each with its
	// own connection, per leader broker; partitions are hashed over them.
	NumFetchers int
	Clock       clock.Clock // nil: the real clock
	Logger      *slog.Logger
	// OnHighWatermark, when set, is told after a followed partition's
	// high watermark advanced, so consumers reading the follower
	// (KIP-392) wake. It runs under the partition's fetch lock: it must
	// not call back into the Manager.
	OnHighWatermark func(topic string, partition int32)
	// Throttle is follower.replication.throttled.rate, and Throttled
	// says which followed partitions it applies to (the topic's
	// follower.replication.throttled.replicas naming this broker):
	// while the rate is used up, those are left out of fetches. Nil:
	// nothing is throttled.
	Throttle  *quota.Rate
	Throttled func(topic string, partition int32) bool
}

func (c Config) withDefaults() Config {
	if c.BrokerEpoch == nil {
		c.BrokerEpoch = func() int64 { return -1 }
	}
	if c.MaxWait <= 0 {
		c.MaxWait = 500 * time.Millisecond
	}
	if c.MinBytes <= 0 {
		c.MinBytes = 1
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 1 << 20
	}
	if c.ResponseMaxBytes <= 0 {
		c.ResponseMaxBytes = 10 << 20
	}
	if c.Backoff <= 0 {
		c.Backoff = time.Second
	}
	c.NumFetchers = max(c.NumFetchers, 1)
	if c.Clock == nil {
		c.Clock = clock.Real()
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Leader is a partition's leader broker and its inter-broker listener
// (host:port).
type Leader struct {
	ID   int32
	Addr string
}

// Partition names a followed partition. TopicID is required by leaders
// that speak Fetch v13+, which name topics only by ID.
type Partition struct {
	Topic   string
	TopicID [16]byte
	Index   int32
}

// PartitionStats is one followed partition as the fetchers see it.
type PartitionStats struct {
	Partition   Partition
	Leader      Leader
	LeaderEpoch int32
	// LogEndOffset is the local replica's; LeaderHighWatermark the
	// leader's in its last answer (-1 before the first).
	LogEndOffset        int64
	LeaderHighWatermark int64
	// Lag is max(0, LeaderHighWatermark - LogEndOffset), Kafka's
	// per-partition follower lag (0 before the first answer).
	Lag int64
	// Fenced: the leader answered FENCED_LEADER_EPOCH; fetching waits
	// for a Follow with a newer epoch. Err: the partition is no longer
	// fetched because its replica failed (poisoned log, closed).
	Fenced bool
	Err    error
}

type partKey struct {
	topic string
	index int32
}

type fetcherKey struct {
	leader Leader
	index  int
}

// Manager runs the fetchers of one broker. Its methods are safe for
// concurrent use.
type Manager struct {
	cfg Config

	// admin serializes Follow, Unfollow and Close, so that retiring a
	// partition's old state (which may wait for an append) and
	// installing its new one are one step.
	admin sync.Mutex

	mu       sync.Mutex // guards closed, parts, fetchers and each fetcher's parts
	closed   bool
	parts    map[partKey]*partState
	fetchers map[fetcherKey]*fetcher

	wg sync.WaitGroup // fetcher goroutines
}

// New returns a Manager with no partitions; fetchers start with Follow.
func New(cfg Config) *Manager {
	return &Manager{
		cfg:      cfg.withDefaults(),
		parts:    map[partKey]*partState{},
		fetchers: map[fetcherKey]*fetcher{},
	}
}

// Follow makes r, which the caller has made a follower in leaderEpoch
// (replica.BecomeFollower), copy from leader. If the partition is already
// followed, a call with the same replica, leader and epoch changes
// nothing, one with an older epoch is ignored, and anything else replaces
// the assignment: an answer in flight for the old one is dropped. After
// Close it does nothing.
func (m *Manager) Follow(p Partition, r *replica.Partition, leader Leader, leaderEpoch int32) {
	m.admin.Lock()
	defer m.admin.Unlock()
	key := partKey{p.Topic, p.Index}
	m.mu.Lock()
	old := m.parts[key]
	switch {
	case m.closed:
		m.mu.Unlock()
		return
	case old != nil && old.r == r && old.p == p && old.leader == leader && old.epoch == leaderEpoch:
		m.mu.Unlock()
		return
	case old != nil && old.r == r && leaderEpoch < old.epoch:
		m.mu.Unlock()
		m.cfg.Logger.Info("ignoring a stale leader for a followed partition", "topic", p.Topic, "partition", p.Index,
			"leader", leader.ID, "leader_epoch", leaderEpoch, "following_epoch", old.epoch)
		return
	}
	if old != nil {
		m.removeLocked(key, old) // its fetcher stays: the new state may go to it
	}
	m.mu.Unlock()
	if old != nil {
		old.retire() // before the new state exists: never two appliers
	}

	fk := fetcherKey{leader, fetcherIndex(p, m.cfg.NumFetchers)}
	ps := newPartState(p, r, leader, leaderEpoch, fk, m.cfg.Logger)
	ps.onHW = m.cfg.OnHighWatermark
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return
	}
	f := m.fetchers[fk]
	if f == nil {
		f = newFetcher(m, fk)
		m.fetchers[fk] = f
		m.wg.Add(1)
		go f.run()
	}
	m.parts[key] = ps
	f.parts[key] = ps
	if old != nil && old.fetcher != fk {
		m.stopIfIdleLocked(old.fetcher)
	}
	m.mu.Unlock()
	f.poke()
	m.cfg.Logger.Debug("following", "topic", p.Topic, "partition", p.Index, "leader", leader.ID, "leader_epoch", leaderEpoch,
		"log_end_offset", r.LogEndOffset())
}

// Unfollow stops fetching the partition (it leads now, was deleted or left
// the replica set). When it returns, no append or truncation by a fetcher
// is in progress on its replica and none will start.
func (m *Manager) Unfollow(p Partition) {
	m.admin.Lock()
	defer m.admin.Unlock()
	key := partKey{p.Topic, p.Index}
	m.mu.Lock()
	old := m.parts[key]
	if old != nil {
		m.removeLocked(key, old)
		m.stopIfIdleLocked(old.fetcher)
	}
	m.mu.Unlock()
	if old != nil {
		old.retire()
	}
}

// removeLocked removes ps from the maps (m.mu held).
func (m *Manager) removeLocked(key partKey, ps *partState) {
	delete(m.parts, key)
	if f := m.fetchers[ps.fetcher]; f != nil {
		delete(f.parts, key)
	}
}

// stopIfIdleLocked stops fetcher fk if it has no partition left (m.mu
// held): its goroutine ends and closes its connection.
func (m *Manager) stopIfIdleLocked(fk fetcherKey) {
	if f := m.fetchers[fk]; f != nil && len(f.parts) == 0 {
		delete(m.fetchers, fk)
		f.cancel()
	}
}

// Close stops every fetcher and waits for their goroutines: afterwards no
// replica is appended to by this Manager.
func (m *Manager) Close() {
	m.admin.Lock()
	defer m.admin.Unlock()
	m.mu.Lock()
	m.closed = true
	parts, fetchers := m.parts, m.fetchers
	m.parts, m.fetchers = map[partKey]*partState{}, map[fetcherKey]*fetcher{}
	m.mu.Unlock()
	for _, f := range fetchers {
		f.cancel()
	}
	for _, ps := range parts {
		ps.retire()
	}
	m.wg.Wait()
}

// Stats returns the followed partitions ordered by topic and index.
func (m *Manager) Stats() []PartitionStats {
	m.mu.Lock()
	parts := make([]*partState, 0, len(m.parts))
	for _, ps := range m.parts {
		parts = append(parts, ps)
	}
	m.mu.Unlock()
	out := make([]PartitionStats, 0, len(parts))
	for _, ps := range parts {
		out = append(out, ps.stats())
	}
	slices.SortFunc(out, func(a, b PartitionStats) int {
		return cmp.Or(cmp.Compare(a.Partition.Topic, b.Partition.Topic), cmp.Compare(a.Partition.Index, b.Partition.Index))
	})
	return out
}

// fetcherIndex hashes a partition over n fetchers, as Kafka's
// getFetcherId (abs(31 * hash(topic) + partition) mod n).
func fetcherIndex(p Partition, n int) int {
	h := fnv.New32a()
	h.Write([]byte(p.Topic))
	return int((uint64(h.Sum32())*31 + uint64(uint32(p.Index))) % uint64(n))
}

// partState is one followed partition: Kafka's PartitionFetchState. The
// fields above mu never change; those below are guarded by it.
type partState struct {
	p       Partition
	r       *replica.Partition
	leader  Leader
	epoch   int32
	fetcher fetcherKey
	logger  *slog.Logger
	onHW    func(topic string, partition int32) // Config.OnHighWatermark

	mu           sync.Mutex
	removed      bool // retired by Follow, Unfollow or Close: apply nothing
	follower     *isr.Follower
	backoffUntil time.Time
	err          error // the replica failed: not fetched any more
	leaderHW     int64
	// quickRetries counts refusals by a leader that does not lead yet,
	// since the last append (applyFetch's short retries).
	quickRetries int
}

func newPartState(p Partition, r *replica.Partition, leader Leader, epoch int32, fk fetcherKey, logger *slog.Logger) *partState {
	return &partState{p: p, r: r, leader: leader, epoch: epoch, fetcher: fk, leaderHW: -1,
		logger:   logger.With("topic", p.Topic, "partition", p.Index, "leader", leader.ID, "leader_epoch", epoch),
		follower: isr.NewFollower(leader.ID, epoch, localLog(r))}
}

// retire marks ps removed, waiting for an apply in progress to finish.
func (ps *partState) retire() {
	ps.mu.Lock()
	ps.removed = true
	ps.mu.Unlock()
}

func (ps *partState) stats() PartitionStats {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	s := PartitionStats{Partition: ps.p, Leader: ps.leader, LeaderEpoch: ps.epoch,
		LogEndOffset: ps.r.LogEndOffset(), LeaderHighWatermark: ps.leaderHW, Err: ps.err}
	if ps.leaderHW >= 0 {
		s.Lag = max(0, ps.leaderHW-s.LogEndOffset)
	}
	s.Fenced = ps.err == nil && ps.follower.Next().Kind == isr.ActWait
	return s
}

// localLog is what isr.Follower needs to know of the replica's log.
func localLog(r *replica.Partition) isr.LocalLog {
	return isr.LocalLog{LogEndOffset: r.LogEndOffset(), HighWatermark: r.HighWatermark(), LatestEpoch: r.LastFetchedEpoch()}
}

// epochEntries converts the replica's epoch history for isr.TruncationFor.
func epochEntries(r *replica.Partition) []isr.EpochEntry {
	es := r.EpochEntries()
	out := make([]isr.EpochEntry, len(es))
	for i, e := range es {
		out[i] = isr.EpochEntry{Epoch: e.Epoch, StartOffset: e.StartOffset}
	}
	return out
}
