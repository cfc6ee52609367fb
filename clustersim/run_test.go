package clustersim

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
)

// chosen is a register value a round chose, with what chose it.
type chosen struct {
	ballot caspaxos.Ballot
	reg    caspaxos.Register
	what   string
}

// history is every round's result, for the register's invariants.
type history struct {
	chosen   []chosen
	byBallot map[caspaxos.Ballot][]byte // results, by ballot
	accepted map[caspaxos.Ballot][]byte // what acceptors accepted
}

// accepted checks that every acceptor accepted one value per ballot (a
// ballot is one proposer attempt, so two values would mean two proposers
// shared a ballot or an attempt changed its value).
func (s *sim) accepted(n *node, b caspaxos.Ballot, v []byte) {
	if s.hist.accepted == nil {
		s.hist.accepted = map[caspaxos.Ballot][]byte{}
	}
	if prev, ok := s.hist.accepted[b]; ok && !bytes.Equal(prev, v) {
		s.fail("acceptor %d accepted another value at ballot %s", n.id, b)
	}
	s.hist.accepted[b] = v
}

// recordChosen checks a round's result against every earlier one: one
// value per ballot, and in ballot order the epoch never goes back, an
// epoch has one active controller, the lease and the configuration version
// never go back, every ISR keeps the active controller and the minimum; a
// deposed controller's renewal or ISR change never succeeds.
func (s *sim) recordChosen(n *node, p *ctrlquorum.Proposal, res caspaxos.Result) {
	if s.hist.byBallot == nil {
		s.hist.byBallot = map[caspaxos.Ballot][]byte{}
	}
	if v, ok := s.hist.byBallot[res.Ballot]; ok && !bytes.Equal(v, res.Value) {
		s.fail("two values chosen at ballot %s", res.Ballot)
	}
	s.hist.byBallot[res.Ballot] = res.Value
	var r caspaxos.Register
	if err := r.UnmarshalBinary(res.Value); err != nil {
		s.fail("voter %d: undecodable register: %v", n.id, err)
		return
	}
	what := fmt.Sprintf("%v by %d in epoch %d (err %v)", p.Kind, n.id, p.Epoch, res.Err)
	if !r.Active.IsZero() && (!r.InISR(r.Active) || len(r.ISR) < int(r.MetaMinISR)) {
		s.fail("%s chose ISR %v (min %d, active %s)", what, r.ISR, r.MetaMinISR, r.Active)
	}
	success := res.Err == nil && (p.Kind == ctrlquorum.KindRenew || p.Kind == ctrlquorum.KindISR)
	for _, c := range s.hist.chosen {
		lo, hi := c.reg, r
		if res.Ballot.Less(c.ballot) {
			lo, hi = r, c.reg
		}
		switch {
		case success && c.ballot.Less(res.Ballot) && c.reg.Epoch > p.Epoch:
			s.fail("deposed controller's %s succeeded after epoch %d was chosen (%s)", what, c.reg.Epoch, c.what)
		case hi.Epoch < lo.Epoch:
			s.fail("epoch went back from %d to %d (%s / %s)", lo.Epoch, hi.Epoch, c.what, what)
		case hi.Epoch == lo.Epoch && hi.Active != lo.Active:
			s.fail("epoch %d has two active controllers %s and %s", lo.Epoch, lo.Active, hi.Active)
		case hi.Epoch == lo.Epoch && hi.Lease < lo.Lease:
			s.fail("lease went back in epoch %d", lo.Epoch)
		case hi.ConfigVersion < lo.ConfigVersion:
			s.fail("config version went back from %d to %d", lo.ConfigVersion, hi.ConfigVersion)
		}
	}
	s.hist.chosen = append(s.hist.chosen, chosen{ballot: res.Ballot, reg: r, what: what})
}

