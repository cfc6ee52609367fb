package controller

import "fmt"

// Place chooses the replicas of count new partitions, numbered from first
// on, among brokers (the live brokers, in ascending id order), with rf
// replicas each. It is a policy, separate from State so that it can change
// (racks, load) without touching how records apply: the planner calls it
// and writes what it returns into PartitionRecords.
//
// Today's policy is Kafka's round robin without racks: partition p's
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
