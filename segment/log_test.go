package segment

import (
	"bytes"
	"errors"
	"math"
	"sync"
	"testing"
	"time"
)

// fill appends n batches of varying sizes and returns them in log order.
func fill(t *testing.T, l *Log, n int, ts int64) [][]byte {
	t.Helper()
	var out [][]byte
	for i := 0; i < n; i++ {
		b, _ := appendSpec(t, l, batchSpec{records: 1 + i%5, valSize: 20 + (i*37)%300, ts: ts + int64(i)*10})
		out = append(out, b)
	}
	return out
}

// checkReadEveryOffset reads at every offset of the log and verifies the
// first returned batch is the one containing it, byte for byte.
func checkReadEveryOffset(t *testing.T, l *Log, batches [][]byte) {
	t.Helper()
	for _, want := range batches {
		h := headersOf(t, want)[0]
		for off := h.BaseOffset; off <= h.LastOffset(); off++ {
			if off < l.StartOffset() {
				continue
			}
			r, err := l.Read(off, 1, math.MaxInt64, true)
			if err != nil {
				t.Fatalf("Read(%d): %v", off, err)
			}
			got := readBytes(t, r)
			r.Release()
			if !bytes.Equal(got, want) {
				t.Fatalf("Read(%d) returned %d bytes, not the containing batch at %d", off, len(got), h.BaseOffset)
			}
		}
	}
}

func TestAppendReadRoundTrip(t *testing.T) {
	// A cache of its own, big enough that the read of every segment below
	// pins their files rather than copying (see TestMain).
	fs := WithFileCache(NewMemFS(), NewFileCache(64))
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches := fill(t, l, 120, 1000)
	if l.NumSegments() < 5 {
		t.Fatalf("expected several segment rolls, have %d segments", l.NumSegments())
	}
	all := bytes.Join(batches, nil)
	var wantLEO int64
	for _, h := range headersOf(t, all) {
		wantLEO = h.LastOffset() + 1
		if h.PartitionLeaderEpoch != 7 {
			t.Fatalf("leader epoch not rewritten: %+v", h)
		}
	}
	if l.EndOffset() != wantLEO || l.Size() != int64(len(all)) {
		t.Fatalf("LEO %d size %d, want %d %d", l.EndOffset(), l.Size(), wantLEO, len(all))
	}
	r, err := l.Read(0, math.MaxInt32, math.MaxInt64, false)
	if err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, r); !bytes.Equal(got, all) {
		t.Fatalf("full read differs: %d vs %d bytes", len(got), len(all))
	}
	if len(r.Ranges) != l.NumSegments() {
		t.Fatalf("read spans %d ranges over %d segments", len(r.Ranges), l.NumSegments())
	}
	r.Release()
	checkReadEveryOffset(t, l, batches)

	// Everything, including index lookups, still works after a reopen.
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(0, 100, math.MaxInt64, true); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("read after close: %v", err)
	}
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if l.EndOffset() != wantLEO || l.RecoveryPoint() != wantLEO {
		t.Fatalf("after reopen LEO %d rp %d, want %d", l.EndOffset(), l.RecoveryPoint(), wantLEO)
	}
	checkReadEveryOffset(t, l, batches)
	// Appends continue where the log ended.
	_, info := appendSpec(t, l, batchSpec{records: 2, valSize: 10})
	if info.FirstOffset != wantLEO || info.LastOffset != wantLEO+1 {
		t.Fatalf("append after reopen: %+v", info)
	}
}

