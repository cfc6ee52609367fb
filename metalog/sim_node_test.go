package metalog

import (
	"errors"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/isr"
)

// node is one simulated process: a voter (ids 1–3) or a broker observing
// the log (ids 4–5). Only log and hw survive a crash (both are fsynced).
type node struct {
	id       int32
	voter    Voter // zero for a broker
	observer bool
	up       bool
	log      memLog
	hw       int64
	applied  int64 // brokers: records applied to the image, in order
	view     Config
	seen     bool // view was read from the register since the start
	lead     *Leader
	fol      *Follower
	syncing  bool  // fetched records appended, fsync pending
	leaderHW int64 // the leader's HW that came with them
	fetchAt  int64 // when the fetch in flight was sent; -1 none
	casAt    int64 // when the ISR change in flight was sent; -1 none
	// lastHeard is the last answer from the followed controller, on this
	// node's clock: a voter takes over when it stalls.
	lastHeard  int64
	takeoverAt int64
	// rate and offset make this node's monotonic clock drift from the
	// simulation's: timers and the state machines run on it.
	rate   float64
	offset int64
	// boot counts restarts: an answer to a request of an earlier boot is
	// not delivered (its connection died with the process).
	boot int
}

func newNode(id int32, observer bool) *node {
	n := &node{id: id, observer: observer, up: true, fetchAt: -1, casAt: -1, takeoverAt: -1 << 40}
	if !observer {
		n.voter = Voter{ID: id, Incarnation: caspaxos.Incarnation{byte(id), 0xaa}}
	}
	return n
}

type fetchMsg struct {
	voter    Voter
	observer bool
	req      isr.FetchRequest
}

type fetchReply struct {
	req  isr.FetchRequest
	resp Response
	recs []rec
}

type regOp int

const (
	opRead regOp = iota
	opCAS
	opTakeover
)

type regMsg struct {
	op     regOp
	change ISRChange
	seen   int32
	me     Voter
	cfg    Config // answers
	err    error  // answers
}

// msg is one message in flight; exactly one payload is set. Node 0 is the
// register.
type msg struct {
	from, to int32
	at       int64
	// fromBoot is the sender's boot; toBoot, for an answer, the boot of
	// the requester it must reach.
	fromBoot, toBoot int
	fetch            *fetchMsg
	reply            *fetchReply
	reg              *regMsg
	regReply         *regMsg
}

// setHW records a node's new high watermark, which must never go back.
func (s *sim) setHW(n *node, hw int64) {
	if hw < n.hw {
		s.failf("node %d: high watermark %d after %d", n.id, hw, n.hw)
	}
	n.hw = hw
	for n.observer && n.applied < n.hw {
		o := n.applied
		if o >= int64(len(s.committed)) || n.log.recs[o] != s.committed[o] {
			s.failf("broker %d applies %+v at %d, not committed (%d committed)", n.id, n.log.recs[o], o, len(s.committed))
			return
		}
		n.applied++
	}
}

// drain acts on the leader's Ready.
func (s *sim) drain(n *node) {
	l := n.lead
	rd := l.Ready()
	if rd.HighWatermarkAdvanced {
		for o := int64(len(s.committed)); o < rd.HighWatermark; o++ {
			s.committed = append(s.committed, n.log.recs[o])
		}
		s.tracef("node %d epoch %d commits to %d", n.id, l.Epoch(), rd.HighWatermark)
	}
	s.setHW(n, l.HighWatermark())
	if rd.Proposal != nil {
		s.tracef("node %d proposes ISR %v at version %d", n.id, voterIDs(rd.Proposal.ISR), rd.Proposal.Version)
		s.send(n.id, 0, msg{reg: &regMsg{op: opCAS, change: *rd.Proposal, me: n.voter}})
		n.casAt = s.clock(n)
	}
	if rd.Deposed {
		s.stepDown(n)
	}
}

// stepDown drops a deposed leader's state and its unsynced tail (never
// served, never acknowledged) and follows what the register says next.
func (s *sim) stepDown(n *node) {
	s.tracef("node %d steps down from epoch %d", n.id, n.lead.Epoch())
	s.cover("a deposed leader steps down")
	n.lead, n.casAt = nil, -1
	n.log.crash()
	s.follow(n, false)
	s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
}

// follow points a node's Follower at its view of the register.
func (s *sim) follow(n *node, newer bool) {
	c := n.view
	if c.Active.IsZero() || c.Active == n.voter {
		return
	}
	if newer {
		n.lastHeard = s.clock(n)
	}
	if n.fol == nil {
		if n.observer {
			n.fol = NewObserver(c.Active, c.Epoch, n.log.local(n.hw))
		} else {
			n.fol = NewFollower(c.Active, c.Epoch, n.log.local(n.hw))
		}
		n.fetchAt = -1
		return
	}
	if n.fol.SetLeader(c.Active, c.Epoch, n.log.local(n.hw)) {
		n.fetchAt = -1
	}
}

