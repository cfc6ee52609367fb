package isr

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// never is the time of an event that has not happened (a follower that never
// caught up or never fetched). Kafka uses 0, which only works with wall-clock
// times; a sentinel keeps small test clocks honest.
const never int64 = math.MinInt64 / 2

// Broker is what the metadata image says about one broker: the epoch of its
// registration and whether it may be in an ISR (KIP-841: not fenced, not in
// controlled shutdown). A broker the leader has no Broker for is not
// registered: it never joins the ISR, and its fetches are not fenced by epoch.
type Broker struct {
	ID           int32
	Epoch        int64
	Fenced       bool
	ShuttingDown bool
}

// BrokerState is an ISR member with the broker epoch the leader saw in its
// last fetch, as AlterPartition v3 sends it (KIP-903). Epoch -1 means unknown,
// which the controller does not check.
type BrokerState struct {
	ID    int32
	Epoch int64
}

// LeaderConfig is a partition's state when this broker becomes its leader
// (Kafka's makeLeader with a new leader epoch).
type LeaderConfig struct {
	ID             int32 // this broker, the leader
	BrokerEpoch    int64 // this broker's registration epoch
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32 // every replica of the partition, this broker included
	ISR            []int32 // the ISR the controller committed
	Brokers        []Broker
	// MinISR is min.insync.replicas; the leader uses min(MinISR, len(Replicas)).
	MinISR int
	// LagTimeMaxMs is replica.lag.time.max.ms: how long an ISR follower may
	// go without reaching the leader's log end offset.
	LagTimeMaxMs int64
	// EpochStartOffset is the log end offset at election, which the caller
	// has cached as the start of LeaderEpoch before any append (KIP-279).
	EpochStartOffset int64
	HighWatermark    int64
	LogEndOffset     int64
	// Stale are ISR followers known to have stopped fetching before this
	// leader epoch began (the leader it replaces, when that one's lease
	// ran out). They do not start with the fresh lag window every other
	// ISR follower gets, so the first Tick proposes them out unless they
	// have caught up by then: a dead leader does not hold the high
	// watermark for a whole LagTimeMaxMs after its successor took over.
	Stale []int32
}

// follower is the leader's view of one follower (Kafka's ReplicaState).
type follower struct {
	id       int32
	leo      int64 // -1 until its first fetch in this leader epoch
	logStart int64
	// lastFetchLeaderLEO and lastFetchMs are the leader's LEO before the read
	// of the previous fetch and that fetch's time, for the caught-up rule.
	lastFetchLeaderLEO int64
	lastFetchMs        int64
	// lastCaughtUpMs is the largest time at which this follower had fetched
	// up to the leader's log end offset of that time.
	lastCaughtUpMs int64
	brokerEpoch    int64
	hasBrokerEpoch bool
}

// caughtUp is Kafka's ReplicaState.isCaughtUp.
func (f *follower) caughtUp(leaderLEO, nowMs, maxLagMs int64) bool {
	return f.leo == leaderLEO || nowMs-f.lastCaughtUpMs <= maxLagMs
}

// pendingChange is the one AlterPartition in flight (KIP-497).
type pendingChange struct {
	proposal Proposal
	expand   bool  // an expansion counts toward the maximal ISR, a shrink does not
	added    int32 // the replica an expansion adds
}

// Leader is the replication state of one partition that this broker leads,
// for one leader epoch: follower positions, the high watermark and the ISR
// changes it proposes. See the package comment for the calling contract.
type Leader struct {
	id             int32
	brokerEpoch    int64
	leaderEpoch    int32
	partitionEpoch int32
	minISR         int
	lagMaxMs       int64
	epochStart     int64

	replicas  []int32
	isr       []int32 // committed by the controller, sorted
	followers map[int32]*follower
	brokers   map[int32]Broker

	hw, leo int64

	pending *pendingChange
	nextID  uint64
	send    bool // the pending proposal is yet to be handed out by Ready
	hwMoved bool // the high watermark advanced since the last Ready

	shrinks, expands, failedAlters uint64
}

