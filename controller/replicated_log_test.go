package controller

import (
	"context"
	"errors"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/segment"
)

// testRegister is the controller quorum's register in memory, changed by
// caspaxos's own changes (as metarepl's tests do), so its checks are the
// real ones.
type testRegister struct {
	mu  sync.Mutex
	val []byte
}

func (m *testRegister) apply(ch caspaxos.Change) (caspaxos.Register, error) {
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

func (m *testRegister) ChangeISR(_ context.Context, ch metalog.ISRChange) (metalog.Config, error) {
	change := caspaxos.ShrinkISR(ch.Epoch, ch.Version, ch.ISR)
	if ch.Expand {
		change = caspaxos.ExpandISR(ch.Epoch, ch.Version, ch.ISR)
	}
	r, err := m.apply(change)
	return metalog.ConfigOf(r), err
}

func (m *testRegister) Read(context.Context) (metalog.Config, error) {
	r, err := m.apply(caspaxos.Read)
	return metalog.ConfigOf(r), err
}

func (m *testRegister) takeover(t *testing.T, me metalog.Voter) metalog.Config {
	t.Helper()
	cur, err := m.apply(caspaxos.Read)
	if err != nil {
		t.Fatal(err)
	}
	r, err := m.apply(caspaxos.Takeover(cur.Epoch, cur.Lease, me))
	if err != nil {
		t.Fatalf("takeover by %s: %v", me, err)
	}
	return metalog.ConfigOf(r)
}

func testVoter(id int32) metalog.Voter {
	return metalog.Voter{ID: id, Incarnation: caspaxos.Incarnation{byte(id), 0xcc}}
}

// voters starts three voters (ids 1–3) of the metadata log in process,
// over a MemNetwork and MemFS logs.
func startVoters(t *testing.T, mods ...func(*metarepl.Config)) (*testRegister, *metarepl.MemNetwork, map[int32]*metarepl.Replica) {
	t.Helper()
	var members []caspaxos.Member
	for id := int32(1); id <= 3; id++ {
		members = append(members, caspaxos.Member{Voter: testVoter(id)})
	}
	reg0, err := caspaxos.BootstrapValue("test", members, 1)
	if err != nil {
		t.Fatal(err)
	}
	val, err := reg0.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	reg := &testRegister{val: val}
	net := metarepl.NewMemNetwork()
	nodes := map[int32]*metarepl.Replica{}
	for id := int32(1); id <= 3; id++ {
		log, err := metarepl.OpenLog(segment.NewMemFS(), "/meta")
		if err != nil {
			t.Fatal(err)
		}
		cfg := metarepl.Config{Self: testVoter(id), Log: log, Transport: net.Transport(id),
			Register: reg, FetchMaxWait: 50 * time.Millisecond, FetchTimeout: time.Second,
			Backoff: 5 * time.Millisecond, RegisterPoll: 20 * time.Millisecond, TickInterval: 5 * time.Millisecond}
		for _, m := range mods {
			m(&cfg)
		}
		r, err := metarepl.Start(cfg)
		if err != nil {
			t.Fatal(err)
		}
		net.Listen(id, r.HandleFetch)
		nodes[id] = r
		t.Cleanup(func() { r.Close(); log.Close() })
	}
	return reg, net, nodes
}

// elect has voter id take over the next epoch and the others follow it,
// as package voter will.
func elect(t *testing.T, reg *testRegister, nodes map[int32]*metarepl.Replica, id int32) metalog.Config {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := reg.takeover(t, testVoter(id))
	if err := nodes[id].BecomeLeader(ctx, cfg, 1); err != nil {
		t.Fatalf("node %d leads epoch %d: %v", id, cfg.Epoch, err)
	}
	for f, r := range nodes {
		if f != id {
			if err := r.Follow(ctx, testVoter(id), cfg.Epoch); err != nil {
				t.Fatalf("node %d follows %d: %v", f, id, err)
			}
		}
	}
	return cfg
}

func openReplicated(t *testing.T, r *metarepl.Replica, id, epoch int32) *Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := OpenReplicated(ctx, ReplicatedConfig{Replica: r, Epoch: epoch, ClusterID: "replicated-test", NodeID: id, Logger: quiet()})
	if err != nil {
		t.Fatalf("node %d: %v", id, err)
	}
	return s
}

