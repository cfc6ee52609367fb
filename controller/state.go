// Package controller owns the cluster metadata: which topics exist, their IDs,
// partition counts, per-partition leader epochs, topic config overrides and the
// producer-id allocator.
//
// The decisions live in State, an I/O-free value that a test can drive step by
// step; Store wraps it with durability (every accepted change is persisted
// before it becomes visible). Today there is one node, so this node is the
// leader of every partition. The replication issue turns the same State into
// the Raft-free controller's model of the cluster.
package controller

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
)

// TopicID is a Kafka topic UUID (KIP-516).
type TopicID [16]byte

// IsZero reports whether id is the all-zero UUID Kafka uses for "no ID".
func (id TopicID) IsZero() bool { return id == TopicID{} }

// String renders the id the way Kafka tools do (URL-safe base64, no padding).
func (id TopicID) String() string { return base64.RawURLEncoding.EncodeToString(id[:]) }

// Partition is the controller's view of one partition.
type Partition struct {
	Index       int32   `json:"index"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
}

// Topic is the controller's view of one topic.
type Topic struct {
	Name       string            `json:"name"`
	ID         TopicID           `json:"id"`
	Partitions []Partition       `json:"partitions"`
	Configs    map[string]string `json:"configs,omitempty"`
}

// Errors returned by State; the broker maps them to Kafka error codes.
var (
	ErrTopicExists        = errors.New("topic already exists")
	ErrUnknownTopic       = errors.New("unknown topic")
	ErrInvalidTopic       = errors.New("invalid topic name")
	ErrInvalidPartitions  = errors.New("invalid number of partitions")
	ErrInvalidReplication = errors.New("invalid replication factor")
	// ErrPartitionLimit refuses a change that would take the broker past
	// its partition cap (see CheckPartitionBudget).
	ErrPartitionLimit = errors.New("partition limit reached")
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

// State is the whole cluster metadata. Methods validate and apply one change;
// a change that returns an error leaves State untouched.
type State struct {
	ClusterID string            `json:"cluster_id"`
	NodeID    int32             `json:"node_id"`
	Topics    map[string]*Topic `json:"topics"`
	// NextProducerID is the next idempotent producer id to hand out.
	NextProducerID int64 `json:"next_producer_id"`
}

// NewState returns empty metadata for a fresh single-node cluster.
func NewState(nodeID int32) *State {
	return &State{ClusterID: newClusterID(), NodeID: nodeID, Topics: map[string]*Topic{}}
}

func newClusterID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func newTopicID() TopicID {
	for {
		var id TopicID
		_, _ = rand.Read(id[:])
		if !id.IsZero() {
			return id
		}
	}
}

// CreateTopic adds a topic with partitions partitions, all led by this node.
// maxPartitions caps the partitions of all topics together; every count is
// checked before anything is allocated, so a request for 2^31-1 partitions
// is an error, not an out-of-memory crash.
func (s *State) CreateTopic(name string, partitions int32, replicationFactor int16, configs map[string]string, maxPartitions int64) (*Topic, error) {
	if err := ValidateTopicName(name); err != nil {
		return nil, err
	}
	if _, ok := s.Topics[name]; ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrTopicExists)
	}
	if partitions <= 0 {
		return nil, fmt.Errorf("topic %q: %w: %d", name, ErrInvalidPartitions, partitions)
	}
	// One node cannot hold more than one replica of a partition.
	if replicationFactor != 1 {
		return nil, fmt.Errorf("topic %q: %w: %d is larger than the 1 available broker", name, ErrInvalidReplication, replicationFactor)
	}
	if err := s.CheckPartitionBudget(int64(partitions), maxPartitions); err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	t := &Topic{Name: name, ID: newTopicID(), Configs: copyConfigs(configs)}
	t.Partitions = s.newPartitions(0, partitions)
	s.Topics[name] = t
	return t, nil
}

func (s *State) newPartitions(from, to int32) []Partition {
	ps := make([]Partition, 0, to-from)
	for i := from; i < to; i++ {
		ps = append(ps, Partition{Index: i, Leader: s.NodeID, Replicas: []int32{s.NodeID}, ISR: []int32{s.NodeID}})
	}
	return ps
}

// DeleteTopic removes a topic and returns what it was.
func (s *State) DeleteTopic(name string) (*Topic, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	delete(s.Topics, name)
	return t, nil
}

// CreatePartitions grows a topic to count partitions; Kafka never shrinks.
// maxPartitions caps the partitions of all topics together, as in
// CreateTopic.
func (s *State) CreatePartitions(name string, count int32, maxPartitions int64) (*Topic, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	have := int32(len(t.Partitions))
	if count <= have {
		return nil, fmt.Errorf("topic %q: %w: has %d partitions, asked for %d; partitions can only be added", name, ErrInvalidPartitions, have, count)
	}
	if err := s.CheckPartitionBudget(int64(count-have), maxPartitions); err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	t.Partitions = append(t.Partitions, s.newPartitions(have, count)...)
	return t, nil
}

// UndoCreatePartitions shrinks a topic back to had partitions. It exists
// only to roll back a CreatePartitions whose partitions could not be opened
// (a full disk, no file descriptors left), so that the metadata never names
// partitions that have no log; Kafka never shrinks a topic otherwise.
func (s *State) UndoCreatePartitions(name string, had int32) (*Topic, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	if had <= 0 || int(had) > len(t.Partitions) {
		return nil, fmt.Errorf("topic %q: %w: cannot go back to %d partitions from %d", name, ErrInvalidPartitions, had, len(t.Partitions))
	}
	t.Partitions = t.Partitions[:had:had]
	return t, nil
}

// SetTopicConfigs replaces a topic's overrides with configs.
func (s *State) SetTopicConfigs(name string, configs map[string]string) (*Topic, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	t.Configs = copyConfigs(configs)
	return t, nil
}

// BumpLeaderEpochs starts a new leader epoch on every partition this node
// leads. A broker coming back up is a new leadership, as in a Kafka cluster:
// batches it appends from now on carry the new epoch, so a client that read
// data under an older epoch can tell (KIP-320) whether the log it read was
// truncated while the broker was down.
func (s *State) BumpLeaderEpochs() {
	for _, t := range s.Topics {
		for i := range t.Partitions {
			if t.Partitions[i].Leader == s.NodeID {
				t.Partitions[i].LeaderEpoch++
			}
		}
	}
}

// AllocateProducerIDs reserves n consecutive producer ids and returns the first.
func (s *State) AllocateProducerIDs(n int64) int64 {
	first := s.NextProducerID
	s.NextProducerID += n
	return first
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

// clone deep-copies s so Store can hand out snapshots readers may keep.
func (s *State) clone() *State {
	c := *s
	c.Topics = make(map[string]*Topic, len(s.Topics))
	for n, t := range s.Topics {
		c.Topics[n] = t.clone()
	}
	return &c
}

func (t *Topic) clone() *Topic {
	c := *t
	c.Configs = copyConfigs(t.Configs)
	c.Partitions = make([]Partition, len(t.Partitions))
	for i, p := range t.Partitions {
		p.Replicas = append([]int32(nil), p.Replicas...)
		p.ISR = append([]int32(nil), p.ISR...)
		c.Partitions[i] = p
	}
	return &c
}
