package metarepl

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
)

// withTrim restarts every node of c with Config.TrimMinBytes set to n and
// TrimDelay to delay.
func withTrim(c *cluster, n int64, delay time.Duration) {
	for id := int32(1); id <= observerID; id++ {
		c.nodes[id].Close()
		c.logs[id].Close()
		cfg := c.cfgs[id]
		cfg.TrimMinBytes, cfg.TrimDelay = n, delay
		c.cfgs[id] = cfg
		c.startNode(id)
	}
}

// checkpoint appends a checkpoint batch at node id's log end in its epoch
// and waits for its commit.
func (c *cluster) checkpoint(id int32, val string) int64 {
	c.t.Helper()
	st := c.nodes[id].Status()
	wait, err := c.nodes[id].StartCheckpointAt(c.ctx(), st.Epoch, st.LogEndOffset, [][]byte{[]byte(val)})
	if err == nil {
		err = wait(c.ctx())
	}
	if err != nil {
		c.t.Fatalf("checkpoint %s at node %d: %v", val, id, err)
	}
	return st.LogEndOffset
}

// suffix is bs from the batch at offset on (nil if none starts there).
func suffix(bs []Batch, offset int64) []Batch {
	i := slices.IndexFunc(bs, func(b Batch) bool { return b.Offset == offset })
	if i < 0 {
		return nil
	}
	return bs[i:]
}

