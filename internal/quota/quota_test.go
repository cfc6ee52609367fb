package quota

import (
	"math"
	"testing"
	"time"
)

// A throttle lets through about its limit per second over a long run,
// whatever the size of the sends, and is never exceeded when off.
func TestRateKeepsTheLimit(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	for _, send := range []int64{1000, 64 << 10, 1 << 20} {
		r := New(100 << 10) // 100 KiB/s
		sent := int64(0)
		now := start
		for now.Before(start.Add(60 * time.Second)) {
			if !r.Exceeded(now) {
				r.Record(send, now)
				sent += send
			}
			now = now.Add(10 * time.Millisecond)
		}
		rate := float64(sent) / 60
		if rate < 0.8*100*1024 || rate > 1.2*100*1024+float64(send)/60 {
			t.Errorf("sends of %d bytes: %.0f bytes/s over a minute, want about %d", send, rate, 100<<10)
		}
	}
	for _, limit := range []int64{0, math.MaxInt64} {
		r := New(limit)
		r.Record(1<<40, start)
		if r.Exceeded(start) || r.On() {
			t.Errorf("limit %d throttles", limit)
		}
	}
	var zero Rate
	if zero.Exceeded(start) {
		t.Error("the zero Rate throttles")
	}
}

// A limit changed at run time takes over at once: the long-run rate
// follows the new limit, turning the throttle off lets everything
// through, and turning it on starts from a full second of bytes.
func TestSetLimitChangesTheRate(t *testing.T) {
	start := time.Unix(1_700_000_000, 0)
	r := New(100 << 10)
	run := func(from time.Time, secs int) float64 {
		sent := int64(0)
		now := from
		for now.Before(from.Add(time.Duration(secs) * time.Second)) {
			if !r.Exceeded(now) {
				r.Record(8<<10, now)
				sent += 8 << 10
			}
			now = now.Add(5 * time.Millisecond)
		}
		return float64(sent) / float64(secs)
	}
	if got := run(start, 20); got > 1.2*100*1024 {
		t.Fatalf("before the change: %.0f bytes/s, want about %d", got, 100<<10)
	}
	r.SetLimit(400 << 10)
	if r.Limit() != 400<<10 {
		t.Fatalf("Limit %d after SetLimit(%d)", r.Limit(), 400<<10)
	}
	if got := run(start.Add(20*time.Second), 20); got < 0.8*400*1024 || got > 1.2*400*1024 {
		t.Fatalf("after raising the limit: %.0f bytes/s, want about %d", got, 400<<10)
	}
	r.SetLimit(math.MaxInt64)
	if r.On() || r.Exceeded(start.Add(40*time.Second)) {
		t.Fatal("an unlimited rate still throttles")
	}
	r.SetLimit(50 << 10)
	if got := run(start.Add(60*time.Second), 20); got > 1.2*50*1024 {
		t.Fatalf("after lowering the limit: %.0f bytes/s, want about %d", got, 50<<10)
	}
}

// Delay is the time the rate needs to earn back what was used past it.
func TestDelayEarnsBackTheDeficit(t *testing.T) {
	r := New(1000)
	t0 := time.Unix(100, 0)
	if d := r.Delay(t0); d != 0 {
		t.Fatalf("fresh throttle delays %v", d)
	}
	r.Record(1500, t0) // a full bucket of 1000, so 500 over
	if d := r.Delay(t0); d < 500*time.Millisecond || d > 502*time.Millisecond {
		t.Fatalf("delay %v after 500 bytes over at 1000 B/s, want about 500ms", d)
	}
	if d := r.Delay(t0.Add(501 * time.Millisecond)); d != 0 {
		t.Fatalf("delay %v once the deficit is earned back", d)
	}
	if d := New(0).Delay(t0); d != 0 {
		t.Fatalf("an unlimited rate delays %v", d)
	}
}
