package broker

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/controller"
)

// maxPartitions is the broker-wide partition cap (max.broker.partitions)
// every CreateTopics and CreatePartitions is checked against before anything
// is allocated: one unauthenticated request must not be able to ask for 2^31-1
// partitions and take the broker down.
func (b *Broker) maxPartitions() int64 { return int64(b.cfg.MaxBrokerPartitions) }

// createWithinLimits plans a topic's creation under both of the broker's
// limits: the partition cap (limit) and the file descriptors the process
// has left. The cap is checked first, so an absurd count is answered by it.
func createWithinLimits(nt controller.NewTopic, limit int64) controller.Plan {
	return func(s *controller.State) ([]controller.Record, error) {
		rs, err := s.PlanCreateTopic(nt, limit)
		if err == nil {
			err = checkFDBudget(int64(nt.Partitions))
		}
		if err != nil {
			return nil, withLimitSetting(err)
		}
		return rs, nil
	}
}

// growWithinLimits plans adding partitions under the same limits.
func growWithinLimits(name string, count int32, assignment [][]int32, limit int64) controller.Plan {
	return func(s *controller.State) ([]controller.Record, error) {
		var had int32
		if t, ok := s.Topics[name]; ok {
			had = int32(len(t.Partitions))
		}
		rs, err := s.PlanCreatePartitions(name, count, assignment, limit)
		if err == nil {
			err = checkFDBudget(int64(count - had))
		}
		if err != nil {
			return nil, withLimitSetting(err)
		}
		return rs, nil
	}
}

// withLimitSetting names the setting behind a partition-cap refusal, so the
// client's error message tells the operator what to raise.
func withLimitSetting(err error) error {
	if errors.Is(err, controller.ErrPartitionLimit) {
		return fmt.Errorf("%w (raise max.broker.partitions to allow more)", err)
	}
	return err
}
