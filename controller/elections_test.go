package controller

import (
	"errors"
	"fmt"
	"slices"
	"testing"
)

func TestPlanElectLeaders(t *testing.T) {
	leaderless := func(replicas, isr, elr []int32) Partition {
		return Partition{Leader: NoLeader, Replicas: replicas, ISR: isr, ELR: elr, LeaderEpoch: 5, PartitionEpoch: 10}
	}
	for _, tc := range []struct {
		name string
		typ  ElectionType
		p    Partition
		want error
		got  string
	}{
		{"preferred leads already", PreferredElection, pt(1, ids(1, 2), ids(1, 2)), ErrElectionNotNeeded, ""},
		{"preferred in the ISR takes over", PreferredElection, pt(2, ids(1, 2), ids(2, 1)), nil,
			"leader=1 epochs=6/11 replicas=[1 2] isr=[2 1]"},
		{"preferred out of the ISR", PreferredElection, pt(2, ids(1, 2), ids(2)), ErrPreferredLeaderNotAvailable, ""},
		{"preferred fenced", PreferredElection, pt(2, ids(3, 2), ids(2, 3)), ErrPreferredLeaderNotAvailable, ""},
		{"preferred unavailable, leaderless: the next valid replica", PreferredElection, leaderless(ids(3, 2, 1), ids(1, 2), nil), nil,
			"leader=2 epochs=6/11 replicas=[3 2 1] isr=[1 2]"},
		{"unclean with a leader", UncleanElection, pt(2, ids(1, 2), ids(2)), ErrElectionNotNeeded, ""},
		{"unclean, an ELR member is still clean", UncleanElection, leaderless(ids(3, 1, 2), []int32{}, ids(2)), nil,
			"leader=2 epochs=6/11 replicas=[3 1 2] isr=[2]"},
		{"unclean, nobody eligible: first active replica, recovering", UncleanElection, leaderless(ids(3, 2, 1), []int32{}, nil), nil,
			"leader=2 epochs=6/11 replicas=[3 2 1] isr=[2] RECOVERING"},
		{"unclean, nobody active", UncleanElection, leaderless(ids(3), []int32{}, nil), ErrEligibleLeadersNotAvailable, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := replicated(t, 1, 2, 3)
			mustApply(t, s, FenceBrokerRecord{ID: 3, Epoch: 103})
			addTopic(t, s, "t", tc.p)
			results, rs := s.PlanElectLeaders(tc.typ, []TopicPartition{{"t", 0}}, Policy{})
			if len(results) != 1 || !errors.Is(results[0].Err, tc.want) || (tc.want == nil) != (results[0].Err == nil) {
				t.Fatalf("got %+v, want %v", results, tc.want)
			}
			mustApply(t, s, rs...)
			if tc.want != nil {
				if len(rs) != 0 {
					t.Fatalf("records for a failed election: %v", rs)
				}
				return
			}
			if got := descPart(s, "t", 0); got != tc.got {
				t.Errorf("got  %s\nwant %s", got, tc.got)
			}
		})
	}
}

func TestPlanElectLeadersAll(t *testing.T) {
	s := replicated(t, 1, 2)
	addTopic(t, s, "t", pt(1, ids(1, 2), ids(1, 2)), pt(1, ids(2, 1), ids(1, 2)))
	results, rs := s.PlanElectLeaders(PreferredElection, nil, Policy{})
	if len(results) != 1 || results[0].TopicPartition != (TopicPartition{"t", 1}) || results[0].Err != nil || len(rs) != 1 {
		t.Fatalf("all partitions: %+v %v", results, rs)
	}
	results, _ = s.PlanElectLeaders(PreferredElection, []TopicPartition{{"t", 2}, {"u", 0}}, Policy{})
	for _, r := range results {
		if !errors.Is(r.Err, ErrUnknownTopicOrPartition) {
			t.Errorf("%v: %v", r.TopicPartition, r.Err)
		}
	}
}

