package clustersim

import (
	"errors"
	"fmt"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

// This file is the metadata log's side of a node, wired as metarepl's
// Replica and broker's quorum role wire metalog to the voter: a Leader
// while the voter leads an epoch (built after caching the epoch durably),
// a Follower of the active controller the voter's register names, ISR
// changes through the Node's RequestISR, an observer on brokers.

const (
	simLagMs   = 500 // metalog LagTimeMaxMs
	fetchSteps = 40  // a fetch unanswered this long is sent again (200ms)
	isrBackoff = 20  // steps before an ISR change that failed is sent again
	isrTimeout = 400 // steps before an ISR change unanswered is given up
	whoSteps   = 40  // a broker asks a voter who leads this often
)

func (s *sim) nowMs(n *node) int64 { return int64(s.local(n) / 1e6) }

// setHW records a node's new high watermark (persisted at once), which
// must never go back; a broker applies what it covers.
func (s *sim) setHW(n *node, hw int64) {
	if hw < n.hw {
		s.fail("node %d: high watermark %d after %d", n.id, hw, n.hw)
		return
	}
	n.hw = hw
	for n.broker && n.applied < n.hw {
		o := n.applied
		if o >= int64(len(s.committed)) || n.log.recs[o] != s.committed[o] {
			s.fail("broker %d applies %+v at %d, not committed (%d committed)", n.id, n.log.recs[o], o, len(s.committed))
			return
		}
		n.applied++
	}
}

// drain acts on the leader's Ready, as metarepl's drainLeader: the high
// watermark acknowledges appends (they join the committed log), a
// proposal goes to the Node, a deposed leader steps down.
func (s *sim) drain(n *node) {
	l := n.lead
	if l == nil {
		return
	}
	rd := l.Ready()
	if rd.HighWatermarkAdvanced {
		for o := int64(len(s.committed)); o < rd.HighWatermark; o++ {
			s.committed = append(s.committed, n.log.recs[o])
			if s.healed && n.log.recs[o].val > s.healVal && s.firstCommitAfterHeal < 0 {
				s.firstCommitAfterHeal = s.step
			}
		}
	}
	s.setHW(n, l.HighWatermark())
	if p := rd.Proposal; p != nil {
		at := s.step
		if p.ID == n.retryID {
			at += isrBackoff
		}
		n.nextISR, n.nextISRAt = p, at
	}
	if rd.Deposed {
		s.logf("node %d: metadata log leader of epoch %d deposed", n.id, l.Epoch())
		s.cover("a metadata log leader is deposed")
		s.replicaStepDown(n)
		s.pollRegister(n)
	}
}

// replicaStepDown drops the replica's role; records appended and not yet
// fsynced were never served nor acknowledged and are dropped.
func (s *sim) replicaStepDown(n *node) {
	n.lead, n.fol, n.syncing, n.fetchAt = nil, nil, false, -1
	n.nextISR, n.isrPending, n.retryID = nil, nil, 0
	n.log.dropUnsynced()
}

// becomeLeader is metarepl's BecomeLeader on a Node's transition to
// active: fsync, cache (epoch, log end) durably, build the Leader.
func (s *sim) becomeLeader(n *node, tr ctrlquorum.Transition) {
	c := metalog.ConfigOf(tr.Register)
	switch {
	case n.lead != nil && n.lead.Epoch() == c.Epoch:
		return
	case c.Epoch <= n.epoch || c.Epoch <= n.log.latestEpoch():
		s.fail("node %d: active in epoch %d, but its log replica is at epoch %d (log %d)", n.id, c.Epoch, n.epoch, n.log.latestEpoch())
		return
	}
	s.replicaStepDown(n)
	n.epoch = c.Epoch
	if err := n.log.takeover(c.Epoch); err != nil {
		s.fail("node %d: %v", n.id, err)
		return
	}
	s.checkHasCommitted(n, fmt.Sprintf("takes over epoch %d", c.Epoch))
	var stale []caspaxos.Voter
	if !tr.Deposed.IsZero() {
		stale = append(stale, tr.Deposed)
	}
	l, err := metalog.NewLeader(metalog.LeaderConfig{Self: n.self, Register: c, MinISR: int(tr.Register.MetaMinISR),
		LagTimeMaxMs: simLagMs, LogEndOffset: n.log.durableEnd(), HighWatermark: n.hw, Stale: stale}, s.nowMs(n))
	if err != nil {
		s.fail("node %d: %v", n.id, err)
		return
	}
	s.logf("node %d leads the metadata log in epoch %d from %d, ISR %v, stale %v", n.id, c.Epoch, n.log.durableEnd(), voterIDs(c.ISR), voterIDs(stale))
	n.lead, n.lastLeadTick = l, s.nowMs(n)
	if len(stale) > 0 { // as metarepl does: the first ISR check at once
		l.Tick(n.lastLeadTick)
	}
	s.drain(n)
}

// startFollowing follows leader in epoch from the durable log.
func (s *sim) startFollowing(n *node, leader caspaxos.Voter, epoch int32) {
	s.replicaStepDown(n)
	n.epoch, n.folLeader = epoch, leader
	if n.broker {
		n.fol = metalog.NewObserver(leader, epoch, n.log.local(n.hw))
	} else {
		n.fol = metalog.NewFollower(leader, epoch, n.log.local(n.hw))
	}
}

// pollRegister is metarepl's onRegister with the register as the voter
// last saw it (voter.MetaLogRegister.Read).
func (s *sim) pollRegister(n *node) {
	reg := n.node.Register()
	if reg.Epoch == 0 && reg.Active.IsZero() {
		return
	}
	c := metalog.ConfigOf(reg)
	if n.lead != nil {
		if err := n.lead.ApplyRegister(c, s.nowMs(n)); err != nil && !errors.Is(err, metalog.ErrDeposed) {
			s.fail("node %d: apply register: %v", n.id, err)
		}
		s.drain(n)
		return
	}
	if c.Epoch > n.epoch && !c.Active.IsZero() && c.Active != n.self {
		s.startFollowing(n, c.Active, c.Epoch)
	}
}

// followLoop is broker's quorum role's follow loop: tell the Node of a
// newer epoch the log saw, and follow a newer controller the Node knows.
func (s *sim) followLoop(n *node) {
	l := n.node.Leader()
	switch {
	case n.epoch > l.Epoch:
		s.ready(n, n.node.ObserveEpoch(s.local(n), n.epoch))
	case l.Epoch > n.epoch && !l.Active.IsZero() && l.Active != n.self && n.lead == nil:
		s.startFollowing(n, l.Active, l.Epoch)
	}
}

// sendISR hands the leader's ISR change to the Node
// (voter.MetaLogRegister.ChangeISR).
func (s *sim) sendISR(n *node) {
	ch := n.nextISR
	if ch == nil || n.isrPending != nil || s.step < n.nextISRAt || n.lead == nil {
		return
	}
	n.nextISR = nil
	rd, err := n.node.RequestISR(s.local(n), ctrlquorum.ISRRequest{Epoch: ch.Epoch, ConfigVersion: ch.Version, ISR: ch.ISR})
	if err != nil {
		res := metalog.ISRResult{Err: err}
		if errors.Is(err, ctrlquorum.ErrNotActive) {
			res = metalog.ISRResult{Register: metalog.ConfigOf(n.node.Register()), Err: fmt.Errorf("%w: %w", metalog.ErrEpochChanged, err)}
		}
		s.isrAnswer(n, *ch, res)
		return
	}
	n.isrPending, n.isrSent = ch, s.step
	s.ready(n, rd)
}

func (s *sim) onISRResult(n *node, r ctrlquorum.ISRResult) {
	ch := n.isrPending
	if ch == nil {
		return // given up (timed out) or dropped with the role
	}
	n.isrPending = nil
	res := metalog.ISRResult{Register: metalog.ConfigOf(r.Register)}
	switch {
	case r.Err == nil:
	case errors.Is(r.Err, ctrlquorum.ErrNotActive):
		res.Err = fmt.Errorf("%w: %w", metalog.ErrEpochChanged, r.Err)
	default:
		res.Err = metalog.RegisterError(r.Err)
	}
	s.isrAnswer(n, *ch, res)
}

func (s *sim) isrAnswer(n *node, ch metalog.ISRChange, res metalog.ISRResult) {
	if n.lead == nil || n.lead.Epoch() != ch.Epoch {
		return
	}
	out, err := n.lead.HandleISRResult(ch.ID, res, s.nowMs(n))
	if err != nil {
		s.fail("node %d: ISR result: %v", n.id, err)
	}
	s.logf("node %d: ISR change %v -> %v: outcome %d (%v)", n.id, ch.Version, voterIDs(ch.ISR), out, res.Err)
	switch out {
	case metalog.OutcomeCommitted:
		if ch.Expand {
			s.cover("an ISR expansion commits")
		} else {
			s.cover("an ISR shrink commits")
		}
	case metalog.OutcomeRetry:
		n.retryID = ch.ID
	case metalog.OutcomeReadRegister:
		n.readForLeader = true
	}
	s.drain(n)
}

// pump runs a node's replica for one step: the leader's tick and ISR
// change, a follower's next fetch or truncation.
func (s *sim) pump(n *node) {
	if !n.broker {
		if n.isrPending != nil && s.step-n.isrSent > isrTimeout {
			ch := *n.isrPending
			n.isrPending = nil
			s.isrAnswer(n, ch, metalog.ISRResult{Err: errors.New("register timeout")})
		}
		if n.readForLeader && n.lead != nil {
			n.readForLeader = false
			s.pollRegister(n)
		}
		if s.rng.Intn(20) == 0 {
			s.pollRegister(n)
			s.followLoop(n)
		}
		if l := n.lead; l != nil && s.nowMs(n)-n.lastLeadTick >= simLagMs/2 {
			n.lastLeadTick = s.nowMs(n)
			l.Tick(n.lastLeadTick)
			s.drain(n)
		}
		s.sendISR(n)
	} else if n.fol == nil && s.step >= n.whoAt || s.step-n.whoAt > whoSteps {
		n.whoAt = s.step + 10
		s.send(msg{kind: kWho, from: n.id, to: int32(1 + s.rng.Intn(len(s.voters))), boot: n.life})
	}
	f := n.fol
	if f == nil || n.syncing || (n.fetchAt >= 0 && s.step-n.fetchAt < fetchSteps) {
		return
	}
	for range 2 {
		switch a := f.Next(); a.Kind {
		case isr.ActFetch:
			s.send(msg{kind: kFetch, from: n.id, to: n.folLeader.ID, boot: n.life,
				fetch: &fetchReq{voter: n.self, observer: n.broker, req: a.Request}})
			n.fetchAt = s.step
			return
		case isr.ActTruncate:
			s.truncate(n, a.Truncation.Offset)
		default:
			return
		}
	}
}

func (s *sim) truncate(n *node, off int64) {
	if off < int64(len(n.log.recs)) {
		s.logf("node %d truncates to %d (log end %d)", n.id, off, len(n.log.recs))
		s.cover("a voter truncates a divergent suffix")
	}
	n.log.truncate(off)
	n.verified = min(n.verified, off)
	if err := n.fol.Truncated(n.log.local(n.hw)); err != nil {
		s.fail("node %d: %v", n.id, err)
	}
}

// onFetch answers a fetch at n as metarepl's leader does: durable records
// only, up to the log end for a voter and the high watermark for a broker.
func (s *sim) onFetch(n *node, m msg) {
	f := m.fetch
	out := &fetchReply{req: f.req}
	reply := msg{kind: kReply, from: n.id, to: m.from, boot: m.boot, reply: out}
	l := n.lead
	if l == nil {
		out.resp.Err = kerr.NotLeaderForPartition
		s.send(reply)
		return
	}
	end := n.log.durableEnd()
	var (
		div    *isr.EpochEndOffset
		err    error
		readTo = end
	)
	if f.observer {
		readTo, div, err = l.FetchObserver(metalog.ObserverFetch{CurrentEpoch: f.req.CurrentLeaderEpoch, FetchOffset: f.req.FetchOffset,
			LastFetchedEpoch: f.req.LastFetchedEpoch, LeaderLogEndOffset: end}, n.log.lookup())
		if div != nil {
			s.fail("broker %d diverges from leader %d: %+v (committed data lost)", m.from, n.id, *div)
		}
	} else {
		div, err = l.Fetch(metalog.VoterFetch{Voter: f.voter, CurrentEpoch: f.req.CurrentLeaderEpoch, FetchOffset: f.req.FetchOffset,
			LastFetchedEpoch: f.req.LastFetchedEpoch, LeaderLogEndOffset: end}, n.log.lookup(), s.nowMs(n))
	}
	out.resp = metalog.Response{Epoch: l.Epoch(), Err: err, Diverging: div, HighWatermark: l.HighWatermark()}
	if err == nil && div == nil {
		to := min(readTo, f.req.FetchOffset+int64(1+s.rng.Intn(30)))
		out.recs = append([]rec(nil), n.log.recs[f.req.FetchOffset:to]...)
	}
	s.drain(n) // the fetch may have committed records
	// What it serves as committed (below its high watermark) must be the
	// committed log; a deposed leader may still serve its uncommitted
	// tail, which its followers truncate later.
	for i, r := range out.recs {
		o := int(f.req.FetchOffset) + i
		switch {
		case int64(o) >= out.resp.HighWatermark:
		case o >= len(s.committed):
			s.fail("node %d serves %+v at %d below its high watermark %d, beyond the %d committed", n.id, r, o,
				out.resp.HighWatermark, len(s.committed))
		case r != s.committed[o]:
			s.fail("node %d serves %+v at %d, committed %+v", n.id, r, o, s.committed[o])
		}
	}
	s.send(reply)
}

// onReply handles the answer to a fetch, as metalog's contract says.
func (s *sim) onReply(n *node, r *fetchReply) {
	f := n.fol
	if f == nil || n.syncing {
		return
	}
	a, err := f.HandleResponse(r.req, r.resp, n.log.entries(), s.followerLog(n))
	if err != nil {
		s.fail("node %d: %v", n.id, err)
		return
	}
	if a.Kind != isr.ActIgnore {
		n.fetchAt = -1
	}
	switch a.Kind {
	case isr.ActAppend:
		if err := n.log.append(r.req.FetchOffset, r.recs); err != nil {
			s.fail("node %d: %v", n.id, err)
			return
		}
		n.syncing, n.leaderHW = true, r.resp.HighWatermark
		if len(r.recs) == 0 || (s.bug == bugUnsyncedFetch && !n.broker) {
			s.appended(n)
		}
	case isr.ActTruncate:
		s.truncate(n, a.Truncation.Offset)
	}
}

// appended tells the Follower its fetched records are fsynced (the
// planted bugUnsyncedFetch tells it before the fsync).
func (s *sim) appended(n *node) {
	n.syncing = false
	s.setHW(n, n.fol.Appended(s.followerLog(n), n.leaderHW))
}

// followerLog is the log a Follower is told about: the durable one, or
// with bugUnsyncedFetch the whole log, fsynced or not.
func (s *sim) followerLog(n *node) isr.LocalLog {
	if s.bug != bugUnsyncedFetch || n.broker {
		return n.log.local(n.hw)
	}
	return isr.LocalLog{LogEndOffset: int64(len(n.log.recs)), HighWatermark: n.hw, LatestEpoch: n.log.latestEpoch()}
}

// fsync makes a node's log durable and tells whoever waits for it.
func (s *sim) fsync(n *node) {
	n.log.fsync()
	switch {
	case n.lead != nil:
		n.lead.Append(n.log.durableEnd(), s.nowMs(n))
		s.drain(n)
	case n.syncing && n.fol != nil:
		s.appended(n)
	}
}

// produce is the workload: the active controller (its Node active now, in
// the epoch its log leads) appends records with unique values.
func (s *sim) produce(n *node) {
	l := n.lead
	if l == nil || l.Deposed() || len(n.log.recs)-int(l.HighWatermark()) > 200 {
		return
	}
	if e, ok := n.node.Active(s.local(n)); !ok || e != l.Epoch() {
		return
	}
	var rs []rec
	for range 1 + s.rng.Intn(3) {
		s.nextVal++
		rs = append(rs, rec{epoch: l.Epoch(), val: s.nextVal})
	}
	if err := n.log.append(int64(len(n.log.recs)), rs); err != nil {
		s.fail("node %d: %v", n.id, err)
	}
}

// checkHasCommitted asserts n's durable log holds every committed record.
func (s *sim) checkHasCommitted(n *node, what string) {
	if n.log.durable < len(s.committed) {
		s.fail("node %d %s with %d durable records, %d committed", n.id, what, n.log.durable, len(s.committed))
		return
	}
	for o, r := range s.committed {
		if n.log.recs[o] != r {
			s.fail("node %d %s with %+v at %d, committed %+v", n.id, what, n.log.recs[o], o, r)
			return
		}
	}
}

func voterIDs(vs []caspaxos.Voter) []int32 {
	ids := make([]int32, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return ids
}
