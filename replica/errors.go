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
	// ErrStaleLeaderEpoch: Open, BecomeLeader or BecomeFollower was given
	// a leader epoch older than the replica's (or than one its log already
	// holds), or a follower was handed a batch of an epoch newer than the
	// one it follows in; accepting it would break the epoch history.
	ErrStaleLeaderEpoch = errors.New("leader epoch older than the replica's history")
	// ErrNotLeader: Append (or ReadForFollower) on a replica that follows;
	// the broker answers NOT_LEADER_OR_FOLLOWER.
	ErrNotLeader = errors.New("replica is not the leader")
	// ErrNotFollower: AppendAsFollower or a truncation on the leader; a
	// leader's log only grows (the caller's fetcher outlived its role).
	ErrNotFollower = errors.New("replica is the leader, not a follower")
	// ErrClosed: the partition was closed or deleted.
	ErrClosed = errors.New("partition closed")
)
