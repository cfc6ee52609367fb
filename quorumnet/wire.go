package quorumnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"

	"github.com/twmb/franz-go/pkg/kerr"
)

// APIKey is the API key of the one internal request that carries the
// quorum's traffic. Kafka's keys are small and dense (0 to about 90 in
// 2026; kmsg and netio probe up to 1024), and the broker's API table is
// indexed by key below 128, so 30000 can neither collide with a key Kafka
// adds nor be mistaken for one: netio parses its header as a key it does
// not know (request header v1, response header v0), the broker routes it
// before its table is consulted, and it is never listed in ApiVersions.
const APIKey int16 = 30000

// APIVersion is the only version of the request and its response. A
// receiver answers another version with UNSUPPORTED_VERSION in this
// version's response format, so a newer sender can tell.
const APIVersion int16 = 0

// Channel says what the opaque payload of a request is and who handles it.
type Channel int8

const (
	// ChannelEnvelope is a package voter envelope, fire-and-forget: the
	// answer is an empty acknowledgement or an error code.
	ChannelEnvelope Channel = 1
	// ChannelFetch is an encoded metarepl.FetchRequest; the answer's
	// payload is the encoded metarepl.FetchResponse.
	ChannelFetch Channel = 2
	// ChannelIdentity asks a voter who it is before the quorum runs: the
	// request's payload is empty, the answer's is the voter's identity
	// as the broker encodes it (the bootstrap gathers every voter's
	// incarnation with it; see Ask).
	ChannelIdentity Channel = 3
)

func (c Channel) String() string {
	switch c {
	case ChannelEnvelope:
		return "envelope"
	case ChannelFetch:
		return "fetch"
	case ChannelIdentity:
		return "identity"
	}
	return fmt.Sprintf("channel(%d)", int8(c))
}

// The error codes a receiver answers with, Kafka's codes where one means
// the same thing (nothing outside the quorum reads them).
var (
	// CodeUnsupportedVersion: the request's header version is not APIVersion.
	CodeUnsupportedVersion = kerr.UnsupportedVersion.Code
	// CodeWrongListener: the request did not come in on the CONTROLLER
	// listener of a node with the controller role.
	CodeWrongListener = kerr.InvalidRequest.Code
	// CodeNoHandler: the node runs nothing for the channel (yet): its voter
	// or metadata log is not started, or it stopped.
	CodeNoHandler = kerr.BrokerNotAvailable.Code
	// CodeHandlerFailed: the handler refused the payload (a full inbox, an
	// envelope it cannot read, a fetch it cannot decode); the message says
	// why.
	CodeHandlerFailed = kerr.UnknownServerError.Code
)

// ErrMalformed wraps every decoding failure of a request or response body.
var ErrMalformed = errors.New("quorumnet: malformed body")

// Request is the body of an APIKey request, version 0:
//
//	from int32 | channel int8 | payload_len int32 | payload
//
// big-endian, nothing after the payload. From is the sender's node id as
// it claims it (the CONTROLLER listener is trusted, as for every other
// request there).
type Request struct {
	From    int32
	Channel Channel
	Payload []byte
}

// AppendTo appends the encoded body to dst.
func (r Request) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(r.From))
	dst = append(dst, byte(r.Channel))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Payload)))
	return append(dst, r.Payload...)
}

// ParseRequest decodes a version-0 body. Payload aliases body. A negative
// sender id, an unknown channel, a length that does not match and
// trailing bytes are all ErrMalformed: a body that is wrong in one way
// cannot be trusted in the others.
func ParseRequest(body []byte) (Request, error) {
	var r Request
	if len(body) < 9 {
		return r, fmt.Errorf("%w: request of %d bytes", ErrMalformed, len(body))
	}
	r.From = int32(binary.BigEndian.Uint32(body))
	r.Channel = Channel(body[4])
	n := binary.BigEndian.Uint32(body[5:])
	rest := body[9:]
	switch {
	case r.From < 0:
		return r, fmt.Errorf("%w: sender id %d", ErrMalformed, r.From)
	case r.Channel != ChannelEnvelope && r.Channel != ChannelFetch && r.Channel != ChannelIdentity:
		return r, fmt.Errorf("%w: unknown %s", ErrMalformed, r.Channel)
	case uint64(n) != uint64(len(rest)):
		return r, fmt.Errorf("%w: payload length %d, %d bytes follow", ErrMalformed, n, len(rest))
	}
	r.Payload = rest
	return r, nil
}

// Response is the body of the answer, version 0:
//
//	error_code int16 | message_len int16 | message | payload_len int32 | payload
//
// message_len -1 is no message. The payload is empty for an envelope and
// for any error.
type Response struct {
	ErrorCode    int16
	ErrorMessage string
	Payload      []byte
}

// AppendTo appends the encoded body to dst. A message longer than a Kafka
// string is cut.
func (r Response) AppendTo(dst []byte) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(r.ErrorCode))
	if r.ErrorMessage == "" {
		dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	} else {
		m := r.ErrorMessage
		if len(m) > math.MaxInt16 {
			m = m[:math.MaxInt16]
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(m)))
		dst = append(dst, m...)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(r.Payload)))
	return append(dst, r.Payload...)
}

// ParseResponse decodes a version-0 answer body. Payload aliases body.
func ParseResponse(body []byte) (Response, error) {
	var r Response
	if len(body) < 4 {
		return r, fmt.Errorf("%w: response of %d bytes", ErrMalformed, len(body))
	}
	r.ErrorCode = int16(binary.BigEndian.Uint16(body))
	ml := int16(binary.BigEndian.Uint16(body[2:]))
	rest := body[4:]
	switch {
	case ml == -1:
	case ml < 0 || int(ml) > len(rest):
		return r, fmt.Errorf("%w: message length %d, %d bytes follow", ErrMalformed, ml, len(rest))
	default:
		r.ErrorMessage = string(rest[:ml])
		rest = rest[ml:]
	}
	if len(rest) < 4 {
		return r, fmt.Errorf("%w: no payload length", ErrMalformed)
	}
	n := binary.BigEndian.Uint32(rest)
	rest = rest[4:]
	if uint64(n) != uint64(len(rest)) {
		return r, fmt.Errorf("%w: payload length %d, %d bytes follow", ErrMalformed, n, len(rest))
	}
	r.Payload = rest
	return r, nil
}

// Err is the answer's error: nil for code 0, else the Kafka error of the
// code with the receiver's message.
func (r Response) Err() error {
	if r.ErrorCode == 0 {
		return nil
	}
	err := kerr.ErrorForCode(r.ErrorCode)
	if r.ErrorMessage != "" {
		return fmt.Errorf("%w: %s", err, r.ErrorMessage)
	}
	return err
}
