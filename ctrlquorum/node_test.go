package ctrlquorum

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
)

const (
	lease   = 900 * time.Millisecond
	timeout = lease * 3 / 2
	readIv  = lease / 4
)

func voter(id int32, inc byte) caspaxos.Voter {
	return caspaxos.Voter{ID: id, Incarnation: caspaxos.Incarnation{inc, 0xc0}}
}

var (
	va, vb, vc = voter(1, 1), voter(2, 1), voter(3, 1)
	members    = []caspaxos.Member{{Voter: va}, {Voter: vb}, {Voter: vc}}
)

func encode(t *testing.T, r caspaxos.Register) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// harness runs one Node against a register held in memory: a proposal
// completes when the test says so, applied as caspaxos would apply it.
type harness struct {
	t       *testing.T
	n       *Node
	reg     []byte
	pending *Proposal
	trans   []Transition
	results []ISRResult
}

func newHarness(t *testing.T, self caspaxos.Voter, reg caspaxos.Register, mod func(*Config)) *harness {
	t.Helper()
	// Rand 0: no backoff, and every takeover's lease starts at 0.
	cfg := Config{Self: self, Lease: lease, Rand: func(int64) int64 { return 0 }}
	if mod != nil {
		mod(&cfg)
	}
	n, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, n: n}
	if reg.ClusterID != "" || reg.Epoch != 0 {
		h.reg = encode(t, reg)
	}
	return h
}

func (h *harness) take(rd Ready) Ready {
	h.t.Helper()
	h.trans = append(h.trans, rd.Transitions...)
	h.results = append(h.results, rd.ISRResults...)
	if rd.Cancel {
		h.pending = nil
	}
	if rd.Propose != nil {
		if h.pending != nil {
			h.t.Fatalf("proposal %v started while %v is in flight", rd.Propose.Kind, h.pending.Kind)
		}
		h.pending = rd.Propose
	}
	return rd
}

func (h *harness) tick(at time.Duration) Ready { h.t.Helper(); return h.take(h.n.Tick(at)) }

// expect checks the proposal in flight is of kind (0: none).
func (h *harness) expect(kind Kind) *Proposal {
	h.t.Helper()
	switch {
	case kind == 0 && h.pending != nil:
		h.t.Fatalf("unexpected %v proposal", h.pending.Kind)
	case kind != 0 && (h.pending == nil || h.pending.Kind != kind):
		h.t.Fatalf("want a %v proposal, have %+v", kind, h.pending)
	}
	return h.pending
}

// complete applies the proposal in flight to the register at time at.
func (h *harness) complete(at time.Duration) Ready {
	h.t.Helper()
	p := h.expect(h.pendingKind())
	next, err := p.Change(h.reg)
	if err != nil {
		next = h.reg
	}
	h.reg = next
	return h.answer(at, caspaxos.Result{Value: next, Err: err})
}

func (h *harness) pendingKind() Kind {
	if h.pending == nil {
		h.t.Fatal("no proposal in flight")
	}
	return h.pending.Kind
}

// answer delivers res for the proposal in flight.
func (h *harness) answer(at time.Duration, res caspaxos.Result) Ready {
	h.t.Helper()
	p := h.pending
	h.pending = nil
	return h.take(h.n.ProposalDone(at, p.ID, res))
}

func (h *harness) set(r caspaxos.Register) { h.reg = encode(h.t, r) }

