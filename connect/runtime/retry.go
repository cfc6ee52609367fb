package runtime

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"
)

// retriable is what an error implements to say the operation that returned
// it may succeed if run again (Kafka's RetriableException): a converter
// that could not reach a schema registry, say. Only such errors are retried
// under errors.retry.timeout; any other fails at once, as in Kafka.
type retriable interface{ Retriable() bool }

func isRetriable(err error) bool {
	var r retriable
	return errors.As(err, &r) && r.Retriable()
}

// retryMinDelay is the first retry's backoff; each retry doubles it up to
// errors.retry.delay.max.ms (Kafka's RetryWithToleranceOperator).
const retryMinDelay = 300 * time.Millisecond

// retrier runs a converter or transform again while it fails retriably,
// for up to errors.retry.timeout, backing off as Kafka does: 300 ms, then
// doubling; a delay over errors.retry.delay.max.ms becomes a random one
// below it; no sleep goes past the deadline.
type retrier struct {
	timeout  time.Duration // errors.retry.timeout: 0 never retries, < 0 retries forever
	maxDelay time.Duration // errors.retry.delay.max.ms

	now   func() time.Time
	sleep func(ctx context.Context, d time.Duration) bool // false when ctx ended first
	randN func(n int64) int64                             // in [0, n), in milliseconds
}

func newRetrier(timeout, maxDelay time.Duration) retrier {
	return retrier{timeout: timeout, maxDelay: maxDelay, now: time.Now, sleep: sleepCtx, randN: rand.Int64N}
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// again is called with the error of an operation's first attempt and
// returns the error of its last: nil once an attempt succeeds, the first
// non-retriable error, or the retriable one the timeout (or ctx) ended on,
// saying how many attempts were made. The first attempt is the caller's,
// so a record that converts needs no closure.
func (r retrier) again(ctx context.Context, err error, op func() error) error {
	if err == nil || !isRetriable(err) || r.timeout == 0 {
		return err
	}
	start := r.now()
	var deadline time.Time
	if r.timeout > 0 {
		deadline = start.Add(r.timeout)
	}
	for attempt := 1; ; attempt++ {
		now := r.now()
		if r.timeout > 0 && !now.Before(deadline) {
			return fmt.Errorf("%w (gave up after %d attempts in %v: errors.retry.timeout=%d)", err, attempt, now.Sub(start).Round(time.Millisecond), r.timeout.Milliseconds())
		}
		if !r.sleep(ctx, r.backoff(attempt, now, deadline)) {
			return fmt.Errorf("%w (stopped retrying after %d attempts: %v)", err, attempt, ctx.Err())
		}
		if err = op(); err == nil || !isRetriable(err) {
			return err
		}
	}
}

// backoff is the sleep before retry number attempt (1 for the first).
func (r retrier) backoff(attempt int, now, deadline time.Time) time.Duration {
	d := time.Duration(math.MaxInt64)
	if attempt <= 30 { // beyond, the shift overflows
		d = retryMinDelay << (attempt - 1)
	}
	if d > r.maxDelay {
		d = 0
		if ms := r.maxDelay.Milliseconds(); ms > 0 {
			d = time.Duration(r.randN(ms)) * time.Millisecond
		}
	}
	if !deadline.IsZero() && now.Add(d).After(deadline) {
		d = max(deadline.Sub(now), 0)
	}
	return d
}
