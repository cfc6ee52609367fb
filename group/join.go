package group

import (
	"bytes"
	"cmp"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// The errors returned at the boundary are kerr's, so the broker puts their
// codes on the wire unchanged.
var (
	errUnknownMember           error = kerr.UnknownMemberID
	errIllegalGeneration       error = kerr.IllegalGeneration
	errRebalanceInProgress     error = kerr.RebalanceInProgress
	errInconsistentProtocol    error = kerr.InconsistentGroupProtocol
	errMemberIDRequired        error = kerr.MemberIDRequired
	errFencedInstance          error = kerr.FencedInstanceID
	errInvalidSessionTimeout   error = kerr.InvalidSessionTimeout
	errGroupMaxSize            error = kerr.GroupMaxSizeReached
	errCoordinatorNotAvailable error = kerr.CoordinatorNotAvailable
	errNonEmptyGroup           error = kerr.NonEmptyGroup
)

// JoinRequest is a JoinGroup request for this group.
type JoinRequest struct {
	MemberID   string // "" on a member's first join
	InstanceID string // group.instance.id; "" for a dynamic member
	ClientID   string
	ClientHost string
	// SessionTimeout and RebalanceTimeout come from the request; for v0,
	// which has no rebalance timeout, the caller passes the session timeout.
	SessionTimeout   time.Duration
	RebalanceTimeout time.Duration
	ProtocolType     string
	Protocols        []Protocol // in the member's order of preference
	// RequireKnownMemberID is set for JoinGroup v4+ (KIP-394): a dynamic
	// member's first join only gets an id back and must join again with it.
	RequireKnownMemberID bool
}

// JoinMember is one member as the leader sees it in its JoinGroup response.
type JoinMember struct {
	MemberID   string
	InstanceID string
	Metadata   []byte // for the chosen protocol
}

// JoinResult is a JoinGroup response. When Err is set, only MemberID may be
// meaningful (MEMBER_ID_REQUIRED carries the id to rejoin with).
type JoinResult struct {
	Err          error
	Generation   int32
	ProtocolType string
	Protocol     string
	Leader       string
	MemberID     string
	// Members is filled for the leader only.
	Members []JoinMember
	// SkipAssignment tells a leader that rejoined as the same static
	// member, with the group Stable, that the current assignment stands
	// (KIP-814): it gets the members but must not reassign.
	SkipAssignment bool
}

// Join handles a JoinGroup. It returns either an immediate result, or a
// Ticket under which the result will appear in Drain (possibly already, when
// this join completed the rebalance).
func (g *Group) Join(now time.Time, req JoinRequest) (*JoinResult, Ticket) {
	fail := func(err error) (*JoinResult, Ticket) {
		return &JoinResult{Err: err, MemberID: req.MemberID, Generation: -1}, 0
	}
	if g.state == Dead {
		// The group was deleted or unloaded under the caller: the client
		// looks up the coordinator again.
		return fail(errCoordinatorNotAvailable)
	}
	if req.SessionTimeout < g.cfg.MinSessionTimeout || req.SessionTimeout > g.cfg.MaxSessionTimeout {
		return fail(errInvalidSessionTimeout)
	}
	// A fenced static member is told so before anything else, so a zombie
	// stops instead of retrying with other errors.
	if req.InstanceID != "" && req.MemberID != "" {
		if cur, ok := g.instances[req.InstanceID]; ok && cur != req.MemberID {
			return fail(errFencedInstance)
		}
	}
	var self *member
	if req.MemberID != "" {
		self = g.members[req.MemberID]
		if self == nil {
			if _, ok := g.pendingIDs[req.MemberID]; !ok {
				return fail(errUnknownMember)
			}
		}
	}
	var static *member // the previous incarnation of a restarted static member
	if self == nil && req.InstanceID != "" {
		if cur, ok := g.instances[req.InstanceID]; ok {
			static = g.members[cur]
		}
	}
	// The joiner is checked against the others only: its own earlier
	// protocols are about to be replaced.
	if !g.supports(cmp.Or(self, static), req.ProtocolType, req.Protocols) {
		return fail(errInconsistentProtocol)
	}
	if self != nil {
		return g.rejoin(now, self, req)
	}
	if static != nil {
		return g.replaceStatic(now, static, req)
	}
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		return fail(errGroupMaxSize)
	}
	id := req.MemberID
	if id == "" {
		id = g.newMemberID(req.ClientID)
		if req.InstanceID == "" && req.RequireKnownMemberID {
			// KIP-394: the member learns its id before it counts, so a
			// client that retries a lost response does not leave a
			// phantom member behind.
			g.pendingIDs[id] = now.Add(req.SessionTimeout)
			return &JoinResult{Err: errMemberIDRequired, MemberID: id, Generation: -1}, 0
		}
	}
	delete(g.pendingIDs, id)
	g.seq++
	m := &member{id: id, seq: g.seq}
	g.members[id] = m
	if g.leader == "" {
		g.leader = id
	}
	g.update(now, m, req)
	if g.initialDelay {
		g.joinedInDelay = true
	}
	return nil, g.parkJoin(now, m)
}

