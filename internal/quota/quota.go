// Package quota is a byte-rate throttle: the replication throttles
// (leader.replication.throttled.rate, follower.replication.throttled.rate)
// decide with it whether a throttled replica may move more bytes now.
//
// It follows the shape of Kafka's ReplicationQuotaManager: the caller asks
// Exceeded before it sends a throttled replica's bytes, sends them anyway
// when not (a batch is never split), and Records what it sent. The rate
// is a token bucket holding at most one second of bytes, so a throttle
// keeps the long-run rate at its limit while letting one fetch's worth
// through at a time. Time is passed in.
package quota

import (
	"math"
	"sync"
	"time"
)

// Rate throttles bytes to a limit per second; the zero value, or a limit
// of 0 or math.MaxInt64, never throttles. Safe for concurrent use.
type Rate struct {
	mu     sync.Mutex
	limit  int64 // bytes per second
	tokens float64
	last   time.Time
}

// New returns a throttle at limit bytes per second.
func New(limit int64) *Rate {
	r := &Rate{}
	r.SetLimit(limit)
	return r
}

// SetLimit changes the limit (a dynamic config change).
func (r *Rate) SetLimit(limit int64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.limit = limit
	r.tokens = min(r.tokens, float64(limit))
}

// Limit is the current limit in bytes per second.
func (r *Rate) Limit() int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.limit
}

// On reports whether the throttle limits anything.
func (r *Rate) On() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.on()
}

func (r *Rate) on() bool { return r.limit > 0 && r.limit != math.MaxInt64 }

// refill adds the tokens earned since the last call (r.mu held).
func (r *Rate) refill(now time.Time) {
	if r.last.IsZero() {
		r.last, r.tokens = now, float64(r.limit)
		return
	}
	if d := now.Sub(r.last); d > 0 {
		r.tokens = min(r.tokens+d.Seconds()*float64(r.limit), float64(r.limit))
		r.last = now
	}
}

// Exceeded reports whether throttled bytes must wait at now: the bytes
// recorded have used up the rate.
func (r *Rate) Exceeded(now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on() {
		return false
	}
	r.refill(now)
	return r.tokens <= 0
}

// Record counts n bytes sent at now.
func (r *Rate) Record(n int64, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on() || n <= 0 {
		return
	}
	r.refill(now)
	r.tokens -= float64(n)
}

// Delay is how long a caller that must not exceed the rate should wait at
// now before moving more bytes: 0 while tokens are left, else the time the
// rate takes to earn back the deficit. The log cleaner sleeps for it (a
// cleaner, unlike a fetch, may pause mid-pass).
func (r *Rate) Delay(now time.Time) time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.on() {
		return 0
	}
	r.refill(now)
	if r.tokens > 0 {
		return 0
	}
	return time.Duration((-r.tokens + 1) / float64(r.limit) * float64(time.Second))
}
