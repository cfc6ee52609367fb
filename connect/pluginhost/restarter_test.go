package pluginhost

import (
	"fmt"
	"testing"
	"time"
)

// step is one event fed to a Restarter at a time offset, with what it
// must answer or show afterwards.
type step struct {
	at        time.Duration
	op        string // next, started, failed, stop
	wantStart bool
	wantWait  time.Duration
	wantState State
	wantFails int
}

func runSteps(t *testing.T, p Policy, steps []step) *Restarter {
	t.Helper()
	t0 := time.Unix(1_000_000, 0)
	r := NewRestarter(p, t0)
	for i, s := range steps {
		now := t0.Add(s.at)
		switch s.op {
		case "next":
			start, wait := r.Next(now)
			if start != s.wantStart || wait != s.wantWait {
				t.Fatalf("step %d (%s at %v): Next = %v, %v; want %v, %v", i, s.op, s.at, start, wait, s.wantStart, s.wantWait)
			}
		case "started":
			r.Started(now)
		case "failed":
			r.Failed(now, fmt.Sprintf("failure at %v", s.at))
		case "stop":
			r.Stop(now)
		}
		st := r.Status()
		if st.State != s.wantState || st.Failures != s.wantFails {
			t.Fatalf("step %d (%s at %v): state %v failures %d; want %v %d", i, s.op, s.at, st.State, st.Failures, s.wantState, s.wantFails)
		}
	}
	return r
}

func TestRestarterBackoffDoublesToTheCap(t *testing.T) {
	s := time.Second
	r := runSteps(t, Policy{InitialBackoff: s, MaxBackoff: 4 * s, ResetAfter: time.Hour}, []step{
		{at: 0, op: "next", wantStart: true, wantState: StateStarting},
		{at: 0, op: "next", wantState: StateStarting}, // already starting: no second start
		{at: 0, op: "started", wantState: StateRunning},
		{at: 10 * s, op: "failed", wantState: StateFailed, wantFails: 1},
		{at: 10 * s, op: "next", wantWait: s, wantState: StateFailed, wantFails: 1},
		{at: 11 * s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 1}, // FAILED until running again
		{at: 11 * s, op: "failed", wantState: StateFailed, wantFails: 2},                // failed to start
		{at: 12 * s, op: "next", wantWait: s, wantState: StateFailed, wantFails: 2},
		{at: 13 * s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 2},
		{at: 13 * s, op: "started", wantState: StateRunning, wantFails: 2},
		{at: 14 * s, op: "failed", wantState: StateFailed, wantFails: 3}, // short run: no reset
		{at: 14 * s, op: "next", wantWait: 4 * s, wantState: StateFailed, wantFails: 3},
		{at: 18 * s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 3},
		{at: 18 * s, op: "failed", wantState: StateFailed, wantFails: 4},
		{at: 18 * s, op: "next", wantWait: 4 * s, wantState: StateFailed, wantFails: 4}, // capped
	})
	if st := r.Status(); st.Restarts != 3 || st.Reason != "failure at 18s" || !st.RetryAt.Equal(time.Unix(1_000_000, 0).Add(22*s)) {
		t.Fatalf("status %+v", st)
	}
}

func TestRestarterLongRunResetsBackoff(t *testing.T) {
	s := time.Second
	runSteps(t, Policy{InitialBackoff: s, MaxBackoff: time.Minute, ResetAfter: 30 * s}, []step{
		{at: 0, op: "next", wantStart: true, wantState: StateStarting},
		{at: 0, op: "failed", wantState: StateFailed, wantFails: 1},
		{at: s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 1},
		{at: s, op: "failed", wantState: StateFailed, wantFails: 2},
		{at: 3 * s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 2},
		{at: 3 * s, op: "started", wantState: StateRunning, wantFails: 2},
		{at: 33 * s, op: "failed", wantState: StateFailed, wantFails: 1}, // ran 30s: forgiven
		{at: 33 * s, op: "next", wantWait: s, wantState: StateFailed, wantFails: 1},
	})
}

func TestRestarterGivesUpAndStops(t *testing.T) {
	s := time.Second
	r := runSteps(t, Policy{InitialBackoff: s, MaxRestarts: 1}, []step{
		{at: 0, op: "next", wantStart: true, wantState: StateStarting},
		{at: 0, op: "failed", wantState: StateFailed, wantFails: 1},
		{at: s, op: "next", wantStart: true, wantState: StateFailed, wantFails: 1},
		{at: s, op: "failed", wantState: StateFailed, wantFails: 2},
		{at: time.Hour, op: "next", wantState: StateFailed, wantFails: 2}, // gave up: never
	})
	if st := r.Status(); !st.RetryAt.IsZero() || st.Reason != "failure at 1s (gave up after 1 restarts)" {
		t.Fatalf("status %+v", st)
	}
	r.Stop(time.Unix(2_000_000, 0))
	r.Failed(time.Unix(2_000_001, 0), "late")
	if st := r.Status(); st.State != StateStopped {
		t.Fatalf("a stopped restarter moved to %v", st.State)
	}
	if start, _ := r.Next(time.Unix(3_000_000, 0)); start {
		t.Fatal("a stopped restarter started")
	}
}