func TestReadBounds(t *testing.T) {
	l := openLog(t, NewMemFS(), testDir, testConfig(), nil)
	defer l.Close()
	batches := fill(t, l, 40, 0)
	hs := headersOf(t, bytes.Join(batches, nil))

	// maxOffset: never a batch whose last offset reaches it.
	for _, hw := range []int64{0, 1, hs[3].LastOffset(), hs[3].LastOffset() + 1, hs[20].BaseOffset + 1} {
		r, err := l.Read(0, math.MaxInt32, hw, false)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range headersOf(t, readBytes(t, r)) {
			if h.LastOffset() >= hw {
				t.Fatalf("hw %d: returned batch ending at %d", hw, h.LastOffset())
			}
		}
		var want int64
		for _, h := range hs {
			if h.LastOffset() < hw {
				want += int64(h.Size())
			}
		}
		if r.Bytes != want {
			t.Fatalf("hw %d: got %d bytes want %d", hw, r.Bytes, want)
		}
		// Next is where the consumer continues: the first batch left out.
		wantNext := int64(0)
		for _, h := range hs {
			if h.LastOffset() < hw {
				wantNext = h.LastOffset() + 1
			}
		}
		if r.Next != wantNext {
			t.Fatalf("hw %d: Next %d, want %d", hw, r.Next, wantNext)
		}
		r.Release()
	}
	if r, _ := l.Read(0, math.MaxInt32, math.MaxInt64, false); r.Next != l.EndOffset() {
		t.Fatalf("reading everything: Next %d, want the log end %d", r.Next, l.EndOffset())
	} else {
		r.Release()
	}
	if r, _ := l.Read(l.EndOffset(), math.MaxInt32, math.MaxInt64, false); r.Next != l.EndOffset() || r.Bytes != 0 {
		t.Fatalf("reading at the end: Next %d bytes %d", r.Next, r.Bytes)
	}

	// maxBytes: whole batches only; minOne returns an oversized first batch.
	first := int64(hs[0].Size())
	r, _ := l.Read(0, int(first)-1, math.MaxInt64, false)
	if r.Bytes != 0 {
		t.Fatalf("without minOne an oversized first batch must not be returned, got %d", r.Bytes)
	}
	r, _ = l.Read(0, int(first)-1, math.MaxInt64, true)
	if r.Bytes != first {
		t.Fatalf("minOne: got %d bytes, want %d", r.Bytes, first)
	}
	r.Release()
	limit := first + int64(hs[1].Size()) + int64(hs[2].Size())/2
	r, _ = l.Read(0, int(limit), math.MaxInt64, true)
	if r.Bytes != first+int64(hs[1].Size()) {
		t.Fatalf("maxBytes: got %d bytes", r.Bytes)
	}
	if r.Next != hs[2].BaseOffset {
		t.Fatalf("maxBytes: Next %d, want batch 2's base %d", r.Next, hs[2].BaseOffset)
	}
	r.Release()

	// Range checks.
	if _, err := l.Read(l.EndOffset()+1, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond LEO: %v", err)
	}
	if _, err := l.Read(-1, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("negative: %v", err)
	}
	r, err := l.Read(l.EndOffset(), 100, math.MaxInt64, true)
	if err != nil || r.Bytes != 0 {
		t.Fatalf("at LEO: %v %d", err, r.Bytes)
	}
	if err := l.SetStartOffset(hs[5].BaseOffset + 1); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Read(hs[5].BaseOffset, 100, math.MaxInt64, true); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("below start: %v", err)
	}

	got, err := l.ReadBatches(hs[10].BaseOffset, 1)
	if err != nil || !bytes.Equal(got, batches[10]) {
		t.Fatalf("ReadBatches: %v", err)
	}
	var n int
	if err := l.ScanBatches(hs[31].BaseOffset+1, func(h BatchHeader) error {
		if n == 0 && h.BaseOffset != hs[31].BaseOffset {
			t.Fatalf("scan started at %d", h.BaseOffset)
		}
		n++
		return nil
	}); err != nil || n != 9 {
		t.Fatalf("ScanBatches: %v, %d batches", err, n)
	}
}

