// Package invariants gates assertions that check, in test builds, what the
// storage code only states in comments: logStart <= HW <= LEO, offsets
// contiguous at append and at recovery, HW and leader epochs monotonic.
//
// Assertions are written behind the build-tag constant, so that without the
// invariants tag neither the checks nor their arguments are compiled in:
//
//	if invariants.Enabled && got != want {
//		invariants.Failf("log %s: LEO %d after append, want %d", dir, got, want)
//	}
//
// `make test` and `make test-all` build with -tags invariants (as pebble
// does with its own invariants tag); the broker binary does not. A
// violation is a bug in the code, never bad input: data read from disk or
// the network is checked with ordinary errors, so an assertion must hold
// whatever the disk holds.
package invariants

import "fmt"

// Violation is the panic value of Failf, so tests can tell a broken
// invariant from any other panic.
type Violation struct{ Msg string }

func (v *Violation) Error() string { return "invariant violated: " + v.Msg }

// Failf panics with a *Violation whose message is format applied to args;
// the message should name the log dir or partition and the values seen.
// Call it only behind Enabled: it panics in every build.
func Failf(format string, args ...any) {
	panic(&Violation{Msg: fmt.Sprintf(format, args...)})
}

// Catch runs fn and returns the Violation it panicked with, nil if it
// returned normally. Any other panic is passed on. For tests that prove an
// assertion fires.
func Catch(fn func()) (v *Violation) {
	defer func() {
		if r := recover(); r != nil {
			var ok bool
			if v, ok = r.(*Violation); !ok {
				panic(r)
			}
		}
	}()
	fn()
	return nil
}
