package controller

import (
	"fmt"
	"slices"
	"sort"
)

// The planner turns a request into the records that carry it out. It reads
// State and never changes it; everything a request must respect (a legal
// name, a topic that exists or does not, the partition cap, enough brokers)
// is checked here, so the records it returns always apply (State.Apply
// still checks them, as a guard against a planner bug or a damaged log).

// NewTopic is a topic to create.
type NewTopic struct {
	Name string
	// ID is the new topic's id (NewTopicID); the caller makes it, so that
	// planning stays deterministic.
	ID                TopicID
	Partitions        int32
	ReplicationFactor int16
	// Assignment, when set, names each partition's replicas (CreateTopics'
	// manual assignment); Partitions and ReplicationFactor must match it.
	Assignment [][]int32
	Configs    map[string]string
}

// PlanCreateTopic creates t with its partitions spread by Place over the
// registered brokers. maxPartitions caps the partitions of all topics
// together; every count is checked before anything is allocated, so a
// request for 2^31-1 partitions is an error, not an out-of-memory crash.
func (s *State) PlanCreateTopic(t NewTopic, maxPartitions int64) ([]Record, error) {
	if err := ValidateTopicName(t.Name); err != nil {
		return nil, err
	}
	if _, ok := s.Topics[t.Name]; ok {
		return nil, fmt.Errorf("topic %q: %w", t.Name, ErrTopicExists)
	}
	if t.Partitions <= 0 {
		return nil, fmt.Errorf("topic %q: %w: %d", t.Name, ErrInvalidPartitions, t.Partitions)
	}
	if t.Assignment == nil {
		if err := checkReplicationFactor(t.ReplicationFactor, len(s.activeBrokers())); err != nil {
			return nil, fmt.Errorf("topic %q: %w", t.Name, err)
		}
	}
	if err := s.CheckPartitionBudget(int64(t.Partitions), maxPartitions); err != nil {
		return nil, fmt.Errorf("topic %q: %w", t.Name, err)
	}
	if _, taken := s.byID[t.ID]; taken || t.ID.IsZero() {
		return nil, fmt.Errorf("topic %q: id %s is zero or taken", t.Name, t.ID)
	}
	assignment, err := s.assign(t.Assignment, 0, t.Partitions, t.ReplicationFactor)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", t.Name, err)
	}
	rs := make([]Record, 0, 1+len(assignment)+len(t.Configs))
	rs = append(rs, TopicRecord{Name: t.Name, ID: t.ID})
	rs = append(rs, s.configRecords(t.Name, nil, t.Configs)...)
	return append(rs, s.partitionRecords(t.ID, 0, assignment)...), nil
}

// PlanCreatePartitions grows a topic to count partitions; Kafka never
// shrinks. assignment is optional, as in PlanCreateTopic; the new
// partitions have the replication factor of partition 0.
func (s *State) PlanCreatePartitions(name string, count int32, assignment [][]int32, maxPartitions int64) ([]Record, error) {
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
	rf := int16(1)
	if have > 0 {
		rf = int16(len(t.Partitions[0].Replicas))
	}
	as, err := s.assign(assignment, have, count-have, rf)
	if err != nil {
		return nil, fmt.Errorf("topic %q: %w", name, err)
	}
	return s.partitionRecords(t.ID, have, as), nil
}

// assign returns the replicas of count partitions from first on: the
// manual assignment after checking it, or PlaceOnRacks' over the active
// brokers. A manual assignment may name fenced brokers, but each
// partition needs one active replica to lead it.
func (s *State) assign(manual [][]int32, first, count int32, rf int16) ([][]int32, error) {
	if manual == nil {
		return PlaceOnRacks(s.activeBrokers(), first, count, rf)
	}
	if int32(len(manual)) != count {
		return nil, fmt.Errorf("%w: %d assignments for %d partitions", ErrInvalidReplicaAssignment, len(manual), count)
	}
	for i, replicas := range manual {
		p := first + int32(i)
		if len(replicas) != int(rf) {
			return nil, fmt.Errorf("%w: partition %d: replicas %v for replication factor %d", ErrInvalidReplicaAssignment, p, replicas, rf)
		}
		if err := s.checkReplicas(replicas); err != nil {
			return nil, fmt.Errorf("partition %d: %w", p, err)
		}
		if len(s.activeOf(replicas)) == 0 {
			return nil, fmt.Errorf("%w: partition %d: every broker of %v is fenced or shutting down", ErrInvalidReplicaAssignment, p, replicas)
		}
	}
	return manual, nil
}

