package netio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// DefaultMaxRequestBytes is Kafka's default socket.request.max.bytes (100 MiB).
const DefaultMaxRequestBytes int32 = 100 << 20

// ApiVersionsKey is the api key of ApiVersions, whose response header is
// always v0 (see FlexibleResponse).
const ApiVersionsKey int16 = 18

var (
	// ErrFrameTooLarge is returned by FrameReader.Next for a frame whose
	// declared size exceeds the configured maximum.
	ErrFrameTooLarge = errors.New("netio: frame exceeds max request size")
	// ErrInvalidFrameSize is returned by FrameReader.Next for a negative size.
	ErrInvalidFrameSize = errors.New("netio: invalid (negative) frame size")
	// ErrPartialFrame wraps the error of a stream that ended or failed after
	// some, but not all, bytes of a frame were read.
	ErrPartialFrame = errors.New("netio: partial frame")
	// ErrMalformedHeader is returned by ReadRequestHeader for a payload
	// that does not hold a well-formed request header.
	ErrMalformedHeader = errors.New("netio: malformed request header")
)

// flexibleFrom[key] is the first version of key whose request uses header v2
// (flexible versions, KIP-482), or -1 if no version of key is flexible.
// Kafka never turns flexibility off again once a message became flexible, so
// one threshold per key answers for every version. Built once from kmsg so the
// hot path neither allocates nor switches over ~100 keys.
var flexibleFrom = buildFlexibleTable()

// maxProbeKey bounds the keys probed in kmsg; the protocol is nowhere near it.
const maxProbeKey = 1024

func buildFlexibleTable() []int16 {
	var t []int16
	for key := int16(0); key < maxProbeKey; key++ {
		req := kmsg.RequestForKey(key)
		if req == nil {
			continue
		}
		for int(key) >= len(t) {
			t = append(t, -2) // -2: unknown key
		}
		t[key] = -1
		// Probe one past MaxVersion so a key that only becomes flexible at
		// a version kmsg generates but does not yet advertise is still seen.
		for v := int16(0); v <= req.MaxVersion()+1; v++ {
			req.SetVersion(v)
			if req.IsFlexible() {
				t[key] = v
				break
			}
		}
	}
	return t
}

// KnownKey reports whether kmsg knows the api key at all.
func KnownKey(key int16) bool {
	return key >= 0 && int(key) < len(flexibleFrom) && flexibleFrom[key] != -2
}

// FlexibleRequest reports whether requests of (key, version) use request
// header v2 (and hence a tagged-field section). Unknown keys are assumed to
// use header v1: the handler decides how to reject them.
func FlexibleRequest(key, version int16) bool {
	if !KnownKey(key) {
		return false
	}
	from := flexibleFrom[key]
	return from >= 0 && version >= from
}

// FlexibleResponse reports whether the response to (key, version) uses
// response header v1 (correlation id + empty tagged fields). ApiVersions is the
// exception: its response header is always v0 so that a client can parse it
// before it knows which versions the broker speaks.
func FlexibleResponse(key, version int16) bool {
	return key != ApiVersionsKey && FlexibleRequest(key, version)
}

// RequestHeader is a decoded Kafka request header.
type RequestHeader struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string // nil when the client sent a null client id
	Flexible      bool    // header v2: a tagged-field section was present (and skipped)
}

// ReadRequestHeader decodes the request header at the start of a frame
// payload and returns it together with the remaining request body, which
// aliases payload. Tagged fields of a v2 header are skipped.
func ReadRequestHeader(payload []byte) (RequestHeader, []byte, error) {
	var h RequestHeader
	if len(payload) < 10 { // key, version, correlation id, client id length
		return h, nil, fmt.Errorf("%w: %d bytes", ErrMalformedHeader, len(payload))
	}
	h.Key = int16(binary.BigEndian.Uint16(payload[0:]))
	h.Version = int16(binary.BigEndian.Uint16(payload[2:]))
	h.CorrelationID = int32(binary.BigEndian.Uint32(payload[4:]))
	n := int16(binary.BigEndian.Uint16(payload[8:]))
	rest := payload[10:]
	switch {
	case n == -1:
	case n < 0:
		return h, nil, fmt.Errorf("%w: client id length %d", ErrMalformedHeader, n)
	case int(n) > len(rest):
		return h, nil, fmt.Errorf("%w: client id length %d > %d remaining", ErrMalformedHeader, n, len(rest))
	default:
		s := string(rest[:n])
		h.ClientID = &s
		rest = rest[n:]
	}
	if FlexibleRequest(h.Key, h.Version) {
		h.Flexible = true
		var err error
		if rest, err = skipTaggedFields(rest); err != nil {
			return h, nil, err
		}
	}
	return h, rest, nil
}

// skipTaggedFields skips a KIP-482 tagged-field section: uvarint count, then
// per field uvarint tag, uvarint size and size bytes. No tag is defined for
// request headers yet, so their contents are ignored.
func skipTaggedFields(b []byte) ([]byte, error) {
	count, n := binary.Uvarint(b)
	if n <= 0 {
		return nil, fmt.Errorf("%w: bad tagged field count", ErrMalformedHeader)
	}
	b = b[n:]
	// Every field takes at least two bytes, so a count beyond that cannot be
	// satisfied; checking up front keeps hostile counts from spinning.
	if count > uint64(len(b))/2 {
		return nil, fmt.Errorf("%w: %d tagged fields in %d bytes", ErrMalformedHeader, count, len(b))
	}
	for i := uint64(0); i < count; i++ {
		if _, n = binary.Uvarint(b); n <= 0 {
			return nil, fmt.Errorf("%w: bad tag", ErrMalformedHeader)
		}
		b = b[n:]
		size, n := binary.Uvarint(b)
		if n <= 0 {
			return nil, fmt.Errorf("%w: bad tagged field size", ErrMalformedHeader)
		}
		b = b[n:]
		if size > uint64(len(b)) {
			return nil, fmt.Errorf("%w: tagged field size %d > %d remaining", ErrMalformedHeader, size, len(b))
		}
		b = b[size:]
	}
	return b, nil
}

