package caspaxos

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Register is the controller quorum's register value: who is the active
// controller, under which fencing epoch, which voters form the metadata
// log's ISR, and the lease counter the active controller bumps to show it
// is alive. The empty register (never written) decodes as the zero
// Register.
type Register struct {
	// Epoch is the controller epoch, the fencing token: it grows by one on
	// every takeover and is the metadata log's leader epoch.
	Epoch int32
	// Active is the active controller (zero before the first takeover).
	Active Voter
	// ISR is the metadata log's in-sync voters, by exact incarnation.
	ISR []Voter
	// Lease counts the active controller's renewals in this epoch. It
	// decides liveness only: a voter that sees it stall takes over.
	Lease uint64
}

const registerVersion = 1

// MarshalBinary encodes r: a version byte, then fixed-width big-endian
// fields. Version 1: epoch int32, active voter, lease uint64, ISR count
// uint16, ISR voters (a voter is id int32 then a 16-byte incarnation).
func (r Register) MarshalBinary() ([]byte, error) {
	if len(r.ISR) > 0xffff {
		return nil, fmt.Errorf("caspaxos: register ISR of %d voters", len(r.ISR))
	}
	b := make([]byte, 0, 1+4+20+8+2+20*len(r.ISR))
	b = append(b, registerVersion)
	b = binary.BigEndian.AppendUint32(b, uint32(r.Epoch))
	b = appendVoter(b, r.Active)
	b = binary.BigEndian.AppendUint64(b, r.Lease)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.ISR)))
	for _, v := range r.ISR {
		b = appendVoter(b, v)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; nil or empty input is
// the empty register.
func (r *Register) UnmarshalBinary(b []byte) error {
	if len(b) == 0 {
		*r = Register{}
		return nil
	}
	rd := reader{b: b}
	if v := rd.u8(); v != registerVersion {
		return fmt.Errorf("caspaxos: register version %d, want %d", v, registerVersion)
	}
	var out Register
	out.Epoch = int32(rd.u32())
	out.Active = rd.voter()
	out.Lease = rd.u64()
	n := int(rd.u16())
	for i := 0; i < n && rd.err == nil; i++ {
		out.ISR = append(out.ISR, rd.voter())
	}
	if err := rd.finish("register"); err != nil {
		return err
	}
	*r = out
	return nil
}

// InISR reports whether v, this exact incarnation, is in the ISR.
func (r Register) InISR(v Voter) bool { return slices.Contains(r.ISR, v) }

// EpochError is a compare-and-set that found another epoch (or another
// active controller): the caller has been deposed or is out of date.
type EpochError struct {
	Expected int32
	Current  Register
}

func (e *EpochError) Error() string {
	return fmt.Sprintf("caspaxos: register epoch is %d (active %s), expected %d", e.Current.Epoch, e.Current.Active, e.Expected)
}

// Errors of the Register changes.
var (
	// ErrNotInISR: a takeover by a voter (incarnation) outside the
	// metadata ISR, which may lack committed metadata.
	ErrNotInISR = errors.New("caspaxos: voter not in the metadata ISR")
	// ErrLeaseRenewed: the lease moved since the caller saw it stall, so
	// the active controller is alive and the takeover is withdrawn.
	ErrLeaseRenewed = errors.New("caspaxos: lease renewed since observed")
)

// RegisterChange turns a function over a decoded Register into a Change.
func RegisterChange(f func(r *Register) error) Change {
	return func(cur []byte) ([]byte, error) {
		var r Register
		if err := r.UnmarshalBinary(cur); err != nil {
			return nil, err
		}
		r.ISR = slices.Clone(r.ISR)
		if err := f(&r); err != nil {
			return nil, err
		}
		return r.MarshalBinary()
	}
}

// CompareAndSet changes the register with f only if its epoch is still
// expected, Kafka's CheckOp(/controller_epoch) in CASPaxos form. f must be
// idempotent (see Change).
func CompareAndSet(expected int32, f func(r *Register) error) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch != expected {
			return &EpochError{Expected: expected, Current: *r}
		}
		return f(r)
	})
}

// Takeover makes me the active controller in epoch seenEpoch+1, if the
// register is still at seenEpoch with lease seenLease (the lease the caller
// watched stall) and me is in the ISR. An empty ISR (bootstrap, epoch 0)
// becomes {me}. Already applied (epoch seenEpoch+1 with me active), it
// succeeds without another change.
func Takeover(seenEpoch int32, seenLease uint64, me Voter) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch == seenEpoch+1 && r.Active == me {
			return nil
		}
		if r.Epoch != seenEpoch {
			return &EpochError{Expected: seenEpoch, Current: *r}
		}
		if r.Lease != seenLease {
			return ErrLeaseRenewed
		}
		switch {
		case len(r.ISR) == 0 && r.Epoch == 0:
			r.ISR = []Voter{me}
		case !r.InISR(me):
			return ErrNotInISR
		}
		r.Epoch++
		r.Active = me
		r.Lease = 0
		return nil
	})
}

// Renew bumps the lease from fromLease to fromLease+1 if me is still the
// active controller in epoch. Already applied, it succeeds unchanged.
func Renew(epoch int32, me Voter, fromLease uint64) Change {
	return RegisterChange(func(r *Register) error {
		if r.Epoch != epoch || r.Active != me {
			return &EpochError{Expected: epoch, Current: *r}
		}
		switch r.Lease {
		case fromLease + 1:
			return nil
		case fromLease:
			r.Lease++
			return nil
		}
		return fmt.Errorf("caspaxos: lease is %d, renewal from %d", r.Lease, fromLease)
	})
}

// SetISR replaces the metadata ISR if the register is still in epoch. The
// active controller must stay in it.
func SetISR(epoch int32, isr []Voter) Change {
	isr = slices.Clone(isr)
	return CompareAndSet(epoch, func(r *Register) error {
		if !r.Active.IsZero() && !slices.Contains(isr, r.Active) {
			return fmt.Errorf("caspaxos: ISR %v leaves out the active controller %s", isr, r.Active)
		}
		r.ISR = slices.Clone(isr)
		return nil
	})
}
