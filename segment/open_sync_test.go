package segment

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// syncCountFS counts file and directory fsyncs.
type syncCountFS struct {
	FS
	syncs atomic.Int64
}

func (c *syncCountFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := c.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return syncCountFile{f, c}, nil
}

func (c *syncCountFS) SyncDir(dir string) error { c.syncs.Add(1); return c.FS.SyncDir(dir) }

type syncCountFile struct {
	File
	fs *syncCountFS
}

func (f syncCountFile) Sync() error { f.fs.syncs.Add(1); return f.File.Sync() }

// A new log, and one closed cleanly and opened again, cost no fsync:
// its checkpoints would say what absent ones say, and its empty first
// segment is what the next Open creates anyway. A crash at any of these
// points loses nothing: the log opens again, empty, at offset 0.
func TestEmptyLogOpenAndCloseNeedNoFsync(t *testing.T) {
	mem := NewMemFS()
	fs := &syncCountFS{FS: mem}
	for round := range 3 {
		l := openLog(t, fs, testDir, testConfig(), nil)
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		if n := fs.syncs.Load(); n != 0 {
			t.Fatalf("round %d: %d fsyncs for an empty log, want 0", round, n)
		}
		mem.Crash()
	}
	l := openLog(t, mem, testDir, testConfig(), nil)
	defer l.Close()
	if l.StartOffset() != 0 || l.EndOffset() != 0 || l.NumSegments() != 1 {
		t.Fatalf("after crashes: start %d end %d segments %d, want an empty log at 0", l.StartOffset(), l.EndOffset(), l.NumSegments())
	}
}

// The first flush with data makes the new log's segment files and
// directory entries durable, although Open synced neither: MemFS loses
// entries no SyncDir covered, so without it the flushed records would be
// gone after the crash. (Flush syncs the directory for them, and so does
// the checkpoint write the first flush makes.)
func TestNewLogFirstFlushSyncsItsDirectory(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	want, _ := appendSpec(t, l, batchSpec{records: 3, valSize: 20})
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	fs.Crash()
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if l.EndOffset() != 3 {
		t.Fatalf("log end %d after a crash, want the 3 flushed records", l.EndOffset())
	}
	if got := readEverything(t, l); !bytes.Equal(got, want) {
		t.Fatal("flushed batch differs after the crash")
	}
}

// A log with data that was closed cleanly rewrites no checkpoint when it
// is opened and closed again: they already say its start and recovery
// point. A changed start offset is written (and survives a crash).
func TestCleanLogReopenWritesNoCheckpoint(t *testing.T) {
	mem := NewMemFS()
	fs := &syncCountFS{FS: mem}
	l := openLog(t, fs, testDir, testConfig(), nil)
	fill(t, l, 20, 0)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	before := fs.syncs.Load()
	l = openLog(t, fs, testDir, testConfig(), nil)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := fs.syncs.Load() - before; n != 0 {
		t.Fatalf("%d fsyncs to open and close a clean log, want 0", n)
	}
	l = openLog(t, fs, testDir, testConfig(), nil)
	leo := l.EndOffset()
	if err := l.SetStartOffset(leo - 1); err != nil {
		t.Fatal(err)
	}
	mem.Crash()
	l = openLog(t, mem, testDir, testConfig(), nil)
	defer l.Close()
	if l.StartOffset() != leo-1 || l.EndOffset() != leo {
		t.Fatalf("start %d end %d after a crash, want %d %d", l.StartOffset(), l.EndOffset(), leo-1, leo)
	}
}

// A new log creates only its first segment's .log; the index files come
// with the first index entry (or flush), and a log written, flushed and
// crashed from there opens with every flushed batch readable by offset.
//
// Opening it again while it is empty creates none either: a missing index
// reads as empty.
func TestNewLogCreatesIndexFilesOnFirstUse(t *testing.T) {
	fs := NewMemFS()
	l := openLog(t, fs, testDir, testConfig(), nil)
	for round := range 2 {
		for _, ext := range []string{".index", ".timeindex"} {
			if _, err := fs.Stat(segName(testDir, 0, ext)); err == nil {
				t.Fatalf("open %d of a new log created its %s file before any use", round, ext)
			}
		}
		if round == 0 {
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l = openLog(t, fs, testDir, testConfig(), nil)
		}
	}
	if _, err := fs.Stat(segName(testDir, 0, ".log")); err != nil {
		t.Fatalf("no .log file: %v", err)
	}
	flushed := fill(t, l, 30, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if l.NumSegments() < 2 {
		t.Fatalf("%d segments, want the fill to roll", l.NumSegments())
	}
	fs.Crash()
	l = openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	for _, ext := range []string{".index", ".timeindex"} {
		if _, err := fs.Stat(segName(testDir, 0, ext)); err != nil {
			t.Fatalf("first segment's %s after flush and crash: %v", ext, err)
		}
	}
	checkReadEveryOffset(t, l, flushed)
}

// dirSyncFS records the directories SyncDir was called on.
type dirSyncFS struct {
	FS
	mu   sync.Mutex
	dirs []string
}

func (d *dirSyncFS) SyncDir(dir string) error {
	d.mu.Lock()
	d.dirs = append(d.dirs, dir)
	d.mu.Unlock()
	return d.FS.SyncDir(dir)
}

func (d *dirSyncFS) count(dir string) int {
	d.mu.Lock()
	defer d.mu.Unlock()
	n := 0
	for _, x := range d.dirs {
		if x == dir {
			n++
		}
	}
	return n
}

// A new log's directory may be new too: the first flush with data syncs
// the parent (the log dir) as well, once, so the records it made durable
// are not lost with their directory's entry. Later flushes do not.
func TestNewLogFirstFlushSyncsTheParentDirectory(t *testing.T) {
	fs := &dirSyncFS{FS: NewMemFS()}
	parent := filepath.Dir(testDir)
	l := openLog(t, fs, testDir, testConfig(), nil)
	defer l.Close()
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := fs.count(parent); n != 0 {
		t.Fatalf("an empty log's flush synced the parent %d times, want 0", n)
	}
	for range 2 {
		appendSpec(t, l, batchSpec{records: 3, valSize: 20})
		if err := l.Flush(); err != nil {
			t.Fatal(err)
		}
	}
	if n := fs.count(parent); n != 1 {
		t.Fatalf("the parent %s was synced %d times by two flushes with data, want once", parent, n)
	}
}