func (h *harness) current() caspaxos.Register {
	var r caspaxos.Register
	if err := r.UnmarshalBinary(h.reg); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func booted(t *testing.T) caspaxos.Register {
	r, err := caspaxos.BootstrapValue("c1", members, 2)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// activeReg is the register with a active in epoch 3 at lease 5.
func activeReg(t *testing.T, a caspaxos.Voter) caspaxos.Register {
	r := booted(t)
	r.Epoch, r.Active, r.Lease, r.ConfigVersion = 3, a, 5, 4
	return r
}

// makeActive runs a from a fresh start in an unowned epoch-3 register to
// active in epoch 4 at time 0.
func makeActive(t *testing.T) *harness {
	t.Helper()
	r := activeReg(t, vb)
	h := newHarness(t, va, r, nil)
	h.tick(0)
	h.complete(0) // the first read
	h.tick(timeout)
	h.expect(KindTakeover)
	h.complete(timeout)
	if len(h.trans) != 1 || !h.trans[0].Active || h.trans[0].Epoch != 4 {
		t.Fatalf("transitions %+v, want active in epoch 4", h.trans)
	}
	return h
}

func TestBootstrapAndFirstTakeover(t *testing.T) {
	h := newHarness(t, va, caspaxos.Register{}, func(c *Config) {
		c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members, MetaMinISR: 2}
	})
	h.tick(0)
	h.expect(KindBootstrap)
	rd := h.complete(time.Millisecond)
	if rd.Register == nil || rd.Register.ClusterID != "c1" || len(rd.Register.ISR) != 3 {
		t.Fatalf("bootstrap published %+v", rd.Register)
	}
	// No active controller: take over without waiting out a lease.
	h.expect(KindTakeover)
	h.complete(2 * time.Millisecond)
	if e, ok := h.n.Active(2 * time.Millisecond); !ok || e != 1 {
		t.Fatalf("Active = %d, %v; want epoch 1", e, ok)
	}
	if got := h.current(); got.Active != va || got.Epoch != 1 {
		t.Fatalf("register %+v", got)
	}
}

// TestBootstrapInLine: the voters of a new cluster bootstrap in line by
// id, a rank step (two backoffs) apart from their first tick, and a voter
// waiting for its turn makes no round at all; one that sees the register
// bootstrapped meanwhile never proposes it.
func TestBootstrapInLine(t *testing.T) {
	for _, tc := range []struct {
		self caspaxos.Voter
		rank time.Duration
	}{{va, 0}, {vb, 1}, {vc, 2}} {
		h := newHarness(t, tc.self, caspaxos.Register{}, func(c *Config) {
			c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members, MetaMinISR: 2}
			c.MaxBackoff = 100 * time.Millisecond
		})
		start := 5 * time.Second
		due := start + tc.rank*200*time.Millisecond
		for at := start; at < due; at += 10 * time.Millisecond {
			h.tick(at)
			h.expect(0)
		}
		h.tick(due)
		h.expect(KindBootstrap)
	}
	h := newHarness(t, vc, caspaxos.Register{}, func(c *Config) {
		c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members, MetaMinISR: 2}
		c.MaxBackoff = 100 * time.Millisecond
	})
	h.tick(0)
	h.expect(0)
	h.take(h.n.Observe(100*time.Millisecond, booted(t)))
	h.tick(time.Second)
	if h.pending != nil && h.pending.Kind == KindBootstrap {
		t.Fatal("bootstrap proposed after the register was seen bootstrapped")
	}
}

func TestBootstrapRetriedUntilSeen(t *testing.T) {
	h := newHarness(t, va, caspaxos.Register{}, func(c *Config) {
		c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members, MetaMinISR: 2}
	})
	h.tick(0)
	h.expect(KindBootstrap)
	// The round ended indeterminate, writing back the empty register.
	h.answer(0, caspaxos.Result{Err: caspaxos.ErrIndeterminate})
	h.tick(readIv)
	h.expect(KindBootstrap)
	h.complete(readIv)
	if got := h.current(); got.ClusterID != "c1" {
		t.Fatalf("register %+v", got)
	}
}

func TestBootstrapOfAnotherClusterIsFatal(t *testing.T) {
	other := booted(t)
	other.ClusterID = "other"
	h := newHarness(t, va, other, func(c *Config) { c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members} })
	h.tick(0)
	rd := h.complete(0)
	if !errors.Is(rd.Err, caspaxos.ErrClusterID) || rd.Propose != nil {
		t.Fatalf("ready %+v, want a fatal ErrClusterID and no proposal", rd)
	}
	if rd := h.tick(10 * timeout); rd.Propose != nil {
		t.Fatal("a failed node proposed again")
	}
}

