package netio

import (
	"fmt"
	"time"
)

// What the io_uring engine's wake-up self-test measured (see
// uring_selftest_linux.go); portable so that callers need no build tags.

const (
	wakeRounds   = 7                      // round trips per mode; the median decides
	wakeDeadline = 50 * time.Millisecond  // a round slower than this is a miss
	wakeMaxAbs   = time.Millisecond       // a passing median is below this...
	wakeSlack    = 250 * time.Microsecond // ...and within this of Go's poller
)

// ModeWake is the self-test's result for one ring mode.
type ModeWake struct {
	Mode   string        // a ringModes name: "defer", "defer-block", "coop" or "plain"
	Median time.Duration // median wake-up latency, 0 if the mode could not be set up
	Misses int           // rounds that took longer than the deadline
	Err    error         // why the mode could not be set up or tested
	// RTT is the median round trip of one request in flight through a
	// whole engine in this mode; measured only for modes that wake up as
	// fast as Go's poller.
	RTT time.Duration
	// RTTStd is the std engine's, measured beside RTT.
	RTTStd time.Duration
}

// WakeReport is what the io_uring wake-up self-test measured.
type WakeReport struct {
	Poller time.Duration // median wake-up of a goroutine parked in Go's poller (the std engine's path)
	Modes  []ModeWake    // every mode tried, in order of preference
	// Chosen is the mode the rings use: of those that wake up as fast as
	// the poller (median under 1 ms, no misses, within 250 µs of Poller),
	// the one with the shortest round trip; if none does, the one that
	// wakes up fastest.
	Chosen string
	RTTErr error // why the round trips could not be measured
	// Pass: a mode wakes up as fast as the poller and the chosen one's
	// round trip is as good as the std engine's; NewEngine("auto") then
	// uses io_uring.
	Pass bool
	// Measured is when the result was measured if it was kept from an
	// earlier start on this boot; zero when measured by this process.
	Measured time.Time
}

// Chosen mode's result.
func (w WakeReport) chosen() ModeWake {
	for _, m := range w.Modes {
		if m.Mode == w.Chosen {
			return m
		}
	}
	return ModeWake{}
}

// String is the one-line summary `sluice engines` and the start-up log print.
func (w WakeReport) String() string {
	s := fmt.Sprintf("wake-up self-test: Go poller %v", w.Poller.Round(time.Microsecond))
	for _, m := range w.Modes {
		switch {
		case m.Err != nil:
			s += fmt.Sprintf(", %s unavailable (%v)", m.Mode, m.Err)
		case m.Misses > 0:
			s += fmt.Sprintf(", %s %v (%d of %d rounds over %v)", m.Mode, m.Median.Round(time.Microsecond), m.Misses, wakeRounds, wakeDeadline)
		case m.RTT > 0:
			s += fmt.Sprintf(", %s %v (round trip %v, std %v)", m.Mode, m.Median.Round(time.Microsecond),
				m.RTT.Round(time.Microsecond), m.RTTStd.Round(time.Microsecond))
		default:
			s += fmt.Sprintf(", %s %v", m.Mode, m.Median.Round(time.Microsecond))
		}
	}
	if w.RTTErr != nil {
		s += fmt.Sprintf("; round trip not measured (%v)", w.RTTErr)
	}
	verdict := "fail"
	if w.Pass {
		verdict = "pass"
	}
	s += fmt.Sprintf("; rings use %s (%s)", w.Chosen, verdict)
	if !w.Measured.IsZero() {
		s += fmt.Sprintf(", as measured at %s on this boot", w.Measured.UTC().Format(time.RFC3339))
	}
	return s
}

// passes reports whether a mode's wake-up is as good as the poller's.
func (m ModeWake) passes(poller time.Duration) bool {
	return m.Err == nil && m.Misses == 0 && m.Median < wakeMaxAbs && m.Median <= poller+wakeSlack
}
