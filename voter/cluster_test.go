package voter

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/segment"
)

// Timing of the in-process clusters: short enough that a test of several
// failovers takes seconds, long enough that -race on a busy two-core
// machine does not lapse leases.
const (
	testLease    = 500 * time.Millisecond
	testTakeover = 750 * time.Millisecond
)

// event is one transition a voter reported.
type event struct {
	id   int32
	self caspaxos.Voter
	tr   ctrlquorum.Transition
	at   time.Time
}

// cluster is three voters over a MemNetwork and one MemFS (a directory
// each, behind an ErrorFS each so a test can break one voter's disk).
type cluster struct {
	t       *testing.T
	net     *MemNetwork
	mem     *segment.MemFS // nil on a real disk
	root    string
	efs     map[int32]*segment.ErrorFS
	members []caspaxos.Member
	voters  map[int32]*Voter

	mu     sync.Mutex
	events []event
}

func (c *cluster) dirOf(id int32) string { return filepath.Join(c.root, fmt.Sprintf("voter-%d", id)) }

func newCluster(t *testing.T) *cluster {
	t.Helper()
	return newClusterOn(t, nil, "/data")
}

// newClusterOn runs the cluster on fsys (a MemFS when nil) under root.
func newClusterOn(t *testing.T, fsys segment.FS, root string) *cluster {
	t.Helper()
	c := &cluster{t: t, net: NewMemNetwork(uint64(len(t.Name()))), root: root,
		efs: map[int32]*segment.ErrorFS{}, voters: map[int32]*Voter{}}
	if fsys == nil {
		c.mem = segment.NewMemFS()
		fsys = c.mem
	}
	for id := int32(1); id <= 3; id++ {
		c.efs[id] = segment.NewErrorFS(fsys)
		self, err := Identity(c.efs[id], c.dirOf(id), id)
		if err != nil {
			t.Fatal(err)
		}
		c.members = append(c.members, caspaxos.Member{Voter: self,
			Endpoints: []caspaxos.Endpoint{{Name: "CONTROLLER", Host: "localhost", Port: uint16(9093 + id)}}})
	}
	for id := int32(1); id <= 3; id++ {
		c.start(id)
	}
	t.Cleanup(func() {
		for _, v := range c.voters {
			v.Close()
		}
		c.checkHistory()
	})
	return c
}

// start (re)starts voter id from its directory.
func (c *cluster) start(id int32) *Voter {
	c.t.Helper()
	var v *Voter
	v, err := New(Config{NodeID: id, Voters: c.members, Bootstrap: true, ClusterID: "voter-test", MetaMinISR: 2,
		FS: c.efs[id], Dir: c.dirOf(id), Transport: c.net.Transport(id),
		Lease: testLease, TakeoverTimeout: testTakeover, TickInterval: 5 * time.Millisecond,
		OnTransition: func(tr ctrlquorum.Transition) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.events = append(c.events, event{id: id, self: v.Self(), tr: tr, at: time.Now()})
		}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.voters[id] = v
	c.net.Attach(id, v.Deliver)
	v.Start()
	return v
}

// kill closes voter id and cuts it off the network.
func (c *cluster) kill(id int32) {
	c.t.Helper()
	c.net.Detach(id)
	if err := c.voters[id].Close(); err != nil {
		c.t.Fatal(err)
	}
	delete(c.voters, id)
}

// actives returns the voters whose Active is true now, by id.
func (c *cluster) actives() map[int32]int32 {
	out := map[int32]int32{}
	for id, v := range c.voters {
		if e, ok := v.Active(); ok {
			out[id] = e
		}
	}
	return out
}

// waitActive waits up to d for exactly one running voter to be active in
// an epoch above minEpoch, and returns it.
func (c *cluster) waitActive(d time.Duration, minEpoch int32) (id, epoch int32) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		a := c.actives()
		if len(a) > 1 {
			c.t.Fatalf("two voters active at once: %v", a)
		}
		for id, e := range a {
			if e > minEpoch {
				return id, e
			}
		}
		time.Sleep(2 * time.Millisecond)
	}
	c.t.Fatalf("no voter became active above epoch %d within %v (running: %v)\n%s", minEpoch, d, c.ids(), c.history())
	return 0, 0
}

