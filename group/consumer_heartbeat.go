package group

import (
	"fmt"
	"regexp"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// hbError is a refused heartbeat: its code and the message sent with it.
type hbError struct {
	err *kerr.Error
	msg string
}

func refuse(err *kerr.Error, format string, args ...any) *hbError {
	return &hbError{err: err, msg: fmt.Sprintf(format, args...)}
}

// Heartbeat handles one ConsumerGroupHeartbeat and answers it at once.
// clientID and clientHost come from the request header and the connection;
// topics is the current topic image (nil keeps the metadata last seen).
//
// MemberEpoch 0 joins (or rejoins, or replaces a static member that left
// with -2), -1 leaves, -2 leaves temporarily (static members), and a
// positive epoch heartbeats. A refused request changes nothing.
func (g *ConsumerGroup) Heartbeat(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, topics *TopicImage) *kmsg.ConsumerGroupHeartbeatResponse {
	resp := kmsg.NewPtrConsumerGroupHeartbeatResponse()
	resp.Version = req.Version
	resp.HeartbeatIntervalMillis = int32(g.cfg.HeartbeatInterval.Milliseconds())
	memberID := req.MemberID
	resp.MemberID = &memberID
	if e := g.heartbeat(now, req, clientID, clientHost, topics, resp); e != nil {
		resp.ErrorCode = e.err.Code
		resp.ErrorMessage = &e.msg
		resp.MemberEpoch = 0
		resp.Assignment = nil
	}
	return resp
}

func (g *ConsumerGroup) heartbeat(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, clientID, clientHost string, topics *TopicImage, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	if g.dead {
		return refuse(kerr.CoordinatorNotAvailable, "group %s is being deleted", g.id)
	}
	regex := req.SubscribedTopicRegex
	if req.Version < 1 {
		regex = nil // not on the wire before v1
	}
	if e := validateHeartbeat(req, regex); e != nil {
		return e
	}
	if regex != nil && *regex != "" {
		if _, err := compileFull(*regex); err != nil {
			return refuse(errInvalidRegex, "SubscribedTopicRegex %q is not a valid regular expression: %v", *regex, err)
		}
	}
	if req.ServerAssignor != nil && !g.supportsAssignor(*req.ServerAssignor) {
		return refuse(errUnsupportedAssign, "ServerAssignor %q is not supported; supported assignors: %v", *req.ServerAssignor, g.cfg.Assignors)
	}
	owned := ownedSet(req.Topics)

	var (
		m        *cmember
		e        *hbError
		newcomer bool // the group gained a member
	)
	switch req.MemberEpoch {
	case epochLeave, epochLeaveStatic:
		return g.leave(now, req, topics, resp)
	case 0:
		m, newcomer, e = g.join(req)
		owned = tpSet{} // a joining member owns nothing
	default:
		m, e = g.lookup(req, owned)
	}
	if e != nil {
		return e
	}

	m.lastSeen = now
	if m.clientID != clientID || m.clientHost != clientHost {
		m.clientID, m.clientHost = clientID, clientHost
		g.touch()
	}
	subs := g.apply(m, req, regex, req.MemberEpoch == 0)
	if subs || newcomer {
		g.subsDirty = true
	}
	if g.refresh(topics) || subs || newcomer {
		g.bump()
	}
	g.reconcile(now, m, owned)

	id := m.id
	resp.MemberID = &id
	resp.MemberEpoch = m.epoch
	cur := m.assignedSet()
	full := req.RebalanceTimeoutMillis != -1 && (req.SubscribedTopicNames != nil || regex != nil) && req.Topics != nil
	if req.MemberEpoch == 0 || full || !m.sentOK || !sameTPs(cur, m.sent) || (owned != nil && !sameTPs(owned, cur)) {
		resp.Assignment = assignmentResponse(cur)
		m.sent, m.sentOK = cur, true
	}
	return nil
}

// validateHeartbeat checks what Kafka checks before looking at the group.
func validateHeartbeat(req *kmsg.ConsumerGroupHeartbeatRequest, regex *string) *hbError {
	bad := func(format string, args ...any) *hbError { return refuse(errInvalidRequest, format, args...) }
	names := req.SubscribedTopicNames
	switch {
	case req.Group == "":
		return bad("GroupId can't be empty.")
	case req.MemberID == "" && (req.Version >= 1 || req.MemberEpoch != 0):
		return bad("MemberId can't be empty.")
	case req.InstanceID != nil && *req.InstanceID == "":
		return bad("InstanceId can't be empty.")
	case req.RackID != nil && *req.RackID == "":
		return bad("RackId can't be empty.")
	case req.MemberEpoch < epochLeaveStatic:
		return bad("MemberEpoch %d is invalid.", req.MemberEpoch)
	case req.RebalanceTimeoutMillis < -1:
		return bad("RebalanceTimeoutMillis %d is invalid.", req.RebalanceTimeoutMillis)
	case len(names) > 0 && regex != nil && *regex != "":
		return bad("Only one of SubscribedTopicNames and SubscribedTopicRegex may be set.")
	}
	if req.MemberEpoch == 0 {
		switch {
		case req.RebalanceTimeoutMillis == -1:
			return bad("RebalanceTimeoutMillis must be provided when joining.")
		case names == nil && regex == nil:
			return bad("One of SubscribedTopicNames and SubscribedTopicRegex must be set when joining.")
		case len(req.Topics) > 0:
			return bad("Topics must be empty when joining.")
		}
	}
	return nil
}

// compileFull compiles a subscription regex, which must match a whole topic
// name (Kafka's Pattern.matches semantics).
func compileFull(re string) (*regexp.Regexp, error) {
	return regexp.Compile("^(?:" + re + ")$")
}

func ownedSet(ts []kmsg.ConsumerGroupHeartbeatRequestTopic) tpSet {
	if ts == nil {
		return nil
	}
	s := tpSet{}
	for _, t := range ts {
		for _, p := range t.Partitions {
			s[tpKey{t.TopicID, p}] = struct{}{}
		}
	}
	return s
}

func assignmentResponse(s tpSet) *kmsg.ConsumerGroupHeartbeatResponseAssignment {
	a := kmsg.NewConsumerGroupHeartbeatResponseAssignment()
	a.Topics = []kmsg.ConsumerGroupHeartbeatResponseAssignmentTopic{}
	for _, tp := range groupByTopic(s.sorted()) {
		t := kmsg.NewConsumerGroupHeartbeatResponseAssignmentTopic()
		t.TopicID, t.Partitions = tp.id, tp.parts
		a.Topics = append(a.Topics, t)
	}
	return &a
}

// join handles MemberEpoch 0: a new member, a member rejoining under its id
// (it gives up everything it held and is assigned afresh), or a new
// incarnation of a static member that left with -2 (it takes over the
// partitions the old one kept). The caller applies the request's fields.
func (g *ConsumerGroup) join(req *kmsg.ConsumerGroupHeartbeatRequest) (m *cmember, newcomer bool, e *hbError) {
	id := req.MemberID
	if id == "" {
		id = g.newMemberID() // v0: the coordinator names the member
	}
	inst := derefString(req.InstanceID)
	if inst != "" {
		if hid, ok := g.instances[inst]; ok {
			h := g.members[hid]
			switch {
			case h.epoch == epochLeaveStatic && (hid == id || g.members[id] == nil):
				// No epoch bump unless the subscription changed,
				// which apply finds out.
				return g.replaceStatic(h, id), false, nil
			case hid != id:
				return nil, false, refuse(errUnreleasedInstance, "instance id %s is still used by member %s", inst, hid)
			}
		}
	}
	if m = g.members[id]; m != nil {
		// A rejoin: the member owns nothing now (it may have been fenced
		// or lost a response) and goes through assignment again.
		g.release(m)
		if m.epoch != 0 || m.prevEpoch != 0 || m.state != msStable {
			m.epoch, m.prevEpoch, m.state, m.revokeBy = 0, 0, msStable, time.Time{}
			g.touch()
		}
		m.sentOK = false
		g.setInstance(m, inst)
		return m, false, nil
	}
	if g.cfg.MaxSize > 0 && len(g.members) >= g.cfg.MaxSize {
		return nil, false, refuse(kerr.GroupMaxSizeReached, "group %s has reached its maximum size of %d members", g.id, g.cfg.MaxSize)
	}
	m = newCMember(id)
	g.members[id] = m
	g.target[id] = tpSet{}
	g.setInstance(m, inst)
	g.touch()
	return m, true, nil
}

// replaceStatic gives the place of a static member that left with -2 to its
// new incarnation under id: same partitions, same target.
func (g *ConsumerGroup) replaceStatic(old *cmember, id string) *cmember {
	m := newCMember(id)
	m.instanceID, m.rackID = old.instanceID, old.rackID
	m.names, m.regex, m.assignor = old.names, old.regex, old.assignor
	m.rebalanceTimeout = old.rebalanceTimeout
	m.subscribed = old.subscribed
	for p, ep := range old.assigned {
		m.assigned[p] = ep
		g.owners[p] = id
	}
	// A member that left with -2 has no revocations pending.
	t := g.target[old.id]
	delete(g.members, old.id)
	delete(g.target, old.id)
	g.members[id] = m
	g.target[id] = t
	g.instances[m.instanceID] = id
	g.touch()
	return m
}

func (g *ConsumerGroup) setInstance(m *cmember, inst string) {
	if m.instanceID == inst {
		return
	}
	if m.instanceID != "" && g.instances[m.instanceID] == m.id {
		delete(g.instances, m.instanceID)
	}
	m.instanceID = inst
	if inst != "" {
		g.instances[inst] = m.id
	}
	g.touch()
}

// lookup finds the member a heartbeat (epoch > 0) comes from and checks its
// epoch: the current one, or the previous one when what the member reports
// owning is still assigned to it (the response that bumped it was lost).
func (g *ConsumerGroup) lookup(req *kmsg.ConsumerGroupHeartbeatRequest, owned tpSet) (*cmember, *hbError) {
	var m *cmember
	if req.InstanceID != nil {
		hid, ok := g.instances[*req.InstanceID]
		if !ok {
			return nil, refuse(kerr.UnknownMemberID, "instance id %s is unknown in group %s", *req.InstanceID, g.id)
		}
		if hid != req.MemberID {
			return nil, refuse(kerr.FencedInstanceID, "instance id %s is held by another member", *req.InstanceID)
		}
		m = g.members[hid]
	} else if m = g.members[req.MemberID]; m == nil {
		return nil, refuse(kerr.UnknownMemberID, "member %s is unknown in group %s", req.MemberID, g.id)
	}
	switch {
	case m.epoch == epochLeaveStatic:
		return nil, refuse(errFencedMemberEpoch, "static member %s left the group; it must rejoin with epoch 0", m.id)
	case req.MemberEpoch == m.epoch:
	case req.MemberEpoch == m.prevEpoch && subsetOf(owned, m.assigned):
	default:
		return nil, refuse(errFencedMemberEpoch, "member epoch %d is fenced: the current member epoch is %d", req.MemberEpoch, m.epoch)
	}
	return m, nil
}

// subsetOf reports whether every partition in owned (nil: unknown, taken as
// nothing) is in assigned.
func subsetOf(owned tpSet, assigned map[tpKey]int32) bool {
	for p := range owned {
		if _, ok := assigned[p]; !ok {
			return false
		}
	}
	return true
}

// apply records the member's fields from the request. A join carries the
// whole subscription; later heartbeats send only what changed (nil is
// unchanged). It reports whether the subscription or assignor changed.
func (g *ConsumerGroup) apply(m *cmember, req *kmsg.ConsumerGroupHeartbeatRequest, regex *string, join bool) bool {
	names, re, assignor := m.names, m.regex, m.assignor
	if join || req.SubscribedTopicNames != nil {
		names = normNames(req.SubscribedTopicNames)
	}
	if join || regex != nil {
		re = derefString(regex)
	}
	if join || req.ServerAssignor != nil {
		assignor = derefString(req.ServerAssignor)
	}
	subs := !slices.Equal(names, m.names) || re != m.regex || assignor != m.assignor
	m.names, m.regex, m.assignor = names, re, assignor

	changed := subs
	if join || req.RackID != nil {
		if r := derefString(req.RackID); r != m.rackID {
			m.rackID, changed = r, true
		}
	}
	if req.RebalanceTimeoutMillis >= 0 {
		if d := time.Duration(req.RebalanceTimeoutMillis) * time.Millisecond; d != m.rebalanceTimeout {
			m.rebalanceTimeout, changed = d, true
		}
	}
	if changed {
		g.touch()
	}
	return subs
}

// leave handles MemberEpoch -1 (leave) and -2 (a static member leaves for
// now: it keeps its assigned partitions until it comes back or its session
// expires). The response echoes the epoch.
func (g *ConsumerGroup) leave(now time.Time, req *kmsg.ConsumerGroupHeartbeatRequest, topics *TopicImage, resp *kmsg.ConsumerGroupHeartbeatResponse) *hbError {
	var m *cmember
	if req.InstanceID != nil {
		hid, ok := g.instances[*req.InstanceID]
		if !ok {
			return refuse(kerr.UnknownMemberID, "instance id %s is unknown in group %s", *req.InstanceID, g.id)
		}
		if hid != req.MemberID {
			return refuse(kerr.FencedInstanceID, "instance id %s is held by another member", *req.InstanceID)
		}
		m = g.members[hid]
	} else if m = g.members[req.MemberID]; m == nil {
		return refuse(kerr.UnknownMemberID, "member %s is unknown in group %s", req.MemberID, g.id)
	}
	resp.MemberEpoch = req.MemberEpoch
	if req.MemberEpoch == epochLeaveStatic && m.instanceID != "" {
		if m.epoch != epochLeaveStatic {
			for p := range m.revoking {
				g.disown(p, m)
			}
			clear(m.revoking)
			m.setEpoch(epochLeaveStatic)
			m.state, m.revokeBy = msStable, time.Time{}
			m.sentOK = false
			g.touch()
		}
		// Its partitions stay reserved for one session timeout from now.
		m.lastSeen = now
		return nil
	}
	g.removeMember(m)
	g.refresh(topics)
	g.bump()
	return nil
}

func normNames(names []string) []string {
	if len(names) == 0 {
		return nil
	}
	out := slices.Clone(names)
	slices.Sort(out)
	return slices.Compact(out)
}

func derefString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
