package segment

import (
	"bytes"
	"errors"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// faultRig is a log on an ErrorFS over a MemFS, with its poisonings
// recorded through Config.OnPoisoned.
type faultRig struct {
	mem *MemFS
	efs *ErrorFS
	cfg Config
	l   *Log

	mu       sync.Mutex
	poisoned []error
}

func newFaultRig(t *testing.T, cfg Config) *faultRig {
	r := &faultRig{mem: NewMemFS(), cfg: cfg}
	r.efs = NewErrorFS(r.mem)
	r.reopen(t)
	return r
}

// reopen opens the log again on the same files (after a Crash, say).
func (r *faultRig) reopen(t *testing.T) {
	t.Helper()
	cfg := r.cfg
	cfg.OnPoisoned = func(err error) {
		r.mu.Lock()
		r.poisoned = append(r.poisoned, err)
		r.mu.Unlock()
	}
	r.l = openLog(t, r.efs, testDir, cfg, nil)
	t.Cleanup(func() { r.l.Close() })
}

func (r *faultRig) hookCalls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.poisoned)
}

// tryAppend appends one batch and returns the error.
func tryAppend(t *testing.T, l *Log, s batchSpec) error {
	t.Helper()
	b := makeBatch(t, s)
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, err = l.Append(b, hs, 7, -1)
	return err
}

// checkInjected checks that err carries the injected errno, the name of
// the failing file and the context words.
func checkInjected(t *testing.T, err error, errno syscall.Errno, pathSuffix string, context ...string) {
	t.Helper()
	var inj *InjectedError
	if !errors.As(err, &inj) || !errors.Is(err, errno) || !strings.HasSuffix(inj.Path, pathSuffix) {
		t.Fatalf("error %v: want the injected %v on *%s", err, errno, pathSuffix)
	}
	for _, c := range context {
		if !strings.Contains(err.Error(), c) {
			t.Errorf("error %q lacks context %q", err, c)
		}
	}
}

// checkPoisoned checks that the log refuses appends, flushes, retention and
// truncation with ErrLogPoisoned, that its recovery point stayed at rp, and
// that reads stop there: they return exactly synced.
func checkPoisoned(t *testing.T, r *faultRig, rp int64, synced []byte) {
	t.Helper()
	l := r.l
	r.efs.Heal() // the disk "works" again: a retried fsync would succeed
	leo := l.EndOffset()
	if err := tryAppend(t, l, batchSpec{records: 1, valSize: 10}); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("append after the failure: %v, want ErrLogPoisoned", err)
	}
	if l.EndOffset() != leo {
		t.Fatalf("a refused append moved the log end from %d to %d", leo, l.EndOffset())
	}
	if err := l.Flush(); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("flush after the failure: %v, want ErrLogPoisoned", err)
	}
	if _, err := l.ApplyRetention(); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("retention after the failure: %v, want ErrLogPoisoned", err)
	}
	if err := l.TruncateTo(l.StartOffset()); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("truncation after the failure: %v, want ErrLogPoisoned", err)
	}
	if err := l.SetStartOffset(l.StartOffset() + 1); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("SetStartOffset after the failure: %v, want ErrLogPoisoned", err)
	}
	if got := l.RecoveryPoint(); got != rp {
		t.Fatalf("recovery point %d, want %d: it moved past a failed fsync", got, rp)
	}
	if got := readEverything(t, l); !bytes.Equal(got, synced) {
		t.Fatalf("a poisoned log serves %d bytes, want the %d below its recovery point", len(got), len(synced))
	}
	if rp < leo {
		res, err := l.Read(rp, math.MaxInt32, math.MaxInt64, true)
		if err != nil || res.Bytes != 0 {
			t.Fatalf("read at the recovery point %d: %d bytes, %v; want none", rp, res.Bytes, err)
		}
		res.Release()
	}
	if n := r.hookCalls(); n != 1 {
		t.Fatalf("OnPoisoned called %d times, want once", n)
	}
	if err := l.Close(); !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("close of a poisoned log: %v, want ErrLogPoisoned (no clean checkpoint)", err)
	}
}

// checkReopened reopens the log after a crash and checks that it holds
// synced (at least) and takes appends again; it returns what it held.
func checkReopened(t *testing.T, r *faultRig, synced []byte, exact bool) []byte {
	t.Helper()
	r.mem.Crash()
	r.reopen(t)
	got := readEverything(t, r.l)
	if !bytes.HasPrefix(got, synced) || (exact && len(got) != len(synced)) {
		t.Fatalf("after reopen the log holds %d bytes, want the %d synced ones (exact %v)", len(got), len(synced), exact)
	}
	if r.l.Poisoned() != nil {
		t.Fatalf("poisoned after reopen: %v", r.l.Poisoned())
	}
	if err := tryAppend(t, r.l, batchSpec{records: 1, valSize: 10}); err != nil {
		t.Fatalf("append after reopen: %v", err)
	}
	if err := r.l.Flush(); err != nil {
		t.Fatalf("flush after reopen: %v", err)
	}
	return got
}

