package pace

import (
	"context"
	"slices"
	"testing"
	"time"
)

func TestUntilNeverReturnsEarly(t *testing.T) {
	for _, d := range []time.Duration{-time.Millisecond, 0, 50 * time.Microsecond, 300 * time.Microsecond, 3 * time.Millisecond} {
		at := time.Now().Add(d)
		if err := Until(context.Background(), at); err != nil {
			t.Fatalf("Until(+%v): %v", d, err)
		}
		if now := time.Now(); now.Before(at) {
			t.Errorf("Until(+%v) returned %v early", d, at.Sub(now))
		}
	}
}

func TestUntilEndsWithTheContext(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	begun := time.Now()
	if err := Until(ctx, begun.Add(time.Hour)); err != context.DeadlineExceeded {
		t.Fatalf("err %v, want the context's", err)
	}
	if took := time.Since(begun); took > time.Second {
		t.Errorf("cancelled wait took %v", took)
	}
}

// A guard against a return to Go's millisecond-grained timers, which wake
// a 300 µs wait about 0.7 ms late at best in an idle process. The 10th
// percentile is judged, not the median: a loaded machine (make test runs
// many packages at once) delays many wake-ups but not nine in ten.
func TestUntilIsPreciseForShortWaits(t *testing.T) {
	var late []time.Duration
	for range 50 {
		at := time.Now().Add(300 * time.Microsecond)
		_ = Until(context.Background(), at)
		late = append(late, time.Since(at))
	}
	slices.Sort(late)
	if p10 := late[len(late)/10]; p10 > 400*time.Microsecond {
		t.Errorf("10th percentile of lateness %v over 50 waits of 300µs (median %v)", p10, late[len(late)/2])
	}
}
