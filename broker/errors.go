package broker

import (
	"errors"
	"io/fs"
	"syscall"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// errorCode maps an error from the layers below to its Kafka error code. It
// is the only place that knows both worlds; handlers call it and never
// compare errors themselves.
func errorCode(err error) int16 {
	var ke *kerr.Error
	switch {
	case err == nil:
		return 0
	case errors.As(err, &ke):
		return ke.Code
	case errors.Is(err, segment.ErrCorruptBatch):
		return kerr.CorruptMessage.Code
	case errors.Is(err, segment.ErrInvalidRecord):
		return kerr.InvalidRecord.Code
	case errors.Is(err, segment.ErrBatchTooLarge):
		return kerr.MessageTooLarge.Code
	case errors.Is(err, segment.ErrOffsetOutOfRange), errors.Is(err, replica.ErrOffsetOutOfRange):
		return kerr.OffsetOutOfRange.Code
	case errors.Is(err, replica.ErrOutOfOrderSequence):
		return kerr.OutOfOrderSequenceNumber.Code
	case errors.Is(err, replica.ErrInvalidProducerEpoch):
		return kerr.InvalidProducerEpoch.Code
	case errors.Is(err, replica.ErrUnknownProducerID):
		return kerr.UnknownProducerID.Code
	case errors.Is(err, controller.ErrTopicExists):
		return kerr.TopicAlreadyExists.Code
	case errors.Is(err, controller.ErrUnknownTopic):
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, controller.ErrInvalidTopic):
		return kerr.InvalidTopicException.Code
	case errors.Is(err, controller.ErrInvalidPartitions):
		return kerr.InvalidPartitions.Code
	case errors.Is(err, controller.ErrInvalidReplication):
		return kerr.InvalidReplicationFactor.Code
	case errors.Is(err, controller.ErrPartitionLimit):
		return kerr.PolicyViolation.Code
	case controllerCode(err) != 0:
		return controllerCode(err)
	case errors.Is(err, replica.ErrNotLeader):
		return kerr.NotLeaderForPartition.Code
	case errors.Is(err, config.ErrInvalidConfig):
		return kerr.InvalidConfig.Code
	case errors.Is(err, replica.ErrClosed), errors.Is(err, segment.ErrLogClosed):
		// The partition went away under the request (topic deleted).
		return kerr.UnknownTopicOrPartition.Code
	case errors.Is(err, segment.ErrLogPoisoned), isStorageError(err):
		return kerr.KafkaStorageError.Code
	default:
		return kerr.UnknownServerError.Code
	}
}

// isStorageError reports a failure of the disk under a log (EIO, ENOSPC,
// a vanished file): Kafka's KAFKA_STORAGE_ERROR, which clients retry.
func isStorageError(err error) bool {
	var pe *fs.PathError
	var errno syscall.Errno
	return errors.As(err, &pe) || errors.As(err, &errno)
}

// errorMessage is the text Kafka responses carry next to a code; nil for
// success so clients do not print empty messages.
func errorMessage(err error) *string {
	if err == nil {
		return nil
	}
	s := err.Error()
	return &s
}

// controllerCodes are the controller's replication errors and their Kafka
// codes (controller/errors.go documents each).
var controllerCodes = []struct {
	err  error
	code *kerr.Error
}{
	{controller.ErrStaleBrokerEpoch, kerr.StaleBrokerEpoch},
	{controller.ErrUnknownTopicOrPartition, kerr.UnknownTopicOrPartition},
	{controller.ErrUnknownTopicID, kerr.UnknownTopicID},
	{controller.ErrNotController, kerr.NotController},
	{controller.ErrFencedLeaderEpoch, kerr.FencedLeaderEpoch},
	{controller.ErrInvalidRequest, kerr.InvalidRequest},
	{controller.ErrInvalidUpdateVersion, kerr.InvalidUpdateVersion},
	{controller.ErrIneligibleReplica, kerr.IneligibleReplica},
	{controller.ErrOperationNotAttempted, kerr.OperationNotAttempted},
	{controller.ErrNewLeaderElected, kerr.NewLeaderElected},
	{controller.ErrElectionNotNeeded, kerr.ElectionNotNeeded},
	{controller.ErrPreferredLeaderNotAvailable, kerr.PreferredLeaderNotAvailable},
	{controller.ErrEligibleLeadersNotAvailable, kerr.EligibleLeadersNotAvailable},
	{controller.ErrNoReassignmentInProgress, kerr.NoReassignmentInProgress},
	{controller.ErrInvalidReplicaAssignment, kerr.InvalidReplicaAssignment},
	{controller.ErrDuplicateBrokerRegistration, kerr.DuplicateBrokerRegistration},
	{controller.ErrBrokerNotRegistered, kerr.BrokerIDNotRegistered},
	{controller.ErrInconsistentClusterID, kerr.InconsistentClusterID},
}

func controllerCode(err error) int16 {
	for _, c := range controllerCodes {
		if errors.Is(err, c.err) {
			return c.code.Code
		}
	}
	return 0
}
