package controller

import "fmt"

// PartitionCount is the number of partitions of all topics together.
func (s *State) PartitionCount() int64 {
	var n int64
	for _, t := range s.Topics {
		n += int64(len(t.Partitions))
	}
	return n
}

// CheckPartitionBudget reports ErrPartitionLimit when adding add partitions
// would take the cluster past limit. It does the sum in int64, so no count a
// request can carry overflows it, and it runs before anything is allocated.
func (s *State) CheckPartitionBudget(add, limit int64) error {
	have := s.PartitionCount()
	if add > limit-have {
		return fmt.Errorf("%w: %d new partitions would make %d, the limit is %d", ErrPartitionLimit, add, have+add, limit)
	}
	return nil
}
