package metarepl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/segment"
)

const testDir = "/meta"

func batchOf(offset int64, epoch int32, vals ...string) Batch {
	b := Batch{Offset: offset, Epoch: epoch}
	for _, v := range vals {
		b.Records = append(b.Records, []byte(v))
	}
	return b
}

func mustOpen(t *testing.T, fsys segment.FS) *Log {
	t.Helper()
	l, err := OpenLog(fsys, testDir)
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	return l
}

func mustAppend(t *testing.T, l *Log, bs ...Batch) {
	t.Helper()
	if err := l.Append(bs...); err != nil {
		t.Fatalf("append: %v", err)
	}
}

// readAll returns every batch of the log as "offset/epoch:rec,rec" strings.
func readAll(t *testing.T, l *Log) []string {
	t.Helper()
	bs, err := l.Read(0, 1<<30, l.End())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return describe(bs)
}

func describe(bs []Batch) []string {
	var out []string
	for _, b := range bs {
		s := fmt.Sprintf("%d/%d:", b.Offset, b.Epoch)
		for i, r := range b.Records {
			if i > 0 {
				s += ","
			}
			s += string(r)
		}
		out = append(out, s)
	}
	return out
}

// rawAppend writes bytes to the log file without fsync, as an append the
// crash interrupts before its fsync.
func rawAppend(t *testing.T, fsys segment.FS, data []byte) {
	t.Helper()
	f, err := fsys.OpenFile(filepath.Join(testDir, logFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// rewrite replaces the log file's content durably (media corruption).
func rewrite(t *testing.T, fsys segment.FS, edit func([]byte) []byte) {
	t.Helper()
	path := filepath.Join(testDir, logFile)
	data, err := segment.ReadFile(fsys, path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := fsys.OpenFile(path, os.O_WRONLY|os.O_TRUNC, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(edit(data)); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

func TestLogAppendReadReopen(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a", "b"), batchOf(2, 1, "c"))
	mustAppend(t, l, batchOf(3, 2, "d", "e", "f"))
	want := []string{"0/1:a,b", "2/1:c", "3/2:d,e,f"}
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("read %v, want %v", got, want)
	}
	// Everything Append returned is fsynced: a crash keeps it all.
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got := readAll(t, l); !slices.Equal(got, want) {
		t.Fatalf("after crash %v, want %v", got, want)
	}
	if got, want := l.EpochEntries(), []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 3}}; !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	if e, end := l.EndOffsetFor(1); e != 1 || end != 3 {
		t.Fatalf("EndOffsetFor(1) = %d, %d; want 1, 3", e, end)
	}
	// Reads stop at upTo and at maxBytes (at least one batch), and only
	// start at batch boundaries.
	bs, err := l.Read(0, 1<<20, 3)
	if err != nil || len(bs) != 2 {
		t.Fatalf("read to 3: %v, %v", describe(bs), err)
	}
	if bs, err = l.Read(0, 1, 6); err != nil || len(bs) != 1 {
		t.Fatalf("read of 1 byte: %v, %v", describe(bs), err)
	}
	if _, err := l.Read(1, 100, 6); !errors.Is(err, ErrNotBatchStart) {
		t.Fatalf("read inside a batch: %v, want ErrNotBatchStart", err)
	}
	if bs, err = l.Read(6, 100, 6); err != nil || bs != nil {
		t.Fatalf("read at the end: %v, %v", bs, err)
	}
	// Out of order appends are refused.
	if err := l.Append(batchOf(7, 2, "x")); err == nil {
		t.Fatal("append with a gap accepted")
	}
	if err := l.Append(batchOf(6, 1, "x")); err == nil {
		t.Fatal("append of an older epoch accepted")
	}
}

func TestLogCrashLosesOnlyUnsynced(t *testing.T) {
	frame, err := appendFrame(nil, batchOf(2, 1, "unsynced-record"))
	if err != nil {
		t.Fatal(err)
	}
	// Every torn prefix of an unsynced frame, and none of it, is cut; the
	// whole frame surviving is a complete batch and is kept.
	for keep := 0; keep <= len(frame); keep++ {
		fsys := segment.NewMemFS()
		l := mustOpen(t, fsys)
		mustAppend(t, l, batchOf(0, 1, "a", "b"))
		rawAppend(t, fsys, frame)
		fsys.CrashTorn(func(name string, unsynced int) int { return keep })
		l = mustOpen(t, fsys)
		want := []string{"0/1:a,b"}
		if keep == len(frame) {
			want = append(want, "2/1:unsynced-record")
		}
		if got := readAll(t, l); !slices.Equal(got, want) {
			t.Fatalf("keep %d: %v, want %v", keep, got, want)
		}
		// The cut is durable and the log appends after it; the next
		// reopen finds the same end.
		mustAppend(t, l, batchOf(l.End(), 1, "next"))
		end := l.End()
		fsys.Crash()
		if l = mustOpen(t, fsys); l.End() != end {
			t.Fatalf("keep %d: end %d after reopen, want %d", keep, l.End(), end)
		}
	}
}

func TestLogZeroFilledTailIsTorn(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a"))
	rawAppend(t, fsys, make([]byte, 100))
	fsys.CrashTorn(func(string, int) int { return 100 })
	if l = mustOpen(t, fsys); l.End() != 1 {
		t.Fatalf("end %d, want 1", l.End())
	}
}

func TestLogMidLogCorruptionIsAnError(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "first"), batchOf(1, 1, "second"), batchOf(2, 1, "third"))
	// Flip a byte of the second batch's record.
	rewrite(t, fsys, func(b []byte) []byte {
		i := bytes.Index(b, []byte("second"))
		b[i] ^= 0x20
		return b
	})
	_, err := OpenLog(fsys, testDir)
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("open of a log corrupt in the middle: %v, want ErrCorrupt", err)
	}
}

