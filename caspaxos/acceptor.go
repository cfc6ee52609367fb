package caspaxos

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// AcceptorState is everything an acceptor must keep across restarts. The
// caller persists it (fsync) whenever Ready.Persist is set, before sending
// Ready.Messages, and hands it back to NewAcceptor after a restart. A voter
// whose state is lost must not reuse Self: it starts again with a new
// Incarnation and an empty state, and joins only through a membership
// change.
type AcceptorState struct {
	Self Voter
	// Promised is the highest ballot promised or accepted; it never goes
	// down and is never below Accepted.
	Promised Ballot
	// Accepted is the ballot of Value; zero when nothing was accepted.
	Accepted Ballot
	Value    []byte
}

const acceptorStateVersion = 1

// MarshalBinary encodes the state, versioned, for the caller's disk.
func (s AcceptorState) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 1+20+16+16+4+len(s.Value))
	b = append(b, acceptorStateVersion)
	b = appendVoter(b, s.Self)
	b = appendBallot(b, s.Promised)
	b = appendBallot(b, s.Accepted)
	b = binary.BigEndian.AppendUint32(b, uint32(len(s.Value)))
	return append(b, s.Value...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote.
func (s *AcceptorState) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if v := r.u8(); r.err == nil && v != acceptorStateVersion {
		return fmt.Errorf("caspaxos: acceptor state version %d, want %d", v, acceptorStateVersion)
	}
	var out AcceptorState
	out.Self = r.voter()
	out.Promised = r.ballot()
	out.Accepted = r.ballot()
	if n := r.u32(); n > 0 {
		out.Value = bytes.Clone(r.take(int(n)))
	}
	if err := r.finish("acceptor state"); err != nil {
		return err
	}
	*s = out
	return nil
}

// Ready is the acceptor's output for one message. If Persist is non-nil the
// caller must write it durably (fsync) before sending Messages: a promise or
// an accept that is answered and then forgotten in a crash lets two values be
// chosen. If the write fails, the caller must drop Messages and restart the
// acceptor from its last persisted state.
type Ready struct {
	Persist  *AcceptorState
	Messages []Message
}

// Acceptor is the CASPaxos acceptor of one voter: a pure state machine.
type Acceptor struct {
	st AcceptorState
}

// NewAcceptor returns an acceptor resuming from st (the zero state with Self
// set, for a new voter).
func NewAcceptor(st AcceptorState) (*Acceptor, error) {
	if st.Self.IsZero() {
		return nil, fmt.Errorf("caspaxos: acceptor state names no voter")
	}
	if st.Promised.Less(st.Accepted) {
		return nil, fmt.Errorf("caspaxos: acceptor %s: promised %s below accepted %s", st.Self, st.Promised, st.Accepted)
	}
	st.Value = bytes.Clone(st.Value)
	return &Acceptor{st: st}, nil
}

// State returns a copy of the acceptor's current state.
func (a *Acceptor) State() AcceptorState {
	s := a.st
	s.Value = bytes.Clone(s.Value)
	return s
}

// Step handles one proposer message (MsgPrepare or MsgAccept; anything else
// is ignored) and returns what to persist and send.
//
// Rules (peterbourgon/caspaxos, the paper's §2):
//   - Prepare(B) is promised iff B ≥ Promised and B > Accepted. An equal
//     ballot is a duplicate of a promise already made: answered again,
//     nothing new to persist.
//   - Accept(B, v) is taken iff B ≥ Promised. Accepting raises Promised to
//     B; a piggybacked Next > B is then promised as well.
//   - A message for another incarnation of this voter id is refused without
//     any change: a wiped acceptor must not answer for its old self.
func (a *Acceptor) Step(m Message) Ready {
	if m.Type != MsgPrepare && m.Type != MsgAccept {
		return Ready{}
	}
	if m.Acceptor != a.st.Self {
		return Ready{Messages: []Message{a.reject(m, RejectIdentity)}}
	}
	changed := false
	var reply Message
	switch m.Type {
	case MsgPrepare:
		if m.Ballot.Less(a.st.Promised) || !a.st.Accepted.Less(m.Ballot) {
			return Ready{Messages: []Message{a.reject(m, RejectBallot)}}
		}
		if a.st.Promised.Less(m.Ballot) {
			a.st.Promised = m.Ballot
			changed = true
		}
		reply = Message{Type: MsgPromise, Proposer: m.Proposer, Acceptor: a.st.Self, Ballot: m.Ballot,
			Accepted: a.st.Accepted, Value: bytes.Clone(a.st.Value)}
	case MsgAccept:
		if m.Ballot.Less(a.st.Promised) {
			return Ready{Messages: []Message{a.reject(m, RejectBallot)}}
		}
		if a.st.Accepted != m.Ballot {
			// A ballot carries one value (ballots are unique per proposer
			// attempt), so an equal ballot is a duplicate and changes nothing.
			a.st.Accepted = m.Ballot
			a.st.Value = bytes.Clone(m.Value)
			changed = true
		}
		if a.st.Promised.Less(m.Ballot) {
			a.st.Promised = m.Ballot
			changed = true
		}
		reply = Message{Type: MsgAccepted, Proposer: m.Proposer, Acceptor: a.st.Self, Ballot: m.Ballot}
		if m.Ballot.Less(m.Next) && !m.Next.Less(a.st.Promised) {
			if a.st.Promised.Less(m.Next) {
				a.st.Promised = m.Next
				changed = true
			}
			reply.Next = m.Next
		}
	}
	r := Ready{Messages: []Message{reply}}
	if changed {
		s := a.State()
		r.Persist = &s
	}
	return r
}

func (a *Acceptor) reject(m Message, why RejectReason) Message {
	r := Message{Type: MsgReject, Proposer: m.Proposer, Acceptor: m.Acceptor, Ballot: m.Ballot, Reason: why}
	if why == RejectBallot {
		r.Promised = a.st.Promised
	}
	return r
}
