package metarepl

import (
	"context"
	"fmt"
	"time"

	"github.com/sluice-io/sluice/metalog"
)

// leaderState is the loop's state beside the metalog.Leader.
type leaderState struct {
	waiters  []waiter
	lastTick int64
	// retryID is the ISR change whose last attempt failed: its next
	// attempt waits Backoff.
	retryID uint64
}

// waiter is an Append waiting for its records to commit.
type waiter struct {
	first, end int64
	ch         chan appendResult
}

type appendResult struct {
	offset int64
	err    error
}

// drainLeader acts on the leader's Ready: a new high watermark wakes the
// Appends it covers and the parked fetches; a proposal goes to the
// register; a deposed leader steps down and reads the register to find
// whom to follow.
func (r *Replica) drainLeader() {
	l := r.leader
	if l == nil {
		return
	}
	rd := l.Ready()
	if rd.HighWatermarkAdvanced {
		r.setHW(rd.HighWatermark)
		r.wake = true
		// Persisted before any Append covered by it returns, not at
		// the end of the event (settle): its caller reads what it
		// committed through Committed, which stops at the persisted
		// high watermark, and publishes its end to brokers whose
		// fetches would otherwise find nothing new, park, and answer
		// only at their max wait (every forwarded request waited up
		// to 500 ms for its change to reach the broker so).
		r.persistHW()
		if r.leader != l {
			return // the write failed: the replica stopped
		}
	}
	hw := l.HighWatermark()
	kept := r.lead.waiters[:0]
	for _, w := range r.lead.waiters {
		if w.end <= hw {
			w.ch <- appendResult{offset: w.first}
		} else {
			kept = append(kept, w)
		}
	}
	r.lead.waiters = kept
	if rd.Proposal != nil {
		r.propose(*rd.Proposal)
	}
	if rd.Deposed {
		r.stepDown(fmt.Errorf("epoch %d: %w", l.Epoch(), metalog.ErrDeposed))
		r.readAt = time.Time{}
		r.pollRegister()
	}
}

// propose runs an ISR change on the register off the loop; the answer
// comes back to onISRResult. A retry of a change that just failed waits
// Backoff first.
func (r *Replica) propose(ch metalog.ISRChange) {
	if r.cfg.Register == nil {
		r.cfg.Logger.Error("metadata log: ISR change with no register", "isr", ch.ISR)
		return
	}
	var delay time.Duration
	if ch.ID == r.lead.retryID {
		delay = r.cfg.Backoff
	}
	gen := r.gen
	go func() {
		if delay > 0 {
			select {
			case <-time.After(delay):
			case <-r.ctx.Done():
				return
			}
		}
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RegisterTimeout)
		defer cancel()
		c, err := r.cfg.Register.ChangeISR(ctx, ch)
		r.post(func() { r.onISRResult(gen, ch, c, err) })
	}()
}

func (r *Replica) onISRResult(gen uint64, ch metalog.ISRChange, c metalog.Config, err error) {
	if gen != r.gen || r.leader == nil {
		return
	}
	out, herr := r.leader.HandleISRResult(ch.ID, metalog.ISRResult{Err: metalog.RegisterError(err), Register: c}, r.nowMs())
	if herr != nil {
		r.cfg.Logger.Warn("metadata log: ISR change answer", "err", herr)
	}
	r.cfg.Logger.Debug("metadata log ISR change", "isr", ch.ISR, "outcome", out, "err", err)
	switch out {
	case metalog.OutcomeRetry:
		r.lead.retryID = ch.ID
	case metalog.OutcomeReadRegister:
		r.readForLeader(gen)
	}
	r.drainLeader()
}

// readForLeader reads the register until a read succeeds and hands it to
// ApplyRegister: the ISR change stays pending until then.
func (r *Replica) readForLeader(gen uint64) {
	go func() {
		for {
			ctx, cancel := context.WithTimeout(r.ctx, r.cfg.RegisterTimeout)
			c, err := r.cfg.Register.Read(ctx)
			cancel()
			if err == nil {
				r.post(func() {
					if gen == r.gen {
						r.onRegister(c)
					}
				})
				return
			}
			select {
			case <-time.After(r.cfg.Backoff):
			case <-r.ctx.Done():
				return
			}
		}
	}()
}
