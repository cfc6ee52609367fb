package group

import "time"

// SyncRequest is a SyncGroup request for this group.
type SyncRequest struct {
	MemberID   string
	InstanceID string
	Generation int32
	// ProtocolType and Protocol are checked when set (SyncGroup v5+).
	ProtocolType string
	Protocol     string
	// Assignments is the leader's assignment, member id → bytes; followers
	// send none.
	Assignments map[string][]byte
}

// SyncResult is a SyncGroup response.
type SyncResult struct {
	Err          error
	ProtocolType string
	Protocol     string
	Assignment   []byte
}

// Sync handles a SyncGroup. It returns either an immediate result or a
// Ticket: a member that syncs before the leader has sent the assignment
// waits for it.
func (g *Group) Sync(now time.Time, req SyncRequest) (*SyncResult, Ticket) {
	fail := func(err error) (*SyncResult, Ticket) { return &SyncResult{Err: err}, 0 }
	m, err := g.validate(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return fail(err)
	}
	if (req.ProtocolType != "" && req.ProtocolType != g.protocolType) ||
		(req.Protocol != "" && req.Protocol != g.protocol) {
		return fail(errInconsistentProtocol)
	}
	m.lastSeen = now
	switch g.state {
	case PreparingRebalance:
		return fail(errRebalanceInProgress)
	case Stable:
		// The member lost its sync response, or is a static member that
		// restarted without a rebalance: its assignment still holds.
		return g.syncResult(m), 0
	}
	// CompletingRebalance.
	m.synced = true
	if m.syncTicket != 0 {
		g.deliverSync(m, &SyncResult{Err: errRebalanceInProgress})
	}
	if m.id != g.leader {
		m.syncTicket = g.ticket()
		return nil, m.syncTicket
	}
	// The leader's assignment settles the generation. A member the leader
	// left out gets an empty assignment; ids it names that are not members
	// (they left meanwhile) are ignored.
	for _, o := range g.members {
		o.assignment = req.Assignments[o.id]
	}
	g.state = Stable
	g.version++
	for _, o := range g.ordered() {
		if o.syncTicket != 0 {
			o.lastSeen = now
			g.deliverSync(o, g.syncResult(o))
		}
	}
	return g.syncResult(m), 0
}

func (g *Group) syncResult(m *member) *SyncResult {
	return &SyncResult{ProtocolType: g.protocolType, Protocol: g.protocol, Assignment: m.assignment}
}

func (g *Group) deliverSync(m *member, res *SyncResult) {
	g.outbox = append(g.outbox, Delivery{Ticket: m.syncTicket, MemberID: m.id, Sync: res})
	m.syncTicket = 0
}

// HeartbeatRequest is a Heartbeat request for this group.
type HeartbeatRequest struct {
	MemberID   string
	InstanceID string
	Generation int32
}

// Heartbeat handles a Heartbeat and returns its error (nil for NONE). During
// a rebalance it returns REBALANCE_IN_PROGRESS, which is how members learn
// they must rejoin; the heartbeat still keeps their session alive.
func (g *Group) Heartbeat(now time.Time, req HeartbeatRequest) error {
	m, err := g.validate(req.MemberID, req.InstanceID, req.Generation)
	if err != nil {
		return err
	}
	m.lastSeen = now
	if g.state == PreparingRebalance {
		return errRebalanceInProgress
	}
	// In CompletingRebalance a member may heartbeat between its join and
	// sync responses; that is normal.
	return nil
}

// validate checks that a request comes from the current incarnation of a
// member in the current generation, in Kafka's order: fencing first (the old
// id of a static member is unknown by now, but the client must learn it was
// fenced), then the member, then the generation.
func (g *Group) validate(memberID, instanceID string, gen int32) (*member, error) {
	if g.state == Dead {
		return nil, errCoordinatorNotAvailable
	}
	if instanceID != "" {
		if cur, ok := g.instances[instanceID]; ok && cur != memberID {
			return nil, errFencedInstance
		}
	}
	m := g.members[memberID]
	if m == nil {
		return nil, errUnknownMember
	}
	if gen != g.generation {
		return nil, errIllegalGeneration
	}
	return m, nil
}

// LeaveMember names one member leaving (LeaveGroup v3+ batches them; older
// versions carry one member id).
type LeaveMember struct {
	MemberID   string
	InstanceID string
}

// Leave handles a LeaveGroup and returns one error (nil for NONE) per member,
// in order. Any member that left starts a rebalance.
func (g *Group) Leave(now time.Time, leaving []LeaveMember) []error {
	errs := make([]error, len(leaving))
	for i, l := range leaving {
		errs[i] = g.leaveOne(now, l)
	}
	return errs
}

func (g *Group) leaveOne(now time.Time, l LeaveMember) error {
	if g.state == Dead {
		return errCoordinatorNotAvailable
	}
	id := l.MemberID
	if l.InstanceID != "" {
		// A static member may leave by instance id alone (an admin
		// removing it); a member id, if given, must be the current one.
		cur, ok := g.instances[l.InstanceID]
		if !ok {
			return errUnknownMember
		}
		if id != "" && id != cur {
			return errFencedInstance
		}
		id = cur
	}
	if _, ok := g.pendingIDs[id]; ok {
		delete(g.pendingIDs, id)
		g.maybeCompleteJoin(now)
		return nil
	}
	m := g.members[id]
	if m == nil {
		return errUnknownMember
	}
	g.removeMember(now, m)
	return nil
}