func TestRenewalCadence(t *testing.T) {
	h := makeActive(t) // active from timeout
	start := timeout
	for i := 1; i <= 5; i++ {
		due := start + time.Duration(i)*(lease/3)
		h.tick(due - time.Millisecond)
		h.expect(0)
		h.tick(due)
		p := h.expect(KindRenew)
		if p.Epoch != 4 {
			t.Fatalf("renewal in epoch %d", p.Epoch)
		}
		h.complete(due + 2*time.Millisecond)
	}
	if got := h.current(); got.Lease != 5 || got.Epoch != 4 {
		t.Fatalf("register %+v, want lease 5 in epoch 4", got)
	}
	// A renewal that finishes late is followed by the next at once.
	due := start + 6*(lease/3)
	h.tick(due)
	h.complete(due + lease/2)
	h.expect(KindRenew)
}

func TestLeaseExpiryStepsDown(t *testing.T) {
	h := makeActive(t)
	start := timeout
	h.tick(start + lease/3)
	h.expect(KindRenew) // never answered: the network is gone
	if _, ok := h.n.Active(start + lease - 1); !ok {
		t.Fatal("inactive before the lease ran out")
	}
	// Active is exact before any Tick: a voter resumed from a pause
	// checks it before acting.
	if _, ok := h.n.Active(start + lease); ok {
		t.Fatal("still active when the lease ran out")
	}
	rd := h.tick(start + lease)
	if len(rd.Transitions) != 1 || rd.Transitions[0].Active || rd.Transitions[0].Reason != "lease expired" || !rd.Cancel {
		t.Fatalf("ready %+v, want a step-down and the renewal cancelled", rd)
	}
	// It never acts in epoch 4 again, although the register names it:
	// nobody leads epoch 4, so it takes over from itself at once.
	p := h.expect(KindTakeover)
	if p.Epoch != 4 {
		t.Fatalf("takeover from epoch %d", p.Epoch)
	}
	for at := start + lease; at < start+lease+timeout; at += readIv {
		h.tick(at)
		if h.pending != nil {
			if k := h.pending.Kind; (k == KindRenew || k == KindISR) && h.pending.Epoch == 4 {
				t.Fatalf("deposed controller proposed %v in epoch 4", k)
			}
			h.complete(at)
		}
	}
	if e, ok := h.n.Active(start + lease + timeout); !ok || e != 5 {
		t.Fatalf("Active = %d, %v; want epoch 5", e, ok)
	}
}

// A takeover names the controller whose lease it saw stall, so the new
// metadata log leader need not wait for it; none when the register named
// nobody, or this voter itself (a takeover from its own earlier life).
func TestTakeoverNamesTheDeposedController(t *testing.T) {
	h := makeActive(t)
	if got := h.trans[0].Deposed; got != vb {
		t.Fatalf("taking over from %s: Deposed = %s", vb, got)
	}

	h = newHarness(t, va, caspaxos.Register{}, func(c *Config) {
		c.Bootstrap = &Bootstrap{ClusterID: "c1", Voters: members, MetaMinISR: 2}
	})
	h.tick(0)
	h.expect(KindBootstrap)
	h.complete(time.Millisecond)
	h.expect(KindTakeover)
	h.complete(2 * time.Millisecond)
	if len(h.trans) != 1 || !h.trans[0].Active || !h.trans[0].Deposed.IsZero() {
		t.Fatalf("first takeover of a bootstrapped register: transitions %+v, want active and nobody deposed", h.trans)
	}

	h = newHarness(t, va, activeReg(t, va), nil) // restarted: the register names it
	h.tick(0)
	h.complete(0)
	h.expect(KindTakeover)
	h.complete(time.Millisecond)
	if len(h.trans) != 1 || !h.trans[0].Active || !h.trans[0].Deposed.IsZero() {
		t.Fatalf("taking over from itself: transitions %+v, want active and nobody deposed", h.trans)
	}
}

