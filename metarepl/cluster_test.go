package metarepl

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/metalog"
)

func TestReplicaCommitWaitsForEveryISRVoter(t *testing.T) {
	c := newCluster(t, 5000, 2)
	cfg := c.elect(1, 2, 3, observerID)
	want := map[int64]string{}
	off := c.append(1, "a", "b")
	want[off] = fmt.Sprintf("%d/%d:a,b", off, cfg.Epoch)
	// Append returned: every ISR voter has the batch durable (a Log
	// reports only fsynced batches).
	for _, id := range []int32{2, 3} {
		if end := c.logs[id].End(); end < off+2 {
			t.Fatalf("Append returned with voter %d's durable log ending at %d", id, end)
		}
	}
	// With voter 3 unable to fetch, a commit waits (the lag time is long,
	// so it is not shrunk out meanwhile)...
	c.net.Cut(3, 1)
	done := make(chan error, 1)
	go func() {
		_, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte("c")})
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("append committed while ISR voter 3 could not fetch (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	if end := c.logs[2].End(); end != off+3 {
		t.Fatalf("voter 2's log ends at %d, want %d", end, off+3)
	}
	if end := c.logs[observerID].End(); end != off+2 {
		t.Fatalf("the observer holds %d records of which %d are committed", end, off+2)
	}
	// ...and completes once voter 3 fetches it.
	c.net.HealAll()
	if err := <-done; err != nil {
		t.Fatalf("append after heal: %v", err)
	}
	if end := c.logs[3].End(); end != off+3 {
		t.Fatalf("voter 3's log ends at %d after the commit, want %d", end, off+3)
	}
	want[off+2] = fmt.Sprintf("%d/%d:c", off+2, cfg.Epoch)
	c.waitFor("the observer to catch up", func() bool { return c.nodes[observerID].Status().HighWatermark == off+3 })
	c.checkPrefixes(want)
	if got := c.committed(observerID); len(got) != 2 {
		t.Fatalf("observer committed %v", got)
	}
}

func TestReplicaShrinksAndExpandsISR(t *testing.T) {
	c := newCluster(t, 200, 2)
	cfg := c.elect(1, 2, 3, observerID)
	want := map[int64]string{}
	off := c.append(1, "before")
	want[off] = fmt.Sprintf("%d/%d:before", off, cfg.Epoch)
	c.net.Isolate(3)
	// Commits go on once the register has shrunk voter 3 out.
	for i := range 5 {
		v := fmt.Sprintf("during-%d", i)
		o := c.append(1, v)
		want[o] = fmt.Sprintf("%d/%d:%s", o, cfg.Epoch, v)
	}
	if got := c.isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("register ISR %v while 3 is cut off, want [1 2]", got)
	}
	if st := c.nodes[1].Status(); len(st.ISR) != 2 {
		t.Fatalf("leader's ISR %v", st.ISR)
	}
	c.net.HealAll()
	c.waitFor("voter 3 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	if end, leo := c.logs[3].End(), c.logs[1].End(); end != leo {
		t.Fatalf("voter 3 expanded at %d, leader at %d", end, leo)
	}
	// Voter 3 counts again: a commit waits for it.
	o := c.append(1, "after")
	want[o] = fmt.Sprintf("%d/%d:after", o, cfg.Epoch)
	if end := c.logs[3].End(); end < o+1 {
		t.Fatalf("commit at %d without voter 3 (its log ends at %d)", o, end)
	}
	c.waitFor("the observer to catch up", func() bool { return c.nodes[observerID].Status().HighWatermark == o+1 })
	c.checkPrefixes(want)
}

