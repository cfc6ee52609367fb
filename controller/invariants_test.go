package controller

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestReplicationInvariants drives the planners with random requests
// (registrations, heartbeats, session expiries, AlterPartition, elections,
// reassignments, rebalances, new partitions) and applies every record they
// return one at a time, checking after each one what every Kafka replica
// relies on:
//   - planned records always apply;
//   - every partition is well formed (leader in the ISR or none, ISR and
//     ELR disjoint within the replicas, a recovering leader alone);
//   - a partition change bumps the partition epoch by exactly one, and the
//     leader epoch by one exactly when the leader changes or replicas are
//     removed; no epoch (partition, leader, broker) ever goes back;
//   - once a plan's records are applied, no fenced or shutting-down broker
//     leads anything;
//   - an accepted AlterPartition answers the state its records produce.
func TestReplicationInvariants(t *testing.T) {
	seeds := 150
	if testing.Short() {
		seeds = 30
	}
	for seed := range seeds {
		d := newDriver(t, uint64(seed))
		for step := range 150 {
			d.step()
			if t.Failed() {
				t.Fatalf("seed %d step %d, last plan: %s", seed, step, d.last)
			}
		}
	}
}

type driver struct {
	t       *testing.T
	rng     *rand.Rand
	s       *State
	pol     Policy
	offset  int64
	runs    map[int32]byte
	last    string
	brokers []int32
}

func newDriver(t *testing.T, seed uint64) *driver {
	d := &driver{t: t, rng: rand.New(rand.NewPCG(seed, 1)), s: NewState("c"), runs: map[int32]byte{},
		pol: Policy{MinInsyncReplicas: 1 + int(seed%2), UncleanLeaderElection: seed%5 == 0}, brokers: []int32{1, 2, 3, 4, 5}}
	for _, id := range d.brokers {
		d.register(id, -1)
		d.heartbeat(id, false, false)
	}
	for i, rf := range []int16{1, 2, 3, 3} {
		name := fmt.Sprintf("t%d", i)
		id := TopicID{byte(i + 1), 15: 3}
		d.plan("create "+name, func() ([]Record, error) {
			return d.s.PlanCreateTopic(NewTopic{Name: name, ID: id, Partitions: 3, ReplicationFactor: rf}, 1000)
		})
	}
	return d
}

func (d *driver) pick(ids []int32) int32 { return ids[d.rng.IntN(len(ids))] }

func (d *driver) register(id int32, previous int64) {
	d.runs[id]++
	d.plan(fmt.Sprintf("register %d previous epoch %d", id, previous), func() ([]Record, error) {
		return d.s.PlanRegisterBroker(BrokerRegistration{ID: id, Incarnation: incarnation(id, d.runs[id]), PreviousBrokerEpoch: previous}, false, d.pol)
	})
}

func (d *driver) heartbeat(id int32, fence, shutdown bool) {
	b := d.s.Brokers[id]
	d.plan(fmt.Sprintf("heartbeat %d fence=%v shutdown=%v", id, fence, shutdown), func() ([]Record, error) {
		_, rs, err := d.s.PlanBrokerHeartbeat(Heartbeat{BrokerID: id, BrokerEpoch: b.Epoch, MetadataOffset: d.offset, WantFence: fence, WantShutDown: shutdown}, nil, d.pol)
		return rs, err
	})
}

// randomPartition picks an existing partition.
func (d *driver) randomPartition() (*Topic, Partition) {
	names := d.s.TopicNames()
	t := d.s.Topics[names[d.rng.IntN(len(names))]]
	return t, t.Partitions[d.rng.IntN(len(t.Partitions))]
}

func (d *driver) step() {
	t, p := d.randomPartition()
	switch d.rng.IntN(10) {
	case 0:
		d.heartbeat(d.pick(d.brokers), d.rng.IntN(3) == 0, d.rng.IntN(3) == 0)
	case 1:
		id := d.pick(d.brokers)
		d.plan(fmt.Sprintf("session of %d expired", id), func() ([]Record, error) { return d.s.PlanFenceBroker(id, d.pol) })
	case 2:
		id := d.pick(d.brokers)
		previous := int64(-1)
		if d.rng.IntN(2) == 0 {
			previous = d.s.Brokers[id].Epoch
		}
		d.register(id, previous)
	case 3, 4, 5:
		d.alterPartition(t, p)
	case 6:
		typ := ElectionType(d.rng.IntN(2))
		d.plan(fmt.Sprintf("elect %d %s-%d", typ, t.Name, p.Index), func() ([]Record, error) {
			_, rs := d.s.PlanElectLeaders(typ, []TopicPartition{{t.Name, p.Index}}, d.pol)
			return rs, nil
		})
	case 7:
		var target []int32
		if d.rng.IntN(4) > 0 {
			target = slices.Clone(d.brokers)
			d.rng.Shuffle(len(target), func(i, j int) { target[i], target[j] = target[j], target[i] })
			target = target[:1+d.rng.IntN(3)]
		}
		d.plan(fmt.Sprintf("reassign %s-%d to %v", t.Name, p.Index, target), func() ([]Record, error) {
			_, rs := d.s.PlanAlterPartitionReassignments([]Reassignment{{TopicPartition{t.Name, p.Index}, target}}, d.pol)
			return rs, nil
		})
	case 8:
		d.plan("rebalance", func() ([]Record, error) {
			_, rs := d.s.PlanElectLeaders(PreferredElection, d.s.PlanLeaderRebalance(10), d.pol)
			return rs, nil
		})
	case 9:
		if len(t.Partitions) < 8 {
			d.plan("grow "+t.Name, func() ([]Record, error) {
				rs, err := d.s.PlanCreatePartitions(t.Name, int32(len(t.Partitions)+1), nil, 1000)
				if err != nil {
					return nil, nil // too few active brokers: a fine refusal
				}
				return rs, nil
			})
		}
	}
}

