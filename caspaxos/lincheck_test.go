package caspaxos

import (
	"errors"
	"fmt"

	"github.com/anishathalye/porcupine"
)

// regOp is a client operation on the register, as the simulator issues it
// and as the linearizability model replays it.
type regOp struct {
	kind  string // read, takeover, renew, setisr
	epoch int32
	lease uint64
	me    Voter
	isr   []Voter
}

func (o regOp) change() Change {
	switch o.kind {
	case "takeover":
		return Takeover(o.epoch, o.lease, o.me)
	case "renew":
		return Renew(o.epoch, o.me, o.lease)
	case "setisr":
		return SetISR(o.epoch, o.isr)
	}
	return Read
}

func (o regOp) String() string {
	switch o.kind {
	case "read":
		return "read"
	case "setisr":
		return fmt.Sprintf("setisr(e=%d %v)", o.epoch, o.isr)
	}
	return fmt.Sprintf("%s(e=%d l=%d %s)", o.kind, o.epoch, o.lease, o.me)
}

// regOut is what the client saw: unknown if its proposer crashed or the run
// ended first (porcupine then may place it anywhere after its call).
type regOut struct {
	known bool
	value string // encoded register after the op
	err   string // errClass of the change's error
}

func errClass(err error) string {
	var ee *EpochError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ee):
		return "epoch"
	case errors.Is(err, ErrNotInISR):
		return "notisr"
	case errors.Is(err, ErrLeaseRenewed):
		return "lease"
	}
	return "other"
}

// registerModel is the sequential specification: the state is the encoded
// register, and each op is its Change applied to it (a refused change
// leaves the state as it was and returns it). An op whose outcome is
// unknown (indeterminate, or its proposer crashed) may or may not have
// changed the state, so it is nondeterministic.
var registerModel = (&porcupine.NondeterministicModel{
	Init: func() []interface{} { return []interface{}{""} },
	Step: func(state, input, output interface{}) []interface{} {
		st := state.(string)
		op := input.(regOp)
		out := output.(regOut)
		next, err := op.change()([]byte(st))
		if err != nil {
			next = []byte(st)
		}
		switch {
		case !out.known && string(next) != st:
			return []interface{}{st, string(next)}
		case !out.known:
			return []interface{}{st}
		case out.value == string(next) && out.err == errClass(err):
			return []interface{}{string(next)}
		}
		return nil
	},
	DescribeOperation: func(input, output interface{}) string {
		out := output.(regOut)
		if !out.known {
			return input.(regOp).String() + " -> ?"
		}
		return fmt.Sprintf("%s -> %s %s", input.(regOp), describe(out.value), out.err)
	},
}).ToModel()

func describe(enc string) string {
	var r Register
	if err := r.UnmarshalBinary([]byte(enc)); err != nil {
		return "!" + err.Error()
	}
	return fmt.Sprintf("{e=%d a=%d l=%d isr=%d}", r.Epoch, r.Active.ID, r.Lease, len(r.ISR))
}
