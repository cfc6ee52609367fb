package segment

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A second Lock of a held path is refused, naming the holder, until the
// first is released; this is what keeps two brokers off one log dir.
func TestLockIsExclusive(t *testing.T) {
	for name, fsys := range map[string]FS{"os": OSFS(), "mem": NewMemFS()} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			if err := fsys.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ".lock")
			l, err := fsys.Lock(path)
			if err != nil {
				t.Fatal(err)
			}
			_, err = fsys.Lock(path)
			var le *LockedError
			if !errors.Is(err, ErrLocked) || !errors.As(err, &le) || le.Path != path {
				t.Fatalf("second lock: %v", err)
			}
			if name == "os" && le.PID != os.Getpid() {
				t.Fatalf("holder pid %d, want %d (%v)", le.PID, os.Getpid(), err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			l2, err := fsys.Lock(path)
			if err != nil {
				t.Fatalf("lock after release: %v", err)
			}
			l2.Close()
		})
	}
}

// A holder that wrote no pid into the file (another program, an older
// version) is still named, from /proc/locks.
func TestLockHolderFromProcLocks(t *testing.T) {
	if _, err := os.Stat("/proc/locks"); err != nil {
		t.Skip("no /proc/locks here")
	}
	path := filepath.Join(t.TempDir(), ".lock")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		t.Fatal(err)
	}
	_, err = OSFS().Lock(path)
	var le *LockedError
	if !errors.As(err, &le) || le.PID != os.Getpid() {
		t.Fatalf("got %v, want the holder's pid %d", err, os.Getpid())
	}
}

func TestProcLocksHolder(t *testing.T) {
	locks := "1: POSIX  ADVISORY  WRITE 99 08:01:77 0 EOF\n" +
		"2: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF\n"
	if pid := procLocksHolder(strings.NewReader(locks), 1234); pid != 4242 {
		t.Fatalf("pid %d", pid)
	}
	if pid := procLocksHolder(strings.NewReader(locks), 77); pid != 0 {
		t.Fatalf("a POSIX lock was taken for a flock: pid %d", pid)
	}
}

// A crash ends every holder, as a process death releases its flocks.
func TestMemFSCrashReleasesLocks(t *testing.T) {
	m := NewMemFS()
	if err := m.MkdirAll("/d", 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Lock("/d/.lock"); err != nil {
		t.Fatal(err)
	}
	m.Crash()
	if _, err := m.Lock("/d/.lock"); err != nil {
		t.Fatalf("lock after crash: %v", err)
	}
}
