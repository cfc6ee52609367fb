package ctrlquorum

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
)

var (
	flagSeed  = flag.Int64("seed", 0, "run TestSim with this one seed only")
	flagSeeds = flag.Int("seeds", 0, "how many seeds TestSim runs (default 200, 50 with -short)")
)

// Simulated time: one step of the whole cluster is simStep of global time;
// each voter's clock runs at its own rate from its own offset.
const (
	simStep  = 5 * time.Millisecond
	simLease = time.Second
	// faultyFor is how long faults are injected; healFor how long the
	// healed cluster then has to settle on an active controller.
	faultyFor = 20 * time.Second
	healFor   = 15 * time.Second
	// maxGap bounds a healed cluster's time without an active controller:
	// the rest of a lapsed lease, the takeover timeout, a read interval, a
	// backoff, a few rounds, and a pause or restart from before healing
	// (up to 2.1s) running out.
	maxGap = 6 * time.Second
)

type simFaults struct {
	drop, dup float64
	maxDelay  int     // steps
	drift     float64 // clock rates within 1±drift
	partition float64 // per step: change the partition
	pause     float64 // per voter per step
	crash     float64 // per voter per step
}

type simMsg struct {
	m        caspaxos.Message
	ann      *caspaxos.Register // an active controller's announcement instead
	from, to int32
	at       int
}

type simVoter struct {
	self   caspaxos.Voter
	life   int
	node   *Node
	acc    *caspaxos.Acceptor
	disk   caspaxos.AcceptorState // what the acceptor fsynced
	prop   *caspaxos.Proposer
	propID uint64
	flight *Proposal
	rate   float64
	offset time.Duration
	// pausedUntil/downUntil are global steps; a paused voter keeps its
	// state and its clock runs on; a down one lost all but its disk.
	pausedUntil, downUntil int
	// role as its Transitions said
	activeIn  int32
	lastEpoch int32 // highest epoch it was ever active in (any life)
	viewEpoch int32
	wiped     bool
}

type chosen struct {
	ballot caspaxos.Ballot
	reg    caspaxos.Register
	what   string
}

type sim struct {
	t      *testing.T
	seed   int64
	rng    *rand.Rand
	f      simFaults
	step   int
	voters []*simVoter
	cfg    caspaxos.Config
	net    []simMsg
	cut    map[[2]int32]bool
	owner  map[uint64]*simVoter // proposer id -> voter
	// invariant state
	activeBy map[int32]string // epoch -> "voter life"
	chosen   []chosen
	trace    []string
	failed   string
	actives  int // takeovers that led
	healed   bool
	wiped    bool // a voter's disk was wiped this run
	announce bool // send Ready.Announce to the other voters
	lapses   int  // leases that ran out after healing
}

func newSim(t *testing.T, seed int64) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), cut: map[[2]int32]bool{},
		owner: map[uint64]*simVoter{}, activeBy: map[int32]string{}}
	r := s.rng
	s.f = simFaults{drop: r.Float64() * 0.15, dup: r.Float64() * 0.05, maxDelay: 1 + r.Intn(8),
		drift: r.Float64() * 0.1, partition: r.Float64() * 0.003, pause: r.Float64() * 0.0008, crash: r.Float64() * 0.0004}
	s.announce = r.Intn(4) != 0 // some seeds run with reads alone
	var selves []caspaxos.Voter
	var ms []caspaxos.Member
	for id := int32(1); id <= 3; id++ {
		v := voter(id, 1)
		selves = append(selves, v)
		ms = append(ms, caspaxos.Member{Voter: v, Endpoints: []caspaxos.Endpoint{{Name: "CONTROLLER", Host: "localhost", Port: uint16(9092 + id)}}})
	}
	s.cfg = caspaxos.Majority(selves)
	for _, v := range selves {
		sv := &simVoter{self: v, disk: caspaxos.AcceptorState{Self: v},
			rate: 1 + (r.Float64()*2-1)*s.f.drift, offset: time.Duration(r.Int63n(int64(10 * time.Second)))}
		s.voters = append(s.voters, sv)
		s.start(sv, ms)
	}
	return s
}

