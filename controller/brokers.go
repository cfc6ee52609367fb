package controller

import (
	"fmt"
	"slices"
)

// Brokers register, heartbeat, are fenced and unfenced, and shut down,
// as in KRaft (ClusterControlManager, BrokerHeartbeatManager and
// ReplicationControlManager): every change of a broker's state is a
// record, and so is every partition change it causes, planned here from
// State alone. The session clock lives in Heartbeats (heartbeats.go).

// applyBroker applies the broker records.
func (s *State) applyBroker(r Record) error {
	switch r := r.(type) {
	case RegisterBrokerRecord:
		if r.BrokerID < 0 {
			return fmt.Errorf("broker id %d", r.BrokerID)
		}
		b := &Broker{ID: r.BrokerID, Epoch: r.BrokerEpoch, Incarnation: r.IncarnationID, Endpoints: slices.Clone(r.Endpoints),
			Rack: r.Rack, Fenced: r.Fenced, InControlledShutdown: r.InControlledShutdown}
		if old, ok := s.Brokers[r.BrokerID]; ok && !r.IncarnationID.IsZero() && old.Incarnation == r.IncarnationID {
			// The same process registering again amends its
			// registration: the session, and so the epoch, go on.
			b.Epoch, b.Fenced, b.InControlledShutdown = old.Epoch, old.Fenced, old.InControlledShutdown
		}
		s.Brokers[r.BrokerID] = b
	case BrokerRegistrationChangeRecord:
		b, err := s.brokerAt(r.BrokerID, r.BrokerEpoch)
		if err != nil {
			return err
		}
		switch r.Fenced {
		case FenceUnchanged:
		case FenceBroker:
			b.Fenced = true
		case UnfenceBroker:
			b.Fenced = false
		default:
			return fmt.Errorf("broker %d: fencing change %d", r.BrokerID, r.Fenced)
		}
		switch r.InControlledShutdown {
		case 0:
		case 1:
			b.InControlledShutdown = true
		default:
			return fmt.Errorf("broker %d: controlled shutdown change %d", r.BrokerID, r.InControlledShutdown)
		}
	case FenceBrokerRecord:
		b, err := s.brokerAt(r.ID, r.Epoch)
		if err != nil {
			return err
		}
		b.Fenced = true
	case UnfenceBrokerRecord:
		b, err := s.brokerAt(r.ID, r.Epoch)
		if err != nil {
			return err
		}
		b.Fenced = false
	}
	return nil
}

// brokerAt is broker id's registration if it has epoch.
func (s *State) brokerAt(id int32, epoch int64) (*Broker, error) {
	b, ok := s.Brokers[id]
	if !ok {
		return nil, fmt.Errorf("broker %d: %w", id, ErrBrokerNotRegistered)
	}
	if b.Epoch != epoch {
		return nil, fmt.Errorf("broker %d has epoch %d, not %d: %w", id, b.Epoch, epoch, ErrStaleBrokerEpoch)
	}
	return b, nil
}

// CheckBrokerEpoch reports ErrStaleBrokerEpoch unless broker id is
// registered with epoch (ClusterControlManager.checkBrokerEpoch).
func (s *State) CheckBrokerEpoch(id int32, epoch int64) error {
	if _, err := s.brokerAt(id, epoch); err != nil {
		return fmt.Errorf("%w: %w", ErrStaleBrokerEpoch, err)
	}
	return nil
}

// LiveBrokerCount is the number of unfenced brokers, what Kafka caps
// offsets.topic.replication.factor (and the other internal topics') at.
func (s *State) LiveBrokerCount() int {
	n := 0
	for _, b := range s.Brokers {
		if !b.Fenced {
			n++
		}
	}
	return n
}

// RegisteredBrokerCount is the number of registered brokers, fenced or
// not: the brokers the cluster has, whether or not they are up now.
func (s *State) RegisteredBrokerCount() int { return len(s.Brokers) }

// BrokerRegistration is a BrokerRegistration request.
type BrokerRegistration struct {
	ID          int32
	ClusterID   string // empty skips the check
	Incarnation IncarnationID
	Endpoints   []Endpoint
	Rack        *string
	// PreviousBrokerEpoch is the epoch the broker had before it restarted
	// after a clean shutdown (v3+), or -1: equal to the registered epoch,
	// the restart was clean and the broker keeps its place in ISRs and
	// ELRs.
	PreviousBrokerEpoch int64
}

