package caspaxos

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// errShort is returned (wrapped) when an encoding ends early.
var errShort = errors.New("caspaxos: encoding truncated")

// reader decodes the fixed-width big-endian fields of this package's
// encodings; the first error sticks, so callers check once at the end.
type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.err = errShort
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8() uint8 {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if b := r.take(2); b != nil {
		return binary.BigEndian.Uint16(b)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) voter() Voter {
	v := Voter{ID: int32(r.u32())}
	if b := r.take(len(v.Incarnation)); b != nil {
		copy(v.Incarnation[:], b)
	}
	return v
}

func (r *reader) ballot() Ballot { return Ballot{Counter: r.u64(), Proposer: r.u64()} }

// finish reports a decoding error, including trailing bytes, which mean the
// data is not what the caller thinks it is.
func (r *reader) finish(what string) error {
	if r.err != nil {
		return fmt.Errorf("caspaxos: decode %s: %w", what, r.err)
	}
	if len(r.b) != 0 {
		return fmt.Errorf("caspaxos: decode %s: %d trailing bytes", what, len(r.b))
	}
	return nil
}

func appendVoter(b []byte, v Voter) []byte {
	b = binary.BigEndian.AppendUint32(b, uint32(v.ID))
	return append(b, v.Incarnation[:]...)
}

func appendBallot(b []byte, x Ballot) []byte {
	b = binary.BigEndian.AppendUint64(b, x.Counter)
	return binary.BigEndian.AppendUint64(b, x.Proposer)
}

func (r *reader) str() string {
	n := int(r.u16())
	return string(r.take(n))
}

func (r *reader) voters() []Voter {
	n := int(r.u16())
	var out []Voter
	for i := 0; i < n && r.err == nil; i++ {
		out = append(out, r.voter())
	}
	return out
}

func appendString(b []byte, s string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(s)))
	return append(b, s...)
}
