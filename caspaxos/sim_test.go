package caspaxos

import (
	"errors"
	"flag"
	"fmt"
	"math/rand"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
)

var (
	flagSeed  = flag.Int64("seed", 0, "run TestSim with this one seed only")
	flagSeeds = flag.Int("seeds", 0, "how many seeds TestSim runs (default 1000, 20000 with -long)")
	flagLong  = flag.Bool("long", false, "run many more simulation seeds")
)

// simFaults are the fault rates of one run, drawn from its seed.
type simFaults struct {
	drop, dup     float64 // per message
	maxDelay      int     // ticks
	crash         float64 // per acceptor per tick
	lostPersist   float64 // a step's state change lost in a crash before fsync
	proposerCrash float64 // per proposer per tick
	membership    int     // 0 none; else which change (see startChange)
	oneRTT        bool
	// wipeKeepsIdentity makes a wiped acceptor come back under its old
	// incarnation: the bug the incarnation exists to prevent. Only the
	// test that shows the checker catches it sets it.
	wipeKeepsIdentity bool
}

type envelope struct {
	m  Message
	at int
}

type simNode struct {
	acc       *Acceptor
	persisted AcceptorState
	downUntil int
}

type simClient struct {
	p      *Proposer
	me     Voter
	known  Register
	op     *regOp
	opIdx  int // index into sim.history of the op in flight
	nextID uint64
}

type sim struct {
	t      *testing.T
	seed   int64
	rng    *rand.Rand
	f      simFaults
	now    int
	clock  int64 // porcupine timestamps: one per event
	cfg    Config
	nodes  map[int32]*simNode
	ids    []int32 // node ids in order, so runs replay
	net    []envelope
	cls    []*simClient
	admin  *simClient // runs membership rescans
	steps  []Step
	stepAt int
	// invariant state
	valueAt   map[Ballot]string         // the one value accepted at each ballot
	acceptQ   map[Ballot]Quorum         // accept quorum the proposer used
	acceptors map[Ballot]map[Voter]bool // who durably accepted each ballot
	chosen    map[Ballot]bool
	base      map[Ballot]Ballot // for ballots that reached the accept phase
	history   []porcupine.Operation
	failed    string
}

func inc(n byte) Incarnation { return Incarnation{n, 0xca, 0x5e} }

func newSim(t *testing.T, seed int64, f simFaults) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), f: f, nodes: map[int32]*simNode{},
		valueAt: map[Ballot]string{}, acceptQ: map[Ballot]Quorum{}, acceptors: map[Ballot]map[Voter]bool{},
		chosen: map[Ballot]bool{}, base: map[Ballot]Ballot{}}
	var voters []Voter
	for id := int32(1); id <= 3; id++ {
		v := Voter{ID: id, Incarnation: inc(1)}
		voters = append(voters, v)
		s.addNode(v)
	}
	s.cfg = Majority(voters)
	for i := 1; i <= 3; i++ {
		c := &simClient{me: Voter{ID: int32(100 + i), Incarnation: inc(9)}, nextID: uint64(i), opIdx: -1}
		s.restartProposer(c)
		s.cls = append(s.cls, c)
	}
	return s
}

func (s *sim) addNode(v Voter) {
	st := AcceptorState{Self: v}
	acc, err := NewAcceptor(st)
	if err != nil {
		s.t.Fatal(err)
	}
	if s.nodes[v.ID] == nil {
		s.ids = append(s.ids, v.ID)
	}
	s.nodes[v.ID] = &simNode{acc: acc, persisted: st}
}

func (s *sim) restartProposer(c *simClient) {
	// A restarted proposer takes a new id: it kept no counter floor.
	c.nextID += 1000
	p, err := NewProposer(Options{ID: c.nextID, Config: s.cfg, RetryTicks: 2*s.f.maxDelay + 4,
		Rand: s.rng.Intn, OneRoundTrip: s.f.oneRTT})
	if err != nil {
		s.t.Fatal(err)
	}
	c.p = p
}

