package metarepl

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"path/filepath"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/segment"
)

func checkpointOf(offset int64, epoch int32, vals ...string) Batch {
	b := batchOf(offset, epoch, vals...)
	b.Checkpoint = true
	return b
}

// readFrom returns the batches from the log start, checkpoints marked "*".
func readFrom(t *testing.T, l *Log) []string {
	t.Helper()
	bs, err := l.Read(l.StartOffset(), 1<<30, l.End())
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	out := describe(bs)
	for i, b := range bs {
		if b.Checkpoint {
			out[i] += "*"
		}
	}
	return out
}

// trimSetup is a log with two epochs and a committed checkpoint at 3:
// 0/1:a,b 2/1:c 3/2:ck* 4/2:d (high watermark 5) 5/2:e (uncommitted).
func trimSetup(t *testing.T, fsys segment.FS) *Log {
	t.Helper()
	l := mustOpen(t, fsys)
	mustAppend(t, l, batchOf(0, 1, "a", "b"), batchOf(2, 1, "c"), checkpointOf(3, 2, "ck"), batchOf(4, 2, "d"), batchOf(5, 2, "e"))
	if err := l.SetHighWatermark(5); err != nil {
		t.Fatal(err)
	}
	return l
}

var (
	untrimmed = []string{"0/1:a,b", "2/1:c", "3/2:ck*", "4/2:d", "5/2:e"}
	trimmed   = untrimmed[2:]
)

