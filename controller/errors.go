package controller

import "errors"

// Errors of the replication decisions (brokers, AlterPartition, elections,
// reassignments). Each names the Kafka error code the broker answers with;
// errors wrap them with context, so match with errors.Is.
var (
	// ErrStaleBrokerEpoch: STALE_BROKER_EPOCH (77). The request names a
	// broker epoch that is not the broker's registered one (or no
	// registration).
	ErrStaleBrokerEpoch = errors.New("stale broker epoch")
	// ErrUnknownTopicOrPartition: UNKNOWN_TOPIC_OR_PARTITION (3).
	ErrUnknownTopicOrPartition = errors.New("unknown topic or partition")
	// ErrUnknownTopicID: UNKNOWN_TOPIC_ID (100), for requests that name
	// topics by id (AlterPartition v2+).
	ErrUnknownTopicID = errors.New("unknown topic id")
	// ErrNotController: NOT_CONTROLLER (41). The request carries epochs
	// newer than this controller's, so it is behind another controller.
	ErrNotController = errors.New("not the controller")
	// ErrFencedLeaderEpoch: FENCED_LEADER_EPOCH (74).
	ErrFencedLeaderEpoch = errors.New("fenced leader epoch")
	// ErrInvalidRequest: INVALID_REQUEST (42).
	ErrInvalidRequest = errors.New("invalid request")
	// ErrInvalidUpdateVersion: INVALID_UPDATE_VERSION (95), a stale
	// partition epoch in AlterPartition.
	ErrInvalidUpdateVersion = errors.New("invalid update version")
	// ErrIneligibleReplica: INELIGIBLE_REPLICA (107), a proposed ISR
	// member that is unregistered, fenced, shutting down or of another
	// broker epoch (AlterPartition v2+).
	ErrIneligibleReplica = errors.New("ineligible replica")
	// ErrOperationNotAttempted: OPERATION_NOT_ATTEMPTED (55), what
	// AlterPartition v0-1 answers instead of ErrIneligibleReplica.
	ErrOperationNotAttempted = errors.New("operation not attempted")
	// ErrNewLeaderElected: NEW_LEADER_ELECTED (108). The AlterPartition
	// was applied and completed a reassignment that moved the leader away
	// from the requester (v0-1 answer FENCED_LEADER_EPOCH instead).
	ErrNewLeaderElected = errors.New("new leader elected")
	// ErrElectionNotNeeded: ELECTION_NOT_NEEDED (84).
	ErrElectionNotNeeded = errors.New("election not needed")
	// ErrPreferredLeaderNotAvailable: PREFERRED_LEADER_NOT_AVAILABLE (80).
	ErrPreferredLeaderNotAvailable = errors.New("preferred leader not available")
	// ErrEligibleLeadersNotAvailable: ELIGIBLE_LEADERS_NOT_AVAILABLE (83).
	ErrEligibleLeadersNotAvailable = errors.New("eligible leaders not available")
	// ErrNoReassignmentInProgress: NO_REASSIGNMENT_IN_PROGRESS (85).
	ErrNoReassignmentInProgress = errors.New("no reassignment in progress")
	// ErrInvalidReplicaAssignment: INVALID_REPLICA_ASSIGNMENT (39), a
	// manual assignment or reassignment target that names a broker twice,
	// an unregistered broker, no broker, or only inactive brokers.
	ErrInvalidReplicaAssignment = errors.New("invalid replica assignment")
	// ErrDuplicateBrokerRegistration: DUPLICATE_BROKER_REGISTRATION (101),
	// another incarnation of the broker id holds a live session.
	ErrDuplicateBrokerRegistration = errors.New("duplicate broker registration")
	// ErrBrokerNotRegistered: BROKER_ID_NOT_REGISTERED (102).
	ErrBrokerNotRegistered = errors.New("broker id not registered")
	// ErrInconsistentClusterID: INCONSISTENT_CLUSTER_ID (104).
	ErrInconsistentClusterID = errors.New("inconsistent cluster id")
)
