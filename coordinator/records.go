package coordinator

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/group"
)

// Key versions of __consumer_offsets records. 0-2 are Kafka's; consumer
// (KIP-848) groups are kept as one JSON snapshot per group under a version of
// Sluice's own, far from the range Kafka uses (3-8 for its KIP-848 records),
// so a Kafka tool reading the topic skips it as unknown.
const (
	keyOffsetCommitV0  = 0
	keyOffsetCommit    = 1
	keyGroupMetadata   = 2
	keyConsumerGroupV1 = 0x5300 // "S\x00": Sluice consumer-group snapshot
)

// Value versions written. OffsetCommitValue v3 has the leader epoch and no
// expire timestamp; GroupMetadataValue v3 has static members. Both are what
// Kafka 2.3-3.x wrote, readable by every Kafka tool.
const (
	offsetValueVersion = 3
	groupValueVersion  = 3
)

// offset is one committed offset.
type offset struct {
	Offset      int64
	LeaderEpoch int32
	Metadata    string
	CommitTime  time.Time
}

func offsetRecord(groupID, topic string, partition int32, o *offset) Record {
	k := kmsg.OffsetCommitKey{Version: keyOffsetCommit, Group: groupID, Topic: topic, Partition: partition}
	r := Record{Key: k.AppendTo(nil)}
	if o != nil {
		v := kmsg.OffsetCommitValue{
			Version:         offsetValueVersion,
			Offset:          o.Offset,
			LeaderEpoch:     o.LeaderEpoch,
			Metadata:        o.Metadata,
			CommitTimestamp: o.CommitTime.UnixMilli(),
		}
		r.Value = v.AppendTo(nil)
	}
	return r
}

func groupKey(version int16, groupID string) []byte {
	k := kmsg.GroupMetadataKey{Version: version, Group: groupID}
	return k.AppendTo(nil)
}

// classicRecord is a classic group's GroupMetadataValue, or a tombstone
// when the group is Dead.
func classicRecord(g *group.Group, now time.Time) Record {
	r := Record{Key: groupKey(keyGroupMetadata, g.ID())}
	if g.State() == group.Dead {
		return r
	}
	s := g.Snapshot()
	v := kmsg.GroupMetadataValue{
		Version:               groupValueVersion,
		ProtocolType:          s.ProtocolType,
		Generation:            s.Generation,
		CurrentStateTimestamp: now.UnixMilli(),
	}
	if s.Protocol != "" {
		v.Protocol = kmsg.StringPtr(s.Protocol)
	}
	if s.Leader != "" {
		v.Leader = kmsg.StringPtr(s.Leader)
	}
	for _, m := range s.Members {
		vm := kmsg.GroupMetadataValueMember{
			MemberID:               m.MemberID,
			ClientID:               m.ClientID,
			ClientHost:             m.ClientHost,
			RebalanceTimeoutMillis: int32(m.RebalanceTimeout.Milliseconds()),
			SessionTimeoutMillis:   int32(m.SessionTimeout.Milliseconds()),
			Subscription:           m.Metadata,
			Assignment:             m.Assignment,
		}
		if m.InstanceID != "" {
			vm.InstanceID = kmsg.StringPtr(m.InstanceID)
		}
		v.Members = append(v.Members, vm)
	}
	r.Value = v.AppendTo(nil)
	return r
}

// consumerRecord is a KIP-848 group's snapshot, or a tombstone when Dead.
func consumerRecord(g *group.ConsumerGroup) (Record, error) {
	r := Record{Key: groupKey(keyConsumerGroupV1, g.ID())}
	if g.State() == "Dead" {
		return r, nil
	}
	b, err := json.Marshal(g.Snapshot())
	if err != nil {
		return r, fmt.Errorf("group %s: encoding snapshot: %w", g.ID(), err)
	}
	r.Value = b
	return r, nil
}

// loaded is what replay learned about one group.
type loaded struct {
	offsets  map[string]map[int32]offset
	classic  *group.Snapshot
	consumer *group.ConsumerSnapshot
}

