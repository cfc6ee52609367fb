package segment

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
)

// TestMain gives the logs of every test in the package that opens one
// without a cache of its own a cap of 3 files, so that the whole suite runs
// with segment files being closed and reopened under it all the time.
// Benchmarks keep the default cap: they measure what a broker does.
func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.bench"); f == nil || f.Value.String() == "" {
		tiny := NewFileCache(3)
		defaultCache = func() *FileCache { return tiny }
	}
	os.Exit(m.Run())
}

// fdCountingFS counts the segment files open through it at once, as the
// kernel would count their descriptors, and the bytes read from each kind.
type fdCountingFS struct {
	FS
	mu      sync.Mutex
	open    int
	peak    int
	handles map[string][]*countedFile // every handle ever opened, by name
	read    map[string]int64          // bytes read, by extension
}

func newFDCountingFS(inner FS) *fdCountingFS {
	return &fdCountingFS{FS: inner, handles: map[string][]*countedFile{}, read: map[string]int64{}}
}

func isSegmentFile(name string) bool {
	switch filepath.Ext(name) {
	case ".log", ".index", ".timeindex":
		return true
	}
	return false
}

func (c *fdCountingFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil || !isSegmentFile(name) {
		return f, err
	}
	cf := &countedFile{File: f, fs: c, name: name}
	c.mu.Lock()
	c.open++
	c.peak = max(c.peak, c.open)
	c.handles[name] = append(c.handles[name], cf)
	c.mu.Unlock()
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		return countedFdFile{cf, fd}, nil
	}
	return cf, nil
}

func (c *fdCountingFS) stats() (open, peak int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.open, c.peak
}

func (c *fdCountingFS) bytesRead(ext string) int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.read[ext]
}

func (c *fdCountingFS) resetPeak() {
	c.mu.Lock()
	c.peak = c.open
	clear(c.read)
	c.mu.Unlock()
}

type countedFile struct {
	File
	fs     *fdCountingFS
	name   string
	closed atomic.Bool
}

func (f *countedFile) Close() error {
	if !f.closed.Swap(true) {
		f.fs.mu.Lock()
		f.fs.open--
		f.fs.mu.Unlock()
	}
	return f.File.Close()
}

func (f *countedFile) ReadAt(p []byte, off int64) (int, error) {
	n, err := f.File.ReadAt(p, off)
	f.fs.mu.Lock()
	f.fs.read[filepath.Ext(f.name)] += int64(n)
	f.fs.mu.Unlock()
	return n, err
}

type countedFdFile struct {
	*countedFile
	fd interface{ Fd() uintptr }
}

func (f countedFdFile) Fd() uintptr { return f.fd.Fd() }

