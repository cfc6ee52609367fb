package clock

import (
	"slices"
	"testing"
	"time"
)

var epoch = time.UnixMilli(1_700_000_000_000)

// Timers fire in time order, each seeing its own time, and only when the
// clock passes them.
func TestFakeFiresInOrderAtTheirTime(t *testing.T) {
	c := NewFake(epoch)
	var got []time.Duration
	for _, d := range []time.Duration{30, 10, 20, 10} {
		c.AfterFunc(d*time.Millisecond, func() { got = append(got, c.Now().Sub(epoch)) })
	}
	c.Advance(15 * time.Millisecond)
	if want := []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}; !slices.Equal(got, want) {
		t.Fatalf("after 15ms fired at %v, want %v", got, want)
	}
	if c.Now().Sub(epoch) != 15*time.Millisecond {
		t.Fatalf("now = %v, want +15ms", c.Now().Sub(epoch))
	}
	c.Advance(time.Second)
	if want := []time.Duration{10, 10, 20, 30}; len(got) != 4 || got[2] != want[2]*time.Millisecond || got[3] != want[3]*time.Millisecond {
		t.Fatalf("fired at %v, want %v ms", got, want)
	}
	if c.Pending() != 0 {
		t.Fatalf("%d timers pending after all fired", c.Pending())
	}
}

// Stop prevents a run once, and says whether it did; a function may arm
// another that falls due within the same Advance.
func TestFakeStopAndRearm(t *testing.T) {
	c := NewFake(epoch)
	ran := 0
	stop := c.AfterFunc(time.Second, func() { ran++ })
	if !stop() {
		t.Fatal("first stop of an armed timer reported false")
	}
	if stop() {
		t.Fatal("second stop reported true")
	}
	var tick func()
	tick = func() {
		ran++
		if ran < 3 {
			c.AfterFunc(time.Second, tick)
		}
	}
	c.AfterFunc(time.Second, tick)
	c.Advance(10 * time.Second)
	if ran != 3 {
		t.Fatalf("re-arming timer ran %d times in 10s, want 3 (the stopped one never)", ran)
	}
	done := c.AfterFunc(0, func() {})
	c.Advance(0)
	if done() {
		t.Fatal("stop after the timer ran reported true")
	}
}

func TestRealClockRuns(t *testing.T) {
	ch := make(chan struct{})
	Real().AfterFunc(time.Millisecond, func() { close(ch) })
	select {
	case <-ch:
	case <-time.After(10 * time.Second):
		t.Fatal("real AfterFunc never ran")
	}
	if d := time.Since(Real().Now()); d < 0 || d > time.Minute {
		t.Fatalf("real Now is %v away from time.Now", d)
	}
}
