// Package pace waits for a moment of a load generator's schedule, within
// about a tenth of a millisecond rather than the millisecond Go's timers
// can be late.
//
// A Go process with nothing to run parks its threads in epoll_wait, whose
// timeout counts whole milliseconds; a timer due in 0.3 ms then fires
// after about 1 ms. Measured on a 2-core machine: a 300 µs time.Sleep came
// back 0.8 ms late at the median, a 300 µs nanosleep 0.08 ms late. A paced
// producer that sleeps between records counts that lateness as latency
// (its latencies start at the scheduled time), so at 1,000 records/s the
// client alone would add most of a millisecond to every record.
package pace

import (
	"context"
	"time"
)

// coarse is how long before the moment Until hands over from Go's timer,
// which can be cancelled, to a precise sleep, which cannot: more than the
// timer's lateness, short enough that a cancelled context still ends the
// wait at once in practice.
const coarse = 2 * time.Millisecond

// Until returns once t has come, or early with ctx's error.
func Until(ctx context.Context, t time.Time) error {
	if d := time.Until(t) - coarse; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	precise(time.Until(t))
	return ctx.Err()
}
