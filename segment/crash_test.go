package segment

import (
	"bytes"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// readEverything returns all bytes from the start offset to the log end.
func readEverything(t *testing.T, l *Log) []byte {
	t.Helper()
	if l.StartOffset() == l.EndOffset() {
		return nil
	}
	b, err := l.ReadBatches(l.StartOffset(), math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestCrashDropsUnflushed(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	flushed := fill(t, l, 50, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	flushedLEO := l.EndOffset()
	segs := l.NumSegments()
	fill(t, l, 50, 0) // rolls more segments, none of it synced
	fs.Crash()

	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if l.EndOffset() != flushedLEO || l.NumSegments() != segs {
		t.Fatalf("LEO %d segments %d, want %d %d", l.EndOffset(), l.NumSegments(), flushedLEO, segs)
	}
	if got := readEverything(t, l); !bytes.Equal(got, bytes.Join(flushed, nil)) {
		t.Fatal("flushed data differs after crash")
	}
	checkReadEveryOffset(t, l, flushed)
}

func TestCrashTornTail(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	flushed := fill(t, l, 10, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	active := segName(testDir, l.active().base, ".log")
	tail, _ := appendSpec(t, l, batchSpec{records: 3, valSize: 200})
	fs.CrashTorn(func(name string, unsynced int) int {
		if name == active {
			if unsynced != len(tail) {
				t.Errorf("unsynced %d, batch %d", unsynced, len(tail))
			}
			return len(tail) / 2 // half a batch reached the disk
		}
		return 0
	})
	if d, _ := fs.fileData(active); len(d) == 0 {
		t.Fatal("torn crash kept nothing")
	}
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if got := readEverything(t, l); !bytes.Equal(got, bytes.Join(flushed, nil)) {
		t.Fatalf("after torn crash: %d bytes, want %d", len(got), len(bytes.Join(flushed, nil)))
	}
	if d, _ := fs.fileData(active); int64(len(d)) != l.active().size {
		t.Fatalf("torn bytes not truncated from file: %d vs %d", len(d), l.active().size)
	}
	_, info := appendSpec(t, l, batchSpec{records: 1})
	if info.FirstOffset != headersOf(t, flushed[len(flushed)-1])[0].LastOffset()+1 {
		t.Fatalf("append after recovery: %+v", info)
	}
}

func TestCrashCorruptTail(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20 // keep everything in one segment
	l.SetConfig(cfg)
	flushed := fill(t, l, 5, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	more := fill(t, l, 5, 0)
	// Everything reaches the disk, but one byte inside the third unflushed
	// batch rots.
	active := segName(testDir, l.active().base, ".log")
	data, _ := fs.fileData(active)
	pos := len(bytes.Join(flushed, nil)) + len(more[0]) + len(more[1]) + 70
	data[pos] ^= 0x01
	fs.setFileData(active, data)
	fs.Crash()
	var logBuf bytes.Buffer
	l, err := Open(fs, testDir, cfg, newClock().now, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.Contains(logBuf.String(), "crc mismatch") {
		t.Fatalf("expected a CRC warning, got: %s", logBuf.String())
	}
	want := bytes.Join(append(append([][]byte{}, flushed...), more[:2]...), nil)
	if got := readEverything(t, l); !bytes.Equal(got, want) {
		t.Fatalf("after corruption: %d bytes, want %d", len(got), len(want))
	}
}

func TestCorruptIndexBelowRecoveryPointIsRebuilt(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches := fill(t, l, 60, 0)
	l.Close()
	name := segName(testDir, 0, ".index")
	idx, _ := fs.fileData(name)
	if len(idx) < 16 {
		t.Fatalf("index too small to corrupt: %d", len(idx))
	}
	idx[4], idx[12] = 0xff, 0 // positions no longer increasing / beyond the log
	fs.setFileData(name, idx)
	fs.setFileData(segName(testDir, 0, ".timeindex"), []byte{1, 2, 3})
	var logBuf bytes.Buffer
	l, err := Open(fs, testDir, testConfig(), newClock().now, slog.New(slog.NewTextHandler(&logBuf, nil)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if !strings.Contains(logBuf.String(), "rebuilding segment index") {
		t.Fatalf("index corruption went unnoticed: %s", logBuf.String())
	}
	checkReadEveryOffset(t, l, batches)
}

// TestCrashRandomized crashes at random points with random torn tails and
// checks that recovery always yields a prefix of what was appended that
// contains at least everything flushed.
func TestCrashRandomized(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := 0; iter < 40; iter++ {
		fs := NewMemFS()
		cfg := testConfig()
		l := openLog(t, fs, testDir, cfg, nil)
		var appended []byte
		var flushedBytes int
		n := 1 + rng.IntN(60)
		for i := 0; i < n; i++ {
			b, _ := appendSpec(t, l, batchSpec{records: 1 + rng.IntN(4), valSize: rng.IntN(400), ts: int64(i)})
			appended = append(appended, b...)
			if rng.IntN(8) == 0 {
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
				flushedBytes = len(appended)
			}
		}
		fs.CrashTorn(func(name string, unsynced int) int {
			if strings.HasSuffix(name, ".log") || rng.IntN(2) == 0 {
				return rng.IntN(unsynced + 1)
			}
			return 0
		})
		l = openLog(t, fs, testDir, cfg, nil)
		got := readEverything(t, l)
		if len(got) < flushedBytes || !bytes.Equal(got, appended[:len(got)]) {
			t.Fatalf("iter %d: recovered %d bytes (flushed %d, appended %d) not a valid prefix", iter, len(got), flushedBytes, len(appended))
		}
		var leo int64
		for _, h := range headersOf(t, got) {
			leo = h.LastOffset() + 1
		}
		if l.EndOffset() != leo {
			t.Fatalf("iter %d: LEO %d, data ends at %d", iter, l.EndOffset(), leo)
		}
		// The recovered log keeps working and survives a clean restart.
		appendSpec(t, l, batchSpec{records: 2, valSize: 10})
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		l = openLog(t, fs, testDir, cfg, nil)
		if l.EndOffset() != leo+2 {
			t.Fatalf("iter %d: LEO after restart %d, want %d", iter, l.EndOffset(), leo+2)
		}
		l.Close()
	}
}

// With log.flush.offset.checkpoint.interval.ms set, flushes fsync the data
// but leave the recovery-point file alone until the interval passed; a crash
// then re-validates more of the log but loses nothing that was flushed.
func TestCheckpointIntervalKeepsFlushedData(t *testing.T) {
	fs := NewMemFS()
	c := newClock()
	cfg := testConfig()
	cfg.CheckpointIntervalMs = 60_000
	l := openLog(t, fs, testDir, cfg, c)
	readRP := func() string {
		f, err := fs.OpenFile(testDir+"/"+recoveryPointFile, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		b := make([]byte, 64)
		n, _ := f.ReadAt(b, 0)
		return strings.TrimSpace(string(b[:n]))
	}
	first := fill(t, l, 5, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	rp := readRP()
	if rp != itoa64(l.EndOffset()) {
		t.Fatalf("first flush wrote recovery point %q, want %d", rp, l.EndOffset())
	}
	second := fill(t, l, 5, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readRP(); got != rp {
		t.Fatalf("a flush within the interval rewrote the recovery point: %q, was %q", got, rp)
	}
	flushedLEO := l.EndOffset()
	fs.Crash()

	l = openLog(t, fs, testDir, cfg, c)
	if l.EndOffset() != flushedLEO {
		t.Fatalf("after crash LEO %d, want the flushed %d", l.EndOffset(), flushedLEO)
	}
	if got := readEverything(t, l); !bytes.Equal(got, bytes.Join(append(first, second...), nil)) {
		t.Fatal("flushed data differs after crash")
	}
	// Once the interval passed, the next flush catches the checkpoint up.
	fill(t, l, 1, 0)
	c.advance(61 * time.Second)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := readRP(); got != itoa64(l.EndOffset()) {
		t.Fatalf("after the interval the recovery point is %q, want %d", got, l.EndOffset())
	}
	l.Close()
}

func itoa64(v int64) string { return strconv.FormatInt(v, 10) }

// syncCountingFS counts fsyncs per file name suffix.
type syncCountingFS struct {
	FS
	syncs map[string]int
}

type syncCountingFile struct {
	File
	name string
	fs   *syncCountingFS
}

func (f *syncCountingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	file, err := f.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return &syncCountingFile{File: file, name: name, fs: f}, nil
}

func (f *syncCountingFile) Sync() error {
	f.fs.syncs[filepath.Ext(f.name)]++
	return f.File.Sync()
}

// A flush after an append that added no index entry fsyncs only the log
// file: fsync-per-message topics pay one fsync per acknowledgement, and the
// index files are synced as soon as they change.
func TestFlushSyncsIndexesOnlyWhenChanged(t *testing.T) {
	fs := &syncCountingFS{FS: NewMemFS(), syncs: map[string]int{}}
	cfg := testConfig()
	cfg.SegmentBytes, cfg.IndexIntervalBytes = 1<<20, 4096
	cfg.CheckpointIntervalMs = 60_000
	l := openLog(t, fs, testDir, cfg, nil)
	defer l.Close()
	appendSpec(t, l, batchSpec{records: 1, valSize: 10})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	clear(fs.syncs)
	for i := 0; i < 5; i++ {
		appendSpec(t, l, batchSpec{records: 1, valSize: 10})
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if fs.syncs[".log"] != 5 || fs.syncs[".index"] != 0 || fs.syncs[".timeindex"] != 0 {
		t.Fatalf("5 appends without index entries: fsyncs %v, want 5 of .log only", fs.syncs)
	}
	// Past index.interval.bytes the next batch gets an index entry, and
	// the flush syncs the offset index too.
	clear(fs.syncs)
	appendSpec(t, l, batchSpec{records: 1, valSize: 8192})
	appendSpec(t, l, batchSpec{records: 1, valSize: 10})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if fs.syncs[".log"] != 1 || fs.syncs[".index"] != 1 {
		t.Fatalf("after an index entry: fsyncs %v, want .log and .index once", fs.syncs)
	}
}
