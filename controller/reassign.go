package controller

import (
	"fmt"
	"slices"
)

// Reassignment is one partition of an AlterPartitionReassignments
// request: its target replicas, or nil to cancel the reassignment in
// progress.
type Reassignment struct {
	TopicPartition
	Replicas []int32
}

// ReassignmentResult is the answer for one partition: Err nil or wrapping
// ErrUnknownTopicOrPartition, ErrInvalidReplicaAssignment or
// ErrNoReassignmentInProgress.
type ReassignmentResult struct {
	TopicPartition
	Err error
}

// PlanAlterPartitionReassignments starts, changes or cancels
// reassignments (ReplicationControlManager.alterPartitionReassignment).
// Starting one records, in one change, Replicas = the target followed by
// the current replicas not in it, AddingReplicas = target - current and
// RemovingReplicas = current - target, before anything moves; the leader
// then adds the new replicas to the ISR with AlterPartition, and the
// change that makes the ISR cover the target completes the reassignment
// (removing the old replicas, with a leader-epoch bump and an election if
// the leader was one of them). A reassignment the ISR already covers (a
// reordering) completes at once. Cancelling puts the original replicas
// back and drops the adding ones from the ISR; if that leaves the ISR
// empty it needs unclean election to be allowed for the topic.
func (s *State) PlanAlterPartitionReassignments(reqs []Reassignment, pol Policy) ([]ReassignmentResult, []Record) {
	results := make([]ReassignmentResult, len(reqs))
	var rs []Record
	for i, r := range reqs {
		results[i].TopicPartition = r.TopicPartition
		rec, changed, err := s.planReassignment(r, pol)
		results[i].Err = err
		if err == nil && changed {
			rs = append(rs, rec)
		}
	}
	return results, rs
}

func (s *State) planReassignment(r Reassignment, pol Policy) (PartitionChangeRecord, bool, error) {
	t, ok := s.Topics[r.Topic]
	if !ok || r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
		return PartitionChangeRecord{}, false, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, r.Topic, r.Partition)
	}
	p := t.Partitions[r.Partition]
	c := s.newChange(t, p, pol)
	if r.Replicas == nil {
		if !p.Reassigning() {
			return PartitionChangeRecord{}, false, fmt.Errorf("%w: %s-%d", ErrNoReassignmentInProgress, r.Topic, r.Partition)
		}
		// The original replicas are the current ones less those being
		// added (PartitionReassignmentRevert).
		c.replicas = without(p.Replicas, p.AddingReplicas...)
		c.isr = without(p.ISR, p.AddingReplicas...)
		if len(c.isr) == 0 {
			if !pol.Unclean(t) {
				return PartitionChangeRecord{}, false, fmt.Errorf("%w: cancelling the reassignment of %s-%d needs an unclean leader election", ErrInvalidReplicaAssignment, r.Topic, r.Partition)
			}
			c.isr = c.replicas[:1:1]
		}
		c.adding, c.removing = nil, nil
		rec, changed := c.build()
		return rec, changed, nil
	}
	if err := s.checkReplicas(r.Replicas); err != nil {
		return PartitionChangeRecord{}, false, fmt.Errorf("%s-%d: %w", r.Topic, r.Partition, err)
	}
	removing := without(p.Replicas, r.Replicas...)
	c.replicas = append(slices.Clone(r.Replicas), removing...)
	c.removing = removing
	c.adding = without(r.Replicas, p.Replicas...)
	rec, changed := c.build()
	return rec, changed, nil
}

// checkReplicas refuses a manual replica list that is empty, names a
// broker twice, or names an unregistered broker
// (validateManualPartitionAssignment).
func (s *State) checkReplicas(replicas []int32) error {
	if len(replicas) == 0 {
		return fmt.Errorf("%w: no replicas", ErrInvalidReplicaAssignment)
	}
	if hasDuplicate(replicas) {
		return fmt.Errorf("%w: replicas %v name a broker twice", ErrInvalidReplicaAssignment, replicas)
	}
	for _, id := range replicas {
		if _, ok := s.Brokers[id]; !ok {
			return fmt.Errorf("%w: replicas %v: broker %d is not registered", ErrInvalidReplicaAssignment, replicas, id)
		}
	}
	return nil
}

// OngoingReassignment is a reassignment in progress, as
// ListPartitionReassignments reports it.
type OngoingReassignment struct {
	TopicPartition
	Replicas, Adding, Removing []int32
}

// ListPartitionReassignments returns the reassignments in progress among
// parts (nil: all), in topic-name and partition order; partitions that
// do not exist or are not being reassigned are left out.
func (s *State) ListPartitionReassignments(parts []TopicPartition) []OngoingReassignment {
	if parts == nil {
		parts = s.allPartitions()
	}
	var out []OngoingReassignment
	for _, tp := range parts {
		t, ok := s.Topics[tp.Topic]
		if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
			continue
		}
		if p := t.Partitions[tp.Partition]; p.Reassigning() {
			out = append(out, OngoingReassignment{TopicPartition: tp, Replicas: p.Replicas, Adding: p.AddingReplicas, Removing: p.RemovingReplicas})
		}
	}
	return out
}