func TestLogTrimTo(t *testing.T) {
	fsys := segment.NewMemFS()
	l := trimSetup(t, fsys)
	for _, off := range []int64{2, 1, 4, 6} {
		if err := l.TrimTo(off); err == nil {
			t.Fatalf("trim to %d (not a checkpoint batch start) accepted", off)
		}
	}
	// A checkpoint past the high watermark is not committed yet.
	mustAppend(t, l, checkpointOf(6, 2, "ck2"))
	if err := l.TrimTo(6); err == nil {
		t.Fatal("trim to an uncommitted checkpoint accepted")
	}
	if got := readFrom(t, l); !slices.Equal(got, append(slices.Clone(untrimmed), "6/2:ck2*")) {
		t.Fatalf("refused trims changed the log: %v", got)
	}
	if err := l.TrimTo(3); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(trimmed), "6/2:ck2*")
	check := func(when string) {
		t.Helper()
		if l.StartOffset() != 3 || l.End() != 7 || l.HighWatermark() != 5 {
			t.Fatalf("%s: start %d end %d hw %d, want 3 7 5", when, l.StartOffset(), l.End(), l.HighWatermark())
		}
		if got := readFrom(t, l); !slices.Equal(got, want) {
			t.Fatalf("%s: %v, want %v", when, got, want)
		}
		if _, err := l.Read(0, 100, 7); !errors.Is(err, kerr.OffsetOutOfRange) {
			t.Fatalf("%s: read below the start: %v, want OFFSET_OUT_OF_RANGE", when, err)
		}
		// Epoch 2 started at 3 in the old log too; the cache starts at the
		// log start, and an epoch older than its first has no end: a
		// fetcher still in it must start over.
		if got := l.EpochEntries(); !slices.Equal(got, []isr.EpochEntry{{Epoch: 2, StartOffset: 3}}) {
			t.Fatalf("%s: epochs %v", when, got)
		}
		if e, end := l.EndOffsetFor(1); e != isr.UndefinedEpoch || end != isr.UndefinedEpochOffset {
			t.Fatalf("%s: EndOffsetFor(1) = %d, %d; want undefined", when, e, end)
		}
		if e, end := l.EndOffsetFor(2); e != 2 || end != 7 {
			t.Fatalf("%s: EndOffsetFor(2) = %d, %d; want 2, 7", when, e, end)
		}
	}
	check("after trim")
	if err := l.TrimTo(2); err == nil {
		t.Fatal("trim below the start accepted")
	}
	if err := l.TrimTo(3); err != nil {
		t.Fatalf("trim to the start again: %v", err)
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	check("after crash")
	// Appends, truncation (not below the high watermark) and a second trim
	// go on from the new start.
	mustAppend(t, l, batchOf(7, 3, "f"))
	if err := l.Truncate(4); !errors.Is(err, metalog.ErrCommittedTruncation) {
		t.Fatalf("truncate below the high watermark: %v", err)
	}
	if err := l.SetHighWatermark(8); err != nil {
		t.Fatal(err)
	}
	if err := l.TrimTo(6); err != nil {
		t.Fatal(err)
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got, want := readFrom(t, l), []string{"6/2:ck2*", "7/3:f"}; !slices.Equal(got, want) || l.StartOffset() != 6 {
		t.Fatalf("after a second trim: %v from %d, want %v from 6", got, l.StartOffset(), want)
	}
}

// allOps are the file system operations a crash test fails one by one.
const allOps = segment.OpOpen | segment.OpRead | segment.OpWrite | segment.OpSync | segment.OpTruncate |
	segment.OpRename | segment.OpRemove | segment.OpSyncDir | segment.OpReadDir | segment.OpStat

// crashEachStep runs op on a fresh log once per file system operation op
// makes, failing that one and every one after it (a dead disk), then
// crashes and calls check with op's error and the reopened log. It stops
// once op runs with nothing failed.
func crashEachStep(t *testing.T, setup func(segment.FS) *Log, op func(*Log) error, check func(n int, err error, l *Log, mem *segment.MemFS)) {
	t.Helper()
	for n := 1; ; n++ {
		mem := segment.NewMemFS()
		efs := segment.NewErrorFS(mem)
		l := setup(efs)
		in := efs.Inject(segment.Fault{Ops: allOps, Nth: n, Sticky: true})
		err := op(l)
		failed := in.Failed() > 0
		efs.Heal()
		if !failed && err != nil {
			t.Fatalf("step %d: %v with no fault", n, err)
		}
		mem.Crash()
		l2, oerr := OpenLog(mem, testDir)
		if oerr != nil {
			t.Fatalf("step %d (op err %v): reopen: %v", n, err, oerr)
		}
		check(n, err, l2, mem)
		if !failed {
			if n < 3 {
				t.Fatalf("only %d steps: the op did no I/O", n)
			}
			return
		}
	}
}

func TestLogTrimCrashAtEveryStep(t *testing.T) {
	crashEachStep(t, func(fsys segment.FS) *Log { return trimSetup(t, fsys) },
		func(l *Log) error {
			if err := l.TrimTo(3); err != nil {
				return err
			}
			// An append after the trim goes to the new file and survives.
			return l.Append(batchOf(6, 2, "after"))
		},
		func(n int, err error, l *Log, _ *segment.MemFS) {
			got := readFrom(t, l)
			switch {
			case err == nil:
				if want := append(slices.Clone(trimmed), "6/2:after"); !slices.Equal(got, want) || l.StartOffset() != 3 {
					t.Fatalf("step %d: trim and append done, found %v from %d", n, got, l.StartOffset())
				}
			case l.StartOffset() == 0 && slices.Equal(got[:5], untrimmed):
			case l.StartOffset() == 3 && slices.Equal(got[:3], trimmed):
			default:
				t.Fatalf("step %d (%v): found %v from %d: neither the old log nor the trimmed one", n, err, got, l.StartOffset())
			}
			// Nothing committed at or above the start is lost.
			if l.HighWatermark() < 5 || l.End() < 6 {
				t.Fatalf("step %d: hw %d end %d, want at least 5, 6", n, l.HighWatermark(), l.End())
			}
			mustAppend(t, l, batchOf(l.End(), 3, "next"))
		})
}

func TestLogTruncateFullyAndStartAt(t *testing.T) {
	fsys := segment.NewMemFS()
	l := trimSetup(t, fsys)
	if err := l.TruncateFullyAndStartAt(4); !errors.Is(err, metalog.ErrCommittedTruncation) {
		t.Fatalf("start below the high watermark: %v", err)
	}
	if err := l.CacheEpoch(3); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateFullyAndStartAt(20); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		if l.StartOffset() != 20 || l.End() != 20 || l.HighWatermark() != 20 || l.LatestEpoch() != isr.UndefinedEpoch {
			t.Fatalf("%s: start %d end %d hw %d epoch %d, want 20 20 20 undefined", when, l.StartOffset(), l.End(),
				l.HighWatermark(), l.LatestEpoch())
		}
		if bs, err := l.Read(20, 100, 20); err != nil || bs != nil {
			t.Fatalf("%s: read at the start: %v, %v", when, bs, err)
		}
		if _, err := l.Read(19, 100, 20); !errors.Is(err, kerr.OffsetOutOfRange) {
			t.Fatalf("%s: read below the start: %v", when, err)
		}
	}
	check("after reset")
	fsys.Crash()
	l = mustOpen(t, fsys)
	check("after crash")
	mustAppend(t, l, checkpointOf(20, 4, "ck"), batchOf(21, 4, "x"))
	if err := l.TruncateFullyAndStartAt(19); err == nil {
		t.Fatal("start below the start accepted")
	}
	fsys.Crash()
	l = mustOpen(t, fsys)
	if got, want := readFrom(t, l), []string{"20/4:ck*", "21/4:x"}; !slices.Equal(got, want) {
		t.Fatalf("after appends %v, want %v", got, want)
	}
	if got := l.EpochEntries(); !slices.Equal(got, []isr.EpochEntry{{Epoch: 4, StartOffset: 20}}) {
		t.Fatalf("epochs %v", got)
	}
}

