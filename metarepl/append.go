package metarepl

import (
	"context"
	"fmt"
)

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
	return r.submit(ctx, appendReq{records: records, ch: make(chan appendResult, 1)})
}

// AppendAt is Append only if, when the loop writes the batch, this replica
// leads exactly epoch and its log ends exactly at offset (after the
// Appends grouped ahead of it in the same write): the caller's view of the
// log is then the log, with nothing appended behind its back. The check
// and the write are one event of the loop, so no takeover, re-election or
// other append can come between them.
//
// Otherwise nothing is written and it fails at once with an error
// wrapping ErrEpochChanged (this replica leads another epoch, or does not
// lead: then it also wraps ErrNotLeader) or ErrOffsetMismatch; a refused
// AppendAt in a group does not move the offsets of the others. Once
// written it returns nil when the batch is committed, at offset, and fails
// as Append does (metalog.ErrDeposed, ctx's error) when that is not known.
func (r *Replica) AppendAt(ctx context.Context, epoch int32, offset int64, records [][]byte) error {
	wait, err := r.StartAppendAt(ctx, epoch, offset, records)
	if err != nil {
		return err
	}
	return wait(ctx)
}

// StartAppendAt is AppendAt in two steps: it returns once the loop's queue
// holds the batch (nothing is written if it fails), and wait then returns
// what AppendAt would. Batches queued one after another are written in
// that order, each checked against the log end the ones before it leave,
// so a caller that starts its appends in order under its own lock can
// wait for their commits outside it, several in flight sharing writes and
// fsyncs. Call wait once.
func (r *Replica) StartAppendAt(ctx context.Context, epoch int32, offset int64, records [][]byte) (wait func(context.Context) error, err error) {
	return r.startAt(ctx, epoch, offset, records, false)
}

// StartCheckpointAt is StartAppendAt for a checkpoint batch
// (Batch.Checkpoint): records must restate the whole metadata state as of
// offset, so that every batch below it is redundant. It is checked,
// queued, grouped and committed exactly as StartAppendAt's batch, and
// once its whole batch is at or below a replica's persisted high
// watermark with over Config.TrimMinBytes below it, that replica trims
// its log to start at it (leader and followers each their own).
// Committed and the fetches of followers behind the start then fail with
// OFFSET_OUT_OF_RANGE below it; a follower starts over at it.
func (r *Replica) StartCheckpointAt(ctx context.Context, epoch int32, offset int64, records [][]byte) (wait func(context.Context) error, err error) {
	return r.startAt(ctx, epoch, offset, records, true)
}

func (r *Replica) startAt(ctx context.Context, epoch int32, offset int64, records [][]byte, checkpoint bool) (wait func(context.Context) error, err error) {
	if len(records) == 0 {
		return nil, fmt.Errorf("metarepl: append of no records")
	}
	req := appendReq{records: records, at: true, epoch: epoch, offset: offset, checkpoint: checkpoint, ch: make(chan appendResult, 1)}
	if err := r.enqueue(ctx, req); err != nil {
		return nil, err
	}
	return func(ctx context.Context) error {
		select {
		case res := <-req.ch:
			return res.err
		case <-ctx.Done():
			return ctx.Err()
		}
	}, nil
}

// appendReq is one Append or AppendAt waiting for the loop.
type appendReq struct {
	records [][]byte
	// at marks an AppendAt: written only in epoch, at offset.
	at     bool
	epoch  int32
	offset int64
	// checkpoint marks the batch a checkpoint (StartCheckpointAt).
	checkpoint bool
	ch         chan appendResult
}

// submit hands req to the loop and waits for its result. A ctx that ends
// before the loop takes req returns with nothing written.
func (r *Replica) submit(ctx context.Context, req appendReq) (int64, error) {
	if err := r.enqueue(ctx, req); err != nil {
		return -1, err
	}
	select {
	case res := <-req.ch:
		return res.offset, res.err
	case <-ctx.Done():
		return -1, ctx.Err()
	}
}

// enqueue hands req to the loop; once it returns nil, req.ch gets the
// result.
func (r *Replica) enqueue(ctx context.Context, req appendReq) error {
	select {
	case r.appends <- req:
		return nil
	case <-r.ctx.Done():
		return ErrClosed
	case <-ctx.Done():
		return ctx.Err()
	}
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

// append writes reqs as consecutive batches with one write and one fsync.
// An AppendAt whose epoch or offset does not match is answered at once
// and left out, so the batches after it take the offsets it would have.
func (r *Replica) append(reqs []appendReq) {
	l := r.leader
	if r.fatalErr != nil || l == nil || l.Deposed() {
		for _, req := range reqs {
			req.ch <- appendResult{offset: -1, err: r.notLeading(req)}
		}
		return
	}
	batches := make([]Batch, 0, len(reqs))
	written := make([]appendReq, 0, len(reqs))
	next := r.log.End()
	for _, req := range reqs {
		if req.at {
			var err error
			switch {
			case req.epoch != l.Epoch():
				err = fmt.Errorf("metarepl: append for epoch %d at %d refused: this node leads epoch %d: %w",
					req.epoch, req.offset, l.Epoch(), ErrEpochChanged)
			case req.offset != next:
				err = fmt.Errorf("metarepl: append at %d in epoch %d refused: the log ends at %d: %w",
					req.offset, req.epoch, next, ErrOffsetMismatch)
			}
			if err != nil {
				req.ch <- appendResult{offset: -1, err: err}
				continue
			}
		}
		b := Batch{Offset: next, Epoch: l.Epoch(), Records: req.records, Checkpoint: req.checkpoint}
		batches, written = append(batches, b), append(written, req)
		next = b.End()
	}
	if len(batches) == 0 {
		return
	}
	if err := r.log.Append(batches...); err != nil {
		for _, req := range written {
			req.ch <- appendResult{offset: -1, err: err}
		}
		r.fail(err)
		return
	}
	// Only now, with the batches fsynced, does the leader count them.
	l.Append(r.log.End(), r.nowMs())
	for i, req := range written {
		r.lead.waiters = append(r.lead.waiters, waiter{first: batches[i].Offset, end: batches[i].End(), ch: req.ch})
	}
	r.wake = true
	r.drainLeader()
}

// notLeading is why req is refused on a node that cannot append now: the
// failure that stopped it, or ErrNotLeader (and ErrEpochChanged for an
// AppendAt).
func (r *Replica) notLeading(req appendReq) error {
	switch {
	case r.fatalErr != nil:
		return r.fatalErr
	case !req.at:
		return ErrNotLeader
	}
	role := RoleIdle.String()
	switch {
	case r.leader != nil:
		role = "deposed leader" // not yet stepped down
	case r.follow.fol != nil:
		role = RoleFollower.String()
	}
	return fmt.Errorf("metarepl: append for epoch %d at %d refused: this node is %s at epoch %d: %w: %w",
		req.epoch, req.offset, role, r.epoch, ErrEpochChanged, ErrNotLeader)
}