// A failed fsync of any file of the active segment poisons the log: the
// flush fails with the injected error in context, the recovery point stays
// at the last successful flush, and nothing clears it short of reopening,
// not even the disk working again or the file cache reopening the file.
func TestFailedSyncPoisons(t *testing.T) {
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		t.Run(ext, func(t *testing.T) {
			r := newFaultRig(t, testConfig())
			synced := bytes.Join(fill(t, r.l, 6, 0), nil)
			if err := r.l.Flush(); err != nil {
				t.Fatal(err)
			}
			rp := r.l.EndOffset()
			// Batches above the interval bytes add an index entry, and a
			// new max timestamp a time index entry: all three files change.
			appendSpec(t, r.l, batchSpec{records: 2, valSize: 300, ts: 1000})
			appendSpec(t, r.l, batchSpec{records: 2, valSize: 300, ts: 2000})
			in := r.efs.Inject(Fault{Ops: OpSync, Path: PathSuffix(ext)})
			err := r.l.Flush()
			if in.Failed() != 1 {
				t.Fatalf("the %s fsync was not attempted", ext)
			}
			if !errors.Is(err, ErrLogPoisoned) {
				t.Fatalf("flush with a failed fsync: %v, want ErrLogPoisoned", err)
			}
			checkInjected(t, err, syscall.EIO, ext, "fsync segment", testDir)
			checkPoisoned(t, r, rp, synced)
			checkReopened(t, r, synced, ext == ".log")
		})
	}
}

// A segment roll's new files exist once the directory is fsynced: a failed
// fsync of the directory poisons, and the crash then loses the new segment,
// never what was flushed before.
func TestFailedSyncDirAfterRollPoisons(t *testing.T) {
	r := newFaultRig(t, testConfig())
	synced := bytes.Join(fill(t, r.l, 3, 0), nil)
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	rp, segs := r.l.EndOffset(), r.l.NumSegments()
	all := synced
	for r.l.NumSegments() == segs {
		b, _ := appendSpec(t, r.l, batchSpec{records: 3, valSize: 200})
		all = append(all, b...)
	}
	r.efs.Inject(Fault{Ops: OpSyncDir, Path: PathUnder(testDir)})
	err := r.l.Flush()
	if !errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("flush with a failed directory fsync: %v, want ErrLogPoisoned", err)
	}
	checkInjected(t, err, syscall.EIO, testDir, "fsync dir")
	checkPoisoned(t, r, rp, synced)
	// The old segment's tail was fsynced and may survive; the new
	// segment's name was not.
	if got := checkReopened(t, r, synced, false); len(got) >= len(all) {
		t.Fatalf("after the crash the log holds %d bytes, all %d appended: the new segment survived an unsynced directory", len(got), len(all))
	}
}

// The checkpoint's fsyncs poison too: a failed directory fsync may have
// lost any entry created since the last one.
func TestFailedCheckpointSyncPoisons(t *testing.T) {
	for _, f := range []Fault{
		{Ops: OpSync, Path: PathSuffix(recoveryPointFile + ".tmp")},
		{Ops: OpSyncDir},
	} {
		t.Run(f.Ops.String(), func(t *testing.T) {
			r := newFaultRig(t, testConfig())
			synced := bytes.Join(fill(t, r.l, 4, 0), nil)
			if err := r.l.Flush(); err != nil { // segment dir entries synced
				t.Fatal(err)
			}
			synced = append(synced, bytes.Join(fill(t, r.l, 2, 0), nil)...)
			r.efs.Inject(f)
			err := r.l.Flush()
			if !errors.Is(err, ErrLogPoisoned) {
				t.Fatalf("flush with a failed checkpoint fsync: %v, want ErrLogPoisoned", err)
			}
			checkInjected(t, err, syscall.EIO, "", "checkpoint")
			// The data fsyncs succeeded: the recovery point is theirs.
			checkPoisoned(t, r, r.l.EndOffset(), synced)
			checkReopened(t, r, synced, true)
		})
	}
}

// An fsync that never ran because no descriptor was left to run it on
// loses nothing: the flush fails and the next one succeeds.
func TestSyncDirWithoutDescriptorDoesNotPoison(t *testing.T) {
	r := newFaultRig(t, testConfig())
	fill(t, r.l, 3, 0)
	r.efs.Inject(Fault{Ops: OpSyncDir, Errno: syscall.EMFILE})
	if err := r.l.Flush(); !errors.Is(err, syscall.EMFILE) || errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("flush: %v, want EMFILE without poisoning", err)
	}
	if err := r.l.Flush(); err != nil || r.l.RecoveryPoint() != r.l.EndOffset() {
		t.Fatalf("flush once descriptors are back: %v, recovery point %d of %d", err, r.l.RecoveryPoint(), r.l.EndOffset())
	}
	if r.hookCalls() != 0 {
		t.Fatal("poisoned")
	}
}

