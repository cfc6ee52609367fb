package metalog

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/isr"
)

// A seeded simulator: three voters (the active controller leads, the two
// others follow) and two brokers observing the log, all driven through
// Leader and Follower, over a network that delays, reorders and drops
// messages and partitions nodes; crashes lose exactly what was not
// fsynced; takeovers go through a linearizable in-memory register with the
// real checks (seen epoch, ISR membership; epoch, active and configuration
// version for ISR changes), triggered by a stalled leader and, while
// faults run, at random. After every step it checks: a committed record is
// never lost or changed on any node below its high watermark, and every
// voter that takes over holds all of them; no node's high watermark goes
// back; at most one leader per epoch; brokers apply only committed records
// in order. Then it heals the cluster and checks that it converges. A
// failing seed prints its replay line.

var (
	simSeed  = flag.Uint64("seed", 0, "simulator: run only this seed")
	simSeeds = flag.Int("seeds", 0, "simulator: number of seeds (0: default)")
	simSteps = flag.Int("steps", 0, "simulator: faulty steps per seed (0: default)")
)

const (
	simLagMs      = 300
	simTakeoverMs = 1000
	simFetchMs    = 100 // resend a fetch unanswered this long
	simCASMs      = 200 // retry an ISR change unanswered this long
	simVoters     = 3
	simBrokers    = 2
)

type sim struct {
	rng       *rand.Rand
	now       int64
	nodes     []*node // by id; nodes[0] is nil (the register)
	reg       *cell
	net       []msg
	cut       map[[2]int32]int64 // a cut link and when it heals
	committed []rec              // the committed prefix, as leaders reported it
	leaders   map[int32]int32    // epoch → the node that led it
	minISR    int
	calm      bool // no faults: the cluster must converge
	quiet     bool // no more appends either
	nextVal   uint64
	covered   map[string]int // events that happened, to check the faults were reached
	err       error
	trace     []string
	// bugUnsynced plants a bug: followers report appended records before
	// the fsync. The simulator must catch it.
	bugUnsynced bool
}

func newSim(seed uint64) *sim {
	s := &sim{
		rng:     rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		nodes:   make([]*node, 1+simVoters+simBrokers),
		cut:     map[[2]int32]int64{},
		leaders: map[int32]int32{},
		covered: map[string]int{},
	}
	s.minISR = 1 + s.rng.IntN(2)
	for id := int32(1); id < int32(len(s.nodes)); id++ {
		s.nodes[id] = newNode(id, id > simVoters)
		s.nodes[id].rate = 0.9 + 0.2*s.rng.Float64()
		s.nodes[id].offset = s.rng.Int64N(1 << 30)
	}
	var voters []Voter
	for _, n := range s.nodes[1 : 1+simVoters] {
		voters = append(voters, n.voter)
	}
	// Bootstrap: empty logs, every voter in the ISR, no active controller.
	reg, err := newCell(voters, s.minISR)
	if err != nil {
		panic(err)
	}
	s.reg = reg
	return s
}

func (s *sim) tracef(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("t=%d ", s.now)+fmt.Sprintf(format, args...))
	if len(s.trace) > 60 {
		s.trace = s.trace[len(s.trace)-40:]
	}
}

// clock is n's monotonic clock: drifting, never comparable across nodes.
func (s *sim) clock(n *node) int64 { return n.offset + int64(float64(s.now)*n.rate) }

func (s *sim) cover(event string) { s.covered[event]++ }

func (s *sim) send(from, to int32, m msg) {
	if !s.calm && s.rng.IntN(100) < 5 {
		return
	}
	m.from, m.to = from, to
	if from != 0 {
		m.fromBoot = s.nodes[from].boot
	}
	m.at = s.now + 1 + int64(s.rng.IntN(20))
	if !s.calm && s.rng.IntN(100) < 5 {
		m.at += int64(s.rng.IntN(300))
	}
	s.net = append(s.net, m)
}

func (s *sim) linkUp(a, b int32) bool {
	_, cut := s.cut[[2]int32{min(a, b), max(a, b)}]
	return !cut
}

func (s *sim) up(id int32) bool { return id == 0 || s.nodes[id].up }