// NewLeader starts leading a partition at cfg's leader epoch at time nowMs.
// Followers start with an unknown log end offset; those in the ISR count as
// caught up at nowMs, so the high watermark waits for each of them to fetch
// in this epoch or to be shrunk out after LagTimeMaxMs (Kafka's makeLeader).
func NewLeader(cfg LeaderConfig, nowMs int64) (*Leader, error) {
	switch {
	case !slices.Contains(cfg.Replicas, cfg.ID):
		return nil, fmt.Errorf("isr: leader %d is not a replica %v", cfg.ID, cfg.Replicas)
	case cfg.MinISR < 1:
		return nil, fmt.Errorf("isr: min.insync.replicas %d < 1", cfg.MinISR)
	case cfg.HighWatermark > cfg.LogEndOffset || cfg.EpochStartOffset > cfg.LogEndOffset:
		return nil, fmt.Errorf("isr: high watermark %d or epoch start %d beyond log end offset %d",
			cfg.HighWatermark, cfg.EpochStartOffset, cfg.LogEndOffset)
	}
	l := &Leader{
		id:             cfg.ID,
		brokerEpoch:    cfg.BrokerEpoch,
		leaderEpoch:    cfg.LeaderEpoch,
		partitionEpoch: cfg.PartitionEpoch,
		minISR:         cfg.MinISR,
		lagMaxMs:       cfg.LagTimeMaxMs,
		epochStart:     cfg.EpochStartOffset,
		isr:            sortedCopy(cfg.ISR),
		followers:      map[int32]*follower{},
		hw:             cfg.HighWatermark,
		leo:            cfg.LogEndOffset,
	}
	l.setReplicas(cfg.Replicas)
	for _, id := range l.isr {
		if f := l.followers[id]; f != nil && !slices.Contains(cfg.Stale, id) {
			f.lastCaughtUpMs = nowMs
		}
	}
	l.setBrokers(cfg.Brokers)
	l.maybeAdvanceHW(nowMs)
	return l, nil
}

// setReplicas adopts a replica set: new followers start unknown, removed
// ones are forgotten, the others keep their state.
func (l *Leader) setReplicas(replicas []int32) {
	l.replicas = slices.Clone(replicas)
	for _, id := range replicas {
		if id != l.id && l.followers[id] == nil {
			l.followers[id] = &follower{id: id, leo: -1, logStart: -1, lastFetchLeaderLEO: -1,
				lastFetchMs: never, lastCaughtUpMs: never}
		}
	}
	for id := range l.followers {
		if !slices.Contains(replicas, id) {
			delete(l.followers, id)
		}
	}
}

func (l *Leader) setBrokers(brokers []Broker) {
	l.brokers = make(map[int32]Broker, len(brokers))
	for _, b := range brokers {
		l.brokers[b.ID] = b
	}
}

// LeaderEpoch, PartitionEpoch, HighWatermark, LogEndOffset and
// EpochStartOffset report the leader's current view.
func (l *Leader) LeaderEpoch() int32      { return l.leaderEpoch }
func (l *Leader) PartitionEpoch() int32   { return l.partitionEpoch }
func (l *Leader) HighWatermark() int64    { return l.hw }
func (l *Leader) LogEndOffset() int64     { return l.leo }
func (l *Leader) EpochStartOffset() int64 { return l.epochStart }
func (l *Leader) ISR() []int32            { return slices.Clone(l.isr) }
func (l *Leader) effectiveMinISR() int    { return min(l.minISR, len(l.replicas)) }
func (l *Leader) underMinISR() bool       { return len(l.isr) < l.effectiveMinISR() }
func (l *Leader) inISR(id int32) bool     { return slices.Contains(l.isr, id) }
func (l *Leader) expanding(id int32) bool {
	return l.pending != nil && l.pending.expand && l.pending.added == id
}
func (l *Leader) inMaximalISR(id int32) bool { return l.inISR(id) || l.expanding(id) }

// MaximalISR is the committed ISR plus an expansion in flight: the set the
// high watermark and acks=all wait for (KIP-497). A shrink in flight is not
// subtracted until the controller commits it.
func (l *Leader) MaximalISR() []int32 {
	m := slices.Clone(l.isr)
	if l.pending != nil && l.pending.expand {
		m = sortedCopy(append(m, l.pending.added))
	}
	return m
}

// Append records that the leader's log now ends at leo (after an append as
// leader) and advances the high watermark if the ISR allows. A leader's log
// only grows, so a leo below the known one is stale (a fetch already
// reported a later end) and changes nothing.
func (l *Leader) Append(leo, nowMs int64) {
	l.leo = max(l.leo, leo)
	l.maybeAdvanceHW(nowMs)
}

