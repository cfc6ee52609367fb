package pluginhost

import (
	"fmt"
	"time"
)

// State is a supervised plugin's state as a status shows it.
type State int

// The states. A plugin that failed stays Failed, with the reason, until a
// restart has it running again.
const (
	StateStarting State = iota // first start in progress
	StateRunning
	StateFailed  // crashed, hung or over its memory limit; restarting after a backoff
	StateStopped // closed, or gave up after Policy.MaxRestarts
)

func (s State) String() string {
	switch s {
	case StateStarting:
		return "STARTING"
	case StateRunning:
		return "RUNNING"
	case StateFailed:
		return "FAILED"
	case StateStopped:
		return "STOPPED"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Policy is the restart policy: capped exponential backoff.
type Policy struct {
	// InitialBackoff is the wait before the first restart (default 1s).
	InitialBackoff time.Duration
	// MaxBackoff caps the wait (default 5m).
	MaxBackoff time.Duration
	// Multiplier grows the wait per consecutive failure (default 2).
	Multiplier float64
	// ResetAfter: a run at least this long forgets earlier failures, so
	// a plugin that fails once a day restarts quickly (default 10m).
	ResetAfter time.Duration
	// MaxRestarts gives up after this many consecutive failures (0 =
	// never give up).
	MaxRestarts int
}

func (p *Policy) defaults() {
	if p.InitialBackoff <= 0 {
		p.InitialBackoff = time.Second
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Minute
	}
	if p.MaxBackoff < p.InitialBackoff {
		p.MaxBackoff = p.InitialBackoff
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.ResetAfter <= 0 {
		p.ResetAfter = 10 * time.Minute
	}
}

// Status is what a supervised plugin's status shows.
type Status struct {
	State State
	// Reason is why the plugin last failed (kept while Failed).
	Reason string
	// Restarts counts restarts since the supervisor began.
	Restarts int
	// Failures counts consecutive failures (reset by a long enough run).
	Failures int
	// Since is when State was entered; RetryAt when the next start is due
	// (zero unless Failed and not given up).
	Since, RetryAt time.Time
}

// Restarter is the restart policy as an I/O-free state machine: the
// caller reports what happened and the time, and asks when to start. No
// clocks, goroutines or processes inside, so every schedule is tested
// exactly.
type Restarter struct {
	policy   Policy
	st       Status
	running  time.Time // when the current run began
	starting bool      // a start is in progress (after Next said so)
}

// NewRestarter returns a machine about to start for the first time.
func NewRestarter(p Policy, now time.Time) *Restarter {
	p.defaults()
	return &Restarter{policy: p, st: Status{State: StateStarting, Since: now}}
}

// Status returns the current status.
func (r *Restarter) Status() Status { return r.st }

// Next says whether to start the plugin now; if not, wait is how long
// until it should be asked again (0 with start false: never, it is
// stopped).
func (r *Restarter) Next(now time.Time) (start bool, wait time.Duration) {
	switch r.st.State {
	case StateStarting:
		if r.starting {
			return false, 0
		}
		r.starting = true
		return true, 0
	case StateFailed:
		if r.starting {
			return false, 0
		}
		if r.st.RetryAt.IsZero() {
			return false, 0
		}
		if now.Before(r.st.RetryAt) {
			return false, r.st.RetryAt.Sub(now)
		}
		r.starting = true
		r.st.Restarts++
		return true, 0
	}
	return false, 0
}

// Started reports that the plugin is up.
func (r *Restarter) Started(now time.Time) {
	if r.st.State == StateStopped {
		return
	}
	r.starting = false
	r.running = now
	r.st = Status{State: StateRunning, Restarts: r.st.Restarts, Failures: r.st.Failures, Since: now}
}

// Failed reports that the plugin failed to start or died, and schedules
// the restart.
func (r *Restarter) Failed(now time.Time, reason string) {
	if r.st.State == StateStopped {
		return
	}
	if r.st.State == StateRunning && now.Sub(r.running) >= r.policy.ResetAfter {
		r.st.Failures = 0
	}
	r.starting = false
	r.st.Failures++
	r.st.State = StateFailed
	r.st.Reason = reason
	r.st.Since = now
	r.st.RetryAt = time.Time{}
	if r.policy.MaxRestarts > 0 && r.st.Failures > r.policy.MaxRestarts {
		r.st.Reason = fmt.Sprintf("%s (gave up after %d restarts)", reason, r.policy.MaxRestarts)
		return
	}
	r.st.RetryAt = now.Add(r.Backoff(r.st.Failures))
}

// Stop stops the machine for good.
func (r *Restarter) Stop(now time.Time) {
	r.starting = false
	r.st = Status{State: StateStopped, Restarts: r.st.Restarts, Since: now}
}

// Backoff is the wait after the n-th consecutive failure.
func (r *Restarter) Backoff(n int) time.Duration {
	d := float64(r.policy.InitialBackoff)
	for i := 1; i < n && d < float64(r.policy.MaxBackoff); i++ {
		d *= r.policy.Multiplier
	}
	if d > float64(r.policy.MaxBackoff) {
		return r.policy.MaxBackoff
	}
	return time.Duration(d)
}
