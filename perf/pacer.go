package perf

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/sluice-io/sluice/perf/internal/pace"
)

// clock is the time source of pacing, so that tests can run a schedule
// without waiting for it.
type clock interface {
	Now() time.Time
	// SleepUntil returns once t has come, or early with ctx's error.
	SleepUntil(ctx context.Context, t time.Time) error
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// SleepUntil is precise to a fraction of a millisecond: a light schedule
// sleeps before almost every record, and Go's timers alone would add up to
// a millisecond of the client's own to each latency (see package pace).
func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	return pace.Until(ctx, t)
}

// slot is one record of a paced schedule.
type slot struct {
	index int64
	// at is when the record is due. Latency is measured from here, not
	// from when it was really sent: a producer that falls behind would
	// otherwise hide its own delay (coordinated omission).
	at time.Time
	// measured is false for records due during the warmup.
	measured bool
}

// pacer hands out a fixed schedule: record i is due at start + i/rate,
// whatever happened to the records before it. It is safe for concurrent
// use, so several producers can share one schedule.
type pacer struct {
	clk          clock
	start        time.Time
	measureStart time.Time
	end          time.Time // zero: no time limit
	rate         float64
	limit        int64 // measured records; 0: no limit
	// giveUp ends a timed schedule that the producer cannot keep up with:
	// past it, the records still due are abandoned rather than sent long
	// after the run should have ended. Zero: never.
	giveUp time.Time

	mu        sync.Mutex
	next      int64
	measured  int64
	abandoned int64
}

// newPacer schedules records at rate per second from start. The first
// warmup of the schedule is not measured; then the schedule runs for
// duration or limit measured records, whichever ends first (zero: no bound
// of that kind). A timed schedule is abandoned once its sender lags more
// than maxLag behind the end.
func newPacer(clk clock, start time.Time, rate float64, warmup, duration time.Duration, limit int64, maxLag time.Duration) *pacer {
	p := &pacer{clk: clk, start: start, measureStart: start.Add(warmup), rate: rate, limit: limit}
	if duration > 0 {
		p.end = p.measureStart.Add(duration)
		p.giveUp = p.end.Add(maxLag)
	}
	return p
}

// due is the scheduled time of record i. Computing it from i, instead of
// adding an interval to the previous one, keeps rounding from drifting.
func (p *pacer) due(i int64) time.Time {
	return p.start.Add(time.Duration(math.Round(float64(i) * float64(time.Second) / p.rate)))
}

// index is the record due at t: the inverse of due.
func (p *pacer) index(t time.Time) int64 {
	return int64(math.Round(float64(t.Sub(p.start)) * p.rate / float64(time.Second)))
}

// nextDue is when the next record not yet taken is due.
func (p *pacer) nextDue() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.due(p.next)
}

// take claims the next record of the schedule; false when the schedule is
// over.
func (p *pacer) take() (slot, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	at := p.due(p.next)
	if !p.end.IsZero() && !at.Before(p.end) {
		return slot{}, false
	}
	if !p.giveUp.IsZero() && !p.clk.Now().Before(p.giveUp) {
		if p.abandoned == 0 {
			p.abandoned = p.measuredLeft()
		}
		return slot{}, false
	}
	measured := !at.Before(p.measureStart)
	if measured {
		if p.limit > 0 && p.measured >= p.limit {
			return slot{}, false
		}
		p.measured++
	}
	s := slot{index: p.next, at: at, measured: measured}
	p.next++
	return s, true
}

// measuredLeft counts the measured records of a timed schedule not taken
// yet.
func (p *pacer) measuredLeft() int64 {
	from := max(p.next, p.firstDue(p.measureStart))
	left := max(p.firstDue(p.end)-from, 0)
	if p.limit > 0 {
		left = min(left, p.limit-p.measured)
	}
	return left
}

// firstDue is the index of the first record due at or after t.
func (p *pacer) firstDue(t time.Time) int64 {
	i := int64(math.Ceil(t.Sub(p.start).Seconds() * p.rate))
	for i > 0 && !p.due(i-1).Before(t) {
		i--
	}
	for p.due(i).Before(t) {
		i++
	}
	return i
}

// abandonedRecords is how many measured records the schedule gave up on
// because its sender fell too far behind.
func (p *pacer) abandonedRecords() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.abandoned
}

// wait blocks until s is due. A record already due is released at once,
// keeping its scheduled time, so a late producer catches up in a burst.
func (p *pacer) wait(ctx context.Context, s slot) error {
	if !p.clk.Now().Before(s.at) {
		return ctx.Err()
	}
	return p.clk.SleepUntil(ctx, s.at)
}
