package clustersim

import (
	"flag"
	"fmt"
	"math/rand"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

var (
	flagSeed  = flag.Int64("seed", 0, "run TestSim with this one seed only")
	flagSeeds = flag.Int("seeds", 0, "how many seeds TestSim runs (default 200, 50 with -short)")
	flagHarsh = flag.Float64("harsh", 1, "multiply the rates of partitions, pauses and crashes (bug hunting)")
)

// Simulated time: one step of the cluster is simStep of global time; each
// node's clock runs at its own rate from its own offset.
const (
	simStep   = 5 * time.Millisecond
	simLease  = time.Second
	faultyFor = 12 * time.Second
	healFor   = 12 * time.Second
	// quietFor ends the run without appends, for the nodes to converge.
	quietFor = 3 * time.Second
	// maxCommitGap bounds how long after healing a new append commits: a
	// lapsed lease, a takeover, a pause or restart from before healing
	// running out, the metadata ISR shrinking a voter that stays behind.
	maxCommitGap = 8 * time.Second
)

type faults struct {
	drop, dup float64
	maxDelay  int     // steps
	drift     float64 // clock rates within 1±drift
	partition float64 // per step: change the partition
	pause     float64 // per node per step
	crash     float64 // per node per step
	fsync     float64 // per node per step: the log is fsynced
}

type kind uint8

const (
	kPaxos kind = iota + 1
	kAnnounce
	kFetch
	kReply
	kWho
	kWhoReply
)

// msg is one message in flight. boot is the sender's life for a request
// and the requester's for an answer: an answer to an earlier life is not
// delivered (its connection died with the process).
type msg struct {
	kind     kind
	from, to int32
	at, boot int
	pax      caspaxos.Message
	reg      caspaxos.Register
	leader   ctrlquorum.Leader
	fetch    *fetchReq
	reply    *fetchReply
}

type fetchReq struct {
	voter    caspaxos.Voter
	observer bool
	req      isr.FetchRequest
}

type fetchReply struct {
	req  isr.FetchRequest
	resp metalog.Response
	recs []rec
}

// node is one process: a controller voter (ids 1..3) or a broker.
type node struct {
	id     int32
	self   caspaxos.Voter // zero for a broker
	broker bool
	life   int
	rate   float64
	offset time.Duration
	// pausedUntil/downUntil are global steps: a paused node keeps its
	// state and its clock runs on; a down one keeps only its disk.
	pausedUntil, downUntil int

	// On disk: the acceptor's saved state, the fsynced log, the high
	// watermark (persisted when it changes) and a broker's applied count.
	disk     caspaxos.AcceptorState
	log      memLog
	hw       int64
	applied  int64
	verified int64 // log prefix checked against the committed log

	// Controller voter, in memory.
	acc       *caspaxos.Acceptor
	prop      *caspaxos.Proposer
	propID    uint64
	node      *ctrlquorum.Node
	flight    *ctrlquorum.Proposal
	activeIn  int32
	lastEpoch int32 // highest epoch it was active in, any life
	viewEpoch int32

	// Metadata log replica, in memory.
	epoch         int32 // newest epoch led or followed; -1 after a start
	lead          *metalog.Leader
	lastLeadTick  int64
	fol           *metalog.Follower
	folLeader     caspaxos.Voter
	fetchAt       int
	syncing       bool
	leaderHW      int64
	nextISR       *metalog.ISRChange
	nextISRAt     int
	isrPending    *metalog.ISRChange
	isrSent       int
	retryID       uint64
	readForLeader bool
	whoAt         int
}

type sim struct {
	t       *testing.T
	seed    int64
	rng     *rand.Rand
	f       faults
	step    int
	voters  []*node
	nodes   []*node // voters then brokers; nodes[i].id == i+1
	members []caspaxos.Member
	cfg     caspaxos.Config
	net     []msg
	cut     map[[2]int32]bool // directed: from, to
	owner   map[uint64]*node  // proposer id -> voter
	// invariant state
	activeBy  map[int32]string
	hist      history
	committed []rec
	nextVal   uint64
	// liveness
	healed               bool
	healVal              uint64
	firstCommitAfterHeal int
	quiet                bool
	// statistics
	actives, crashes int
	wildClocks       bool // leases may overlap
	covered          map[string]int
	trace            []string
	failed           string
	bug              bug
}

// cover counts an event, to check the faults reach what they should.
func (s *sim) cover(event string) { s.covered[event]++ }

// bug is a planted bug, to show the checks catch what they are for.
type bug uint8

const (
	// bugUnsyncedFetch: a voter's fetch offset counts records it has
	// not fsynced (metalog's durability rule broken).
	bugUnsyncedFetch bug = iota + 1
	// bugNoPersist: an acceptor answers without saving its state.
	bugNoPersist
)

func newSim(t *testing.T, seed int64) *sim {
	s := &sim{t: t, seed: seed, rng: rand.New(rand.NewSource(seed)), cut: map[[2]int32]bool{},
		owner: map[uint64]*node{}, activeBy: map[int32]string{}, firstCommitAfterHeal: -1, covered: map[string]int{}}
	r := s.rng
	s.f = faults{drop: r.Float64() * 0.1, dup: r.Float64() * 0.05, maxDelay: 1 + r.Intn(6),
		drift: r.Float64() * 0.1, partition: r.Float64() * 0.004, pause: r.Float64() * 0.0006,
		crash: r.Float64() * 0.0006, fsync: 0.2 + 0.6*r.Float64()}
	if r.Intn(5) == 0 {
		// Wild clocks, past the margin the lease allows: two voters may
		// both believe they are active, and the epochs alone must keep
		// the register and the metadata log safe.
		s.wildClocks = true
		s.f.drift = 0.3 + 0.3*r.Float64()
	}
	s.f.partition *= *flagHarsh
	s.f.pause *= *flagHarsh
	s.f.crash *= *flagHarsh
	var selves []caspaxos.Voter
	for id := int32(1); id <= 3; id++ {
		v := caspaxos.Voter{ID: id, Incarnation: caspaxos.Incarnation{byte(id), 0xaa}}
		selves = append(selves, v)
		s.members = append(s.members, caspaxos.Member{Voter: v})
	}
	s.cfg = caspaxos.Majority(selves)
	brokers := 2 + r.Intn(2)
	for i := range 3 + brokers {
		n := &node{id: int32(i + 1), broker: i >= 3, rate: 1 + (r.Float64()*2-1)*s.f.drift,
			offset: time.Duration(r.Int63n(int64(10 * time.Second)))}
		if !n.broker {
			n.self = selves[i]
			n.disk = caspaxos.AcceptorState{Self: n.self}
			s.voters = append(s.voters, n)
		}
		s.nodes = append(s.nodes, n)
		s.start(n)
	}
	return s
}

// start (re)starts n from its disk: for a voter a fresh Node and proposer
// (a new proposer id, as it keeps no ballot floor) and its acceptor's
// saved state; an idle replica.
func (s *sim) start(n *node) {
	n.life++
	n.epoch, n.lead, n.fol, n.syncing, n.fetchAt = -1, nil, nil, false, -1
	n.nextISR, n.isrPending, n.retryID, n.readForLeader, n.whoAt = nil, nil, 0, false, 0
	if n.broker {
		return
	}
	var err error
	if n.acc, err = caspaxos.NewAcceptor(n.disk); err != nil {
		s.t.Fatal(err)
	}
	n.propID = uint64(n.id)*1000 + uint64(n.life)
	if n.prop, err = caspaxos.NewProposer(caspaxos.Options{ID: n.propID, Config: s.cfg,
		RetryTicks: 2*s.f.maxDelay + 4, Rand: s.rng.Intn, OneRoundTrip: true}); err != nil {
		s.t.Fatal(err)
	}
	s.owner[n.propID] = n
	n.flight, n.activeIn, n.viewEpoch = nil, 0, 0
	if n.node, err = ctrlquorum.New(ctrlquorum.Config{Self: n.self, Lease: simLease, Rand: s.rng.Int63n,
		Bootstrap: &ctrlquorum.Bootstrap{ClusterID: "sim", Voters: s.members, MetaMinISR: 2}}); err != nil {
		s.t.Fatal(err)
	}
}

func (s *sim) local(n *node) time.Duration {
	return n.offset + time.Duration(float64(time.Duration(s.step)*simStep)*n.rate)
}

func (s *sim) up(n *node) bool      { return s.step >= n.downUntil }
func (s *sim) running(n *node) bool { return s.up(n) && s.step >= n.pausedUntil }
func (s *sim) byID(id int32) *node  { return s.nodes[id-1] }

func (s *sim) logf(format string, args ...any) {
	s.trace = append(s.trace, fmt.Sprintf("%6d ", s.step)+fmt.Sprintf(format, args...))
	if len(s.trace) > 400 {
		s.trace = s.trace[len(s.trace)-200:]
	}
}

func (s *sim) fail(format string, args ...any) {
	if s.failed == "" {
		s.failed = fmt.Sprintf("step %d: ", s.step) + fmt.Sprintf(format, args...)
	}
}

// send puts m on the network: lost on a cut link or at random, delayed
// (which reorders), sometimes duplicated. A node's messages to itself are
// local and always arrive.
func (s *sim) send(m msg) {
	if m.from == m.to {
		m.at = s.step + 1
		s.net = append(s.net, m)
		return
	}
	if s.cut[[2]int32{m.from, m.to}] || s.rng.Float64() < s.f.drop {
		return
	}
	m.at = s.step + 1 + s.rng.Intn(s.f.maxDelay)
	s.net = append(s.net, m)
	if s.rng.Float64() < s.f.dup {
		m.at = s.step + 1 + s.rng.Intn(2*s.f.maxDelay)
		s.net = append(s.net, m)
	}
}

// deliver hands m to its node; false if the node is paused (the message
// waits in its socket buffer).
func (s *sim) deliver(m msg) bool {
	n := s.byID(m.to)
	switch {
	case !s.up(n) || s.cut[[2]int32{m.from, m.to}]:
		return true // lost
	case !s.running(n):
		return false
	}
	switch m.kind {
	case kPaxos:
		s.paxos(n, m)
	case kAnnounce:
		s.ready(n, n.node.Observe(s.local(n), m.reg))
	case kFetch:
		s.onFetch(n, m)
	case kReply:
		if m.boot == n.life {
			s.onReply(n, m.reply)
		}
	case kWho:
		s.send(msg{kind: kWhoReply, from: n.id, to: m.from, boot: m.boot, leader: n.node.Leader()})
	case kWhoReply:
		if l := m.leader; m.boot == n.life && !l.Active.IsZero() && l.Epoch > n.epoch {
			s.startFollowing(n, l.Active, l.Epoch)
		}
	}
	return true
}

// paxos is voter's paxos: a Prepare or Accept to the acceptor, whose state
// is saved before any answer leaves; an answer to the proposer.
func (s *sim) paxos(n *node, e msg) {
	m := e.pax
	switch m.Type {
	case caspaxos.MsgPrepare, caspaxos.MsgAccept:
		rd := n.acc.Step(m)
		if rd.Persist != nil && s.bug != bugNoPersist {
			n.disk = *rd.Persist
		}
		if st := n.acc.State(); !st.Accepted.IsZero() {
			s.accepted(n, st.Accepted, st.Value)
		}
		for _, a := range rd.Messages {
			if o := s.owner[a.Proposer]; o != nil {
				s.send(msg{kind: kPaxos, from: n.id, to: o.id, pax: a})
			}
		}
	default:
		if m.Proposer == n.propID {
			s.proposerOut(n, n.prop.Step(m))
		}
	}
}

func (s *sim) proposerOut(n *node, out caspaxos.Output) {
	for _, m := range out.Messages {
		s.send(msg{kind: kPaxos, from: n.id, to: m.Acceptor.ID, pax: m})
	}
	if res := out.Done; res != nil {
		p := n.flight
		n.flight = nil
		if p == nil {
			return // cancelled
		}
		s.recordChosen(n, p, *res)
		s.ready(n, n.node.ProposalDone(s.local(n), p.ID, *res))
	}
}

// ready does what a Node asked, in ctrlquorum's order, as voter's loop
// and broker's quorum role do.
func (s *sim) ready(n *node, rd ctrlquorum.Ready) {
	for _, tr := range rd.Transitions {
		s.transition(n, tr)
	}
	if rd.Cancel {
		n.prop.Cancel()
		n.flight = nil
	}
	if reg := rd.Register; reg != nil {
		if reg.Epoch < n.viewEpoch {
			s.fail("voter %d: register view went back from epoch %d to %d", n.id, n.viewEpoch, reg.Epoch)
		}
		n.viewEpoch = reg.Epoch
	}
	if p := rd.Propose; p != nil {
		if (p.Kind == ctrlquorum.KindRenew || p.Kind == ctrlquorum.KindISR) && n.activeIn != p.Epoch {
			s.fail("voter %d proposes %v in epoch %d while active in %d", n.id, p.Kind, p.Epoch, n.activeIn)
		}
		var out caspaxos.Output
		var err error
		if p.Kind == ctrlquorum.KindRead {
			out, err = n.prop.ProposeRead()
		} else {
			out, err = n.prop.Propose(p.Change)
		}
		if err != nil {
			s.fail("voter %d: propose %v: %v", n.id, p.Kind, err)
			return
		}
		n.flight = p
		s.proposerOut(n, out)
	}
	for _, r := range rd.ISRResults {
		s.onISRResult(n, r)
	}
	if a := rd.Announce; a != nil {
		for _, o := range s.voters {
			if o != n {
				s.send(msg{kind: kAnnounce, from: n.id, to: o.id, reg: *a})
			}
		}
	}
	if rd.Err != nil {
		s.fail("voter %d: %v", n.id, rd.Err)
	}
}

// transition checks a role change (one active controller per epoch, epochs
// only growing per voter) and hands it to the log replica.
func (s *sim) transition(n *node, tr ctrlquorum.Transition) {
	who := fmt.Sprintf("%d (life %d)", n.id, n.life)
	if !tr.Active {
		s.logf("voter %s steps down from epoch %d: %s", who, tr.Epoch, tr.Reason)
		why, _, _ := strings.Cut(tr.Reason, ":")
		s.cover("a controller steps down: " + why)
		n.activeIn = 0
		return
	}
	s.logf("voter %s active in epoch %d, ISR %v", who, tr.Epoch, voterIDs(tr.Register.ISR))
	s.actives++
	if prev, ok := s.activeBy[tr.Epoch]; ok {
		s.fail("two active controllers in epoch %d: %s and %s", tr.Epoch, prev, who)
	}
	s.activeBy[tr.Epoch] = who
	if tr.Epoch <= n.lastEpoch {
		s.fail("voter %s active in epoch %d after epoch %d", who, tr.Epoch, n.lastEpoch)
	}
	n.activeIn, n.lastEpoch = tr.Epoch, tr.Epoch
	s.becomeLeader(n, tr)
}