// PlanRegisterBroker registers a broker (BrokerRegistration). A new
// incarnation registers fenced, with a new epoch (the record's offset:
// read it from the committed Image); unless the broker shut down cleanly
// (PreviousBrokerEpoch), its replicas first leave every ISR and ELR, since
// it may have lost unflushed records (KIP-966). The same incarnation
// amends the registration and keeps its epoch. liveSession says whether
// the registered incarnation still holds a session (Heartbeats): another
// incarnation is then refused, as two processes with one id would be.
func (s *State) PlanRegisterBroker(req BrokerRegistration, liveSession bool, pol Policy) ([]Record, error) {
	if req.ClusterID != "" && req.ClusterID != s.ClusterID {
		return nil, fmt.Errorf("%w: broker %d is of cluster %q, this is %q", ErrInconsistentClusterID, req.ID, req.ClusterID, s.ClusterID)
	}
	if req.ID < 0 {
		return nil, fmt.Errorf("%w: broker id %d", ErrInvalidRequest, req.ID)
	}
	reg := RegisterBrokerRecord{BrokerID: req.ID, IncarnationID: req.Incarnation, Endpoints: slices.Clone(req.Endpoints), Rack: req.Rack}
	old, ok := s.Brokers[req.ID]
	if ok && !req.Incarnation.IsZero() && old.Incarnation == req.Incarnation {
		return []Record{reg}, nil
	}
	if ok && liveSession {
		return nil, fmt.Errorf("%w: broker %d is registered by another incarnation with a live session", ErrDuplicateBrokerRegistration, req.ID)
	}
	reg.Fenced = true
	var rs []Record
	switch {
	case !ok || req.PreviousBrokerEpoch < 0 || req.PreviousBrokerEpoch != old.Epoch:
		rs = s.planUncleanShutdown(req.ID, pol)
	case !old.Fenced:
		// A clean shutdown ends fenced; if this one did not (a new
		// controller that never saw it go), the new incarnation must
		// not find itself leading before it has caught up.
		rs = s.planRemoveFromISRs(req.ID, pol)
	}
	return append(rs, reg), nil
}

// planUncleanShutdown takes broker id out of every ISR and ELR, electing
// new leaders where it led (ReplicationControlManager.handleBrokerUncleanShutdown).
func (s *State) planUncleanShutdown(id int32, pol Policy) []Record {
	return s.planPartitions(pol, func(p Partition) bool {
		return slices.Contains(p.ISR, id) || slices.Contains(p.ELR, id)
	}, func(c *change) {
		c.uncleanShutdown = id
		c.isr = without(c.isr, id)
	})
}

// PlanFenceBroker fences broker id: it leaves every ISR, and every
// partition it led gets a new leader from the ISR (or the ELR) with a new
// leader epoch, or none; then its registration is marked fenced. Nothing
// if it is fenced already.
func (s *State) PlanFenceBroker(id int32, pol Policy) ([]Record, error) {
	b, ok := s.Brokers[id]
	if !ok {
		return nil, fmt.Errorf("broker %d: %w", id, ErrBrokerNotRegistered)
	}
	if b.Fenced {
		return nil, nil
	}
	rs := s.planRemoveFromISRs(id, pol)
	return append(rs, BrokerRegistrationChangeRecord{BrokerID: id, BrokerEpoch: b.Epoch, Fenced: FenceBroker}), nil
}

// planRemoveFromISRs takes id out of every ISR and away from every
// leadership (generateLeaderAndIsrUpdates with brokerToRemove).
func (s *State) planRemoveFromISRs(id int32, pol Policy) []Record {
	return s.planPartitions(pol, func(p Partition) bool {
		return slices.Contains(p.ISR, id) || p.Leader == id
	}, func(c *change) {
		c.exclude = id
		c.isr = without(c.isr, id)
	})
}

// planUnfence unfences broker b and elects leaders, b among the
// candidates, for the partitions that have none.
func (s *State) planUnfence(b *Broker, pol Policy) []Record {
	rs := []Record{BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, Fenced: UnfenceBroker}}
	return append(rs, s.planPartitions(pol, func(p Partition) bool { return p.Leader == NoLeader }, func(c *change) {
		c.include = b.ID
	})...)
}

