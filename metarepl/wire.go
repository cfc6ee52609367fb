package metarepl

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

// FetchRequest is one fetch of the metadata log: by a voter (its exact
// identity, so the leader counts its durable position) or by an observer
// (a broker, served committed records only).
type FetchRequest struct {
	Replica  metalog.Voter // a broker: its id, zero incarnation
	Observer bool
	// CurrentEpoch is the controller epoch the fetcher follows.
	CurrentEpoch int32
	// FetchOffset is the fetcher's durable log end: everything before it
	// is fsynced.
	FetchOffset      int64
	LastFetchedEpoch int32
	LogStartOffset   int64
	MaxBytes         int32
	// MaxWaitMs is how long the leader may hold a fetch that has nothing
	// new (a long poll); it answers sooner when its log end or high
	// watermark moves.
	MaxWaitMs int32
}

// FetchResponse is the leader's answer: an error (Err, a kerr error), a
// DivergingEpoch, or batches from FetchOffset with the high watermark.
// LogStartOffset and LogEndOffset are the leader's durable log bounds, for
// an OFFSET_OUT_OF_RANGE reset. LogStartEpoch is the epoch of the leader's
// first batch when its log was trimmed (LogStartOffset > 0), else
// isr.UndefinedEpoch: the leader cannot tell where an older epoch ended, so
// it answers OFFSET_OUT_OF_RANGE to a fetch whose last fetched epoch is
// older, and the fetcher then empties its log and starts at
// LogStartOffset (see Log.EndOffsetFor).
type FetchResponse struct {
	Epoch          int32
	Err            error
	Diverging      *isr.EpochEndOffset
	HighWatermark  int64
	LogStartOffset int64
	LogEndOffset   int64
	LogStartEpoch  int32
	Batches        []Batch
}

// Encodings: "SLMF" | kind ('q' request, 'r' response) | version | fields,
// big-endian. A request is version 1. A response is version 2: its batches
// are log frames of frame version 2 (with attributes: Checkpoint), checksum
// and all, so a batch is verified end to end from the leader's disk to the
// follower's, and LogStartEpoch follows LogEndOffset. A version 1 response
// (frames without attributes, no LogStartEpoch) is still decoded. A
// decoder refuses another magic, kind or version.
const (
	wireVersion         = 1 // requests
	wireResponseVersion = 2
	kindRequest         = 'q'
	kindResponse        = 'r'
)

var wireMagic = []byte("SLMF")

// ErrBadMessage: bytes that are not a fetch message this version knows.
var ErrBadMessage = errors.New("metarepl: bad fetch message")