func TestResumedControllerStepsDownBeforeAnythingElse(t *testing.T) {
	// Paused past its lease, the controller wakes to its renewal's
	// success: the lapse comes first, and the late success does not
	// revive it in that epoch.
	h := makeActive(t)
	start := timeout
	h.tick(start + lease/3)
	h.expect(KindRenew)
	late := start + 3*lease
	p := h.pending
	next, err := p.Change(h.reg)
	if err != nil {
		t.Fatal(err)
	}
	rd := h.take(h.n.ProposalDone(late, p.ID, caspaxos.Result{Value: next}))
	if len(rd.Transitions) != 1 || rd.Transitions[0].Active || rd.Transitions[0].Reason != "lease expired" || !rd.Cancel {
		t.Fatalf("ready %+v, want the lapse first", rd)
	}
	if _, ok := h.n.Active(late); ok {
		t.Fatal("a late renewal revived the controller")
	}
	if rd.Propose != nil && (rd.Propose.Kind == KindRenew || rd.Propose.Kind == KindISR) {
		t.Fatalf("proposed %v after the lapse", rd.Propose.Kind)
	}
}

func TestTakeoverOnlyAfterTimeoutOnLocalClock(t *testing.T) {
	h := newHarness(t, vb, activeReg(t, va), nil)
	h.tick(0)
	h.complete(0)
	// Reads see the lease unchanged, then renewed once (at seen): no
	// takeover until the timeout has passed since the renewal was seen.
	seen := 3 * readIv
	for at := readIv; at < seen+timeout; at += readIv {
		if at == seen {
			r := h.current()
			r.Lease++
			h.set(r)
		}
		h.tick(at)
		h.expect(KindRead)
		h.complete(at)
	}
	h.tick(seen + timeout)
	p := h.expect(KindTakeover)
	if p.Epoch != 3 {
		t.Fatalf("takeover from epoch %d", p.Epoch)
	}
	h.complete(seen + timeout)
	if got := h.current(); got.Epoch != 4 || got.Active != vb || got.Lease != 0 {
		t.Fatalf("register %+v", got)
	}
	if e, ok := h.n.Active(seen + timeout); !ok || e != 4 {
		t.Fatal("not active after its takeover succeeded")
	}
}

func TestBackoffIsAddedToTheTimeout(t *testing.T) {
	h := newHarness(t, vb, activeReg(t, va), func(c *Config) {
		c.MaxBackoff = 100 * time.Millisecond
		c.ReadInterval = time.Hour // no reads in the way
		c.Rand = func(n int64) int64 {
			if n != int64(100*time.Millisecond) {
				return 0 // a takeover's nonce
			}
			return int64(40 * time.Millisecond)
		}
	})
	h.tick(0)
	h.complete(0)
	h.tick(timeout + 39*time.Millisecond)
	h.expect(0)
	h.tick(timeout + 40*time.Millisecond)
	h.expect(KindTakeover)
}

// TestTakeoversInLine: voters that see the same stall take over one
// after another, by voter id, two backoffs apart, so their rounds do not
// collide; the active controller that stalled has no place in the line.
func TestTakeoversInLine(t *testing.T) {
	for _, tc := range []struct {
		self caspaxos.Voter
		rank time.Duration
	}{{vb, 0}, {vc, 1}} {
		h := newHarness(t, tc.self, activeReg(t, va), func(c *Config) {
			c.MaxBackoff = 100 * time.Millisecond
			c.ReadInterval = time.Hour // no reads in the way
		})
		h.tick(0)
		h.complete(0)
		due := timeout + tc.rank*200*time.Millisecond
		h.tick(due - time.Millisecond)
		h.expect(0)
		h.tick(due)
		h.expect(KindTakeover)
	}
}