// hold checks for d that no two voters are active at once and that ok
// holds for what is active; it returns at the first violation.
func (c *cluster) hold(d time.Duration, what string, ok func(map[int32]int32) bool) {
	c.t.Helper()
	for end := time.Now().Add(d); time.Now().Before(end); time.Sleep(2 * time.Millisecond) {
		a := c.actives()
		if len(a) > 1 {
			c.t.Fatalf("two voters active at once: %v", a)
		}
		if !ok(a) {
			c.t.Fatalf("%s: active %v\n%s", what, a, c.history())
		}
	}
}

// waitStepDown waits up to d for self's last transition to be a step-down
// from epoch whose reason starts with reason.
func (c *cluster) waitStepDown(self caspaxos.Voter, epoch int32, reason string, d time.Duration) {
	c.t.Helper()
	deadline := time.Now().Add(d)
	for {
		tr := c.eventsOf(self)
		if n := len(tr); n > 0 && !tr[n-1].Active && tr[n-1].Epoch == epoch && strings.HasPrefix(tr[n-1].Reason, reason) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("%s did not step down from epoch %d (%q): %+v", self, epoch, reason, tr)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func (c *cluster) ids() []int32 {
	var ids []int32
	for id := range c.voters {
		ids = append(ids, id)
	}
	return ids
}

func (c *cluster) history() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var b strings.Builder
	for _, e := range c.events {
		fmt.Fprintf(&b, "  %s %s active=%v epoch=%d %s\n", e.at.Format("15:04:05.000"), e.self, e.tr.Active, e.tr.Epoch, e.tr.Reason)
	}
	return b.String()
}

func (c *cluster) eventsOf(self caspaxos.Voter) []ctrlquorum.Transition {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []ctrlquorum.Transition
	for _, e := range c.events {
		if e.self == self {
			out = append(out, e.tr)
		}
	}
	return out
}

// checkHistory: one voter per epoch, each voter's epochs only grow, and
// every voter alternates active and stepped down.
func (c *cluster) checkHistory() {
	c.mu.Lock()
	defer c.mu.Unlock()
	by := map[int32]caspaxos.Voter{}
	last := map[caspaxos.Voter]int32{}
	on := map[caspaxos.Voter]bool{}
	for _, e := range c.events {
		if e.tr.Active {
			if o, ok := by[e.tr.Epoch]; ok {
				c.t.Errorf("epoch %d led by %s and %s", e.tr.Epoch, o, e.self)
			}
			by[e.tr.Epoch] = e.self
			if e.tr.Epoch <= last[e.self] {
				c.t.Errorf("%s active in epoch %d after epoch %d", e.self, e.tr.Epoch, last[e.self])
			}
			last[e.self] = e.tr.Epoch
		}
		if on[e.self] == e.tr.Active {
			c.t.Errorf("%s: transition active=%v twice in a row (epoch %d)", e.self, e.tr.Active, e.tr.Epoch)
		}
		on[e.self] = e.tr.Active
	}
}

func TestClusterElectsOneController(t *testing.T) {
	c := newCluster(t)
	id, epoch := c.waitActive(5*time.Second, 0)
	if epoch != 1 {
		t.Errorf("first controller in epoch %d, want 1 (bootstrap writes epoch 0)", epoch)
	}
	// Without faults it keeps its lease: renewals go through. Count the
	// acceptors' fsyncs meanwhile (a fault that never fires counts).
	var counts []*segment.Injection
	for vid := int32(1); vid <= 3; vid++ {
		counts = append(counts, c.efs[vid].Inject(segment.Fault{Ops: segment.OpSync, Nth: 1 << 30}))
	}
	c.hold(4*testLease, "leadership moved without a fault", func(a map[int32]int32) bool { return a[id] == epoch })
	for i, in := range counts {
		t.Logf("voter %d: %.0f state fsyncs/s in steady state (lease %v)", i+1, float64(in.Seen())/(4*testLease).Seconds(), testLease)
	}
	for vid, v := range c.voters {
		if l := v.Leader(); l.Epoch != epoch || l.Active != c.members[id-1].Voter {
			t.Errorf("voter %d sees leader %+v, want epoch %d active %s", vid, l, epoch, c.members[id-1].Voter)
		}
		if st, _, ok, err := (store{fsys: c.mem, dir: c.dirOf(vid)}).load(); err != nil || !ok || st.Promised.IsZero() {
			t.Errorf("voter %d's persisted state: %+v %v %v, want a promise", vid, st, ok, err)
		}
	}
	if tr := c.eventsOf(c.members[id-1].Voter); len(tr) != 1 || !tr[0].Active || !tr[0].Register.InISR(c.members[id-1].Voter) {
		t.Errorf("transitions of the controller: %+v, want one activation naming it in the ISR", tr)
	}
}

func TestClusterFailoverAfterClose(t *testing.T) {
	c := newCluster(t)
	old, epoch := c.waitActive(5*time.Second, 0)
	start := time.Now()
	c.kill(old)
	id, e := c.waitActive(testTakeover+time.Second, epoch)
	t.Logf("voter %d active in epoch %d %v after closing voter %d (epoch %d)", id, e, time.Since(start), old, epoch)
	if id == old {
		t.Fatalf("the closed voter is active")
	}
	// Close waited for OnTransition: the step-down is there already.
	c.waitStepDown(c.members[old-1].Voter, epoch, "closed", 0)
}

func TestClusterPausedControllerStepsDown(t *testing.T) {
	c := newCluster(t)
	old, epoch := c.waitActive(5*time.Second, 0)
	v := c.voters[old]
	// SIGSTOP: no events are handled and nothing gets through; the clock
	// runs on.
	c.net.Isolate(old, true)
	v.gate.Lock()
	paused := time.Now()
	id, e := c.waitActive(testTakeover+2*time.Second, epoch)
	if id == old {
		t.Fatal("the paused voter is active")
	}
	time.Sleep(testLease - time.Since(paused)) // paused past its lease at least
	// SIGCONT.
	v.gate.Unlock()
	c.net.Isolate(old, false)
	if e, ok := v.Active(); ok {
		t.Fatalf("resumed voter reports itself active in epoch %d", e)
	}
	c.waitStepDown(v.Self(), epoch, "lease expired", 2*time.Second)
	// The new epoch's controller stays; the resumed one learns of it.
	c.hold(4*testLease, "the new controller lost its lease to the resumed one", func(a map[int32]int32) bool {
		_, old := a[old]
		return !old
	})
	if got, ok := c.voters[id].Active(); !ok || got != e {
		t.Errorf("new controller %d: active %v in epoch %d, want epoch %d", id, ok, got, e)
	}
	if l := v.Leader(); l.Epoch < e {
		t.Errorf("resumed voter still sees epoch %d, want at least %d", l.Epoch, e)
	}
}

func TestClusterNoQuorumNoController(t *testing.T) {
	c := newCluster(t)
	old, epoch := c.waitActive(5*time.Second, 0)
	other := old%3 + 1
	survivor := other%3 + 1
	oldSelf := c.voters[other].Self()
	c.kill(old)
	c.kill(other)
	c.hold(2*testTakeover+time.Second, "a controller without a quorum", func(a map[int32]int32) bool { return len(a) == 0 })
	if st := c.voters[survivor].Status(); st.Active {
		t.Fatalf("survivor %d thinks it is active: %+v", survivor, st)
	}
	v := c.start(other)
	if v.Self() != oldSelf {
		t.Fatalf("restarted voter is %s, was %s: its persisted identity was lost", v.Self(), oldSelf)
	}
	id, e := c.waitActive(10*time.Second, epoch)
	t.Logf("voter %d active in epoch %d once voter %d returned", id, e, other)
}

func TestClusterWipedVoterNeverLeads(t *testing.T) {
	c := newCluster(t)
	leader, epoch := c.waitActive(5*time.Second, 0)
	wiped := leader%3 + 1
	before := c.voters[wiped].Self()
	c.kill(wiped)
	if err := c.mem.RemoveAll(c.dirOf(wiped)); err != nil {
		t.Fatal(err)
	}
	w := c.start(wiped)
	if w.Self() == before || w.Self().ID != wiped {
		t.Fatalf("wiped voter came back as %s, was %s: want a new incarnation", w.Self(), before)
	}
	// Three failovers; each must land on one of the two intact voters.
	for range 3 {
		c.kill(leader)
		c.start(leader)
		leader, epoch = c.waitActive(10*time.Second, epoch)
		if leader == wiped {
			t.Fatalf("wiped voter %s became active in epoch %d", w.Self(), epoch)
		}
	}
	// Cut the controller off the other intact voter: only the wiped voter
	// still reaches both intact acceptors, so only it could win a round.
	// It is outside the ISR, so nobody leads until the cut heals.
	other := 6 - leader - wiped
	c.net.Cut(leader, other, true)
	time.Sleep(testLease) // the controller's renewals fail; its lease runs out
	c.hold(2*testTakeover+time.Second, "a controller while only the wiped voter reaches a quorum",
		func(a map[int32]int32) bool { return len(a) == 0 })
	c.net.Cut(leader, other, false)
	leader, epoch = c.waitActive(10*time.Second, epoch)
	if leader == wiped {
		t.Fatalf("wiped voter %s became active in epoch %d", w.Self(), epoch)
	}
	if tr := c.eventsOf(w.Self()); len(tr) != 0 {
		t.Errorf("wiped voter's transitions: %+v, want none", tr)
	}
	// It proposes nothing, not even a read (a read writes back, and its
	// configuration may be stale): it is outside its proposers'
	// configuration until a membership change admits it.
	if l := w.Leader(); l.Epoch != 0 || !w.isPassive() {
		t.Errorf("wiped voter read the register (epoch %d) or is not passive", l.Epoch)
	}
	if w.Register().InISR(w.Self()) {
		t.Errorf("wiped voter %s is in the ISR %v", w.Self(), w.Register().ISR)
	}
}

func TestClusterDiskFailureStepsDown(t *testing.T) {
	c := newCluster(t)
	old, epoch := c.waitActive(5*time.Second, 0)
	v := c.voters[old]
	c.efs[old].Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathUnder(c.dirOf(old)), Sticky: true})
	select {
	case <-v.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("voter with a failing disk kept running")
	}
	if err := v.Err(); err == nil {
		t.Fatal("no error from a voter whose fsync fails")
	}
	// OnTransition runs on its own goroutine: the step-down may follow Done.
	c.waitStepDown(v.Self(), epoch, "voter failed", time.Second)
	c.net.Detach(old)
	id, e := c.waitActive(testTakeover+2*time.Second, epoch)
	t.Logf("voter %d active in epoch %d after voter %d's disk failed", id, e, old)
}

// The same voters on the real file system, with real fsyncs, and a
// network that loses messages: a controller emerges and fails over.
func TestClusterOnDiskLossyNetwork(t *testing.T) {
	c := newClusterOn(t, segment.OSFS(), t.TempDir())
	c.net.SetDrop(0.05)
	old, epoch := c.waitActive(10*time.Second, 0)
	c.kill(old)
	id, e := c.waitActive(10*time.Second, epoch)
	t.Logf("on disk, 5%% loss: voter %d active in epoch %d after voter %d (epoch %d) closed", id, e, old, epoch)
	v := c.start(old)
	if v.Self() != c.members[old-1].Voter {
		t.Fatalf("restarted from disk as %s, was %s", v.Self(), c.members[old-1].Voter)
	}
	// Loss may lapse a lease now and then; what must hold is one
	// controller at a time, and that there is one.
	c.hold(4*testLease, "", func(map[int32]int32) bool { return true })
	c.waitActive(10*time.Second, 0)
}
