package replicamgr

import (
	"fmt"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// The cleaner is handed the compacted partitions hosted here, with their
// topic's settings, and no others; a step cleans the due one.
func TestCleanerCompactsCompactedTopicsOnly(t *testing.T) {
	c := newCluster(t, "log.cleaner.backoff.ms=100")
	compact := map[string]string{"cleanup.policy": "compact", "segment.bytes": "300", "min.cleanable.dirty.ratio": "0.1", "delete.retention.ms": "5"}
	c.createTopic("kv", compact, []int32{1})
	c.createTopic("plain", map[string]string{"segment.bytes": "300"}, []int32{1})
	c.createTopic("elsewhere", compact, []int32{2})
	c.apply()
	for _, topic := range []string{"kv", "plain"} {
		r, err := c.m.Leader(topic, 0)
		if err != nil {
			t.Fatal(err)
		}
		for v := range 10 {
			b := testkit.Batch{PartitionLeaderEpoch: -1, Records: []testkit.Record{{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", v)}}}
			if _, err := r.Append(b.Encode()); err != nil {
				t.Fatal(err)
			}
		}
	}
	cands := c.m.cleanerCandidates()
	if len(cands) != 1 || cands[0].Topic != "kv" || cands[0].Settings.MinCleanableRatio != 0.1 || cands[0].Settings.DeleteRetentionMs != 5 {
		t.Fatalf("candidates %+v, want kv alone with its settings", cands)
	}
	if !c.m.CleanOnce() {
		t.Fatal("no cleaning pass on the dirty compacted partition")
	}
	st := c.m.CleanerStats()
	if st.Runs != 1 || st.RecordsDropped == 0 {
		t.Fatalf("cleaner stats %+v: want one pass that dropped the old versions", st)
	}
	if c.m.CleanOnce() {
		t.Fatal("a second pass on a log that is clean")
	}
}

// A compacted partition that stopped receiving writes still rolls its
// active segment at segment.ms (on the retention task), so the cleaner
// gets to its last records.
func TestQuietCompactedPartitionRollsAndIsCleaned(t *testing.T) {
	c := newCluster(t, "log.retention.check.interval.ms=1000")
	c.createTopic("kv", map[string]string{"cleanup.policy": "compact", "segment.ms": "60000", "min.cleanable.dirty.ratio": "0.1"}, []int32{1})
	c.apply()
	r, err := c.m.Leader("kv", 0)
	if err != nil {
		t.Fatal(err)
	}
	for v := range 10 {
		b := testkit.Batch{PartitionLeaderEpoch: -1, Records: []testkit.Record{{Key: []byte("k"), Value: fmt.Appendf(nil, "v%d", v)}}}
		if _, err := r.Append(b.Encode()); err != nil {
			t.Fatal(err)
		}
	}
	c.m.RunDue() // arms the tasks
	if c.m.CleanOnce() {
		t.Fatal("cleaned the active segment")
	}
	c.clock.Advance(59 * time.Second)
	c.m.RunDue()
	if r.NumSegments() != 1 || c.m.CleanOnce() {
		t.Fatalf("rolled or cleaned before segment.ms: %d segments", r.NumSegments())
	}
	c.clock.Advance(2 * time.Second)
	c.m.RunDue()
	if r.NumSegments() != 2 {
		t.Fatalf("%d segments after segment.ms passed on a quiet partition, want 2", r.NumSegments())
	}
	if !c.m.CleanOnce() || c.m.CleanerStats().RecordsDropped != 9 {
		t.Fatalf("cleaner stats %+v: want the 9 older versions dropped", c.m.CleanerStats())
	}
}