// faults changes the partition and pauses or crashes nodes.
func (s *sim) faults() {
	r := s.rng
	ids := len(s.nodes)
	if r.Float64() < s.f.partition {
		clear(s.cut)
		cut := func(a, b int) { s.cut[[2]int32{int32(a), int32(b)}] = true }
		x, y := 1+r.Intn(ids), 1+r.Intn(ids)
		switch r.Intn(6) {
		case 0: // healed
		case 1: // x isolated
			for o := 1; o <= ids; o++ {
				cut(x, o)
				cut(o, x)
			}
		case 2: // x cannot reach y, y still reaches x
			cut(x, y)
			s.cover("a one-way cut")
		case 3: // x hears nobody but is heard
			for o := 1; o <= ids; o++ {
				cut(o, x)
			}
		case 4: // x is heard by nobody but hears all
			for o := 1; o <= ids; o++ {
				cut(x, o)
			}
		case 5: // two sides
			side := r.Perm(ids)[:1+r.Intn(ids-1)]
			in := map[int]bool{}
			for _, i := range side {
				in[i+1] = true
			}
			for a := 1; a <= ids; a++ {
				for b := 1; b <= ids; b++ {
					if in[a] != in[b] {
						cut(a, b)
					}
				}
			}
		}
		delete(s.cut, [2]int32{int32(x), int32(x)})
		s.logf("partition %v", keys(s.cut))
	}
	for _, n := range s.nodes {
		switch {
		case !s.running(n):
		case r.Float64() < s.f.pause:
			n.pausedUntil = s.step + int((100*time.Millisecond+time.Duration(r.Int63n(int64(2*time.Second))))/simStep)
			s.logf("node %d paused until %d", n.id, n.pausedUntil)
		case r.Float64() < s.f.crash:
			s.crash(n)
		}
	}
}

// crash stops n; only its disk survives: the acceptor's saved state, the
// fsynced log, the high watermark.
func (s *sim) crash(n *node) {
	s.crashes++
	if n.broker {
		s.cover("a broker crashes")
	} else if n.lead != nil {
		s.cover("the metadata log leader crashes")
	}
	n.downUntil = s.step + int((50*time.Millisecond+time.Duration(s.rng.Int63n(int64(time.Second))))/simStep)
	if !n.broker {
		n.prop.Cancel()
		delete(s.owner, n.propID)
		n.activeIn = 0
	}
	n.lead, n.fol = nil, nil
	n.log.dropUnsynced()
	n.verified = min(n.verified, n.log.durableEnd())
	s.logf("node %d crashes (durable %d, hw %d), down until %d", n.id, n.log.durable, n.hw, n.downUntil)
}

func keys(m map[[2]int32]bool) []string {
	var out []string
	for k := range m {
		out = append(out, fmt.Sprintf("%d->%d", k[0], k[1]))
	}
	return out
}

func (s *sim) tick(faulty bool) {
	s.step++
	if faulty {
		s.faults()
	}
	for _, n := range s.nodes {
		if n.downUntil == s.step {
			s.start(n)
			s.logf("node %d restarts (life %d)", n.id, n.life)
		}
	}
	var due, rest []msg
	for _, m := range s.net {
		if m.at <= s.step {
			due = append(due, m)
		} else {
			rest = append(rest, m)
		}
	}
	s.net = rest // deliveries send more
	// Deliveries and each node's timers run in a random order, so a node
	// resumed from a pause may act on its timers before it reads what
	// queued up for it.
	evs := make([]event, 0, len(due)+len(s.nodes))
	for i := range due {
		evs = append(evs, event{m: &due[i]})
	}
	for _, n := range s.nodes {
		evs = append(evs, event{n: n})
	}
	s.rng.Shuffle(len(evs), func(i, j int) { evs[i], evs[j] = evs[j], evs[i] })
	for _, e := range evs {
		switch {
		case e.m != nil:
			if !s.deliver(*e.m) {
				s.net = append(s.net, *e.m)
			}
		case s.running(e.n):
			s.act(e.n)
			s.checkLeases()
		}
	}
	s.check()
}