// start (re)starts v from its disk: a fresh Node and proposer (with a new
// proposer id, as it kept no ballot floor), and its acceptor's state.
func (s *sim) start(v *simVoter, ms []caspaxos.Member) {
	v.life++
	var err error
	if v.acc, err = caspaxos.NewAcceptor(v.disk); err != nil {
		s.t.Fatal(err)
	}
	v.propID = uint64(v.self.ID)*1000 + uint64(v.life)
	if v.prop, err = caspaxos.NewProposer(caspaxos.Options{ID: v.propID, Config: s.cfg,
		RetryTicks: 2*s.f.maxDelay + 4, Rand: s.rng.Intn, OneRoundTrip: true}); err != nil {
		s.t.Fatal(err)
	}
	s.owner[v.propID] = v
	v.flight, v.activeIn, v.viewEpoch = nil, 0, 0
	if v.node, err = New(Config{Self: v.self, Lease: simLease, Rand: s.rng.Int63n,
		Bootstrap: &Bootstrap{ClusterID: "sim", Voters: ms, MetaMinISR: 2}}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sim) local(v *simVoter) time.Duration {
	return v.offset + time.Duration(float64(time.Duration(s.step)*simStep)*v.rate)
}

func (s *sim) up(v *simVoter) bool      { return s.step >= v.downUntil }
func (s *sim) running(v *simVoter) bool { return s.up(v) && s.step >= v.pausedUntil }

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%6d ", s.step)+fmt.Sprintf(format, args...))
}

func (s *sim) fail(format string, args ...any) {
	if s.failed == "" {
		s.failed = fmt.Sprintf("step %d: ", s.step) + fmt.Sprintf(format, args...)
	}
}

func (s *sim) byID(id int32) *simVoter { return s.voters[id-1] }

func (s *sim) send(from, to int32, m caspaxos.Message) { s.sendMsg(simMsg{m: m, from: from, to: to}) }

func (s *sim) sendMsg(e simMsg) {
	if s.cut[link(e.from, e.to)] || s.rng.Float64() < s.f.drop {
		return
	}
	e.at = s.step + 1 + s.rng.Intn(s.f.maxDelay)
	s.net = append(s.net, e)
	if s.rng.Float64() < s.f.dup {
		e.at = s.step + 1 + s.rng.Intn(2*s.f.maxDelay)
		s.net = append(s.net, e)
	}
}

func link(a, b int32) [2]int32 { return [2]int32{min(a, b), max(a, b)} }

func (s *sim) proposerOut(v *simVoter, out caspaxos.Output) {
	for _, m := range out.Messages {
		s.send(v.self.ID, m.Acceptor.ID, m)
	}
	if res := out.Done; res != nil {
		p := v.flight
		v.flight = nil
		if p == nil {
			s.fail("voter %d: a result with no proposal in flight", v.self.ID)
			return
		}
		s.recordChosen(v, p, *res)
		s.ready(v, v.node.ProposalDone(s.local(v), p.ID, *res))
	}
}

// deliver hands m to its acceptor or proposer; it reports false if the
// addressee is paused (the message waits in its socket buffer).
func (s *sim) deliver(e simMsg) bool {
	v := s.byID(e.to)
	switch {
	case !s.up(v) || s.cut[link(e.from, e.to)]:
		return true // lost
	case !s.running(v):
		return false
	}
	if e.ann != nil {
		s.ready(v, v.node.Observe(s.local(v), *e.ann))
		return true
	}
	m := e.m
	switch m.Type {
	case caspaxos.MsgPrepare, caspaxos.MsgAccept:
		rd := v.acc.Step(m)
		if rd.Persist != nil {
			v.disk = *rd.Persist // fsync before answering
		}
		for _, a := range rd.Messages {
			if o := s.owner[a.Proposer]; o != nil {
				s.send(v.self.ID, o.self.ID, a)
			}
		}
	default:
		if s.owner[m.Proposer] == v && v.propID == m.Proposer {
			s.proposerOut(v, v.prop.Step(m))
		}
	}
	return true
}

