package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/metarepl"
)

// stateWithTopics is a State after a broker start and n one-partition
// topics, built through Apply as the log would.
func stateWithTopics(t *testing.T, n int) *State {
	t.Helper()
	st := NewState("ck")
	for _, r := range st.PlanBrokerStart(self) {
		if err := st.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	for i := range n {
		rs, err := createTopic(fmt.Sprintf("t%d", i), 1, map[string]string{"retention.ms": "1000"})(st)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if err := st.Apply(r); err != nil {
				t.Fatal(err)
			}
		}
	}
	return st
}

// A checkpoint restates the State: applied to an empty State (a replay
// starting at the log's start) it gives the same State, it survives the
// record encoding, and applied to the State it restates it keeps every
// *Topic, so the replica manager sees no topic changed.
func TestCheckpointRecordRestatesTheState(t *testing.T) {
	st := stateWithTopics(t, 5)
	b, err := EncodeRecord(CheckpointRecord{State: st})
	if err != nil {
		t.Fatal(err)
	}
	dec, err := DecodeRecord(b)
	if err != nil {
		t.Fatal(err)
	}
	fresh := NewState("ck")
	if err := fresh.Apply(dec); err != nil {
		t.Fatal(err)
	}
	if d := fresh.differs(st); d != "" {
		t.Fatalf("replayed from a checkpoint: %s", d)
	}
	if _, err := fresh.topicByID(st.Topics["t3"].ID); err != nil {
		t.Fatalf("topic index not rebuilt: %v", err)
	}
	before := map[string]*Topic{}
	for n, tp := range st.Topics {
		before[n] = tp
	}
	again := st.clone()
	if err := again.Apply(dec); err != nil {
		t.Fatal(err)
	}
	for n, tp := range again.Topics {
		if before[n] != tp {
			t.Fatalf("topic %s is a new *Topic after a checkpoint that did not change it", n)
		}
	}
	// The State after a checkpoint changes like any other.
	rs, err := createTopic("after", 2, nil)(fresh)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if err := fresh.Apply(r); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok := st.Topics["after"]; ok {
		t.Fatal("a change after the checkpoint reached the State it was taken from")
	}
}

func TestCheckpointRecordRefusals(t *testing.T) {
	st := stateWithTopics(t, 1)
	other := NewState("another-cluster")
	if err := st.Apply(CheckpointRecord{State: other}); err == nil || !strings.Contains(err.Error(), "another-cluster") {
		t.Fatalf("checkpoint of another cluster: %v", err)
	}
	if err := st.Apply(CheckpointRecord{}); err == nil {
		t.Fatal("an empty checkpoint applied")
	}
	back := st.clone()
	back.NextProducerID = st.NextProducerID - 1
	st.NextProducerID = 5000
	if err := st.Apply(CheckpointRecord{State: back}); err == nil {
		t.Fatal("a checkpoint taking producer ids back applied")
	}
}

// With invariants on, a checkpoint that disagrees with the State a node
// replayed to is a violation: the log lost or changed a record.
func TestCheckpointDisagreeingWithTheReplayIsAViolation(t *testing.T) {
	if !invariants.Enabled {
		t.Skip("needs -tags invariants")
	}
	st := stateWithTopics(t, 2)
	wrong := stateWithTopics(t, 3)
	v := invariants.Catch(func() { _ = st.Apply(CheckpointRecord{State: wrong}) })
	if v == nil || !strings.Contains(v.Msg, "checkpoint differs") {
		t.Fatalf("violation %v", v)
	}
}

func TestCheckpointerDue(t *testing.T) {
	now := time.Unix(1000, 0)
	c := checkpointer{policy: CheckpointPolicy{MaxBytes: 100, MaxInterval: time.Minute, Now: func() time.Time { return now }}}
	c.done()
	if c.due() {
		t.Fatal("due with nothing appended")
	}
	c.appended(99)
	if c.due() {
		t.Fatal("due below MaxBytes and the interval")
	}
	c.appended(1)
	if !c.due() {
		t.Fatal("not due at MaxBytes")
	}
	c.done()
	now = now.Add(time.Hour)
	if c.due() {
		t.Fatal("due by time with nothing appended since")
	}
	c.appended(1)
	if !c.due() {
		t.Fatal("not due past the interval with records appended")
	}
	off := checkpointer{}
	off.done()
	off.appended(1 << 40)
	if off.due() {
		t.Fatal("due with no policy")
	}
}

