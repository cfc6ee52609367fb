//go:build linux

package netio

import (
	"testing"
	"time"
)

// The self-test reports every ring mode, and the mode it chose is one that
// set up; a passing choice really is as fast as the test says.
func TestUringWakeSelfTest(t *testing.T) {
	if err := UringSupported(); err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	w := UringWake()
	t.Log(w.String())
	if len(w.Modes) != len(ringModes) {
		t.Fatalf("%d modes reported, want %d", len(w.Modes), len(ringModes))
	}
	if w.Poller <= 0 || w.Poller >= wakeDeadline {
		t.Errorf("poller median %v is not a measurement", w.Poller)
	}
	c := w.chosen()
	if c.Mode == "" || c.Err != nil {
		t.Fatalf("chosen mode %q: %+v", w.Chosen, c)
	}
	if w.RTTErr != nil {
		t.Errorf("round trips not measured: %v", w.RTTErr)
	} else if w.RTTUring <= 0 || w.RTTStd <= 0 {
		t.Errorf("round trips uring %v, std %v are not measurements", w.RTTUring, w.RTTStd)
	}
	if want := c.passes(w.Poller) && rttAsGood(w.RTTUring, w.RTTStd); w.Pass != want {
		t.Errorf("Pass = %v, want %v (chosen mode %+v)", w.Pass, want, c)
	}
	if w.Pass && c.Median >= time.Millisecond {
		t.Errorf("chosen mode passes with median %v", c.Median)
	}
	// A passing mode earlier in the order of preference would have been chosen.
	for _, m := range w.Modes {
		if m.Mode == w.Chosen {
			break
		}
		if m.passes(w.Poller) {
			t.Errorf("mode %s passed but %s was chosen", m.Mode, w.Chosen)
		}
	}
}

func TestRTTAsGood(t *testing.T) {
	us := time.Microsecond
	for _, tc := range []struct {
		uring, std time.Duration
		want       bool
	}{
		{20 * us, 25 * us, true},
		{30 * us, 25 * us, true}, // within the noise of a short run
		{85 * us, 21 * us, false},
		{16 * time.Millisecond, 180 * us, false},
	} {
		if got := rttAsGood(tc.uring, tc.std); got != tc.want {
			t.Errorf("rttAsGood(%v, %v) = %v, want %v", tc.uring, tc.std, got, tc.want)
		}
	}
}

// The judgement itself: a mode passes only when fast in absolute terms, as
// fast as the poller within the slack, and never missed the deadline.
func TestModeWakePasses(t *testing.T) {
	poller := 40 * time.Microsecond
	for _, tc := range []struct {
		m    ModeWake
		want bool
	}{
		{ModeWake{Median: 60 * time.Microsecond}, true},
		{ModeWake{Median: 15 * time.Millisecond}, false},                    // the RCU-deferred eventfd
		{ModeWake{Median: 60 * time.Microsecond, Misses: 1}, false},         // one round never woke
		{ModeWake{Median: poller + wakeSlack + time.Microsecond}, false},    // slower than the poller
		{ModeWake{Median: 10 * time.Microsecond, Err: errTestSetup}, false}, // could not be set up
	} {
		if got := tc.m.passes(poller); got != tc.want {
			t.Errorf("%+v passes = %v, want %v", tc.m, got, tc.want)
		}
	}
}

var errTestSetup = errorString("setup failed")

type errorString string

func (e errorString) Error() string { return string(e) }
