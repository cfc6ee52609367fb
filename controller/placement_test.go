package controller

import (
	"errors"
	"reflect"
	"slices"
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

func racked(rackOf map[int32]string) []*Broker {
	var bs []*Broker
	for id := int32(1); id <= int32(len(rackOf)); id++ {
		r := rackOf[id]
		bs = append(bs, &Broker{ID: id, Rack: &r})
	}
	return bs
}

func TestPlaceOnRacks(t *testing.T) {
	for _, tc := range []struct {
		name   string
		racks  map[int32]string
		rf     int16
		spread int // distinct racks every partition must span
	}{
		{"three even racks", map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"}, 3, 3},
		{"uneven racks", map[int32]string{1: "a", 2: "a", 3: "a", 4: "b"}, 2, 2},
		{"more replicas than racks", map[int32]string{1: "a", 2: "b", 3: "a", 4: "b"}, 3, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(tc.racks)
			count := int32(10 * n)
			got, err := PlaceOnRacks(racked(tc.racks), 0, count, tc.rf)
			if err != nil {
				t.Fatal(err)
			}
			leaders, replicas := map[int32]int{}, map[int32]int{}
			for p, rs := range got {
				racks := map[string]bool{}
				for _, id := range rs {
					racks[tc.racks[id]] = true
					replicas[id]++
				}
				if len(rs) != int(tc.rf) || hasDuplicate(rs) || len(racks) != tc.spread {
					t.Fatalf("partition %d: %v spans racks %v", p, rs, racks)
				}
				leaders[rs[0]]++
			}
			for id := int32(1); id <= int32(n); id++ {
				if leaders[id] != 10 {
					t.Errorf("leaders not spread evenly: %v", leaders)
					break
				}
			}
			if again, _ := PlaceOnRacks(racked(tc.racks), 0, count, tc.rf); !reflect.DeepEqual(again, got) {
				t.Error("not deterministic")
			}
			t.Logf("replicas per broker %v", replicas)
		})
	}
	// Without racks it is Place.
	got, _ := PlaceOnRacks([]*Broker{{ID: 1}, {ID: 2}, {ID: 3}}, 0, 4, 2)
	if want, _ := Place([]int32{1, 2, 3}, 0, 4, 2); !reflect.DeepEqual(got, want) {
		t.Errorf("no racks: %v, want %v", got, want)
	}
}

func TestPlacementUsesActiveBrokers(t *testing.T) {
	s := replicated(t, 1, 2, 3)
	mustApply(t, s, FenceBrokerRecord{ID: 2, Epoch: 102})
	if n := s.LiveBrokerCount(); n != 2 {
		t.Fatalf("live brokers %d", n)
	}
	// A fenced broker is still one of the cluster's: the offsets topic's
	// replication factor is capped at these, not at the live ones.
	if n := s.RegisteredBrokerCount(); n != 3 {
		t.Fatalf("registered brokers %d, want 3 (one of them fenced)", n)
	}
	if err := create(s, "t", 4, 2, noLimit); err != nil {
		t.Fatal(err)
	}
	for _, p := range s.Topics["t"].Partitions {
		if slices.Contains(p.Replicas, 2) {
			t.Fatalf("a fenced broker got a replica: %+v", p)
		}
	}
	if err := create(s, "u", 1, 3, noLimit); !errors.Is(err, ErrInvalidReplication) {
		t.Fatalf("rf 3 over 2 active brokers: %v", err)
	}
	// A manual assignment may name a fenced broker, out of the ISR; not
	// only fenced ones.
	rs, err := s.PlanCreateTopic(NewTopic{Name: "m", ID: NewTopicID(), Partitions: 1, ReplicationFactor: 2, Assignment: [][]int32{{2, 3}}}, noLimit)
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, s, rs...)
	if got := descPart(s, "m", 0); got != "leader=3 epochs=0/0 replicas=[2 3] isr=[3]" {
		t.Errorf("manual: %s", got)
	}
	_, err = s.PlanCreateTopic(NewTopic{Name: "x", ID: NewTopicID(), Partitions: 1, ReplicationFactor: 1, Assignment: [][]int32{{2}}}, noLimit)
	if !errors.Is(err, ErrInvalidReplicaAssignment) {
		t.Errorf("only fenced: %v", err)
	}
}
