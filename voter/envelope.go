package voter

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/caspaxos"
)

// The bytes voters send each other are an envelope: a magic byte, the
// envelope version, the kind of the body, then the body in its own
// versioned encoding (caspaxos.Message or caspaxos.Register). A carrier
// (the broker's internal request on the CONTROLLER listener, later) need
// not look inside; a receiver refuses what it cannot read rather than
// guess, so a newer peer's message is dropped, not misread.
//
// Version 2 adds, for a caspaxos message only, the membership step the
// sender's proposers use (change int64, step uint16) after the kind: an
// acceptor refuses a Prepare or Accept from a proposer on an older step
// than its own (see adopt and paxos). A voter that no membership change
// ever reached has no step and writes version 1, byte for byte as before,
// so voters of an older release still read it; version 1 still decodes,
// as a sender with no step.
const (
	envelopeMagic   = 0x51 // 'Q'
	envelopeVersion = 1
	envelopeV2      = 2
	envelopeHeader  = 3
	stampLen        = 10
)

// kind says what an envelope carries.
type kind uint8

const (
	// kindPaxos is one caspaxos.Message: a proposer's Prepare or Accept
	// for the receiver's acceptor, or an acceptor's answer for the
	// receiver's proposer.
	kindPaxos kind = iota + 1
	// kindAnnounce is a register value the active controller's round
	// chose, for the receiver's ctrlquorum.Node.Observe.
	kindAnnounce
	// kindStep asks the receiver's proposers to use a membership change's
	// step (a stepRecord): the receiver persists it, then acknowledges.
	kindStep
	// kindStepAck is the step record the sender's proposers now use,
	// sent only after it is persisted.
	kindStepAck
)

// ErrEnvelope is wrapped by every error about bytes that are not an
// envelope this version can read.
var ErrEnvelope = errors.New("voter: bad envelope")

// envelope is one decoded message between voters.
type envelope struct {
	kind kind
	msg  caspaxos.Message
	reg  caspaxos.Register
	step stepRecord // kindStep, kindStepAck
	// at is the sender's step for kindPaxos (version 2); nil when the
	// sender has none (version 1).
	at *stamp
}

// stamp names a membership step: step Step of change Change.
type stamp struct {
	Change int64
	Step   int
}

// older reports whether a proposer on step s (nil: none, the bootstrap
// configuration) is behind the step record r.
func (s *stamp) older(r stepRecord) bool {
	return s == nil || !(stepRecord{Change: s.Change, Step: s.Step}).covers(r.Change, r.Step)
}

func encodeEnvelope(e envelope) ([]byte, error) {
	var body []byte
	var err error
	switch e.kind {
	case kindPaxos:
		body, err = e.msg.MarshalBinary()
	case kindAnnounce:
		body, err = e.reg.MarshalBinary()
	case kindStep, kindStepAck:
		body, err = e.step.MarshalBinary()
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrEnvelope, e.kind)
	}
	if err != nil {
		return nil, fmt.Errorf("voter: encode %v: %w", e.kind, err)
	}
	if e.kind == kindPaxos && e.at != nil {
		if e.at.Step < 0 || e.at.Step > 0xffff {
			return nil, fmt.Errorf("voter: encode %v: step %d does not encode", e.kind, e.at.Step)
		}
		b := make([]byte, 0, envelopeHeader+stampLen+len(body))
		b = append(b, envelopeMagic, envelopeV2, byte(e.kind))
		b = binary.BigEndian.AppendUint64(b, uint64(e.at.Change))
		b = binary.BigEndian.AppendUint16(b, uint16(e.at.Step))
		return append(b, body...), nil
	}
	return append([]byte{envelopeMagic, envelopeVersion, byte(e.kind)}, body...), nil
}

// decodeEnvelope decodes b; the result shares nothing with b, so the
// carrier may reuse its buffer.
func decodeEnvelope(b []byte) (envelope, error) {
	var e envelope
	if len(b) < envelopeHeader {
		return e, fmt.Errorf("%w: %d bytes", ErrEnvelope, len(b))
	}
	if b[0] != envelopeMagic {
		return e, fmt.Errorf("%w: magic %#x", ErrEnvelope, b[0])
	}
	if b[1] != envelopeVersion && b[1] != envelopeV2 {
		return e, fmt.Errorf("%w: version %d, want %d or %d", ErrEnvelope, b[1], envelopeVersion, envelopeV2)
	}
	e.kind = kind(b[2])
	body := b[envelopeHeader:]
	if b[1] == envelopeV2 {
		if e.kind != kindPaxos || len(body) < stampLen {
			return e, fmt.Errorf("%w: version 2 %v envelope of %d bytes", ErrEnvelope, e.kind, len(b))
		}
		e.at = &stamp{Change: int64(binary.BigEndian.Uint64(body)), Step: int(binary.BigEndian.Uint16(body[8:]))}
		body = body[stampLen:]
	}
	var err error
	switch e.kind {
	case kindPaxos:
		err = e.msg.UnmarshalBinary(body)
	case kindAnnounce:
		err = e.reg.UnmarshalBinary(body) // copies: strings and fresh slices
	case kindStep, kindStepAck:
		err = e.step.UnmarshalBinary(body) // copies
	default:
		return e, fmt.Errorf("%w: unknown kind %d", ErrEnvelope, e.kind)
	}
	if err != nil {
		return e, fmt.Errorf("%w: %w", ErrEnvelope, err)
	}
	return e, nil
}

func (k kind) String() string {
	switch k {
	case kindPaxos:
		return "paxos"
	case kindAnnounce:
		return "announce"
	case kindStep:
		return "step"
	case kindStepAck:
		return "step-ack"
	}
	return fmt.Sprintf("kind(%d)", uint8(k))
}
