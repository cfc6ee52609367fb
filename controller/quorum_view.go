package controller

import (
	"slices"
	"time"
)

// ObserverState is one broker's place in the metadata log, as its last
// heartbeat reported it: what DescribeQuorum lists as an observer.
type ObserverState struct {
	ID int32
	// LogEndOffset is the offset after the last record it applied; -1
	// before its first heartbeat reported one.
	LogEndOffset int64
	// LastHeard is when that heartbeat arrived.
	LastHeard time.Time
}

// Observers returns the brokers with a session, in id order. A fenced
// broker is listed too: it is still a member of the cluster following the
// log, only not serving.
func (h *Heartbeats) Observers() []ObserverState {
	out := make([]ObserverState, 0, len(h.sessions))
	for id, s := range h.sessions {
		leo := int64(-1)
		if s.offset >= 0 {
			leo = s.offset + 1
		}
		out = append(out, ObserverState{ID: id, LogEndOffset: leo, LastHeard: s.lastSeen})
	}
	slices.SortFunc(out, func(a, b ObserverState) int { return int(a.ID) - int(b.ID) })
	return out
}
