package controller

import (
	"slices"
	"time"
)

// Heartbeats is the controller's soft state about broker sessions (Kafka's
// BrokerHeartbeatManager): when each broker was last heard from, the
// metadata offset it reported, and where its controlled shutdown must be
// seen. It is not metadata: a new controller starts it afresh (giving
// every broker a full session), which only delays fencing. It does no I/O
// and reads no clock; the caller passes the time in.
type Heartbeats struct {
	session  time.Duration
	sessions map[int32]*brokerSession
}

type brokerSession struct {
	epoch    int64
	lastSeen time.Time
	fenced   bool
	// offset is the last metadata offset the broker reported applied.
	offset int64
	// shutdownOffset is the last offset of the records that moved the
	// broker's leaderships away in its controlled shutdown, or -1.
	shutdownOffset int64
}

// NewHeartbeats tracks sessions of broker.session.timeout.ms = session.
func NewHeartbeats(session time.Duration) *Heartbeats {
	return &Heartbeats{session: session, sessions: map[int32]*brokerSession{}}
}

// Register starts the session of a broker that registered with epoch.
func (h *Heartbeats) Register(id int32, epoch int64, fenced bool, now time.Time) {
	h.sessions[id] = &brokerSession{epoch: epoch, lastSeen: now, fenced: fenced, offset: -1, shutdownOffset: -1}
}

// Touch records a heartbeat req, answered with reply, at now.
// lastOffset is the offset of the last metadata record committed when the
// reply was decided (the Image's Offset()-1): when reply put the broker in
// controlled shutdown, it may shut down only once every active broker has
// applied it.
func (h *Heartbeats) Touch(req Heartbeat, reply HeartbeatReply, lastOffset int64, now time.Time) {
	s, ok := h.sessions[req.BrokerID]
	if !ok || s.epoch != req.BrokerEpoch {
		s = &brokerSession{epoch: req.BrokerEpoch, shutdownOffset: -1}
		h.sessions[req.BrokerID] = s
	}
	s.lastSeen, s.offset, s.fenced = now, req.MetadataOffset, reply.IsFenced
	switch {
	case reply.InControlledShutdown && s.shutdownOffset < 0:
		s.shutdownOffset = lastOffset
	case !reply.InControlledShutdown:
		s.shutdownOffset = -1
	}
}

// Fenced notes that broker id's fencing was committed (after Expired
// named it), so its session is no longer watched.
func (h *Heartbeats) Fenced(id int32) {
	if s, ok := h.sessions[id]; ok {
		s.fenced = true
	}
}

// Remove forgets broker id (unregistered, or registered anew).
func (h *Heartbeats) Remove(id int32) { delete(h.sessions, id) }

// HasValidSession reports whether broker id was heard from within the
// session timeout of now.
func (h *Heartbeats) HasValidSession(id int32, now time.Time) bool {
	s, ok := h.sessions[id]
	// A fenced broker holds no session (Kafka's hasValidSession): its
	// next incarnation may register at once.
	return ok && !s.fenced && !now.After(s.lastSeen.Add(h.session))
}

// Expired returns the unfenced brokers, in id order, not heard from for
// longer than the session timeout: the ones to fence (PlanFenceBroker,
// then Fenced).
func (h *Heartbeats) Expired(now time.Time) []int32 {
	var ids []int32
	for id, s := range h.sessions {
		if !s.fenced && now.After(s.lastSeen.Add(h.session)) {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// shutdownOffsetReached reports whether every active broker (unfenced,
// not shutting down itself: BrokerHeartbeatManager.lowestActiveOffset)
// has applied the records of broker id's controlled shutdown. A nil h
// knows no offsets and says yes.
func (h *Heartbeats) shutdownOffsetReached(id int32) bool {
	if h == nil {
		return true
	}
	s, ok := h.sessions[id]
	if !ok || s.shutdownOffset < 0 {
		return false
	}
	for _, o := range h.sessions {
		if !o.fenced && o.shutdownOffset < 0 && o.offset < s.shutdownOffset {
			return false
		}
	}
	return true
}
