package voter

import (
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
const (
	envelopeMagic   = 0x51 // 'Q'
	envelopeVersion = 1
	envelopeHeader  = 3
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
	if b[1] != envelopeVersion {
		return e, fmt.Errorf("%w: version %d, want %d", ErrEnvelope, b[1], envelopeVersion)
	}
	e.kind = kind(b[2])
	body := b[envelopeHeader:]
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