func TestTimestamps(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches := fill(t, l, 60, 10_000) // batch i covers ts 10000+10i .. +records-1
	hs := headersOf(t, bytes.Join(batches, nil))
	// An out-of-order (older) batch must not confuse the search.
	appendSpec(t, l, batchSpec{records: 1, ts: 5})
	check := func(l *Log) {
		t.Helper()
		for i, h := range hs {
			off, ts, ok := l.FindOffsetByTimestamp(h.MaxTimestamp)
			if !ok || off != h.BaseOffset || ts != h.MaxTimestamp {
				t.Fatalf("ts %d (batch %d): got %d %d %v", h.MaxTimestamp, i, off, ts, ok)
			}
		}
		if off, _, ok := l.FindOffsetByTimestamp(0); !ok || off != 0 {
			t.Fatalf("ts 0: %d %v", off, ok)
		}
		if _, _, ok := l.FindOffsetByTimestamp(1 << 50); ok {
			t.Fatal("found a batch newer than all")
		}
		last := hs[len(hs)-1]
		if off, ts := l.MaxTimestamp(); off != last.LastOffset() || ts != last.MaxTimestamp {
			t.Fatalf("MaxTimestamp: %d %d", off, ts)
		}
	}
	check(l)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	check(l)
	// Lookup below the log start is clamped to it.
	start := hs[2].BaseOffset + 1
	if err := l.SetStartOffset(start); err != nil {
		t.Fatal(err)
	}
	if off, _, ok := l.FindOffsetByTimestamp(0); !ok || off != start {
		t.Fatalf("after SetStartOffset: %d %v", off, ok)
	}
}

func TestLogAppendTime(t *testing.T) {
	l := openLog(t, NewMemFS(), testDir, testConfig(), nil)
	defer l.Close()
	b := makeBatch(t, batchSpec{records: 3, ts: 1})
	hs, _ := ValidateBatches(b, 0)
	info, err := l.Append(b, hs, 1, 777)
	if err != nil || info.LogAppendTime != 777 {
		t.Fatalf("%v %+v", err, info)
	}
	got, _ := l.ReadBatches(0, 1000)
	h := headersOf(t, got)[0]
	if !h.LogAppendTime() || h.MaxTimestamp != 777 || hs[0] != h {
		t.Fatalf("stored %+v, returned %+v", h, hs[0])
	}
}

func TestRetentionBySize(t *testing.T) {
	fs := NewMemFS()
	cfg := testConfig()
	l := openLog(t, fs, testDir, cfg, nil)
	defer l.Close()
	batches := fill(t, l, 100, 0)
	segsBefore, sizeBefore := l.NumSegments(), l.Size()
	cfg.RetentionBytes = sizeBefore / 3
	l.SetConfig(cfg)
	n, err := l.ApplyRetention()
	if err != nil || n == 0 {
		t.Fatalf("ApplyRetention: %d %v", n, err)
	}
	if l.NumSegments() != segsBefore-n || l.Size() < cfg.RetentionBytes {
		t.Fatalf("segments %d->%d, size %d (retention %d)", segsBefore, l.NumSegments(), l.Size(), cfg.RetentionBytes)
	}
	l.mu.RLock()
	firstBase := l.segs[0].base
	l.mu.RUnlock()
	if l.StartOffset() != firstBase {
		t.Fatalf("start %d, first segment %d", l.StartOffset(), firstBase)
	}
	// Deleted files are gone; the rest reads fine and survives a reopen.
	if _, ok := fs.fileData(segName(testDir, 0, ".log")); ok {
		t.Fatal("segment 0 still on disk")
	}
	checkReadEveryOffset(t, l, batches)
	start := l.StartOffset()
	l.Close()
	l = openLog(t, fs, testDir, cfg, nil)
	if l.StartOffset() != start {
		t.Fatalf("start after reopen %d, want %d", l.StartOffset(), start)
	}
	// Never the active segment, even with a zero budget.
	cfg.RetentionBytes = 0
	l.SetConfig(cfg)
	if _, err := l.ApplyRetention(); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() != 1 || l.StartOffset() != l.active().base {
		t.Fatalf("%d segments, start %d", l.NumSegments(), l.StartOffset())
	}
}

func TestRetentionByTime(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.RetentionMs = time.Hour.Milliseconds()
	l := openLog(t, NewMemFS(), testDir, cfg, c)
	defer l.Close()
	base := c.now().UnixMilli()
	old := fill(t, l, 30, base-2*time.Hour.Milliseconds())
	oldEnd := headersOf(t, old[len(old)-1])[0].LastOffset() + 1
	// Start the new data in a fresh segment so the boundary is clean.
	l.appendMu.Lock()
	_, err := l.roll(oldEnd, c.now())
	l.appendMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	fill(t, l, 30, base)
	n, err := l.ApplyRetention()
	if err != nil || n == 0 {
		t.Fatalf("ApplyRetention: %d %v", n, err)
	}
	if l.StartOffset() != oldEnd {
		t.Fatalf("start %d, want %d", l.StartOffset(), oldEnd)
	}
	if n, _ := l.ApplyRetention(); n != 0 {
		t.Fatalf("fresh data deleted: %d", n)
	}
	c.advance(3 * time.Hour)
	if _, err := l.ApplyRetention(); err != nil || l.NumSegments() != 1 {
		t.Fatalf("after expiry: %v, %d segments", err, l.NumSegments())
	}
}

