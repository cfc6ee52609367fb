package segment

import (
	"bytes"
	"errors"
	"log/slog"
	"math"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// A checkpoint that cannot be renamed into place leaves the old one: the
// flush fails, nothing is lost, and the next flush may succeed.
func TestCheckpointRenameFailureIsRetryable(t *testing.T) {
	r := newFaultRig(t, testConfig())
	batches := fill(t, r.l, 5, 0)
	r.efs.Inject(Fault{Ops: OpRename, Path: PathSuffix(recoveryPointFile)})
	err := r.l.Flush()
	if errors.Is(err, ErrLogPoisoned) {
		t.Fatalf("flush whose checkpoint rename failed: %v, want its error without poisoning", err)
	}
	checkInjected(t, err, syscall.EIO, recoveryPointFile+".tmp", "checkpoint")
	batches = append(batches, fill(t, r.l, 2, 0)...)
	if err := r.l.Flush(); err != nil {
		t.Fatalf("retried flush: %v", err)
	}
	if r.hookCalls() != 0 {
		t.Fatal("poisoned")
	}
	checkReopened(t, r, bytes.Join(batches, nil), true)
}

// retentionRig is a log of several segments that retention may shrink to
// its last two.
func retentionRig(t *testing.T) (*faultRig, int) {
	cfg := testConfig()
	r := newFaultRig(t, cfg)
	fill(t, r.l, 60, 0)
	if err := r.l.Flush(); err != nil {
		t.Fatal(err)
	}
	segs := r.l.NumSegments()
	if segs < 4 {
		t.Fatalf("only %d segments", segs)
	}
	r.cfg.RetentionBytes = r.l.Size() - r.l.segs[0].size - r.l.segs[1].size
	r.l.SetConfig(r.cfg)
	return r, segs
}

func TestRetentionFailures(t *testing.T) {
	t.Run("checkpoint rename", func(t *testing.T) {
		r, segs := retentionRig(t)
		start := r.l.StartOffset()
		r.efs.Inject(Fault{Ops: OpRename})
		_, err := r.l.ApplyRetention()
		if errors.Is(err, ErrLogPoisoned) || r.l.NumSegments() != segs || r.l.StartOffset() != start {
			t.Fatalf("retention: %v, %d segments from %d, start %d: want nothing deleted, no poisoning", err, r.l.NumSegments(), start, r.l.StartOffset())
		}
		checkInjected(t, err, syscall.EIO, "", "checkpoint")
		if n, err := r.l.ApplyRetention(); err != nil || n != 2 {
			t.Fatalf("retried retention: %d segments, %v", n, err)
		}
	})
	t.Run("checkpoint fsync", func(t *testing.T) {
		r, segs := retentionRig(t)
		r.efs.Inject(Fault{Ops: OpSyncDir})
		if _, err := r.l.ApplyRetention(); !errors.Is(err, ErrLogPoisoned) || r.l.NumSegments() != segs {
			t.Fatalf("retention: %v, %d segments of %d: want ErrLogPoisoned, nothing deleted", err, r.l.NumSegments(), segs)
		}
		checkPoisoned(t, r, r.l.EndOffset(), readEverything(t, r.l))
	})
	t.Run("remove", func(t *testing.T) {
		r, segs := retentionRig(t)
		gone := segName(testDir, r.l.segs[0].base, ".log")
		in := r.efs.Inject(Fault{Ops: OpRemove, Path: PathSuffix(".log"), Sticky: true})
		_, err := r.l.ApplyRetention()
		if errors.Is(err, ErrLogPoisoned) || r.l.NumSegments() != segs-2 {
			t.Fatalf("retention: %v, %d segments: want the two deleted from the log, no poisoning", err, r.l.NumSegments())
		}
		checkInjected(t, err, syscall.EIO, ".log", "removing segment")
		in.Disarm()
		// The files left behind lie below the persisted start: the next
		// open deletes them.
		start := r.l.StartOffset()
		if err := r.l.Close(); err != nil {
			t.Fatal(err)
		}
		r.reopen(t)
		if r.l.StartOffset() != start || r.l.NumSegments() != segs-2 {
			t.Fatalf("reopened: start %d (want %d), %d segments (want %d)", r.l.StartOffset(), start, r.l.NumSegments(), segs-2)
		}
		if _, ok := r.mem.fileData(gone); ok {
			t.Fatalf("%s survived the reopen", gone)
		}
	})
}

func TestTruncationFailuresPoison(t *testing.T) {
	for _, tc := range []struct {
		name string
		f    Fault
		ctx  string
	}{
		{"remove", Fault{Ops: OpRemove, Path: PathSuffix(".log")}, "removing segment"},
		{"truncate", Fault{Ops: OpTruncate, Path: PathSuffix(".log")}, "truncating segment"},
		{"sync", Fault{Ops: OpSync, Path: PathSuffix(".log")}, "truncating segment"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newFaultRig(t, testConfig())
			batches := fill(t, r.l, 40, 0)
			if err := r.l.Flush(); err != nil {
				t.Fatal(err)
			}
			// Into the middle of the first segment: later segments go.
			keep := 2
			to := headersOf(t, batches[keep])[0].BaseOffset
			r.efs.Inject(tc.f)
			err := r.l.TruncateTo(to)
			if !errors.Is(err, ErrLogPoisoned) {
				t.Fatalf("truncation: %v, want ErrLogPoisoned", err)
			}
			checkInjected(t, err, syscall.EIO, ".log", tc.ctx)
			checkPoisoned(t, r, to, bytes.Join(batches[:keep], nil))
		})
	}
	t.Run("start offset checkpoint", func(t *testing.T) {
		r := newFaultRig(t, testConfig())
		fill(t, r.l, 10, 0)
		if err := r.l.Flush(); err != nil {
			t.Fatal(err)
		}
		r.efs.Inject(Fault{Ops: OpSync, Path: PathSuffix(".tmp")})
		if err := r.l.SetStartOffset(1); !errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("SetStartOffset: %v, want ErrLogPoisoned", err)
		}
	})
}

