package controller

import (
	"fmt"
	"testing"
)

// TestUncleanElectionThenRecovery walks KIP-704 through the planners: an
// unclean election leaves the partition RECOVERING with the leader alone;
// the leader may not add followers until it has sent RECOVERED; then it
// may, and a later clean leader change keeps RECOVERED.
func TestUncleanElectionThenRecovery(t *testing.T) {
	s := replicated(t, 1, 2, 3)
	// ISR [1]; broker 1 fenced: leaderless, its only eligible leader fenced.
	addTopic(t, s, "u", pt(1, ids(1, 2, 3), ids(1)))
	rs, err := s.PlanFenceBroker(1, Policy{})
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	if got := descPart(s, "u", 0); got != "leader=-1 epochs=6/11 replicas=[1 2 3] isr=[] elr=[1]" {
		t.Fatalf("after fencing the last ISR member: %s", got)
	}
	id := s.Topics["u"].ID
	steps := []struct {
		name string
		do   func() (string, error)
		want string
	}{
		{"unclean election: broker 2 alone, RECOVERING", func() (string, error) {
			res, rs := s.PlanElectLeaders(UncleanElection, []TopicPartition{{"u", 0}}, Policy{})
			mustApply(t, s, rs...)
			return descPart(s, "u", 0), res[0].Err
		}, "leader=2 epochs=7/12 replicas=[1 2 3] isr=[2] RECOVERING"},
		{"adding a follower while RECOVERING is refused", func() (string, error) {
			it := AlterPartitionItem{TopicID: id, Partition: 0, LeaderEpoch: 7, PartitionEpoch: 12, NewISR: members(2, 3), LeaderRecoveryState: Recovering}
			return alter(t, s, 2, it)
		}, "invalid request"},
		{"the leader's expansion becomes the recovery step", func() (string, error) {
			p := s.Topics["u"].Partitions[0]
			it, recovery := LeaderProposal(p, 2, AlterPartitionItem{TopicID: id, Partition: 0, LeaderEpoch: 7, PartitionEpoch: 12, NewISR: members(2, 3)})
			if !recovery || fmt.Sprint(it.NewISR) != "[{2 102}]" || it.LeaderRecoveryState != Recovered {
				t.Errorf("shaped proposal %+v, recovery=%v; want [{2 102}] RECOVERED, recovery", it, recovery)
			}
			return alter(t, s, 2, it)
		}, "leader=2 epochs=7/13 replicas=[1 2 3] isr=[2]"},
		{"RECOVERED to RECOVERING is refused", func() (string, error) {
			it := AlterPartitionItem{TopicID: id, Partition: 0, LeaderEpoch: 7, PartitionEpoch: 13, NewISR: members(2), LeaderRecoveryState: Recovering}
			return alter(t, s, 2, it)
		}, "invalid request"},
		{"then followers join", func() (string, error) {
			p := s.Topics["u"].Partitions[0]
			it, recovery := LeaderProposal(p, 2, AlterPartitionItem{TopicID: id, Partition: 0, LeaderEpoch: 7, PartitionEpoch: 13, NewISR: members(2, 3)})
			if recovery {
				t.Error("a recovered partition's proposal was replaced")
			}
			return alter(t, s, 2, it)
		}, "leader=2 epochs=7/14 replicas=[1 2 3] isr=[2 3]"},
		{"a clean election keeps RECOVERED", func() (string, error) {
			rs, err := s.PlanFenceBroker(2, Policy{})
			mustApply(t, s, rs...)
			return descPart(s, "u", 0), err
		}, "leader=3 epochs=8/15 replicas=[1 2 3] isr=[3]"},
	}
	for _, st := range steps {
		got, err := st.do()
		if err != nil {
			got = err.Error()
			if i := len(st.want); len(got) > i && got[:i] == st.want {
				got = st.want
			}
		}
		if got != st.want {
			t.Fatalf("%s:\ngot  %s\nwant %s", st.name, got, st.want)
		}
	}
}

// alter plans and applies one AlterPartition item from leader, returning
// the partition after it or the item's error.
func alter(t *testing.T, s *State, leader int32, it AlterPartitionItem) (string, error) {
	t.Helper()
	res, rs, err := s.PlanAlterPartition(leader, 100+int64(leader), 3, []AlterPartitionItem{it}, Policy{})
	if err != nil {
		return "", err
	}
	if res[0].Err != nil {
		return "", res[0].Err
	}
	mustApply(t, s, rs...)
	return desc(res[0].Partition), nil
}

// TestLeaderProposal: the recovery step replaces a proposal only for the
// leader of a RECOVERING partition at the proposal's epochs.
func TestLeaderProposal(t *testing.T) {
	recovering := Partition{Leader: 2, LeaderEpoch: 7, PartitionEpoch: 12, ISR: ids(2), LeaderRecoveryState: Recovering}
	recovered := recovering
	recovered.LeaderRecoveryState = Recovered
	base := AlterPartitionItem{LeaderEpoch: 7, PartitionEpoch: 12, NewISR: members(2, 3), LeaderRecoveryState: Recovering}
	for _, tc := range []struct {
		name     string
		p        Partition
		leader   int32
		edit     func(*AlterPartitionItem)
		isr      string
		recovery bool
	}{
		{"recovering: the leader alone", recovering, 2, func(*AlterPartitionItem) {}, "[{2 102}]", true},
		{"recovering, no epoch for the leader", recovering, 2, func(it *AlterPartitionItem) { it.NewISR = members(3) }, "[{2 -1}]", true},
		{"recovered: as proposed", recovered, 2, func(*AlterPartitionItem) {}, "[{2 102} {3 103}]", false},
		{"recovering, another leader's", recovering, 3, func(*AlterPartitionItem) {}, "[{2 102} {3 103}]", false},
		{"recovering, proposal past the metadata", recovering, 2, func(it *AlterPartitionItem) { it.PartitionEpoch = 13 }, "[{2 102} {3 103}]", false},
		{"recovering, another leader epoch", recovering, 2, func(it *AlterPartitionItem) { it.LeaderEpoch = 8 }, "[{2 102} {3 103}]", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			it := base
			it.NewISR = members(2, 3)
			tc.edit(&it)
			out, recovery := LeaderProposal(tc.p, tc.leader, it)
			if fmt.Sprint(out.NewISR) != tc.isr || recovery != tc.recovery || out.LeaderRecoveryState != Recovered {
				t.Errorf("got %v recovery=%v state=%d; want %s recovery=%v RECOVERED", out.NewISR, recovery, out.LeaderRecoveryState, tc.isr, tc.recovery)
			}
		})
	}
}
