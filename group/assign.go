package group

import (
	"slices"
	"sort"
)

// Server-side assignors (group.consumer.assignors). An assignor maps every
// member to the partitions it should own, from the members' subscriptions,
// the partition counts of the subscribed topics and the current target
// assignment. Assignors are pure and deterministic: the same input gives the
// same output, whatever the order of Go's map iteration.

// assignSpec is the input of an assignor.
type assignSpec struct {
	members    []assignMember     // sorted by member id
	partitions map[[16]byte]int32 // partition count of each subscribed topic
	current    map[string]tpSet   // the current target, member id → partitions
}

type assignMember struct {
	id     string
	topics [][16]byte // subscribed topic ids, sorted
}

type assignorFunc func(*assignSpec) map[string]tpSet

// serverAssignors are the assignors the group can run, by the names clients
// send in ServerAssignor.
var serverAssignors = map[string]assignorFunc{
	"uniform": assignUniform,
	"range":   assignRange,
}

func sortIDs(ids [][16]byte) { slices.SortFunc(ids, compareIDs) }

// subscriptions returns each member's subscribed topics that exist and have
// partitions, and a fresh empty assignment for every member.
func (s *assignSpec) subscriptions() ([][][16]byte, map[string]tpSet) {
	subs := make([][][16]byte, len(s.members))
	out := make(map[string]tpSet, len(s.members))
	for i, m := range s.members {
		out[m.id] = tpSet{}
		for _, t := range m.topics {
			if s.partitions[t] > 0 {
				subs[i] = append(subs[i], t)
			}
		}
	}
	return subs, out
}

// assignUniform is Kafka's "uniform" assignor: it spreads partitions so every
// member has as many as possible alike, and keeps each partition with its
// current owner when that owner still subscribes and balance allows.
//
// With homogeneous subscriptions, member partition counts differ by at most
// one. With heterogeneous ones, each partition first goes to the least
// loaded of its subscribers, then partitions move from a member to one of
// the topic's other subscribers while that narrows their gap, so no single
// move could balance the group further.
func assignUniform(s *assignSpec) map[string]tpSet {
	subs, out := s.subscriptions()
	if len(s.members) == 0 {
		return out
	}
	for i := 1; i < len(subs); i++ {
		if !slices.Equal(subs[i], subs[0]) {
			uniformHeterogeneous(s, subs, out)
			return out
		}
	}
	uniformHomogeneous(s, subs[0], out)
	return out
}

// uniformHomogeneous assigns topics every member subscribes to: members get
// quotas of ⌊P/N⌋ or ⌈P/N⌉ partitions, the larger quotas going to the members
// that already own the most, and keep as much of what they own as fits.
func uniformHomogeneous(s *assignSpec, topics [][16]byte, out map[string]tpSet) {
	var all []tpKey
	for _, t := range topics {
		for p := range s.partitions[t] {
			all = append(all, tpKey{t, p})
		}
	}
	if len(all) == 0 {
		return
	}
	valid := tpSetOf(all)
	n := len(s.members)
	retained := make([][]tpKey, n)
	claimed := tpSet{}
	for i, m := range s.members {
		for _, p := range s.current[m.id].sorted() {
			if valid.has(p) && !claimed.has(p) {
				retained[i] = append(retained[i], p)
				claimed[p] = struct{}{}
			}
		}
	}
	order := make([]int, n)
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return len(retained[order[a]]) > len(retained[order[b]]) })
	base, extra := len(all)/n, len(all)%n
	quota := make([]int, n)
	for rank, i := range order {
		quota[i] = base
		if rank < extra {
			quota[i]++
		}
	}
	taken := tpSet{}
	for i, m := range s.members {
		for _, p := range retained[i][:min(len(retained[i]), quota[i])] {
			out[m.id][p] = struct{}{}
			taken[p] = struct{}{}
		}
	}
	next := 0
	for i, m := range s.members {
		for len(out[m.id]) < quota[i] {
			for taken.has(all[next]) {
				next++
			}
			out[m.id][all[next]] = struct{}{}
			next++
		}
	}
}