// Recovery cuts an unflushed torn tail off and fsyncs the cut; if that
// fsync fails the torn bytes could come back behind later appends, so the
// open fails (it used to go on regardless).
func TestOpenFailsWhenTheCutCannotBeSynced(t *testing.T) {
	mem := NewMemFS()
	l := openLog(t, mem, testDir, testConfig(), nil)
	fill(t, l, 3, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	appendSpec(t, l, batchSpec{records: 2, valSize: 100})
	mem.CrashTorn(func(string, int) int { return 30 })
	efs := NewErrorFS(mem)
	efs.Inject(Fault{Ops: OpSync, Path: PathSuffix(".log")})
	if _, err := Open(efs, testDir, testConfig(), newClock().now, discardLogger()); !errors.Is(err, syscall.EIO) {
		t.Fatalf("Open whose cut of the torn tail cannot be synced: %v, want EIO", err)
	}
	l = openLog(t, efs, testDir, testConfig(), nil)
	l.Close()
}

// Appends that flush each message race one failing fsync: every append
// that was acknowledged lies below the recovery point, survives a crash,
// and the poisoning is reported once.
func TestPoisonUnderConcurrentAppends(t *testing.T) {
	cfg := testConfig()
	cfg.FlushIntervalMessages = 1
	r := newFaultRig(t, cfg)
	r.efs.Inject(Fault{Ops: OpSync, Path: PathSuffix(".log"), Nth: 25})
	var mu sync.Mutex
	var acked []AppendInfo
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				b := makeBatch(t, batchSpec{records: 1 + (i+w)%3, valSize: 50})
				hs, _ := ValidateBatches(b, 0)
				info, err := r.l.Append(b, hs, 7, -1)
				if errors.Is(err, ErrLogPoisoned) {
					return
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
				mu.Lock()
				acked = append(acked, info)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	rp := r.l.RecoveryPoint()
	for _, a := range acked {
		if a.LastOffset >= rp {
			t.Fatalf("append of %d..%d acknowledged, recovery point %d", a.FirstOffset, a.LastOffset, rp)
		}
	}
	if r.hookCalls() != 1 || len(acked) < 10 {
		t.Fatalf("OnPoisoned called %d times, %d appends acknowledged", r.hookCalls(), len(acked))
	}
	r.l.Close()
	r.mem.Crash()
	r.reopen(t)
	for _, a := range acked {
		res, err := r.l.Read(a.FirstOffset, 1, math.MaxInt64, true)
		if err != nil || res.Bytes == 0 {
			t.Fatalf("acknowledged offset %d lost in the crash: %v", a.FirstOffset, err)
		}
		if h := headersOf(t, readBytes(t, res))[0]; h.BaseOffset != a.FirstOffset || h.LastOffset() != a.LastOffset {
			t.Fatalf("offset %d reads batch %d..%d, acknowledged as %d..%d", a.FirstOffset, h.BaseOffset, h.LastOffset(), a.FirstOffset, a.LastOffset)
		}
		res.Release()
	}
}

// Without OnPoisoned the log reports its poisoning itself, once.
func TestPoisonLoggedOnce(t *testing.T) {
	efs := NewErrorFS(NewMemFS())
	var buf bytes.Buffer
	l, err := Open(efs, testDir, testConfig(), newClock().now, slog.New(slog.NewTextHandler(&buf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fill(t, l, 2, 0)
	efs.Inject(Fault{Ops: OpSync, Sticky: true})
	for range 3 {
		if err := l.Flush(); !errors.Is(err, ErrLogPoisoned) {
			t.Fatalf("flush: %v", err)
		}
	}
	if n := strings.Count(buf.String(), "level=ERROR msg=\"log poisoned"); n != 1 {
		t.Fatalf("%d poisoning lines, want 1:\n%s", n, buf.String())
	}
}