func TestLogCorruptLastBatchBelowHighWatermark(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "first"), batchOf(1, 1, "third"))
	if err := l.SetHighWatermark(2); err != nil {
		t.Fatal(err)
	}
	// A damaged last frame looks like a torn tail, but the high watermark
	// says it was committed: that is an error, not a cut.
	rewrite(t, fsys, func(b []byte) []byte {
		b[len(b)-1] ^= 0xff
		return b
	})
	if _, err := OpenLog(fsys, testDir); !errors.Is(err, ErrCommittedLost) {
		t.Fatalf("open: %v, want ErrCommittedLost", err)
	}
}

func TestLogTruncateIsDurable(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a"), batchOf(1, 2, "b", "c"), batchOf(3, 3, "d"))
	if err := l.Truncate(2); !errors.Is(err, ErrNotBatchStart) {
		t.Fatalf("truncate inside a batch: %v", err)
	}
	if err := l.Truncate(1); err != nil {
		t.Fatal(err)
	}
	if got := l.EpochEntries(); !slices.Equal(got, []isr.EpochEntry{{Epoch: 1, StartOffset: 0}}) {
		t.Fatalf("epochs after truncation %v", got)
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got, want := readAll(t, l), []string{"0/1:a"}; !slices.Equal(got, want) {
		t.Fatalf("after crash %v, want %v", got, want)
	}
	if got := l.LatestEpoch(); got != 1 {
		t.Fatalf("latest epoch %d, want 1", got)
	}
	mustAppend(t, l, batchOf(1, 4, "e"))
	if got, want := readAll(t, l), []string{"0/1:a", "1/4:e"}; !slices.Equal(got, want) {
		t.Fatalf("after append %v, want %v", got, want)
	}
}

func TestLogHighWatermarkPersisted(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a"), batchOf(1, 1, "b"), batchOf(2, 1, "c"))
	if err := l.SetHighWatermark(2); err != nil {
		t.Fatal(err)
	}
	if err := l.SetHighWatermark(1); err != nil || l.HighWatermark() != 2 {
		t.Fatalf("lower high watermark: %v, hw %d", err, l.HighWatermark())
	}
	if err := l.SetHighWatermark(4); err == nil {
		t.Fatal("high watermark past the end accepted")
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	if l.HighWatermark() != 2 {
		t.Fatalf("high watermark %d after crash, want 2", l.HighWatermark())
	}
	if err := l.Truncate(1); !errors.Is(err, metalog.ErrCommittedTruncation) {
		t.Fatalf("truncation below the high watermark: %v", err)
	}
	if err := l.Truncate(2); err != nil {
		t.Fatalf("truncation to the high watermark: %v", err)
	}
}

func TestLogTakeoverEpochSurvivesCrash(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a", "b"))
	if err := l.CacheEpoch(1); err == nil {
		t.Fatal("caching an epoch not newer than the log's accepted")
	}
	if err := l.CacheEpoch(3); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	want := []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 3, StartOffset: 2}}
	if got := l.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("epochs %v, want %v", got, want)
	}
	// A voter asking where epoch 1 ends is told 2 (DivergingEpoch).
	if e, end := l.EndOffsetFor(1); e != 1 || end != 2 {
		t.Fatalf("EndOffsetFor(1) = %d, %d", e, end)
	}
	// Appends in epoch 3 keep the entry; an unsynced append lost in a
	// crash leaves the takeover entry.
	rawFrame, _ := appendFrame(nil, batchOf(2, 3, "lost"))
	rawAppend(t, fsys, rawFrame[:len(rawFrame)-1])
	fsys.CrashTorn(func(string, int) int { return len(rawFrame) - 1 })
	l = mustOpen(t, fsys)
	if got := l.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("epochs after a lost append %v, want %v", got, want)
	}
	mustAppend(t, l, batchOf(2, 3, "c"))
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got := l.EpochEntries(); !slices.Equal(got, want) {
		t.Fatalf("epochs after an append %v, want %v", got, want)
	}
	// Truncating to the epoch's start drops its entry, durably.
	if err := l.Truncate(2); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got := l.EpochEntries(); !slices.Equal(got, want[:1]) {
		t.Fatalf("epochs after truncation %v, want %v", got, want[:1])
	}
}

