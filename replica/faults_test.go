package replica

import (
	"errors"
	"syscall"
	"testing"

	"github.com/sluice-io/sluice/segment"
)

// faultRig is a partition on an error-injecting MemFS.
type faultRig struct {
	mem *segment.MemFS
	efs *segment.ErrorFS
	p   *Partition
}

func newFaultRig(t *testing.T) *faultRig {
	t.Helper()
	mem := segment.NewMemFS()
	r := &faultRig{mem: mem, efs: segment.NewErrorFS(mem)}
	r.p = openPartition(t, r.efs, 0, testConfig())
	return r
}

// crashReopen drops what was never fsynced and opens the partition again
// on a healthy disk.
func (r *faultRig) crashReopen(t *testing.T, epoch int32) {
	t.Helper()
	r.efs.Heal()
	r.mem.Crash()
	r.p = openPartition(t, r.mem, epoch, testConfig())
}

// The epoch cache cannot be written when a new leader epoch's first batch
// arrives: the append fails before the log is touched, nothing is
// poisoned, and the retry succeeds once the disk does.
func TestAppendFailsCleanlyWhenTheEpochCacheCannotBeWritten(t *testing.T) {
	r := newFaultRig(t)
	in := r.efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(EpochCheckpointFile + ".tmp")})
	b := makeBatch(t, batchOpts{pid: 7, seq: 0, n: 3, ts: 1})
	if _, err := r.p.Append(b); !errors.Is(err, segment.ErrInjected) || errors.Is(err, segment.ErrLogPoisoned) {
		t.Fatalf("append with the epoch cache unwritable: %v, want the injected error, no poisoning", err)
	}
	if in.Failed() != 1 || r.p.LogEndOffset() != 0 || r.p.HighWatermark() != 0 || r.p.Poisoned() != nil {
		t.Fatalf("after the failed append: %d injected, LEO %d, HW %d, poisoned %v", in.Failed(), r.p.LogEndOffset(), r.p.HighWatermark(), r.p.Poisoned())
	}
	res := mustAppend(t, r.p, b)
	if res.BaseOffset != 0 || res.Duplicate {
		t.Fatalf("retry: %+v, want a first append at 0 (the failed one left no producer state)", res)
	}
	if got := r.p.EpochEntries(); len(got) != 1 || got[0] != (EpochEntry{Epoch: 0, StartOffset: 0}) {
		t.Fatalf("epoch entries %v", got)
	}
}

// A full disk (a write failing with nothing written) fails the append and
// changes nothing; once space is freed the same batch is appended once.
func TestAppendOnAFullDiskIsRetryable(t *testing.T) {
	r := newFaultRig(t)
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 0, n: 2, ts: 1}))
	in := r.efs.Inject(segment.Fault{Ops: segment.OpWrite, Path: segment.PathSuffix(".log"), Errno: syscall.ENOSPC, Sticky: true})
	b := makeBatch(t, batchOpts{pid: 7, seq: 2, n: 2, ts: 3})
	for range 3 {
		if _, err := r.p.Append(b); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, segment.ErrLogPoisoned) {
			t.Fatalf("append on a full disk: %v, want ENOSPC without poisoning", err)
		}
	}
	if r.p.LogEndOffset() != 2 || r.p.Poisoned() != nil {
		t.Fatalf("LEO %d, poisoned %v after failed appends", r.p.LogEndOffset(), r.p.Poisoned())
	}
	in.Disarm()
	if res := mustAppend(t, r.p, b); res.BaseOffset != 2 || res.Duplicate {
		t.Fatalf("append once space is freed: %+v", res)
	}
	if res := mustAppend(t, r.p, b); !res.Duplicate || res.BaseOffset != 2 {
		t.Fatalf("retried batch: %+v, want the duplicate at 2", res)
	}
}

// A write cut short whose torn bytes cannot be cut off again leaves the
// file at a length the log does not know: the partition is poisoned.
func TestTornWriteThatCannotBeCutPoisons(t *testing.T) {
	r := newFaultRig(t)
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: -1, n: 2, ts: 1}))
	r.efs.Inject(segment.Fault{Ops: segment.OpWrite, Path: segment.PathSuffix(".log"), Written: 10})
	r.efs.Inject(segment.Fault{Ops: segment.OpTruncate, Path: segment.PathSuffix(".log")})
	if _, err := r.p.Append(makeBatch(t, batchOpts{pid: -1, n: 2, ts: 3})); !errors.Is(err, segment.ErrLogPoisoned) {
		t.Fatalf("torn write that could not be cut: %v, want ErrLogPoisoned", err)
	}
	if _, err := r.p.Append(makeBatch(t, batchOpts{pid: -1, n: 1, ts: 5})); !errors.Is(err, segment.ErrLogPoisoned) {
		t.Fatalf("next append: %v, want ErrLogPoisoned", err)
	}
}