func (s *sim) fail(format string, args ...any) {
	if s.failed == "" {
		s.failed = fmt.Sprintf("tick %d: ", s.now) + fmt.Sprintf(format, args...)
	}
}

func (s *sim) send(from *simClient, out Output) {
	for _, m := range out.Messages {
		if m.Type == MsgAccept {
			if _, ok := s.acceptQ[m.Ballot]; !ok {
				s.acceptQ[m.Ballot] = cloneQuorum(from.p.o.Config.Accept)
				s.base[m.Ballot] = from.p.lastBase
				s.checkBase(m.Ballot)
			}
		}
		s.enqueue(m)
	}
	if out.Done != nil {
		s.complete(from, *out.Done)
	}
}

func (s *sim) enqueue(m Message) {
	if s.rng.Float64() < s.f.drop {
		return
	}
	s.net = append(s.net, envelope{m: m, at: s.now + 1 + s.rng.Intn(s.f.maxDelay)})
	if s.rng.Float64() < s.f.dup {
		s.net = append(s.net, envelope{m: m, at: s.now + 1 + s.rng.Intn(2*s.f.maxDelay)})
	}
}

func (s *sim) stamp() int64 { s.clock++; return s.clock }

func (s *sim) startOp(c *simClient) {
	op := regOp{kind: "read"}
	k := c.known
	switch r := s.rng.Intn(10); {
	case r < 3:
	case k.Active == c.me && r < 7:
		op = regOp{kind: "renew", epoch: k.Epoch, lease: k.Lease, me: c.me}
	case k.Active == c.me:
		isr := []Voter{c.me}
		for _, o := range s.cls {
			if o != c && s.rng.Intn(2) == 0 {
				isr = append(isr, o.me)
			}
		}
		op = regOp{kind: "setisr", epoch: k.Epoch, isr: isr}
	case r < 5 || k.Epoch == 0:
		// Not active: try to take over now and then (in the controller,
		// after the lease stalled), else keep reading.
		op = regOp{kind: "takeover", epoch: k.Epoch, lease: k.Lease, me: c.me}
	}
	var out Output
	var err error
	if op.kind == "read" {
		out, err = c.p.ProposeRead()
	} else {
		out, err = c.p.Propose(op.change())
	}
	if err != nil {
		s.t.Fatal(err)
	}
	c.op = &op
	c.opIdx = len(s.history)
	s.history = append(s.history, porcupine.Operation{ClientId: int(c.me.ID), Input: op, Call: s.stamp(),
		Output: regOut{}, Return: 1 << 62})
	s.send(c, out)
}

func (s *sim) complete(c *simClient, r Result) {
	if c.op == nil {
		s.fail("proposer %d finished with no op", c.p.o.ID)
		return
	}
	h := &s.history[c.opIdx]
	h.Return = s.stamp()
	if !errors.Is(r.Err, ErrIndeterminate) {
		// An indeterminate op stays unknown: applied or not, somewhere
		// between its call and its return (once its write-back is
		// chosen, no later round can adopt its earlier attempt).
		h.Output = regOut{known: true, value: string(r.Value), err: errClass(r.Err)}
	}
	c.op = nil
	if err := c.known.UnmarshalBinary(r.Value); err != nil {
		s.fail("result: %v", err)
	}
	if c == s.admin {
		s.nextStep()
	}
}

// deliver hands m to its acceptor or proposer.
func (s *sim) deliver(m Message) {
	if m.Type == MsgPrepare || m.Type == MsgAccept {
		n := s.nodes[m.Acceptor.ID]
		if n == nil || n.downUntil > s.now {
			return
		}
		rd := n.acc.Step(m)
		if rd.Persist != nil {
			if s.rng.Float64() < s.f.lostPersist {
				s.crash(n, 1+s.rng.Intn(20)) // died before the fsync
				return
			}
			n.persisted = *rd.Persist
			s.observeAccept(*rd.Persist)
		}
		for _, r := range rd.Messages {
			s.enqueue(r)
		}
		return
	}
	for _, c := range s.clients() {
		if c.p.o.ID == m.Proposer {
			s.send(c, c.p.Step(m))
		}
	}
}