// CheckAppend is the check before an append as leader: acks=all (-1) is
// refused with NOT_ENOUGH_REPLICAS while the committed ISR is smaller than
// the effective min ISR, and nothing is written. acks 0 and 1 always pass.
func (l *Leader) CheckAppend(acks int16) error {
	if acks == -1 && l.underMinISR() {
		return fmt.Errorf("isr %v smaller than min.insync.replicas %d: %w", l.isr, l.effectiveMinISR(), kerr.NotEnoughReplicas)
	}
	return nil
}

// CheckEnoughReplicasReachOffset is the completion test of an acks=all
// produce whose last offset is requiredOffset-1: done once the high watermark
// reaches requiredOffset, and then NOT_ENOUGH_REPLICAS_AFTER_APPEND if the
// maximal ISR shrank below the effective min ISR while it waited.
func (l *Leader) CheckEnoughReplicasReachOffset(requiredOffset int64) (done bool, err error) {
	if l.hw < requiredOffset {
		return false, nil
	}
	if m := l.MaximalISR(); len(m) < l.effectiveMinISR() {
		return true, fmt.Errorf("isr %v smaller than min.insync.replicas %d: %w", m, l.effectiveMinISR(), kerr.NotEnoughReplicasAfterAppend)
	}
	return true, nil
}

// FollowerFetch is one partition of a Fetch request from a follower, with
// the leader log's bounds sampled before the read.
type FollowerFetch struct {
	ReplicaID          int32
	BrokerEpoch        int64 // ReplicaState.ReplicaEpoch; -1 if not sent
	CurrentLeaderEpoch int32 // -1 if not sent
	FetchOffset        int64
	LastFetchedEpoch   int32 // -1 if not sent
	LogStartOffset     int64 // the follower's
	// LeaderLogStartOffset and LeaderLogEndOffset are the leader log's bounds
	// before the read: appends after it must not keep a follower out of sync.
	LeaderLogStartOffset int64
	LeaderLogEndOffset   int64
}

// Fetch handles a follower's fetch, in Kafka's order: the leader-epoch fence
// (FENCED_LEADER_EPOCH, UNKNOWN_LEADER_EPOCH), the replica check (an unknown
// replica gets UNKNOWN_LEADER_EPOCH if it sent an epoch, else
// NOT_LEADER_OR_FOLLOWER), the divergence check against the leader's epoch
// cache (endOffsetFor), the offset range (OFFSET_OUT_OF_RANGE), and the
// broker-epoch fence (NOT_LEADER_OR_FOLLOWER for a stale one).
//
// A non-nil EpochEndOffset is the DivergingEpoch to answer with no records;
// the follower's state is then left alone. Otherwise the follower's position
// is recorded, which may expand the ISR and advance the high watermark, and
// the caller reads the log from FetchOffset.
func (l *Leader) Fetch(f FollowerFetch, endOffsetFor EpochLookup, nowMs int64) (*EpochEndOffset, error) {
	if err := l.CheckLeaderEpoch(f.CurrentLeaderEpoch); err != nil {
		return nil, err
	}
	r := l.followers[f.ReplicaID]
	if r == nil {
		err := kerr.NotLeaderForPartition
		if f.CurrentLeaderEpoch != UndefinedEpoch {
			err = kerr.UnknownLeaderEpoch // e.g. a replica being added: it retries
		}
		return nil, fmt.Errorf("replica %d is not a replica %v in leader epoch %d: %w", f.ReplicaID, l.replicas, l.leaderEpoch, err)
	}
	if f.LeaderLogEndOffset > l.leo {
		l.leo = f.LeaderLogEndOffset // the caller appended and has not said so yet
	}
	if f.LastFetchedEpoch != UndefinedEpoch {
		if endOffsetFor == nil {
			return nil, errors.New("isr: a fetch with a last fetched epoch needs an epoch lookup")
		}
		epoch, end := endOffsetFor(f.LastFetchedEpoch)
		if epoch == UndefinedEpoch || end == UndefinedEpochOffset {
			return nil, fmt.Errorf("no end offset for last fetched epoch %d: %w", f.LastFetchedEpoch, kerr.OffsetOutOfRange)
		}
		if f.FetchOffset < f.LeaderLogStartOffset {
			return nil, fmt.Errorf("fetch offset %d below log start %d: %w", f.FetchOffset, f.LeaderLogStartOffset, kerr.OffsetOutOfRange)
		}
		if epoch < f.LastFetchedEpoch || end < f.FetchOffset {
			return &EpochEndOffset{Epoch: epoch, EndOffset: end}, nil
		}
	}
	if f.FetchOffset < f.LeaderLogStartOffset || f.FetchOffset > f.LeaderLogEndOffset {
		return nil, fmt.Errorf("fetch offset %d outside [%d, %d]: %w", f.FetchOffset,
			f.LeaderLogStartOffset, f.LeaderLogEndOffset, kerr.OffsetOutOfRange)
	}
	if b, ok := l.brokers[f.ReplicaID]; ok && f.BrokerEpoch != -1 && b.Epoch > f.BrokerEpoch {
		return nil, fmt.Errorf("replica %d fetched with broker epoch %d, registered %d: %w",
			f.ReplicaID, f.BrokerEpoch, b.Epoch, kerr.NotLeaderForPartition)
	}
	l.recordFetch(r, f, nowMs)
	l.maybeExpand(r)
	l.maybeAdvanceHW(nowMs)
	return nil, nil
}

