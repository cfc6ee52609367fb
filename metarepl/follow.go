package metarepl

import (
	"context"
	"fmt"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

// followerState is the loop's state beside the metalog.Follower.
type followerState struct {
	fol      *metalog.Follower
	leader   metalog.Voter
	fetching bool
	retryAt  int64 // no fetch before this (ms), after a failure
	fails    int   // failures in a row; from 3 on the register is read
}

// pump starts the follower's next step when it has none in flight:
// truncate (a log without epochs truncates to its high watermark first),
// fetch, or, when fenced, read the register for a newer epoch.
func (r *Replica) pump() {
	f := &r.follow
	if f.fol == nil || f.fetching || r.fatalErr != nil {
		if r.leader == nil && f.fol == nil && r.fatalErr == nil && r.epoch >= 0 {
			r.pollRegister() // stepped down: find the new leader
		}
		return
	}
	if r.nowMs() < f.retryAt {
		return
	}
	for range 2 {
		a := f.fol.Next()
		switch a.Kind {
		case isr.ActFetch:
			r.sendFetch(a.Request)
			return
		case isr.ActTruncate:
			if !r.truncate(a.Truncation.Offset) {
				return
			}
		case isr.ActWait:
			r.pollRegister()
			return
		default:
			return
		}
	}
}

// sendFetch sends req to the leader off the loop; the answer comes back
// to onFetch.
func (r *Replica) sendFetch(req isr.FetchRequest) {
	f := &r.follow
	f.fetching = true
	gen, to := r.gen, f.leader.ID
	fr := FetchRequest{Replica: r.cfg.Self, Observer: r.cfg.Observer, CurrentEpoch: req.CurrentLeaderEpoch,
		FetchOffset: req.FetchOffset, LastFetchedEpoch: req.LastFetchedEpoch, LogStartOffset: r.log.StartOffset(),
		MaxBytes: int32(min(r.cfg.FetchMaxBytes, 1<<30)), MaxWaitMs: int32(r.cfg.FetchMaxWait.Milliseconds())}
	go func() {
		ctx, cancel := context.WithTimeout(r.ctx, r.cfg.FetchTimeout)
		defer cancel()
		resp, err := r.cfg.Transport.Fetch(ctx, to, fr)
		r.post(func() { r.onFetch(gen, req, resp, err) })
	}()
}

// backoff delays the next fetch; after a few failures in a row the
// register is read, in case another controller took over.
func (r *Replica) backoff() {
	f := &r.follow
	f.retryAt = r.nowMs() + r.cfg.Backoff.Milliseconds()
	f.fails++
	if f.fails >= 3 {
		r.pollRegister()
	}
}

// onFetch applies the leader's answer: append and fsync, then Appended;
// truncate durably, then Truncated; reset, back off or wait.
func (r *Replica) onFetch(gen uint64, req isr.FetchRequest, resp FetchResponse, err error) {
	f := &r.follow
	if gen != r.gen || f.fol == nil {
		return
	}
	f.fetching = false
	if err != nil {
		r.cfg.Logger.Debug("metadata log fetch failed", "leader", f.leader, "err", err)
		r.backoff()
		return
	}
	a, err := f.fol.HandleResponse(req, metalog.Response{Epoch: resp.Epoch, Err: resp.Err, Diverging: resp.Diverging,
		HighWatermark: resp.HighWatermark}, r.log.EpochEntries(), r.local())
	if err != nil {
		// A truncation below the high watermark: the leader lacks a record
		// this node knows committed. The rules say it cannot happen; stop.
		r.fail(err)
		return
	}
	switch a.Kind {
	case isr.ActAppend:
		f.fails = 0
		batches := resp.Batches
		if err := checkBatches(batches, req.FetchOffset, resp.Epoch); err != nil {
			r.cfg.Logger.Warn("metadata log: bad fetch answer", "err", err)
			batches = nil
			f.retryAt = r.nowMs() + r.cfg.Backoff.Milliseconds()
		}
		if err := r.log.Append(batches...); err != nil {
			r.fail(err)
			return
		}
		// Fsynced: only now may the next fetch report the new end.
		r.setHW(f.fol.Appended(r.local(), resp.HighWatermark))
	case isr.ActTruncate:
		r.truncate(a.Truncation.Offset)
	case isr.ActReset:
		off, full := isr.OutOfRangeReset(r.log.End(), resp.LogStartOffset, resp.LogEndOffset)
		if !full && beforeStart(req.LastFetchedEpoch, resp.LogStartOffset, resp.LogStartEpoch) {
			// The leader's log was trimmed past where it could tell us
			// where our last epoch ended (Log.EndOffsetFor): start over.
			off, full = resp.LogStartOffset, true
		}
		if full {
			// The leader's log starts past ours, or at a checkpoint after
			// records of ours it cannot vouch for: drop ours and fetch from
			// its start, whose first batch is a checkpoint.
			r.resetTo(off)
			return
		}
		if r.truncate(min(off, r.log.End())) {
			f.retryAt = r.nowMs() + r.cfg.Backoff.Milliseconds()
		}
	case isr.ActBackoff:
		r.backoff()
	case isr.ActWait:
		r.pollRegister()
	}
}

// checkBatches verifies a fetch answer's batches: contiguous from the
// fetch offset, none from an epoch after the leader's.
func checkBatches(bs []Batch, from int64, epoch int32) error {
	for _, b := range bs {
		if b.Offset != from {
			return fmt.Errorf("metarepl: batch at %d, expected %d", b.Offset, from)
		}
		if b.Epoch > epoch {
			return fmt.Errorf("metarepl: batch of epoch %d from a leader of epoch %d", b.Epoch, epoch)
		}
		from = b.End()
	}
	return nil
}

// truncate cuts the log durably, then tells the follower; false when it
// could not (the replica then stops).
func (r *Replica) truncate(to int64) bool {
	if to < r.log.End() {
		r.cfg.Logger.Info("metadata log truncates", "from", r.log.End(), "to", to)
	}
	if err := r.log.Truncate(to); err != nil {
		r.fail(err)
		return false
	}
	if err := r.follow.fol.Truncated(r.local()); err != nil {
		r.fail(err)
		return false
	}
	return true
}

// resetTo empties the log durably to start at the leader's log start,
// then tells the follower, which fetches from there. The log refuses a
// start below this node's high watermark (committed records the leader
// lacks): the replica then stops.
func (r *Replica) resetTo(start int64) bool {
	r.cfg.Logger.Info("metadata log starts over at the leader's log start", "start", r.log.StartOffset(),
		"end", r.log.End(), "to", start)
	if start < r.hw {
		r.fail(fmt.Errorf("metarepl: the leader's log starts at %d, above records up to our high watermark %d: %w",
			start, r.hw, metalog.ErrCommittedTruncation))
		return false
	}
	if err := r.log.TruncateFullyAndStartAt(start); err != nil {
		r.fail(err)
		return false
	}
	r.setHW(r.log.HighWatermark())
	if err := r.follow.fol.Truncated(r.local()); err != nil {
		r.fail(err)
		return false
	}
	return true
}

// local is the durable log with this node's high watermark.
func (r *Replica) local() isr.LocalLog {
	l := r.log.Local()
	l.HighWatermark = r.hw
	return l
}
