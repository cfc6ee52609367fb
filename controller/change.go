package controller

import "slices"

// election is how a change picks a leader when it must (Kafka's
// PartitionChangeBuilder.Election).
type election int8

const (
	// electOnline keeps a valid leader, else takes the first valid
	// replica in assignment order: from the ISR, or from the ELR when the
	// ISR is empty, or the single last-known ELR member as a last resort.
	electOnline election = iota
	// electPreferred tries the first replica first, then as electOnline.
	electPreferred
	// electUnclean is electOnline, then any acceptable replica (data may
	// be lost: the new leader's ISR is itself alone, RECOVERING).
	electUnclean
)

// change computes the PartitionChangeRecord that takes one partition to a
// target (ISR, replicas, reassignment, recovery state), with the rules
// every such change must keep, in Kafka's order: complete a reassignment
// the ISR now covers, track the ELR, elect a leader if the current one is
// no longer valid, bump the leader epoch when replicas are removed. It is
// the single place where partition changes are planned, so fencing,
// shutdown, AlterPartition, elections and reassignment all keep the same
// rules.
type change struct {
	s        *State
	t        *Topic
	p        Partition // as it is
	election election
	minISR   int
	// exclude is never an acceptable leader (the broker being fenced or
	// shutting down); include is acceptable even while still fenced (the
	// broker being unfenced); uncleanShutdown is neither acceptable nor
	// kept in the ISR or ELR. NoLeader when unused.
	exclude, include, uncleanShutdown int32
	// epochs are broker epochs the request gave for ISR members.
	epochs map[int32]int64

	// The target, initialized to the partition as it is.
	isr, replicas, adding, removing, elr, lastKnownELR []int32
	recovery                                           LeaderRecoveryState
}

func (s *State) newChange(t *Topic, p Partition, pol Policy) *change {
	c := &change{s: s, t: t, p: p, election: electOnline, minISR: pol.MinISR(t, p),
		exclude: NoLeader, include: NoLeader, uncleanShutdown: NoLeader,
		isr: slices.Clone(p.ISR), replicas: slices.Clone(p.Replicas),
		adding: slices.Clone(p.AddingReplicas), removing: slices.Clone(p.RemovingReplicas),
		elr: slices.Clone(p.ELR), lastKnownELR: slices.Clone(p.LastKnownELR), recovery: p.LeaderRecoveryState}
	if pol.Unclean(t) {
		c.election = electUnclean
	}
	return c
}

// acceptable reports whether broker id may lead: registered, unfenced,
// not shutting down (or the broker being unfenced), and not excluded.
func (c *change) acceptable(id int32) bool {
	if id < 0 || id == c.exclude || id == c.uncleanShutdown {
		return false
	}
	if id == c.include {
		return true
	}
	b, ok := c.s.Brokers[id]
	return ok && b.Active()
}

// valid reports whether id may become (or stay) leader cleanly: in the
// target ISR, or in the ELR when the ISR is empty, and acceptable.
func (c *change) valid(id int32) bool {
	in := slices.Contains(c.isr, id) || len(c.isr) == 0 && slices.Contains(c.elr, id)
	return in && c.acceptable(id)
}

// build returns the record that makes the change, and false when there is
// nothing to change.
func (c *change) build() (PartitionChangeRecord, bool) {
	rec := PartitionChangeRecord{TopicID: c.t.ID, Partition: c.p.Index, Leader: NoLeaderChange}
	c.completeReassignment()
	c.trackELR()
	unclean := c.elect(&rec)
	// Replicas removed: their fetches must be fenced by a new leader
	// epoch even though the leader stays.
	if rec.Leader == NoLeaderChange && !subset(c.p.Replicas, c.replicas) {
		rec.Leader = c.p.Leader
	}
	if unclean {
		// Whoever was eligible before may now be behind the new leader.
		c.elr, c.lastKnownELR = nil, nil
	}
	if !slices.Equal(c.elr, c.p.ELR) {
		rec.ELR = nonNil(c.elr)
	}
	if !slices.Equal(c.lastKnownELR, c.p.LastKnownELR) {
		rec.LastKnownELR = nonNil(c.lastKnownELR)
	}
	if rec.ISR == nil && !slices.Equal(c.isr, c.p.ISR) {
		rec.ISR = nonNil(c.isr)
	}
	if rec.ISR != nil {
		rec.ISREpochs = c.epochsOf(rec.ISR)
	}
	if !slices.Equal(c.replicas, c.p.Replicas) {
		rec.Replicas = slices.Clone(c.replicas)
	}
	if !slices.Equal(c.removing, c.p.RemovingReplicas) {
		rec.RemovingReplicas = nonNil(c.removing)
	}
	if !slices.Equal(c.adding, c.p.AddingReplicas) {
		rec.AddingReplicas = nonNil(c.adding)
	}
	if c.recovery != c.p.LeaderRecoveryState {
		v := c.recovery
		rec.LeaderRecoveryState = &v
	}
	noop := rec.Leader == NoLeaderChange && rec.ISR == nil && rec.Replicas == nil && rec.ELR == nil &&
		rec.LastKnownELR == nil && rec.AddingReplicas == nil && rec.RemovingReplicas == nil && rec.LeaderRecoveryState == nil
	return rec, !noop
}