// deliver hands one due message, chosen at random, to its destination.
func (s *sim) deliver() {
	var due []int
	for i, m := range s.net {
		if m.at <= s.now {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return
	}
	i := due[s.rng.IntN(len(due))]
	m := s.net[i]
	s.net = slices.Delete(s.net, i, i+1)
	if !s.up(m.from) || !s.up(m.to) || !s.linkUp(m.from, m.to) {
		return
	}
	if (m.reply != nil || m.regReply != nil) && s.nodes[m.to].boot != m.toBoot {
		return
	}
	switch {
	case m.reg != nil:
		s.onRegister(m.from, m.fromBoot, m.reg)
	case m.regReply != nil:
		s.onRegReply(s.nodes[m.to], m.regReply)
	case m.fetch != nil:
		s.onFetch(s.nodes[m.to], m.from, m.fromBoot, m.fetch)
	case m.reply != nil:
		s.onReply(s.nodes[m.to], m.reply)
	}
}

// produce appends a few records at a live leader (unsynced until fsync).
func (s *sim) produce() {
	n := s.randomNode(func(n *node) bool { return n.lead != nil })
	if n == nil {
		return
	}
	var rs []rec
	for range 1 + s.rng.IntN(3) {
		s.nextVal++
		rs = append(rs, rec{epoch: n.lead.Epoch(), val: s.nextVal})
	}
	if err := n.log.append(int64(len(n.log.recs)), rs); err != nil {
		s.failf("node %d: %v", n.id, err)
	}
}

// poll runs a node's timers: resend a lost fetch or ISR change, fetch,
// read the register, take over from a stalled controller.
func (s *sim) poll(n *node) {
	if l := n.lead; l != nil {
		if p, ok := l.Pending(); ok && n.casAt >= 0 && s.clock(n)-n.casAt > simCASMs {
			n.casAt = -1
			if _, err := l.HandleISRResult(p.ID, ISRResult{Err: fmt.Errorf("timeout")}, s.clock(n)); err != nil {
				s.failf("node %d: %v", n.id, err)
			}
			s.drain(n)
		}
		// The lease renewal stands in here as a periodic read: it is how
		// a leader no one fetches from learns it was deposed, and how it
		// recovers when the read after a version conflict was lost.
		if s.rng.IntN(10) == 0 {
			s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
		}
		return
	}
	if !n.seen || s.rng.IntN(10) == 0 {
		s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
	}
	if f := n.fol; f != nil && (n.fetchAt < 0 || s.clock(n)-n.fetchAt > simFetchMs) {
		switch a := f.Next(); a.Kind {
		case isr.ActFetch:
			leader, _ := f.Leader()
			s.send(n.id, leader.ID, msg{fetch: &fetchMsg{voter: n.voter, observer: n.observer, req: a.Request}})
			n.fetchAt = s.clock(n)
		case isr.ActTruncate: // a log without epochs starts at its HW
			n.log.truncate(a.Truncation.Offset)
			if err := f.Truncated(n.log.local(n.hw)); err != nil {
				s.failf("node %d: %v", n.id, err)
			}
		}
	}
	if n.observer || !n.seen {
		return
	}
	stalled := s.clock(n)-n.lastHeard > simTakeoverMs || n.view.Active == n.voter
	if stalled && s.clock(n)-n.takeoverAt > simTakeoverMs {
		s.takeover(n)
	}
}

func (s *sim) takeover(n *node) {
	n.takeoverAt = s.clock(n)
	s.send(n.id, 0, msg{reg: &regMsg{op: opTakeover, seen: n.view.Epoch, me: n.voter}})
}

func (s *sim) randomNode(ok func(*node) bool) *node {
	var c []*node
	for _, n := range s.nodes[1:] {
		if n.up && ok(n) {
			c = append(c, n)
		}
	}
	if len(c) == 0 {
		return nil
	}
	return c[s.rng.IntN(len(c))]
}

func anyNode(*node) bool { return true }

func (s *sim) crash(n *node) {
	s.tracef("node %d crashes (durable %d of %d)", n.id, n.log.durable, len(n.log.recs))
	n.log.crash()
	*n = node{id: n.id, voter: n.voter, observer: n.observer, log: n.log, hw: n.hw, applied: n.applied,
		fetchAt: -1, casAt: -1, takeoverAt: -1 << 40, boot: n.boot + 1, rate: n.rate, offset: n.offset}
}

func (s *sim) restart(n *node) {
	s.tracef("node %d restarts", n.id)
	n.up, n.lastHeard = true, s.clock(n)
	s.send(n.id, 0, msg{reg: &regMsg{op: opRead}})
}

func (s *sim) partition() {
	ids := []int32{0}
	for id := int32(1); id < int32(len(s.nodes)); id++ {
		ids = append(ids, id)
	}
	s.rng.Shuffle(len(ids), func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
	k := 1 + s.rng.IntN(len(ids)-1)
	heal := s.now + 200 + int64(s.rng.IntN(2000))
	for _, a := range ids[:k] {
		for _, b := range ids[k:] {
			s.cut[[2]int32{min(a, b), max(a, b)}] = heal
		}
	}
	s.tracef("partition %v | %v until %d", ids[:k], ids[k:], heal)
}

func (s *sim) step() {
	s.now += int64(s.rng.IntN(8))
	for l, at := range s.cut {
		if at <= s.now {
			delete(s.cut, l)
		}
	}
	switch r := s.rng.IntN(100); {
	case r < 35:
		s.deliver()
	case r < 45:
		if !s.quiet {
			s.produce()
		}
	case r < 58:
		if n := s.randomNode(anyNode); n != nil {
			s.fsync(n)
		}
	case r < 80:
		if n := s.randomNode(anyNode); n != nil {
			s.poll(n)
		}
	case r < 88:
		for _, n := range s.nodes[1:] {
			if n.up && n.lead != nil {
				n.lead.Tick(s.clock(n))
				s.drain(n)
			}
		}
	case r < 90:
		if n := s.randomNode(anyNode); n != nil && !s.calm && s.rng.IntN(2) == 0 {
			s.crash(n)
		}
	case r < 95:
		for _, n := range s.nodes[1:] {
			if !n.up && s.rng.IntN(3) == 0 {
				s.restart(n)
			}
		}
	case r < 97:
		if !s.calm {
			s.partition()
		}
	case r < 99:
		if n := s.randomNode(func(n *node) bool { return !n.observer }); n != nil && !s.calm && n.seen {
			s.takeover(n) // a spurious takeover: the lease is liveness only
		}
	default:
		if !s.calm {
			// A voter-set change elsewhere bumps the configuration version:
			// the leader's ISR change in flight must fail and re-read.
			if err := s.reg.bump(); err != nil {
				s.failf("register: %v", err)
			}
			s.tracef("register: version %d", s.reg.c.Version)
		}
	}
	s.check()
}

// check is the invariants after every step.
func (s *sim) check() {
	for _, n := range s.nodes[1:] {
		if n.hw > int64(n.log.durable) && !s.bugUnsynced {
			s.failf("node %d: high watermark %d beyond its durable end %d", n.id, n.hw, n.log.durable)
		}
		if n.hw > int64(len(n.log.recs)) {
			s.failf("node %d: lost committed records: high watermark %d, log end %d", n.id, n.hw, len(n.log.recs))
			continue
		}
		if n.hw > int64(len(s.committed)) {
			s.failf("node %d: high watermark %d beyond the committed %d", n.id, n.hw, len(s.committed))
			continue
		}
		for o := range n.hw {
			if n.log.recs[o] != s.committed[o] {
				s.failf("node %d: %+v at %d below its high watermark, committed %+v", n.id, n.log.recs[o], o, s.committed[o])
				break
			}
		}
		// Every voter in the register's ISR may take over next, so each
		// must hold every committed record durably (Vertical Paxos).
		if !n.observer && slices.Contains(s.reg.c.ISR, n.voter) {
			s.checkHasCommitted(n, "is in the ISR")
		}
	}
}

// converged reports whether the healed cluster settled: the active
// controller leads with every voter in the ISR, every voter holds its log,
// and every node's high watermark (and every broker's image) is at its end.
func (s *sim) converged() string {
	a := s.nodes[s.reg.c.Active.ID]
	if s.reg.c.Active.IsZero() || a.lead == nil || a.lead.Epoch() != s.reg.c.Epoch || a.lead.Deposed() {
		return fmt.Sprintf("no leader for epoch %d", s.reg.c.Epoch)
	}
	end := a.log.durableEnd()
	if isrIDs := voterIDs(a.lead.ISR()); len(isrIDs) != simVoters {
		return fmt.Sprintf("ISR %v", isrIDs)
	}
	for _, n := range s.nodes[1:] {
		if n.hw != end || (!n.observer && !slices.Equal(n.log.recs, a.log.recs)) || (n.observer && n.applied != end) {
			return fmt.Sprintf("node %d: hw %d applied %d of %d", n.id, n.hw, n.applied, end)
		}
	}
	return ""
}

func runSim(seed uint64, steps int, bugUnsynced, anyTakeover bool) (s *sim, err error) {
	s = newSim(seed)
	s.bugUnsynced, s.reg.anyTakeover = bugUnsynced, anyTakeover
	for i := 0; i < steps && s.err == nil; i++ {
		s.step()
	}
	s.calm = true
	s.cut = map[[2]int32]int64{}
	for _, n := range s.nodes[1:] {
		if !n.up {
			s.restart(n)
		}
	}
	for i := 0; i < 3*steps && s.err == nil; i++ {
		s.quiet = i > steps
		s.step()
		if s.quiet && i%100 == 0 && s.converged() == "" {
			return s, nil
		}
	}
	if s.err != nil {
		return s, s.err
	}
	if why := s.converged(); why != "" {
		return s, fmt.Errorf("did not converge: %s\n%s", why, s.dump())
	}
	return s, nil
}

func simSeedList(def int) []uint64 {
	if *simSeed != 0 {
		return []uint64{*simSeed}
	}
	n := def
	if testing.Short() {
		n = def / 10
	}
	if *simSeeds > 0 {
		n = *simSeeds
	}
	seeds := make([]uint64, n)
	for i := range seeds {
		seeds[i] = uint64(i + 1)
	}
	return seeds
}

func TestSim(t *testing.T) {
	steps := 3000
	if *simSteps > 0 {
		steps = *simSteps
	}
	var commits, epochs int
	covered := map[string]int{}
	seeds := simSeedList(50)
	for _, seed := range seeds {
		s, err := runSim(seed, steps, false, false)
		if err != nil {
			t.Fatalf("seed %d: %v\nlast events:\n%s\nreplay: go test ./metalog -run TestSim -seed=%d", seed, err, strings.Join(s.trace, "\n"), seed)
		}
		commits += len(s.committed)
		epochs += len(s.leaders)
		for k, v := range s.covered {
			covered[k] += v
		}
	}
	t.Logf("%d records committed over %d epochs; %v", commits, epochs, covered)
	if len(seeds) < 40 {
		return
	}
	for _, event := range []string{
		"a deposed leader steps down", "a voter truncates a divergent suffix",
		"an ISR shrink commits", "an ISR expansion commits",
		fmt.Sprintf("ISR change outcome %d", OutcomeReadRegister), fmt.Sprintf("ISR change outcome %d", OutcomeDeposed),
		fmt.Sprintf("ISR change outcome %d", OutcomeIgnored),
	} {
		if covered[event] == 0 {
			t.Errorf("no seed reached %q", event)
		}
	}
}

// The simulator must be able to fail: each planted bug is caught by some
// seed.
func TestSimCatchesBugs(t *testing.T) {
	for _, bug := range []struct {
		name                  string
		unsynced, anyTakeover bool
	}{
		{"followers count unsynced records", true, false},
		{"a voter outside the ISR takes over", false, true},
	} {
		caught := false
		for seed := uint64(1); seed <= 200 && !caught; seed++ {
			_, err := runSim(seed, 3000, bug.unsynced, bug.anyTakeover)
			if err != nil && !strings.Contains(err.Error(), "did not converge") {
				t.Logf("%s: seed %d: %v", bug.name, seed, err)
				caught = true
			}
		}
		if !caught {
			t.Errorf("%s: no seed caught it", bug.name)
		}
	}
}

// dump describes every node, for a failure message.
func (s *sim) dump() string {
	var b strings.Builder
	fmt.Fprintf(&b, "register: epoch %d version %d active %d ISR %v\n", s.reg.c.Epoch, s.reg.c.Version, s.reg.c.Active.ID, voterIDs(s.reg.c.ISR))
	for _, n := range s.nodes[1:] {
		fmt.Fprintf(&b, "node %d up %v view e%d/v%d/a%d durable %d/%d hw %d", n.id, n.up, n.view.Epoch, n.view.Version, n.view.Active.ID, n.log.durable, len(n.log.recs), n.hw)
		if n.lead != nil {
			fmt.Fprintf(&b, " leads e%d ISR %v maximal %v deposed %v voters %+v", n.lead.Epoch(), voterIDs(n.lead.ISR()), voterIDs(n.lead.MaximalISR()), n.lead.Deposed(), n.lead.Voters())
		}
		if n.fol != nil {
			l, e := n.fol.Leader()
			fmt.Fprintf(&b, " follows %d e%d next %+v syncing %v", l.ID, e, n.fol.Next(), n.syncing)
		}
		b.WriteString("\n")
	}
	return b.String()
}