// TestOnlineElectionOrder: a leader that must change comes from the ISR,
// then the ELR, then the single last known ELR member (recovering), and
// from any replica only where the topic allows unclean elections.
func TestOnlineElectionOrder(t *testing.T) {
	s := replicated(t, 1, 2, 3)
	addTopic(t, s, "isr", pt(1, ids(1, 3, 2), ids(1, 2, 3)))
	addTopic(t, s, "elr", Partition{Leader: 1, Replicas: ids(1, 2, 3), ISR: ids(1), ELR: ids(3), LeaderEpoch: 5, PartitionEpoch: 10})
	addTopic(t, s, "lke", Partition{Leader: NoLeader, Replicas: ids(2, 3), ISR: []int32{}, LastKnownELR: ids(3), LeaderEpoch: 5, PartitionEpoch: 10})
	addTopic(t, s, "none", pt(1, ids(1, 2), ids(1)))
	unclean := "true"
	addTopic(t, s, "unclean", pt(1, ids(1, 2), ids(1)))
	mustApply(t, s, ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "unclean", Name: ConfigUncleanLeaderElection, Value: &unclean})
	mustApply(t, s, FenceBrokerRecord{ID: 3, Epoch: 103})
	rs, err := s.PlanFenceBroker(1, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	// Broker 3 comes back: it is the ELR of "elr" and the last known ELR
	// of "lke".
	_, rs, err = s.PlanBrokerHeartbeat(Heartbeat{BrokerID: 3, BrokerEpoch: 103, MetadataOffset: 200}, nil, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	for topic, want := range map[string]string{
		// 3 comes first in assignment order but was fenced.
		"isr": "leader=2 epochs=6/11 replicas=[1 3 2] isr=[2 3]",
		// 1 stays eligible until the next change sees the ISR at min ISR.
		"elr":     "leader=3 epochs=7/12 replicas=[1 2 3] isr=[3] elr=[1]",
		"lke":     "leader=3 epochs=6/11 replicas=[2 3] isr=[3] RECOVERING",
		"none":    "leader=-1 epochs=6/11 replicas=[1 2] isr=[] elr=[1]",
		"unclean": "leader=2 epochs=6/11 replicas=[1 2] isr=[2] RECOVERING",
	} {
		if got := descPart(s, topic, 0); got != want {
			t.Errorf("%s:\ngot  %s\nwant %s", topic, got, want)
		}
	}
}

func TestPlanLeaderRebalance(t *testing.T) {
	s := replicated(t, 1, 2, 3)
	var parts []Partition
	for i := range 10 {
		p := pt(1, ids(1, 2), ids(1, 2))
		if i < 2 {
			p.Leader = 2 // broker 1 leads 8 of its 10
		}
		parts = append(parts, p)
	}
	parts[1].ISR = ids(2) // cannot go back to 1
	parts = append(parts, pt(3, ids(2, 3), ids(3, 2)))
	addTopic(t, s, "t", parts...)
	for _, tc := range []struct {
		pct  int
		want []TopicPartition
	}{
		// Broker 1: 20% not led; broker 2: 100% of one partition.
		{10, []TopicPartition{{"t", 0}, {"t", 10}}},
		{20, []TopicPartition{{"t", 10}}},
		{100, nil},
	} {
		if got := s.PlanLeaderRebalance(tc.pct); !slices.Equal(got, tc.want) {
			t.Errorf("%d%%: got %v, want %v", tc.pct, got, tc.want)
		}
	}
	mustApply(t, s, FenceBrokerRecord{ID: 1, Epoch: 101})
	if got := s.PlanLeaderRebalance(10); fmt.Sprint(got) != "[{t 10}]" {
		t.Errorf("broker 1 fenced: %v", got)
	}
}

func TestPlanUncleanRecovery(t *testing.T) {
	s := replicated(t, 1, 2)
	leaderless := Partition{Leader: NoLeader, Replicas: ids(1, 2), ISR: []int32{}}
	addTopic(t, s, "a", leaderless, pt(1, ids(1, 2), ids(1)))
	addTopic(t, s, "b", leaderless)
	no := "false"
	mustApply(t, s, ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: "b", Name: ConfigUncleanLeaderElection, Value: &no})
	if got := s.PlanUncleanRecovery(Policy{}); got != nil {
		t.Errorf("unclean off: %v", got)
	}
	if got := fmt.Sprint(s.PlanUncleanRecovery(Policy{UncleanLeaderElection: true})); got != "[{a 0}]" {
		t.Errorf("unclean on, off for b: %s", got)
	}
}
