package metarepl

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/segment"
)

// memRegister is the register for tests: a linearizable in-memory value
// changed by caspaxos's own Register changes, so its checks are the real
// ones. Nodes can be cut off from it.
type memRegister struct {
	mu  sync.Mutex
	val []byte
	cut map[int32]bool
}

func newMemRegister(t testing.TB, voters []metalog.Voter, minISR int32) *memRegister {
	t.Helper()
	members := make([]caspaxos.Member, len(voters))
	for i, v := range voters {
		members[i] = caspaxos.Member{Voter: v}
	}
	r, err := caspaxos.BootstrapValue("test", members, minISR)
	if err != nil {
		t.Fatal(err)
	}
	val, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return &memRegister{val: val, cut: map[int32]bool{}}
}

func (m *memRegister) apply(ch caspaxos.Change) (caspaxos.Register, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	next, err := ch(m.val)
	if err == nil {
		m.val = next
	}
	var r caspaxos.Register
	if derr := r.UnmarshalBinary(m.val); derr != nil {
		return r, derr
	}
	return r, err
}

func (m *memRegister) value() caspaxos.Register {
	r, _ := m.apply(caspaxos.Read)
	return r
}

// takeover makes me active in the next epoch, as package voter will.
func (m *memRegister) takeover(t testing.TB, me metalog.Voter) metalog.Config {
	t.Helper()
	cur := m.value()
	r, err := m.apply(caspaxos.Takeover(cur.Epoch, cur.Lease, me))
	if err != nil {
		t.Fatalf("takeover by %s: %v", me, err)
	}
	return metalog.ConfigOf(r)
}

func (m *memRegister) setCut(id int32, cut bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cut[id] = cut
}

// client is node id's view of the register.
func (m *memRegister) client(id int32) Register { return regClient{m: m, id: id} }

type regClient struct {
	m  *memRegister
	id int32
}

var errRegisterCut = errors.New("test: register unreachable")

func (c regClient) down() bool {
	c.m.mu.Lock()
	defer c.m.mu.Unlock()
	return c.m.cut[c.id]
}

func (c regClient) ChangeISR(ctx context.Context, ch metalog.ISRChange) (metalog.Config, error) {
	if c.down() {
		return metalog.Config{}, errRegisterCut
	}
	change := caspaxos.ShrinkISR(ch.Epoch, ch.Version, ch.ISR)
	if ch.Expand {
		change = caspaxos.ExpandISR(ch.Epoch, ch.Version, ch.ISR)
	}
	r, err := c.m.apply(change)
	return metalog.ConfigOf(r), err
}

func (c regClient) Read(ctx context.Context) (metalog.Config, error) {
	if c.down() {
		return metalog.Config{}, errRegisterCut
	}
	r, err := c.m.apply(caspaxos.Read)
	return metalog.ConfigOf(r), err
}

// cluster is three voters (ids 1–3) and one observer (id 4) in process.
type cluster struct {
	t      testing.TB
	net    *MemNetwork
	reg    *memRegister
	voters []metalog.Voter
	nodes  map[int32]*Replica
	logs   map[int32]*Log
	fss    map[int32]segment.FS
	dirs   map[int32]string
	cfgs   map[int32]Config
	minISR int
	// mu guards nodes against goroutines of a test reading it (node)
	// while the test restarts one.
	mu sync.Mutex
}

func (c *cluster) node(id int32) *Replica {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[id]
}

const observerID = 4

func voterOf(id int32) metalog.Voter {
	return metalog.Voter{ID: id, Incarnation: caspaxos.Incarnation{byte(id), 0xaa}}
}

func newCluster(t testing.TB, lagMs int64, minISR int) *cluster {
	t.Helper()
	return newClusterOn(t, lagMs, minISR, func(int32) (segment.FS, string) { return segment.NewMemFS(), testDir }, 0)
}

// newClusterOn is newCluster with each node's FS and directory from fsFor and at most
// groupMax Appends per fsync (0: the default).
func newClusterOn(t testing.TB, lagMs int64, minISR int, fsFor func(id int32) (segment.FS, string), groupMax int) *cluster {
	t.Helper()
	c := &cluster{t: t, net: NewMemNetwork(), nodes: map[int32]*Replica{}, logs: map[int32]*Log{}, minISR: minISR,
		fss: map[int32]segment.FS{}, dirs: map[int32]string{}, cfgs: map[int32]Config{}}
	for id := int32(1); id <= 3; id++ {
		c.voters = append(c.voters, voterOf(id))
	}
	c.reg = newMemRegister(t, c.voters, int32(minISR))
	for id := int32(1); id <= observerID; id++ {
		self, observer := voterOf(id), id == observerID
		if observer {
			self = metalog.Voter{ID: id}
		}
		c.fss[id], c.dirs[id] = fsFor(id)
		c.cfgs[id] = Config{Self: self, Observer: observer, Transport: c.net.Transport(id),
			Register: c.reg.client(id), LagTimeMaxMs: lagMs, FetchMaxWait: 100 * time.Millisecond,
			FetchTimeout: time.Second, Backoff: 10 * time.Millisecond, RegisterPoll: 50 * time.Millisecond,
			TickInterval: 5 * time.Millisecond, groupMax: groupMax}
		c.startNode(id)
	}
	t.Cleanup(func() {
		for _, r := range c.nodes {
			r.Close()
		}
		for _, l := range c.logs {
			l.Close()
		}
	})
	return c
}