// alterPartition proposes, as the leader would (or with stale epochs now
// and then), an ISR of the leader plus some replicas.
func (d *driver) alterPartition(t *Topic, p Partition) {
	if p.Leader == NoLeader {
		return
	}
	leader := d.s.Brokers[p.Leader]
	isr := []ISRMember{{p.Leader, leader.Epoch}}
	for _, r := range p.Replicas {
		if r != p.Leader && d.rng.IntN(2) == 0 {
			isr = append(isr, ISRMember{r, -1})
		}
	}
	it := AlterPartitionItem{TopicID: t.ID, Partition: p.Index, LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, NewISR: isr}
	if d.rng.IntN(6) == 0 {
		it.PartitionEpoch--
	}
	if p.LeaderRecoveryState == Recovering && d.rng.IntN(2) == 0 {
		it.LeaderRecoveryState = Recovering
	}
	var results []AlterPartitionResult
	d.plan(fmt.Sprintf("alter %s-%d %v", t.Name, p.Index, isr), func() ([]Record, error) {
		res, rs, err := d.s.PlanAlterPartition(p.Leader, leader.Epoch, 3, []AlterPartitionItem{it}, d.pol)
		results = res
		return rs, err
	})
	if r := results[0]; r.Err == nil {
		if got, want := desc(d.s.Topics[t.Name].Partitions[p.Index]), desc(r.Partition); got != want {
			d.t.Errorf("AlterPartition answered %s, the state is %s", want, got)
		}
	}
}

// plan runs one planner and applies its records one by one, checking the
// invariants after each.
func (d *driver) plan(what string, plan func() ([]Record, error)) {
	d.last = what
	rs, err := plan()
	if err != nil {
		return // a refusal changes nothing
	}
	for _, r := range rs {
		before := d.s.clone()
		if err := applyBatch(d.s, d.offset, []Record{r}); err != nil {
			d.t.Errorf("%s: planned record %#v does not apply: %v", what, r, err)
			return
		}
		d.offset++
		d.check(what, before, r)
	}
	for _, b := range d.s.Brokers {
		if !b.Active() && d.s.Leads(b.ID) {
			d.t.Errorf("%s: broker %s leads", what, brokerDesc(b))
		}
	}
}

func (d *driver) check(what string, before *State, r Record) {
	for id, b := range d.s.Brokers {
		if old, ok := before.Brokers[id]; ok && b.Epoch < old.Epoch {
			d.t.Errorf("%s: broker %d epoch went back from %d to %d", what, id, old.Epoch, b.Epoch)
		}
	}
	for name, t := range d.s.Topics {
		bt := before.Topics[name]
		for i, p := range t.Partitions {
			if err := checkPartition(p); err != nil {
				d.t.Errorf("%s: %s-%d: %v", what, name, i, err)
			}
			if bt == nil || i >= len(bt.Partitions) {
				continue
			}
			old := bt.Partitions[i]
			pe, le := p.PartitionEpoch-old.PartitionEpoch, p.LeaderEpoch-old.LeaderEpoch
			changed := false
			if c, ok := r.(PartitionChangeRecord); ok && c.TopicID == t.ID && c.Partition == int32(i) {
				changed = true
			}
			wantLE := int32(0)
			if changed && (p.Leader != old.Leader || !subset(old.Replicas, p.Replicas)) {
				wantLE = 1
			}
			if changed && pe != 1 || !changed && pe != 0 || le != wantLE {
				d.t.Errorf("%s: %s-%d went from %s to %s: partition epoch +%d, leader epoch +%d (want +%d)",
					what, name, i, desc(old), desc(p), pe, le, wantLE)
			}
		}
	}
}