// AppendRequestHeader appends a request header for (key, version) to dst,
// choosing v1 or v2 the way ReadRequestHeader expects (v2 with an empty
// tagged-field section). It does not append the frame size. Meant for tests
// and internal clients.
func AppendRequestHeader(dst []byte, key, version int16, correlationID int32, clientID *string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(key))
	dst = binary.BigEndian.AppendUint16(dst, uint16(version))
	dst = binary.BigEndian.AppendUint32(dst, uint32(correlationID))
	if clientID == nil {
		dst = binary.BigEndian.AppendUint16(dst, 0xffff)
	} else {
		s := *clientID
		if len(s) > math.MaxInt16 {
			s = s[:math.MaxInt16]
		}
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	if FlexibleRequest(key, version) {
		dst = append(dst, 0)
	}
	return dst
}

// ReadResponseHeader splits a response frame payload for a request of
// (key, version) into its correlation id and body. Meant for tests and
// internal clients.
func ReadResponseHeader(payload []byte, key, version int16) (int32, []byte, error) {
	if len(payload) < 4 {
		return 0, nil, fmt.Errorf("netio: response of %d bytes has no header", len(payload))
	}
	corr := int32(binary.BigEndian.Uint32(payload))
	rest := payload[4:]
	if FlexibleResponse(key, version) {
		var err error
		if rest, err = skipTaggedFields(rest); err != nil {
			return corr, nil, err
		}
	}
	return corr, rest, nil
}

// responseHeaderLen is the largest response header netio writes: frame size,
// correlation id and an empty tagged-field section.
const responseHeaderLen = 9

// putResponseHeader writes the frame size (covering header and body) and the
// response header into dst and returns the used prefix of dst.
func putResponseHeader(dst *[responseHeaderLen]byte, correlationID int32, flexible bool, bodyLen int64) ([]byte, error) {
	hdr := int64(4)
	if flexible {
		hdr++
	}
	if bodyLen < 0 || hdr+bodyLen > math.MaxInt32 {
		return nil, fmt.Errorf("netio: response of %d bytes cannot be framed", bodyLen)
	}
	binary.BigEndian.PutUint32(dst[0:], uint32(hdr+bodyLen))
	binary.BigEndian.PutUint32(dst[4:], uint32(correlationID))
	if flexible {
		dst[8] = 0
	}
	return dst[:4+hdr], nil
}

// frameChunk bounds the buffer allocated ahead of received bytes, so a peer
// that merely announces a huge frame cannot make us allocate all of it.
const frameChunk = 1 << 20

// FrameReader reads size-prefixed Kafka frames from a stream.
type FrameReader struct {
	r       io.Reader
	max     int32
	size    [4]byte
	inFrame bool
	err     error // sticky error once the stream is out of sync
}

// NewFrameReader returns a FrameReader that rejects frames larger than
// maxBytes (maxBytes <= 0 means DefaultMaxRequestBytes). r should be buffered.
func NewFrameReader(r io.Reader, maxBytes int32) *FrameReader {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxRequestBytes
	}
	return &FrameReader{r: r, max: maxBytes}
}

// Next returns the payload of the next frame in a freshly allocated slice.
// It returns io.EOF when the stream ends cleanly between frames. An error
// that occurs before any byte of a frame was read (a read deadline, say) is
// returned as is and Next may be called again; every other error is sticky
// because the stream position is then unknown.
func (fr *FrameReader) Next() ([]byte, error) {
	if fr.err != nil {
		return nil, fr.err
	}
	n, err := io.ReadFull(fr.r, fr.size[:])
	if err != nil {
		if n == 0 {
			return nil, err
		}
		fr.inFrame = true
		return nil, fr.fail(err)
	}
	size := int32(binary.BigEndian.Uint32(fr.size[:]))
	if size < 0 {
		fr.err = fmt.Errorf("%w: %d", ErrInvalidFrameSize, size)
		return nil, fr.err
	}
	if size > fr.max {
		fr.err = fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, fr.max)
		return nil, fr.err
	}
	fr.inFrame = true
	buf := make([]byte, 0, min(int(size), frameChunk))
	for len(buf) < int(size) {
		if len(buf) == cap(buf) {
			nb := make([]byte, len(buf), min(2*cap(buf), int(size)))
			copy(nb, buf)
			buf = nb
		}
		k, err := io.ReadFull(fr.r, buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+k]
		if err != nil {
			return nil, fr.fail(err)
		}
	}
	fr.inFrame = false
	return buf, nil
}

func (fr *FrameReader) fail(err error) error {
	if err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	fr.err = fmt.Errorf("%w: %w", ErrPartialFrame, err)
	return fr.err
}

// InFrame reports whether the reader has consumed part of a frame it has not
// returned yet.
func (fr *FrameReader) InFrame() bool { return fr.inFrame }