func TestSetStartOffset(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches := fill(t, l, 80, 0)
	hs := headersOf(t, bytes.Join(batches, nil))
	segs := l.NumSegments()
	target := hs[51].BaseOffset + 1 // inside a batch
	if err := l.SetStartOffset(target); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != target || l.NumSegments() >= segs {
		t.Fatalf("start %d segments %d->%d", l.StartOffset(), segs, l.NumSegments())
	}
	// The batch containing the start is still served whole.
	r, err := l.Read(target, 1, math.MaxInt64, true)
	if err != nil || !bytes.Equal(readBytes(t, r), batches[51]) {
		t.Fatalf("read at start: %v", err)
	}
	r.Release()
	if err := l.SetStartOffset(l.EndOffset() + 1); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("beyond LEO: %v", err)
	}
	if err := l.SetStartOffset(1); err != nil || l.StartOffset() != target {
		t.Fatalf("moving back: %v", err)
	}
	l.Close()
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if l.StartOffset() != target {
		t.Fatalf("start after reopen %d", l.StartOffset())
	}
	if err := l.SetStartOffset(l.EndOffset()); err != nil || l.StartOffset() != l.EndOffset() {
		t.Fatalf("to LEO: %v", err)
	}
}

func TestTruncateTo(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	batches := fill(t, l, 80, 0)
	hs := headersOf(t, bytes.Join(batches, nil))
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	cut := hs[37].BaseOffset
	if err := l.TruncateTo(cut); err != nil {
		t.Fatal(err)
	}
	if l.EndOffset() != cut || l.RecoveryPoint() != cut {
		t.Fatalf("LEO %d rp %d, want %d", l.EndOffset(), l.RecoveryPoint(), cut)
	}
	var size int64
	for _, h := range hs[:37] {
		size += int64(h.Size())
	}
	if l.Size() != size {
		t.Fatalf("size %d want %d", l.Size(), size)
	}
	checkReadEveryOffset(t, l, batches[:37])
	// Mid-batch truncation drops the whole containing batch.
	if err := l.TruncateTo(hs[31].BaseOffset + 1); err != nil || l.EndOffset() != hs[31].BaseOffset {
		t.Fatalf("mid-batch: %v LEO %d", err, l.EndOffset())
	}
	more := fill(t, l, 20, 5000)
	all := append(append([][]byte{}, batches[:31]...), more...)
	checkReadEveryOffset(t, l, all)
	l.Close()
	l = openLog(t, fs, testDir, testConfig(), nil)
	checkReadEveryOffset(t, l, all)
	if off, _, ok := l.FindOffsetByTimestamp(5000); !ok || off != hs[31].BaseOffset {
		t.Fatalf("timestamp after truncation: %d %v", off, ok)
	}
	// Below the start: the log restarts empty at the offset.
	if err := l.SetStartOffset(100); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateTo(50); err != nil {
		t.Fatal(err)
	}
	if l.StartOffset() != 50 || l.EndOffset() != 50 || l.Size() != 0 {
		t.Fatalf("full truncation: start %d LEO %d size %d", l.StartOffset(), l.EndOffset(), l.Size())
	}
	_, info := appendSpec(t, l, batchSpec{records: 1})
	if info.FirstOffset != 50 {
		t.Fatalf("append after full truncation: %+v", info)
	}
	l.Close()
}