// ready does what a Node asked, in the documented order, checking each
// transition and proposal against the invariants.
func (s *sim) ready(v *simVoter, rd Ready) {
	for _, tr := range rd.Transitions {
		s.transition(v, tr)
	}
	if rd.Cancel {
		v.prop.Cancel()
		v.flight = nil
	}
	if rd.Register != nil {
		if rd.Register.Epoch < v.viewEpoch {
			s.fail("voter %d: register view went back from epoch %d to %d", v.self.ID, v.viewEpoch, rd.Register.Epoch)
		}
		v.viewEpoch = rd.Register.Epoch
	}
	if p := rd.Propose; p != nil {
		if (p.Kind == KindRenew || p.Kind == KindISR) && v.activeIn != p.Epoch {
			s.fail("voter %d proposes %v in epoch %d while active in %d", v.self.ID, p.Kind, p.Epoch, v.activeIn)
		}
		var out caspaxos.Output
		var err error
		if p.Kind == KindRead {
			out, err = v.prop.ProposeRead()
		} else {
			out, err = v.prop.Propose(p.Change)
		}
		if err != nil {
			s.fail("voter %d: propose %v: %v", v.self.ID, p.Kind, err)
			return
		}
		v.flight = p
		s.proposerOut(v, out)
	}
	if a := rd.Announce; a != nil && s.announce {
		for _, o := range s.voters {
			if o != v {
				s.sendMsg(simMsg{ann: a, from: v.self.ID, to: o.self.ID})
			}
		}
	}
	if rd.Err != nil {
		s.fail("voter %d: %v", v.self.ID, rd.Err)
	}
}

func (s *sim) transition(v *simVoter, tr Transition) {
	who := fmt.Sprintf("%d (life %d)", v.self.ID, v.life)
	if !tr.Active {
		s.logf("voter %s steps down from epoch %d: %s", who, tr.Epoch, tr.Reason)
		if s.healed && tr.Reason == "lease expired" {
			s.lapses++
		}
		v.activeIn = 0
		return
	}
	s.logf("voter %s active in epoch %d", who, tr.Epoch)
	if v.wiped {
		s.fail("wiped voter %s (%s) became active in epoch %d", who, v.self, tr.Epoch)
	}
	s.actives++
	if prev, ok := s.activeBy[tr.Epoch]; ok {
		s.fail("two active controllers in epoch %d: %s and %s", tr.Epoch, prev, who)
	}
	s.activeBy[tr.Epoch] = who
	if tr.Epoch <= v.lastEpoch {
		s.fail("voter %s active in epoch %d after epoch %d", who, tr.Epoch, v.lastEpoch)
	}
	v.activeIn, v.lastEpoch = tr.Epoch, tr.Epoch
}