// MarshalBinary encodes the request.
func (r FetchRequest) MarshalBinary() ([]byte, error) {
	b := append(append([]byte(nil), wireMagic...), kindRequest, wireVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Replica.ID))
	b = append(b, r.Replica.Incarnation[:]...)
	b = append(b, boolByte(r.Observer))
	b = binary.BigEndian.AppendUint32(b, uint32(r.CurrentEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(r.FetchOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(r.LastFetchedEpoch))
	b = binary.BigEndian.AppendUint64(b, uint64(r.LogStartOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(r.MaxBytes))
	b = binary.BigEndian.AppendUint32(b, uint32(r.MaxWaitMs))
	return b, nil
}

// UnmarshalBinary decodes a request MarshalBinary wrote.
func (r *FetchRequest) UnmarshalBinary(data []byte) error {
	d, err := newDecoder(data, kindRequest, wireVersion, wireVersion)
	if err != nil {
		return err
	}
	var out FetchRequest
	out.Replica.ID = d.i32()
	copy(out.Replica.Incarnation[:], d.bytes(len(out.Replica.Incarnation)))
	out.Observer = d.bool()
	out.CurrentEpoch = d.i32()
	out.FetchOffset = d.i64()
	out.LastFetchedEpoch = d.i32()
	out.LogStartOffset = d.i64()
	out.MaxBytes = d.i32()
	out.MaxWaitMs = d.i32()
	if err := d.done(); err != nil {
		return err
	}
	*r = out
	return nil
}

// MarshalBinary encodes the response. Err travels as its Kafka error code
// (UNKNOWN_SERVER_ERROR if it has none) and message.
func (r FetchResponse) MarshalBinary() ([]byte, error) {
	b := append(append([]byte(nil), wireMagic...), kindResponse, wireResponseVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Epoch))
	code, msg := int16(0), ""
	if r.Err != nil {
		code, msg = kerr.UnknownServerError.Code, r.Err.Error()
		var ke *kerr.Error
		if errors.As(r.Err, &ke) {
			code = ke.Code
		}
		if len(msg) > 1<<15 {
			msg = msg[:1<<15]
		}
	}
	b = binary.BigEndian.AppendUint16(b, uint16(code))
	b = binary.BigEndian.AppendUint16(b, uint16(len(msg)))
	b = append(b, msg...)
	b = append(b, boolByte(r.Diverging != nil))
	if r.Diverging != nil {
		b = binary.BigEndian.AppendUint32(b, uint32(r.Diverging.Epoch))
		b = binary.BigEndian.AppendUint64(b, uint64(r.Diverging.EndOffset))
	}
	b = binary.BigEndian.AppendUint64(b, uint64(r.HighWatermark))
	b = binary.BigEndian.AppendUint64(b, uint64(r.LogStartOffset))
	b = binary.BigEndian.AppendUint64(b, uint64(r.LogEndOffset))
	b = binary.BigEndian.AppendUint32(b, uint32(r.LogStartEpoch))
	b = binary.BigEndian.AppendUint32(b, uint32(len(r.Batches)))
	var err error
	for _, bt := range r.Batches {
		if b, err = appendFrame(b, bt); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// UnmarshalBinary decodes a response MarshalBinary wrote, verifying each
// batch's checksum. A decoded Err matches its kerr error with errors.Is.
func (r *FetchResponse) UnmarshalBinary(data []byte) error {
	d, err := newDecoder(data, kindResponse, 1, wireResponseVersion)
	if err != nil {
		return err
	}
	var out FetchResponse
	out.Epoch = d.i32()
	code := int16(d.u16())
	msg := string(d.bytes(int(d.u16())))
	if code != 0 {
		out.Err = fmt.Errorf("%s: %w", msg, kerr.ErrorForCode(code))
	}
	if d.bool() {
		out.Diverging = &isr.EpochEndOffset{Epoch: d.i32(), EndOffset: d.i64()}
	}
	out.HighWatermark = d.i64()
	out.LogStartOffset = d.i64()
	out.LogEndOffset = d.i64()
	out.LogStartEpoch = isr.UndefinedEpoch
	frameVersion := frameV1
	if d.version >= 2 {
		out.LogStartEpoch, frameVersion = d.i32(), frameV2
	}
	n := d.u32()
	if d.err == nil && uint64(n)*(frameHeader+bodyFixedV1) > uint64(len(d.b)) {
		return fmt.Errorf("%w: %d batches in %d bytes", ErrBadMessage, n, len(d.b))
	}
	for i := uint32(0); i < n && d.err == nil; i++ {
		bt, size, err := decodeFrame(d.b, frameVersion)
		if err != nil {
			return fmt.Errorf("%w: batch %d: %w", ErrBadMessage, i, err)
		}
		out.Batches = append(out.Batches, bt)
		d.b = d.b[size:]
	}
	if err := d.done(); err != nil {
		return err
	}
	*r = out
	return nil
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// decoder reads big-endian fields, remembering the first shortfall.
type decoder struct {
	b       []byte
	version byte
	err     error
}

// newDecoder checks the magic, the kind and a version from minVersion to
// maxVersion.
func newDecoder(data []byte, kind byte, minVersion, maxVersion byte) (*decoder, error) {
	h := len(wireMagic) + 2
	if len(data) < h || string(data[:len(wireMagic)]) != string(wireMagic) || data[h-2] != kind {
		return nil, fmt.Errorf("%w: not a fetch %c message", ErrBadMessage, kind)
	}
	if v := data[h-1]; v < minVersion || v > maxVersion {
		return nil, fmt.Errorf("%w: version %d, this node speaks %d to %d", ErrBadMessage, v, minVersion, maxVersion)
	}
	return &decoder{b: data[h:], version: data[h-1]}, nil
}

func (d *decoder) bytes(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = fmt.Errorf("%w: cut short", ErrBadMessage)
		return nil
	}
	out := d.b[:n:n]
	d.b = d.b[n:]
	return out
}

func (d *decoder) u16() uint16 {
	if b := d.bytes(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (d *decoder) u32() uint32 {
	if b := d.bytes(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (d *decoder) i32() int32 { return int32(d.u32()) }

func (d *decoder) i64() int64 {
	if b := d.bytes(8); b != nil {
		return int64(binary.BigEndian.Uint64(b))
	}
	return 0
}

func (d *decoder) bool() bool {
	b := d.bytes(1)
	return b != nil && b[0] != 0
}

func (d *decoder) done() error {
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%w: %d trailing bytes", ErrBadMessage, len(d.b))
	}
	return d.err
}
