package replica

import (
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// A replicated partition that never held a record writes neither a
// producer snapshot nor a HW checkpoint when it is flushed and closed:
// both would say what their absence says (no producers at offset 0, HW
// 0). A crash then loses nothing: it opens again with HW 0 and takes
// records; once it holds one, Close writes both.
func TestEmptyReplicatedPartitionWritesNoSnapshotOrHW(t *testing.T) {
	fs := segment.NewMemFS()
	cfg := testConfig()
	cfg.Replicated = true
	for range 2 {
		p := openPartition(t, fs, 0, cfg)
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		for _, name := range listDir(t, fs, testDir) {
			if name == HighWatermarkCheckpointFile || name == SnapshotName(0) {
				t.Fatalf("empty partition wrote %s", name)
			}
		}
		fs.Crash()
	}
	p := openPartition(t, fs, 0, cfg)
	if p.HighWatermark() != 0 || p.LogEndOffset() != 0 {
		t.Fatalf("HW %d LEO %d, want 0 0", p.HighWatermark(), p.LogEndOffset())
	}
	mustAppend(t, p, makeBatch(t, idem(1, 0, 0, 1)))
	if _, err := p.SetHighWatermark(1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	p = openPartition(t, fs, 0, cfg)
	defer p.Close()
	if p.HighWatermark() != 1 || p.NumProducers() != 1 {
		t.Fatalf("after close and crash: HW %d producers %d, want 1 1", p.HighWatermark(), p.NumProducers())
	}
}

// renameCountFS counts renames onto the leader-epoch checkpoint: each is
// one atomic write of it.
type renameCountFS struct {
	segment.FS
	epochWrites int
}

func (f *renameCountFS) Rename(from, to string) error {
	if filepath.Base(to) == EpochCheckpointFile {
		f.epochWrites++
	}
	return f.FS.Rename(from, to)
}

// An empty partition that leads again in the epoch its checkpoint holds
// does not rewrite the checkpoint: Open drops the entry at the log end
// only in memory, and BecomeLeader enters the same entry the file says.
func TestEmptyLeaderReopenWritesNoEpochCheckpoint(t *testing.T) {
	fs := &renameCountFS{FS: segment.NewMemFS()}
	p := openPartition(t, fs, 4, testConfig())
	if err := p.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if fs.epochWrites != 1 {
		t.Fatalf("%d epoch checkpoint writes to lead a new partition, want 1", fs.epochWrites)
	}
	p = openPartition(t, fs, 4, testConfig())
	defer p.Close()
	if err := p.BecomeLeader(4); err != nil {
		t.Fatal(err)
	}
	if fs.epochWrites != 1 {
		t.Fatalf("%d epoch checkpoint writes after leading it again, want still 1", fs.epochWrites)
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{4, 0}}) {
		t.Fatalf("entries %v", got)
	}
}

// The entry Open dropped only in memory is written away before a batch
// lands at its offset: a follower that appends the leader's batches of
// an older epoch there, flushes and crashes opens with a history that
// matches its batches, not the stale entry.
func TestStaleEpochEntryIsPersistedAwayBeforeFollowerAppend(t *testing.T) {
	fs := segment.NewMemFS()
	p := openPartition(t, fs, 3, testConfig())
	if err := p.BecomeFollower(3); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsFollower(leaderBatches(t, 0, 3, plain(2))); err != nil {
		t.Fatal(err)
	}
	if err := p.BecomeLeader(5); err != nil { // enters 5 at the log end, 2
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openPartition(t, fs, 5, testConfig())
	if err := p.BecomeFollower(5); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsFollower(leaderBatches(t, 2, 3, plain(2))); err != nil {
		t.Fatal(err)
	}
	if err := p.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	p = openPartition(t, fs, 5, testConfig())
	defer p.Close()
	if p.LogEndOffset() != 4 {
		t.Fatalf("log end %d, want 4", p.LogEndOffset())
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{3, 0}}) {
		t.Fatalf("entries after the crash %v, want only epoch 3 from 0", got)
	}
}

// Leading in an epoch the cache holds already writes no checkpoint,
// whether the replica followed in it (the epoch's batches entered it) or
// leads it again after a restart with records past the entry; only a
// new epoch is written, once.
func TestLeadingInAnEpochTheCacheHoldsWritesNoCheckpoint(t *testing.T) {
	fs := &renameCountFS{FS: segment.NewMemFS()}
	p := openPartition(t, fs, 2, testConfig())
	if err := p.BecomeFollower(2); err != nil {
		t.Fatal(err)
	}
	if _, err := p.AppendAsFollower(leaderBatches(t, 0, 2, plain(3))); err != nil {
		t.Fatal(err)
	}
	writes := fs.epochWrites // the follower's append entered epoch 2
	if err := p.BecomeLeader(2); err != nil {
		t.Fatal(err)
	}
	if fs.epochWrites != writes {
		t.Fatalf("%d epoch checkpoint writes to lead in the epoch followed, want none", fs.epochWrites-writes)
	}
	mustAppend(t, p, makeBatch(t, plain(2)))
	if err := p.BecomeLeader(3); err != nil {
		t.Fatal(err)
	}
	if fs.epochWrites != writes+1 {
		t.Fatalf("%d epoch checkpoint writes for a new epoch, want 1", fs.epochWrites-writes)
	}
	mustAppend(t, p, makeBatch(t, plain(1)))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = openPartition(t, fs, 3, testConfig())
	defer p.Close()
	if err := p.BecomeLeader(3); err != nil {
		t.Fatal(err)
	}
	if fs.epochWrites != writes+1 {
		t.Fatalf("%d epoch checkpoint writes after leading again in epoch 3, want still 1", fs.epochWrites-writes)
	}
	if got := p.EpochEntries(); !reflect.DeepEqual(got, []EpochEntry{{2, 0}, {3, 5}}) {
		t.Fatalf("entries %v", got)
	}
}