// uniformHeterogeneous assigns topics that not every member subscribes to.
func uniformHeterogeneous(s *assignSpec, subs [][][16]byte, out map[string]tpSet) {
	n := len(s.members)
	subscribers := map[[16]byte][]int{} // topic → member indexes, in id order
	for i := range n {
		for _, t := range subs[i] {
			subscribers[t] = append(subscribers[t], i)
		}
	}
	load := make([]int, n)
	owner := map[tpKey]int{}
	give := func(p tpKey, i int) {
		out[s.members[i].id][p] = struct{}{}
		owner[p] = i
		load[i]++
	}

	// Stickiness: every member keeps what it owns and still subscribes to.
	for i, m := range s.members {
		for _, p := range s.current[m.id].sorted() {
			_, dup := owner[p]
			if !dup && p.p >= 0 && p.p < s.partitions[p.id] && slices.Contains(subs[i], p.id) {
				give(p, i)
			}
		}
	}

	// The rest goes to the least loaded subscriber, the topics with the
	// fewest subscribers first since they have the least choice.
	topics := make([][16]byte, 0, len(subscribers))
	for t := range subscribers {
		topics = append(topics, t)
	}
	slices.SortFunc(topics, func(a, b [16]byte) int {
		if d := len(subscribers[a]) - len(subscribers[b]); d != 0 {
			return d
		}
		return compareIDs(a, b)
	})
	for _, t := range topics {
		for p := range s.partitions[t] {
			k := tpKey{t, p}
			if _, ok := owner[k]; !ok {
				give(k, leastLoaded(subscribers[t], load, -1))
			}
		}
	}

	// Balance: move a partition from a more loaded member to a less loaded
	// subscriber while their counts differ by two or more. Every move
	// lowers the sum of squared loads, so this ends.
	order := make([]int, n)
	for {
		for i := range order {
			order[i] = i
		}
		sort.SliceStable(order, func(a, b int) bool { return load[order[a]] > load[order[b]] })
		moved := false
		for _, d := range order {
			parts := out[s.members[d].id].sorted()
			recv, recvTopic, known := -1, [16]byte{}, false
			for j := len(parts) - 1; j >= 0; j-- {
				p := parts[j]
				if !known || recvTopic != p.id {
					recv, recvTopic, known = leastLoaded(subscribers[p.id], load, d), p.id, true
				}
				if recv >= 0 && load[d]-load[recv] >= 2 {
					delete(out[s.members[d].id], p)
					load[d]--
					give(p, recv)
					moved = true
					break
				}
			}
			if moved {
				break
			}
		}
		if !moved {
			return
		}
	}
}

// leastLoaded returns the candidate with the lowest load (the first in id
// order on ties), skipping skip; -1 when there is none.
func leastLoaded(cands []int, load []int, skip int) int {
	best := -1
	for _, i := range cands {
		if i != skip && (best < 0 || load[i] < load[best]) {
			best = i
		}
	}
	return best
}

// assignRange is Kafka's "range" assignor: for each topic, its subscribers in
// member id order get contiguous ranges of partitions, the first ones one
// more when the partitions do not divide evenly. Members subscribing to
// topics with the same partition count get the same partition numbers of
// each (co-partitioning).
func assignRange(s *assignSpec) map[string]tpSet {
	subs, out := s.subscriptions()
	subscribers := map[[16]byte][]string{}
	for i, m := range s.members {
		for _, t := range subs[i] {
			subscribers[t] = append(subscribers[t], m.id)
		}
	}
	for t, ms := range subscribers {
		count, n := s.partitions[t], int32(len(ms))
		per, extra := count/n, count%n
		start := int32(0)
		for i, id := range ms {
			k := per
			if int32(i) < extra {
				k++
			}
			for p := start; p < start+k; p++ {
				out[id][tpKey{t, p}] = struct{}{}
			}
			start += k
		}
	}
	return out
}
