package ctrlquorum

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"slices"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
)

// Node is one voter's takeover and lease logic. It is a pure state
// machine: every call takes the local monotonic time and returns a Ready;
// it never reads a clock, sleeps, sends or starts a goroutine.
type Node struct {
	cfg Config
	now time.Duration // latest time passed in (never goes back)
	// started is the time of the first call (ticked tells it is set): a
	// bootstrap's line counts from it.
	started time.Duration
	ticked  bool

	// The register as last read or written.
	reg   caspaxos.Register
	known bool
	// seenAt is when (epoch, active, lease) of reg was first seen; a
	// takeover is due TakeoverTimeout (plus a random backoff) later.
	seenAt time.Duration
	// lineFrom is when the first voter in line may take over: seenAt
	// plus the takeover timeout, or seenAt when nobody leads the epoch.
	lineFrom   time.Duration
	takeoverAt time.Duration

	// Active controller state.
	active     bool
	epoch      int32         // the epoch this voter is active in
	leaseStart time.Duration // when the last successful renewal (or the takeover) was proposed
	nextRenew  time.Duration
	// retired is the highest epoch this voter stepped down from: it never
	// acts in it again, even if the register still names it.
	retired int32
	// heard is the highest epoch ObserveEpoch reported, at heardAt. Any
	// round that starts after it reads that epoch, as a controller acts
	// only in a chosen epoch; one that does not clears it as bogus.
	heard   int32
	heardAt time.Duration

	inflight   *flight
	lastID     uint64
	nextRead   time.Duration
	pendingISR *ISRRequest
	lastErr    error
	fatal      error

	out Ready
}

// flight is the proposal in flight.
type flight struct {
	Proposal
	at        time.Duration
	seenLease uint64         // takeover: the lease seen stalled; renewal: the lease renewed from
	nonce     uint64         // takeover: where the new epoch's lease starts
	isr       *ISRRequest    // KindISR
	deposed   caspaxos.Voter // takeover: the active controller seen stalled
}

// New returns a Node that has read nothing yet; its first Tick proposes a
// bootstrap (if configured) or a read.
func New(cfg Config) (*Node, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	return &Node{cfg: cfg}, nil
}

// Tick advances the local clock: it expires a lapsed lease, renews, reads
// and takes over when due.
func (n *Node) Tick(now time.Duration) Ready {
	n.advance(now)
	return n.step()
}

// ProposalDone hands the Node the Result of the Proposal with id. Results
// of proposals it cancelled or no longer waits for are ignored.
func (n *Node) ProposalDone(now time.Duration, id uint64, res caspaxos.Result) Ready {
	n.advance(now)
	f := n.inflight
	if f == nil || f.ID != id {
		return n.step()
	}
	n.inflight = nil
	n.lastErr = res.Err
	var reg caspaxos.Register
	if err := reg.UnmarshalBinary(res.Value); err != nil {
		// A value this version cannot decode: a newer peer wrote it, or
		// the disk is damaged. Acting on a guess would be worse.
		n.fail(fmt.Errorf("ctrlquorum: decode register after %s: %w", f.Kind, err))
		return n.flush()
	}
	n.observe(reg)
	if f.at >= n.heardAt {
		n.heard = 0
	}
	switch f.Kind {
	case KindBootstrap:
		if errors.Is(res.Err, caspaxos.ErrClusterID) {
			n.fail(fmt.Errorf("ctrlquorum: bootstrap: %w", res.Err))
		}
	case KindTakeover:
		n.takeoverDone(f, reg, res)
	case KindRenew:
		// An indeterminate renewal whose value shows the lease moved on
		// from where it started applied: only this controller renews in
		// its epoch, one renewal at a time, and an attempt of an earlier
		// round cannot be chosen once a later round finished. Readers
		// writing values back make this common under contention.
		applied := res.Err == nil || (errors.Is(res.Err, caspaxos.ErrIndeterminate) &&
			reg.Epoch == f.Epoch && reg.Active == n.cfg.Self && reg.Lease == f.seenLease+1)
		if n.activeIn(f.Epoch) && applied {
			n.leaseStart = f.at
			n.nextRenew = f.at + n.cfg.Lease/3
			n.announce()
		}
		// Otherwise the register was re-read: a deposed controller has
		// stepped down in observe, and one that is still active renews
		// again at once from the lease it now knows (nextRenew passed).
	case KindISR:
		n.isrDone(f, reg, res)
	}
	if !n.active {
		n.nextRead = n.now + n.readInterval()
	}
	return n.step()
}

