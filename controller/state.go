// Package controller owns the cluster metadata: the brokers and their
// endpoints, which topics exist, their IDs, each partition's replicas, ISR,
// leader and epochs, topic config overrides and the producer-id allocator.
//
// Every change is a Record (records.go) that State.Apply applies: a pure,
// deterministic, validating step with no I/O and no clock, so the same
// records replayed give the same State on any node. A small planner
// (planner.go) turns a request ("create topic t with 3 partitions") into
// records, checking first whatever the request must respect (limits, a
// topic that exists), so a record that reaches the log always applies.
// Placement (placement.go) decides which brokers get the replicas. Store
// (store.go) persists the records and publishes, after each batch, an
// Image (image.go): the read-only view every request handler reads.
//
// The replication decisions are planners of the same kind, after KRaft's
// controller: broker registration, heartbeats, fencing and controlled
// shutdown (brokers.go, with the session clock kept apart in
// heartbeats.go), AlterPartition (alter_partition.go), elections and
// rebalance (elections.go) and reassignment (reassign.go), every
// partition change planned by one builder (change.go) that keeps Kafka's
// rules. The configuration they read comes in as a Policy (policy.go).
//
// State knows nothing of "this node": which broker leads what is data in
// it, registered by RegisterBrokerRecord and PartitionRecord.
package controller

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"sort"
)

// TopicID is a Kafka topic UUID (KIP-516).
type TopicID [16]byte

