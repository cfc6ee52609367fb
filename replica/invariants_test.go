//go:build invariants

package replica

import (
	"testing"

	"github.com/sluice-io/sluice/internal/invariants/invtest"
	"github.com/sluice-io/sluice/segment"
)

// These tests corrupt a partition's in-memory state and expect the
// assertion guarding it to panic; the rest of the suite, run with the tag,
// shows the assertions stay quiet when the state is right. A partition
// that panicked holds its lock and is abandoned, not closed.

// appended is a partition leading in epoch 3 with 4 records in its log.
func appended(t *testing.T) *Partition {
	p := openPartition(t, segment.NewMemFS(), 3, testConfig())
	mustAppend(t, p, makeBatch(t, plain(2)))
	mustAppend(t, p, makeBatch(t, plain(2)))
	return p
}

func retention(p *Partition) func() { return func() { _, _ = p.ApplyRetention() } }

func TestInvariantHWWithinLog(t *testing.T) {
	p := appended(t)
	p.hw.Store(p.LogEndOffset() + 5)
	invtest.Expect(t, retention(p), "t-0", "HW 9 outside [log start 0, LEO 4]")

	p = appended(t)
	if _, err := p.DeleteRecords(-1); err != nil {
		t.Fatal(err)
	}
	p.hw.Store(p.LogStartOffset() - 1)
	invtest.Expect(t, retention(p), "t-0", "HW 3 outside [log start 4, LEO 4]")

	// An append whose HW could not follow the LEO is caught there too.
	p = appended(t)
	p.hw.Store(p.LogEndOffset() + 5)
	invtest.Expect(t, func() { _, _ = p.Append(makeBatch(t, plain(1))) }, "t-0", "after append: HW 9 outside")
}

func TestInvariantHWNotLoweredWhileLeading(t *testing.T) {
	p := appended(t)
	// No path but TruncateTo lowers HW today; this is what an operation
	// that did would be told.
	invtest.Expect(t, func() { p.assertHWKept("append", p.HighWatermark()+1) }, "t-0", "append lowered HW from 5 to 4")
}

func TestInvariantEpochsNeverDecrease(t *testing.T) {
	p := appended(t)
	p.leaderEpoch.Store(2) // older than the epoch its batches carry
	invtest.Expect(t, func() { _, _ = p.Append(makeBatch(t, plain(1))) }, "t-0", "leader epoch 2, history already has epoch 3")

	p = appended(t)
	if err := p.epochs.Assign(9, p.LogEndOffset()); err != nil { // newer than the epoch it leads in
		t.Fatal(err)
	}
	invtest.Expect(t, retention(p), "t-0", "newest leader epoch entry {9 4}, leading in epoch 3")

	p = appended(t)
	p.leaderEpoch.Store(4)
	if err := p.epochs.Assign(4, p.LogEndOffset()+10); err != nil { // starting beyond the LEO
		t.Fatal(err)
	}
	invtest.Expect(t, retention(p), "t-0", "newest leader epoch entry {4 14}")

	p = appended(t)
	p.epochs.mu.Lock()
	p.epochs.entries = []EpochEntry{{Epoch: 3, StartOffset: 0}, {Epoch: 2, StartOffset: 2}}
	p.epochs.mu.Unlock()
	invtest.Expect(t, retention(p), "t-0", "leader epoch entry {2 2} does not follow {3 0}")
}

func TestInvariantLeaderEpochStartWithinLog(t *testing.T) {
	p := appended(t)
	p.epochStart.Store(p.LogEndOffset() + 5)
	invtest.Expect(t, retention(p), "t-0", "leading since offset 9, LEO 4")
}

func TestInvariantFollowerHWWithinLog(t *testing.T) {
	p := appended(t)
	if err := p.BecomeFollower(3); err != nil {
		t.Fatal(err)
	}
	p.hw.Store(-1) // truncation lowers a HW above the LEO, and must find this
	invtest.Expect(t, func() { _ = p.TruncateTo(2) }, "t-0", "after truncation: HW -1 outside [log start 0, LEO 2]")
}