// recordFetch is Replica.updateFetchStateOrThrow: the follower's LEO is its
// fetch offset, and it was caught up at this fetch if it reached the leader's
// LEO before the read, or at the previous fetch if it reached the LEO of
// that one (which keeps a follower in sync under a stream of small appends).
func (l *Leader) recordFetch(r *follower, f FollowerFetch, nowMs int64) {
	switch {
	case f.FetchOffset >= f.LeaderLogEndOffset:
		r.lastCaughtUpMs = max(r.lastCaughtUpMs, nowMs)
	case f.FetchOffset >= r.lastFetchLeaderLEO:
		r.lastCaughtUpMs = max(r.lastCaughtUpMs, r.lastFetchMs)
	}
	r.leo = f.FetchOffset
	r.logStart = f.LogStartOffset
	r.lastFetchLeaderLEO = max(f.LeaderLogEndOffset, r.lastFetchLeaderLEO)
	r.lastFetchMs = nowMs
	r.brokerEpoch, r.hasBrokerEpoch = f.BrokerEpoch, true
}

// CheckLeaderEpoch is KIP-320's fence for a request's current leader epoch:
// older is FENCED_LEADER_EPOCH, newer is UNKNOWN_LEADER_EPOCH (this broker has
// not heard of it yet), -1 skips the check.
func (l *Leader) CheckLeaderEpoch(requestEpoch int32) error {
	switch {
	case requestEpoch == UndefinedEpoch || requestEpoch == l.leaderEpoch:
		return nil
	case requestEpoch < l.leaderEpoch:
		return fmt.Errorf("request leader epoch %d, current %d: %w", requestEpoch, l.leaderEpoch, kerr.FencedLeaderEpoch)
	default:
		return fmt.Errorf("request leader epoch %d, current %d: %w", requestEpoch, l.leaderEpoch, kerr.UnknownLeaderEpoch)
	}
}

// eligible is Kafka's isReplicaIsrEligible (KIP-841, KIP-903): registered,
// not fenced, not shutting down, and its last fetch carried its registered
// broker epoch (or -1).
func (l *Leader) eligible(r *follower) bool {
	b, ok := l.brokers[r.id]
	return ok && !b.Fenced && !b.ShuttingDown && r.hasBrokerEpoch &&
		(r.brokerEpoch == -1 || r.brokerEpoch == b.Epoch)
}

// maybeAdvanceHW is Partition.maybeIncrementLeaderHW: the minimum log end
// offset over the leader, the maximal ISR, and the followers that are caught
// up and eligible but not yet in the ISR (so they can catch the HW and
// join). Nothing moves while the committed ISR is below the effective min
// ISR (strict min ISR, KAFKA-15583), and the HW never moves back.
func (l *Leader) maybeAdvanceHW(nowMs int64) {
	if l.underMinISR() {
		return
	}
	hw := l.leo
	for _, id := range l.replicas {
		r := l.followers[id]
		if r == nil || r.leo >= hw {
			continue
		}
		if l.inMaximalISR(id) || (r.caughtUp(l.leo, nowMs, l.lagMaxMs) && l.eligible(r)) {
			hw = r.leo
		}
	}
	if hw > l.hw {
		l.hw, l.hwMoved = hw, true
	}
}

func sortedCopy(ids []int32) []int32 {
	s := slices.Clone(ids)
	slices.Sort(s)
	return slices.Compact(s)
}