// TestFileCacheBoundsOpenFiles: 200 partitions of several segments each,
// written and read in turns, with a cap of 16 files. Every partition used
// to keep 3 descriptors per segment open for its whole life (600+ here);
// now no more than the cap are ever open, and every byte reads back, also
// after a clean stop and a reopen, which itself holds no file open.
func TestFileCacheBoundsOpenFiles(t *testing.T) {
	const logs, capFiles = 200, 16
	cfs := newFDCountingFS(NewMemFS())
	cache := NewFileCache(capFiles)
	fsys := WithFileCache(cfs, cache)
	cfg := testConfig() // 4 KiB segments
	ls := make([]*Log, logs)
	want := make([][][]byte, logs)
	dir := func(i int) string { return fmt.Sprintf("/data/t-%d", i) }
	for i := range ls {
		ls[i] = openLog(t, fsys, dir(i), cfg, nil)
	}
	for round := range 8 {
		for i, l := range ls {
			b, _ := appendSpec(t, l, batchSpec{records: 2, valSize: 600, ts: int64(round)})
			want[i] = append(want[i], b)
			if i%7 == round%7 { // a reader now and then, all over the log
				h := headersOf(t, want[i][i%len(want[i])])[0]
				r, err := l.Read(h.BaseOffset, 1, math.MaxInt64, true)
				if err != nil {
					t.Fatal(err)
				}
				if got := readBytes(t, r); !bytes.Equal(got, want[i][i%len(want[i])]) {
					t.Fatalf("log %d: read at %d returned other bytes", i, h.BaseOffset)
				}
				r.Release()
			}
		}
		if round == 4 {
			for _, l := range ls {
				if err := l.Flush(); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	segs := ls[0].NumSegments()
	if segs < 3 {
		t.Fatalf("%d segments per log, the test wants several", segs)
	}
	readAll := func() {
		t.Helper()
		for i, l := range ls {
			checkReadEveryOffset(t, l, want[i])
			// One read across all segments pins all of their .log files.
			r, err := l.Read(0, math.MaxInt32, math.MaxInt64, true)
			if err != nil {
				t.Fatal(err)
			}
			if got := readBytes(t, r); !bytes.Equal(got, bytes.Join(want[i], nil)) {
				t.Fatalf("log %d: whole read differs", i)
			}
			r.Release()
		}
	}
	readAll()
	if _, peak := cfs.stats(); peak > capFiles || cache.Stats().Peak > capFiles {
		t.Fatalf("%d segment files open at once (cache: %v), cap %d", peak, cache, capFiles)
	}
	if cache.Stats().Evictions == 0 {
		t.Fatal("nothing was evicted: the test does not test the cap")
	}
	for _, l := range ls {
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if open, _ := cfs.stats(); open != 0 || cache.Stats().Open != 0 {
		t.Fatalf("%d files (cache: %v) open after every log was closed", open, cache)
	}

	for i := range ls {
		ls[i] = openLog(t, fsys, dir(i), cfg, nil)
		if open, _ := cfs.stats(); open != 0 {
			t.Fatalf("after opening log %d, %d segment files stay open", i, open)
		}
	}
	readAll()
	for i, l := range ls {
		n := 0
		if err := l.ScanBatches(0, func(BatchHeader) error { n++; return nil }); err != nil || n != len(want[i]) {
			t.Fatalf("log %d: scanned %d batches (%v), want %d", i, n, err, len(want[i]))
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if _, peak := cfs.stats(); peak > capFiles {
		t.Fatalf("%d segment files open at once after the reopen, cap %d", peak, capFiles)
	}
	t.Logf("%d logs, %d segments each: %v", logs, segs, cache)
}

// TestFileCacheConcurrentUse runs appends, reads, flushes, retention and
// truncation of many logs from several goroutines under a small cap; with
// -race it checks the cache's locking, and it checks the cap holds.
func TestFileCacheConcurrentUse(t *testing.T) {
	const workers, perWorker, capFiles = 4, 10, 16
	cfs := newFDCountingFS(NewMemFS())
	cache := NewFileCache(capFiles)
	fsys := WithFileCache(cfs, cache)
	cfg := testConfig()
	cfg.RetentionBytes = 3 * 4096
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var ls []*Log
			for i := range perWorker {
				l, err := Open(fsys, fmt.Sprintf("/data/w%d-%d", w, i), cfg, nil, discardLogger())
				if err != nil {
					errs <- err
					return
				}
				ls = append(ls, l)
			}
			for round := range 40 {
				for i, l := range ls {
					b := makeBatch(t, batchSpec{records: 1, valSize: 500})
					hs, _ := ValidateBatches(b, 0)
					if _, err := l.Append(b, hs, 1, -1); err != nil {
						errs <- err
						return
					}
					// At most two segments: with up to three .log files
					// pinned per worker, 4 workers stay within the cap,
					// which pinned files may exceed.
					r, err := l.Read(max(l.StartOffset(), l.EndOffset()-5), 4096, math.MaxInt64, true)
					if err != nil {
						errs <- err
						return
					}
					for _, fr := range r.Ranges {
						buf := make([]byte, fr.Length)
						if n, err := fr.File.ReadAt(buf, fr.Offset); int64(n) != fr.Length {
							errs <- fmt.Errorf("read %d of %d: %v", n, fr.Length, err)
						} else if _, err := ValidateBatches(buf, 0); err != nil {
							errs <- err
						}
					}
					r.Release()
					switch (round + i) % 10 {
					case 3:
						err = l.Flush()
					case 6:
						_, err = l.ApplyRetention()
					case 9:
						err = l.TruncateTo(max(l.EndOffset()-2, l.StartOffset()))
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
			for _, l := range ls {
				if err := l.Close(); err != nil {
					errs <- err
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if open, peak := cfs.stats(); open != 0 || peak > capFiles {
		t.Fatalf("%d segment files still open, %d at most (cache: %v), cap %d", open, peak, cache, capFiles)
	}
}

// TestFileCachePinsFilesHandedOut: the file of a ReadResult goes to the
// network layer, which may sendfile from its descriptor after Read
// returned. Eviction must not close it under the send: it stays open
// however much the other logs churn the cache, and is closed (the cache
// reclaims it) once the result is released.
func TestFileCachePinsFilesHandedOut(t *testing.T) {
	const capFiles = 3
	root := t.TempDir()
	cfs := newFDCountingFS(OSFS())
	cache := NewFileCache(capFiles)
	fsys := WithFileCache(cfs, cache)
	cfg := testConfig()
	a := openLog(t, fsys, filepath.Join(root, "a-0"), cfg, nil)
	defer a.Close()
	batch, _ := appendSpec(t, a, batchSpec{records: 3, valSize: 100})
	r, err := a.Read(0, 1<<20, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	fdf, ok := r.Ranges[0].File.(interface{ Fd() uintptr })
	if !ok {
		t.Fatal("the range's file has no descriptor for sendfile")
	}
	fd := int(fdf.Fd())
	handles := cfs.handles[segName(filepath.Join(root, "a-0"), 0, ".log")]
	pinned := handles[len(handles)-1]

	var others []*Log
	for i := range 4 {
		others = append(others, openLog(t, fsys, filepath.Join(root, fmt.Sprintf("b-%d", i)), cfg, nil))
	}
	churn := func() {
		for range 10 {
			for _, l := range others {
				appendSpec(t, l, batchSpec{records: 1, valSize: 50})
				if _, err := l.ReadBatches(0, 100); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	evictions := cache.Stats().Evictions
	churn()
	if cache.Stats().Evictions == evictions {
		t.Fatal("the churn evicted nothing")
	}
	if pinned.closed.Load() {
		t.Fatal("eviction closed the file of an unreleased ReadResult")
	}
	// What sendfile would do: read the descriptor itself.
	buf := make([]byte, len(batch))
	if n, err := syscall.Pread(fd, buf, 0); n != len(batch) || !bytes.Equal(buf, batch) {
		t.Fatalf("pread on the pinned descriptor: %d bytes, %v", n, err)
	}
	if open, peak := cfs.stats(); peak > capFiles {
		t.Fatalf("%d files open at most (%d now), cap %d", peak, open, capFiles)
	}

	r.Release()
	churn()
	if !pinned.closed.Load() {
		t.Fatalf("the released file was never reclaimed (cache: %v)", cache)
	}
	for _, l := range others {
		l.Close()
	}
}

// TestFileCacheOverCapWhilePinned: files pinned by ReadResults in flight
// are never closed, so the cap gives when all open files are pinned
// (blocking could deadlock a reader holding two). Only for a moment: a
// Read that took the cache over it copies its bytes and lets its file go,
// so results in flight never hold more descriptors than the cap.
func TestFileCacheOverCapWhilePinned(t *testing.T) {
	const capFiles = 2
	cache := NewFileCache(capFiles)
	fsys := WithFileCache(OSFS(), cache)
	var rs []ReadResult
	var want [][]byte
	for i := range 5 {
		l := openLog(t, fsys, filepath.Join(t.TempDir(), fmt.Sprintf("p-%d", i)), testConfig(), nil)
		defer l.Close()
		b, _ := appendSpec(t, l, batchSpec{records: 1, valSize: 10})
		r, err := l.Read(0, 1<<20, math.MaxInt64, true)
		if err != nil {
			t.Fatal(err)
		}
		if st := cache.Stats(); st.Open > capFiles {
			t.Fatalf("after read %d: %v", i, cache)
		}
		_, hasFd := r.Ranges[0].File.(interface{ Fd() uintptr })
		if zeroCopy := i < capFiles; hasFd != zeroCopy {
			t.Fatalf("read %d: file has a descriptor: %v, want %v (%v)", i, hasFd, zeroCopy, cache)
		}
		rs, want = append(rs, r), append(want, b)
	}
	if cache.Stats().OverLimit == 0 {
		t.Fatal("the cap never gave: the test does not test it")
	}
	for i := range rs {
		if got := readBytes(t, rs[i]); !bytes.Equal(got, want[i]) {
			t.Fatalf("read %d returned other bytes", i)
		}
		rs[i].Release()
	}
	if st := cache.Stats(); st.Open > capFiles {
		t.Fatalf("after the releases: %v", cache)
	}
}

// TestCleanReopenReadsOnlyTheTail: after a clean stop the active segment
// lies below the recovery point, and its indexes are trusted as those of
// older segments are: start-up reads the tail after the last index entry,
// not the whole segment, and nothing needs an fsync afterwards. After a
// crash that left unflushed data it is scanned whole, as before.
func TestCleanReopenReadsOnlyTheTail(t *testing.T) {
	mem := NewMemFS()
	cfs := newFDCountingFS(mem)
	fsys := WithFileCache(cfs, NewFileCache(8))
	cfg := testConfig()
	cfg.SegmentBytes, cfg.IndexIntervalBytes = 1<<20, 4096
	l := openLog(t, fsys, testDir, cfg, nil)
	var batches [][]byte
	for i := range 200 {
		b, _ := appendSpec(t, l, batchSpec{records: 2, valSize: 500, ts: int64(i)})
		batches = append(batches, b)
	}
	if l.NumSegments() != 1 {
		t.Fatalf("%d segments, want everything in the active one", l.NumSegments())
	}
	size := l.Size()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}

	cfs.resetPeak()
	syncs := &syncCountingFS{FS: fsys, syncs: map[string]int{}}
	l = openLog(t, syncs, testDir, cfg, nil)
	if got := cfs.bytesRead(".log"); got > 3*4096 {
		t.Fatalf("a clean reopen read %d bytes of a %d-byte active segment", got, size)
	}
	if open, _ := cfs.stats(); open != 0 {
		t.Fatalf("%d segment files open after a clean reopen", open)
	}
	clear(syncs.syncs) // Open rewrote the checkpoints
	if err := l.Flush(); err != nil || len(syncs.syncs) != 0 {
		t.Fatalf("a flush right after a clean reopen: %v, fsyncs %v, want none", err, syncs.syncs)
	}
	checkReadEveryOffset(t, l, batches)
	b, _ := appendSpec(t, l, batchSpec{records: 1, valSize: 5000, ts: 999}) // past an index interval
	batches = append(batches, b)
	b, _ = appendSpec(t, l, batchSpec{records: 1, valSize: 10, ts: 1000})
	batches = append(batches, b)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if syncs.syncs[".index"] != 1 {
		t.Fatalf("appending past an interval after a clean reopen: fsyncs %v, want one of the offset index", syncs.syncs)
	}
	checkReadEveryOffset(t, l, batches)
	b, _ = appendSpec(t, l, batchSpec{records: 1, valSize: 10, ts: 1001}) // never flushed
	batches = append(batches, b)
	mem.CrashTorn(func(string, int) int { return math.MaxInt }) // but written

	cfs.resetPeak()
	l = openLog(t, fsys, testDir, cfg, nil)
	if got := cfs.bytesRead(".log"); got < size {
		t.Fatalf("after a crash with data past the recovery point, recovery read %d bytes of %d", got, size)
	}
	checkReadEveryOffset(t, l, batches)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestCachedFileNeverReopensAnUnlinkedName: a segment file closed by the
// cache and then deleted must not be reopened by name, which a new segment
// (truncation below the start) may have taken meanwhile.
func TestCachedFileNeverReopensAnUnlinkedName(t *testing.T) {
	mem := NewMemFS()
	if err := mem.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	cache := NewFileCache(4)
	name := "/d/00000000000000000000.log"
	cf := newCachedFile(cache, mem, name, os.O_RDWR|os.O_CREATE|os.O_TRUNC)
	if _, err := cf.Write([]byte("old")); err != nil {
		t.Fatal(err)
	}
	if err := cf.closeIdle(); err != nil || cf.isOpen() {
		t.Fatalf("closeIdle: %v, open %v", err, cf.isOpen())
	}
	cf.markUnlinked()
	if err := mem.Remove(name); err != nil {
		t.Fatal(err)
	}
	nf, err := mem.OpenFile(name, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	nf.Write([]byte("new"))
	nf.Close()
	if _, err := cf.ReadAt(make([]byte, 3), 0); !errors.Is(err, errUnlinked) {
		t.Fatalf("reading the closed, deleted file: %v, want errUnlinked", err)
	}
	if err := cf.Sync(); err != nil {
		t.Fatalf("fsync of a deleted file: %v, want nothing to do", err)
	}
	cf.close()
	if _, err := cf.ReadAt(make([]byte, 1), 0); !errors.Is(err, fs.ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if st := cache.Stats(); st.Open != 0 {
		t.Fatalf("%v", cache)
	}
}
