package runtime

import (
	"context"
	"sync"
	"time"
)

// pauseGate holds a task's loop while its connector is PAUSED: the task
// stays started (a resume is immediate) but neither polls nor puts.
type pauseGate struct {
	mu     sync.Mutex
	paused bool
	resume chan struct{}
}

func newPauseGate(paused bool) *pauseGate {
	return &pauseGate{paused: paused, resume: make(chan struct{}, 1)}
}

// set pauses or resumes; a resume wakes a waiting loop at once.
func (g *pauseGate) set(p bool) {
	g.mu.Lock()
	g.paused = p
	g.mu.Unlock()
	select {
	case g.resume <- struct{}{}:
	default:
	}
}

func (g *pauseGate) isPaused() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.paused
}

// wait returns on a resume, when ctx ends or at until (the loop's next
// offset flush, which a paused task still does).
func (g *pauseGate) wait(ctx context.Context, until time.Time) {
	select {
	case <-ctx.Done():
	case <-g.resume:
	case <-time.After(time.Until(until)):
	}
}