func (s *sim) clients() []*simClient {
	if s.admin != nil {
		return append(slices.Clip(s.cls), s.admin)
	}
	return s.cls
}

func (s *sim) crash(n *simNode, ticks int) {
	acc, err := NewAcceptor(n.persisted)
	if err != nil {
		s.t.Fatal(err)
	}
	n.acc = acc
	n.downUntil = s.now + ticks
}

// observeAccept records a durable accept and checks the per-ballot rules.
func (s *sim) observeAccept(st AcceptorState) {
	b := st.Accepted
	if b.IsZero() {
		return
	}
	if v, ok := s.valueAt[b]; ok && v != string(st.Value) {
		s.fail("two values accepted at ballot %s: %s and %s", b, describe(v), describe(string(st.Value)))
	}
	s.valueAt[b] = string(st.Value)
	set := s.acceptors[b]
	if set == nil {
		set = map[Voter]bool{}
		s.acceptors[b] = set
	}
	set[st.Self] = true
	q := s.acceptQ[b]
	n := 0
	for _, v := range q.Voters {
		if set[v] {
			n++
		}
	}
	if n >= q.Need && !s.chosen[b] {
		s.chosen[b] = true
		s.checkChosen(b)
	}
}

// checkChosen: a chosen value is never lost (every later round read it or
// something newer), and chosen values, in ballot order, never take the
// epoch back, never hold two controllers in one epoch, and never take the
// lease back within an epoch.
func (s *sim) checkChosen(b Ballot) {
	for later, base := range s.base {
		if b.Less(later) && base.Less(b) {
			s.fail("chosen ballot %s lost: ballot %s read only up to %s", b, later, base)
		}
	}
	var mine Register
	_ = mine.UnmarshalBinary([]byte(s.valueAt[b]))
	for o := range s.chosen {
		var r Register
		_ = r.UnmarshalBinary([]byte(s.valueAt[o]))
		lo, hi := r, mine
		if b.Less(o) {
			lo, hi = mine, r
		}
		switch {
		case hi.Epoch < lo.Epoch:
			s.fail("epoch went back from %d to %d between chosen ballots %s and %s", lo.Epoch, hi.Epoch, b, o)
		case hi.Epoch == lo.Epoch && hi.Active != lo.Active:
			s.fail("two active controllers %s and %s in epoch %d", lo.Active, hi.Active, lo.Epoch)
		case hi.Epoch == lo.Epoch && hi.Lease < lo.Lease:
			s.fail("lease went back in epoch %d", lo.Epoch)
		}
	}
}

func (s *sim) checkBase(b Ballot) {
	base := s.base[b]
	for c := range s.chosen {
		if c.Less(b) && base.Less(c) {
			s.fail("ballot %s read up to %s, missing chosen ballot %s", b, base, c)
		}
	}
}

// startChange begins a membership change the seed asked for.
func (s *sim) startChange() {
	old := s.cfg.Accept.Voters
	var target []Voter
	switch s.f.membership {
	case 1: // grow to four, then the next change would shrink
		v := Voter{ID: 4, Incarnation: inc(1)}
		s.addNode(v)
		target = append(slices.Clone(old), v)
	case 2: // replace voter 1 by voter 4
		v := Voter{ID: 4, Incarnation: inc(1)}
		s.addNode(v)
		target = append(slices.Clone(old[1:]), v)
	case 3: // voter 1's disk is wiped; it rejoins with a new incarnation
		v := Voter{ID: 1, Incarnation: inc(2)}
		s.wipe(1, v)
		target = append([]Voter{v}, old[1:]...)
	case 4: // grow to five
		a, b := Voter{ID: 4, Incarnation: inc(1)}, Voter{ID: 5, Incarnation: inc(1)}
		s.addNode(a)
		s.addNode(b)
		target = append(slices.Clone(old), a, b)
	}
	steps, err := PlanChange(s.cfg, target)
	if err != nil {
		s.t.Fatal(err)
	}
	s.steps, s.stepAt = steps, -1
	s.admin = &simClient{me: Voter{ID: 99, Incarnation: inc(9)}, nextID: 999, opIdx: -1}
	s.restartProposer(s.admin)
	s.nextStep()
}

