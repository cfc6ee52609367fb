package controller

import (
	"fmt"
	"testing"
)

// Helpers for the replication decision tests: a State built record by
// record, and a one-line rendering of a partition to compare against.

// incarnation is broker id's test incarnation; run tells restarts apart.
func incarnation(id int32, run byte) IncarnationID { return IncarnationID{0: byte(id), 1: run, 15: 1} }

// replicated registers unfenced brokers, broker id at epoch 100+id.
func replicated(t *testing.T, ids ...int32) *State {
	t.Helper()
	s := NewState("c")
	for _, id := range ids {
		mustApply(t, s, RegisterBrokerRecord{BrokerID: id, BrokerEpoch: 100 + int64(id), IncarnationID: incarnation(id, 0)})
	}
	return s
}

// addTopic creates topic name with partitions in exactly the given states.
func addTopic(t *testing.T, s *State, name string, parts ...Partition) *Topic {
	t.Helper()
	id := TopicID{0: byte(len(s.Topics) + 1), 15: 7}
	mustApply(t, s, TopicRecord{Name: name, ID: id})
	for i, p := range parts {
		mustApply(t, s, PartitionRecord{TopicID: id, Partition: int32(i), Replicas: p.Replicas, ISR: p.ISR, Leader: p.Leader,
			LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ELR: p.ELR, LastKnownELR: p.LastKnownELR,
			LeaderRecoveryState: p.LeaderRecoveryState, AddingReplicas: p.AddingReplicas, RemovingReplicas: p.RemovingReplicas})
	}
	return s.Topics[name]
}

// pt is a partition led by leader with replicas and ISR, at epochs 5/10.
func pt(leader int32, replicas, isr []int32) Partition {
	return Partition{Leader: leader, Replicas: replicas, ISR: isr, LeaderEpoch: 5, PartitionEpoch: 10}
}

func ids(v ...int32) []int32 { return v }

// desc renders a partition's replication state on one line; empty lists
// and zero values are left out.
func desc(p Partition) string {
	s := fmt.Sprintf("leader=%d epochs=%d/%d replicas=%v isr=%v", p.Leader, p.LeaderEpoch, p.PartitionEpoch, p.Replicas, p.ISR)
	for _, f := range []struct {
		name string
		ids  []int32
	}{{"elr", p.ELR}, {"lke", p.LastKnownELR}, {"adding", p.AddingReplicas}, {"removing", p.RemovingReplicas}} {
		if len(f.ids) > 0 {
			s += fmt.Sprintf(" %s=%v", f.name, f.ids)
		}
	}
	if p.LeaderRecoveryState == Recovering {
		s += " RECOVERING"
	}
	return s
}

func descPart(s *State, topic string, i int32) string { return desc(s.Topics[topic].Partitions[i]) }

// brokerDesc renders a broker's registration state.
func brokerDesc(b *Broker) string {
	s := fmt.Sprintf("epoch=%d", b.Epoch)
	if b.Fenced {
		s += " fenced"
	}
	if b.InControlledShutdown {
		s += " shutting-down"
	}
	return s
}
