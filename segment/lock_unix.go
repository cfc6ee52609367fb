//go:build unix

package segment

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Lock takes an exclusive flock(2) on path, creating the file if needed,
// and writes this process's id into it so that whoever is refused next can
// say who holds it. flock locks belong to the open file, so a second Lock in
// the same process is refused too, and the kernel drops the lock when the
// process dies, however it dies. The file is never removed: unlinking a lock
// file lets a waiter lock the old inode while a newcomer locks a new one.
func (osFS) Lock(path string) (io.Closer, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, &LockedError{Path: path, PID: lockHolder(f)}
		}
		return nil, &fs.PathError{Op: "flock", Path: path, Err: err}
	}
	// Best effort: the lock is what matters, the pid is only a hint.
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// lockHolder returns the pid written into the lock file by its holder or,
// for a holder that wrote none, the pid /proc/locks gives for its inode.
func lockHolder(f *os.File) int {
	b := make([]byte, 32)
	n, _ := f.ReadAt(b, 0)
	if pid, err := strconv.Atoi(string(bytes.TrimSpace(b[:n]))); err == nil && pid > 0 {
		return pid
	}
	st, err := f.Stat()
	if err != nil {
		return 0
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !ok {
		return 0
	}
	pl, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer pl.Close()
	return procLocksHolder(pl, uint64(sys.Ino))
}

// procLocksHolder finds the FLOCK holder of inode ino in /proc/locks, whose
// lines read "1: FLOCK  ADVISORY  WRITE 4242 08:01:1234 0 EOF".
func procLocksHolder(r io.Reader, ino uint64) int {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 6 || f[1] != "FLOCK" {
			continue
		}
		dev := strings.Split(f[5], ":")
		if len(dev) != 3 || dev[2] != strconv.FormatUint(ino, 10) {
			continue
		}
		if pid, err := strconv.Atoi(f[4]); err == nil {
			return pid
		}
	}
	return 0
}