// rejoin handles a join from a known member.
func (g *Group) rejoin(now time.Time, m *member, req JoinRequest) (*JoinResult, Ticket) {
	unchanged := sameProtocols(m.protocols, req.Protocols)
	g.update(now, m, req)
	switch g.state {
	case CompletingRebalance:
		if unchanged {
			// The member lost its join response: send it again.
			return g.joinResult(m), 0
		}
	case Stable:
		// A follower with unchanged metadata just gets the current
		// generation back; the leader rejoining means it wants to
		// reassign (for example, topic metadata changed).
		if unchanged && m.id != g.leader {
			return g.joinResult(m), 0
		}
	}
	return nil, g.parkJoin(now, m)
}

// replaceStatic handles a static member that restarted: it joins with no
// member id but a known instance id (KIP-345). It takes over the old member's
// place under a new id, and the old id is fenced from now on.
func (g *Group) replaceStatic(now time.Time, old *member, req JoinRequest) (*JoinResult, Ticket) {
	sameType := req.ProtocolType == g.protocolType
	if old.joinTicket != 0 {
		g.deliverJoin(old, &JoinResult{Err: errFencedInstance, MemberID: old.id, Generation: -1})
	}
	if old.syncTicket != 0 {
		g.deliverSync(old, &SyncResult{Err: errFencedInstance})
	}
	delete(g.members, old.id)
	newID := g.newMemberID(req.ClientID)
	if g.leader == old.id {
		g.leader = newID
	}
	old.id = newID
	g.members[newID] = old
	g.instances[req.InstanceID] = newID
	g.update(now, old, req)
	if g.state == Stable && sameType && g.chooseProtocol() == g.protocol {
		// The point of static membership: a bounce keeps the assignment
		// and skips the rebalance, as long as the group would still
		// choose the same protocol. The member's metadata is not
		// compared: clients put their generation (and cooperative ones
		// their owned partitions) in it, so a restarted client never
		// sends the same bytes. A returning leader is told not to
		// reassign.
		res := g.joinResult(old)
		res.SkipAssignment = res.Leader == res.MemberID
		g.version++
		return res, 0
	}
	return nil, g.parkJoin(now, old)
}

// update records what a join says about the member.
func (g *Group) update(now time.Time, m *member, req JoinRequest) {
	if m.instanceID != req.InstanceID {
		// Join has already fenced a request whose instance id belongs to
		// another member, so the id is free or ours.
		if m.instanceID != "" && g.instances[m.instanceID] == m.id {
			delete(g.instances, m.instanceID)
		}
		if req.InstanceID != "" {
			g.instances[req.InstanceID] = m.id
		}
	}
	m.instanceID = req.InstanceID
	m.clientID, m.clientHost = req.ClientID, req.ClientHost
	m.sessionTimeout, m.rebalanceTimeout = req.SessionTimeout, req.RebalanceTimeout
	m.protocols = append([]Protocol(nil), req.Protocols...)
	m.lastSeen = now
	if len(g.members) == 1 {
		// A lone member sets the type; supports has checked that any
		// other member shares it.
		g.protocolType = req.ProtocolType
	}
}

// parkJoin parks m's join, starting a rebalance if none is in progress, and
// completes the rebalance if m was the last member it waited for.
func (g *Group) parkJoin(now time.Time, m *member) Ticket {
	if m.joinTicket != 0 {
		// A second join while one is parked: the client gave up on the
		// first, so answer it with an error it retries on.
		g.deliverJoin(m, &JoinResult{Err: errRebalanceInProgress, MemberID: m.id, Generation: -1})
	}
	t := g.ticket()
	m.joinTicket = t
	if g.state != PreparingRebalance {
		g.prepareRebalance(now)
	}
	g.maybeCompleteJoin(now)
	return t
}

// prepareRebalance moves the group to PreparingRebalance.
func (g *Group) prepareRebalance(now time.Time) {
	if g.state == CompletingRebalance {
		// The assignment being computed is already stale.
		for _, m := range g.ordered() {
			if m.syncTicket != 0 {
				g.deliverSync(m, &SyncResult{Err: errRebalanceInProgress})
			}
		}
	}
	if g.state == Empty && g.cfg.InitialRebalanceDelay > 0 {
		g.initialDelay, g.joinedInDelay = true, false
		g.joinDeadline = now.Add(g.cfg.InitialRebalanceDelay)
		g.initialMax = now.Add(g.maxRebalanceTimeout())
	} else {
		g.initialDelay = false
		g.joinDeadline = now.Add(g.maxRebalanceTimeout())
	}
	g.state = PreparingRebalance
}

func (g *Group) maxRebalanceTimeout() time.Duration {
	var d time.Duration
	for _, m := range g.members {
		d = max(d, m.rebalanceTimeout)
	}
	return d
}