// onView handles a register value a node read or got back.
func (s *sim) onView(n *node, c Config) {
	if c.Epoch < n.view.Epoch || (c.Epoch == n.view.Epoch && c.Version < n.view.Version) {
		return
	}
	newer := c.Epoch > n.view.Epoch
	n.view, n.seen = c, true
	if n.lead != nil {
		if err := n.lead.ApplyRegister(c, s.clock(n)); err != nil && !errors.Is(err, ErrDeposed) {
			s.failf("node %d: %v", n.id, err)
		}
		s.drain(n)
		return
	}
	s.follow(n, newer)
}

// onFetch answers a fetch at n, as the leader's caller would: durable
// records only, up to the log end for a voter and the HW for a broker.
func (s *sim) onFetch(n *node, from int32, boot int, f *fetchMsg) {
	out := &fetchReply{req: f.req}
	l := n.lead
	if l == nil {
		out.resp.Err = kerr.NotLeaderForPartition
		s.send(n.id, from, msg{reply: out, toBoot: boot})
		return
	}
	end := n.log.durableEnd()
	var (
		div    *isr.EpochEndOffset
		err    error
		readTo = end
	)
	if f.observer {
		readTo, div, err = l.FetchObserver(ObserverFetch{CurrentEpoch: f.req.CurrentLeaderEpoch, FetchOffset: f.req.FetchOffset,
			LastFetchedEpoch: f.req.LastFetchedEpoch, LeaderLogEndOffset: end}, n.log.lookup())
		if div != nil {
			s.failf("broker %d diverges from leader %d: %+v", from, n.id, *div)
		}
	} else {
		div, err = l.Fetch(VoterFetch{Voter: f.voter, CurrentEpoch: f.req.CurrentLeaderEpoch, FetchOffset: f.req.FetchOffset,
			LastFetchedEpoch: f.req.LastFetchedEpoch, LeaderLogEndOffset: end}, n.log.lookup(), s.clock(n))
	}
	out.resp = Response{Epoch: l.Epoch(), Err: err, Diverging: div, HighWatermark: l.HighWatermark()}
	if err == nil && div == nil {
		to := min(readTo, f.req.FetchOffset+int64(1+s.rng.IntN(30)))
		out.recs = append([]rec(nil), n.log.recs[f.req.FetchOffset:to]...)
	}
	s.drain(n)
	s.send(n.id, from, msg{reply: out, toBoot: boot})
}

// onReply handles the answer to a fetch.
func (s *sim) onReply(n *node, r *fetchReply) {
	if n.fol == nil {
		return
	}
	_, epoch := n.fol.Leader()
	a, err := n.fol.HandleResponse(r.req, r.resp, n.log.entries(), s.local(n))
	if err != nil {
		s.failf("node %d: %v", n.id, err)
		return
	}
	if a.Kind != isr.ActIgnore {
		n.fetchAt = -1
	}
	switch a.Kind {
	case isr.ActAppend:
		if r.resp.Epoch == epoch {
			n.lastHeard = s.clock(n)
		}
		if err := n.log.append(r.req.FetchOffset, r.recs); err != nil {
			s.failf("node %d: %v", n.id, err)
			return
		}
		n.syncing, n.leaderHW = true, r.resp.HighWatermark
		if len(r.recs) == 0 || s.bugUnsynced {
			s.appended(n)
		}
	case isr.ActTruncate:
		s.tracef("node %d truncates to %d", n.id, a.Truncation.Offset)
		if a.Truncation.Offset < int64(len(n.log.recs)) {
			s.cover("a voter truncates a divergent suffix")
		}
		n.log.truncate(a.Truncation.Offset)
		if err := n.fol.Truncated(s.local(n)); err != nil {
			s.failf("node %d: %v", n.id, err)
		}
	case isr.ActWait:
		s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
	case isr.ActReset:
		s.cover("a follower is told to reset")
	}
}

// local is the log a Follower is told about: the durable one, or with the
// planted bug the whole log, fsynced or not.
func (s *sim) local(n *node) isr.LocalLog {
	if !s.bugUnsynced {
		return n.log.local(n.hw)
	}
	return isr.LocalLog{LogEndOffset: int64(len(n.log.recs)), HighWatermark: n.hw, LatestEpoch: n.log.latestEpoch()}
}

// appended tells the Follower its fetched records are durable (the planted
// bug tells it before the fsync).
func (s *sim) appended(n *node) {
	n.syncing = false
	s.setHW(n, n.fol.Appended(s.local(n), n.leaderHW))
}

// fsync makes a node's log durable and tells whoever waits for it.
func (s *sim) fsync(n *node) {
	n.log.fsync()
	switch {
	case n.lead != nil:
		n.lead.Append(n.log.durableEnd(), s.clock(n))
		s.drain(n)
	case n.syncing && n.fol != nil:
		s.appended(n)
	}
}

