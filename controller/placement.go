package controller

import (
	"fmt"
	"slices"
)

// Place chooses the replicas of count new partitions, numbered from first
// on, among brokers (the live brokers, in ascending id order), with rf
// replicas each. It is a policy, separate from State so that it can change
// (racks, load) without touching how records apply: the planner calls it
// and writes what it returns into PartitionRecords.
//
// Without racks the policy is Kafka's round robin: partition p's
// replicas are rf consecutive brokers starting at broker p mod n, so
// leaders (the first replica) spread evenly, and so do followers. It is
// deterministic: the same brokers and partition numbers give the same
// assignment.
func Place(brokers []int32, first, count int32, rf int16) ([][]int32, error) {
	n := len(brokers)
	if err := checkReplicationFactor(rf, n); err != nil {
		return nil, err
	}
	out := make([][]int32, 0, count)
	for p := first; p < first+count; p++ {
		replicas := make([]int32, rf)
		for j := range replicas {
			replicas[j] = brokers[(int(p)+j)%n]
		}
		out = append(out, replicas)
	}
	return out, nil
}

// PlaceOnRacks is Place over brokers that may name a rack (broker.rack):
// when none does it is Place over their ids; otherwise each partition's
// replicas go to as many different racks as there are, leaders rotating
// over a list that alternates racks, so leaders and replicas spread over
// racks and brokers alike (the rack-aware assignment of Kafka's
// AdminUtils, which KRaft's StripedReplicaPlacer keeps the properties of,
// made deterministic: no random start). A broker without a rack counts as
// a rack of its own kind ("").
func PlaceOnRacks(brokers []*Broker, first, count int32, rf int16) ([][]int32, error) {
	if err := checkReplicationFactor(rf, len(brokers)); err != nil {
		return nil, err
	}
	byRack := map[string][]int32{}
	var racks []string
	for _, b := range brokers {
		r := ""
		if b.Rack != nil {
			r = *b.Rack
		}
		if _, ok := byRack[r]; !ok {
			racks = append(racks, r)
		}
		byRack[r] = append(byRack[r], b.ID)
	}
	if len(racks) == 1 && racks[0] == "" {
		return Place(byRack[""], first, count, rf)
	}
	slices.Sort(racks)
	for _, ids := range byRack {
		slices.Sort(ids)
	}
	// The rack-alternating list: the first broker of each rack, then the
	// second of each, and so on.
	var list []int32
	rackOf := map[int32]string{}
	for i := 0; len(list) < len(brokers); i++ {
		for _, r := range racks {
			if ids := byRack[r]; i < len(ids) {
				list = append(list, ids[i])
				rackOf[ids[i]] = r
			}
		}
	}
	n, nRacks := len(list), len(racks)
	out := make([][]int32, 0, count)
	for p := int(first); p < int(first+count); p++ {
		// The follower offset grows every n partitions, so that
		// partitions sharing a leader spread their followers too.
		shift := p / n
		lead := p % n
		replicas := []int32{list[lead]}
		usedRacks := map[string]bool{rackOf[list[lead]]: true}
		for k := 0; len(replicas) < int(rf); k++ {
			b := list[(lead+1+(shift*nRacks+k)%(n-1))%n]
			// Once every rack holds a replica, any rack will do.
			rackFree := !usedRacks[rackOf[b]] || len(usedRacks) == nRacks
			if rackFree && !slices.Contains(replicas, b) {
				replicas = append(replicas, b)
				usedRacks[rackOf[b]] = true
			}
		}
		out = append(out, replicas)
	}
	return out, nil
}

// checkReplicationFactor refuses an rf no placement over n brokers can meet.
func checkReplicationFactor(rf int16, n int) error {
	switch {
	case rf <= 0:
		return fmt.Errorf("%w: %d; it must be at least 1", ErrInvalidReplication, rf)
	case int(rf) > n:
		return fmt.Errorf("%w: %d is larger than the %d available broker(s)", ErrInvalidReplication, rf, n)
	}
	return nil
}