func TestLogFailedFsyncBreaksTheLog(t *testing.T) {
	mem := segment.NewMemFS()
	efs := segment.NewErrorFS(mem)
	l := mustOpen(t, efs)
	mustAppend(t, l, batchOf(0, 1, "a"))
	efs.Inject(segment.Fault{Ops: segment.OpSync, Path: segment.PathSuffix(logFile)})
	if err := l.Append(batchOf(1, 1, "b")); err == nil {
		t.Fatal("append with a failed fsync succeeded")
	}
	if l.End() != 1 {
		t.Fatalf("end %d after a failed append, want 1", l.End())
	}
	if err := l.Append(batchOf(1, 1, "b")); err == nil {
		t.Fatal("append after a failed fsync succeeded")
	}
}

func TestLogHighWatermarkTornWrite(t *testing.T) {
	// A crash during a high-watermark write leaves the old value or the
	// new one, for every torn prefix, and later writes go on.
	for keep := 0; keep <= hwSlot; keep++ {
		fsys := segment.NewMemFS()
		l := mustOpen(t, fsys)
		mustAppend(t, l, batchOf(0, 1, "a"), batchOf(1, 1, "b"), batchOf(2, 1, "c"))
		for hw := int64(1); hw <= 2; hw++ {
			if err := l.SetHighWatermark(hw); err != nil {
				t.Fatal(err)
			}
		}
		// Write hw 3 without its fsync taking effect: rebuild the bytes
		// the write would put and tear them.
		next := l.hwFile
		next.seq++
		copy(next.file[(next.seq%2)*hwSlot:], hwSlotBytes(next.seq, 3))
		f, err := fsys.OpenFile(filepath.Join(testDir, hwFile), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write(next.file[:])
		f.Close()
		fsys.CrashTorn(func(string, int) int { return keep })
		l = mustOpen(t, fsys)
		got := l.HighWatermark()
		switch {
		case keep == 0 && got != 2, keep == hwSlot && got != 3, got != 2 && got != 3:
			t.Fatalf("keep %d: high watermark %d, want 2 or 3", keep, got)
		}
		if err := l.SetHighWatermark(3); err != nil {
			t.Fatal(err)
		}
		fsys.Crash()
		if l = mustOpen(t, fsys); l.HighWatermark() != 3 {
			t.Fatalf("keep %d: high watermark %d after a later write", keep, l.HighWatermark())
		}
	}
}
