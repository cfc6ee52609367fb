package isr

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Proposal is the AlterPartition the leader wants sent for its partition:
// the whole new ISR with broker epochs, conditioned on the epochs the leader
// knows (the controller compares PartitionEpoch and sets it). At most one is
// in flight; ID names it so a late answer to an abandoned one is ignored.
type Proposal struct {
	ID             uint64
	LeaderID       int32
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []BrokerState
}

// AlterResult is the controller's answer to a Proposal: Err is the partition
// error (or the request's, or a transport error), nil on success, when the
// other fields are the partition's state after the change.
type AlterResult struct {
	Err            error
	LeaderEpoch    int32
	PartitionEpoch int32
	ISR            []int32
}

// AlterOutcome says what HandleAlterPartition did with an answer.
type AlterOutcome int

const (
	AlterIgnored   AlterOutcome = iota // not the proposal in flight, or stale epochs
	AlterCommitted                     // the ISR and partition epoch were adopted
	AlterReset                         // refused without being applied: back to the committed ISR
	AlterPending                       // stays in flight until metadata tells what happened
	AlterRetry                         // Ready hands the same proposal out again
)

// PartitionState is the partition's record in the metadata image.
type PartitionState struct {
	Leader         int32
	LeaderEpoch    int32
	PartitionEpoch int32
	Replicas       []int32
	ISR            []int32
}

// ErrNewLeaderEpoch is returned by ApplyPartition for a state with a newer
// leader epoch: the caller caches the epoch's start offset and builds a new
// Leader (or a Follower), as Kafka's makeLeader resets every follower then.
var ErrNewLeaderEpoch = errors.New("isr: newer leader epoch, start a new Leader")

// Tick runs the periodic ISR check (Kafka's isr-expiration task, which runs
// every replica.lag.time.max.ms/2): ISR followers that have not caught up
// within LagTimeMaxMs are proposed out, unless an AlterPartition is in
// flight. It also re-evaluates the high watermark, since a catching-up
// follower stops holding it once it falls out of the caught-up window.
func (l *Leader) Tick(nowMs int64) {
	if l.pending == nil {
		var out []int32
		for _, id := range l.isr {
			if id == l.id {
				continue
			}
			if r := l.followers[id]; r == nil || !r.caughtUp(l.leo, nowMs, l.lagMaxMs) {
				out = append(out, id)
			}
		}
		if len(out) > 0 {
			l.propose(slices.DeleteFunc(slices.Clone(l.isr), func(id int32) bool { return slices.Contains(out, id) }), false, -1)
		}
	}
	l.maybeAdvanceHW(nowMs)
}

// maybeExpand is Partition.maybeExpandIsr: a follower outside the ISR joins
// once it reached the high watermark and the start of this leader epoch
// (Kip320.tla: it holds every record the epoch may have committed) and is
// eligible, and no AlterPartition is in flight.
func (l *Leader) maybeExpand(r *follower) {
	if l.pending != nil || l.inISR(r.id) || !l.eligible(r) || r.leo < l.hw || r.leo < l.epochStart {
		return
	}
	l.propose(sortedCopy(append(slices.Clone(l.isr), r.id)), true, r.id)
}

func (l *Leader) propose(isr []int32, expand bool, added int32) {
	l.nextID++
	states := make([]BrokerState, len(isr))
	for i, id := range isr {
		states[i] = BrokerState{ID: id, Epoch: -1}
		switch r := l.followers[id]; {
		case id == l.id:
			states[i].Epoch = l.brokerEpoch
		case r != nil && r.hasBrokerEpoch:
			states[i].Epoch = r.brokerEpoch
		}
	}
	l.pending = &pendingChange{
		proposal: Proposal{ID: l.nextID, LeaderID: l.id, LeaderEpoch: l.leaderEpoch,
			PartitionEpoch: l.partitionEpoch, ISR: states},
		expand: expand,
		added:  added,
	}
	l.send = true
}

