package isr

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// A seeded simulator: N replicas of one partition driven by Leader and
// Follower, a toy controller with ELR, a network that delays, reorders and
// drops fetches and AlterPartitions (metadata is delayed and reordered,
// never lost), crashes and restarts, fencing of live brokers (zombie
// leaders), and acks=all and acks=1 produces. Half the seeds have durable
// logs; the other half lose unflushed records in a crash, as Kafka without
// fsync does, and rely on strict min ISR, ELR and unclean-shutdown
// handling. After every step the invariants of replication.md §1.14 are
// checked; after the faulty steps the cluster is healed and calmed, and it
// must converge. A failing seed prints its replay line.

var (
	simSeed  = flag.Uint64("seed", 0, "simulator: run only this seed")
	simSteps = flag.Int("steps", 0, "simulator: steps per seed (0: default)")
	simLong  = flag.Bool("long", false, "simulator: run many more seeds")
)

type simConfig struct {
	replicas int
	minISR   int
	lagMs    int64
	lossy    bool
}

type fetchMsg struct {
	from        int32
	brokerEpoch int64
	req         FetchRequest
}

type fetchReply struct {
	req       FetchRequest
	resp      FetchResponse
	records   []entry
	leaderEnd int64
}

type alterMsg struct {
	from        int32
	brokerEpoch int64
	prop        Proposal
}

// msg is one message in flight; exactly one payload is set. to 0 is the
// controller.
type msg struct {
	to    int32
	at    int64
	fetch *fetchMsg
	reply *fetchReply
	alter *alterMsg
	res   *AlterResult
	resID uint64
	meta  *metadata
}

type sim struct {
	rng   *rand.Rand
	cfg   simConfig
	now   int64
	ctrl  *controller
	nodes []*node
	net   []msg
	ids   int64
	acked []produced
	// hwSeen is the highest HW each (node, leader epoch) reported.
	hwSeen map[[2]int64]int64
	// calm stops faults, drops, long delays and produces: the healed
	// cluster must then converge.
	calm  bool
	stats struct{ acked, failed, refused, crashes, fences, epochs, alters, cuts int }
}

func newSim(seed uint64) *sim {
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	cfg := simConfig{replicas: 3 + rng.IntN(3), lagMs: 100 + rng.Int64N(200)}
	cfg.minISR = 1 + rng.IntN(cfg.replicas)
	cfg.lossy = rng.IntN(2) == 0
	var ids []int32
	for i := 1; i <= cfg.replicas; i++ {
		ids = append(ids, int32(i))
	}
	s := &sim{rng: rng, cfg: cfg, ctrl: newController(ids, cfg.minISR), hwSeen: map[[2]int64]int64{}}
	for _, id := range ids {
		s.nodes = append(s.nodes, &node{id: id, alive: true, brokerEpoch: s.ctrl.brokers[id].epoch})
	}
	s.publish()
	return s
}

func (s *sim) node(id int32) *node { return s.nodes[id-1] }

func (s *sim) send(m msg, lossy bool) {
	if lossy && !s.calm && s.rng.IntN(100) < 5 {
		return
	}
	m.at = s.now + s.rng.Int64N(60)
	if !s.calm && s.rng.IntN(20) == 0 {
		m.at += s.rng.Int64N(1000) // a long tail: a slow broker, a GC pause
	}
	s.net = append(s.net, m)
}

func (s *sim) publish() {
	m := s.ctrl.image()
	for _, n := range s.nodes {
		s.send(msg{to: n.id, meta: &m}, false)
	}
}

// step runs one random action and reports a broken expectation.
func (s *sim) step() error {
	s.now += 1 + s.rng.Int64N(8)
	var err error
	switch r := s.rng.IntN(100); {
	case r < 45:
		for k := s.rng.IntN(3); k >= 0 && err == nil; k-- {
			err = s.deliver()
		}
	case r < 68:
		err = s.fetch(s.nodes[s.rng.IntN(len(s.nodes))])
	case r < 80:
		if !s.calm {
			s.produce()
		}
	case r < 96:
		s.tick()
	default:
		if !s.calm {
			s.fault()
		}
	}
	if err != nil {
		return err
	}
	for _, n := range s.nodes {
		s.drain(n)
	}
	return s.check()
}