// wipe loses an acceptor's disk. It restarts as v: a new incarnation,
// unless the run simulates the bug of keeping the old one.
func (s *sim) wipe(id int32, v Voter) {
	if s.f.wipeKeepsIdentity {
		v = s.nodes[id].persisted.Self
	}
	s.addNode(v)
}

// nextStep moves every proposer to the next step at once (the paper's
// "every proposer is using it"), and starts the rescan if the step has one.
func (s *sim) nextStep() {
	s.stepAt++
	if s.stepAt >= len(s.steps) {
		s.admin = nil
		return
	}
	st := s.steps[s.stepAt]
	s.cfg = st.Config
	for _, c := range s.clients() {
		out, err := c.p.SetConfig(s.cfg)
		if err != nil {
			s.t.Fatal(err)
		}
		s.send(c, out)
	}
	if st.Rescan {
		s.admin.op = &regOp{kind: "read"}
		s.admin.opIdx = len(s.history)
		s.history = append(s.history, porcupine.Operation{ClientId: 99, Input: *s.admin.op, Call: s.stamp(),
			Output: regOut{}, Return: 1 << 62})
		out, err := s.admin.p.ProposeRead()
		if err != nil {
			s.t.Fatal(err)
		}
		s.send(s.admin, out)
	} else {
		s.nextStep()
	}
}

// tick runs one unit of simulated time; faults only while faulty.
func (s *sim) tick(faulty bool) {
	s.now++
	var due []envelope
	rest := s.net[:0]
	for _, e := range s.net {
		if e.at <= s.now {
			due = append(due, e)
		} else {
			rest = append(rest, e)
		}
	}
	s.net = rest
	s.rng.Shuffle(len(due), func(i, j int) { due[i], due[j] = due[j], due[i] })
	for _, e := range due {
		s.deliver(e.m)
	}
	if faulty {
		for _, id := range s.ids {
			if n := s.nodes[id]; n.downUntil <= s.now && s.rng.Float64() < s.f.crash {
				s.crash(n, 1+s.rng.Intn(40))
			}
		}
		for _, c := range s.cls {
			if s.rng.Float64() < s.f.proposerCrash {
				c.p.Cancel()
				c.op = nil // its outcome stays unknown in the history
				s.restartProposer(c)
			}
		}
	}
	for _, c := range s.clients() {
		s.send(c, c.p.Tick())
	}
	if faulty {
		for _, c := range s.cls {
			if c.op == nil && s.rng.Intn(4) == 0 {
				s.startOp(c)
			}
		}
	}
}

func (s *sim) run(ticks int) {
	for s.now < ticks && s.failed == "" {
		if s.f.membership != 0 && s.now == ticks/3 {
			s.startChange()
		}
		s.tick(true)
	}
	// Heal: no new faults or ops; everything in flight must finish.
	saved := s.f
	s.f.drop, s.f.dup, s.f.lostPersist = 0, 0, 0
	for i := 0; i < 2000 && s.failed == "" && s.busy(); i++ {
		s.tick(false)
	}
	s.f = saved
	if s.failed == "" && s.busy() {
		s.fail("liveness: operations still in flight 2000 ticks after healing")
	}
	if s.failed != "" {
		return
	}
	res, info := porcupine.CheckOperationsVerbose(registerModel, s.history, 5*time.Second)
	switch res {
	case porcupine.Illegal:
		path := fmt.Sprintf("%s/caspaxos-sim-%d.html", os.TempDir(), s.seed)
		if f, err := os.Create(path); err == nil {
			_ = porcupine.Visualize(registerModel, info, f)
			_ = f.Close()
		}
		s.fail("register history of %d ops is not linearizable (see %s)", len(s.history), path)
	case porcupine.Unknown:
		s.t.Logf("seed %d: linearizability check timed out", s.seed)
	}
}

