package perf

import (
	"context"
	"sync"
	"testing"
	"time"
)

// fakeClock advances only when slept on, so a schedule runs instantly and
// its timing is exact.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleeps++
	if t.After(c.now) {
		c.now = t
	}
	return ctx.Err()
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

var pacerStart = time.Unix(1_700_000_000, 0)

func TestPacerScheduleIsStartPlusIOverRate(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	p := newPacer(clk, pacerStart, 2000, 0, time.Second, 0, 0)
	var n int64
	for {
		s, ok := p.take()
		if !ok {
			break
		}
		if s.index != n {
			t.Fatalf("slot %d has index %d", n, s.index)
		}
		if want := pacerStart.Add(time.Duration(n) * 500 * time.Microsecond); !s.at.Equal(want) {
			t.Fatalf("slot %d due at %v, want %v", n, s.at.Sub(pacerStart), want.Sub(pacerStart))
		}
		if !s.measured {
			t.Fatalf("slot %d not measured without warmup", n)
		}
		if err := p.wait(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		if !clk.Now().Equal(s.at) {
			t.Fatalf("slot %d released at %v, due at %v", n, clk.Now().Sub(pacerStart), s.at.Sub(pacerStart))
		}
		n++
	}
	if n != 2000 {
		t.Fatalf("1 s at 2000/s gave %d slots", n)
	}
	if clk.sleeps != 1999 { // slot 0 is due at the start
		t.Fatalf("slept %d times, want 1999", clk.sleeps)
	}
}

func TestPacerFractionalRateDoesNotDrift(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	p := newPacer(clk, pacerStart, 3, 0, 0, 301, 0)
	var last slot
	for {
		s, ok := p.take()
		if !ok {
			break
		}
		last = s
	}
	// 300/3 = 100 s exactly, however 1/3 s rounds on the way.
	if last.index != 300 || !last.at.Equal(pacerStart.Add(100*time.Second)) {
		t.Fatalf("slot %d due at %v, want slot 300 at 100s", last.index, last.at.Sub(pacerStart))
	}
}

func TestPacerLateSenderKeepsScheduledTimes(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	p := newPacer(clk, pacerStart, 1000, 0, 0, 20, 0)
	s0, _ := p.take()
	if err := p.wait(context.Background(), s0); err != nil {
		t.Fatal(err)
	}
	// The send of record 0 stalls for 5.5 ms: records 1-5 are overdue.
	clk.advance(5500 * time.Microsecond)
	sleeps := clk.sleeps
	for i := int64(1); i <= 5; i++ {
		s, _ := p.take()
		if want := pacerStart.Add(time.Duration(i) * time.Millisecond); !s.at.Equal(want) {
			t.Fatalf("overdue slot %d stamped %v, want its schedule %v", i, s.at.Sub(pacerStart), want.Sub(pacerStart))
		}
		if err := p.wait(context.Background(), s); err != nil {
			t.Fatal(err)
		}
	}
	if clk.sleeps != sleeps {
		t.Fatalf("overdue records waited (%d sleeps)", clk.sleeps-sleeps)
	}
	if got := clk.Now().Sub(pacerStart); got != 5500*time.Microsecond {
		t.Fatalf("clock moved to %v while catching up", got)
	}
	// Caught up: record 6 waits for its time again.
	s6, _ := p.take()
	if err := p.wait(context.Background(), s6); err != nil {
		t.Fatal(err)
	}
	if clk.sleeps != sleeps+1 || !clk.Now().Equal(pacerStart.Add(6*time.Millisecond)) {
		t.Fatalf("record 6 released at %v after %d sleeps", clk.Now().Sub(pacerStart), clk.sleeps-sleeps)
	}
}

func TestPacerWarmupIsNotMeasured(t *testing.T) {
	for _, tc := range []struct {
		name           string
		duration       time.Duration
		limit          int64
		warm, measured int
	}{
		{"duration", 2 * time.Second, 0, 100, 200},
		{"records", 0, 50, 100, 50},
		{"records first", 2 * time.Second, 50, 100, 50},
		{"duration first", 2 * time.Second, 1000, 100, 200},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clk := &fakeClock{now: pacerStart}
			p := newPacer(clk, pacerStart, 100, time.Second, tc.duration, tc.limit, 0)
			warm, measured := 0, 0
			for {
				s, ok := p.take()
				if !ok {
					break
				}
				inWarmup := s.at.Before(pacerStart.Add(time.Second))
				if s.measured == inWarmup {
					t.Fatalf("slot %d due at %v: measured=%v", s.index, s.at.Sub(pacerStart), s.measured)
				}
				if s.measured {
					measured++
				} else {
					warm++
				}
			}
			if warm != tc.warm || measured != tc.measured {
				t.Fatalf("got %d warmup and %d measured slots, want %d and %d", warm, measured, tc.warm, tc.measured)
			}
		})
	}
}

