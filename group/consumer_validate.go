package group

// ValidateCommit checks an OffsetCommit (v9+) from memberID at memberEpoch
// for one partition, as KIP-848 and KIP-1251 do:
//
//   - memberID "" with a negative epoch (an admin or a consumer outside group
//     management) may commit only while the group has no members, else
//     UNKNOWN_MEMBER_ID;
//   - an unknown member gets UNKNOWN_MEMBER_ID;
//   - an epoch newer than the member's gets STALE_MEMBER_EPOCH;
//   - otherwise the partition must be held by the member (assigned or pending
//     revocation) since an epoch no newer than memberEpoch, else
//     STALE_MEMBER_EPOCH. So a member that missed an epoch bump may still
//     commit what it owns, and no zombie commits a partition it lost.
func (g *ConsumerGroup) ValidateCommit(memberID string, memberEpoch int32, topic string, partition int32) error {
	if memberID == "" && memberEpoch < 0 && len(g.members) == 0 {
		return nil
	}
	m := g.members[memberID]
	if m == nil {
		return errUnknownMember
	}
	if memberEpoch > m.epoch || memberEpoch < 0 {
		return errStaleMemberEpoch
	}
	ep, ok := g.heldEpoch(m, topic, partition)
	if !ok || ep > memberEpoch {
		return errStaleMemberEpoch
	}
	return nil
}

// heldEpoch returns the assignment epoch of a partition m holds, found by
// topic name.
func (g *ConsumerGroup) heldEpoch(m *cmember, topic string, partition int32) (int32, bool) {
	look := func(id [16]byte) (int32, bool) {
		k := tpKey{id, partition}
		if ep, ok := m.assigned[k]; ok {
			return ep, true
		}
		ep, ok := m.revoking[k]
		return ep, ok
	}
	if t, ok := g.meta[topic]; ok {
		if ep, ok := look(t.ID); ok {
			return ep, true
		}
	}
	// The member may hold a topic it no longer subscribes to.
	for _, held := range []map[tpKey]int32{m.assigned, m.revoking} {
		for k, ep := range held {
			if k.p == partition && g.topicName(k.id) == topic {
				return ep, true
			}
		}
	}
	return 0, false
}

// ValidateFetch checks an OffsetFetch (v9+) that names a member: an unknown
// member gets UNKNOWN_MEMBER_ID and an epoch other than the member's current
// one STALE_MEMBER_EPOCH. An empty memberID is not checked.
func (g *ConsumerGroup) ValidateFetch(memberID string, memberEpoch int32) error {
	if memberID == "" {
		return nil
	}
	m := g.members[memberID]
	if m == nil {
		return errUnknownMember
	}
	if memberEpoch != m.epoch {
		return errStaleMemberEpoch
	}
	return nil
}
