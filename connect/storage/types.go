package storage

import "fmt"

// TaskID names one task of a connector (Kafka's ConnectorTaskId).
type TaskID struct {
	Connector string
	Task      int
}

func (t TaskID) String() string { return fmt.Sprintf("%s-%d", t.Connector, t.Task) }

// TargetState is the state a user asked a connector to be in.
type TargetState string

// Target states, as persisted in target-state-<name> records.
const (
	TargetStarted TargetState = "STARTED"
	TargetPaused  TargetState = "PAUSED"
	TargetStopped TargetState = "STOPPED"
)

func (s TargetState) valid() bool {
	return s == TargetStarted || s == TargetPaused || s == TargetStopped
}

// RestartRequest is a persisted restart (KIP-745), executed by the leader.
type RestartRequest struct {
	Connector    string
	IncludeTasks bool
	OnlyFailed   bool
}

// SessionKey is the key workers sign internal REST requests with (KIP-507).
type SessionKey struct {
	Key               []byte
	Algorithm         string
	CreationTimestamp int64 // ms
}

// ConnectorOffset is one source partition (or sink topic-partition) and its
// offset; a nil Offset is a tombstone (the partition's offset is reset). It
// has the shape of connect/api's ConnectorOffset, so one converts to the
// other.
type ConnectorOffset struct {
	Partition map[string]any `json:"partition"`
	Offset    map[string]any `json:"offset"`
}