func TestReplicaLeadershipMovesAndTruncatesTheOldTail(t *testing.T) {
	c := newCluster(t, 200, 2)
	cfg1 := c.elect(1, 2, 3, observerID)
	want := map[int64]string{}
	for i := range 3 {
		v := fmt.Sprintf("e1-%d", i)
		o := c.append(1, v)
		want[o] = fmt.Sprintf("%d/%d:%s", o, cfg1.Epoch, v)
	}
	committedEnd := c.logs[1].End()
	// Cut the leader off: its next appends are durable on it alone and
	// cannot commit (min ISR 2 keeps the others in its ISR).
	c.net.Isolate(1)
	c.reg.setCut(1, true)
	stale := make(chan error, 2)
	for i := range 2 {
		go func() {
			_, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte(fmt.Sprintf("uncommitted-%d", i))})
			stale <- err
		}()
	}
	c.waitFor("the old leader's uncommitted tail", func() bool { return c.logs[1].End() == committedEnd+2 })
	// Voter 2, in the ISR, takes over epoch 2; 3 and the observer follow.
	cfg2 := c.elect(2, 3, observerID)
	if cfg2.Epoch != cfg1.Epoch+1 {
		t.Fatalf("epoch %d after %d", cfg2.Epoch, cfg1.Epoch)
	}
	for i := range 3 {
		v := fmt.Sprintf("e2-%d", i)
		o := c.append(2, v)
		want[o] = fmt.Sprintf("%d/%d:%s", o, cfg2.Epoch, v)
	}
	if got := c.isr(); !slices.Equal(got, []int32{2, 3}) {
		t.Fatalf("ISR %v after voter 1 was cut off in epoch 2, want [2 3]", got)
	}
	select {
	case err := <-stale:
		t.Fatalf("the cut-off leader's append returned %v before it was deposed", err)
	default:
	}
	// The old leader comes back and learns it was deposed (the register
	// read it does when told to follow is what package voter will do on a
	// failed lease renewal): its pending appends fail, it truncates its
	// uncommitted tail and catches up.
	c.net.HealAll()
	c.reg.setCut(1, false)
	if err := c.nodes[1].Follow(c.ctx(), voterOf(2), cfg2.Epoch); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-stale; !errors.Is(err, metalog.ErrDeposed) {
			t.Fatalf("deposed leader's append: %v, want ErrDeposed", err)
		}
	}
	if _, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte("late")}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append at a follower: %v, want ErrNotLeader", err)
	}
	c.waitFor("voter 1 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	o := c.append(2, "e2-last")
	want[o] = fmt.Sprintf("%d/%d:e2-last", o, cfg2.Epoch)
	c.waitFor("every node at the high watermark", func() bool {
		for id := range c.nodes {
			if c.nodes[id].Status().HighWatermark != o+1 {
				return false
			}
		}
		return true
	})
	c.checkPrefixes(want)
	for id := int32(1); id <= 3; id++ {
		for _, s := range c.committed(id) {
			if strings.Contains(s, "uncommitted") {
				t.Fatalf("node %d kept the deposed leader's uncommitted %s", id, s)
			}
		}
		if got, want := describe(readLog(t, c.logs[id])), c.committed(2); !slices.Equal(got, want) {
			t.Fatalf("voter %d's log %v, leader's committed %v", id, got, want)
		}
	}
}

func TestReplicaDeposedByRegisterAnswer(t *testing.T) {
	c := newCluster(t, 200, 1)
	c.elect(1, 2, 3, observerID)
	c.append(1, "a")
	// Another voter takes over behind the leader's back; the leader's
	// next ISR change (shrinking the voters it can no longer reach) is
	// refused for its epoch, which deposes it.
	c.net.Isolate(1)
	c.reg.takeover(t, voterOf(2))
	pending := make(chan error, 1)
	go func() {
		_, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte("b")})
		pending <- err
	}()
	if err := <-pending; !errors.Is(err, metalog.ErrDeposed) {
		t.Fatalf("append at a leader deposed by the register: %v", err)
	}
	c.waitFor("the old leader to step down", func() bool { return c.nodes[1].Status().Role != RoleLeader })
}