// recordChosen checks a round's result against every earlier one: a value
// is chosen at its ballot, and in ballot order the epoch never goes back,
// one epoch has one active controller, the lease and the configuration
// version never go back, and every ISR keeps the active controller and the
// minimum. A change of a deposed controller (renewal or ISR change in an
// epoch older than a chosen one) never succeeds.
func (s *sim) recordChosen(v *simVoter, p *Proposal, res caspaxos.Result) {
	var r caspaxos.Register
	if err := r.UnmarshalBinary(res.Value); err != nil {
		s.fail("voter %d: undecodable register: %v", v.self.ID, err)
		return
	}
	what := fmt.Sprintf("%v by %d in epoch %d (err %v)", p.Kind, v.self.ID, p.Epoch, res.Err)
	if !r.Active.IsZero() && (!r.InISR(r.Active) || len(r.ISR) < int(r.MetaMinISR)) {
		s.fail("%s chose ISR %v (min %d, active %s)", what, r.ISR, r.MetaMinISR, r.Active)
	}
	success := res.Err == nil && (p.Kind == KindRenew || p.Kind == KindISR)
	for _, c := range s.chosen {
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
	s.chosen = append(s.chosen, chosen{ballot: res.Ballot, reg: r, what: what})
}

// checkLease: with clock rates within the margin the lease allows, no two
// voters believe they are active at once (pauses included: a resumed
// voter's clock has run on, so its lease has lapsed).
func (s *sim) checkLease() {
	var active []string
	for _, v := range s.voters {
		if !s.up(v) {
			continue
		}
		if e, ok := v.node.Active(s.local(v)); ok {
			active = append(active, fmt.Sprintf("%d in epoch %d", v.self.ID, e))
		}
	}
	if len(active) > 1 {
		s.fail("leases overlap: %s", strings.Join(active, " and "))
	}
}

func (s *sim) faults() {
	r := s.rng
	if r.Float64() < s.f.partition {
		clear(s.cut)
		switch r.Intn(3) {
		case 0: // healed
		case 1: // one voter isolated
			x := int32(1 + r.Intn(3))
			for _, v := range s.voters {
				if v.self.ID != x {
					s.cut[link(x, v.self.ID)] = true
				}
			}
		case 2: // one link cut
			a := int32(1 + r.Intn(3))
			b := a%3 + 1
			s.cut[link(a, b)] = true
		}
		s.logf("partition %v", s.cut)
	}
	for _, v := range s.voters {
		switch {
		case !s.running(v):
		case r.Float64() < s.f.pause:
			v.pausedUntil = s.step + int((100*time.Millisecond+time.Duration(r.Int63n(int64(2*time.Second))))/simStep)
			s.logf("voter %d paused until %d", v.self.ID, v.pausedUntil)
		case r.Float64() < s.f.crash:
			v.downUntil = s.step + int((50*time.Millisecond+time.Duration(r.Int63n(int64(time.Second))))/simStep)
			v.prop.Cancel()
			delete(s.owner, v.propID)
			if v.activeIn != 0 {
				s.logf("voter %d crashes while active in epoch %d", v.self.ID, v.activeIn)
			}
			v.activeIn = 0
			s.logf("voter %d down until %d", v.self.ID, v.downUntil)
			if !s.wiped && r.Intn(4) == 0 {
				// Its disk is lost: it comes back empty under a new
				// incarnation, outside the ISR and the acceptors' config
				// (joining them is a membership change, not simulated
				// here). One per run, so a majority remains.
				s.wiped = true
				v.wiped = true
				v.self = voter(v.self.ID, 2)
				v.disk = caspaxos.AcceptorState{Self: v.self}
				s.logf("voter %d wiped: now %s", v.self.ID, v.self)
			}
		}
	}
}

func (s *sim) tick(faulty bool) {
	s.step++
	if faulty {
		s.faults()
	}
	for _, v := range s.voters {
		if v.downUntil == s.step {
			s.start(v, s.byID(1).node.cfg.Bootstrap.Voters)
			s.logf("voter %d restarts (life %d)", v.self.ID, v.life)
		}
	}
	var due, rest []simMsg
	for _, e := range s.net {
		if e.at <= s.step {
			due = append(due, e)
		} else {
			rest = append(rest, e)
		}
	}
	s.net = rest // deliveries send more
	s.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, e := range due {
		if !s.deliver(e) {
			s.net = append(s.net, e)
		}
	}
	for _, i := range s.rng.Perm(len(s.voters)) {
		v := s.voters[i]
		if !s.running(v) {
			continue
		}
		s.proposerOut(v, v.prop.Tick())
		s.ready(v, v.node.Tick(s.local(v)))
		s.maybeRequestISR(v)
	}
	s.checkLease()
}

// maybeRequestISR has the active controller shrink or expand the metadata
// ISR now and then, as the metadata log would when a voter lags.
func (s *sim) maybeRequestISR(v *simVoter) {
	e, ok := v.node.Active(s.local(v))
	if !ok || s.rng.Intn(200) != 0 {
		return
	}
	reg := v.node.Register()
	req := ISRRequest{Epoch: e, ConfigVersion: reg.ConfigVersion}
	if len(reg.ISR) == 3 {
		other := s.voters[s.rng.Intn(3)].self
		req.ISR = slices.DeleteFunc(slices.Clone(reg.ISR), func(x caspaxos.Voter) bool { return x == other && x != v.self })
	} else {
		req.ISR = []caspaxos.Voter{s.voters[0].self, s.voters[1].self, s.voters[2].self}
	}
	if s.rng.Intn(4) == 0 {
		req.ConfigVersion-- // a stale plan: refused by the compare-and-set
	}
	rd, err := v.node.RequestISR(s.local(v), req)
	s.ready(v, rd)
	if err != nil && !errors.Is(err, ErrBusy) {
		s.fail("voter %d: request ISR while active in %d: %v", v.self.ID, e, err)
	}
}

func (s *sim) run() {
	for s.step < int(faultyFor/simStep) && s.failed == "" {
		s.tick(true)
	}
	clear(s.cut)
	faults := s.f
	s.f.drop, s.f.dup = 0, 0
	defer func() { s.f = faults }()
	s.logf("healed")
	// Liveness: once healed (a pause or a restart still running out), the
	// cluster is never without an active controller for longer than
	// maxGap: one is found, and a lapsed one is replaced.
	healed := s.step
	s.healed = true
	lastActive := healed
	for end := s.step + int(healFor/simStep); s.step < end && s.failed == ""; {
		s.tick(false)
		for _, v := range s.voters {
			if _, ok := v.node.Active(s.local(v)); ok && s.up(v) {
				lastActive = s.step
			}
		}
		if gap := time.Duration(s.step-lastActive) * simStep; gap > maxGap {
			s.fail("liveness: no active controller for %v, %v after healing", gap, time.Duration(s.step-healed)*simStep)
		}
	}
}

func runSim(t *testing.T, seed int64) *sim {
	s := newSim(t, seed)
	s.run()
	if s.failed != "" {
		if testing.Verbose() {
			for _, l := range s.trace[max(0, len(s.trace)-60):] {
				t.Log(l)
			}
		}
		t.Errorf("seed %d: %s (faults %+v)\nreplay: go test ./ctrlquorum -run 'TestSim$' -seed=%d -v", seed, s.failed, s.f, seed)
	}
	return s
}

// TestSim runs seeded simulations of three voters; each checks the
// invariants after every step and liveness once healed.
func TestSim(t *testing.T) {
	if *flagSeed != 0 {
		s := runSim(t, *flagSeed)
		t.Logf("seed %d: %d takeovers led, %d rounds, %d lapses after healing; faults %+v", *flagSeed, s.actives, len(s.chosen), s.lapses, s.f)
		return
	}
	n := *flagSeeds
	if n == 0 {
		n = 200
		if testing.Short() {
			n = 50 // make test: race-enabled, about 25s
		}
	}
	takeovers, lapses, wiped := 0, 0, 0
	for seed := int64(1); seed <= int64(n) && !t.Failed(); seed++ {
		s := runSim(t, seed)
		takeovers += s.actives
		lapses += s.lapses
		if s.wiped {
			wiped++
		}
	}
	t.Logf("%d seeds: %d takeovers led; %d with a wiped voter; %d leases lapsed in healed clusters (contention, or a wiped voter leaving no spare acceptor)",
		n, takeovers, wiped, lapses)
	// The simulation must reach the rules it is meant to test.
	if !t.Failed() && takeovers < 2*n {
		t.Fatalf("only %d takeovers led in %d seeds: the faults are too mild to test failover", takeovers, n)
	}
}