// TestNoReadsWhileWaitingInLine: once the lease has stalled for nearly
// the timeout (two read intervals short of it), a voter second in line
// reads no more (a read is a round that would collide with the first
// one's takeover) until its own turn.
func TestNoReadsWhileWaitingInLine(t *testing.T) {
	h := newHarness(t, vc, activeReg(t, va), func(c *Config) {
		c.MaxBackoff = 100 * time.Millisecond
		c.ReadInterval = 50 * time.Millisecond
	})
	h.tick(0)
	h.complete(0)
	at := time.Duration(0)
	for at+50*time.Millisecond < timeout-100*time.Millisecond {
		at += 50 * time.Millisecond
		h.tick(at)
		h.expect(KindRead) // the lease is watched until near the timeout
		h.complete(at)
	}
	for at = timeout - 100*time.Millisecond; at < timeout+200*time.Millisecond; at += 10 * time.Millisecond {
		h.tick(at)
		h.expect(0)
	}
	h.tick(timeout + 200*time.Millisecond)
	h.expect(KindTakeover)
}

func TestNoTakeoverOutsideTheISR(t *testing.T) {
	wipedB := voter(2, 2) // vb's disk wiped: a new incarnation
	for name, self := range map[string]caspaxos.Voter{"not in the ISR": vc, "wiped voter": wipedB} {
		t.Run(name, func(t *testing.T) {
			r := activeReg(t, va)
			r.ISR = []caspaxos.Voter{va, vb}
			h := newHarness(t, self, r, nil)
			for at := time.Duration(0); at < 10*timeout; at += readIv {
				h.tick(at)
				if h.pending != nil {
					h.expect(KindRead)
					h.complete(at)
				}
			}
			if got := h.current(); got.Epoch != 3 {
				t.Fatalf("register moved to %+v", got)
			}
		})
	}
}

func TestVoterOutsideTheISRReadsLess(t *testing.T) {
	r := activeReg(t, va)
	r.ISR = []caspaxos.Voter{va, vb}
	h := newHarness(t, vc, r, nil)
	h.tick(0)
	h.complete(0)
	h.tick(4*readIv - 1)
	h.expect(0)
	h.tick(4 * readIv)
	h.expect(KindRead)
}

func TestStepDownOnHigherEpoch(t *testing.T) {
	t.Run("renewal refused", func(t *testing.T) {
		h := makeActive(t)
		r := h.current()
		r.Epoch, r.Active, r.Lease = 5, vc, 0
		h.set(r) // vc took over while va was paused
		h.tick(timeout + lease/3)
		h.expect(KindRenew)
		rd := h.complete(timeout + lease/3)
		if len(rd.Transitions) != 1 || rd.Transitions[0].Active || !strings.Contains(rd.Transitions[0].Reason, "deposed") {
			t.Fatalf("ready %+v, want a step-down", rd)
		}
		if _, ok := h.n.Active(timeout + lease/3); ok {
			t.Fatal("still active")
		}
		if l := h.n.Leader(); l.Epoch != 5 || l.Active != vc {
			t.Fatalf("leader %+v", l)
		}
	})
	t.Run("observed elsewhere", func(t *testing.T) {
		h := makeActive(t)
		h.tick(timeout + lease/3)
		h.expect(KindRenew)
		rd := h.take(h.n.ObserveEpoch(timeout+lease/3+1, 3))
		if len(rd.Transitions) != 0 {
			t.Fatal("a lower epoch deposed the controller")
		}
		rd = h.take(h.n.ObserveEpoch(timeout+lease/3+1, 6))
		if len(rd.Transitions) != 1 || rd.Transitions[0].Active || !rd.Cancel {
			t.Fatalf("ready %+v, want a step-down that cancels the renewal", rd)
		}
		h.expect(KindRead) // then it reads who leads now
	})
	t.Run("a bogus epoch holds takeovers for one read only", func(t *testing.T) {
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.take(h.n.ObserveEpoch(1, 9))
		h.tick(timeout)
		h.expect(KindRead)
		h.complete(timeout) // still epoch 3: nobody chose epoch 9
		h.tick(timeout + readIv)
		h.expect(KindTakeover)
	})
}

