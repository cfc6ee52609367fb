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

// Append appends records as one batch in the leader's epoch and returns
// the offset of the first once they are committed: durable on every ISR
// voter (the high watermark is past them). It fails with ErrNotLeader on a
// node that does not lead, and with an error wrapping metalog.ErrDeposed
// when the leader steps down first: the records were not known committed
// then, and a later leader may still commit them. A ctx that ends first
// returns ctx's error with the same uncertainty. Concurrent Appends are
// written with one fsync (group commit), each still its own batch.
func (r *Replica) Append(ctx context.Context, records [][]byte) (int64, error) {
	if len(records) == 0 {
		return 0, fmt.Errorf("metarepl: append of no records")
	}
	req := appendReq{records: records, ch: make(chan appendResult, 1)}
	select {
	case r.appends <- req:
	case <-r.ctx.Done():
		return -1, ErrClosed
	}
	select {
	case res := <-req.ch:
		return res.offset, res.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// appendReq is one Append waiting for the loop.
type appendReq struct {
	records [][]byte
	ch      chan appendResult
}

// takeAppends returns first and the Appends queued behind it, up to the
// group limit: they share one write and one fsync.
func (r *Replica) takeAppends(first appendReq) []appendReq {
	reqs := []appendReq{first}
	for len(reqs) < r.cfg.groupMax {
		select {
		case req := <-r.appends:
			reqs = append(reqs, req)
		default:
			return reqs
		}
	}
	return reqs
}

func (r *Replica) append(reqs []appendReq) {
	l := r.leader
	var err error
	switch {
	case r.fatalErr != nil:
		err = r.fatalErr
	case l == nil || l.Deposed():
		err = ErrNotLeader
	}
	if err != nil {
		for _, req := range reqs {
			req.ch <- appendResult{offset: -1, err: err}
		}
		return
	}
	batches := make([]Batch, len(reqs))
	next := r.log.End()
	for i, req := range reqs {
		batches[i] = Batch{Offset: next, Epoch: l.Epoch(), Records: req.records}
		next = batches[i].End()
	}
	if err := r.log.Append(batches...); err != nil {
		for _, req := range reqs {
			req.ch <- appendResult{offset: -1, err: err}
		}
		r.fail(err)
		return
	}
	// Only now, with the batches fsynced, does the leader count them.
	l.Append(r.log.End(), r.nowMs())
	for i, req := range reqs {
		r.lead.waiters = append(r.lead.waiters, waiter{first: batches[i].Offset, end: batches[i].End(), ch: req.ch})
	}
	r.wake = true
	r.drainLeader()
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
