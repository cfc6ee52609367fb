package controller

import (
	"fmt"
	"slices"
)

// ISRMember is an ISR member an AlterPartition proposes, with the broker
// epoch the leader saw it fetch with (KIP-903); -1 skips the epoch check
// (requests before v3).
type ISRMember struct {
	BrokerID    int32
	BrokerEpoch int64
}

// AlterPartitionItem is one partition of an AlterPartition request. Name
// the topic by TopicID (v2+) or by Topic (v0-1).
type AlterPartitionItem struct {
	TopicID             TopicID
	Topic               string
	Partition           int32
	LeaderEpoch         int32
	PartitionEpoch      int32 // the epoch the leader's proposal is based on
	NewISR              []ISRMember
	LeaderRecoveryState LeaderRecoveryState
}

// AlterPartitionResult is the answer for one item: Err nil (the change is
// applied, or there was none) or wrapping one of the Err* sentinels, and
// the partition as it is once the returned records are applied (zero when
// Err is a validation error; set with ErrNewLeaderElected).
type AlterPartitionResult struct {
	Err       error
	Partition Partition
}

// PlanAlterPartition decides an AlterPartition request from the leader
// brokerID at brokerEpoch, of API version, validating each partition in
// Kafka's order (ReplicationControlManager.validateAlterPartitionData):
//  1. the request's broker epoch (for the whole request: ErrStaleBrokerEpoch)
//  2. unknown topic or partition (ErrUnknownTopicID from v2, else ErrUnknownTopicOrPartition)
//  3. a leader or partition epoch newer than the controller's (ErrNotController)
//  4. an older leader epoch (ErrFencedLeaderEpoch)
//  5. a requester that is not the leader (ErrInvalidRequest)
//  6. an older partition epoch (ErrInvalidUpdateVersion)
//  7. an ISR not within the replicas, or without the leader (ErrInvalidRequest)
//  8. RECOVERING with more than one ISR member, or RECOVERED to RECOVERING (ErrInvalidRequest)
//  9. an ISR member unregistered, fenced, shutting down or of another
//     broker epoch (ErrIneligibleReplica from v2, else ErrOperationNotAttempted)
//
// A valid proposal is applied through the same change rules as every
// other partition change: it may complete a reassignment, and if that
// moves the leadership away from the requester the answer is
// ErrNewLeaderElected (ErrFencedLeaderEpoch before v2) with the change
// still committed. Records are returned for valid items only. A partition
// named twice in one request is refused the second time (ErrInvalidRequest).
func (s *State) PlanAlterPartition(brokerID int32, brokerEpoch int64, version int16, items []AlterPartitionItem, pol Policy) ([]AlterPartitionResult, []Record, error) {
	if err := s.CheckBrokerEpoch(brokerID, brokerEpoch); err != nil {
		return nil, nil, err
	}
	results := make([]AlterPartitionResult, len(items))
	var rs []Record
	type partitionKey struct {
		t *Topic
		p int32
	}
	seen := make(map[partitionKey]bool, len(items))
	for i, it := range items {
		t, p, err := s.alterPartitionTarget(it, version)
		if err == nil && seen[partitionKey{t, p.Index}] {
			// Both would be validated against the same state, and
			// the second record would be applied over the first.
			err = fmt.Errorf("%w: %s-%d is named twice in one request", ErrInvalidRequest, t.Name, p.Index)
		} else if err == nil {
			seen[partitionKey{t, p.Index}] = true
			err = s.validateAlterPartition(brokerID, version, it, p)
		}
		if err != nil {
			results[i].Err = err
			continue
		}
		c := s.newChange(t, p, pol)
		c.isr = make([]int32, len(it.NewISR))
		c.epochs = make(map[int32]int64, len(it.NewISR))
		for j, m := range it.NewISR {
			c.isr[j] = m.BrokerID
			c.epochs[m.BrokerID] = m.BrokerEpoch
		}
		c.recovery = it.LeaderRecoveryState
		rec, changed := c.build()
		results[i].Partition = p
		if !changed {
			continue
		}
		rs = append(rs, rec)
		results[i].Partition = p.merge(rec)
		if rec.Leader != NoLeaderChange && rec.Leader != brokerID {
			if version > 1 {
				results[i].Err = fmt.Errorf("%w: %s-%d is now led by %d", ErrNewLeaderElected, t.Name, p.Index, rec.Leader)
			} else {
				results[i].Err = fmt.Errorf("%w: %s-%d is now led by %d", ErrFencedLeaderEpoch, t.Name, p.Index, rec.Leader)
			}
		}
	}
	return results, rs, nil
}