// Observe hands the Node a register value another voter announced
// (Ready.Announce): a value a round chose, received after it was chosen.
// It counts as a read, and the next read waits for the next announcement
// (a renewal interval) plus ReadInterval; a value of another cluster is
// ignored. The takeover timer is liveness only, and the
// takeover's compare-and-set checks the lease again.
func (n *Node) Observe(now time.Duration, reg caspaxos.Register) Ready {
	n.advance(now)
	if n.fatal == nil && n.ours(reg) && n.observe(reg.Clone()) {
		if !n.active {
			// The next announcement is due a renewal interval from now;
			// read only if it does not come.
			n.nextRead = max(n.nextRead, n.now+n.cfg.Lease/3+n.cfg.ReadInterval)
		}
	}
	return n.step()
}

// ours reports whether an announced value is of this voter's cluster: the
// one read before, or, before any read, the one it is to bootstrap when
// the value names this very incarnation a voter (a voter waiting in line
// to bootstrap learns the first one's value so; a wiped voter, whose new
// incarnation no value names, still learns nothing it did not read).
func (n *Node) ours(reg caspaxos.Register) bool {
	if reg.ClusterID == "" {
		return false
	}
	if n.known {
		return reg.ClusterID == n.reg.ClusterID
	}
	return n.cfg.Bootstrap != nil && reg.ClusterID == n.cfg.Bootstrap.ClusterID && reg.IsVoter(n.cfg.Self)
}

// ObserveEpoch reports a controller epoch learnt elsewhere (the metadata
// log, a peer's answer). A higher epoch than this voter's deposes it at
// once, and the Node reads the register next.
func (n *Node) ObserveEpoch(now time.Duration, epoch int32) Ready {
	n.advance(now)
	if epoch > n.reg.Epoch {
		n.heard, n.heardAt = max(n.heard, epoch), n.now
		if n.active && epoch > n.epoch {
			n.stepDown(fmt.Sprintf("epoch %d observed", epoch))
		}
		n.nextRead = n.now
	}
	return n.step()
}

// RequestISR asks for a metadata ISR change, proposed as a register
// compare-and-set; its ISRResult comes in a later Ready. It fails at once
// if this voter is not the active controller in req.Epoch, or another
// change is pending.
func (n *Node) RequestISR(now time.Duration, req ISRRequest) (Ready, error) {
	n.advance(now)
	rd := n.step() // a lapsed lease stepped down in advance
	if _, ok := n.Active(n.now); !ok || req.Epoch != n.epoch {
		return rd, fmt.Errorf("%w in epoch %d (register epoch %d)", ErrNotActive, req.Epoch, n.reg.Epoch)
	}
	if n.pendingISR != nil || (n.inflight != nil && n.inflight.Kind == KindISR) {
		return rd, ErrBusy
	}
	req.ISR = slices.Clone(req.ISR)
	n.pendingISR = &req
	more := n.step()
	return merge(rd, more), nil
}

// Active reports the epoch this voter is the active controller in, if its
// lease has not run out at now. A caller checks it before acting as
// controller; it is exact even before the next Tick.
func (n *Node) Active(now time.Duration) (int32, bool) {
	if !n.active || now >= n.leaseStart+n.cfg.Lease {
		return 0, false
	}
	return n.epoch, true
}

// Register returns the register as last read or written.
func (n *Node) Register() caspaxos.Register { return n.reg.Clone() }

// Leader returns the active controller the register names.
func (n *Node) Leader() Leader { return Leader{Epoch: n.reg.Epoch, Active: n.reg.Active} }

// Status is a Node's state, for DescribeQuorum and logs.
type Status struct {
	Active   bool
	Epoch    int32 // active epoch, when Active
	InFlight Kind  // 0 when no proposal is in flight
	LastErr  error // the last proposal's Result.Err
	Err      error // fatal
}

// Status returns the Node's state.
func (n *Node) Status() Status {
	s := Status{Active: n.active, Epoch: n.epoch, LastErr: n.lastErr, Err: n.fatal}
	if n.inflight != nil {
		s.InFlight = n.inflight.Kind
	}
	return s
}

// advance moves the clock to now and, before the call does anything else,
// steps a controller whose lease ran out down: a voter resumed from a
// pause hears of it first, whatever woke it.
func (n *Node) advance(now time.Duration) {
	n.now = max(n.now, now)
	if !n.ticked {
		n.started, n.ticked = n.now, true
	}
	if n.active && n.now >= n.leaseStart+n.cfg.Lease {
		n.stepDown("lease expired")
	}
}

// activeIn reports whether this voter is active in epoch (lease aside).
func (n *Node) activeIn(epoch int32) bool { return n.active && n.epoch == epoch }