// deliver hands one due message, picked at random (reordering), to its
// destination; messages to a crashed broker are lost.
func (s *sim) deliver() error {
	var due []int
	for i, m := range s.net {
		if m.at <= s.now {
			due = append(due, i)
		}
	}
	if len(due) == 0 {
		return nil
	}
	i := due[s.rng.IntN(len(due))]
	m := s.net[i]
	s.net = slices.Delete(s.net, i, i+1)
	if m.to == 0 {
		res, changed := s.ctrl.alter(m.alter.from, m.alter.brokerEpoch, m.alter.prop)
		s.send(msg{to: m.alter.from, res: &res, resID: m.alter.prop.ID}, true)
		if changed {
			s.stats.alters++
			s.publish()
		}
		return nil
	}
	n := s.node(m.to)
	if !n.alive {
		return nil
	}
	switch {
	case m.meta != nil:
		return n.applyMeta(*m.meta, s.cfg, s.now)
	case m.fetch != nil:
		rep := n.serveFetch(*m.fetch, s.now)
		s.send(msg{to: m.fetch.from, reply: &rep}, true)
	case m.reply != nil:
		leo := n.leo()
		err := n.onFetchReply(*m.reply)
		if n.leo() < leo {
			s.stats.cuts++
		}
		return err
	case m.res != nil && n.leader != nil:
		n.leader.HandleAlterPartition(m.resID, *m.res, s.now)
	}
	return nil
}

// fetch lets a follower act: truncate to its HW, or send its next fetch.
func (s *sim) fetch(n *node) error {
	if !n.alive || n.follower == nil {
		return nil
	}
	leader, _ := n.follower.Leader()
	switch a := n.follower.Next(); a.Kind {
	case ActTruncate:
		err := n.truncate(a.Truncation.Offset)
		n.follower.Truncated(n.local())
		return err
	case ActFetch:
		if leader > 0 {
			s.send(msg{to: leader, fetch: &fetchMsg{from: n.id, brokerEpoch: n.brokerEpoch, req: a.Request}}, true)
		}
	}
	return nil
}

// produce sends a record to a broker that believes it leads (a zombie
// included); mostly acks=all.
func (s *sim) produce() {
	var leaders []*node
	for _, n := range s.nodes {
		if n.alive && n.leader != nil {
			leaders = append(leaders, n)
		}
	}
	if len(leaders) == 0 {
		return
	}
	acks := int16(-1)
	if s.rng.IntN(4) == 0 {
		acks = 1
	}
	s.ids++
	if err := leaders[s.rng.IntN(len(leaders))].produce(acks, s.ids, s.now); err != nil {
		s.stats.refused++
	}
}

// tick runs every leader's ISR check and resends an AlterPartition whose
// answer may be lost.
func (s *sim) tick() {
	for _, n := range s.nodes {
		if n.alive && s.rng.IntN(2) == 0 {
			n.flushed = n.leo()
		}
		if !n.alive || n.leader == nil {
			continue
		}
		n.leader.Tick(s.now)
		if p, ok := n.leader.Pending(); ok && s.now-n.alterAt > 300 {
			s.sendAlter(n, p)
		}
	}
}

func (s *sim) sendAlter(n *node, p Proposal) {
	n.alterAt = s.now
	s.send(msg{alter: &alterMsg{from: n.id, brokerEpoch: n.brokerEpoch, prop: p}}, true)
}

