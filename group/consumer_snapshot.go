package group

import (
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// ConsumerSnapshot is everything needed to rebuild a ConsumerGroup after a
// broker restart (what Kafka keeps in __consumer_offsets records). Sessions,
// revocation deadlines and what was last sent to each member are not in it:
// they restart when the group is restored. Snapshot is canonical: empty
// lists are nil and everything is sorted, so equal groups give equal
// snapshots.
type ConsumerSnapshot struct {
	Epoch           int32 `json:"epoch"`
	AssignmentEpoch int32 `json:"assignment_epoch"`
	// Topics is the metadata of the subscribed topics as the group last
	// resolved it, so a restored group bumps its epoch only if they changed
	// meanwhile.
	Topics  []ConsumerSnapshotTopic  `json:"topics,omitempty"`
	Members []ConsumerSnapshotMember `json:"members,omitempty"`
}

// ConsumerSnapshotTopic is one subscribed topic.
type ConsumerSnapshotTopic struct {
	Name       string   `json:"name"`
	ID         [16]byte `json:"id"`
	Partitions int32    `json:"partitions"`
}

// ConsumerSnapshotPartitions is a set of partitions of one topic. Epochs, when
// set, holds the epoch at which each partition (same index) was assigned to
// the member (KIP-1251).
type ConsumerSnapshotPartitions struct {
	TopicID    [16]byte `json:"topic_id"`
	Partitions []int32  `json:"partitions"`
	Epochs     []int32  `json:"epochs,omitempty"`
}

// ConsumerSnapshotMember is one member.
type ConsumerSnapshotMember struct {
	MemberID      string `json:"member_id"`
	InstanceID    string `json:"instance_id,omitempty"`
	RackID        string `json:"rack_id,omitempty"`
	ClientID      string `json:"client_id"`
	ClientHost    string `json:"client_host"`
	MemberEpoch   int32  `json:"member_epoch"`
	PreviousEpoch int32  `json:"previous_epoch"`
	// State is "stable", "unrevoked_partitions" or "unreleased_partitions".
	State                  string   `json:"state"`
	SubscribedTopicNames   []string `json:"subscribed_topic_names,omitempty"`
	SubscribedTopicRegex   string   `json:"subscribed_topic_regex,omitempty"`
	ServerAssignor         string   `json:"server_assignor,omitempty"`
	RebalanceTimeoutMillis int64    `json:"rebalance_timeout_ms"`
	// Assigned and PendingRevocation carry assignment epochs; Target does
	// not.
	Assigned          []ConsumerSnapshotPartitions `json:"assigned,omitempty"`
	PendingRevocation []ConsumerSnapshotPartitions `json:"pending_revocation,omitempty"`
	Target            []ConsumerSnapshotPartitions `json:"target,omitempty"`
}

// Snapshot returns the group's persistent state.
func (g *ConsumerGroup) Snapshot() ConsumerSnapshot {
	s := ConsumerSnapshot{Epoch: g.epoch, AssignmentEpoch: g.assignmentEpoch}
	for _, name := range sortedNames(g.meta) {
		t := g.meta[name]
		s.Topics = append(s.Topics, ConsumerSnapshotTopic{Name: name, ID: t.ID, Partitions: t.Partitions})
	}
	for _, m := range g.sortedMembers() {
		s.Members = append(s.Members, ConsumerSnapshotMember{
			MemberID:               m.id,
			InstanceID:             m.instanceID,
			RackID:                 m.rackID,
			ClientID:               m.clientID,
			ClientHost:             m.clientHost,
			MemberEpoch:            m.epoch,
			PreviousEpoch:          m.prevEpoch,
			State:                  m.state.String(),
			SubscribedTopicNames:   slices.Clone(m.names),
			SubscribedTopicRegex:   m.regex,
			ServerAssignor:         m.assignor,
			RebalanceTimeoutMillis: m.rebalanceTimeout.Milliseconds(),
			Assigned:               snapshotEpochs(m.assigned),
			PendingRevocation:      snapshotEpochs(m.revoking),
			Target:                 snapshotSet(g.target[m.id]),
		})
	}
	return s
}

func snapshotEpochs(held map[tpKey]int32) []ConsumerSnapshotPartitions {
	ps := make([]tpKey, 0, len(held))
	for p := range held {
		ps = append(ps, p)
	}
	sortTPs(ps)
	out := snapshotSorted(ps)
	for i := range out {
		for _, p := range out[i].Partitions {
			out[i].Epochs = append(out[i].Epochs, held[tpKey{out[i].TopicID, p}])
		}
	}
	return out
}

func snapshotSet(s tpSet) []ConsumerSnapshotPartitions { return snapshotSorted(s.sorted()) }

func snapshotSorted(ps []tpKey) []ConsumerSnapshotPartitions {
	var out []ConsumerSnapshotPartitions
	for _, tp := range groupByTopic(ps) {
		out = append(out, ConsumerSnapshotPartitions{TopicID: tp.id, Partitions: tp.parts})
	}
	return out
}

// RestoreConsumerGroup rebuilds a group from a snapshot. Every member's
// session (re)starts at now, and so does the revocation deadline of a member
// that was revoking. The first call with a TopicImage re-resolves the
// subscriptions and bumps the epoch only if the subscribed topics changed.
func RestoreConsumerGroup(id string, cfg ConsumerConfig, s ConsumerSnapshot, now time.Time) *ConsumerGroup {
	g := NewConsumerGroup(id, cfg)
	g.epoch, g.assignmentEpoch = s.Epoch, s.AssignmentEpoch
	for _, t := range s.Topics {
		g.meta[t.Name] = TopicMeta{Name: t.Name, ID: t.ID, Partitions: t.Partitions}
		g.names[t.ID] = t.Name
	}
	for _, sm := range s.Members {
		m := newCMember(sm.MemberID)
		m.instanceID, m.rackID = sm.InstanceID, sm.RackID
		m.clientID, m.clientHost = sm.ClientID, sm.ClientHost
		m.epoch, m.prevEpoch = sm.MemberEpoch, sm.PreviousEpoch
		m.state = parseMemberState(sm.State)
		m.names = slices.Clone(sm.SubscribedTopicNames)
		m.regex, m.assignor = sm.SubscribedTopicRegex, sm.ServerAssignor
		m.rebalanceTimeout = time.Duration(sm.RebalanceTimeoutMillis) * time.Millisecond
		restoreEpochs(m.assigned, sm.Assigned, m.epoch)
		restoreEpochs(m.revoking, sm.PendingRevocation, m.epoch)
		for p := range m.assigned {
			g.owners[p] = m.id
		}
		for p := range m.revoking {
			g.owners[p] = m.id
		}
		m.lastSeen = now
		if m.state == msUnrevoked {
			m.revokeBy = now.Add(m.rebalanceTimeout)
		}
		g.members[m.id] = m
		if m.instanceID != "" {
			g.instances[m.instanceID] = m.id
		}
		t := tpSet{}
		for _, sp := range sm.Target {
			for _, p := range sp.Partitions {
				t[tpKey{sp.TopicID, p}] = struct{}{}
			}
		}
		g.target[m.id] = t
	}
	// Resolve the subscriptions against the saved metadata; as it is the
	// metadata they resolved to, nothing changes.
	g.subsDirty = true
	g.refresh(nil)
	g.version = 0
	return g
}

func restoreEpochs(into map[tpKey]int32, from []ConsumerSnapshotPartitions, def int32) {
	for _, sp := range from {
		for i, p := range sp.Partitions {
			ep := max(def, 0)
			if i < len(sp.Epochs) {
				ep = sp.Epochs[i]
			}
			into[tpKey{sp.TopicID, p}] = ep
		}
	}
}

func sortedNames[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}

// authorizedGroupOps is the bitfield of the operations a group supports
// (READ, DELETE, DESCRIBE, DESCRIBE_CONFIGS, ALTER_CONFIGS), which Kafka
// reports when every operation is allowed.
const authorizedGroupOps = 1<<3 | 1<<6 | 1<<8 | 1<<10 | 1<<11

// Describe answers one group of a ConsumerGroupDescribe. Members are sorted
// by member id and assignments by topic name. includeAuthorizedOps reports
// every operation as allowed; a coordinator enforcing ACLs overwrites the
// field. A Dead group is reported as GROUP_ID_NOT_FOUND.
func (g *ConsumerGroup) Describe(topics *TopicImage, includeAuthorizedOps bool) kmsg.ConsumerGroupDescribeResponseGroup {
	d := kmsg.NewConsumerGroupDescribeResponseGroup()
	d.Group = g.id
	d.State = g.State()
	if g.dead {
		d.ErrorCode = kerr.GroupIDNotFound.Code
		msg := "group " + g.id + " is dead"
		d.ErrorMessage = &msg
		return d
	}
	d.Epoch, d.AssignmentEpoch = g.epoch, g.assignmentEpoch
	d.AssignorName = g.preferredAssignor()
	if includeAuthorizedOps {
		d.AuthorizedOperations = authorizedGroupOps
	}
	var byID map[[16]byte]string
	if topics != nil {
		byID = make(map[[16]byte]string, len(topics.Topics))
		for name, t := range topics.Topics {
			byID[t.ID] = name
		}
	}
	name := func(id [16]byte) string {
		if n, ok := byID[id]; ok {
			return n
		}
		return g.topicName(id)
	}
	assignment := func(s tpSet) kmsg.Assignment {
		a := kmsg.NewAssignment()
		a.TopicPartitions = []kmsg.AssignmentTopicPartition{}
		for _, tp := range groupByTopic(s.sorted()) {
			t := kmsg.NewAssignmentTopicPartition()
			t.TopicID, t.Topic, t.Partitions = tp.id, name(tp.id), tp.parts
			a.TopicPartitions = append(a.TopicPartitions, t)
		}
		slices.SortStableFunc(a.TopicPartitions, func(x, y kmsg.AssignmentTopicPartition) int {
			switch {
			case x.Topic < y.Topic:
				return -1
			case x.Topic > y.Topic:
				return 1
			}
			return 0
		})
		return a
	}
	for _, m := range g.sortedMembers() {
		dm := kmsg.NewConsumerGroupDescribeResponseGroupMember()
		dm.MemberID = m.id
		dm.InstanceID = optString(m.instanceID)
		dm.RackID = optString(m.rackID)
		dm.MemberEpoch = m.epoch
		dm.ClientID, dm.ClientHost = m.clientID, m.clientHost
		dm.SubscribedTopics = append([]string{}, m.names...)
		dm.SubscribedTopicRegex = optString(m.regex)
		dm.Assignment = assignment(m.assignedSet())
		dm.TargetAssignment = assignment(g.target[m.id])
		dm.MemberType = 1 // a consumer-protocol member (v1+)
		d.Members = append(d.Members, dm)
	}
	return d
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
