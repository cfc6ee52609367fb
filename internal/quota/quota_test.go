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
