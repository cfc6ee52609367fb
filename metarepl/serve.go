package metarepl

import (
	"context"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

// parkedFetch is a fetch the leader holds (a long poll) until its log end
// or high watermark moves or MaxWaitMs passes.
type parkedFetch struct {
	ctx      context.Context
	req      FetchRequest
	ch       chan FetchResponse
	deadline time.Time
	hw       int64 // the high watermark when it was parked
}

func (p *parkedFetch) reply(resp FetchResponse) { p.ch <- resp }

// HandleFetch serves a fetch of the metadata log from a voter or an
// observer: the answer a transport carries back. A node that does not
// lead answers NOT_LEADER_OR_FOLLOWER; a deposed leader NOT_CONTROLLER.
func (r *Replica) HandleFetch(ctx context.Context, req FetchRequest) FetchResponse {
	p := &parkedFetch{ctx: ctx, req: req, ch: make(chan FetchResponse, 1),
		deadline: r.cfg.Now().Add(min(time.Duration(max(req.MaxWaitMs, 0))*time.Millisecond, r.cfg.FetchMaxWait))}
	if !r.post(func() { r.serve(p, true) }) {
		return FetchResponse{Err: fmt.Errorf("%w: %w", ErrClosed, kerr.NotLeaderForPartition)}
	}
	select {
	case resp := <-p.ch:
		return resp
	case <-ctx.Done():
		return FetchResponse{Err: fmt.Errorf("%w: %w", ctx.Err(), kerr.RequestTimedOut)}
	}
}

// serve answers p now, or parks it when it has nothing to send and may
// wait. It runs the leader's checks again each time, as Kafka's delayed
// fetch does, so a parked fetch sees a deposition or a truncation.
func (r *Replica) serve(p *parkedFetch, mayPark bool) {
	l := r.leader
	if l == nil {
		err := error(kerr.NotLeaderForPartition)
		if r.fatalErr != nil {
			err = fmt.Errorf("%w: %w", r.fatalErr, kerr.NotLeaderForPartition)
		}
		p.reply(FetchResponse{Epoch: r.epoch, Err: err})
		return
	}
	req, start, end := p.req, r.log.StartOffset(), r.log.End()
	var (
		div  *isr.EpochEndOffset
		err  error
		upTo = end
	)
	if req.Observer {
		upTo, div, err = l.FetchObserver(metalog.ObserverFetch{CurrentEpoch: req.CurrentEpoch, FetchOffset: req.FetchOffset,
			LastFetchedEpoch: req.LastFetchedEpoch, LeaderLogStartOffset: start, LeaderLogEndOffset: end},
			r.log.EndOffsetFor)
	} else {
		div, err = l.Fetch(metalog.VoterFetch{Voter: req.Replica, CurrentEpoch: req.CurrentEpoch, FetchOffset: req.FetchOffset,
			LastFetchedEpoch: req.LastFetchedEpoch, LogStartOffset: req.LogStartOffset,
			LeaderLogStartOffset: start, LeaderLogEndOffset: end}, r.log.EndOffsetFor, r.nowMs())
	}
	// The fetch may have advanced the high watermark, proposed an ISR
	// change or deposed the leader.
	r.drainLeader()
	resp := FetchResponse{Epoch: l.Epoch(), Err: err, Diverging: div, HighWatermark: l.HighWatermark(),
		LogStartOffset: start, LogEndOffset: end, LogStartEpoch: r.log.startEpoch()}
	if err != nil || div != nil {
		p.reply(resp)
		return
	}
	batches, err := r.log.Read(req.FetchOffset, int(min(int64(max(req.MaxBytes, 1)), int64(r.cfg.FetchMaxBytes))), upTo)
	if err != nil {
		resp.Err = err
		p.reply(resp)
		return
	}
	if len(batches) == 0 && mayPark && r.leader == l && r.cfg.Now().Before(p.deadline) && p.ctx.Err() == nil {
		p.hw = resp.HighWatermark
		r.parked = append(r.parked, p)
		return
	}
	resp.Batches = batches
	p.reply(resp)
}

// takeParked empties the parked list.
func (r *Replica) takeParked() []*parkedFetch {
	ps := r.parked
	r.parked = nil
	return ps
}

// wakeParked re-serves every parked fetch after the leader's log end or
// high watermark moved: one with new records gets them; one whose high
// watermark is now stale is answered without records, so the fetcher
// learns the new one; the others park again.
func (r *Replica) wakeParked() {
	for _, p := range r.takeParked() {
		if p.ctx.Err() != nil {
			continue
		}
		r.serve(p, r.leader != nil && r.leader.HighWatermark() == p.hw)
	}
}

// expireParked answers the parked fetches whose wait is over.
func (r *Replica) expireParked() {
	now := r.cfg.Now()
	kept := r.parked[:0]
	var due []*parkedFetch
	for _, p := range r.parked {
		switch {
		case p.ctx.Err() != nil:
		case !now.Before(p.deadline):
			due = append(due, p)
		default:
			kept = append(kept, p)
		}
	}
	r.parked = kept
	for _, p := range due {
		r.serve(p, false)
	}
}