// committedRecords decodes every committed batch of r.
func committedRecords(t *testing.T, r *metarepl.Replica) []Batch {
	t.Helper()
	bs, err := r.Committed(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	out := make([]Batch, len(bs))
	for i, b := range bs {
		rs, err := decodeRecords(b.Records)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = Batch{Offset: b.Offset, Records: rs}
	}
	return out
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestReplicatedStoreSurvivesALeaderChange commits through a Store on the
// leader of three voters, checks the followers hold the same records at
// the same offsets, deposes the leader and has a Store on the next leader
// rebuild the State from the log and commit more, while the old Store
// refuses changes with ErrNotController.
func TestReplicatedStoreSurvivesALeaderChange(t *testing.T) {
	reg, _, nodes := startVoters(t)
	cfg1 := elect(t, reg, nodes, 1)
	s1 := openReplicated(t, nodes[1], 1, cfg1.Epoch)
	if s1.End() != 0 || s1.Dir() != "" {
		t.Fatalf("fresh replicated store at %d, dir %q", s1.End(), s1.Dir())
	}
	mustCommit(t, s1, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	img := mustCommit(t, s1, createTopic("a", 3, nil))
	a, ok := img.Topic("a")
	if !ok || len(a.Partitions) != 3 {
		t.Fatalf("topic a after commit: %+v %v", a, ok)
	}
	pid, err := s1.NextProducerID()
	if err != nil {
		t.Fatal(err)
	}

	leader, err := s1.BatchesFrom(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	// What the store published is committed: the leader's committed log
	// (read up to its persisted high watermark, which Append's return may
	// precede by one event) holds exactly it.
	waitUntil(t, "leader's persisted commit", func() bool { return nodes[1].Status().HighWatermark >= s1.End() })
	if got := committedRecords(t, nodes[1]); !reflect.DeepEqual(got, leader) || s1.End() != 6 {
		t.Fatalf("leader's committed log decodes to\n%+v\nthe store (end %d) serves\n%+v", got, s1.End(), leader)
	}
	for _, id := range []int32{2, 3} {
		waitUntil(t, "follower commit", func() bool { return nodes[id].Status().HighWatermark >= s1.End() })
		if got := committedRecords(t, nodes[id]); !reflect.DeepEqual(got, leader) {
			t.Fatalf("node %d committed\n%+v\nthe leader's store\n%+v", id, got, leader)
		}
	}

	// Voter 2 takes over: the Store on voter 1 must refuse changes.
	cfg := elect(t, reg, nodes, 2)
	if cfg.Epoch <= cfg1.Epoch {
		t.Fatalf("takeover epoch %d", cfg.Epoch)
	}
	if _, err := s1.Commit(createTopic("stale", 1, nil)); !errors.Is(err, ErrNotController) {
		t.Fatalf("commit on the deposed store: %v, want ErrNotController", err)
	}
	s2 := openReplicated(t, nodes[2], 2, cfg.Epoch)
	// The old Store's own State holds the refused change (planned on
	// before its append failed); what it committed is its Image's.
	if !reflect.DeepEqual(encodeState(t, s2.state), encodeState(t, s1.Image().st)) {
		t.Fatalf("new leader's state\n%s\nold leader's committed\n%s", encodeState(t, s2.state), encodeState(t, s1.Image().st))
	}
	if _, ok := s1.Image().Topic("stale"); ok {
		t.Fatal("the deposed store published a change it could not commit")
	}
	if got, ok := s2.Image().Topic("a"); !ok || got.ID != a.ID {
		t.Fatalf("new leader's topic a: %+v %v, want id %v", got, ok, a.ID)
	}
	img = mustCommit(t, s2, createTopic("b", 1, nil))
	if _, ok := img.Topic("b"); !ok {
		t.Fatal("topic b not created by the new leader")
	}
	if _, ok := img.Topic("stale"); ok {
		t.Fatal("the deposed store's change reached the new leader")
	}
	if pid2, err := s2.NextProducerID(); err != nil || pid2 <= pid {
		t.Fatalf("new leader's producer id %d (%v) after %d from the old one", pid2, err, pid)
	}
	for _, id := range []int32{1, 2, 3} {
		waitUntil(t, "commit", func() bool { return nodes[id].Status().HighWatermark >= s2.End() })
	}
	want, err := s2.BatchesFrom(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []int32{1, 2, 3} {
		if got := committedRecords(t, nodes[id]); !reflect.DeepEqual(got, want) {
			t.Fatalf("node %d committed\n%+v\nthe new leader's store\n%+v", id, got, want)
		}
	}
	if _, err := s2.BatchesFrom(s2.End()+1, 1<<20); !errors.Is(err, ErrSnapshotNeeded) {
		t.Fatalf("batches past the end: %v", err)
	}
}

// TestOpenReplicatedNeedsTheLeader: a follower of the epoch cannot open a
// Store, nor can a voter for an epoch it never led.
func TestOpenReplicatedNeedsTheLeader(t *testing.T) {
	reg, _, nodes := startVoters(t)
	cfg := elect(t, reg, nodes, 1)
	waitUntil(t, "follower status", func() bool { return nodes[2].Status().Epoch == cfg.Epoch })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := OpenReplicated(ctx, ReplicatedConfig{Replica: nodes[2], Epoch: cfg.Epoch, ClusterID: "c", NodeID: 2})
	if !errors.Is(err, ErrNotController) {
		t.Fatalf("open on a follower: %v, want ErrNotController", err)
	}
	waitUntil(t, "leader status", func() bool { return nodes[1].Status().Epoch == cfg.Epoch })
	_, err = OpenReplicated(ctx, ReplicatedConfig{Replica: nodes[1], Epoch: cfg.Epoch - 1, ClusterID: "c", NodeID: 1})
	if !errors.Is(err, ErrNotController) {
		t.Fatalf("open for an older epoch: %v, want ErrNotController", err)
	}
}

// TestReplicatedStoreDeposedMidCommit: a leader cut off from its followers
// cannot commit; when another voter takes over, the pending Commit fails
// with ErrNotController and publishes nothing, the Store refuses every
// later change, and the new leader's Store never sees the batch.
func TestReplicatedStoreDeposedMidCommit(t *testing.T) {
	reg, net, nodes := startVoters(t)
	cfg1 := elect(t, reg, nodes, 1)
	s1 := openReplicated(t, nodes[1], 1, cfg1.Epoch)
	mustCommit(t, s1, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	end := s1.End()

	net.Isolate(1)
	done := make(chan error, 1)
	go func() {
		_, err := s1.Commit(createTopic("lost", 1, nil))
		done <- err
	}()
	// The batch is written on the leader but cannot commit.
	waitUntil(t, "the leader's local append", func() bool { return nodes[1].Status().LogEndOffset > end })
	select {
	case err := <-done:
		t.Fatalf("commit returned %v while the leader was cut off", err)
	case <-time.After(50 * time.Millisecond):
	}

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg2 := reg.takeover(t, testVoter(2))
	if err := nodes[2].BecomeLeader(ctx, cfg2, 1); err != nil {
		t.Fatal(err)
	}
	if err := nodes[3].Follow(ctx, testVoter(2), cfg2.Epoch); err != nil {
		t.Fatal(err)
	}
	if err := nodes[1].Follow(ctx, testVoter(2), cfg2.Epoch); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, ErrNotController) || !errors.Is(err, metalog.ErrDeposed) {
			t.Fatalf("pending commit on the deposed leader: %v, want ErrNotController wrapping ErrDeposed", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("pending commit not failed by the takeover")
	}
	if _, ok := s1.Image().Topic("lost"); ok || s1.End() != end {
		t.Fatalf("a failed commit was published (end %d, was %d)", s1.End(), end)
	}
	if _, err := s1.Commit(createTopic("later", 1, nil)); !errors.Is(err, ErrNotController) {
		t.Fatalf("commit after deposal: %v, want ErrNotController", err)
	}

	net.HealAll()
	s2 := openReplicated(t, nodes[2], 2, cfg2.Epoch)
	if s2.End() != end {
		t.Fatalf("new leader's store at %d, want %d", s2.End(), end)
	}
	if _, ok := s2.Image().Topic("lost"); ok {
		t.Fatal("the uncommitted batch of the deposed leader reached the new one")
	}
	mustCommit(t, s2, createTopic("b", 1, nil))
	// The old leader truncates its uncommitted tail and follows.
	waitUntil(t, "old leader catching up", func() bool { return nodes[1].Status().HighWatermark >= s2.End() })
	want, err := s2.BatchesFrom(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got := committedRecords(t, nodes[1]); !reflect.DeepEqual(got, want) {
		t.Fatalf("old leader committed\n%+v\nthe new leader's store\n%+v", got, want)
	}
}

// TestReplicatedStoreRefusesAfterReElection: a Store opened in epoch E on
// a voter that was then taken over again by itself (epoch E+1: another
// leader may have appended in between) must not append, although the
// voter leads and the Store's offset is the log end. The refusal is made
// where the append would be written, so nothing reaches the log; a Store
// opened in E+1 finds the log as it was and commits at its end.
func TestReplicatedStoreRefusesAfterReElection(t *testing.T) {
	reg, _, nodes := startVoters(t)
	cfg1 := elect(t, reg, nodes, 1)
	s1 := openReplicated(t, nodes[1], 1, cfg1.Epoch)
	mustCommit(t, s1, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	end := s1.End()
	waitUntil(t, "the leader's status", func() bool { return nodes[1].Status().LogEndOffset == end })

	cfg2 := elect(t, reg, nodes, 1)
	if cfg2.Epoch <= cfg1.Epoch {
		t.Fatalf("re-election epoch %d after %d", cfg2.Epoch, cfg1.Epoch)
	}
	_, err := s1.Commit(createTopic("stale", 1, nil))
	if !errors.Is(err, ErrNotController) || !errors.Is(err, metarepl.ErrEpochChanged) {
		t.Fatalf("commit on the store of epoch %d, voter now leads %d: %v, want ErrNotController wrapping ErrEpochChanged",
			cfg1.Epoch, cfg2.Epoch, err)
	}
	if _, err := s1.Commit(createTopic("later", 1, nil)); !errors.Is(err, ErrNotController) {
		t.Fatalf("second commit on the stale store: %v, want ErrNotController", err)
	}
	if s1.End() != end {
		t.Fatalf("the refused commit was published: end %d, was %d", s1.End(), end)
	}
	s2 := openReplicated(t, nodes[1], 1, cfg2.Epoch)
	if got := nodes[1].Status().LogEndOffset; got != end || s2.End() != end {
		t.Fatalf("log end %d, new store at %d, after a refused commit at %d", got, s2.End(), end)
	}
	if _, ok := s2.Image().Topic("stale"); ok {
		t.Fatal("the refused batch is in the log")
	}
	mustCommit(t, s2, createTopic("b", 1, nil))
	want, err := s2.BatchesFrom(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != 2 || want[1].Offset != end {
		t.Fatalf("new store's batches %+v, want its commit at %d", want, end)
	}
	for _, id := range []int32{1, 2, 3} {
		waitUntil(t, "commit", func() bool { return nodes[id].Status().HighWatermark >= s2.End() })
		if got := committedRecords(t, nodes[id]); !reflect.DeepEqual(got, want) {
			t.Fatalf("node %d committed\n%+v\nthe new store\n%+v", id, got, want)
		}
	}
}

// TestReplicatedStoreRefusesALogItDoesNotKnow: a batch appended behind the
// Store's back (its State lacks it) makes the Store's next Commit refused,
// nothing written, instead of appended after it.
func TestReplicatedStoreRefusesALogItDoesNotKnow(t *testing.T) {
	reg, _, nodes := startVoters(t)
	cfg := elect(t, reg, nodes, 1)
	s := openReplicated(t, nodes[1], 1, cfg.Epoch)
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	end := s.End()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	intruder, err := EncodeRecords([]Record{TopicRecord{Name: "intruder", ID: TopicID{1}}})
	if err != nil {
		t.Fatal(err)
	}
	if off, err := nodes[1].Append(ctx, intruder); err != nil || off != end {
		t.Fatalf("direct append: offset %d, %v, want %d", off, err, end)
	}
	waitUntil(t, "the leader's status", func() bool { return nodes[1].Status().LogEndOffset == end+1 })

	_, err = s.Commit(createTopic("behind", 1, nil))
	if !errors.Is(err, ErrNotController) || !errors.Is(err, metarepl.ErrOffsetMismatch) {
		t.Fatalf("commit on a store behind its log: %v, want ErrNotController wrapping ErrOffsetMismatch", err)
	}
	if s.End() != end {
		t.Fatalf("the refused commit was published: end %d, was %d", s.End(), end)
	}
	waitUntil(t, "the intruder committed", func() bool { return nodes[1].Status().HighWatermark == end+1 })
	bs, err := nodes[1].Committed(0, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	if got := nodes[1].Status().LogEndOffset; got != end+1 || len(bs) != 2 || !reflect.DeepEqual(bs[1].Records, intruder) {
		t.Fatalf("log end %d, committed %+v: want only the intruder after the store's batch", got, bs)
	}
}

// TestReplicatedStorePipelinesCommits: on a replicated Store only the
// planning is serialized. While one change waits for the voters (here
// cut off), the next is planned on the State holding it and appended
// behind it; neither is published before it commits, a plan with no
// records returns only once the changes before it did, and when the
// voters are back both commit, in order.
func TestReplicatedStorePipelinesCommits(t *testing.T) {
	reg, net, nodes := startVoters(t)
	cfg := elect(t, reg, nodes, 1)
	s := openReplicated(t, nodes[1], 1, cfg.Epoch)
	mustCommit(t, s, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	before := s.End()

	net.Isolate(2)
	net.Isolate(3)
	type result struct {
		img *Image
		err error
	}
	commit := func(p Plan) chan result {
		ch := make(chan result, 1)
		go func() {
			img, err := s.Commit(p)
			ch <- result{img, err}
		}()
		return ch
	}
	first := commit(createTopic("first", 1, nil))
	waitUntil(t, "the first change appended", func() bool { return nodes[1].Status().LogEndOffset > before })

	planned := make(chan bool, 1)
	second := commit(func(st *State) ([]Record, error) {
		_, sawFirst := st.Topics["first"]
		planned <- sawFirst
		return createTopic("second", 1, nil)(st)
	})
	select {
	case sawFirst := <-planned:
		if !sawFirst {
			t.Fatal("the second change was planned on a State without the first")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the second change was not planned while the first waited for the voters")
	}
	empty := commit(func(*State) ([]Record, error) { return nil, nil })
	time.Sleep(100 * time.Millisecond)
	select {
	case r := <-first:
		t.Fatalf("the first change returned while the voters were cut off: %+v", r)
	case r := <-empty:
		t.Fatalf("a plan with no records returned before the changes before it committed: %+v", r)
	default:
	}
	if _, ok := s.Image().Topic("first"); ok || s.End() != before {
		t.Fatalf("published before it committed: end %d, want %d", s.End(), before)
	}

	net.HealAll()
	for name, ch := range map[string]chan result{"first": first, "second": second, "empty": empty} {
		select {
		case r := <-ch:
			if r.err != nil {
				t.Fatalf("%s: %v", name, r.err)
			}
			if _, ok := r.img.Topic("first"); !ok {
				t.Fatalf("%s returned an image without the first topic", name)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s did not return after the voters came back", name)
		}
	}
	img := s.Image()
	for _, name := range []string{"first", "second"} {
		if _, ok := img.Topic(name); !ok {
			t.Fatalf("topic %s missing from the published image", name)
		}
	}
	if img.Offset() != s.next {
		t.Fatalf("published end %d, appended end %d", img.Offset(), s.next)
	}
}