func TestReplicaCrashRestartKeepsCommitted(t *testing.T) {
	c := newCluster(t, 200, 2)
	cfg1 := c.elect(1, 2, 3, observerID)
	want := map[int64]string{}
	appendN := func(leader int32, epoch int32, prefix string, n int) {
		for i := range n {
			v := fmt.Sprintf("%s-%d", prefix, i)
			o := c.append(leader, v)
			want[o] = fmt.Sprintf("%d/%d:%s", o, epoch, v)
		}
	}
	appendN(1, cfg1.Epoch, "a", 5)
	// A follower crashes: the leader shrinks it out and goes on; restarted,
	// it has every record it had acknowledged, and catches up.
	hw3 := c.crash(3)
	appendN(1, cfg1.Epoch, "b", 5)
	c.startNode(3)
	if got := c.logs[3].HighWatermark(); got < hw3 {
		t.Fatalf("voter 3's high watermark went back across its crash: %d, was %d", got, hw3)
	}
	if err := c.nodes[3].Follow(c.ctx(), voterOf(1), cfg1.Epoch); err != nil {
		t.Fatal(err)
	}
	c.waitFor("voter 3 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	// The leader crashes; voter 2 takes over, 3 follows it.
	hw1 := c.crash(1)
	cfg2 := c.elect(2, 3, observerID)
	appendN(2, cfg2.Epoch, "c", 5)
	c.startNode(1)
	if got := c.logs[1].HighWatermark(); got < hw1 {
		t.Fatalf("voter 1's high watermark went back across its crash: %d, was %d", got, hw1)
	}
	if err := c.nodes[1].Follow(c.ctx(), voterOf(2), cfg2.Epoch); err != nil {
		t.Fatal(err)
	}
	c.waitFor("voter 1 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	appendN(2, cfg2.Epoch, "d", 2)
	end := c.logs[2].End()
	c.waitFor("every node at the high watermark", func() bool {
		for id := range c.nodes {
			if c.nodes[id].Status().HighWatermark != end {
				return false
			}
		}
		return true
	})
	if len(want) != 17 {
		t.Fatalf("%d acknowledged batches, want 17", len(want))
	}
	c.checkPrefixes(want)
}

func TestReplicaLongPollAndRoles(t *testing.T) {
	c := newCluster(t, 5000, 2)
	// Node 1 holds fetches up to 10s.
	c.nodes[1].Close()
	c.logs[1].Close()
	cfg1 := c.cfgs[1]
	cfg1.FetchMaxWait = 10 * time.Second
	c.cfgs[1] = cfg1
	c.startNode(1)
	if _, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte("x")}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("append at an idle node: %v", err)
	}
	if resp := c.nodes[1].HandleFetch(c.ctx(), FetchRequest{Replica: voterOf(2), CurrentEpoch: 1}); !errors.Is(resp.Err, kerr.NotLeaderForPartition) {
		t.Fatalf("fetch at an idle node: %+v", resp)
	}
	cfg := c.elect(1, 2, 3)
	off := c.append(1, "a")
	// An observer's fetch at the high watermark is held until a commit
	// moves it, then answered with the new batch.
	got := make(chan FetchResponse, 1)
	go func() {
		got <- c.nodes[1].HandleFetch(c.ctx(), FetchRequest{Replica: metalog.Voter{ID: 9}, Observer: true,
			CurrentEpoch: cfg.Epoch, FetchOffset: off + 1, LastFetchedEpoch: cfg.Epoch, MaxWaitMs: 5000})
	}()
	select {
	case resp := <-got:
		t.Fatalf("a fetch with nothing new answered at once: %+v", resp)
	case <-time.After(100 * time.Millisecond):
	}
	c.append(1, "b")
	select {
	case resp := <-got:
		if resp.Err != nil || len(resp.Batches) != 1 || string(resp.Batches[0].Records[0]) != "b" || resp.HighWatermark != off+2 {
			t.Fatalf("parked fetch answered %+v", resp)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("parked fetch not answered after a commit")
	}
	// Epochs only go forward.
	if err := c.nodes[1].BecomeLeader(c.ctx(), cfg, c.minISR); err != nil {
		t.Fatalf("becoming leader of the same epoch again: %v", err)
	}
	if err := c.nodes[2].Follow(c.ctx(), voterOf(3), cfg.Epoch-1); !errors.Is(err, ErrStaleEpoch) {
		t.Fatalf("follow an older epoch: %v", err)
	}
	c.nodes[1].Close()
	if _, err := c.nodes[1].Append(c.ctx(), [][]byte{[]byte("c")}); !errors.Is(err, ErrClosed) {
		t.Fatalf("append after Close: %v", err)
	}
}
