package pluginhost

import (
	"context"
	"errors"
	"sync"
	"time"
)

// SupervisorConfig says what to supervise.
type SupervisorConfig struct {
	Plugin    Plugin
	Connector string
	Limits    Limits
	Policy    Policy
	// OnStatus, if set, is called (from the supervisor's goroutine) after
	// every change of status, e.g. to write the connector's status record.
	OnStatus func(Status)
}

// Supervisor keeps one plugin process running for a connector: when it
// fails to start, crashes, hangs or exceeds its memory limit, it is
// restarted after a capped exponential backoff (Restarter). Callers get
// the current process from Process and restart their tasks on a new one.
type Supervisor struct {
	host *Host
	cfg  SupervisorConfig

	closeOnce sync.Once
	closing   chan struct{}
	finished  chan struct{}

	mu      sync.Mutex
	r       *Restarter
	current *Process
	changed chan struct{} // closed and replaced at every change
}

// Supervise starts supervising; Close (or Host.Close) stops it.
func (h *Host) Supervise(cfg SupervisorConfig) *Supervisor {
	s := &Supervisor{
		host: h, cfg: cfg,
		closing: make(chan struct{}), finished: make(chan struct{}),
		r: NewRestarter(cfg.Policy, time.Now()), changed: make(chan struct{}),
	}
	h.mu.Lock()
	closed := h.closed
	if !closed {
		h.sups[s] = struct{}{}
	}
	h.mu.Unlock()
	if closed {
		s.r.Stop(time.Now())
		close(s.finished)
		return s
	}
	go s.run()
	return s
}

// Status returns the supervised plugin's status.
func (s *Supervisor) Status() Status {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.r.Status()
}

// ErrStopped is returned by Process once the supervisor is closed or gave
// up.
var ErrStopped = errors.New("pluginhost: supervisor stopped")

// Process returns the running process, waiting while it (re)starts. Check
// its Done to learn when to ask again.
func (s *Supervisor) Process(ctx context.Context) (*Process, error) {
	for {
		s.mu.Lock()
		p, st, ch := s.current, s.r.Status(), s.changed
		s.mu.Unlock()
		if p != nil {
			select {
			case <-p.Done():
			default:
				return p, nil
			}
		}
		if st.State == StateStopped || (st.State == StateFailed && st.RetryAt.IsZero()) {
			return nil, errors.Join(ErrStopped, errors.New(st.Reason))
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Close stops the supervisor and its process and waits for both.
func (s *Supervisor) Close() {
	s.closeOnce.Do(func() { close(s.closing) })
	<-s.finished
}

// update applies f to the machine and the current process under the lock,
// then wakes waiters and reports the status.
func (s *Supervisor) update(f func(r *Restarter), p *Process) {
	s.mu.Lock()
	f(s.r)
	s.current = p
	st := s.r.Status()
	close(s.changed)
	s.changed = make(chan struct{})
	s.mu.Unlock()
	if s.cfg.OnStatus != nil {
		s.cfg.OnStatus(st)
	}
}

func (s *Supervisor) run() {
	defer func() {
		s.host.mu.Lock()
		delete(s.host.sups, s)
		s.host.mu.Unlock()
		close(s.finished)
	}()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.closing:
			cancel()
		case <-ctx.Done():
		}
	}()
	for {
		s.mu.Lock()
		start, wait := s.r.Next(time.Now())
		s.mu.Unlock()
		if !start {
			if s.sleep(wait) {
				continue
			}
			s.update(func(r *Restarter) { r.Stop(time.Now()) }, nil)
			return
		}
		p, err := s.host.launch(ctx, s.cfg.Plugin, s.cfg.Connector, s.cfg.Limits)
		if err != nil {
			if ctx.Err() != nil {
				s.update(func(r *Restarter) { r.Stop(time.Now()) }, nil)
				return
			}
			s.update(func(r *Restarter) { r.Failed(time.Now(), err.Error()) }, nil)
			continue
		}
		s.update(func(r *Restarter) { r.Started(time.Now()) }, p)
		select {
		case <-p.Done():
			reason := "plugin process exited"
			if err := p.Err(); err != nil {
				reason = err.Error()
			}
			s.update(func(r *Restarter) { r.Failed(time.Now(), reason) }, nil)
		case <-s.closing:
			_ = p.Close()
			s.update(func(r *Restarter) { r.Stop(time.Now()) }, nil)
			return
		}
	}
}

// sleep waits d (forever if d is 0) and reports false if closed meanwhile.
func (s *Supervisor) sleep(d time.Duration) bool {
	var timer <-chan time.Time
	if d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		timer = t.C
	}
	select {
	case <-timer:
		return true
	case <-s.closing:
		return false
	}
}
