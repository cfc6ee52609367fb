package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path/filepath"
)

// ErrLocked is what FS.Lock returns (inside a *LockedError) when another
// holder has the lock.
var ErrLocked = errors.New("held by another process")

// LockedError names a lock file someone else holds and, when it can be
// found, the process id of the holder.
type LockedError struct {
	Path string
	PID  int // 0 when unknown
}

func (e *LockedError) Error() string {
	if e.PID > 0 {
		return fmt.Sprintf("%s: %v (pid %d)", e.Path, ErrLocked, e.PID)
	}
	return fmt.Sprintf("%s: %v", e.Path, ErrLocked)
}

// Unwrap lets errors.Is(err, ErrLocked) match.
func (e *LockedError) Unwrap() error { return ErrLocked }

// Lock on MemFS models an exclusive advisory lock: a second Lock of the same
// path fails until the first is closed. Like flock, it survives nothing: a
// Crash forgets every lock.
func (m *MemFS) Lock(path string) (io.Closer, error) {
	path = filepath.Clean(path)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[filepath.Dir(path)] {
		return nil, memErr("lock", path, fs.ErrNotExist)
	}
	if m.locks[path] {
		return nil, &LockedError{Path: path}
	}
	if _, ok := m.files[path]; !ok {
		m.files[path] = &memInode{}
	}
	m.locks[path] = true
	return memLock{m: m, path: path}, nil
}

type memLock struct {
	m    *MemFS
	path string
}

func (l memLock) Close() error {
	l.m.mu.Lock()
	defer l.m.mu.Unlock()
	delete(l.m.locks, l.path)
	return nil
}