// event is one thing a step does: deliver a message or run a node's
// timers.
type event struct {
	m *msg
	n *node
}

// act runs n's timers for one step: the proposer's and the Node's ticks,
// the workload, the log replica, an fsync now and then.
func (s *sim) act(n *node) {
	if !n.broker {
		s.proposerOut(n, n.prop.Tick())
		s.ready(n, n.node.Tick(s.local(n)))
		if !s.quiet && s.rng.Intn(3) == 0 {
			s.produce(n)
		}
	}
	s.pump(n)
	if s.rng.Float64() < s.f.fsync {
		s.fsync(n)
	}
}

// check runs the per-step invariants of the logs and the leases.
func (s *sim) check() {
	for _, n := range s.nodes {
		if n.hw > n.log.durableEnd() && (s.bug != bugUnsyncedFetch || n.broker) {
			s.fail("node %d: high watermark %d beyond its durable end %d", n.id, n.hw, n.log.durableEnd())
			continue
		}
		if n.hw > int64(len(n.log.recs)) {
			s.fail("node %d: lost committed records: high watermark %d, log end %d", n.id, n.hw, len(n.log.recs))
			continue
		}
		if n.hw > int64(len(s.committed)) {
			s.fail("node %d: high watermark %d beyond the committed %d", n.id, n.hw, len(s.committed))
			continue
		}
		for o := n.verified; o < n.hw; o++ {
			if n.log.recs[o] != s.committed[o] {
				s.fail("node %d: %+v at %d below its high watermark, committed %+v", n.id, n.log.recs[o], o, s.committed[o])
				break
			}
		}
		n.verified = n.hw
	}
}

// checkLeases: with clock rates within the margin the lease allows (drift
// ≤ 10% against TakeoverTimeout/Lease = 1.5), leases never overlap; with
// wild clocks they may, and the epochs keep everything else safe.
func (s *sim) checkLeases() {
	var active []string
	for _, v := range s.voters {
		if !s.up(v) {
			continue
		}
		if e, ok := v.node.Active(s.local(v)); ok {
			active = append(active, fmt.Sprintf("%d in epoch %d", v.id, e))
		}
	}
	switch {
	case len(active) > 1 && s.wildClocks:
		s.cover("leases overlap (wild clocks)")
	case len(active) > 1:
		s.fail("leases overlap: %s", strings.Join(active, " and "))
	}
}

// converged says why the quiet, healed cluster has not converged: one
// active controller leading the log, everything appended committed, every
// voter's log equal to it and every node's high watermark (and broker's
// applied count) at its end.
func (s *sim) converged() string {
	var l *node
	for _, v := range s.voters {
		if e, ok := v.node.Active(s.local(v)); ok && v.lead != nil && v.lead.Epoch() == e && !v.lead.Deposed() {
			l = v
		}
	}
	if l == nil {
		return "no active controller leading the metadata log"
	}
	end := int64(len(l.log.recs))
	if int64(len(s.committed)) != end || l.lead.HighWatermark() != end {
		return fmt.Sprintf("leader %d: log end %d, high watermark %d, %d committed", l.id, end, l.lead.HighWatermark(), len(s.committed))
	}
	for _, n := range s.nodes {
		if n.hw != end || (!n.broker && n.log.durableEnd() != end) || (n.broker && n.applied != end) {
			return fmt.Sprintf("node %d: durable %d, hw %d, applied %d of %d", n.id, n.log.durableEnd(), n.hw, n.applied, end)
		}
	}
	return ""
}