// A replicated Store checkpoints by its policy; the checkpoint batches
// commit on every voter; a Store on the next leader replays to the same
// State; an Observer fed every batch, checkpoints included, holds it too.
func TestReplicatedStoreCheckpoints(t *testing.T) {
	reg, net, nodes := startVoters(t, func(c *metarepl.Config) { c.TrimMinBytes, c.LagTimeMaxMs = 1, 300 })
	cfg1 := elect(t, reg, nodes, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s1, err := OpenReplicated(ctx, ReplicatedConfig{Replica: nodes[1], Epoch: cfg1.Epoch, ClusterID: "replicated-test",
		NodeID: 1, Logger: quiet(), Checkpoints: CheckpointPolicy{MaxBytes: 1500}})
	if err != nil {
		t.Fatal(err)
	}
	obs, err := NewObserver(mustSnapshot(t, s1), 1)
	if err != nil {
		t.Fatal(err)
	}
	mustCommit(t, s1, func(st *State) ([]Record, error) { return st.PlanBrokerStart(self), nil })
	for i := range 30 {
		mustCommit(t, s1, createTopic(fmt.Sprintf("t%d", i), 2, nil))
	}
	// Checkpoints commit after the change that triggered them, waited
	// for by a plan with no records.
	mustCommit(t, s1, func(*State) ([]Record, error) { return nil, nil })
	waitUntil(t, "commit", func() bool { return nodes[1].Status().HighWatermark >= s1.next })

	s1.mu.Lock()
	taken := s1.ckpt.taken
	s1.mu.Unlock()
	// Each topic's records are ~300 bytes: a checkpoint every few topics.
	if taken < 3 {
		t.Fatalf("%d checkpoints, want several", taken)
	}
	// Every voter trims its own log to the newest committed checkpoint
	// (TrimMinBytes 1): its log starts with it.
	for id, r := range nodes {
		waitUntil(t, fmt.Sprintf("node %d trims", id), func() bool { return r.Status().LogStartOffset > 0 })
		var start int64
		var bs []metarepl.Batch
		waitUntil(t, "a read of the log's start", func() bool {
			// The log may trim again between the two calls.
			start = r.Status().LogStartOffset
			var err error
			bs, err = r.Committed(start, 1<<30)
			return err == nil
		})
		if len(bs) == 0 || !bs[0].Checkpoint || len(bs[0].Records) != 1 {
			t.Fatalf("node %d's log starts at %d with %+v, want a checkpoint batch", id, start, bs)
		}
		rs, err := decodeRecords(bs[0].Records)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := rs[0].(CheckpointRecord); !ok {
			t.Fatalf("node %d's first batch holds a %T", id, rs[0])
		}
	}
	// An observer that fell behind the start must start from a snapshot
	// (a broker's FetchSnapshot), then follows the batches.
	if _, err := s1.BatchesFrom(obs.Next(), 1<<20); !errors.Is(err, ErrSnapshotNeeded) {
		t.Fatalf("batches below the log start: %v, want ErrSnapshotNeeded", err)
	}
	if err := obs.Reset(mustSnapshot(t, s1)); err != nil {
		t.Fatal(err)
	}
	for _, b := range s1.mustBatchesFrom(t, obs.Next()) {
		if err := obs.Apply(b); err != nil {
			t.Fatalf("observer applies the batch at %d: %v", b.Offset, err)
		}
	}
	want := s1.Image().st
	if d := obs.Image().st.differs(want); d != "" {
		t.Fatalf("observer after checkpoints: %s", d)
	}

	// Voter 3 is cut off while more checkpoints commit and the others
	// trim past its log end: it must start over at the leader's start.
	net.Isolate(3)
	end3 := nodes[3].Status().LogEndOffset
	// (the ISR shrinks to 1 and 2 once voter 3 lags; commits wait for it)
	for i := range 30 {
		mustCommit(t, s1, createTopic(fmt.Sprintf("u%d", i), 2, nil))
	}
	mustCommit(t, s1, func(*State) ([]Record, error) { return nil, nil })
	waitUntil(t, "the leader trims past voter 3", func() bool { return nodes[1].Status().LogStartOffset > end3 })
	net.HealAll()
	waitUntil(t, "voter 3 catches up", func() bool {
		st := nodes[3].Status()
		return st.LogStartOffset > end3 && st.HighWatermark >= s1.End()
	})
	// Only a voter in the metadata ISR may take over: wait until the
	// leader has proposed it back in (a register compare-and-set).
	waitUntil(t, "voter 3 back in the metadata ISR", func() bool {
		return slices.Contains(nodes[1].Status().ISR, testVoter(3))
	})
	want = s1.Image().st

	// Voter 3 takes over: it replays its log, which starts at a
	// checkpoint, to the same State.
	cfg3 := elect(t, reg, nodes, 3)
	s3 := openReplicated(t, nodes[3], 3, cfg3.Epoch)
	if d := s3.state.differs(want); d != "" {
		t.Fatalf("the next leader replayed to another state: %s", d)
	}
	if s3.End() != s1.End() {
		t.Fatalf("next leader's store at %d, the first one's at %d", s3.End(), s1.End())
	}
	mustCommit(t, s3, createTopic("after", 1, nil))
}

func mustSnapshot(t *testing.T, s *Store) []byte {
	t.Helper()
	b, _, err := s.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (s *Store) mustBatchesFrom(t *testing.T, from int64) []Batch {
	t.Helper()
	bs, err := s.BatchesFrom(from, 1<<30)
	if err != nil {
		t.Fatal(err)
	}
	return bs
}
