package isr

import (
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The simulator's toy controller: one partition, broker registrations with
// epochs, AlterPartition validated in ReplicationControlManager's order and
// applied with a partition-epoch compare-and-set, and clean elections from
// the ISR when a leader's broker is fenced. ELR is on (KIP-966, Kafka 4.1's
// default): replicas leaving an ISR smaller than min ISR become eligible
// leaders, the ISR may go empty, and a broker that re-registers after an
// unclean shutdown leaves the ISR and ELR. Every change is published to
// every broker as a versioned metadata snapshot (the metadata log: delayed
// and reordered in delivery, never lost, older versions ignored).

type ctrlBroker struct {
	epoch  int64
	fenced bool
}

type controller struct {
	part      PartitionState
	elr       []int32
	minISR    int
	brokers   map[int32]*ctrlBroker
	version   int64
	nextEpoch int64
}

// metadata is one published image: the partition and the brokers.
type metadata struct {
	version int64
	part    PartitionState
	brokers []Broker
}

func newController(replicas []int32, minISR int) *controller {
	c := &controller{
		minISR:    min(minISR, len(replicas)),
		part:      PartitionState{Leader: replicas[0], LeaderEpoch: 1, PartitionEpoch: 1, Replicas: replicas, ISR: slices.Clone(replicas)},
		brokers:   map[int32]*ctrlBroker{},
		nextEpoch: 100,
	}
	for _, id := range replicas {
		c.register(id, false)
	}
	return c
}

// register is a broker's (re-)registration with a new epoch. After an
// unclean shutdown its log may have lost what it had not flushed, so it
// leaves the ISR and ELR (KIP-966's handleBrokerUncleanShutdown).
func (c *controller) register(id int32, unclean bool) int64 {
	c.nextEpoch++
	c.brokers[id] = &ctrlBroker{epoch: c.nextEpoch}
	if p := &c.part; unclean {
		changed := slices.Contains(p.ISR, id) || slices.Contains(c.elr, id)
		p.ISR, c.elr = without(p.ISR, id), without(c.elr, id)
		if p.Leader == id {
			p.Leader, p.LeaderEpoch = -1, p.LeaderEpoch+1
		}
		if changed {
			p.PartitionEpoch++
		}
	}
	c.maybeElect()
	return c.nextEpoch
}

func without(ids []int32, id int32) []int32 {
	return slices.DeleteFunc(slices.Clone(ids), func(m int32) bool { return m == id })
}

// setISR is PartitionChangeBuilder's ISR change with ELR: members leaving an
// ISR below min ISR join the ELR, rejoining members leave it, and an ISR at
// min ISR clears it.
func (c *controller) setISR(isr []int32) {
	old := c.part.ISR
	c.part.ISR = isr
	if len(isr) >= c.minISR {
		c.elr = nil
		return
	}
	for _, id := range old {
		if !slices.Contains(isr, id) && !slices.Contains(c.elr, id) {
			c.elr = append(c.elr, id)
		}
	}
	c.elr = slices.DeleteFunc(c.elr, func(id int32) bool { return slices.Contains(isr, id) })
}

func (c *controller) image() metadata {
	c.version++
	m := metadata{version: c.version, part: c.part}
	m.part.Replicas, m.part.ISR = slices.Clone(c.part.Replicas), slices.Clone(c.part.ISR)
	for _, id := range c.part.Replicas {
		if b := c.brokers[id]; b != nil {
			m.brokers = append(m.brokers, Broker{ID: id, Epoch: b.epoch, Fenced: b.fenced})
		}
	}
	return m
}

func (c *controller) usable(id int32) bool {
	b := c.brokers[id]
	return b != nil && !b.fenced
}

// fence is handleBrokerFenced: out of the ISR (into the ELR if the ISR is
// then below min ISR), and a new leader if it led.
func (c *controller) fence(id int32) {
	c.brokers[id].fenced = true
	p := &c.part
	changed := false
	if slices.Contains(p.ISR, id) {
		c.setISR(without(p.ISR, id))
		changed = true
	}
	if p.Leader == id {
		p.Leader, p.LeaderEpoch, changed = -1, p.LeaderEpoch+1, true
		c.maybeElect()
	}
	if changed {
		p.PartitionEpoch++
	}
}

func (c *controller) unfence(id int32) {
	c.brokers[id].fenced = false
	c.maybeElect()
}

// maybeElect gives an offline partition a leader: the first usable replica
// in assignment order that is in the ISR, or, with an empty ISR, in the ELR
// (which becomes the ISR). Clean elections only.
func (c *controller) maybeElect() {
	p := &c.part
	if p.Leader != -1 {
		return
	}
	for _, id := range p.Replicas {
		if slices.Contains(p.ISR, id) && c.usable(id) {
			p.Leader, p.LeaderEpoch, p.PartitionEpoch = id, p.LeaderEpoch+1, p.PartitionEpoch+1
			return
		}
	}
	if len(p.ISR) > 0 {
		return
	}
	for _, id := range p.Replicas {
		if slices.Contains(c.elr, id) && c.usable(id) {
			p.Leader, p.LeaderEpoch, p.PartitionEpoch = id, p.LeaderEpoch+1, p.PartitionEpoch+1
			c.setISR([]int32{id})
			return
		}
	}
}

// alter validates and applies an AlterPartition from broker `from`, in
// ReplicationControlManager.validateAlterPartitionData's order.
func (c *controller) alter(from int32, brokerEpoch int64, prop Proposal) (AlterResult, bool) {
	p := &c.part
	fail := func(err *kerr.Error) (AlterResult, bool) { return AlterResult{Err: err}, false }
	switch b := c.brokers[from]; {
	case b == nil || b.epoch != brokerEpoch:
		return fail(kerr.StaleBrokerEpoch)
	case prop.LeaderEpoch > p.LeaderEpoch || prop.PartitionEpoch > p.PartitionEpoch:
		return fail(kerr.NotController)
	case prop.LeaderEpoch < p.LeaderEpoch:
		return fail(kerr.FencedLeaderEpoch)
	case from != p.Leader:
		return fail(kerr.InvalidRequest)
	case prop.PartitionEpoch < p.PartitionEpoch:
		return fail(kerr.InvalidUpdateVersion)
	}
	var isr []int32
	for _, st := range prop.ISR {
		if !slices.Contains(p.Replicas, st.ID) {
			return fail(kerr.InvalidRequest)
		}
		isr = append(isr, st.ID)
	}
	if !slices.Contains(isr, from) {
		return fail(kerr.InvalidRequest)
	}
	for _, st := range prop.ISR {
		if b := c.brokers[st.ID]; b == nil || b.fenced || (st.Epoch != -1 && st.Epoch != b.epoch) {
			return fail(kerr.IneligibleReplica)
		}
	}
	slices.Sort(isr)
	changed := !slices.Equal(isr, p.ISR)
	if changed {
		c.setISR(isr)
		p.PartitionEpoch++
	}
	return AlterResult{LeaderEpoch: p.LeaderEpoch, PartitionEpoch: p.PartitionEpoch, ISR: slices.Clone(p.ISR)}, changed
}

// check is the controller's side of the invariants: LeaderInIsr
// (Kip320.tla) and an ISR within the replicas.
func (c *controller) check() error {
	p := c.part
	if p.Leader != -1 && !slices.Contains(p.ISR, p.Leader) {
		return fmt.Errorf("LeaderInIsr: leader %d not in ISR %v", p.Leader, p.ISR)
	}
	if len(p.ISR) == 0 && p.Leader != -1 {
		return fmt.Errorf("empty ISR with leader %d", p.Leader)
	}
	for _, id := range c.elr {
		if slices.Contains(p.ISR, id) {
			return fmt.Errorf("ELR %v overlaps ISR %v", c.elr, p.ISR)
		}
	}
	for _, id := range p.ISR {
		if !slices.Contains(p.Replicas, id) {
			return fmt.Errorf("ISR %v not within replicas %v", p.ISR, p.Replicas)
		}
	}
	return nil
}