func TestISRChanges(t *testing.T) {
	h := makeActive(t)
	at := timeout + time.Millisecond
	reg := h.current()
	if _, err := h.n.RequestISR(at, ISRRequest{Epoch: 3, ConfigVersion: reg.ConfigVersion, ISR: []caspaxos.Voter{va, vb}}); !errors.Is(err, ErrNotActive) {
		t.Fatalf("request in another epoch: %v", err)
	}
	rd, err := h.n.RequestISR(at, ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion, ISR: []caspaxos.Voter{va, vb}})
	h.take(rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.n.RequestISR(at, ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion, ISR: []caspaxos.Voter{va, vc}}); !errors.Is(err, ErrBusy) {
		t.Fatalf("second request: %v", err)
	}
	h.expect(KindISR)
	h.complete(at)
	if len(h.results) != 1 || h.results[0].Err != nil || h.results[0].Register.ConfigVersion != reg.ConfigVersion+1 {
		t.Fatalf("results %+v", h.results)
	}
	cases := []struct {
		name string
		req  ISRRequest
		want any
	}{
		{"below the min ISR", ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion + 1, ISR: []caspaxos.Voter{va}}, caspaxos.ErrBelowMinISR},
		{"stale config version", ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion, ISR: []caspaxos.Voter{va, vb, vc}}, new(*caspaxos.ConfigVersionError)},
		{"expand", ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion + 1, ISR: []caspaxos.Voter{va, vb, vc}}, nil},
	}
	for _, c := range cases {
		h.results = nil
		rd, err := h.n.RequestISR(at, c.req)
		h.take(rd)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		h.complete(at)
		if len(h.results) != 1 {
			t.Fatalf("%s: results %+v", c.name, h.results)
		}
		got := h.results[0].Err
		switch w := c.want.(type) {
		case nil:
			if got != nil {
				t.Fatalf("%s: %v", c.name, got)
			}
		case error:
			if !errors.Is(got, w) {
				t.Fatalf("%s: %v, want %v", c.name, got, w)
			}
		case **caspaxos.ConfigVersionError:
			if !errors.As(got, w) {
				t.Fatalf("%s: %v, want a ConfigVersionError", c.name, got)
			}
		}
		// A refused configuration change does not depose the controller.
		if _, ok := h.n.Active(at); !ok {
			t.Fatalf("%s: stepped down", c.name)
		}
	}
	if got := h.current(); len(got.ISR) != 3 || got.ConfigVersion != reg.ConfigVersion+2 {
		t.Fatalf("register %+v", got)
	}
}

func TestFailedISRCompareAndSetDeposes(t *testing.T) {
	h := makeActive(t)
	at := timeout + time.Millisecond
	reg := h.current()
	rd, err := h.n.RequestISR(at, ISRRequest{Epoch: 4, ConfigVersion: reg.ConfigVersion, ISR: []caspaxos.Voter{va, vb}})
	h.take(rd)
	if err != nil {
		t.Fatal(err)
	}
	reg.Epoch, reg.Active = 5, vb
	h.set(reg)
	rd = h.complete(at)
	var ee *caspaxos.EpochError
	if len(rd.Transitions) != 1 || rd.Transitions[0].Active || len(rd.ISRResults) != 1 || !errors.As(rd.ISRResults[0].Err, &ee) {
		t.Fatalf("ready %+v, want a step-down and the EpochError", rd)
	}
}

func TestStepDownFailsPendingISRChange(t *testing.T) {
	h := makeActive(t)
	start := timeout
	h.tick(start + lease/3)
	h.expect(KindRenew) // in flight; the ISR request waits behind it
	rd, err := h.n.RequestISR(start+lease/3, ISRRequest{Epoch: 4, ConfigVersion: 4, ISR: []caspaxos.Voter{va, vb}})
	h.take(rd)
	if err != nil {
		t.Fatal(err)
	}
	h.tick(start + lease)
	if len(h.results) != 1 || !errors.Is(h.results[0].Err, ErrNotActive) {
		t.Fatalf("results %+v", h.results)
	}
	if _, err := h.n.RequestISR(start+lease, ISRRequest{Epoch: 4, ConfigVersion: 4, ISR: []caspaxos.Voter{va, vb}}); !errors.Is(err, ErrNotActive) {
		t.Fatalf("request after the lease ran out: %v", err)
	}
}