func TestReleaseKeepsDeletedSegmentReadable(t *testing.T) {
	for _, name := range []string{"mem", "os"} {
		t.Run(name, func(t *testing.T) {
			var fsys FS = NewMemFS()
			dir := testDir
			if name == "os" {
				fsys, dir = OSFS(), t.TempDir()
			}
			// Pinned rather than copied, whatever other tests left
			// pinned in the package's tiny cache (TestMain).
			fsys = WithFileCache(fsys, NewFileCache(16))
			l := openLog(t, fsys, dir, testConfig(), nil)
			defer l.Close()
			batches := fill(t, l, 40, 0)
			r, err := l.Read(0, 1, math.MaxInt64, true)
			if err != nil {
				t.Fatal(err)
			}
			if err := l.SetStartOffset(l.EndOffset()); err != nil {
				t.Fatal(err)
			}
			if l.NumSegments() != 1 {
				t.Fatalf("%d segments left", l.NumSegments())
			}
			if got := readBytes(t, r); !bytes.Equal(got, batches[0]) {
				t.Fatal("deleted segment's data changed before Release")
			}
			r.Release()
			r.Release() // idempotent
			if _, err := r.Ranges[0].File.ReadAt(make([]byte, 1), 0); err == nil {
				t.Fatal("file still open after the last reference was released")
			}
		})
	}
}

func TestOSFS(t *testing.T) {
	dir := t.TempDir()
	// A cache of its own: the package's tiny one (TestMain) would have the
	// read below, which pins a dozen segments, copied rather than pinned.
	fsys := WithFileCache(OSFS(), NewFileCache(64))
	l := openLog(t, fsys, dir, testConfig(), nil)
	batches := fill(t, l, 50, 0)
	r, err := l.Read(0, 1<<20, math.MaxInt64, false)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := r.Ranges[0].File.(interface{ Fd() uintptr }); !ok {
		t.Fatal("OSFS file does not expose Fd")
	}
	r.Release()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openLog(t, OSFS(), dir, testConfig(), nil)
	checkReadEveryOffset(t, l, batches)
	if err := l.Delete(); err != nil {
		t.Fatal(err)
	}
	if names, err := OSFS().ReadDir(dir); err == nil {
		t.Fatalf("dir still exists: %v", names)
	}
}

func TestSegmentRollByAgeAndIndex(t *testing.T) {
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes = 1 << 20
	cfg.SegmentMs = 1000
	l := openLog(t, NewMemFS(), testDir, cfg, c)
	defer l.Close()
	fill(t, l, 3, 0)
	c.advance(999 * time.Millisecond)
	fill(t, l, 1, 0)
	if l.NumSegments() != 1 {
		t.Fatal("rolled early")
	}
	c.advance(time.Millisecond)
	fill(t, l, 1, 0)
	if l.NumSegments() != 2 {
		t.Fatalf("no roll by age: %d", l.NumSegments())
	}
	l.appendMu.Lock()
	l.maxIndex = 3 * offsetEntrySize
	l.appendMu.Unlock()
	fill(t, l, 60, 0)
	if l.NumSegments() < 4 {
		t.Fatalf("no roll by full index: %d", l.NumSegments())
	}
}

func TestConcurrentReadAppend(t *testing.T) {
	l := openLog(t, NewMemFS(), testDir, testConfig(), nil)
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for g := 0; g < 4; g++ {
		spin(&wg, stop, func() bool {
			leo := l.EndOffset()
			if leo == 0 {
				return true
			}
			off := leo / 2
			r, err := l.Read(off, 2000, leo, true)
			if err != nil {
				// Retention may have moved the start meanwhile.
				return errors.Is(err, ErrOffsetOutOfRange) || noError(t, err)
			}
			if got := readBytes(t, r); len(got) > 0 {
				if _, err := ValidateBatches(got, 0); err != nil {
					t.Error(err)
				}
			}
			r.Release()
			l.FindOffsetByTimestamp(100)
			return true
		})
	}
	cfg := testConfig()
	cfg.RetentionBytes = 20000
	cfg.FlushIntervalMessages = 50
	l.SetConfig(cfg)
	for i := 0; i < 400; i++ {
		appendSpec(t, l, batchSpec{records: 1 + i%3, valSize: 100, ts: int64(i)})
		if i%50 == 0 {
			if _, err := l.ApplyRetention(); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	if l.RecoveryPoint() == 0 {
		t.Fatal("FlushIntervalMessages never flushed")
	}
}
