package controller

import (
	"encoding/json"
	"fmt"
)

// A Record is one change to the cluster metadata, as data: State.Apply is
// the only way State changes, so a sequence of records can be logged,
// replicated to other nodes and replayed to the same State. The record
// types follow Kafka's KRaft metadata records (TopicRecord,
// PartitionRecord, PartitionChangeRecord, ConfigRecord, RemoveTopicRecord,
// RegisterBrokerRecord, ProducerIdsRecord) so that the replicated metadata
// log of the cluster issues carries the same vocabulary.
type Record interface {
	// recordType names the record in the encoded log; it also seals the
	// interface to this package's types.
	recordType() string
}

// NoLeaderChange in PartitionChangeRecord.Leader leaves the leader (and the
// leader epoch) as they are; Kafka's NO_LEADER_CHANGE.
const NoLeaderChange int32 = -2

// NoLeader is a partition without a leader (Kafka's -1).
const NoLeader int32 = -1

// Endpoint is one listener a broker advertises.
type Endpoint struct {
	Name string `json:"name"` // the listener name, e.g. PLAINTEXT
	Host string `json:"host"`
	Port int32  `json:"port"`
}

// IncarnationID names one run of a broker process (Kafka's IncarnationId,
// a UUID made at start): a registration with a new one is a new process.
type IncarnationID [16]byte

// IsZero reports whether id is unset, as in records written before
// incarnations were recorded.
func (id IncarnationID) IsZero() bool { return id == IncarnationID{} }

// RegisterBrokerRecord registers a broker, or replaces its registration
// when it starts again. Its BrokerEpoch is the offset of the record in the
// metadata log (the KRaft rule), set by the Store when it appends it; a
// record that repeats the registered non-zero IncarnationID amends the
// registration and keeps its epoch, fencing and shutdown state, as Kafka's
// ClusterControlManager.registerBroker does.
//
// Fenced and InControlledShutdown are zero in records written before they
// existed, which is their old meaning: a registered broker was live.
type RegisterBrokerRecord struct {
	BrokerID             int32         `json:"broker_id"`
	BrokerEpoch          int64         `json:"broker_epoch"`
	IncarnationID        IncarnationID `json:"incarnation_id,omitzero"`
	Endpoints            []Endpoint    `json:"endpoints"`
	Rack                 *string       `json:"rack,omitempty"`
	Fenced               bool          `json:"fenced,omitempty"`
	InControlledShutdown bool          `json:"in_controlled_shutdown,omitempty"`
}

// Fencing changes in BrokerRegistrationChangeRecord.Fenced (Kafka's
// BrokerRegistrationFencingChange).
const (
	FenceUnchanged int8 = 0
	FenceBroker    int8 = 1
	UnfenceBroker  int8 = -1
)

// BrokerRegistrationChangeRecord changes a registered broker's state:
// Fenced is one of FenceUnchanged, FenceBroker, UnfenceBroker, and
// InControlledShutdown 1 starts its controlled shutdown (0 leaves it). It
// applies only to the registration of BrokerEpoch, so a change planned for
// an earlier incarnation never touches a newer one.
type BrokerRegistrationChangeRecord struct {
	BrokerID             int32 `json:"broker_id"`
	BrokerEpoch          int64 `json:"broker_epoch"`
	Fenced               int8  `json:"fenced,omitempty"`
	InControlledShutdown int8  `json:"in_controlled_shutdown,omitempty"`
}

// FenceBrokerRecord fences the registration of broker ID at Epoch (Kafka's
// older record for what BrokerRegistrationChangeRecord now says).
type FenceBrokerRecord struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// UnfenceBrokerRecord unfences the registration of broker ID at Epoch.
type UnfenceBrokerRecord struct {
	ID    int32 `json:"id"`
	Epoch int64 `json:"epoch"`
}

