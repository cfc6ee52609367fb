package group

import "time"

// Snapshot is the part of a classic group that survives a coordinator
// restart; it holds what Kafka's GroupMetadataValue record holds.
type Snapshot struct {
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	Members      []SnapshotMember
}

// SnapshotMember is one member of a Snapshot. Only the metadata of the chosen
// protocol is kept, as in Kafka.
type SnapshotMember struct {
	MemberID         string
	InstanceID       string
	ClientID         string
	ClientHost       string
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	Metadata         []byte
	Assignment       []byte
}

// Snapshot returns the group's persistent state.
func (g *Group) Snapshot() Snapshot {
	s := Snapshot{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Leader:       g.leader,
	}
	for _, m := range g.Members() {
		s.Members = append(s.Members, SnapshotMember{
			MemberID:         m.MemberID,
			InstanceID:       m.InstanceID,
			ClientID:         m.ClientID,
			ClientHost:       m.ClientHost,
			SessionTimeout:   m.SessionTimeout,
			RebalanceTimeout: m.RebalanceTimeout,
			Metadata:         m.Metadata,
			Assignment:       m.Assignment,
		})
	}
	return s
}

// Restore rebuilds a group from a Snapshot: Stable when it has members, whose
// sessions start at now (they keep their assignment if they heartbeat in
// time), Empty otherwise.
func Restore(id string, cfg Config, s Snapshot, now time.Time) *Group {
	g := New(id, cfg)
	g.generation = s.Generation
	// An empty group keeps its protocol type too: ListGroups reports an
	// emptied consumer group as "consumer", before a restart and after.
	g.protocolType, g.protocol = s.ProtocolType, s.Protocol
	if len(s.Members) == 0 {
		return g
	}
	for _, sm := range s.Members {
		g.seq++
		m := &member{
			id:               sm.MemberID,
			instanceID:       sm.InstanceID,
			clientID:         sm.ClientID,
			clientHost:       sm.ClientHost,
			seq:              g.seq,
			sessionTimeout:   sm.SessionTimeout,
			rebalanceTimeout: sm.RebalanceTimeout,
			protocols:        []Protocol{{Name: s.Protocol, Metadata: sm.Metadata}},
			assignment:       sm.Assignment,
			lastSeen:         now,
			synced:           true,
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.instances[m.instanceID] = m.id
		}
	}
	g.leader = s.Leader
	if g.members[g.leader] == nil {
		g.leader = g.ordered()[0].id
	}
	g.state = Stable
	return g
}

// ValidateCommit checks that an OffsetCommit may write offsets for this
// group, in Kafka's order. A commit with no member and a negative generation
// comes from an admin tool or a consumer that assigns partitions itself; it
// is accepted only while the group has no members. During
// PreparingRebalance a current member may still commit (it commits what it
// consumed before rejoining); during CompletingRebalance it must wait for its
// assignment.
func (g *Group) ValidateCommit(memberID, instanceID string, generation int32) error {
	if g.state == Dead {
		return errCoordinatorNotAvailable
	}
	if generation < 0 && len(g.members) == 0 {
		return nil
	}
	if generation < 0 && memberID == "" && instanceID == "" {
		return errUnknownMember
	}
	if _, err := g.validate(memberID, instanceID, generation); err != nil {
		return err
	}
	if g.state == CompletingRebalance {
		return errRebalanceInProgress
	}
	return nil
}