// maybeCompleteJoin completes the rebalance early once every member and
// every id handed out with MEMBER_ID_REQUIRED has joined.
func (g *Group) maybeCompleteJoin(now time.Time) {
	if g.state != PreparingRebalance || g.initialDelay || len(g.pendingIDs) > 0 {
		return
	}
	for _, m := range g.members {
		if m.joinTicket == 0 {
			return
		}
	}
	g.completeJoin(now)
}

// completeJoin ends PreparingRebalance: members that did not rejoin are
// dropped, the generation advances and every parked join is answered.
func (g *Group) completeJoin(now time.Time) {
	for _, m := range g.ordered() {
		if m.joinTicket == 0 {
			g.dropMember(m)
		}
	}
	g.generation++
	g.initialDelay = false
	if len(g.members) == 0 {
		g.state = Empty
		g.protocol = ""
		g.version++
		return
	}
	g.protocol = g.chooseProtocol()
	g.state = CompletingRebalance
	g.syncDeadline = now.Add(g.maxRebalanceTimeout())
	for _, m := range g.ordered() {
		m.lastSeen = now
		m.synced = false
		m.assignment = nil
		g.deliverJoin(m, g.joinResult(m))
	}
}

// joinResult is m's successful answer for the current generation.
func (g *Group) joinResult(m *member) *JoinResult {
	res := &JoinResult{
		Generation:   g.generation,
		ProtocolType: g.protocolType,
		Protocol:     g.protocol,
		Leader:       g.leader,
		MemberID:     m.id,
	}
	if m.id == g.leader {
		for _, o := range g.ordered() {
			res.Members = append(res.Members, JoinMember{
				MemberID:   o.id,
				InstanceID: o.instanceID,
				Metadata:   metadataFor(o.protocols, g.protocol),
			})
		}
	}
	return res
}

func (g *Group) deliverJoin(m *member, res *JoinResult) {
	g.outbox = append(g.outbox, Delivery{Ticket: m.joinTicket, MemberID: m.id, Join: res})
	m.joinTicket = 0
}

// removeMember takes m out of the group (leave or expiry) and lets the rest
// of the group react: a settled group rebalances, a rebalancing one may now
// have everyone it waits for.
func (g *Group) removeMember(now time.Time, m *member) {
	g.dropMember(m)
	switch g.state {
	case Stable, CompletingRebalance:
		g.prepareRebalance(now)
	}
	g.maybeCompleteJoin(now)
}

// dropMember forgets m, answering its parked request and moving the
// leadership if m held it.
func (g *Group) dropMember(m *member) {
	if m.joinTicket != 0 {
		g.deliverJoin(m, &JoinResult{Err: errUnknownMember, MemberID: m.id, Generation: -1})
	}
	if m.syncTicket != 0 {
		g.deliverSync(m, &SyncResult{Err: errUnknownMember})
	}
	delete(g.members, m.id)
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	if g.leader == m.id {
		g.leader = ""
		if rest := g.ordered(); len(rest) > 0 {
			g.leader = rest[0].id
		}
	}
}

// supports reports whether a member (self, nil if new) with this protocol
// type and these protocols may be in the group with the other members.
func (g *Group) supports(self *member, protocolType string, ps []Protocol) bool {
	if protocolType == "" || len(ps) == 0 {
		return false
	}
	others := 0
	for _, m := range g.members {
		if m != self {
			others++
		}
	}
	if others == 0 {
		return true
	}
	if protocolType != g.protocolType {
		return false
	}
	for _, p := range ps {
		if g.supportedByAll(self, p.Name) {
			return true
		}
	}
	return false
}

func (g *Group) supportedByAll(skip *member, name string) bool {
	for _, m := range g.members {
		if m != skip && !hasProtocol(m.protocols, name) {
			return false
		}
	}
	return true
}

func hasProtocol(ps []Protocol, name string) bool {
	for _, p := range ps {
		if p.Name == name {
			return true
		}
	}
	return false
}

// chooseProtocol picks the protocol for the generation, as Kafka does: among
// the protocols every member supports, each member votes for the one it
// prefers most, and the most votes win. Ties go to the protocol the
// longest-standing member lists first, so the choice is deterministic.
func (g *Group) chooseProtocol() string {
	ms := g.ordered()
	var candidates []string
	for _, p := range ms[0].protocols {
		if g.supportedByAll(nil, p.Name) {
			candidates = append(candidates, p.Name)
		}
	}
	votes := map[string]int{}
	for _, m := range ms {
		for _, p := range m.protocols {
			if g.supportedByAll(nil, p.Name) {
				votes[p.Name]++
				break
			}
		}
	}
	best := ""
	for _, c := range candidates {
		if best == "" || votes[c] > votes[best] {
			best = c
		}
	}
	return best
}

// sameProtocols reports whether two protocol lists are equal, names, order
// and metadata.
func sameProtocols(a, b []Protocol) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || !bytes.Equal(a[i].Metadata, b[i].Metadata) {
			return false
		}
	}
	return true
}