// replayer applies records in log order; the last record of a key wins.
type replayer struct {
	groups map[string]*loaded
}

func (r *replayer) get(id string) *loaded {
	l := r.groups[id]
	if l == nil {
		l = &loaded{offsets: map[string]map[int32]offset{}}
		r.groups[id] = l
	}
	return l
}

// apply decodes one record. Records of an unknown key version (written by a
// newer Sluice, or by a Kafka whose log was copied in) are skipped: they
// cannot be understood, and refusing to start would be worse.
func (r *replayer) apply(rec Record) (skipped bool, err error) {
	if len(rec.Key) < 2 {
		return false, fmt.Errorf("key of %d bytes", len(rec.Key))
	}
	switch version := int16(binary.BigEndian.Uint16(rec.Key)); version {
	case keyOffsetCommitV0, keyOffsetCommit:
		var k kmsg.OffsetCommitKey
		if err := k.ReadFrom(rec.Key); err != nil {
			return false, fmt.Errorf("offset commit key: %w", err)
		}
		l := r.get(k.Group)
		if rec.Value == nil {
			delete(l.offsets[k.Topic], k.Partition)
			return false, nil
		}
		var v kmsg.OffsetCommitValue
		if err := v.ReadFrom(rec.Value); err != nil {
			return false, fmt.Errorf("group %s %s/%d: offset commit value: %w", k.Group, k.Topic, k.Partition, err)
		}
		if l.offsets[k.Topic] == nil {
			l.offsets[k.Topic] = map[int32]offset{}
		}
		epoch := v.LeaderEpoch
		if v.Version < 3 {
			epoch = -1
		}
		l.offsets[k.Topic][k.Partition] = offset{Offset: v.Offset, LeaderEpoch: epoch, Metadata: v.Metadata, CommitTime: time.UnixMilli(v.CommitTimestamp)}
	case keyGroupMetadata:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(rec.Key); err != nil {
			return false, fmt.Errorf("group metadata key: %w", err)
		}
		l := r.get(k.Group)
		l.classic, l.consumer = nil, nil
		if rec.Value == nil {
			return false, nil
		}
		var v kmsg.GroupMetadataValue
		if err := v.ReadFrom(rec.Value); err != nil {
			return false, fmt.Errorf("group %s: group metadata value: %w", k.Group, err)
		}
		s := &group.Snapshot{Generation: v.Generation, ProtocolType: v.ProtocolType}
		if v.Protocol != nil {
			s.Protocol = *v.Protocol
		}
		if v.Leader != nil {
			s.Leader = *v.Leader
		}
		for _, m := range v.Members {
			sm := group.SnapshotMember{
				MemberID:         m.MemberID,
				ClientID:         m.ClientID,
				ClientHost:       m.ClientHost,
				SessionTimeout:   time.Duration(m.SessionTimeoutMillis) * time.Millisecond,
				RebalanceTimeout: time.Duration(m.RebalanceTimeoutMillis) * time.Millisecond,
				// Copies: the value aliases the read buffer, which
				// the next read of the log overwrites.
				Metadata:   bytes.Clone(m.Subscription),
				Assignment: bytes.Clone(m.Assignment),
			}
			if sm.RebalanceTimeout < 0 {
				sm.RebalanceTimeout = sm.SessionTimeout
			}
			if m.InstanceID != nil {
				sm.InstanceID = *m.InstanceID
			}
			s.Members = append(s.Members, sm)
		}
		l.classic = s
	case keyConsumerGroupV1:
		var k kmsg.GroupMetadataKey
		if err := k.ReadFrom(rec.Key); err != nil {
			return false, fmt.Errorf("consumer group key: %w", err)
		}
		l := r.get(k.Group)
		l.classic, l.consumer = nil, nil
		if rec.Value == nil {
			return false, nil
		}
		s := new(group.ConsumerSnapshot)
		if err := json.Unmarshal(rec.Value, s); err != nil {
			return false, fmt.Errorf("group %s: consumer group snapshot: %w", k.Group, err)
		}
		l.consumer = s
	default:
		return true, nil
	}
	return false, nil
}