// fault crashes, restarts, fences or unfences a broker.
func (s *sim) fault() {
	n := s.nodes[s.rng.IntN(len(s.nodes))]
	if l := s.ctrl.part.Leader; l != -1 && s.rng.IntN(3) == 0 {
		n = s.node(l) // leader churn: what KIP-101/279 truncation is about
	}
	b := s.ctrl.brokers[n.id]
	switch r := s.rng.IntN(10); {
	case r < 3 && n.alive:
		keep := n.leo()
		if s.cfg.lossy {
			keep = n.flushed + s.rng.Int64N(n.leo()-n.flushed+1)
		}
		n.crash(keep)
		s.stats.crashes++
	case r < 6 && !n.alive:
		n.alive = true
		n.brokerEpoch = s.ctrl.register(n.id, s.cfg.lossy)
		s.publish()
		// A restarted broker catches up the metadata log before it acts: no
		// image older than its own registration (KRaft's initial catch-up).
		n.meta = metadata{version: s.ctrl.version - 1}
	case r < 9 && !b.fenced && (!n.alive || s.rng.IntN(3) == 0):
		// the session timed out: a crashed broker, or a live one cut off (a zombie)
		s.ctrl.fence(n.id)
		s.stats.fences++
		s.publish()
	case r == 9 && n.alive && b.fenced:
		s.ctrl.unfence(n.id)
		s.publish()
	}
}

// drain acts on a leader's Ready: send its proposal, answer the acks=all
// produces its HW now covers.
func (s *sim) drain(n *node) {
	if !n.alive || n.leader == nil {
		return
	}
	if rd := n.leader.Ready(); rd.Proposal != nil {
		s.sendAlter(n, *rd.Proposal)
	}
	acked, failed := n.completeWaiting()
	s.acked = append(s.acked, acked...)
	s.stats.acked += len(acked)
	s.stats.failed += failed
}

// check is replication.md §1.14, after every step.
func (s *sim) check() error {
	if err := s.ctrl.check(); err != nil {
		return err
	}
	// In a lossy run a crashed member's disk is in limbo until it
	// re-registers and leaves the ISR: check the live members.
	var isr []int32
	for _, id := range s.ctrl.part.ISR {
		if s.node(id).alive || !s.cfg.lossy {
			isr = append(isr, id)
		}
	}
	for _, n := range s.nodes {
		if n.hw > n.leo() {
			return fmt.Errorf("node %d: HW %d beyond LEO %d", n.id, n.hw, n.leo())
		}
		if l := n.leader; n.alive && l != nil {
			if !slices.Contains(l.ISR(), n.id) {
				return fmt.Errorf("LeaderInIsr: leader %d not in its ISR %v", n.id, l.ISR())
			}
			key := [2]int64{int64(n.id), int64(l.LeaderEpoch())}
			if prev, ok := s.hwSeen[key]; ok && l.HighWatermark() < prev {
				return fmt.Errorf("HW went back on leader %d in epoch %d: %d -> %d", n.id, l.LeaderEpoch(), prev, l.HighWatermark())
			}
			s.hwSeen[key] = l.HighWatermark()
		}
		// Every offset below a replica's HW is identical on every ISR member.
		for _, id := range isr {
			m := s.node(id)
			if m.leo() < n.hw || !slices.Equal(m.log[:n.hw], n.log[:n.hw]) {
				return fmt.Errorf("node %d's log below its HW %d differs on ISR member %d (ISR %v):\n%v\n%v",
					n.id, n.hw, id, isr, n.log[:n.hw], m.log[:min(m.leo(), n.hw)])
			}
		}
	}
	// Every acks=all success is in every ISR member's log, and below the HW
	// of the current leader once that leader committed in its epoch.
	leader := s.ctrl.part.Leader
	for _, a := range s.acked {
		for _, id := range isr {
			if m := s.node(id); m.leo() <= a.offset || m.log[a.offset] != a.rec {
				return fmt.Errorf("acknowledged record %v at %d lost on ISR member %d (ISR %v)", a.rec, a.offset, id, isr)
			}
		}
		if leader == -1 {
			continue
		}
		if l := s.node(leader).leader; l != nil && l.LeaderEpoch() == s.ctrl.part.LeaderEpoch &&
			l.HighWatermark() >= l.EpochStartOffset() && a.offset >= l.HighWatermark() {
			return fmt.Errorf("acknowledged offset %d not below leader %d's HW %d (epoch %d starts at %d)",
				a.offset, leader, l.HighWatermark(), l.LeaderEpoch(), l.EpochStartOffset())
		}
	}
	return nil
}

