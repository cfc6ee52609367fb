package segment

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// Op is a kind of file system operation an ErrorFS can fail; Ops combine
// with |.
type Op uint16

// The operations an ErrorFS counts and can fail.
const (
	OpOpen     Op = 1 << iota // FS.OpenFile
	OpRead                    // File.Read and File.ReadAt
	OpWrite                   // File.Write
	OpSync                    // File.Sync (fsync of a file)
	OpTruncate                // File.Truncate
	OpRename                  // FS.Rename (either name may match)
	OpRemove                  // FS.Remove
	OpSyncDir                 // FS.SyncDir (fsync of a directory)
	OpReadDir                 // FS.ReadDir (listing a directory)
	OpStat                    // FS.Stat
	OpLock                    // FS.Lock (taking a log dir's lock)
)

var opNames = []string{"open", "read", "write", "sync", "truncate", "rename", "remove", "syncdir", "readdir", "stat", "lock"}

func (o Op) String() string {
	var names []string
	for i, n := range opNames {
		if o&(1<<i) != 0 {
			names = append(names, n)
		}
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, "|")
}

// ErrInjected is wrapped by every error an ErrorFS injects.
var ErrInjected = errors.New("injected fault")

// InjectedError is what an ErrorFS returns for a failed operation. It wraps
// ErrInjected and its errno, so errors.Is(err, syscall.EIO) and
// errors.As(err, &errno) see it as the kernel's error would be seen.
type InjectedError struct {
	Op    Op
	Path  string
	Errno syscall.Errno
}

func (e *InjectedError) Error() string {
	return fmt.Sprintf("%s %s: %v (injected)", e.Op, e.Path, e.Errno)
}

func (e *InjectedError) Unwrap() []error { return []error{e.Errno, ErrInjected} }

// Fault says which operations of an ErrorFS fail. Among the operations
// whose kind is in Ops and whose path matches Path, the Nth fails, and
// with Sticky every one after it too.
type Fault struct {
	Ops  Op
	Path func(path string) bool // nil matches every path
	Nth  int                    // 1-based; 0 or 1 is the next matching operation
	// Sticky keeps failing every matching operation once the Nth did, as
	// a dead disk does; otherwise the Nth alone fails.
	Sticky bool
	Errno  syscall.Errno // EIO when zero
	// Written is how many bytes of a failing Write reach the file before
	// the error (at most the whole buffer): a write cut short.
	Written int
}

// PathSuffix matches paths ending in suffix (".log", "recovery-point").
func PathSuffix(suffix string) func(string) bool {
	return func(p string) bool { return strings.HasSuffix(p, suffix) }
}

// PathUnder matches dir and every path below it.
func PathUnder(dir string) func(string) bool {
	dir = filepath.Clean(dir)
	return func(p string) bool {
		p = filepath.Clean(p)
		return p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))
	}
}

// Injection is a fault armed on an ErrorFS.
type Injection struct {
	fs     *ErrorFS
	f      Fault
	seen   int // matching operations so far
	failed int // errors injected so far
	off    bool
}

// Failed is how many operations this injection has failed.
func (in *Injection) Failed() int {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	return in.failed
}

// Seen is how many matching operations this injection has counted,
// including the ones it failed.
func (in *Injection) Seen() int {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	return in.seen
}

// Disarm stops the injection: later operations are neither counted nor
// failed by it.
func (in *Injection) Disarm() {
	in.fs.mu.Lock()
	defer in.fs.mu.Unlock()
	in.off = true
}

// ErrorFS wraps an FS and fails the operations its armed faults select, in
// the style of pebble's errorfs: deterministic for a given sequence of
// operations, and safe for concurrent use. Operations it does not fail go
// to the wrapped FS unchanged; Crash and the like stay with that FS.
// MkdirAll and RemoveAll are never failed.
type ErrorFS struct {
	FS
	mu  sync.Mutex
	arm []*Injection
}

// NewErrorFS wraps fsys, failing nothing until Inject is called.
func NewErrorFS(fsys FS) *ErrorFS { return &ErrorFS{FS: fsys} }

// Inject arms f and returns its handle.
func (e *ErrorFS) Inject(f Fault) *Injection {
	if f.Errno == 0 {
		f.Errno = syscall.EIO
	}
	f.Nth = max(f.Nth, 1)
	in := &Injection{fs: e, f: f}
	e.mu.Lock()
	e.arm = append(e.arm, in)
	e.mu.Unlock()
	return in
}

