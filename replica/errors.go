package replica

import (
	"errors"

	"github.com/sluice-io/sluice/segment"
)

// Errors returned by this package. The broker maps each to its Kafka error
// code in one place, so wrap them with %w and test with errors.Is.
var (
	// ErrOutOfOrderSequence: the batch's first sequence does not follow the
	// producer's last one (OUT_OF_ORDER_SEQUENCE_NUMBER).
	ErrOutOfOrderSequence = errors.New("out of order sequence number")
	// ErrDuplicateSequence (DUPLICATE_SEQUENCE_NUMBER) is defined for the
	// broker's error table but not returned: a retried batch is answered with
	// the original offsets instead (see AppendResult.Duplicate), as Kafka does.
	ErrDuplicateSequence = errors.New("duplicate sequence number")
	// ErrInvalidProducerEpoch: the batch's producer epoch is older than the
	// producer's current one, i.e. a fenced zombie (INVALID_PRODUCER_EPOCH).
	ErrInvalidProducerEpoch = errors.New("invalid producer epoch")
	// ErrUnknownProducerID (UNKNOWN_PRODUCER_ID) is defined for the broker's
	// error table but not returned: since KIP-360 a producer without state is
	// accepted (see ProducerState.Check).
	ErrUnknownProducerID = errors.New("unknown producer id")
	// ErrOffsetOutOfRange is segment's error, re-exported so the broker needs
	// only this package's sentinels for partition operations.
	ErrOffsetOutOfRange = segment.ErrOffsetOutOfRange
	// ErrStaleLeaderEpoch: Open was given a leader epoch older than one this
	// replica already wrote with; appending would break the epoch history.
	ErrStaleLeaderEpoch = errors.New("leader epoch older than the replica's history")
	// ErrClosed: the partition was closed or deleted.
	ErrClosed = errors.New("partition closed")
)