// planControlledShutdown marks broker b as shutting down and moves its
// leaderships and ISR memberships away.
func (s *State) planControlledShutdown(b *Broker, pol Policy) []Record {
	var rs []Record
	if !b.InControlledShutdown {
		rs = append(rs, BrokerRegistrationChangeRecord{BrokerID: b.ID, BrokerEpoch: b.Epoch, InControlledShutdown: 1})
	}
	return append(rs, s.planRemoveFromISRs(b.ID, pol)...)
}

// planPartitions builds one change for every partition match selects,
// shaped by target, in topic-name and partition order.
func (s *State) planPartitions(pol Policy, match func(Partition) bool, target func(*change)) []Record {
	var rs []Record
	for _, name := range s.TopicNames() {
		t := s.Topics[name]
		for _, p := range t.Partitions {
			if !match(p) {
				continue
			}
			c := s.newChange(t, p, pol)
			target(c)
			if rec, ok := c.build(); ok {
				rs = append(rs, rec)
			}
		}
	}
	return rs
}

// Leads reports whether broker id leads any partition.
func (s *State) Leads(id int32) bool {
	for _, t := range s.Topics {
		for _, p := range t.Partitions {
			if p.Leader == id {
				return true
			}
		}
	}
	return false
}

// Heartbeat is a BrokerHeartbeat request. MetadataOffset is the offset of
// the last metadata record the broker has applied (its Image's Offset()-1),
// or -1.
type Heartbeat struct {
	BrokerID       int32
	BrokerEpoch    int64
	MetadataOffset int64
	WantFence      bool
	WantShutDown   bool
}

// HeartbeatReply is what the BrokerHeartbeat response says.
type HeartbeatReply struct {
	IsCaughtUp           bool
	IsFenced             bool
	InControlledShutdown bool
	ShouldShutDown       bool
}

// PlanBrokerHeartbeat decides a heartbeat as Kafka's
// BrokerHeartbeatManager.calculateNextBrokerState does:
//   - a fenced broker is unfenced once it has caught up with its own
//     registration (MetadataOffset >= its epoch) and does not want to stay
//     fenced; one that wants to shut down, or was shut down, may at once;
//   - an unfenced broker that wants to shut down enters controlled
//     shutdown when it leads something (its leaderships and ISR places
//     move away), else it may shut down at once (and is fenced);
//   - a broker in controlled shutdown may shut down (ShouldShutDown) once
//     it leads nothing and every active broker has applied the records
//     that moved its leaderships (hb's controlled-shutdown offset).
//
// hb is read, not changed: after committing the records, record the
// heartbeat with hb.Touch. A nil hb reads as every offset reached.
func (s *State) PlanBrokerHeartbeat(req Heartbeat, hb *Heartbeats, pol Policy) (HeartbeatReply, []Record, error) {
	b, err := s.brokerAt(req.BrokerID, req.BrokerEpoch)
	if err != nil {
		return HeartbeatReply{}, nil, fmt.Errorf("%w: %w", ErrStaleBrokerEpoch, err)
	}
	reply := HeartbeatReply{IsCaughtUp: req.MetadataOffset >= b.Epoch}
	fence := func() ([]Record, error) {
		reply.IsFenced = true
		return s.PlanFenceBroker(b.ID, pol)
	}
	var rs []Record
	switch {
	case b.Fenced:
		reply.IsFenced = true
		switch {
		case req.WantShutDown || b.InControlledShutdown:
			// A shutdown, once granted, ends this incarnation: it
			// comes back only by registering again.
			reply.ShouldShutDown = true
		case !req.WantFence && reply.IsCaughtUp:
			reply.IsFenced = false
			rs = s.planUnfence(b, pol)
		}
	case b.InControlledShutdown:
		reply.InControlledShutdown = true
		if !s.Leads(b.ID) && hb.shutdownOffsetReached(b.ID) {
			reply.InControlledShutdown, reply.ShouldShutDown = false, true
			rs, err = fence()
		}
	case req.WantFence:
		reply.ShouldShutDown = req.WantShutDown
		rs, err = fence()
	case req.WantShutDown && s.Leads(b.ID):
		reply.InControlledShutdown = true
		rs = s.planControlledShutdown(b, pol)
	case req.WantShutDown:
		reply.ShouldShutDown = true
		rs, err = fence()
	}
	return reply, rs, err
}