// startNode opens node id's log and starts its replica (idle).
func (c *cluster) startNode(id int32) {
	c.t.Helper()
	log, err := OpenLog(c.fss[id], c.dirs[id])
	if err != nil {
		c.t.Fatalf("node %d: %v", id, err)
	}
	cfg := c.cfgs[id]
	cfg.Log = log
	r, err := Start(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	c.net.Listen(id, r.HandleFetch)
	c.mu.Lock()
	c.nodes[id], c.logs[id] = r, log
	c.mu.Unlock()
}

// crash stops node id and crashes its MemFS (what was not fsynced is
// lost); it returns the high watermark it had.
func (c *cluster) crash(id int32) int64 {
	c.t.Helper()
	c.net.Listen(id, nil)
	hw := c.nodes[id].Status().HighWatermark
	c.nodes[id].Close()
	c.logs[id].Close()
	c.fss[id].(*segment.MemFS).Crash()
	return hw
}

func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	c.t.Cleanup(cancel)
	return ctx
}

// elect has voter id take over the next epoch and the others follow it,
// as package voter will do.
func (c *cluster) elect(id int32, followers ...int32) metalog.Config {
	c.t.Helper()
	cfg := c.reg.takeover(c.t, voterOf(id))
	if err := c.nodes[id].BecomeLeader(c.ctx(), cfg, c.minISR); err != nil {
		c.t.Fatalf("node %d leads epoch %d: %v", id, cfg.Epoch, err)
	}
	for _, f := range followers {
		if err := c.nodes[f].Follow(c.ctx(), voterOf(id), cfg.Epoch); err != nil {
			c.t.Fatalf("node %d follows %d: %v", f, id, err)
		}
	}
	return cfg
}

func (c *cluster) append(id int32, vals ...string) int64 {
	c.t.Helper()
	recs := make([][]byte, len(vals))
	for i, v := range vals {
		recs[i] = []byte(v)
	}
	off, err := c.nodes[id].Append(c.ctx(), recs)
	if err != nil {
		c.t.Fatalf("append %v at node %d: %v", vals, id, err)
	}
	return off
}

// waitFor polls cond for up to 10s.
func (c *cluster) waitFor(what string, cond func() bool) {
	c.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			c.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (c *cluster) isr() []int32 {
	var ids []int32
	for _, v := range c.reg.value().ISR {
		ids = append(ids, v.ID)
	}
	slices.Sort(ids)
	return ids
}

// committedBatches is node id's committed batches from its log start
// (read again if a trim moved the start between the two calls).
func (c *cluster) committedBatches(id int32) []Batch {
	c.t.Helper()
	for {
		start := c.logs[id].StartOffset()
		bs, err := c.nodes[id].Committed(start, 1<<30)
		if errors.Is(err, kerr.OffsetOutOfRange) && c.logs[id].StartOffset() != start {
			continue
		}
		if err != nil {
			c.t.Fatalf("node %d: %v", id, err)
		}
		return bs
	}
}

// committed is node id's committed batches, described.
func (c *cluster) committed(id int32) []string {
	c.t.Helper()
	return describe(c.committedBatches(id))
}

// checkPrefixes asserts the nodes' committed batches agree at every
// offset two of them hold (each log is a contiguous run of batches from
// its start, so they are then slices of one log), and that each record
// acknowledged (want) is in the node with the most committed at its
// offset, unless that node's log starts past it.
func (c *cluster) checkPrefixes(want map[int64]string) {
	c.t.Helper()
	union, holder := map[int64]string{}, map[int64]int32{}
	for id := range c.nodes {
		bs := c.committedBatches(id)
		for i, d := range describe(bs) {
			off := bs[i].Offset
			if prev, ok := union[off]; ok && prev != d {
				c.t.Fatalf("node %d committed %s at %d, node %d %s", id, d, off, holder[off], prev)
			}
			union[off], holder[off] = d, id
		}
	}
	best := c.longestNode()
	at := map[int64]string{}
	for _, b := range c.committedBatches(best) {
		at[b.Offset] = describe([]Batch{b})[0]
	}
	start := c.logs[best].StartOffset()
	for off, v := range want {
		if off >= start && at[off] != v {
			c.t.Fatalf("acknowledged batch %s at %d, committed log of node %d has %q", v, off, best, at[off])
		}
	}
}

// longestNode is the node with the highest high watermark.
func (c *cluster) longestNode() int32 {
	best, hw := int32(1), int64(-1)
	for id := range c.nodes {
		if h := c.nodes[id].Status().HighWatermark; h > hw {
			best, hw = id, h
		}
	}
	return best
}

// readLog is every batch of l from its start.
func readLog(t *testing.T, l *Log) []Batch {
	t.Helper()
	bs, err := l.Read(l.StartOffset(), 1<<30, l.End())
	if err != nil {
		t.Fatal(err)
	}
	return bs
}