// alterPartitionTarget finds the item's topic and partition.
func (s *State) alterPartitionTarget(it AlterPartitionItem, version int16) (*Topic, Partition, error) {
	var t *Topic
	if version > 1 {
		t = s.byID[it.TopicID]
		if t == nil {
			return nil, Partition{}, fmt.Errorf("%w: %s", ErrUnknownTopicID, it.TopicID)
		}
	} else if t = s.Topics[it.Topic]; t == nil {
		return nil, Partition{}, fmt.Errorf("%w: topic %q", ErrUnknownTopicOrPartition, it.Topic)
	}
	if it.Partition < 0 || int(it.Partition) >= len(t.Partitions) {
		return nil, Partition{}, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, t.Name, it.Partition)
	}
	return t, t.Partitions[it.Partition], nil
}

// validateAlterPartition runs steps 3 to 9 of PlanAlterPartition.
func (s *State) validateAlterPartition(brokerID int32, version int16, it AlterPartitionItem, p Partition) error {
	switch {
	case it.LeaderEpoch > p.LeaderEpoch || it.PartitionEpoch > p.PartitionEpoch:
		return fmt.Errorf("%w: request at leader epoch %d, partition epoch %d; the controller has %d, %d",
			ErrNotController, it.LeaderEpoch, it.PartitionEpoch, p.LeaderEpoch, p.PartitionEpoch)
	case it.LeaderEpoch < p.LeaderEpoch:
		return fmt.Errorf("%w: leader epoch %d, current %d", ErrFencedLeaderEpoch, it.LeaderEpoch, p.LeaderEpoch)
	case brokerID != p.Leader:
		return fmt.Errorf("%w: broker %d is not the leader (%d)", ErrInvalidRequest, brokerID, p.Leader)
	case it.PartitionEpoch < p.PartitionEpoch:
		return fmt.Errorf("%w: partition epoch %d, current %d", ErrInvalidUpdateVersion, it.PartitionEpoch, p.PartitionEpoch)
	}
	isr := make([]int32, len(it.NewISR))
	for i, m := range it.NewISR {
		isr[i] = m.BrokerID
	}
	switch {
	case hasDuplicate(isr) || !subset(isr, p.Replicas):
		return fmt.Errorf("%w: ISR %v is not a set of replicas %v", ErrInvalidRequest, isr, p.Replicas)
	case !slices.Contains(isr, p.Leader):
		return fmt.Errorf("%w: ISR %v lacks the leader %d", ErrInvalidRequest, isr, p.Leader)
	case it.LeaderRecoveryState == Recovering && len(isr) > 1:
		return fmt.Errorf("%w: ISR %v while the leader is recovering", ErrInvalidRequest, isr)
	case p.LeaderRecoveryState == Recovered && it.LeaderRecoveryState == Recovering:
		return fmt.Errorf("%w: leader recovery state cannot go from RECOVERED to RECOVERING", ErrInvalidRequest)
	case it.LeaderRecoveryState != Recovered && it.LeaderRecoveryState != Recovering:
		return fmt.Errorf("%w: leader recovery state %d", ErrInvalidRequest, it.LeaderRecoveryState)
	}
	for _, m := range it.NewISR {
		b, ok := s.Brokers[m.BrokerID]
		why := ""
		switch {
		case !ok:
			why = "not registered"
		case b.InControlledShutdown:
			why = "shutting down"
		case b.Fenced:
			why = "fenced"
		case m.BrokerEpoch != -1 && m.BrokerEpoch != b.Epoch:
			why = fmt.Sprintf("broker epoch %d, registered %d", m.BrokerEpoch, b.Epoch)
		default:
			continue
		}
		sentinel := ErrIneligibleReplica
		if version <= 1 {
			sentinel = ErrOperationNotAttempted
		}
		return fmt.Errorf("%w: ISR member %d is %s", sentinel, m.BrokerID, why)
	}
	return nil
}

// LeaderProposal shapes what a partition's leader sends to the controller
// for an ISR change it wants (it), given the partition p as the leader's
// metadata has it, under KIP-704's rules. A partition an unclean election
// gave to this leader is RECOVERING: its ISR is the leader alone, and the
// controller refuses to add followers while it stays so. The leader's
// first AlterPartition in that state is therefore the recovery step: the
// leader alone, RECOVERED (it has taken leadership, and its log is what
// followers truncate to). Followers join with a later proposal, once that
// is committed. recovery reports that the proposal was replaced by that
// step; the caller proposes its ISR again afterwards.
//
// The step is taken only when p is at the item's leader and partition
// epochs: a leader ahead of its metadata got there through an
// AlterPartition of its own, which was the recovery step, and one behind
// it is refused by the controller whatever it sends.
func LeaderProposal(p Partition, leader int32, it AlterPartitionItem) (out AlterPartitionItem, recovery bool) {
	out = it
	out.LeaderRecoveryState = Recovered
	if p.LeaderRecoveryState != Recovering || p.Leader != leader || p.LeaderEpoch != it.LeaderEpoch || p.PartitionEpoch != it.PartitionEpoch {
		return out, false
	}
	self := ISRMember{BrokerID: leader, BrokerEpoch: -1}
	for _, m := range it.NewISR {
		if m.BrokerID == leader {
			self = m
		}
	}
	out.NewISR = []ISRMember{self}
	return out, true
}