// observe takes in a register value read, written or announced. A value
// older than one already seen (epoch, or lease or config version in the
// same epoch) is stale and ignored (false): only announcements arrive out
// of order.
func (n *Node) observe(reg caspaxos.Register) bool {
	if n.known && (reg.Epoch < n.reg.Epoch || (reg.Epoch == n.reg.Epoch &&
		(reg.Lease < n.reg.Lease || reg.ConfigVersion < n.reg.ConfigVersion))) {
		return false // an announcement overtaken by a newer value
	}
	moved := !n.known || reg.Epoch != n.reg.Epoch || reg.Active != n.reg.Active || reg.Lease != n.reg.Lease
	if !n.known || !reflect.DeepEqual(reg, n.reg) {
		c := reg.Clone()
		n.out.Register = &c
	}
	n.reg, n.known = reg, true
	if n.active && (reg.Epoch != n.epoch || reg.Active != n.cfg.Self) {
		n.stepDown(fmt.Sprintf("deposed: register at epoch %d with active %s", reg.Epoch, reg.Active))
	}
	if moved {
		n.rearm()
	}
	return true
}

// rearm restarts the takeover timer from now: a stalled lease is due after
// TakeoverTimeout; a register with no active controller (just
// bootstrapped), or one naming this voter in an epoch it does not lead
// (it restarted, stepped down, or cannot tell whether its takeover was
// its own), at once, since nobody leads that epoch; all plus a random
// backoff.
func (n *Node) rearm() {
	n.seenAt = n.now
	wait := n.cfg.TakeoverTimeout
	if n.reg.Active.IsZero() || (n.reg.Active == n.cfg.Self && !n.activeIn(n.reg.Epoch)) {
		wait = 0
	}
	n.lineFrom = n.seenAt + wait
	n.takeoverAt = n.lineFrom + time.Duration(n.takeoverRank())*n.rankStep() + n.backoff()
}

// takeoverRank is this voter's place in line to take over: the number of
// voters that may take over too and come before it, by voter id (the
// metadata ISR's members, without the active controller that stalled). A
// voter that takes over from itself is first. Without a line, the voters
// that saw the same stall proposed within a random backoff of each other,
// and on a machine whose fsyncs take a good part of that backoff, their
// rounds overlapped and both failed, again and again: measured, one
// failover in five took a second or more longer. The line keeps safety
// where it is (the register's compare-and-set); it only decides who tries
// first, and the next in line still takes over if the first cannot.
func (n *Node) takeoverRank() int {
	if n.reg.Active == n.cfg.Self {
		return 0
	}
	rank := 0
	for _, v := range n.reg.ISR {
		if v.ID < n.cfg.Self.ID && v.ID != n.reg.Active.ID {
			rank++
		}
	}
	return rank
}

// rankStep separates the takeovers of voters next to each other in line:
// two backoffs, so that the first's round has a whole backoff to finish
// and announce its value before the next one's timer runs out.
func (n *Node) rankStep() time.Duration { return 2 * n.cfg.MaxBackoff }

// readInterval is ReadInterval for a voter that may take over, and four
// times that for one that may not (outside the ISR, a wiped voter): it
// has no takeover timer to feed, only the controller's name to learn,
// and its reads would collide with the rounds of those that matter.
func (n *Node) readInterval() time.Duration {
	if n.reg.ClusterID != "" && !n.reg.InISR(n.cfg.Self) {
		return 4 * n.cfg.ReadInterval
	}
	return n.cfg.ReadInterval
}

// nonce draws the lease a takeover starts its epoch at: from Rand if set
// (so runs replay), else from the process's random source. Either way it
// must not repeat across the voter's lives, which 64 random bits ensure.
func (n *Node) nonce() uint64 {
	if n.cfg.Rand != nil {
		return uint64(n.cfg.Rand(math.MaxInt64))
	}
	return rand.Uint64()
}

// backoff is a random delay in [0, MaxBackoff), so that voters that saw
// the same stall do not all propose at once.
func (n *Node) backoff() time.Duration {
	if n.cfg.Rand == nil {
		return 0
	}
	return time.Duration(n.cfg.Rand(int64(n.cfg.MaxBackoff)))
}