func TestTakeoverResults(t *testing.T) {
	t.Run("indeterminate but its own value", func(t *testing.T) {
		// Another proposer wrote this proposal's value back: its nonce
		// says it is this takeover's, chosen after it began.
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		p := h.expect(KindTakeover)
		next, err := p.Change(h.reg)
		if err != nil {
			t.Fatal(err)
		}
		h.answer(timeout+1, caspaxos.Result{Value: next, Err: caspaxos.ErrIndeterminate})
		if e, ok := h.n.Active(timeout + 1); !ok || e != 4 {
			t.Fatal("not active although the register shows its own takeover")
		}
	})
	t.Run("indeterminate showing an earlier takeover of its own", func(t *testing.T) {
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		h.expect(KindTakeover)
		r := h.current()
		r.Epoch, r.Active, r.Lease = 4, vb, 12345 // another nonce
		h.answer(timeout+1, caspaxos.Result{Value: encode(t, r), Err: caspaxos.ErrIndeterminate})
		if _, ok := h.n.Active(timeout + 1); ok {
			t.Fatal("led on an earlier takeover")
		}
	})
	t.Run("indeterminate and not applied", func(t *testing.T) {
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		h.expect(KindTakeover)
		h.answer(timeout, caspaxos.Result{Value: h.reg, Err: caspaxos.ErrIndeterminate})
		// The register did not move: try again, but not in a hot loop.
		h.expect(0)
		h.tick(timeout + readIv - 1)
		h.expect(0)
		h.tick(timeout + readIv)
		h.expect(KindTakeover)
	})
	t.Run("found already applied", func(t *testing.T) {
		// An earlier takeover of vb's (cancelled, or from a previous
		// life) was chosen without vb learning it: the others have been
		// watching epoch 4 stall since, so vb must not count a lease
		// from now.
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		h.expect(KindTakeover)
		r := h.current()
		r.Epoch, r.Active, r.Lease = 4, vb, 12345 // its nonce then
		h.set(r)
		rd := h.complete(timeout)
		if len(rd.Transitions) != 0 {
			t.Fatalf("led on a takeover it did not make: %+v", rd.Transitions)
		}
		// It takes over from itself once epoch 4 has stalled.
		h.tick(2 * timeout)
		h.expect(KindTakeover)
		h.complete(2 * timeout)
		if e, ok := h.n.Active(2 * timeout); !ok || e != 5 {
			t.Fatalf("Active = %d, %v; want epoch 5", e, ok)
		}
	})
	t.Run("too late", func(t *testing.T) {
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		h.expect(KindTakeover)
		rd := h.complete(timeout + lease)
		if len(rd.Transitions) != 0 {
			t.Fatalf("a takeover that took a whole lease led: %+v", rd.Transitions)
		}
	})
	t.Run("lost to another voter", func(t *testing.T) {
		h := newHarness(t, vb, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		h.tick(timeout)
		h.expect(KindTakeover)
		r := h.current()
		r.Epoch, r.Active, r.Lease = 4, vc, 0
		h.set(r)
		rd := h.complete(timeout)
		if len(rd.Transitions) != 0 || rd.Register == nil || rd.Register.Active != vc {
			t.Fatalf("ready %+v", rd)
		}
		// vc is now watched from scratch.
		h.tick(2*timeout - 1)
		if h.pending != nil && h.pending.Kind == KindTakeover {
			t.Fatal("took over before vc's lease could stall")
		}
	})
	t.Run("restart finds itself active", func(t *testing.T) {
		// A voter restarted with its disk: the register still names it,
		// but it never acts in an epoch it may have led before. Nobody
		// leads that epoch, so it takes over from itself at once.
		h := newHarness(t, va, activeReg(t, va), nil)
		h.tick(0)
		h.complete(0)
		if _, ok := h.n.Active(0); ok {
			t.Fatal("active after a read")
		}
		if p := h.expect(KindTakeover); p.Epoch != 3 {
			t.Fatalf("takeover from %d", p.Epoch)
		}
		h.complete(1)
		if e, ok := h.n.Active(1); !ok || e != 4 {
			t.Fatal("not active in a new epoch")
		}
	})
}

func TestTimeNeverGoesBack(t *testing.T) {
	h := newHarness(t, vb, activeReg(t, va), func(c *Config) { c.ReadInterval = time.Hour })
	h.tick(0)
	h.complete(0)
	h.tick(timeout - 1)
	h.tick(0) // a caller bug or a clock that stepped: ignored
	h.tick(timeout)
	h.expect(KindTakeover)
}

func TestLeaderSupersedes(t *testing.T) {
	for _, c := range []struct {
		l, cur Leader
		want   bool
	}{
		{Leader{Epoch: 5, Active: va}, Leader{Epoch: 4, Active: vb}, true},
		{Leader{Epoch: 4, Active: va}, Leader{Epoch: 5, Active: vb}, false},
		{Leader{Epoch: 5, Active: va}, Leader{Epoch: 5, Active: vb}, false},
		{Leader{Epoch: 5, Active: va}, Leader{Epoch: 5}, true},
		{Leader{Epoch: 5}, Leader{Epoch: 5, Active: va}, false},
	} {
		if got := c.l.Supersedes(c.cur); got != c.want {
			t.Errorf("%+v supersedes %+v = %v", c.l, c.cur, got)
		}
	}
}

func TestConfigValidation(t *testing.T) {
	for name, c := range map[string]Config{
		"no self":              {Lease: lease},
		"timeout within lease": {Self: va, Lease: lease, TakeoverTimeout: lease},
		"bad bootstrap":        {Self: va, Bootstrap: &Bootstrap{ClusterID: "c1"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestAnnounceAndObserve(t *testing.T) {
	h := makeActive(t)
	start := timeout
	h.tick(start + lease/3)
	rd := h.complete(start + lease/3)
	if rd.Announce == nil || rd.Announce.Lease != 1 || rd.Announce.Epoch != 4 {
		t.Fatalf("renewal announced %+v", rd.Announce)
	}
	ann := *rd.Announce

	// A follower that hears announcements does not read, and its takeover
	// timer restarts from each one.
	f := newHarness(t, vb, activeReg(t, va), nil)
	f.tick(0)
	f.complete(0)
	f.take(f.n.Observe(readIv, ann))
	if got := f.n.Register(); got.Epoch != 4 || got.Lease != 1 {
		t.Fatalf("observed register %+v", got)
	}
	f.tick(readIv + lease/3 + readIv - 1)
	f.expect(0)
	// A stale announcement (an earlier lease, delayed) changes nothing.
	older := ann.Clone()
	older.Lease = 0
	f.take(f.n.Observe(readIv+1, older))
	// Another cluster's announcement is ignored.
	other := ann.Clone()
	other.ClusterID, other.Epoch = "other", 9
	f.take(f.n.Observe(readIv+1, other))
	if got := f.n.Register(); got.Epoch != 4 || got.Lease != 1 {
		t.Fatalf("register after stale and foreign announcements %+v", got)
	}
	// Announcements stop: it reads again, then takes over a timeout after
	// the last one.
	f.set(ann)
	f.tick(readIv + lease/3 + readIv)
	f.expect(KindRead)
	f.complete(readIv + lease/3 + readIv)
	for at := readIv + lease/3 + 2*readIv; at < readIv+timeout; at += readIv {
		f.tick(at)
		f.expect(KindRead)
		f.complete(at)
	}
	f.tick(readIv + timeout)
	f.expect(KindTakeover)
}