// Pending returns the AlterPartition in flight, for a caller that resends it
// after losing the answer (a timeout or a lost connection).
func (l *Leader) Pending() (Proposal, bool) {
	if l.pending == nil {
		return Proposal{}, false
	}
	return cloneProposal(l.pending.proposal), true
}

func cloneProposal(p Proposal) Proposal {
	p.ISR = slices.Clone(p.ISR)
	return p
}

// HandleAlterPartition applies the answer to proposal id, following Kafka's
// handleAlterPartitionUpdate and handleAlterPartitionError: ignore it if
// another proposal or metadata replaced this one, or if its leader epoch
// differs or its partition epoch is older; adopt it otherwise (an equal
// partition epoch means the controller had nothing to change). On
// OPERATION_NOT_ATTEMPTED or INELIGIBLE_REPLICA the controller applied
// nothing, so the leader returns to the committed ISR; on FENCED_LEADER_EPOCH,
// INVALID_UPDATE_VERSION, INVALID_REQUEST, UNKNOWN_TOPIC_* or
// NEW_LEADER_ELECTED it stays pending until metadata says what happened; any
// other error is retried.
func (l *Leader) HandleAlterPartition(id uint64, res AlterResult, nowMs int64) AlterOutcome {
	if l.pending == nil || l.pending.proposal.ID != id {
		return AlterIgnored
	}
	if res.Err != nil {
		l.failedAlters++
		var ke *kerr.Error
		errors.As(res.Err, &ke)
		switch ke {
		case kerr.OperationNotAttempted, kerr.IneligibleReplica:
			l.pending, l.send = nil, false
			return AlterReset
		case kerr.FencedLeaderEpoch, kerr.InvalidUpdateVersion, kerr.InvalidRequest,
			kerr.UnknownTopicOrPartition, kerr.UnknownTopicID, kerr.NewLeaderElected:
			return AlterPending
		}
		l.send = true
		return AlterRetry
	}
	if res.LeaderEpoch != l.leaderEpoch || res.PartitionEpoch < l.partitionEpoch {
		l.failedAlters++
		return AlterIgnored
	}
	if l.pending.expand {
		l.expands++
	} else {
		l.shrinks++
	}
	l.isr, l.partitionEpoch = sortedCopy(res.ISR), res.PartitionEpoch
	l.pending, l.send = nil, false
	l.maybeAdvanceHW(nowMs)
	return AlterCommitted
}

// ApplyPartition adopts the partition's record from newer metadata in the
// same leader epoch (an ISR the controller changed, a reassignment): the
// committed ISR, replicas and partition epoch are replaced and any proposal
// in flight is dropped, as Kafka's makeLeader does for an unchanged leader
// epoch. A state with an older leader or partition epoch is ignored
// (applied false), and so is one with the partition epoch the leader
// already has: that is the committed state it knows, and dropping a
// proposal in flight for it would let the high watermark pass a replica the
// controller may have just added (Kafka's makeLeader accepts an equal
// epoch; the simulator found the race, see TestApplyPartitionSameEpoch).
// Another leader is NOT_LEADER_OR_FOLLOWER and a newer leader epoch
// ErrNewLeaderEpoch: the caller changes roles.
func (l *Leader) ApplyPartition(ps PartitionState, nowMs int64) (applied bool, err error) {
	switch {
	case ps.LeaderEpoch < l.leaderEpoch || ps.PartitionEpoch <= l.partitionEpoch:
		return false, nil
	case ps.Leader != l.id:
		return false, fmt.Errorf("leader is now %d in epoch %d: %w", ps.Leader, ps.LeaderEpoch, kerr.NotLeaderForPartition)
	case ps.LeaderEpoch > l.leaderEpoch:
		return false, fmt.Errorf("leader epoch %d after %d: %w", ps.LeaderEpoch, l.leaderEpoch, ErrNewLeaderEpoch)
	case !slices.Contains(ps.Replicas, l.id):
		return false, fmt.Errorf("isr: leader %d not in replicas %v", l.id, ps.Replicas)
	}
	l.setReplicas(ps.Replicas)
	l.countOwnChange(ps.ISR)
	l.isr, l.partitionEpoch = sortedCopy(ps.ISR), ps.PartitionEpoch
	l.pending, l.send = nil, false
	l.maybeAdvanceHW(nowMs)
	return true, nil
}