// takeoverDone makes this voter active if its takeover won, with a lease
// counted from when the takeover was proposed. The takeover's value is its
// own (caspaxos.TakeoverNonce: the new epoch's lease starts at a nonce
// drawn for this proposal), so finding it in the register, even after an
// indeterminate round, means it was first chosen after the proposal
// started, and every other voter's timer started later still. The
// register showing this voter active with another lease is an earlier
// takeover of its own (cancelled, or from a previous life) that others
// may have watched stall for long: this voter does not lead on it, and
// takes over from itself (see rearm). Nor does it lead on a takeover that
// took a whole lease, whose lease has run out already.
func (n *Node) takeoverDone(f *flight, reg caspaxos.Register, res caspaxos.Result) {
	won := reg.Epoch == f.Epoch+1 && reg.Active == n.cfg.Self && reg.Lease == f.nonce &&
		(res.Err == nil || errors.Is(res.Err, caspaxos.ErrIndeterminate))
	if !won || f.Epoch+1 <= n.retired || n.now >= f.at+n.cfg.Lease {
		// Lost, refused or too late. If the register did not move (the
		// round was indeterminate, or this voter left the ISR) the timer
		// has run out already: back off before trying again rather than
		// spin rounds against the other voters.
		n.takeoverAt = max(n.takeoverAt, n.now+n.backoff()+n.cfg.ReadInterval)
		return
	}
	n.active, n.epoch = true, reg.Epoch
	n.leaseStart = f.at
	n.nextRenew = f.at + n.cfg.Lease/3
	t := Transition{Active: true, Epoch: n.epoch, Register: reg.Clone()}
	if f.deposed != n.cfg.Self {
		t.Deposed = f.deposed
	}
	n.out.Transitions = append(n.out.Transitions, t)
	n.announce()
}

func (n *Node) announce() {
	c := n.reg.Clone()
	n.out.Announce = &c
}

func (n *Node) isrDone(f *flight, reg caspaxos.Register, res caspaxos.Result) {
	req := *f.isr
	err := res.Err
	// An indeterminate result that shows exactly this change applied it:
	// only this epoch's controller changes the configuration, one change
	// at a time.
	if errors.Is(err, caspaxos.ErrIndeterminate) && reg.Epoch == req.Epoch &&
		reg.ConfigVersion == req.ConfigVersion+1 && slices.Equal(reg.ISR, req.ISR) {
		err = nil
	}
	n.out.ISRResults = append(n.out.ISRResults, ISRResult{Request: req, Register: reg.Clone(), Err: err})
}

// stepDown stops acting as controller, at once: the transition goes out
// first, a renewal or ISR change in flight is abandoned, and a pending ISR
// change fails. The register still names it, so it may take over from
// itself into a new epoch (see rearm), unless another voter does first.
func (n *Node) stepDown(reason string) {
	if !n.active {
		return
	}
	n.active = false
	n.retired = max(n.retired, n.epoch)
	n.out.Transitions = append(n.out.Transitions, Transition{Epoch: n.epoch, Register: n.reg.Clone(), Reason: reason})
	if f := n.inflight; f != nil && (f.Kind == KindRenew || f.Kind == KindISR) {
		n.out.Cancel = true
		n.inflight = nil
		if f.isr != nil {
			n.out.ISRResults = append(n.out.ISRResults, ISRResult{Request: *f.isr, Register: n.reg.Clone(), Err: ErrCancelled})
		}
	}
	if r := n.pendingISR; r != nil {
		n.out.ISRResults = append(n.out.ISRResults, ISRResult{Request: *r, Register: n.reg.Clone(),
			Err: fmt.Errorf("%w: stepped down from epoch %d", ErrNotActive, n.epoch)})
		n.pendingISR = nil
	}
	n.nextRead = n.now
	n.rearm()
}

func (n *Node) fail(err error) {
	n.stepDown("fatal: " + err.Error())
	n.fatal = err
	n.out.Err = err
}

// step gives up a takeover too late to lead with, starts the next proposal
// if none is in flight, and returns what accumulated.
func (n *Node) step() Ready {
	if n.fatal != nil {
		return n.flush()
	}
	if f := n.inflight; f != nil && f.Kind == KindTakeover && n.now >= f.at+n.cfg.Lease {
		// Too late to lead with (see takeoverDone): read instead.
		n.out.Cancel = true
		n.inflight = nil
	}
	if n.inflight == nil {
		n.propose()
	}
	return n.flush()
}