// completeReassignment finishes a reassignment once the ISR, less the
// replicas being removed, holds every target replica
// (PartitionReassignmentReplicas.maybeCompleteReassignment).
func (c *change) completeReassignment() {
	if len(c.adding) == 0 && len(c.removing) == 0 {
		return
	}
	isr := without(c.isr, c.removing...)
	replicas := without(c.replicas, c.removing...)
	if len(isr) == 0 || len(replicas) == 0 || !subset(replicas, isr) {
		return
	}
	c.isr, c.replicas, c.adding, c.removing = isr, replicas, nil, nil
}

// trackELR keeps KIP-966's eligible leaders: while the ISR is below min
// ISR, replicas that leave it (and earlier ELR members) hold every
// committed record (the high watermark does not move below min ISR), so
// they stay eligible, unless they shut down uncleanly. At or above min ISR
// both lists are cleared (PartitionChangeBuilder.maybePopulateTargetElr).
func (c *change) trackELR() {
	if len(c.isr) >= c.minISR {
		c.elr, c.lastKnownELR = nil, nil
		return
	}
	candidates := append(slices.Clone(c.elr), c.p.ISR...)
	var elr, known []int32
	// Replica order keeps the lists deterministic and drops replicas a
	// completed reassignment removed.
	for _, id := range c.replicas {
		switch {
		case slices.Contains(c.isr, id):
		case slices.Contains(candidates, id) && id != c.uncleanShutdown:
			elr = append(elr, id)
		case slices.Contains(candidates, id) || slices.Contains(c.lastKnownELR, id):
			known = append(known, id)
		}
	}
	c.elr, c.lastKnownELR = elr, known
}

// elect sets rec.Leader when the leader must change, and reports whether
// the election was unclean.
func (c *change) elect(rec *PartitionChangeRecord) bool {
	leader, unclean := c.electLeader()
	if leader == c.p.Leader {
		return false
	}
	if slices.Contains(c.elr, leader) {
		c.isr = []int32{leader}
		c.elr = without(c.elr, leader)
	}
	rec.Leader = leader
	if unclean {
		c.isr = []int32{leader}
		rec.ISR = []int32{leader}
		c.recovery = Recovering
	}
	return unclean
}

func (c *change) electLeader() (leader int32, unclean bool) {
	if c.election == electPreferred && len(c.replicas) > 0 && c.valid(c.replicas[0]) {
		return c.replicas[0], false
	}
	if c.valid(c.p.Leader) {
		return c.p.Leader, false
	}
	for _, id := range c.replicas {
		if c.valid(id) {
			return id, false
		}
	}
	// The last known leader: nothing is left in the ISR or ELR and one
	// replica alone was last eligible (a single replica that shut down
	// uncleanly). It may have lost its unflushed tail, so it recovers.
	if len(c.isr) == 0 && len(c.elr) == 0 && len(c.lastKnownELR) == 1 && c.acceptable(c.lastKnownELR[0]) {
		return c.lastKnownELR[0], true
	}
	if c.election == electUnclean {
		for _, id := range c.replicas {
			if c.acceptable(id) {
				return id, true
			}
		}
	}
	return NoLeader, false
}

// epochsOf returns the broker epoch of each ISR member: the one the
// request gave, else the one recorded for a member that stays, else its
// registration's.
func (c *change) epochsOf(isr []int32) []int64 {
	out := make([]int64, len(isr))
	for i, id := range isr {
		if e, ok := c.epochs[id]; ok && e >= 0 {
			out[i] = e
			continue
		}
		if j := slices.Index(c.p.ISR, id); j >= 0 && j < len(c.p.ISREpochs) && c.p.ISREpochs[j] >= 0 {
			out[i] = c.p.ISREpochs[j]
			continue
		}
		out[i] = -1
		if b, ok := c.s.Brokers[id]; ok {
			out[i] = b.Epoch
		}
	}
	return out
}

// nonNil makes an empty list non-nil, so the record empties the field
// instead of leaving it alone.
func nonNil(ids []int32) []int32 {
	if ids == nil {
		return []int32{}
	}
	return slices.Clone(ids)
}