// TopicRecord creates a topic with no partitions yet; PartitionRecords
// follow it.
type TopicRecord struct {
	Name string  `json:"name"`
	ID   TopicID `json:"id"`
}

// LeaderRecoveryState says whether a leader elected uncleanly has
// finished recovering its log (KIP-704): while RECOVERING, its ISR is
// itself alone.
type LeaderRecoveryState int8

// Kafka's LeaderRecoveryState values.
const (
	Recovered  LeaderRecoveryState = 0
	Recovering LeaderRecoveryState = 1
)

// PartitionRecord adds the next partition of a topic (partitions are added
// in index order, with no gaps). The fields after PartitionEpoch are
// optional; absent, they are the old meaning: no broker epochs known for
// the ISR, no ELR, recovered, no reassignment.
type PartitionRecord struct {
	TopicID        TopicID `json:"topic_id"`
	Partition      int32   `json:"partition"`
	Replicas       []int32 `json:"replicas"`
	ISR            []int32 `json:"isr"`
	Leader         int32   `json:"leader"`
	LeaderEpoch    int32   `json:"leader_epoch"`
	PartitionEpoch int32   `json:"partition_epoch"`
	// ISREpochs is the broker epoch of each ISR member, beside ISR
	// (KIP-903); -1 where unknown.
	ISREpochs           []int64             `json:"isr_epochs,omitempty"`
	ELR                 []int32             `json:"elr,omitempty"`
	LastKnownELR        []int32             `json:"last_known_elr,omitempty"`
	LeaderRecoveryState LeaderRecoveryState `json:"leader_recovery_state,omitempty"`
	AddingReplicas      []int32             `json:"adding_replicas,omitempty"`
	RemovingReplicas    []int32             `json:"removing_replicas,omitempty"`
}

// PartitionChangeRecord changes a partition. Nil slices, a nil
// LeaderRecoveryState and NoLeaderChange leave that field alone; an empty
// non-nil slice empties it (it survives encoding: the tags are omitzero).
// Every change bumps the partition epoch; setting Leader, even to the
// current leader, starts a new leader epoch (Kafka's
// PartitionRegistration.merge), which is how the planners bump it when
// replicas are removed. ISREpochs goes with ISR: set ISR without it and
// the epochs are forgotten (unknown).
type PartitionChangeRecord struct {
	TopicID             TopicID              `json:"topic_id"`
	Partition           int32                `json:"partition"`
	Leader              int32                `json:"leader"`
	ISR                 []int32              `json:"isr,omitzero"`
	ISREpochs           []int64              `json:"isr_epochs,omitzero"`
	Replicas            []int32              `json:"replicas,omitzero"`
	ELR                 []int32              `json:"elr,omitzero"`
	LastKnownELR        []int32              `json:"last_known_elr,omitzero"`
	LeaderRecoveryState *LeaderRecoveryState `json:"leader_recovery_state,omitempty"`
	AddingReplicas      []int32              `json:"adding_replicas,omitzero"`
	RemovingReplicas    []int32              `json:"removing_replicas,omitzero"`
}

// RemoveTopicRecord deletes a topic and all its partitions.
type RemoveTopicRecord struct {
	TopicID TopicID `json:"topic_id"`
}

// RemovePartitionsRecord shrinks a topic back to Count partitions. Kafka
// has no such record and never shrinks a topic; Sluice uses it only to take
// back partitions it recorded but could not open (a full disk, no file
// descriptors), so the metadata never names partitions without a log.
type RemovePartitionsRecord struct {
	TopicID TopicID `json:"topic_id"`
	Count   int32   `json:"count"`
}

// ConfigResourceTopic is the topic resource type of Kafka's ConfigRecord.
const ConfigResourceTopic int8 = 2

// ConfigRecord sets (or, with a nil Value, removes) one config override of
// a resource: a topic (ConfigResourceTopic) or a broker's dynamic settings
// (ConfigResourceBroker, broker_configs.go).
type ConfigRecord struct {
	ResourceType int8    `json:"resource_type"`
	ResourceName string  `json:"resource_name"`
	Name         string  `json:"name"`
	Value        *string `json:"value"`
}

