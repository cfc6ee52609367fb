package caspaxos

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// MsgType says what a Message is. Prepare and Accept go from a proposer to
// an acceptor; Promise, Accepted and Reject are the acceptor's answers.
type MsgType uint8

// The five messages of a CASPaxos round.
const (
	// MsgPrepare asks an acceptor to promise Ballot.
	MsgPrepare MsgType = iota + 1
	// MsgPromise promises Ballot and reports the acceptor's Accepted
	// ballot and Value (zero and nil when it never accepted anything).
	MsgPromise
	// MsgAccept asks an acceptor to accept Value at Ballot. A non-zero Next
	// is a piggybacked prepare for the proposer's next round (the one
	// round-trip optimization): having accepted, promise Next too.
	MsgAccept
	// MsgAccepted reports that Ballot was accepted; a non-zero Next reports
	// that Next was promised as well.
	MsgAccepted
	// MsgReject refuses Ballot (a Prepare or an Accept). Promised is the
	// highest ballot the acceptor has seen, so the proposer can
	// fast-forward past it; Reason says why.
	MsgReject
)

func (t MsgType) String() string {
	switch t {
	case MsgPrepare:
		return "Prepare"
	case MsgPromise:
		return "Promise"
	case MsgAccept:
		return "Accept"
	case MsgAccepted:
		return "Accepted"
	case MsgReject:
		return "Reject"
	}
	return fmt.Sprintf("MsgType(%d)", uint8(t))
}

// RejectReason says why an acceptor refused a ballot.
type RejectReason uint8

const (
	// RejectBallot: the acceptor has promised or accepted a higher ballot.
	RejectBallot RejectReason = iota + 1
	// RejectIdentity: the message was addressed to another incarnation of
	// this voter id (the acceptor was wiped and restarted, or the proposer's
	// configuration is stale). Nothing was changed.
	RejectIdentity
)

// Message is one CASPaxos message. Proposer is the proposer's id (sender of
// Prepare/Accept, addressee of the answers) and Acceptor the acceptor
// (addressee, then sender), so the caller routes by those two fields.
type Message struct {
	Type     MsgType
	Proposer uint64
	Acceptor Voter
	Ballot   Ballot
	// Next: on MsgAccept, the piggybacked prepare; on MsgAccepted, the
	// ballot that was also promised.
	Next Ballot
	// Accepted and Value: on MsgPromise, the acceptor's accepted state; on
	// MsgAccept, Value is the value to accept.
	Accepted Ballot
	Value    []byte
	// Promised, on MsgReject: the highest ballot the acceptor has seen.
	Promised Ballot
	Reason   RejectReason
}

func (m Message) String() string {
	s := fmt.Sprintf("%s p=%d a=%s b=%s", m.Type, m.Proposer, m.Acceptor, m.Ballot)
	if !m.Next.IsZero() {
		s += " next=" + m.Next.String()
	}
	if m.Type == MsgPromise {
		s += " accepted=" + m.Accepted.String()
	}
	if m.Type == MsgReject {
		s += fmt.Sprintf(" promised=%s reason=%d", m.Promised, m.Reason)
	}
	return s
}

const messageVersion = 1

// MarshalBinary encodes m for the wire between voters: a version byte, the
// type, the proposer, the acceptor, the four ballots, the reason and the
// value (length-prefixed), all fixed-width big-endian.
func (m Message) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, 2+8+20+4*16+1+4+len(m.Value))
	b = append(b, messageVersion, byte(m.Type))
	b = binary.BigEndian.AppendUint64(b, m.Proposer)
	b = appendVoter(b, m.Acceptor)
	for _, x := range []Ballot{m.Ballot, m.Next, m.Accepted, m.Promised} {
		b = appendBallot(b, x)
	}
	b = append(b, byte(m.Reason))
	b = binary.BigEndian.AppendUint32(b, uint32(len(m.Value)))
	return append(b, m.Value...), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote. It refuses unknown
// versions and message types, so a newer peer's message is an error, not a
// misread.
func (m *Message) UnmarshalBinary(b []byte) error {
	r := reader{b: b}
	if v := r.u8(); r.err == nil && v != messageVersion {
		return fmt.Errorf("caspaxos: message version %d, want %d", v, messageVersion)
	}
	var out Message
	out.Type = MsgType(r.u8())
	out.Proposer = r.u64()
	out.Acceptor = r.voter()
	out.Ballot = r.ballot()
	out.Next = r.ballot()
	out.Accepted = r.ballot()
	out.Promised = r.ballot()
	out.Reason = RejectReason(r.u8())
	if n := r.u32(); n > 0 {
		out.Value = bytes.Clone(r.take(int(n)))
	}
	if err := r.finish("message"); err != nil {
		return err
	}
	if out.Type < MsgPrepare || out.Type > MsgReject {
		return fmt.Errorf("caspaxos: decode message: unknown type %d", out.Type)
	}
	*m = out
	return nil
}