func TestPacerSharedByConcurrentSenders(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	p := newPacer(clk, pacerStart, 10000, 0, 0, 4000, 0)
	var mu sync.Mutex
	seen := map[int64]time.Time{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for {
				s, ok := p.take()
				if !ok {
					return
				}
				mu.Lock()
				seen[s.index] = s.at
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != 4000 {
		t.Fatalf("%d distinct slots, want 4000", len(seen))
	}
	for i, at := range seen {
		if want := pacerStart.Add(time.Duration(i) * 100 * time.Microsecond); !at.Equal(want) {
			t.Fatalf("slot %d due at %v, want %v", i, at.Sub(pacerStart), want.Sub(pacerStart))
		}
	}
}

func TestPacerWaitStopsWithContext(t *testing.T) {
	p := newPacer(realClock{}, time.Now(), 0.001, 0, 0, 0, 0) // record 1 due in 1000 s
	p.take()
	s, _ := p.take()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	begun := time.Now()
	if err := p.wait(ctx, s); err == nil {
		t.Fatal("wait for a record due in 1000 s returned without error")
	}
	if d := time.Since(begun); d > 5*time.Second {
		t.Fatalf("wait ignored its context for %v", d)
	}
}

func TestPacerGivesUpOnHopelessLag(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	p := newPacer(clk, pacerStart, 1000, 500*time.Millisecond, time.Second, 0, 100*time.Millisecond)
	for range 600 { // the warmup and 100 measured records
		if _, ok := p.take(); !ok {
			t.Fatal("schedule ended early")
		}
	}
	clk.advance(1400 * time.Millisecond) // still within the allowed lag
	if s, ok := p.take(); !ok || s.index != 600 {
		t.Fatalf("take within the lag bound: %v %v", s, ok)
	}
	clk.advance(200 * time.Millisecond) // 100 ms past end + lag
	if _, ok := p.take(); ok {
		t.Fatal("schedule went on 200 ms past its end plus allowed lag")
	}
	if got := p.abandonedRecords(); got != 899 {
		t.Fatalf("abandoned %d records, want 899 (601-1499)", got)
	}

	// With --records too, only the records still owed count.
	clk = &fakeClock{now: pacerStart}
	p = newPacer(clk, pacerStart, 1000, 0, time.Second, 10, time.Millisecond)
	p.take()
	clk.advance(2 * time.Second)
	if _, ok := p.take(); ok || p.abandonedRecords() != 9 {
		t.Fatalf("abandoned %d of a 10-record schedule after 1 sent, want 9", p.abandonedRecords())
	}
}

// index finds a record from its due time (the e2e trace does, from the
// stamp in the value), and nextDue is the due time take hands out next.
func TestPacerIndexInvertsDue(t *testing.T) {
	clk := &fakeClock{now: pacerStart}
	for _, rate := range []float64{3, 1000, 20000, 1e6} {
		p := newPacer(clk, pacerStart, rate, 0, 0, 0, 0)
		for i := int64(0); i < 5000; i += 7 {
			if got := p.index(p.due(i)); got != i {
				t.Fatalf("rate %v: index(due(%d)) = %d", rate, i, got)
			}
		}
		next := p.nextDue()
		if s, ok := p.take(); !ok || !s.at.Equal(next) {
			t.Fatalf("rate %v: nextDue %v, take gave %+v", rate, next, s)
		}
	}
}
