package group

import (
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// spec builds an assignor input: members (id → subscribed topic names),
// partition counts by topic name, and the current target.
func assignInput(members map[string][]string, counts map[string]int32, current map[string]tpSet) *assignSpec {
	s := &assignSpec{partitions: map[[16]byte]int32{}, current: current}
	for n, c := range counts {
		s.partitions[topicID(n)] = c
	}
	for _, id := range sortedNames(members) {
		m := assignMember{id: id}
		for _, n := range members[id] {
			m.topics = append(m.topics, topicID(n))
		}
		sortIDs(m.topics)
		s.members = append(s.members, m)
	}
	return s
}

// checkAssignment verifies that every partition of a subscribed topic is
// assigned exactly once, and only to a subscriber.
func checkAssignment(t *testing.T, s *assignSpec, out map[string]tpSet) {
	t.Helper()
	if len(out) != len(s.members) {
		t.Fatalf("%d members assigned, %d in the group", len(out), len(s.members))
	}
	subscribed := map[[16]byte]bool{}
	seen := tpSet{}
	for _, m := range s.members {
		for _, id := range m.topics {
			subscribed[id] = true
		}
		for p := range out[m.id] {
			if !slices.Contains(m.topics, p.id) || p.p < 0 || p.p >= s.partitions[p.id] {
				t.Fatalf("member %s got %v it cannot have", m.id, p)
			}
			if seen.has(p) {
				t.Fatalf("%v assigned twice", p)
			}
			seen[p] = struct{}{}
		}
	}
	want := 0
	for id := range subscribed {
		want += int(s.partitions[id])
	}
	if len(seen) != want {
		t.Fatalf("%d partitions assigned, %d subscribed", len(seen), want)
	}
}

func loadRange(s *assignSpec, out map[string]tpSet) (lo, hi int) {
	lo = -1
	for _, m := range s.members {
		n := len(out[m.id])
		if lo < 0 || n < lo {
			lo = n
		}
		hi = max(hi, n)
	}
	return lo, hi
}

// moved counts the partitions whose owner changed.
func movedCount(before, after map[string]tpSet) int {
	owner := map[tpKey]string{}
	for id, s := range before {
		for p := range s {
			owner[p] = id
		}
	}
	n := 0
	for id, s := range after {
		for p := range s {
			if o, ok := owner[p]; ok && o != id {
				n++
			}
		}
	}
	return n
}

func TestUniformHomogeneousBalancedAndSticky(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	for round := range 300 {
		counts := map[string]int32{}
		var names []string
		for i := range 1 + rng.IntN(4) {
			n := fmt.Sprintf("t%d", i)
			counts[n] = int32(rng.IntN(20))
			names = append(names, n)
		}
		members := map[string][]string{}
		for i := range 1 + rng.IntN(12) {
			members[fmt.Sprintf("m%02d", i)] = names
		}
		s := assignInput(members, counts, nil)
		out := assignUniform(s)
		checkAssignment(t, s, out)
		if lo, hi := loadRange(s, out); hi-lo > 1 {
			t.Fatalf("round %d: loads %d..%d", round, lo, hi)
		}

		// A new member takes only what it needs: nothing moves between
		// the others.
		members[fmt.Sprintf("n%02d", round)] = names
		s2 := assignInput(members, counts, out)
		out2 := assignUniform(s2)
		checkAssignment(t, s2, out2)
		if lo, hi := loadRange(s2, out2); hi-lo > 1 {
			t.Fatalf("round %d after join: loads %d..%d", round, lo, hi)
		}
		if got, want := movedCount(out, out2), len(out2[fmt.Sprintf("n%02d", round)]); got != want {
			t.Fatalf("round %d: %d partitions moved for a join that needed %d", round, got, want)
		}

		// A member leaves: only its partitions move.
		victim := s2.members[rng.IntN(len(s2.members))].id
		delete(members, victim)
		cur := map[string]tpSet{}
		for id, ps := range out2 {
			if id != victim {
				cur[id] = ps
			}
		}
		s3 := assignInput(members, counts, out2)
		out3 := assignUniform(s3)
		checkAssignment(t, s3, out3)
		if lo, hi := loadRange(s3, out3); hi-lo > 1 {
			t.Fatalf("round %d after leave: loads %d..%d", round, lo, hi)
		}
		if got := movedCount(cur, out3); got != 0 {
			t.Fatalf("round %d: %d partitions moved between members that stayed", round, got)
		}

		// Stable input, stable output.
		if again := assignUniform(assignInput(members, counts, out3)); !reflect.DeepEqual(again, out3) {
			t.Fatalf("round %d: reassigning a balanced group moved partitions", round)
		}
	}
}

func TestUniformHeterogeneous(t *testing.T) {
	// a can only take t1, c only t2: b must split to balance 4/4/4.
	s := assignInput(map[string][]string{"a": {"t1"}, "b": {"t1", "t2"}, "c": {"t2"}}, map[string]int32{"t1": 6, "t2": 6}, nil)
	out := assignUniform(s)
	checkAssignment(t, s, out)
	if lo, hi := loadRange(s, out); lo != 4 || hi != 4 {
		t.Fatalf("loads %d..%d: %v", lo, hi, out)
	}
	// Sticky: the same input keeps everything.
	if again := assignUniform(assignInput(map[string][]string{"a": {"t1"}, "b": {"t1", "t2"}, "c": {"t2"}}, map[string]int32{"t1": 6, "t2": 6}, out)); !reflect.DeepEqual(again, out) {
		t.Fatalf("not sticky:\n%v\n%v", out, again)
	}

	rng := rand.New(rand.NewPCG(3, 9))
	for round := range 300 {
		counts := map[string]int32{}
		for i := range 1 + rng.IntN(5) {
			counts[fmt.Sprintf("t%d", i)] = int32(rng.IntN(12))
		}
		topics := sortedNames(counts)
		members := map[string][]string{}
		for i := range 1 + rng.IntN(10) {
			var sub []string
			for _, n := range topics {
				if rng.IntN(2) == 0 {
					sub = append(sub, n)
				}
			}
			members[fmt.Sprintf("m%02d", i)] = sub
		}
		members["z"] = []string{"missing"} // a topic without metadata
		var cur map[string]tpSet
		if round%2 == 1 {
			cur = assignRange(assignInput(members, counts, nil)) // a lopsided start
		}
		s := assignInput(members, counts, cur)
		out := assignUniform(s)
		checkAssignment(t, s, out)
		// No single move of a partition to another subscriber of its
		// topic would narrow the gap between two members.
		for _, d := range s.members {
			for p := range out[d.id] {
				for _, r := range s.members {
					if r.id != d.id && slices.Contains(r.topics, p.id) && len(out[d.id])-len(out[r.id]) >= 2 {
						t.Fatalf("round %d: %v could move from %s (%d) to %s (%d)", round, p, d.id, len(out[d.id]), r.id, len(out[r.id]))
					}
				}
			}
		}
		if again := assignUniform(assignInput(members, counts, cur)); !reflect.DeepEqual(again, out) {
			t.Fatalf("round %d: not deterministic", round)
		}
	}
}

func TestRangeLayout(t *testing.T) {
	s := assignInput(map[string][]string{
		"c": {"x", "y"},
		"a": {"x", "y"},
		"b": {"x", "y", "z"},
	}, map[string]int32{"x": 5, "y": 5, "z": 2, "unused": 3}, nil)
	out := assignRange(s)
	checkAssignment(t, s, out)
	got := map[string]map[string][]int32{}
	g := &ConsumerGroup{names: map[[16]byte]string{topicID("x"): "x", topicID("y"): "y", topicID("z"): "z"}}
	for id, ps := range out {
		got[id] = g.byName(ps)
	}
	want := map[string]map[string][]int32{
		"a": {"x": {0, 1}, "y": {0, 1}},
		"b": {"x": {2, 3}, "y": {2, 3}, "z": {0, 1}},
		"c": {"x": {4}, "y": {4}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("range:\n%v\nwant\n%v", got, want)
	}
}

func TestAssignorsDeterministicAndEmpty(t *testing.T) {
	members := map[string][]string{"a": {"x"}, "b": {"x", "y"}, "c": {"y"}, "d": nil}
	counts := map[string]int32{"x": 7, "y": 3, "empty": 0}
	for name, fn := range serverAssignors {
		first := fn(assignInput(members, counts, nil))
		for range 20 {
			// Maps built afresh iterate in other orders.
			if again := fn(assignInput(members, counts, nil)); !reflect.DeepEqual(again, first) {
				t.Fatalf("%s is not deterministic", name)
			}
		}
		if len(first["d"]) != 0 {
			t.Fatalf("%s gave a member without subscriptions %v", name, first["d"])
		}
		if out := fn(assignInput(nil, counts, nil)); len(out) != 0 {
			t.Fatalf("%s with no members: %v", name, out)
		}
		if out := fn(assignInput(map[string][]string{"a": {"empty"}}, counts, nil)); len(out["a"]) != 0 {
			t.Fatalf("%s assigned a topic without partitions", name)
		}
	}
}