// countOwnChange counts the proposal in flight as committed when newer
// metadata carries exactly the ISR it asked for: the controller applied it
// and the metadata log reached this broker before the AlterPartition
// answer, which HandleAlterPartition will then ignore. Without this the
// shrink and expand counters (and the alerts on them) miss such changes.
func (l *Leader) countOwnChange(isr []int32) {
	if l.pending == nil || !slices.Equal(proposedIDs(l.pending.proposal), sortedCopy(isr)) {
		return
	}
	if l.pending.expand {
		l.expands++
	} else {
		l.shrinks++
	}
}

// proposedIDs is a proposal's ISR as sorted broker ids.
func proposedIDs(p Proposal) []int32 {
	ids := make([]int32, len(p.ISR))
	for i, b := range p.ISR {
		ids[i] = b.ID
	}
	return sortedCopy(ids)
}

// SetBrokers replaces what the leader knows of the brokers' registrations
// (the metadata image's broker records), which decides ISR eligibility and
// the broker-epoch fence on fetches.
func (l *Leader) SetBrokers(brokers []Broker, nowMs int64) {
	l.setBrokers(brokers)
	l.maybeAdvanceHW(nowMs)
}

// Ready is what the caller must act on after any call: wake what waits on
// the high watermark (acks=all produces, fetches) when it advanced, and send
// Proposal when it is set.
type Ready struct {
	HighWatermark         int64
	HighWatermarkAdvanced bool
	Proposal              *Proposal
}

// Ready drains the leader's outputs: each advance and each proposal (or
// retry) is reported once.
func (l *Leader) Ready() Ready {
	rd := Ready{HighWatermark: l.hw, HighWatermarkAdvanced: l.hwMoved}
	if l.send && l.pending != nil {
		p := cloneProposal(l.pending.proposal)
		rd.Proposal = &p
	}
	l.hwMoved, l.send = false, false
	return rd
}

// FollowerStats is the leader's view of one follower, for metrics.
type FollowerStats struct {
	ID           int32
	LogEndOffset int64 // -1 until it fetched in this leader epoch
	// LogStartOffset is the follower's, from its last fetch (-1 before):
	// the low watermark DeleteRecords waits for is the minimum over them.
	LogStartOffset int64
	Lag            int64 // leader LEO minus its LEO; -1 when unknown
	// LastCaughtUpMs is when it last reached the leader's LEO; -1 never.
	LastCaughtUpMs int64
	InISR          bool
}

// Stats are the facts behind the partition's replication metrics.
type Stats struct {
	ISRShrinks, ISRExpands uint64 // committed AlterPartitions, since NewLeader
	FailedAlters           uint64 // AlterPartition answers that did not commit
	UnderReplicated        bool   // committed ISR smaller than the replicas
	UnderMinISR, AtMinISR  bool   // committed ISR below or at the effective min ISR
	Followers              []FollowerStats
}

// Stats reports the leader's counters and each follower's position.
func (l *Leader) Stats() Stats {
	s := Stats{
		ISRShrinks:      l.shrinks,
		ISRExpands:      l.expands,
		FailedAlters:    l.failedAlters,
		UnderReplicated: len(l.isr) < len(l.replicas),
		UnderMinISR:     l.underMinISR(),
		AtMinISR:        len(l.isr) == l.effectiveMinISR(),
	}
	for _, id := range l.replicas {
		r := l.followers[id]
		if r == nil {
			continue
		}
		fs := FollowerStats{ID: id, LogEndOffset: r.leo, LogStartOffset: r.logStart, Lag: -1, LastCaughtUpMs: -1, InISR: l.inISR(id)}
		if r.leo >= 0 {
			fs.Lag = l.leo - r.leo
		}
		if r.lastCaughtUpMs != never {
			fs.LastCaughtUpMs = r.lastCaughtUpMs
		}
		s.Followers = append(s.Followers, fs)
	}
	return s
}