func (s *sim) run() {
	for s.step < int(faultyFor/simStep) && s.failed == "" {
		s.tick(true)
	}
	clear(s.cut)
	s.f.drop, s.f.dup = 0, 0
	s.healed, s.healVal = true, s.nextVal
	healed := s.step
	s.logf("healed")
	for end := s.step + int(healFor/simStep); s.step < end && s.failed == ""; {
		s.tick(false)
		if s.firstCommitAfterHeal < 0 && time.Duration(s.step-healed)*simStep > maxCommitGap {
			s.fail("liveness: no append committed %v after healing", maxCommitGap)
		}
	}
	s.quiet = true
	for end := s.step + int(quietFor/simStep); s.step < end && s.failed == ""; {
		s.tick(false)
	}
	if s.failed == "" {
		if why := s.converged(); why != "" {
			s.fail("liveness: not converged %v after the last append: %s", quietFor, why)
		}
	}
}

func runSim(t *testing.T, seed int64) *sim {
	s := newSim(t, seed)
	s.run()
	report(t, s)
	return s
}

func report(t *testing.T, s *sim) {
	if s.failed != "" {
		tail := s.trace[max(0, len(s.trace)-40):]
		t.Errorf("seed %d: %s\nfaults %+v\nlast events:\n%s\nreplay: go test ./clustersim -run TestSim -seed=%d -v",
			s.seed, s.failed, s.f, strings.Join(tail, "\n"), s.seed)
	}
}

// TestSim runs seeded simulations of three controller voters and two or
// three brokers; each checks the invariants after every step, liveness
// once healed and convergence at the end.
func TestSim(t *testing.T) {
	if *flagSeed != 0 {
		s := runSim(t, *flagSeed)
		t.Logf("seed %d: %d takeovers led, %d records committed, %d crashes; faults %+v",
			*flagSeed, s.actives, len(s.committed), s.crashes, s.f)
		return
	}
	n := *flagSeeds
	if n == 0 {
		n = 200
		if testing.Short() {
			n = 50
		}
	}
	start := time.Now()
	takeovers, commits, crashes := 0, 0, 0
	covered := map[string]int{}
	for seed := int64(1); seed <= int64(n) && !t.Failed(); seed++ {
		s := runSim(t, seed)
		takeovers += s.actives
		commits += len(s.committed)
		crashes += s.crashes
		for k, v := range s.covered {
			covered[k] += v
		}
	}
	t.Logf("%d seeds in %v: %d takeovers led, %d records committed, %d crashes; events %v", n, time.Since(start).Round(time.Millisecond),
		takeovers, commits, crashes, covered)
	if n >= 50 {
		for _, e := range []string{"a metadata log leader is deposed", "a voter truncates a divergent suffix",
			"an ISR shrink commits", "an ISR expansion commits", "a controller steps down: lease expired",
			"a broker crashes", "the metadata log leader crashes", "a one-way cut"} {
			if covered[e] == 0 && !t.Failed() {
				t.Errorf("in %d seeds, never: %s", n, e)
			}
		}
	}
	// The simulation must reach what it is meant to test.
	if !t.Failed() && (takeovers < 2*n || commits < 100*n || crashes < n/2) {
		t.Fatalf("too mild: %d takeovers, %d commits, %d crashes in %d seeds", takeovers, commits, crashes, n)
	}
}

// TestSimCatchesPlantedBugs plants one bug at a time and checks that some
// seed fails: the simulation reaches what its checks are for.
func TestSimCatchesPlantedBugs(t *testing.T) {
	if *flagSeed != 0 {
		t.Skip("replaying one seed of TestSim")
	}
	if testing.Short() {
		t.Skip("it shows the simulation works, not the code: the full run has it")
	}
	for _, c := range []struct {
		name string
		bug  bug
	}{{"unsynced fetch offset", bugUnsyncedFetch}, {"acceptor answers before saving", bugNoPersist}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			for seed := int64(1); seed <= 400; seed++ {
				s := newSim(t, seed)
				s.bug = c.bug
				s.run()
				if s.failed != "" {
					t.Logf("caught at seed %d: %s", seed, s.failed)
					return
				}
			}
			t.Fatalf("no seed of 400 caught the planted bug")
		})
	}
}
