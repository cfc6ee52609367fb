package segment

import (
	"errors"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"testing"
)

func TestErrorFSFailsTheNthMatchingOperation(t *testing.T) {
	mem := NewMemFS()
	efs := NewErrorFS(mem)
	if err := efs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	in := efs.Inject(Fault{Ops: OpSync, Path: PathSuffix(".log"), Nth: 2, Errno: syscall.EIO})
	log, err := efs.OpenFile("/d/a.log", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := efs.OpenFile("/d/a.index", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if err := idx.Sync(); err != nil { // another path: not counted
		t.Fatal(err)
	}
	if err := log.Sync(); err != nil {
		t.Fatalf("first sync of .log: %v", err)
	}
	err = log.Sync()
	var errno syscall.Errno
	var inj *InjectedError
	if !errors.Is(err, ErrInjected) || !errors.Is(err, syscall.EIO) || !errors.As(err, &errno) || errno != syscall.EIO ||
		!errors.As(err, &inj) || inj.Op != OpSync || inj.Path != "/d/a.log" {
		t.Fatalf("second sync of .log: %v, want an injected EIO naming the op and path", err)
	}
	if err := log.Sync(); err != nil {
		t.Fatalf("a fault that is not sticky failed twice: %v", err)
	}
	if in.Seen() != 3 || in.Failed() != 1 {
		t.Fatalf("seen %d failed %d, want 3 and 1", in.Seen(), in.Failed())
	}
}

func TestErrorFSStickyShortWriteAndDisarm(t *testing.T) {
	mem := NewMemFS()
	efs := NewErrorFS(mem)
	if err := efs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := efs.OpenFile("/d/f", os.O_CREATE|os.O_RDWR|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	in := efs.Inject(Fault{Ops: OpWrite | OpRename, Sticky: true, Errno: syscall.ENOSPC, Written: 3})
	n, err := f.Write([]byte("hello"))
	if n != 3 || !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("short write: n=%d err=%v, want 3 bytes and ENOSPC", n, err)
	}
	if err := efs.Rename("/d/f", "/d/g"); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("a sticky fault let a later operation through: %v", err)
	}
	if d, _ := mem.fileData("/d/f"); string(d) != "hel" {
		t.Fatalf("file holds %q, want the 3 bytes written", d)
	}
	in.Disarm()
	if _, err := f.Write([]byte("lo")); err != nil {
		t.Fatal(err)
	}
	if err := efs.Rename("/d/f", "/d/g"); err != nil {
		t.Fatal(err)
	}
	if _, err := efs.OpenFile("/d/f", os.O_RDONLY, 0); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("rename did not go through to the wrapped FS: %v", err)
	}
	efs.Inject(Fault{Ops: OpOpen | OpRemove | OpSyncDir | OpTruncate | OpRead, Path: PathUnder("/d"), Sticky: true})
	g, err := mem.OpenFile("/d/g", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	g = errFile{File: g, fs: efs, name: "/d/g"}
	for what, err := range map[string]error{
		"open":     func() error { _, err := efs.OpenFile("/d/g", os.O_RDONLY, 0); return err }(),
		"remove":   efs.Remove("/d/g"),
		"syncdir":  efs.SyncDir("/d"),
		"truncate": g.Truncate(0),
		"read":     func() error { _, err := g.ReadAt(make([]byte, 1), 0); return err }(),
	} {
		if !errors.Is(err, syscall.EIO) {
			t.Errorf("%s: %v, want the default EIO", what, err)
		}
	}
	efs.Heal()
	if err := efs.SyncDir("/d"); err != nil {
		t.Fatalf("after Heal: %v", err)
	}
}

// Concurrent operations are each counted once: exactly one of them gets the
// Nth failure.
func TestErrorFSConcurrentCounting(t *testing.T) {
	efs := NewErrorFS(NewMemFS())
	if err := efs.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	in := efs.Inject(Fault{Ops: OpSyncDir, Nth: 50})
	var wg sync.WaitGroup
	var mu sync.Mutex
	failed := 0
	for range 8 {
		wg.Go(func() {
			for range 25 {
				if err := efs.SyncDir("/d"); err != nil {
					mu.Lock()
					failed++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if failed != 1 || in.Seen() != 200 || in.Failed() != 1 {
		t.Fatalf("failed %d, seen %d, want 1 of 200", failed, in.Seen())
	}
}