// ProducerIDsRecord reserves producer ids: every id below NextProducerID is
// handed out (or skipped), never to be reused.
type ProducerIDsRecord struct {
	NextProducerID int64 `json:"next_producer_id"`
}

func (RegisterBrokerRecord) recordType() string { return "register_broker" }
func (BrokerRegistrationChangeRecord) recordType() string {
	return "broker_registration_change"
}
func (FenceBrokerRecord) recordType() string      { return "fence_broker" }
func (UnfenceBrokerRecord) recordType() string    { return "unfence_broker" }
func (TopicRecord) recordType() string            { return "topic" }
func (PartitionRecord) recordType() string        { return "partition" }
func (PartitionChangeRecord) recordType() string  { return "partition_change" }
func (RemoveTopicRecord) recordType() string      { return "remove_topic" }
func (RemovePartitionsRecord) recordType() string { return "remove_partitions" }
func (ConfigRecord) recordType() string           { return "config" }
func (ProducerIDsRecord) recordType() string      { return "producer_ids" }

// envelope is a record in the log: its type, then its fields.
type envelope struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data"`
}

// decoders make an empty record of each type for json to fill.
var decoders = map[string]func() Record{
	"register_broker":            func() Record { return &RegisterBrokerRecord{} },
	"broker_registration_change": func() Record { return &BrokerRegistrationChangeRecord{} },
	"fence_broker":               func() Record { return &FenceBrokerRecord{} },
	"unfence_broker":             func() Record { return &UnfenceBrokerRecord{} },
	"topic":                      func() Record { return &TopicRecord{} },
	"partition":                  func() Record { return &PartitionRecord{} },
	"partition_change":           func() Record { return &PartitionChangeRecord{} },
	"remove_topic":               func() Record { return &RemoveTopicRecord{} },
	"remove_partitions":          func() Record { return &RemovePartitionsRecord{} },
	"config":                     func() Record { return &ConfigRecord{} },
	"producer_ids":               func() Record { return &ProducerIDsRecord{} },
	"metadata_checkpoint":        func() Record { return &CheckpointRecord{} },
}

// EncodeRecord renders r for the metadata log.
func EncodeRecord(r Record) ([]byte, error) {
	data, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("controller: encode %s record: %w", r.recordType(), err)
	}
	return json.Marshal(envelope{Type: r.recordType(), Data: data})
}

// DecodeRecord parses what EncodeRecord wrote. Records come back as values
// (TopicRecord, not *TopicRecord), as they were applied.
func DecodeRecord(b []byte) (Record, error) {
	var e envelope
	if err := json.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("controller: decode record: %w", err)
	}
	mk, ok := decoders[e.Type]
	if !ok {
		return nil, fmt.Errorf("controller: decode record: unknown type %q", e.Type)
	}
	r := mk()
	if err := json.Unmarshal(e.Data, r); err != nil {
		return nil, fmt.Errorf("controller: decode %s record: %w", e.Type, err)
	}
	return deref(r), nil
}

// deref turns the pointer a decoder filled into the value callers build.
func deref(r Record) Record {
	switch v := r.(type) {
	case *RegisterBrokerRecord:
		return *v
	case *BrokerRegistrationChangeRecord:
		return *v
	case *FenceBrokerRecord:
		return *v
	case *UnfenceBrokerRecord:
		return *v
	case *TopicRecord:
		return *v
	case *PartitionRecord:
		return *v
	case *PartitionChangeRecord:
		return *v
	case *RemoveTopicRecord:
		return *v
	case *RemovePartitionsRecord:
		return *v
	case *ConfigRecord:
		return *v
	case *ProducerIDsRecord:
		return *v
	case *CheckpointRecord:
		return *v
	}
	return r
}