func TestReplicaCutOffVoterCatchesUpFromTheLeadersStart(t *testing.T) {
	c := newCluster(t, 200, 2)
	withTrim(c, 256, 20*time.Millisecond)
	cfg := c.elect(1, 2, 3, observerID)
	c.append(1, "before")
	c.waitFor("voter 3 to fetch", func() bool { return c.logs[3].End() == 1 })
	c.net.Isolate(3)
	// The leader appends, checkpoints and appends past TrimMinBytes: the
	// checkpoint commits without voter 3 (shrunk out), and the leader, voter
	// 2 and the observer trim their logs to it.
	for i := range 20 {
		c.append(1, fmt.Sprintf("cut-%02d", i))
	}
	ck := c.checkpoint(1, "state")
	for i := range 20 {
		c.append(1, fmt.Sprintf("after-%02d", i))
	}
	for _, id := range []int32{1, 2, observerID} {
		c.waitFor(fmt.Sprintf("node %d to trim", id), func() bool { return c.nodes[id].Status().LogStartOffset == ck })
	}
	if _, err := c.nodes[1].Committed(0, 1<<20); !errors.Is(err, kerr.OffsetOutOfRange) {
		t.Fatalf("read below the leader's start: %v, want OFFSET_OUT_OF_RANGE", err)
	}
	if got := c.isr(); !slices.Equal(got, []int32{1, 2}) {
		t.Fatalf("ISR %v with voter 3 cut off", got)
	}
	// Reconnected, voter 3's log ends below the leader's start: it starts
	// over there, fetches the checkpoint and the rest, and rejoins the ISR.
	c.net.HealAll()
	c.waitFor("voter 3 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	last := c.append(1, "last")
	c.waitFor("every node at the high watermark", func() bool {
		for id := range c.nodes {
			if c.nodes[id].Status().HighWatermark != last+1 {
				return false
			}
		}
		return true
	})
	if st := c.nodes[3].Status(); st.LogStartOffset != ck {
		t.Fatalf("voter 3's log starts at %d, want the checkpoint at %d", st.LogStartOffset, ck)
	}
	leader := readLog(t, c.logs[1])
	for _, id := range []int32{2, 3, observerID} {
		got := readLog(t, c.logs[id])
		if len(got) == 0 || got[0].Offset != ck || !got[0].Checkpoint {
			t.Fatalf("node %d's log starts with %v, want the checkpoint at %d", id, describe(got[:min(1, len(got))]), ck)
		}
		if g, w := describe(got), describe(suffix(leader, ck)); !slices.Equal(g, w) {
			t.Fatalf("node %d's log %v, the leader's from %d %v", id, g, ck, w)
		}
	}
	if got := describe(leader[:1]); !slices.Equal(got, []string{fmt.Sprintf("%d/%d:state", ck, cfg.Epoch)}) {
		t.Fatalf("the leader's log starts with %v", got)
	}
	c.checkPrefixes(nil)
	// Voter 3 restarts on its reset log: the start and the batches stay.
	c.crash(3)
	c.startNode(3)
	if got := c.logs[3].StartOffset(); got != ck {
		t.Fatalf("voter 3's log starts at %d after a restart, want %d", got, ck)
	}
}

// A deposed leader whose uncommitted tail runs past the new leader's
// checkpoint must not keep any of it: the new leader, trimmed, cannot say
// where the old epoch ended, so the old leader starts over at its start.
func TestReplicaOldLeaderTailPastTheCheckpointStartsOver(t *testing.T) {
	c := newCluster(t, 200, 2)
	withTrim(c, 64, 20*time.Millisecond)
	// Voter 1 does not trim its own log, which would hide below its start
	// what it kept of its tail.
	cfg1 := c.cfgs[1]
	cfg1.TrimMinBytes = 1 << 40
	c.cfgs[1] = cfg1
	c.nodes[1].Close()
	c.logs[1].Close()
	c.startNode(1)
	c.elect(1, 2, 3, observerID)
	for i := range 3 {
		c.append(1, fmt.Sprintf("e1-%d", i))
	}
	committedEnd := c.logs[1].End()
	c.net.Isolate(1)
	c.reg.setCut(1, true)
	for i := range 6 {
		go c.nodes[1].Append(c.ctx(), [][]byte{[]byte(fmt.Sprintf("uncommitted-%d", i))}) //nolint:errcheck // deposed below
	}
	c.waitFor("the old leader's uncommitted tail", func() bool { return c.logs[1].End() == committedEnd+6 })
	cfg2 := c.elect(2, 3, observerID)
	c.append(2, "e2-0")
	ck := c.checkpoint(2, "state")
	for i := range 10 {
		c.append(2, fmt.Sprintf("e2-after-%d", i))
	}
	if ck >= committedEnd+6 {
		t.Fatalf("checkpoint at %d, not inside the old leader's tail [%d, %d)", ck, committedEnd, committedEnd+6)
	}
	c.waitFor("the new leader to trim", func() bool { return c.nodes[2].Status().LogStartOffset == ck })
	c.net.HealAll()
	c.reg.setCut(1, false)
	if err := c.nodes[1].Follow(c.ctx(), voterOf(2), cfg2.Epoch); err != nil {
		t.Fatal(err)
	}
	c.waitFor("voter 1 back in the ISR", func() bool { return slices.Equal(c.isr(), []int32{1, 2, 3}) })
	last := c.append(2, "last")
	c.waitFor("voter 1 at the high watermark", func() bool { return c.nodes[1].Status().HighWatermark == last+1 })
	got := readLog(t, c.logs[1])
	for _, b := range got {
		if strings.HasPrefix(string(b.Records[0]), "uncommitted") {
			t.Fatalf("voter 1 kept %s of its deposed tail: %v", describe([]Batch{b}), describe(got))
		}
	}
	if g, w := describe(got), describe(suffix(readLog(t, c.logs[2]), ck)); !slices.Equal(g, w) {
		t.Fatalf("voter 1's log %v, the leader's from %d %v", g, ck, w)
	}
	c.checkPrefixes(nil)
}

// With TrimDelay, an observer a little behind the high watermark receives
// each checkpoint before the logs are trimmed to it: it trims its own log
// and never starts over. (With TrimDelay -1 it started over at most of
// the trims when this test was written.)
func TestReplicaTrimDelaySparesObservers(t *testing.T) {
	c := newCluster(t, 5000, 2)
	events := &countingHandler{counts: map[string]int{}}
	for id := int32(1); id <= observerID; id++ {
		c.nodes[id].Close()
		c.logs[id].Close()
		cfg := c.cfgs[id]
		cfg.TrimMinBytes, cfg.TrimDelay = 256, 500*time.Millisecond
		if id == observerID {
			cfg.Logger = slog.New(events)
		}
		c.cfgs[id] = cfg
		c.startNode(id)
	}
	c.elect(1, 2, 3, observerID)
	var last int64
	for i := range 200 {
		if i%20 == 19 {
			last = c.checkpoint(1, "state")
		} else {
			c.append(1, fmt.Sprint(i))
		}
	}
	for id := int32(1); id <= observerID; id++ {
		c.waitFor(fmt.Sprintf("node %d to trim to the last checkpoint", id), func() bool {
			return c.nodes[id].Status().LogStartOffset == last
		})
	}
	if n := events.count("metadata log starts over at the leader's log start"); n != 0 || events.count("metadata log trimmed") == 0 {
		t.Fatalf("the observer started over %d times (events %v)", n, events.snapshot())
	}
}
