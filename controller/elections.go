package controller

import (
	"fmt"
	"slices"
)

// ElectionType is ElectLeaders' ElectionType (KIP-460).
type ElectionType int8

// Kafka's election types.
const (
	PreferredElection ElectionType = 0
	UncleanElection   ElectionType = 1
)

// TopicPartition names one partition.
type TopicPartition struct {
	Topic     string
	Partition int32
}

// ElectionResult is the answer for one partition: Err nil (a record
// elects the new leader) or wrapping ErrElectionNotNeeded,
// ErrPreferredLeaderNotAvailable, ErrEligibleLeadersNotAvailable or
// ErrUnknownTopicOrPartition.
type ElectionResult struct {
	TopicPartition
	Err error
}

// PlanElectLeaders plans an ElectLeaders request
// (ReplicationControlManager.electLeader). A preferred election makes the
// first replica the leader if it is in the ISR and active; one that leads
// already needs none. An unclean election is for partitions without a
// leader: a clean choice if there is one, else any active replica, whose
// ISR becomes itself alone, RECOVERING. parts nil means every partition,
// and then the partitions that need no election are left out, as Kafka
// does.
func (s *State) PlanElectLeaders(typ ElectionType, parts []TopicPartition, pol Policy) ([]ElectionResult, []Record) {
	all := parts == nil
	if all {
		parts = s.allPartitions()
	}
	var results []ElectionResult
	var rs []Record
	for _, tp := range parts {
		rec, err := s.planElection(typ, tp, pol)
		if all && err != nil {
			continue
		}
		if err == nil {
			rs = append(rs, rec)
		}
		results = append(results, ElectionResult{TopicPartition: tp, Err: err})
	}
	return results, rs
}

func (s *State) planElection(typ ElectionType, tp TopicPartition, pol Policy) (PartitionChangeRecord, error) {
	t, ok := s.Topics[tp.Topic]
	if !ok || tp.Partition < 0 || int(tp.Partition) >= len(t.Partitions) {
		return PartitionChangeRecord{}, fmt.Errorf("%w: %s-%d", ErrUnknownTopicOrPartition, tp.Topic, tp.Partition)
	}
	p := t.Partitions[tp.Partition]
	switch {
	case typ == PreferredElection && p.Leader == p.Replicas[0]:
		return PartitionChangeRecord{}, fmt.Errorf("%w: %s-%d is led by its preferred replica %d", ErrElectionNotNeeded, tp.Topic, tp.Partition, p.Leader)
	case typ == UncleanElection && p.Leader != NoLeader:
		return PartitionChangeRecord{}, fmt.Errorf("%w: %s-%d has leader %d", ErrElectionNotNeeded, tp.Topic, tp.Partition, p.Leader)
	case typ != PreferredElection && typ != UncleanElection:
		return PartitionChangeRecord{}, fmt.Errorf("%w: election type %d", ErrInvalidRequest, typ)
	}
	c := s.newChange(t, p, pol)
	c.election = electPreferred
	if typ == UncleanElection {
		c.election = electUnclean
	}
	rec, changed := c.build()
	switch {
	case changed:
		return rec, nil
	case typ == PreferredElection:
		return rec, fmt.Errorf("%w: %s-%d: replica %d is not an active ISR member", ErrPreferredLeaderNotAvailable, tp.Topic, tp.Partition, p.Replicas[0])
	default:
		return rec, fmt.Errorf("%w: %s-%d: no active replica", ErrEligibleLeadersNotAvailable, tp.Topic, tp.Partition)
	}
}

// allPartitions names every partition, in topic-name and index order.
func (s *State) allPartitions() []TopicPartition {
	var parts []TopicPartition
	for _, name := range s.TopicNames() {
		for _, p := range s.Topics[name].Partitions {
			parts = append(parts, TopicPartition{Topic: name, Partition: p.Index})
		}
	}
	return parts
}

// PlanLeaderRebalance returns the partitions whose preferred replica
// should get its leadership back (auto.leader.rebalance.enable): for each
// broker, among the partitions it is the preferred replica of, if the
// share it does not lead exceeds imbalancePercent
// (leader.imbalance.per.broker.percentage), every one of those it could
// lead (active, in the ISR). Partitions being reassigned are left alone.
// Elect them with PlanElectLeaders(PreferredElection, ...).
func (s *State) PlanLeaderRebalance(imbalancePercent int) []TopicPartition {
	preferred := map[int32]int{}
	notLed := map[int32][]TopicPartition{}
	for _, tp := range s.allPartitions() {
		p := s.Topics[tp.Topic].Partitions[tp.Partition]
		if p.Reassigning() {
			continue
		}
		pref := p.Replicas[0]
		preferred[pref]++
		if p.Leader != pref {
			notLed[pref] = append(notLed[pref], tp)
		}
	}
	var out []TopicPartition
	for _, id := range s.BrokerIDs() {
		if len(notLed[id])*100 <= imbalancePercent*preferred[id] {
			continue
		}
		b := s.Brokers[id]
		for _, tp := range notLed[id] {
			if b.Active() && slices.Contains(s.Topics[tp.Topic].Partitions[tp.Partition].ISR, id) {
				out = append(out, tp)
			}
		}
	}
	return out
}

// PlanUncleanRecovery returns the partitions without a leader whose topic
// allows unclean elections: what Kafka's controller tries every
// unclean.leader.election.interval.ms. Elect them with
// PlanElectLeaders(UncleanElection, ...).
func (s *State) PlanUncleanRecovery(pol Policy) []TopicPartition {
	var out []TopicPartition
	for _, tp := range s.allPartitions() {
		t := s.Topics[tp.Topic]
		if t.Partitions[tp.Partition].Leader == NoLeader && pol.Unclean(t) {
			out = append(out, tp)
		}
	}
	return out
}