// onRegReply handles the register's answer at n.
func (s *sim) onRegReply(n *node, r *regMsg) {
	switch r.op {
	case opRead:
		s.onView(n, r.cfg)
	case opCAS:
		if n.lead == nil || n.lead.Epoch() != r.change.Epoch {
			return
		}
		n.casAt = -1
		before := len(n.lead.ISR())
		out, err := n.lead.HandleISRResult(r.change.ID, ISRResult{Err: r.err, Register: r.cfg}, s.clock(n))
		if err != nil {
			s.failf("node %d: %v", n.id, err)
		}
		s.tracef("node %d ISR change %d: %v (%v)", n.id, r.change.ID, out, r.err)
		s.cover(fmt.Sprintf("ISR change outcome %d", out))
		if out == OutcomeCommitted {
			if len(r.cfg.ISR) < before {
				s.cover("an ISR shrink commits")
			} else {
				s.cover("an ISR expansion commits")
			}
		}
		if out == OutcomeReadRegister {
			s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
		}
		s.drain(n)
	case opTakeover:
		if r.err != nil {
			s.onView(n, r.cfg)
			return
		}
		if n.lead != nil && n.lead.Epoch() >= r.cfg.Epoch || n.view.Epoch > r.cfg.Epoch {
			return
		}
		n.view, n.seen = r.cfg, true
		s.becomeLeader(n)
	}
}

// becomeLeader runs the caller's side of a won takeover: fsync, cache
// (epoch, log end), build the Leader.
func (s *sim) becomeLeader(n *node) {
	n.lead, n.casAt = nil, -1 // an older epoch's, superseded
	if n.syncing && n.fol != nil {
		n.log.fsync()
		s.appended(n)
	}
	n.fol, n.syncing, n.fetchAt = nil, false, -1
	c := n.view
	if prev, ok := s.leaders[c.Epoch]; ok {
		s.failf("epoch %d led by %d and %d", c.Epoch, prev, n.id)
		return
	}
	s.leaders[c.Epoch] = n.id
	if err := n.log.takeover(c.Epoch); err != nil {
		s.failf("node %d: %v", n.id, err)
		return
	}
	s.checkHasCommitted(n, "takes over")
	l, err := NewLeader(LeaderConfig{Self: n.voter, Register: c, MinISR: s.minISR, LagTimeMaxMs: simLagMs,
		LogEndOffset: n.log.durableEnd(), HighWatermark: n.hw}, s.clock(n))
	if err != nil {
		s.failf("node %d: %v", n.id, err)
		return
	}
	s.tracef("node %d leads epoch %d from %d, ISR %v", n.id, c.Epoch, n.log.durableEnd(), voterIDs(c.ISR))
	n.lead = l
	s.drain(n)
}

// onRegister runs an operation on the register cell, atomically.
func (s *sim) onRegister(from int32, boot int, r *regMsg) {
	out := *r
	switch r.op {
	case opRead:
		out.cfg = cloneConfig(s.reg.c)
	case opCAS:
		if c := s.reg.c; c.Epoch == r.change.Epoch && c.Version == r.change.Version {
			grows := len(r.change.ISR) > len(c.ISR)
			within := grows && isSubset(c.ISR, r.change.ISR) || !grows && isSubset(r.change.ISR, c.ISR)
			if grows != r.change.Expand || !within {
				s.failf("ISR change %+v from ISR %v: neither an expansion nor a shrink as flagged", r.change, voterIDs(c.ISR))
			}
		}
		out.cfg, out.err = s.reg.cas(r.change)
	case opTakeover:
		out.cfg, out.err = s.reg.takeover(r.seen, r.me)
		if out.err == nil {
			s.tracef("register: %d takes over epoch %d", r.me.ID, out.cfg.Epoch)
		}
	}
	s.send(0, from, msg{regReply: &out, toBoot: boot})
}

func isSubset(a, b []Voter) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func voterIDs(vs []Voter) []int32 {
	ids := make([]int32, len(vs))
	for i, v := range vs {
		ids[i] = v.ID
	}
	return ids
}

// checkHasCommitted asserts n's durable log holds every committed record.
func (s *sim) checkHasCommitted(n *node, what string) {
	if n.log.durable < len(s.committed) {
		s.failf("node %d %s with %d durable records, %d committed", n.id, what, n.log.durable, len(s.committed))
		return
	}
	for o, r := range s.committed {
		if n.log.recs[o] != r {
			s.failf("node %d %s with %+v at %d, committed %+v", n.id, what, n.log.recs[o], o, r)
			return
		}
	}
}

func (s *sim) failf(format string, args ...any) {
	if s.err == nil {
		s.err = fmt.Errorf("t=%d: "+format, append([]any{s.now}, args...)...)
	}
}
