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

// withLimitSetting names the setting behind a partition-cap refusal, so the
// client's error message tells the operator what to raise.
func withLimitSetting(err error) error {
	if errors.Is(err, controller.ErrPartitionLimit) {
		return fmt.Errorf("%w (raise max.broker.partitions to allow more)", err)
	}
	return err
}