func (n *Node) propose() {
	c := n.cfg
	switch {
	case c.Bootstrap != nil && n.reg.ClusterID == "" && n.now < n.bootstrapAt():
		// Waiting in line to bootstrap: even a read is a round that
		// would collide with the first voter's.
	case c.Bootstrap != nil && n.reg.ClusterID == "" && (!n.known || n.now >= n.nextRead):
		// Until a bootstrapped value is seen: a bootstrap round can end
		// indeterminate, having written back the empty register.
		n.start(&flight{Proposal: Proposal{Kind: KindBootstrap,
			Change: caspaxos.Bootstrap(c.Bootstrap.ClusterID, c.Bootstrap.Voters, c.Bootstrap.MetaMinISR)}})
	case !n.known:
		n.start(&flight{Proposal: Proposal{Kind: KindRead, Change: caspaxos.Read}})
	case n.active && n.now >= n.nextRenew:
		n.start(&flight{Proposal: Proposal{Kind: KindRenew, Epoch: n.epoch,
			Change: caspaxos.Renew(n.epoch, c.Self, n.reg.Lease)}, seenLease: n.reg.Lease})
	case n.active && n.pendingISR != nil:
		r := n.pendingISR
		n.pendingISR = nil
		ch := caspaxos.ShrinkISR(r.Epoch, r.ConfigVersion, r.ISR)
		if !subset(r.ISR, n.reg.ISR) {
			ch = caspaxos.ExpandISR(r.Epoch, r.ConfigVersion, r.ISR)
		}
		n.start(&flight{Proposal: Proposal{Kind: KindISR, Epoch: r.Epoch, Change: ch}, isr: r})
	case n.active:
	case n.canTakeOver() && n.now >= n.takeoverAt:
		nonce := n.nonce()
		n.start(&flight{Proposal: Proposal{Kind: KindTakeover, Epoch: n.reg.Epoch,
			Change: caspaxos.TakeoverNonce(n.reg.Epoch, n.reg.Lease, c.Self, nonce)}, seenLease: n.reg.Lease, nonce: nonce,
			deposed: n.reg.Active})
	case n.now >= n.nextRead && !n.waitingInLine():
		n.start(&flight{Proposal: Proposal{Kind: KindRead, Change: caspaxos.Read}})
	}
}

// bootstrapAt is when this voter first proposes the bootstrap: at once
// for the lowest voter id of the bootstrap set, each next one a rankStep
// later (the takeover line's spacing), counted from its first tick. All
// voters proposing the same value at once made their rounds collide and
// end indeterminate for a second or two on a new cluster; the next in
// line still bootstraps if the first is not up.
func (n *Node) bootstrapAt() time.Duration {
	rank := 0
	for _, m := range n.cfg.Bootstrap.Voters {
		if m.Voter.ID < n.cfg.Self.ID {
			rank++
		}
	}
	return n.started + time.Duration(rank)*n.rankStep()
}

// waitingInLine: the lease has stalled for nearly the takeover timeout
// (or nobody leads the epoch) and a voter before this one in line is due
// to take over. A read is a full round; made now it would only collide
// with that takeover's round and make it end indeterminate (measured: a
// failover half a second longer per collision). The wait starts two read
// intervals before the first in line may act, as the voters saw the last
// renewal up to a read interval apart. The new controller's announcement,
// or this voter's own turn, ends it; a lease that did move meanwhile
// costs this voter one refused takeover round at its turn.
func (n *Node) waitingInLine() bool {
	from := max(n.seenAt, n.lineFrom-2*n.cfg.ReadInterval)
	return n.canTakeOver() && n.reg.Active != n.cfg.Self && n.takeoverRank() > 0 &&
		n.now >= from && n.now < n.takeoverAt
}

// canTakeOver: only a voter in the metadata ISR, by exact incarnation,
// holds every committed metadata record, and only a bootstrapped register
// is taken over (caspaxos.Takeover's single-voter form is not for a
// quorum); a register older than an epoch heard of is read first.
func (n *Node) canTakeOver() bool {
	return n.reg.ClusterID != "" && n.reg.InISR(n.cfg.Self) && n.reg.Epoch >= n.heard
}

func (n *Node) start(f *flight) {
	n.lastID++
	f.ID = n.lastID
	f.at = n.now
	n.inflight = f
	p := f.Proposal
	n.out.Propose = &p
}

func (n *Node) flush() Ready {
	rd := n.out
	n.out = Ready{}
	return rd
}

func subset(a, b []caspaxos.Voter) bool {
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

// merge appends b's outputs to a's: a came first.
func merge(a, b Ready) Ready {
	a.Transitions = append(a.Transitions, b.Transitions...)
	a.Cancel = a.Cancel || b.Cancel
	if b.Propose != nil {
		a.Propose = b.Propose
	}
	a.ISRResults = append(a.ISRResults, b.ISRResults...)
	if b.Register != nil {
		a.Register = b.Register
	}
	if b.Announce != nil {
		a.Announce = b.Announce
	}
	if b.Err != nil {
		a.Err = b.Err
	}
	return a
}
