package purgatory

import (
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/clock"
)

// manualClock fires timers only when the test advances it.
type manualClock struct{ *clock.Fake }

func newManualClock() *manualClock { return &manualClock{clock.NewFake(time.Unix(0, 0))} }

func (c *manualClock) advance(d time.Duration) { c.Advance(d) }
func (c *manualClock) pending() int            { return c.Pending() }

// recorder is an operation whose tryComplete succeeds once ready is set,
// and which records how it ended.
type recorder struct {
	ready     atomic.Bool
	tries     atomic.Int32
	completed atomic.Int32
	expired   atomic.Bool
	op        *Op
}

func newRecorder() *recorder {
	r := &recorder{}
	r.op = NewOp(func() bool {
		r.tries.Add(1)
		return r.ready.Load()
	}, func(expired bool) {
		r.completed.Add(1)
		r.expired.Store(expired)
	})
	return r
}

func TestCheckCompletesAndUnwatches(t *testing.T) {
	clock := newManualClock()
	p := New[string](clock)
	r := newRecorder()
	if p.TryCompleteElseWatch(r.op, time.Second, []string{"a", "b"}) {
		t.Fatal("completed with nothing ready")
	}
	if p.Watching("a") != 1 || p.Watching("b") != 1 || clock.pending() != 1 {
		t.Fatalf("watching a=%d b=%d timers=%d", p.Watching("a"), p.Watching("b"), clock.pending())
	}
	if n := p.Check("a"); n != 0 {
		t.Fatalf("Check completed %d before ready", n)
	}
	r.ready.Store(true)
	if n := p.Check("c"); n != 0 {
		t.Fatalf("Check of an unwatched key completed %d", n)
	}
	if n := p.Check("b"); n != 1 {
		t.Fatalf("Check completed %d, want 1", n)
	}
	if r.completed.Load() != 1 || r.expired.Load() || !r.op.Completed() {
		t.Fatalf("completed %d times, expired %v", r.completed.Load(), r.expired.Load())
	}
	// Gone from every key (not only the checked one), timer stopped.
	if p.Keys() != 0 || clock.pending() != 0 {
		t.Fatalf("after completion: %d keys watched, %d timers", p.Keys(), clock.pending())
	}
	clock.advance(time.Hour)
	p.Check("a")
	if r.completed.Load() != 1 || r.op.ForceComplete() {
		t.Fatalf("completed %d times", r.completed.Load())
	}
}

func TestExpiry(t *testing.T) {
	clock := newManualClock()
	p := New[string](clock)
	r := newRecorder()
	p.TryCompleteElseWatch(r.op, time.Second, []string{"a"})
	clock.advance(999 * time.Millisecond)
	if r.completed.Load() != 0 {
		t.Fatal("expired early")
	}
	clock.advance(time.Millisecond)
	if r.completed.Load() != 1 || !r.expired.Load() {
		t.Fatalf("completed %d, expired %v at the deadline", r.completed.Load(), r.expired.Load())
	}
	if p.Keys() != 0 {
		t.Fatal("an expired operation is still watched")
	}
	r.ready.Store(true)
	if p.Check("a") != 0 || r.completed.Load() != 1 {
		t.Fatal("completed again after expiry")
	}
}

func TestCompletesWithoutWatching(t *testing.T) {
	clock := newManualClock()
	p := New[string](clock)
	r := newRecorder()
	r.ready.Store(true)
	if !p.TryCompleteElseWatch(r.op, time.Second, []string{"a"}) {
		t.Fatal("a ready operation was not completed")
	}
	if p.Keys() != 0 || clock.pending() != 0 || r.completed.Load() != 1 {
		t.Fatalf("keys %d, timers %d, completed %d", p.Keys(), clock.pending(), r.completed.Load())
	}
	// No time to wait: it expires at once.
	r2 := newRecorder()
	if !p.TryCompleteElseWatch(r2.op, 0, []string{"a"}) || !r2.expired.Load() {
		t.Fatal("a zero timeout did not expire at once")
	}
}

// What became ready between the first try and the watch (a Check then
// found nobody watching) is caught by the try after the watch.
func TestTriesAgainAfterWatching(t *testing.T) {
	p := New[string](newManualClock())
	var op *Op
	var tries int
	op = NewOp(func() bool {
		tries++
		return tries > 1 // an append landed just after the first try
	}, func(bool) {})
	if !p.TryCompleteElseWatch(op, time.Second, []string{"a"}) {
		t.Fatal("the append between try and watch was lost")
	}
	if p.Keys() != 0 {
		t.Fatal("completed but still watched")
	}
}

func TestForceComplete(t *testing.T) {
	clock := newManualClock()
	p := New[string](clock)
	r := newRecorder()
	p.TryCompleteElseWatch(r.op, time.Second, []string{"a"})
	if !r.op.ForceComplete() || r.op.ForceComplete() {
		t.Fatal("ForceComplete must report true exactly once")
	}
	if r.completed.Load() != 1 || r.expired.Load() || p.Keys() != 0 || clock.pending() != 0 {
		t.Fatalf("completed %d, expired %v, keys %d, timers %d", r.completed.Load(), r.expired.Load(), p.Keys(), clock.pending())
	}
}

// Checks, forced completion and expiry race; every operation completes
// exactly once and nothing stays watched.
func TestConcurrentCompletionIsExactlyOnce(t *testing.T) {
	clock := newManualClock()
	p := New[int](clock)
	const ops = 200
	recs := make([]*recorder, ops)
	for i := range recs {
		recs[i] = newRecorder()
	}
	var wg sync.WaitGroup
	for i, r := range recs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.TryCompleteElseWatch(r.op, time.Second, []int{i % 7, (i + 1) % 7})
		}()
	}
	for i := 0; i < 4; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < ops; j++ {
				if j%3 == i%3 {
					recs[j].ready.Store(true)
				}
				p.Check(j % 7)
				if j%11 == 0 {
					recs[j].op.ForceComplete()
				}
			}
		}()
	}
	wg.Wait()
	clock.advance(time.Second)
	for i, r := range recs {
		if n := r.completed.Load(); n != 1 {
			t.Fatalf("op %d completed %d times", i, n)
		}
	}
	if p.Keys() != 0 || clock.pending() != 0 {
		t.Fatalf("%d keys still watched, %d timers", p.Keys(), clock.pending())
	}
}

func TestZeroValueUsesTheWallClock(t *testing.T) {
	var p Purgatory[string]
	done := make(chan bool, 1)
	op := NewOp(func() bool { return false }, func(expired bool) { done <- expired })
	p.TryCompleteElseWatch(op, time.Millisecond, []string{"a"})
	select {
	case expired := <-done:
		if !expired {
			t.Fatal("not reported as expired")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("never expired")
	}
}