// activeBrokers are the brokers new replicas may be placed on, in id order.
func (s *State) activeBrokers() []*Broker {
	var bs []*Broker
	for _, id := range s.BrokerIDs() {
		if b := s.Brokers[id]; b.Active() {
			bs = append(bs, b)
		}
	}
	return bs
}

// activeOf returns the active brokers among ids, in order.
func (s *State) activeOf(ids []int32) []int32 {
	var out []int32
	for _, id := range ids {
		if b, ok := s.Brokers[id]; ok && b.Active() {
			out = append(out, id)
		}
	}
	return out
}

// partitionRecords makes new partitions from first on: their active
// replicas in sync, the first of them leading, at epoch 0.
func (s *State) partitionRecords(id TopicID, first int32, assignment [][]int32) []Record {
	rs := make([]Record, 0, len(assignment))
	for i, replicas := range assignment {
		isr := s.activeOf(replicas)
		epochs := make([]int64, len(isr))
		for j, b := range isr {
			epochs[j] = s.Brokers[b].Epoch
		}
		rs = append(rs, PartitionRecord{TopicID: id, Partition: first + int32(i),
			Replicas: slices.Clone(replicas), ISR: isr, ISREpochs: epochs, Leader: isr[0]})
	}
	return rs
}

// PlanDeleteTopic removes a topic.
func (s *State) PlanDeleteTopic(name string) ([]Record, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	return []Record{RemoveTopicRecord{TopicID: t.ID}}, nil
}

// PlanTopicConfigs replaces a topic's overrides with configs: one
// ConfigRecord per key that changes.
func (s *State) PlanTopicConfigs(name string, configs map[string]string) ([]Record, error) {
	t, ok := s.Topics[name]
	if !ok {
		return nil, fmt.Errorf("topic %q: %w", name, ErrUnknownTopic)
	}
	return s.configRecords(name, t.Configs, configs), nil
}

// configRecords turns the overrides from into to, key by key in sorted
// order, so that the same change always gives the same records.
func (s *State) configRecords(topic string, from, to map[string]string) []Record {
	keys := make([]string, 0, len(from)+len(to))
	for k := range from {
		keys = append(keys, k)
	}
	for k := range to {
		if _, ok := from[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var rs []Record
	for _, k := range keys {
		old, had := from[k]
		v, has := to[k]
		switch {
		case has && (!had || old != v):
			rs = append(rs, ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: topic, Name: k, Value: &v})
		case !has:
			rs = append(rs, ConfigRecord{ResourceType: ConfigResourceTopic, ResourceName: topic, Name: k})
		}
	}
	return rs
}

// PlanBrokerStart registers a broker that (re)starts and starts a new
// leader epoch on every partition it leads: coming back up is a new
// leadership, as in a Kafka cluster, so batches it appends from now on
// carry the new epoch and a client that read data under an older epoch can
// tell (KIP-320) whether the log it read was truncated while the broker was
// down.
func (s *State) PlanBrokerStart(b Broker) []Record {
	rs := []Record{RegisterBrokerRecord{BrokerID: b.ID, Endpoints: slices.Clone(b.Endpoints), Rack: b.Rack}}
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for _, p := range t.Partitions {
			if p.Leader == b.ID {
				rs = append(rs, PartitionChangeRecord{TopicID: t.ID, Partition: p.Index, Leader: b.ID})
			}
		}
	}
	return rs
}

// PlanUndoCreateTopic takes back a topic whose partitions could not be
// opened; nothing if it is gone or is another topic of that name by now.
func (s *State) PlanUndoCreateTopic(name string, id TopicID) []Record {
	if t, ok := s.Topics[name]; !ok || t.ID != id {
		return nil
	}
	return []Record{RemoveTopicRecord{TopicID: id}}
}

// PlanUndoCreatePartitions takes a topic that grew to count partitions,
// which could not all be opened, back to had; nothing if it changed since
// (deleted, or grown again).
func (s *State) PlanUndoCreatePartitions(name string, id TopicID, had, count int32) []Record {
	if t, ok := s.Topics[name]; !ok || t.ID != id || int32(len(t.Partitions)) != count || had <= 0 || had >= count {
		return nil
	}
	return []Record{RemovePartitionsRecord{TopicID: id, Count: had}}
}
