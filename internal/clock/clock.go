// Package clock is the time a broker decides and waits by, behind one small
// interface, so that a whole broker can run on a fake clock that a test
// moves by hand: group session timeouts, fetch long-poll deadlines, flush.ms,
// retention and the coordinator's offset expiry all fire when the test says,
// not when the machine gets round to it.
//
// It imports nothing of the module; the broker, the replica manager, the
// group coordinator and the purgatory take a Clock.
package clock

import (
	"container/heap"
	"sync"
	"time"
)

// Clock tells the time and runs functions after a delay.
type Clock interface {
	// Now is the current time.
	Now() time.Time
	// AfterFunc runs f after d, on its own goroutine for the real clock
	// (time.AfterFunc), unless the returned stop is called first; stop
	// reports whether it prevented f from running.
	AfterFunc(d time.Duration, f func()) (stop func() bool)
}

// Real is the wall clock: time.Now and time.AfterFunc.
func Real() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) AfterFunc(d time.Duration, f func()) func() bool {
	return time.AfterFunc(d, f).Stop
}

// Fake is a clock that moves only when Advance or Set moves it. Functions
// armed with AfterFunc run when the clock passes their time, in time order
// (ties in the order they were armed), on the goroutine that moved the
// clock and without the clock's lock held, so they may arm new timers and
// read the time. A function armed for a time already passed runs on the
// next move, not at once: the real clock's "soon", never "inside the
// caller".
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	seq    uint64
	timers timerHeap
}

// NewFake returns a fake clock reading start.
func NewFake(start time.Time) *Fake { return &Fake{now: start} }

// Now is the fake clock's time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc arms f for Now()+d.
func (c *Fake) AfterFunc(d time.Duration, f func()) func() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seq++
	t := &fakeTimer{at: c.now.Add(d), seq: c.seq, f: f}
	heap.Push(&c.timers, t)
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		if t.index < 0 {
			return false // ran or was stopped
		}
		heap.Remove(&c.timers, t.index)
		return true
	}
}

// Advance moves the clock forward by d, running every function that falls
// due on the way, each at its own time (Now during a function reads the
// time it was armed for).
func (c *Fake) Advance(d time.Duration) {
	c.Set(c.Now().Add(d))
}

// Set moves the clock to t (never backwards: an earlier t only runs what is
// already due), running due functions as Advance does.
func (c *Fake) Set(t time.Time) {
	for {
		c.mu.Lock()
		if len(c.timers) == 0 || c.timers[0].at.After(t) {
			if t.After(c.now) {
				c.now = t
			}
			c.mu.Unlock()
			return
		}
		next := heap.Pop(&c.timers).(*fakeTimer)
		if next.at.After(c.now) {
			c.now = next.at
		}
		c.mu.Unlock()
		next.f()
	}
}

// Pending is the number of armed functions not yet run or stopped.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.timers)
}

type fakeTimer struct {
	at    time.Time
	seq   uint64
	f     func()
	index int // in the heap; -1 once popped or removed
}

type timerHeap []*fakeTimer

func (h timerHeap) Len() int { return len(h) }
func (h timerHeap) Less(i, j int) bool {
	if !h[i].at.Equal(h[j].at) {
		return h[i].at.Before(h[j].at)
	}
	return h[i].seq < h[j].seq
}
func (h timerHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index, h[j].index = i, j
}
func (h *timerHeap) Push(x any) {
	t := x.(*fakeTimer)
	t.index = len(*h)
	*h = append(*h, t)
}
func (h *timerHeap) Pop() any {
	old := *h
	t := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	t.index = -1
	return t
}
