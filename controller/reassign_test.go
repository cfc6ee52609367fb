package controller

import (
	"errors"
	"fmt"
	"testing"
)

// TestReassignmentLifecycle moves "t"-0 from [1 2 3] to [4 2 5]: the
// target goes first in the replica list, the removed replicas after it;
// the ISR catching up completes it through AlterPartition, which moves
// the leadership away from 1 to the first target replica.
func TestReassignmentLifecycle(t *testing.T) {
	s := replicated(t, 1, 2, 3, 4, 5)
	addTopic(t, s, "t", pt(1, ids(1, 2, 3), ids(1, 2, 3)))
	step := func(name string, rs []Record, want string) {
		t.Helper()
		mustApply(t, s, rs...)
		if got := descPart(s, "t", 0); got != want {
			t.Fatalf("%s:\ngot  %s\nwant %s", name, got, want)
		}
	}
	results, rs := s.PlanAlterPartitionReassignments([]Reassignment{{TopicPartition{"t", 0}, ids(4, 2, 5)}}, Policy{})
	if results[0].Err != nil {
		t.Fatal(results[0].Err)
	}
	step("start", rs, "leader=1 epochs=5/11 replicas=[4 2 5 1 3] isr=[1 2 3] adding=[4 5] removing=[1 3]")
	if got := fmt.Sprint(s.ListPartitionReassignments(nil)); got != "[{{t 0} [4 2 5 1 3] [4 5] [1 3]}]" {
		t.Errorf("list: %s", got)
	}
	alter := func(isr ...int32) (AlterPartitionResult, []Record) {
		p := s.Topics["t"].Partitions[0]
		res, rs, err := s.PlanAlterPartition(1, 101, 3, []AlterPartitionItem{{TopicID: s.Topics["t"].ID, LeaderEpoch: p.LeaderEpoch,
			PartitionEpoch: p.PartitionEpoch, NewISR: members(isr...)}}, Policy{})
		if err != nil {
			t.Fatal(err)
		}
		return res[0], rs
	}
	res, rs := alter(1, 2, 3, 4)
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	step("4 caught up", rs, "leader=1 epochs=5/12 replicas=[4 2 5 1 3] isr=[1 2 3 4] adding=[4 5] removing=[1 3]")
	res, rs = alter(1, 2, 3, 4, 5)
	if !errors.Is(res.Err, ErrNewLeaderElected) {
		t.Fatalf("completing: %v", res.Err)
	}
	step("5 caught up: complete", rs, "leader=4 epochs=6/13 replicas=[4 2 5] isr=[2 4 5]")
	if got := s.ListPartitionReassignments(nil); got != nil {
		t.Errorf("list after: %v", got)
	}
}

func TestReassignmentCancelAndRefusals(t *testing.T) {
	s := replicated(t, 1, 2, 3, 4)
	addTopic(t, s, "t", pt(1, ids(1, 2), ids(1, 2)), pt(1, ids(1, 2), ids(1, 2)))
	plan := func(r Reassignment) error {
		results, rs := s.PlanAlterPartitionReassignments([]Reassignment{r}, Policy{})
		mustApply(t, s, rs...)
		return results[0].Err
	}
	for _, tc := range []struct {
		r    Reassignment
		want error
	}{
		{Reassignment{TopicPartition{"t", 0}, nil}, ErrNoReassignmentInProgress},
		{Reassignment{TopicPartition{"t", 5}, ids(1)}, ErrUnknownTopicOrPartition},
		{Reassignment{TopicPartition{"t", 0}, ids(1, 1)}, ErrInvalidReplicaAssignment},
		{Reassignment{TopicPartition{"t", 0}, ids(1, 9)}, ErrInvalidReplicaAssignment},
		{Reassignment{TopicPartition{"t", 0}, []int32{}}, ErrInvalidReplicaAssignment},
	} {
		if err := plan(tc.r); !errors.Is(err, tc.want) {
			t.Errorf("%v: got %v, want %v", tc.r, err, tc.want)
		}
	}
	// A reordering the ISR covers completes at once, no epoch bump.
	if err := plan(Reassignment{TopicPartition{"t", 1}, ids(2, 1)}); err != nil {
		t.Fatal(err)
	}
	if got := descPart(s, "t", 1); got != "leader=1 epochs=5/11 replicas=[2 1] isr=[1 2]" {
		t.Errorf("reorder: %s", got)
	}
	if err := plan(Reassignment{TopicPartition{"t", 0}, ids(3, 4)}); err != nil {
		t.Fatal(err)
	}
	if got := descPart(s, "t", 0); got != "leader=1 epochs=5/11 replicas=[3 4 1 2] isr=[1 2] adding=[3 4] removing=[1 2]" {
		t.Fatalf("start: %s", got)
	}
	if err := plan(Reassignment{TopicPartition{"t", 0}, nil}); err != nil {
		t.Fatal(err)
	}
	// Cancelling removes replicas 3 and 4 again: a new leader epoch.
	if got := descPart(s, "t", 0); got != "leader=1 epochs=6/12 replicas=[1 2] isr=[1 2]" {
		t.Errorf("cancelled: %s", got)
	}
}