// A write that fails is cut off again, and the append may be retried, as on
// a full disk; when the cut fails too, the file's length is unknown and the
// log is poisoned.
func TestFailedWriteMidAppend(t *testing.T) {
	active := func(l *Log) string { return segName(testDir, l.active().base, ".log") }
	t.Run("cut off", func(t *testing.T) {
		r := newFaultRig(t, testConfig())
		before := fill(t, r.l, 2, 0)
		in := r.efs.Inject(Fault{Ops: OpWrite, Path: PathSuffix(".log"), Errno: syscall.ENOSPC, Written: 40})
		leo := r.l.EndOffset()
		err := tryAppend(t, r.l, batchSpec{records: 2, valSize: 100})
		if in.Failed() != 1 || errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("append on a full disk: %v, want its error without poisoning", err)
		}
		checkInjected(t, err, syscall.ENOSPC, ".log", "append to segment")
		if d, _ := r.mem.fileData(active(r.l)); int64(len(d)) != r.l.active().size || r.l.EndOffset() != leo {
			t.Fatalf("file of %d bytes, log end %d: the torn write was not cut off", len(d), r.l.EndOffset())
		}
		after, _ := appendSpec(t, r.l, batchSpec{records: 1, valSize: 10})
		if err := r.l.Flush(); err != nil {
			t.Fatal(err)
		}
		checkReadEveryOffset(t, r.l, append(before, after))
		if r.hookCalls() != 0 {
			t.Fatal("a write that was cut off poisoned the log")
		}
	})
	t.Run("nothing written", func(t *testing.T) {
		r := newFaultRig(t, testConfig())
		fill(t, r.l, 2, 0)
		// Nothing to cut off, so a truncate that would fail is not tried.
		r.efs.Inject(Fault{Ops: OpWrite, Path: PathSuffix(".log"), Errno: syscall.ENOSPC})
		r.efs.Inject(Fault{Ops: OpTruncate, Sticky: true})
		if err := tryAppend(t, r.l, batchSpec{records: 1}); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("append: %v, want ENOSPC without poisoning", err)
		}
		if err := tryAppend(t, r.l, batchSpec{records: 1}); err != nil {
			t.Fatalf("retried append: %v", err)
		}
	})
	t.Run("cut fails", func(t *testing.T) {
		r := newFaultRig(t, testConfig())
		synced := bytes.Join(fill(t, r.l, 3, 0), nil)
		if err := r.l.Flush(); err != nil {
			t.Fatal(err)
		}
		rp := r.l.EndOffset()
		r.efs.Inject(Fault{Ops: OpWrite, Path: PathSuffix(".log"), Errno: syscall.ENOSPC, Written: 40})
		r.efs.Inject(Fault{Ops: OpTruncate, Path: PathSuffix(".log")})
		err := tryAppend(t, r.l, batchSpec{records: 2, valSize: 100})
		if !errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("append whose torn write cannot be cut off: %v, want ErrLogPoisoned", err)
		}
		checkInjected(t, err, syscall.ENOSPC, ".log", "cutting the torn write off")
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("error %v lacks the truncate's EIO", err)
		}
		checkPoisoned(t, r, rp, synced)
		checkReopened(t, r, synced, true)
	})
}

// An index write that fails part-way is cut off so that the next flush
// writes the entries at the right place; if it cannot be, the log is
// poisoned.
func TestFailedIndexWrite(t *testing.T) {
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	t.Run("cut off", func(t *testing.T) {
		r := newFaultRig(t, cfg)
		batches := fill(t, r.l, 20, 0)
		r.efs.Inject(Fault{Ops: OpWrite, Path: PathSuffix(".index"), Errno: syscall.ENOSPC, Written: 5})
		if err := r.l.Flush(); !errors.Is(err, syscall.ENOSPC) || errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("flush: %v, want ENOSPC without poisoning", err)
		}
		if err := r.l.Flush(); err != nil {
			t.Fatal(err)
		}
		d, _ := r.mem.fileData(segName(testDir, 0, ".index"))
		if !bytes.Equal(d, r.l.active().index) || len(d) == 0 {
			t.Fatalf("index file of %d bytes differs from the index of %d", len(d), len(r.l.active().index))
		}
		checkReopened(t, r, bytes.Join(batches, nil), true)
	})
	t.Run("cut fails", func(t *testing.T) {
		r := newFaultRig(t, cfg)
		fill(t, r.l, 20, 0)
		r.efs.Inject(Fault{Ops: OpWrite, Path: PathSuffix(".index"), Errno: syscall.ENOSPC, Written: 5})
		r.efs.Inject(Fault{Ops: OpTruncate, Path: PathSuffix(".index")})
		if err := r.l.Flush(); !errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("flush: %v, want ErrLogPoisoned", err)
		}
		checkPoisoned(t, r, 0, nil)
		checkReopened(t, r, nil, true)
	})
}