func TestLogTruncateFullyCrashAtEveryStep(t *testing.T) {
	crashEachStep(t, func(fsys segment.FS) *Log { return trimSetup(t, fsys) },
		func(l *Log) error {
			if err := l.TruncateFullyAndStartAt(10); err != nil {
				return err
			}
			return l.Append(checkpointOf(10, 3, "ck"))
		},
		func(n int, err error, l *Log, _ *segment.MemFS) {
			got := readFrom(t, l)
			switch {
			case err == nil:
				if !slices.Equal(got, []string{"10/3:ck*"}) {
					t.Fatalf("step %d: reset and append done, found %v", n, got)
				}
			case l.StartOffset() == 0 && len(got) >= 5 && slices.Equal(got[:5], untrimmed):
				// The old log; its cache comes from its batches.
				if l.LatestEpoch() != 2 {
					t.Fatalf("step %d: old log with latest epoch %d", n, l.LatestEpoch())
				}
			case l.StartOffset() == 10 && len(got) == 0:
				if l.LatestEpoch() != isr.UndefinedEpoch || l.HighWatermark() != 10 {
					t.Fatalf("step %d: reset log with epoch %d, hw %d", n, l.LatestEpoch(), l.HighWatermark())
				}
			default:
				t.Fatalf("step %d (%v): found %v from %d: neither the old log nor the reset one", n, err, got, l.StartOffset())
			}
		})
}

// appendFrameV1 is a frame as version 1 wrote it: no attributes.
func appendFrameV1(dst []byte, b Batch) []byte {
	body := binary.BigEndian.AppendUint64(nil, uint64(b.Offset))
	body = binary.BigEndian.AppendUint32(body, uint32(b.Epoch))
	body = binary.BigEndian.AppendUint32(body, uint32(len(b.Records)))
	for _, r := range b.Records {
		body = binary.BigEndian.AppendUint32(body, uint32(len(r)))
		body = append(body, r...)
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(body)))
	dst = binary.BigEndian.AppendUint32(dst, crc32.Checksum(body, castagnoli))
	return append(dst, body...)
}

// writeV1Log writes a version 1 log file with a torn frame at its end.
func writeV1Log(t *testing.T, fsys segment.FS) segment.FS {
	t.Helper()
	if err := fsys.MkdirAll(testDir, 0o755); err != nil {
		t.Fatal(err)
	}
	data := append([]byte(nil), logMagicV1...)
	data = appendFrameV1(data, batchOf(0, 1, "a", "b"))
	data = appendFrameV1(data, batchOf(2, 2, "c"))
	torn := appendFrameV1(nil, batchOf(3, 2, "torn"))
	data = append(data, torn[:len(torn)-2]...)
	if err := segment.WriteFileAtomic(fsys, filepath.Join(testDir, logFile), data); err != nil {
		t.Fatal(err)
	}
	return fsys
}

func TestLogReadsVersion1(t *testing.T) {
	fsys := segment.NewMemFS()
	l := mustOpen(t, writeV1Log(t, fsys))
	want := []string{"0/1:a,b", "2/2:c"}
	if got := readFrom(t, l); !slices.Equal(got, want) || l.StartOffset() != 0 {
		t.Fatalf("version 1 log read as %v from %d, want %v from 0", got, l.StartOffset(), want)
	}
	if got := l.EpochEntries(); !slices.Equal(got, []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 2, StartOffset: 2}}) {
		t.Fatalf("epochs %v", got)
	}
	// It was rewritten as version 2, so checkpoints append to it.
	mustAppend(t, l, checkpointOf(3, 2, "ck"))
	fsys.Crash()
	l = mustOpen(t, fsys)
	data, err := segment.ReadFile(fsys, filepath.Join(testDir, logFile))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(data, logMagicV2) {
		t.Fatalf("file starts %q, want the version 2 header", data[:8])
	}
	if got := readFrom(t, l); !slices.Equal(got, append(want, "3/2:ck*")) {
		t.Fatalf("after upgrade %v", got)
	}
}

func TestLogVersion1UpgradeCrashAtEveryStep(t *testing.T) {
	for n := 1; ; n++ {
		mem := segment.NewMemFS()
		writeV1Log(t, mem)
		efs := segment.NewErrorFS(mem)
		in := efs.Inject(segment.Fault{Ops: allOps, Nth: n, Sticky: true})
		l, err := OpenLog(efs, testDir)
		failed := in.Failed() > 0
		if err == nil {
			l.Close()
		}
		mem.Crash()
		l = mustOpen(t, mem)
		if got, want := readFrom(t, l), []string{"0/1:a,b", "2/2:c"}; !slices.Equal(got, want) {
			t.Fatalf("step %d (%v): %v, want %v", n, err, got, want)
		}
		if !failed {
			return
		}
	}
}

func TestFrameCheckpointAttribute(t *testing.T) {
	b := checkpointOf(7, 3, "state")
	frame, err := appendFrame(nil, b)
	if err != nil {
		t.Fatal(err)
	}
	got, n, err := decodeFrame(frame, frameV2)
	if err != nil || n != len(frame) || !got.Checkpoint || int64(n) != frameSize(b) {
		t.Fatalf("decoded %+v (%d of %d bytes, size %d): %v", got, n, len(frame), frameSize(b), err)
	}
	// The checksum covers the attributes: clearing the flag is caught.
	frame[frameHeader+13] ^= attrCheckpoint
	if _, _, err := decodeFrame(frame, frameV2); err == nil {
		t.Fatal("flipped attribute decoded")
	}
}