func (s *sim) busy() bool {
	for _, c := range s.clients() {
		if c.op != nil {
			return true
		}
	}
	return s.admin != nil
}

func faultsFor(seed int64) simFaults {
	r := rand.New(rand.NewSource(seed ^ 0x5eed))
	return simFaults{
		drop: r.Float64() * 0.15, dup: r.Float64() * 0.1, maxDelay: 1 + r.Intn(6),
		crash: r.Float64() * 0.01, lostPersist: r.Float64() * 0.05, proposerCrash: r.Float64() * 0.005,
		membership: r.Intn(5), oneRTT: r.Intn(2) == 0,
	}
}

func runSeed(t *testing.T, seed int64, f simFaults) (string, int) {
	s := newSim(t, seed, f)
	s.run(600)
	if *flagSeed != 0 && testing.Verbose() {
		for _, h := range s.history {
			t.Logf("client %d [%d,%d] %s", h.ClientId, h.Call, h.Return, registerModel.DescribeOperation(h.Input, h.Output))
		}
	}
	return s.failed, len(s.history)
}

// TestSimReplays: one seed is one run, so a replay line reproduces a
// failure exactly.
func TestSimReplays(t *testing.T) {
	for _, seed := range []int64{3, 214} {
		var runs [2][]porcupine.Operation
		for i := range runs {
			s := newSim(t, seed, faultsFor(seed))
			s.run(600)
			runs[i] = s.history
		}
		if !reflect.DeepEqual(runs[0], runs[1]) {
			t.Fatalf("seed %d ran two different histories", seed)
		}
	}
}

// TestSim runs the seeded simulation: three acceptors (four or five after a
// membership change), three client proposers and an admin proposer over a
// network that drops, delays, duplicates and reorders, with acceptor crashes
// that lose unpersisted state, proposer crashes, and a wiped acceptor
// rejoining under a new incarnation. It checks the safety invariants as it
// goes and the register history for linearizability at the end.
func TestSim(t *testing.T) {
	seeds := []int64{}
	switch {
	case *flagSeed != 0:
		seeds = append(seeds, *flagSeed)
	default:
		n := 1000
		if *flagLong || os.Getenv("CASPAXOS_LONG") != "" {
			n = 20000
		}
		if *flagSeeds > 0 {
			n = *flagSeeds
		}
		for i := 1; i <= n; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	ops := 0
	for _, seed := range seeds {
		f := faultsFor(seed)
		failed, n := runSeed(t, seed, f)
		ops += n
		if failed != "" {
			t.Fatalf("seed %d (%+v): %s\nreplay: go test ./caspaxos -run 'TestSim$' -seed=%d", seed, f, failed, seed)
		}
	}
	t.Logf("%d seeds, %d register operations checked", len(seeds), ops)
}

// TestSimCatchesWipedIdentity shows the simulator can fail: when a wiped
// acceptor comes back under its old incarnation, some seed loses a chosen
// value or breaks linearizability.
func TestSimCatchesWipedIdentity(t *testing.T) {
	for seed := int64(1); seed <= 300; seed++ {
		f := faultsFor(seed)
		f.membership, f.wipeKeepsIdentity = 3, true
		if failed, _ := runSeed(t, seed, f); failed != "" {
			t.Logf("seed %d caught it: %s", seed, failed)
			return
		}
	}
	t.Fatal("no seed caught a wiped acceptor rejoining under its old identity")
}
