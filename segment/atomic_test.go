package segment

import (
	"errors"
	"io/fs"
	"path/filepath"
	"syscall"
	"testing"
)

func mustRead(t *testing.T, fsys FS, path string) string {
	t.Helper()
	b, err := ReadFile(fsys, path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// What a WriteFileAtomic acknowledged survives a crash; a write whose
// fsync (of the file or of its directory) failed leaves the old content
// after the crash and says the failure was an fsync's (poisonous: a Log
// must not retry over it).
func TestWriteFileAtomic(t *testing.T) {
	mem := NewMemFS()
	efs := NewErrorFS(mem)
	path := "/d/state"
	if err := mem.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(efs, path, []byte("one")); err != nil {
		t.Fatal(err)
	}
	mem.Crash()
	if got := mustRead(t, mem, path); got != "one" {
		t.Fatalf("after a crash: %q, want the acknowledged %q", got, "one")
	}
	for _, op := range []Op{OpSync, OpSyncDir, OpWrite, OpRename} {
		in := efs.Inject(Fault{Ops: op})
		err := WriteFileAtomic(efs, path, []byte("two"))
		in.Disarm()
		if !errors.Is(err, syscall.EIO) {
			t.Fatalf("%v failing: %v, want EIO", op, err)
		}
		var p poisonous
		if isSync := op == OpSync || op == OpSyncDir; errors.As(err, &p) != isSync {
			t.Fatalf("%v failing: poisonous=%v, want %v (%v)", op, !isSync, isSync, err)
		}
		mem.Crash()
		if got := mustRead(t, mem, path); got != "one" {
			t.Fatalf("%v failed, then a crash: %q, want the old %q", op, got, "one")
		}
	}
	// The directory's fsync is what makes the rename durable: without
	// it, a crash forgets the new name.
	if err := replaceFile(mem, path, []byte("three")); err != nil {
		t.Fatal(err)
	}
	mem.Crash()
	if got := mustRead(t, mem, path); got != "one" {
		t.Fatalf("replaced without the dir fsync, then a crash: %q, want %q", got, "one")
	}
}

// Setting a partition directory aside renames a directory; on MemFS the
// rename moves everything below it, at once and durably.
func TestMemFSRenameDirAndStat(t *testing.T) {
	mem := NewMemFS()
	if err := mem.MkdirAll("/d/t-0/sub", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := WriteFileAtomic(mem, "/d/t-0/a", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if err := mem.Rename("/d/t-0", "/d/t-0.x-stray"); err != nil {
		t.Fatal(err)
	}
	mem.Crash()
	if _, err := mem.Stat("/d/t-0"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("stat of the old name: %v, want ErrNotExist", err)
	}
	fi, err := mem.Stat("/d/t-0.x-stray")
	if err != nil || !fi.IsDir() {
		t.Fatalf("stat of the new name: %v %v, want a directory", fi, err)
	}
	if got := mustRead(t, mem, "/d/t-0.x-stray/a"); got != "a" {
		t.Fatalf("file below the renamed dir: %q", got)
	}
	if fi, err := mem.Stat("/d/t-0.x-stray/a"); err != nil || fi.IsDir() || fi.Size() != 1 {
		t.Fatalf("stat of a file: %v %v", fi, err)
	}
	if names, _ := mem.ReadDir("/d/t-0.x-stray"); len(names) != 2 {
		t.Fatalf("renamed dir lists %v, want a and sub", names)
	}
	if err := mem.Rename("/d/t-0.x-stray", filepath.Join("/d/t-0.x-stray", "in")); err == nil {
		t.Fatal("renamed a directory into itself")
	}
}

func TestErrorFSFailsReadDirStatAndLock(t *testing.T) {
	mem := NewMemFS()
	if err := mem.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	efs := NewErrorFS(mem)
	efs.Inject(Fault{Ops: OpReadDir | OpStat | OpLock, Path: PathUnder("/d"), Sticky: true})
	if _, err := efs.ReadDir("/d"); !errors.Is(err, ErrInjected) {
		t.Fatalf("ReadDir: %v", err)
	}
	if _, err := efs.Stat("/d"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Stat: %v", err)
	}
	if _, err := efs.Lock("/d/.lock"); !errors.Is(err, ErrInjected) {
		t.Fatalf("Lock: %v", err)
	}
	if l, err := mem.Lock("/d/.lock"); err != nil {
		t.Fatalf("the failed Lock took the lock: %v", err)
	} else {
		l.Close()
	}
}
