package controller

import (
	"errors"
	"reflect"
	"testing"
)

func TestPlace(t *testing.T) {
	got, err := Place([]int32{1, 2, 3}, 0, 4, 2)
	if err != nil {
		t.Fatal(err)
	}
	want := [][]int32{{1, 2}, {2, 3}, {3, 1}, {1, 2}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// Partitions added later continue the rotation, so leaders stay spread.
	if got, _ := Place([]int32{1, 2, 3}, 4, 2, 1); !reflect.DeepEqual(got, [][]int32{{2}, {3}}) {
		t.Fatalf("from partition 4: %v", got)
	}
	leaders := map[int32]int{}
	got, _ = Place([]int32{4, 7, 9}, 0, 30, 3)
	for _, rs := range got {
		leaders[rs[0]]++
		if hasDuplicate(rs) {
			t.Fatalf("a broker twice in %v", rs)
		}
	}
	if leaders[4] != 10 || leaders[7] != 10 || leaders[9] != 10 {
		t.Fatalf("leaders not spread evenly: %v", leaders)
	}
	for _, rf := range []int16{0, -1, 4} {
		if _, err := Place([]int32{1, 2, 3}, 0, 1, rf); !errors.Is(err, ErrInvalidReplication) {
			t.Errorf("rf %d over 3 brokers: %v", rf, err)
		}
	}
	if _, err := Place(nil, 0, 1, 1); !errors.Is(err, ErrInvalidReplication) {
		t.Errorf("no brokers: %v", err)
	}
}

func TestPlanCreateTopicSpreadsOverBrokers(t *testing.T) {
	s := cluster(t, 1, 2, 3)
	if err := create(s, "t", 3, 3, noLimit); err != nil {
		t.Fatal(err)
	}
	for i, p := range s.Topics["t"].Partitions {
		if len(p.Replicas) != 3 || p.Leader != p.Replicas[0] || p.Leader != int32(i+1) || len(p.ISR) != 3 {
			t.Fatalf("partition %d: %+v", i, p)
		}
	}
	rs, err := s.PlanCreateTopic(NewTopic{Name: "m", ID: NewTopicID(), Partitions: 1, ReplicationFactor: 2, Assignment: [][]int32{{3, 1}}}, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	if p := s.Topics["m"].Partitions[0]; p.Leader != 3 || !reflect.DeepEqual(p.Replicas, []int32{3, 1}) {
		t.Fatalf("manual assignment %+v", p)
	}
	for _, bad := range [][][]int32{{{3, 3}}, {{3, 5}}, {{3}}} {
		if _, err := s.PlanCreateTopic(NewTopic{Name: "x", ID: NewTopicID(), Partitions: 1, ReplicationFactor: 2, Assignment: bad}, noLimit); !errors.Is(err, ErrInvalidReplicaAssignment) {
			t.Errorf("assignment %v: %v", bad, err)
		}
	}
}