// A failed fsync of the log poisons the partition: Flush reports it,
// every later append, flush, DeleteRecords and truncation is refused even
// with the disk healthy again, reads stop at what the last good flush made
// durable, and a reopen (after a crash that drops what was never synced)
// serves everything that was flushed and takes appends again.
func TestFailedFsyncPoisonsThePartition(t *testing.T) {
	r := newFaultRig(t)
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 0, n: 4, ts: 1}))
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 4, n: 4, ts: 5}))
	r.efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(".log")})
	if err := r.p.Flush(); !errors.Is(err, segment.ErrLogPoisoned) || !errors.Is(err, segment.ErrInjected) {
		t.Fatalf("flush with a failing fsync: %v, want ErrLogPoisoned wrapping the injected error", err)
	}
	if r.p.Poisoned() == nil {
		t.Fatal("Poisoned() is nil after a failed fsync")
	}
	refused := map[string]error{}
	_, refused["append"] = r.p.Append(makeBatch(t, batchOpts{pid: 7, seq: 8, n: 1, ts: 9}))
	refused["flush"] = r.p.Flush()
	_, refused["delete records"] = r.p.DeleteRecords(2)
	if err := r.p.BecomeFollower(0); err != nil { // a role change needs no disk
		t.Fatal(err)
	}
	refused["truncate"] = r.p.TruncateTo(6)
	_, refused["follower append"] = r.p.AppendAsFollower(leaderBatches(t, 8, 0, plain(1)))
	for op, err := range refused {
		if !errors.Is(err, segment.ErrLogPoisoned) {
			t.Errorf("%s on a poisoned partition: %v, want ErrLogPoisoned", op, err)
		}
	}
	if r.p.LogEndOffset() != 8 || r.p.LogStartOffset() != 0 {
		t.Fatalf("log moved while poisoned: start %d, end %d", r.p.LogStartOffset(), r.p.LogEndOffset())
	}
	hs := readBatches(t, r.p, 0)
	if len(hs) != 1 || hs[0].LastOffset() != 3 {
		t.Fatalf("read from a poisoned partition: %d batches, want only the flushed one (offsets 0-3)", len(hs))
	}
	_ = r.p.Close()

	r.crashReopen(t, 1)
	if r.p.LogEndOffset() != 4 || r.p.Poisoned() != nil {
		t.Fatalf("reopened: LEO %d (want 4: only the flushed batch survives the crash), poisoned %v", r.p.LogEndOffset(), r.p.Poisoned())
	}
	// The producer's sequence continues from what survived.
	if res := mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 4, n: 4, ts: 5})); res.BaseOffset != 4 || res.Duplicate {
		t.Fatalf("append after reopen: %+v", res)
	}
}

// A producer snapshot that cannot be written fails the flush but does not
// poison: the snapshot only saves replay work, the log itself is durable.
func TestSnapshotFailureDoesNotPoison(t *testing.T) {
	r := newFaultRig(t)
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 0, n: 4, ts: 1}))
	r.efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(".snapshot.tmp")})
	if err := r.p.Flush(); !errors.Is(err, segment.ErrInjected) || errors.Is(err, segment.ErrLogPoisoned) {
		t.Fatalf("flush whose snapshot failed: %v, want the injected error, no poisoning", err)
	}
	if res := mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 4, n: 1, ts: 5})); res.BaseOffset != 4 {
		t.Fatalf("append after the failed snapshot: %+v", res)
	}
	if err := r.p.Flush(); err != nil {
		t.Fatalf("next flush: %v", err)
	}
	_ = r.p.Close()
	r.crashReopen(t, 0)
	if res := mustAppend(t, r.p, makeBatch(t, batchOpts{pid: 7, seq: 4, n: 1, ts: 5})); !res.Duplicate || res.BaseOffset != 4 {
		t.Fatalf("retried batch after reopen: %+v, want the duplicate at 4", res)
	}
}

// A truncation whose fsync fails has already cut the file: the log end
// moved and the log is poisoned. HW must follow the log end down, or a
// reader would be told of offsets the log no longer has.
func TestFailedTruncationKeepsHWWithinTheLog(t *testing.T) {
	r := newFaultRig(t)
	mustAppend(t, r.p, makeBatch(t, batchOpts{pid: -1, n: 4, ts: 1}), makeBatch(t, batchOpts{pid: -1, n: 4, ts: 5}))
	if err := r.p.Flush(); err != nil {
		t.Fatal(err)
	}
	r.efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(".log")})
	if err := r.p.BecomeFollower(1); err != nil {
		t.Fatal(err)
	}
	if err := r.p.TruncateTo(4); !errors.Is(err, segment.ErrLogPoisoned) {
		t.Fatalf("truncation whose fsync failed: %v, want ErrLogPoisoned", err)
	}
	if leo, hw := r.p.LogEndOffset(), r.p.HighWatermark(); leo != 4 || hw > leo {
		t.Fatalf("after the failed truncation: LEO %d (want 4), HW %d", leo, hw)
	}
}