// heal restarts every crashed broker and unfences every fenced one, and
// calms the run.
func (s *sim) heal() {
	s.calm = true
	for _, n := range s.nodes {
		if !n.alive {
			n.alive = true
			n.brokerEpoch = s.ctrl.register(n.id, s.cfg.lossy)
			s.publish()
			n.meta = metadata{version: s.ctrl.version - 1}
		}
		if s.ctrl.brokers[n.id].fenced {
			s.ctrl.unfence(n.id)
			s.publish()
		}
	}
}

// converged is the liveness check after a calm period: a partition with a
// leader has every replica in its ISR with the leader's log, and the HW at
// the log end. (After lossy crashes a partition may stay offline: KIP-966
// prefers that to electing a replica that lost data.)
func (s *sim) converged() error {
	p := s.ctrl.part
	if p.Leader == -1 {
		return nil
	}
	l := s.node(p.Leader)
	if len(p.ISR) != len(p.Replicas) {
		return fmt.Errorf("not converged: ISR %v of replicas %v (ELR %v)", p.ISR, p.Replicas, s.ctrl.elr)
	}
	if l.leader == nil || l.leader.HighWatermark() != l.leo() {
		return fmt.Errorf("not converged: leader %d state %v, LEO %d", p.Leader, l.leader != nil, l.leo())
	}
	for _, n := range s.nodes {
		if !slices.Equal(n.log, l.log) || n.hw != l.leo() {
			return fmt.Errorf("not converged: replica %d (LEO %d, HW %d) differs from leader %d (LEO %d)",
				n.id, n.leo(), n.hw, l.id, l.leo())
		}
	}
	return nil
}

// runSim runs steps faulty steps, heals the cluster, runs as many calm
// steps, and checks that it converged.
func runSim(seed uint64, steps int) (*sim, error) {
	s := newSim(seed)
	for i := 0; i < 2*steps; i++ {
		if i == steps {
			s.heal()
		}
		if err := s.step(); err != nil {
			return s, fmt.Errorf("step %d (t=%dms, %+v): %w", i, s.now, s.cfg, err)
		}
	}
	if err := s.converged(); err != nil {
		return s, fmt.Errorf("after %d calm steps (%+v): %w", steps, s.cfg, err)
	}
	return s, nil
}

func TestSim(t *testing.T) {
	steps, seeds := 1000, uint64(250)
	if *simLong {
		seeds = 20000
	} else if testing.Short() {
		seeds = 30
	}
	if *simSteps > 0 {
		steps = *simSteps
	}
	first := uint64(1)
	if *simSeed != 0 {
		first, seeds = *simSeed, 1
	}
	var acked, failed, refused, crashes, fences, epochs, alters, cuts, offline int
	for seed := first; seed < first+seeds; seed++ {
		s, err := runSim(seed, steps)
		if err != nil {
			t.Fatalf("seed %d: %v\nreplay: go test ./isr -run TestSim -seed=%d -steps=%d", seed, err, seed, steps)
		}
		acked += s.stats.acked
		failed += s.stats.failed
		refused += s.stats.refused
		crashes += s.stats.crashes
		fences += s.stats.fences
		epochs += int(s.ctrl.part.LeaderEpoch)
		alters += s.stats.alters
		cuts += s.stats.cuts
		if s.ctrl.part.Leader == -1 {
			offline++
		}
	}
	t.Logf("%d seeds × %d faulty + as many calm steps: %d acks=all acknowledged, %d NOT_ENOUGH_REPLICAS_AFTER_APPEND, %d refused, "+
		"%d crashes, %d fences, %d leader epochs, %d ISR changes, %d follower truncations; %d seeds end offline",
		seeds, steps, acked, failed, refused, crashes, fences, epochs, alters, cuts, offline)
	// The run must exercise what it checks: acknowledged writes, and faults.
	if acked == 0 || crashes == 0 || fences == 0 {
		t.Fatalf("vacuous simulation: %d acked, %d crashes, %d fences", acked, crashes, fences)
	}
}