// IsZero reports whether id is the all-zero UUID Kafka uses for "no ID".
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String renders the id the way Kafka tools do (URL-safe base64, no padding).
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Partition is the metadata of one partition (Kafka's
// PartitionRegistration). The fields after PartitionEpoch are absent in
// metadata written before they existed, which reads as their old meaning.
type Partition struct {
	Index       int32   `json:"index"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	// PartitionEpoch grows with every change of the partition (Kafka's
	// partition epoch, the ZooKeeper era's zkVersion); AlterPartition
	// compares-and-sets on it.
	PartitionEpoch int32 `json:"partition_epoch,omitempty"`
	// ISREpochs is the broker epoch of each ISR member, index by index
	// (KIP-903), or empty when unknown (metadata older than it).
	ISREpochs []int64 `json:"isr_epochs,omitempty"`
	// ELR are the eligible leader replicas (KIP-966): replicas that left
	// the ISR while it was below min.insync.replicas, so they hold every
	// committed record; LastKnownELR are replicas that were in the ISR or
	// ELR and may not be (an unclean shutdown since).
	ELR                 []int32             `json:"elr,omitempty"`
	LastKnownELR        []int32             `json:"last_known_elr,omitempty"`
	LeaderRecoveryState LeaderRecoveryState `json:"leader_recovery_state,omitempty"`
	// AddingReplicas and RemovingReplicas describe a reassignment in
	// progress: Replicas holds both the target replicas and those being
	// removed.
	AddingReplicas   []int32 `json:"adding_replicas,omitempty"`
	RemovingReplicas []int32 `json:"removing_replicas,omitempty"`
}

// Topic is the metadata of one topic.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Broker is a registered broker.
type Broker struct {
	ID int32 `json:"id"`
	// Epoch is the offset of the broker's last RegisterBrokerRecord.
	Epoch       int64         `json:"epoch"`
	Incarnation IncarnationID `json:"incarnation,omitzero"`
	Endpoints   []Endpoint    `json:"endpoints"`
	Rack        *string       `json:"rack,omitempty"`
	// Fenced brokers lead nothing and join no ISR; a broker registers
	// fenced and is unfenced once it has caught up with the metadata.
	Fenced bool `json:"fenced,omitempty"`
	// InControlledShutdown brokers are moving their leaderships away
	// before they stop; they may not lead or join an ISR either.
	InControlledShutdown bool `json:"in_controlled_shutdown,omitempty"`
}

// Active reports whether b may lead and join ISRs: unfenced and not
// shutting down (Kafka's ClusterControlManager.isActive).
func (b *Broker) Active() bool { return !b.Fenced && !b.InControlledShutdown }

// Errors returned by State and the planner; the broker maps them to Kafka
// error codes.
var (
	ErrTopicExists        = errors.New("topic already exists")
	ErrUnknownTopic       = errors.New("unknown topic")
	ErrInvalidTopic       = errors.New("invalid topic name")
	ErrInvalidPartitions  = errors.New("invalid number of partitions")
	ErrInvalidReplication = errors.New("invalid replication factor")
	// ErrPartitionLimit refuses a change that would take the broker past
	// its partition cap (see CheckPartitionBudget).
	ErrPartitionLimit = errors.New("partition limit reached")
	// ErrInvalidRecord is a record State cannot apply: a bug in whatever
	// produced it, since the planner checks everything a record needs.
	ErrInvalidRecord = errors.New("invalid metadata record")
)

// maxTopicNameLen is Kafka's limit: the partition directory name
// "<topic>-<partition>" must stay below common file-name limits.
const maxTopicNameLen = 249

// ValidateTopicName applies Kafka's rules for legal topic names.
func ValidateTopicName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%w: empty", ErrInvalidTopic)
	case name == "." || name == "..":
		return fmt.Errorf("%w: %q is not allowed", ErrInvalidTopic, name)
	case len(name) > maxTopicNameLen:
		return fmt.Errorf("%w: %d characters, the limit is %d", ErrInvalidTopic, len(name), maxTopicNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-'
		if !ok {
			return fmt.Errorf("%w: %q contains %q; only ASCII letters, digits, '.', '_' and '-' are allowed", ErrInvalidTopic, name, c)
		}
	}
	return nil
}

// State is the whole cluster metadata. Apply is its only mutation; treat
// its fields as read-only.
type State struct {
	ClusterID string             `json:"cluster_id"`
	Brokers   map[int32]*Broker  `json:"brokers,omitempty"`
	Topics    map[string]*Topic  `json:"topics"`
	byID      map[TopicID]*Topic // index of Topics, rebuilt on load
	// NextProducerID is the first producer id not yet reserved.
	NextProducerID int64 `json:"next_producer_id"`
	// BrokerConfigs are the dynamic broker settings (broker_configs.go),
	// by resource name: a broker id, or "" for the cluster default.
	BrokerConfigs map[string]map[string]string `json:"broker_configs,omitempty"`
	// owned are the topics this State may change in place: the ones it
	// created or copied (mutableTopic). Every other topic it shares with
	// the State it was cloned from, and with that State's Images.
	owned map[*Topic]bool
}

// NewState returns empty metadata for a new cluster.
func NewState(clusterID string) *State {
	return &State{ClusterID: clusterID, Brokers: map[int32]*Broker{}, Topics: map[string]*Topic{}, byID: map[TopicID]*Topic{}}
}

// NewClusterID makes a random cluster id, as kafka-storage random-uuid.
func NewClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// NewTopicID makes a random, non-zero topic id.
func NewTopicID() TopicID {
	for {
		var id TopicID
		_, _ = rand.Read(id[:])
		if !id.IsZero() {
			return id
		}
	}
}

// Apply validates r against s and applies it. A record that returns an
// error leaves s untouched. Apply is deterministic: no clock, no
// randomness, no I/O.
func (s *State) Apply(r Record) error {
	if err := s.apply(r); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrInvalidRecord, r.recordType(), err)
	}
	return nil
}

func (s *State) apply(r Record) error {
	switch r := r.(type) {
	case RegisterBrokerRecord, BrokerRegistrationChangeRecord, FenceBrokerRecord, UnfenceBrokerRecord:
		return s.applyBroker(r)
	case TopicRecord:
		if err := ValidateTopicName(r.Name); err != nil {
			return err
		}
		if _, ok := s.Topics[r.Name]; ok {
			return fmt.Errorf("topic %q: %w", r.Name, ErrTopicExists)
		}
		if _, ok := s.byID[r.ID]; ok || r.ID.IsZero() {
			return fmt.Errorf("topic %q: id %s is zero or taken", r.Name, r.ID)
		}
		t := &Topic{Name: r.Name, ID: r.ID}
		s.Topics[r.Name], s.byID[r.ID] = t, t
		s.own(t)
	case PartitionRecord:
		t, err := s.mutableTopicByID(r.TopicID)
		if err != nil {
			return err
		}
		if r.Partition != int32(len(t.Partitions)) {
			return fmt.Errorf("topic %q: partition %d added after %d partitions", t.Name, r.Partition, len(t.Partitions))
		}
		p := newPartition(r)
		if err := checkPartition(p); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, r.Partition, err)
		}
		t.Partitions = append(t.Partitions, p)
	case PartitionChangeRecord:
		t, err := s.mutableTopicByID(r.TopicID)
		if err != nil {
			return err
		}
		if r.Partition < 0 || int(r.Partition) >= len(t.Partitions) {
			return fmt.Errorf("topic %q has no partition %d", t.Name, r.Partition)
		}
		p := t.Partitions[r.Partition].merge(r)
		if err := checkPartition(p); err != nil {
			return fmt.Errorf("topic %q partition %d: %w", t.Name, r.Partition, err)
		}
		t.Partitions[r.Partition] = p
	case RemoveTopicRecord:
		t, err := s.topicByID(r.TopicID)
		if err != nil {
			return err
		}
		delete(s.Topics, t.Name)
		delete(s.byID, t.ID)
	case RemovePartitionsRecord:
		t, err := s.mutableTopicByID(r.TopicID)
		if err != nil {
			return err
		}
		if r.Count <= 0 || int(r.Count) > len(t.Partitions) {
			return fmt.Errorf("topic %q: %w: cannot go back to %d partitions from %d", t.Name, ErrInvalidPartitions, r.Count, len(t.Partitions))
		}
		// Cut the capacity too, so partitions added later never share
		// the removed ones' backing array.
		t.Partitions = t.Partitions[:r.Count:r.Count]
	case ConfigRecord:
		if r.ResourceType == ConfigResourceBroker {
			return s.applyBrokerConfig(r)
		}
		if r.ResourceType != ConfigResourceTopic {
			return fmt.Errorf("config resource type %d is not kept in the metadata", r.ResourceType)
		}
		t, ok := s.Topics[r.ResourceName]
		if !ok {
			return fmt.Errorf("topic %q: %w", r.ResourceName, ErrUnknownTopic)
		}
		t = s.mutableTopic(t)
		if r.Value == nil {
			delete(t.Configs, r.Name)
			if len(t.Configs) == 0 {
				t.Configs = nil
			}
			break
		}
		if t.Configs == nil {
			t.Configs = map[string]string{}
		}
		t.Configs[r.Name] = *r.Value
	case ProducerIDsRecord:
		if r.NextProducerID < s.NextProducerID {
			return fmt.Errorf("producer ids would go back from %d to %d", s.NextProducerID, r.NextProducerID)
		}
		s.NextProducerID = r.NextProducerID
	case CheckpointRecord:
		return s.applyCheckpoint(r)
	default:
		return fmt.Errorf("unknown record %T", r)
	}
	return nil
}

// mutableTopicByID is topicByID for a record that changes the topic.
func (s *State) mutableTopicByID(id TopicID) (*Topic, error) {
	t, err := s.topicByID(id)
	if err != nil {
		return nil, err
	}
	return s.mutableTopic(t), nil
}

// mutableTopic returns s's own copy of t, copying it the first time s
// changes it: until then s shares t with the State it was cloned from and
// that State's Images, which never change.
func (s *State) mutableTopic(t *Topic) *Topic {
	if s.owned[t] {
		return t
	}
	c := t.clone()
	s.Topics[c.Name], s.byID[c.ID] = c, c
	s.own(c)
	return c
}

func (s *State) own(t *Topic) {
	if s.owned == nil {
		s.owned = map[*Topic]bool{}
	}
	s.owned[t] = true
}

func (s *State) topicByID(id TopicID) (*Topic, error) {
	t, ok := s.byID[id]
	if !ok {
		return nil, fmt.Errorf("topic id %s: %w", id, ErrUnknownTopic)
	}
	return t, nil
}

// TopicNames returns the topic names in sorted order.
func (s *State) TopicNames() []string {
	names := make([]string, 0, len(s.Topics))
	for n := range s.Topics {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// BrokerIDs returns the registered brokers' ids in ascending order.
func (s *State) BrokerIDs() []int32 {
	ids := make([]int32, 0, len(s.Brokers))
	for id := range s.Brokers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func copyConfigs(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// clone copies s for a batch to be applied to, so that a published State
// (and the Image over it) never changes. Topics are copied on write
// (mutableTopic): a batch that changes one partition copies its topic,
// not all of them, and a topic no batch touched stays the same *Topic
// from Image to Image, which the replica manager uses to skip it.
func (s *State) clone() *State {
	c := *s
	c.owned = nil
	s.owned = nil // the topics are shared now: neither may change them in place
	c.Topics = make(map[string]*Topic, len(s.Topics))
	c.byID = make(map[TopicID]*Topic, len(s.Topics))
	for n, t := range s.Topics {
		c.Topics[n], c.byID[t.ID] = t, t
	}
	c.BrokerConfigs = cloneBrokerConfigs(s.BrokerConfigs)
	c.Brokers = make(map[int32]*Broker, len(s.Brokers))
	for id, b := range s.Brokers {
		bc := *b
		bc.Endpoints = slices.Clone(b.Endpoints)
		c.Brokers[id] = &bc
	}
	return &c
}

// reindex rebuilds what JSON does not carry, after a load.
func (s *State) reindex() {
	if s.Topics == nil {
		s.Topics = map[string]*Topic{}
	}
	if s.Brokers == nil {
		s.Brokers = map[int32]*Broker{}
	}
	s.byID = make(map[TopicID]*Topic, len(s.Topics))
	for _, t := range s.Topics {
		s.byID[t.ID] = t
	}
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Configs = copyConfigs(t.Configs)
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		c.Partitions[i] = p.clone()
	}
	return &c
}