// Heal disarms every fault.
func (e *ErrorFS) Heal() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.arm {
		in.off = true
	}
	e.arm = nil
}

// check counts the operation against every armed fault and returns the
// error of the first that fails it, and how many bytes a failing write
// lets through. Every matching fault counts the operation, failed or not,
// so faults armed together count independently.
func (e *ErrorFS) check(op Op, paths ...string) (written int, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, in := range e.arm {
		if in.off || in.f.Ops&op == 0 || !matchAny(in.f.Path, paths) {
			continue
		}
		in.seen++
		if in.seen == in.f.Nth || (in.f.Sticky && in.seen > in.f.Nth) {
			in.failed++
			if err == nil {
				written, err = in.f.Written, &InjectedError{Op: op, Path: paths[0], Errno: in.f.Errno}
			}
		}
	}
	return written, err
}

func matchAny(match func(string) bool, paths []string) bool {
	if match == nil {
		return true
	}
	for _, p := range paths {
		if match(p) {
			return true
		}
	}
	return false
}

// OpenFile fails as OpOpen, and wraps the file so that its reads, writes,
// syncs and truncations can fail too. A file with a descriptor keeps it
// visible (Fd), as the network layer's sendfile needs.
func (e *ErrorFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if _, err := e.check(OpOpen, name); err != nil {
		return nil, err
	}
	f, err := e.FS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	ef := errFile{File: f, fs: e, name: name}
	if fd, ok := f.(interface{ Fd() uintptr }); ok {
		return errFdFile{ef, fd}, nil
	}
	return ef, nil
}

// Remove fails as OpRemove.
func (e *ErrorFS) Remove(name string) error {
	if _, err := e.check(OpRemove, name); err != nil {
		return err
	}
	return e.FS.Remove(name)
}

// Rename fails as OpRename when either name matches.
func (e *ErrorFS) Rename(oldname, newname string) error {
	if _, err := e.check(OpRename, oldname, newname); err != nil {
		return err
	}
	return e.FS.Rename(oldname, newname)
}

// SyncDir fails as OpSyncDir.
func (e *ErrorFS) SyncDir(dir string) error {
	if _, err := e.check(OpSyncDir, dir); err != nil {
		return err
	}
	return e.FS.SyncDir(dir)
}

// ReadDir fails as OpReadDir: a directory that cannot be listed.
func (e *ErrorFS) ReadDir(dir string) ([]string, error) {
	if _, err := e.check(OpReadDir, dir); err != nil {
		return nil, err
	}
	return e.FS.ReadDir(dir)
}

// Stat fails as OpStat.
func (e *ErrorFS) Stat(name string) (fs.FileInfo, error) {
	if _, err := e.check(OpStat, name); err != nil {
		return nil, err
	}
	return e.FS.Stat(name)
}

// Lock fails as OpLock, as a lock file that cannot be opened or flocked.
func (e *ErrorFS) Lock(path string) (io.Closer, error) {
	if _, err := e.check(OpLock, path); err != nil {
		return nil, err
	}
	return e.FS.Lock(path)
}

type errFile struct {
	File
	fs   *ErrorFS
	name string
}

func (f errFile) Read(p []byte) (int, error) {
	if _, err := f.fs.check(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f errFile) ReadAt(p []byte, off int64) (int, error) {
	if _, err := f.fs.check(OpRead, f.name); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f errFile) Write(p []byte) (int, error) {
	written, err := f.fs.check(OpWrite, f.name)
	if err == nil {
		return f.File.Write(p)
	}
	if written = min(written, len(p)); written > 0 {
		n, werr := f.File.Write(p[:written])
		if werr != nil {
			return n, werr
		}
		return n, err
	}
	return 0, err
}

func (f errFile) Sync() error {
	if _, err := f.fs.check(OpSync, f.name); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f errFile) Truncate(size int64) error {
	if _, err := f.fs.check(OpTruncate, f.name); err != nil {
		return err
	}
	return f.File.Truncate(size)
}

type errFdFile struct {
	errFile
	fd interface{ Fd() uintptr }
}

func (f errFdFile) Fd() uintptr { return f.fd.Fd() }
