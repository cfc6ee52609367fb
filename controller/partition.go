package controller

import (
	"errors"
	"fmt"
	"slices"
)

// newPartition is the partition a PartitionRecord creates.
func newPartition(r PartitionRecord) Partition {
	return Partition{Index: r.Partition, Leader: r.Leader, LeaderEpoch: r.LeaderEpoch, PartitionEpoch: r.PartitionEpoch,
		Replicas: slices.Clone(r.Replicas), ISR: slices.Clone(r.ISR), ISREpochs: slices.Clone(r.ISREpochs),
		ELR: slices.Clone(r.ELR), LastKnownELR: slices.Clone(r.LastKnownELR), LeaderRecoveryState: r.LeaderRecoveryState,
		AddingReplicas: slices.Clone(r.AddingReplicas), RemovingReplicas: slices.Clone(r.RemovingReplicas)}
}

// merge returns p changed by r (Kafka's PartitionRegistration.merge): the
// partition epoch always grows, the leader epoch when r sets Leader. p is
// not changed, so a merge that checkPartition refuses is simply dropped.
func (p Partition) merge(r PartitionChangeRecord) Partition {
	p = p.clone()
	if r.Replicas != nil {
		p.Replicas = slices.Clone(r.Replicas)
	}
	if r.ISR != nil {
		p.ISR = slices.Clone(r.ISR)
		p.ISREpochs = slices.Clone(r.ISREpochs)
	}
	if r.ELR != nil {
		p.ELR = emptyToNil(r.ELR)
	}
	if r.LastKnownELR != nil {
		p.LastKnownELR = emptyToNil(r.LastKnownELR)
	}
	if r.AddingReplicas != nil {
		p.AddingReplicas = emptyToNil(r.AddingReplicas)
	}
	if r.RemovingReplicas != nil {
		p.RemovingReplicas = emptyToNil(r.RemovingReplicas)
	}
	if r.LeaderRecoveryState != nil {
		p.LeaderRecoveryState = *r.LeaderRecoveryState
	}
	if r.Leader != NoLeaderChange {
		p.Leader = r.Leader
		p.LeaderEpoch++
	}
	p.PartitionEpoch++
	return p
}

// emptyToNil keeps a partition's optional lists nil when empty, so that
// an emptied list and one never set look (and encode) the same.
func emptyToNil(ids []int32) []int32 {
	if len(ids) == 0 {
		return nil
	}
	return slices.Clone(ids)
}

func (p Partition) clone() Partition {
	p.Replicas = slices.Clone(p.Replicas)
	p.ISR = slices.Clone(p.ISR)
	p.ISREpochs = slices.Clone(p.ISREpochs)
	p.ELR = slices.Clone(p.ELR)
	p.LastKnownELR = slices.Clone(p.LastKnownELR)
	p.AddingReplicas = slices.Clone(p.AddingReplicas)
	p.RemovingReplicas = slices.Clone(p.RemovingReplicas)
	return p
}

// Reassigning reports whether a reassignment of p is in progress.
func (p Partition) Reassigning() bool {
	return len(p.AddingReplicas) > 0 || len(p.RemovingReplicas) > 0
}

// TargetReplicas are the replicas p will have once its reassignment
// completes: Replicas without those being removed.
func (p Partition) TargetReplicas() []int32 { return without(p.Replicas, p.RemovingReplicas...) }

// checkPartition is what every partition must satisfy: replicas named
// once each, the ISR and ELR disjoint subsets of them, the leader in the
// ISR (or none), a recovering leader alone in its ISR, a reassignment's
// adding and removing replicas disjoint replicas.
func checkPartition(p Partition) error {
	if len(p.Replicas) == 0 {
		return errors.New("no replicas")
	}
	for _, l := range [][]int32{p.Replicas, p.ISR, p.ELR, p.LastKnownELR, p.AddingReplicas, p.RemovingReplicas} {
		if hasDuplicate(l) {
			return fmt.Errorf("%v names a broker twice", l)
		}
	}
	for name, l := range map[string][]int32{"ISR": p.ISR, "ELR": p.ELR, "adding": p.AddingReplicas, "removing": p.RemovingReplicas} {
		if !subset(l, p.Replicas) {
			return fmt.Errorf("%s %v is not a subset of the replicas %v", name, l, p.Replicas)
		}
	}
	if len(p.ISREpochs) != 0 && len(p.ISREpochs) != len(p.ISR) {
		return fmt.Errorf("%d ISR broker epochs for ISR %v", len(p.ISREpochs), p.ISR)
	}
	if intersects(p.ISR, p.ELR) || intersects(p.AddingReplicas, p.RemovingReplicas) {
		return fmt.Errorf("ISR %v and ELR %v, or adding %v and removing %v, overlap", p.ISR, p.ELR, p.AddingReplicas, p.RemovingReplicas)
	}
	if p.Leader != NoLeader && !slices.Contains(p.ISR, p.Leader) {
		return fmt.Errorf("leader %d is not in the ISR %v", p.Leader, p.ISR)
	}
	if p.LeaderRecoveryState == Recovering && len(p.ISR) > 1 {
		return fmt.Errorf("leader recovering with ISR %v", p.ISR)
	}
	if p.LeaderRecoveryState != Recovered && p.LeaderRecoveryState != Recovering {
		return fmt.Errorf("leader recovery state %d", p.LeaderRecoveryState)
	}
	if p.LeaderEpoch < 0 || p.PartitionEpoch < 0 {
		return fmt.Errorf("negative epoch: leader %d, partition %d", p.LeaderEpoch, p.PartitionEpoch)
	}
	return nil
}

func hasDuplicate(ids []int32) bool {
	for i, id := range ids {
		if slices.Contains(ids[i+1:], id) {
			return true
		}
	}
	return false
}

// subset reports whether every id of a is in b.
func subset(a, b []int32) bool {
	for _, id := range a {
		if !slices.Contains(b, id) {
			return false
		}
	}
	return true
}

func intersects(a, b []int32) bool {
	for _, id := range a {
		if slices.Contains(b, id) {
			return true
		}
	}
	return false
}

// without returns ids, in order, less drop; always a new slice.
func without(ids []int32, drop ...int32) []int32 {
	out := make([]int32, 0, len(ids))
	for _, id := range ids {
		if !slices.Contains(drop, id) {
			out = append(out, id)
		}
	}
	return out
}
