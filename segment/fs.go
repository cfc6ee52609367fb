package segment

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// FS is the file system the log writes through. Tests substitute MemFS to
// simulate crashes.
type FS interface {
	OpenFile(name string, flag int, perm os.FileMode) (File, error)
	Remove(name string) error
	Rename(oldname, newname string) error
	ReadDir(dir string) ([]string, error) // file names, sorted
	MkdirAll(dir string, perm os.FileMode) error
	RemoveAll(dir string) error
	SyncDir(dir string) error
	// Stat describes the file or directory name; a missing one is an
	// error matching fs.ErrNotExist.
	Stat(name string) (fs.FileInfo, error)
	// Lock takes an exclusive lock on the file at path (creating it), held
	// until the returned Closer is closed; when someone else holds it, the
	// error is a *LockedError (errors.Is ErrLocked).
	Lock(path string) (io.Closer, error)
}

// File is an open file of an FS.
type File interface {
	io.Reader
	io.ReaderAt
	io.Writer
	io.Closer
	Sync() error
	Truncate(size int64) error
	Size() (int64, error)
}

// OSFS returns the real file system. Its files are *os.File underneath and
// also implement Fd() uintptr so the network layer can sendfile from them.
func OSFS() FS { return osFS{} }

type osFS struct{}

// osFile adds Size to *os.File; Fd and the rest are promoted.
type osFile struct{ *os.File }

func (f osFile) Size() (int64, error) {
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

func (osFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	f, err := os.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return osFile{f}, nil
}

func (osFS) Remove(name string) error                    { return os.Remove(name) }
func (osFS) Rename(oldname, newname string) error        { return os.Rename(oldname, newname) }
func (osFS) MkdirAll(dir string, perm os.FileMode) error { return os.MkdirAll(dir, perm) }
func (osFS) RemoveAll(dir string) error                  { return os.RemoveAll(dir) }
func (osFS) Stat(name string) (fs.FileInfo, error)       { return os.Stat(name) }

func (osFS) ReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	names := make([]string, len(ents))
	for i, e := range ents {
		names[i] = e.Name()
	}
	return names, nil // os.ReadDir already sorts by name
}

// SyncDir fsyncs the directory so that creations, renames and removals of
// its entries survive a power loss.
func (osFS) SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// MemFS is an in-memory FS that models what survives a crash: file
// contents as of their last Sync and directory entries as of the last
// SyncDir of their directory. Directories themselves (MkdirAll, the
// Rename of a directory) and RemoveAll are treated as immediately durable
// to keep the model small.
// It is safe for concurrent use.
type MemFS struct {
	mu      sync.Mutex
	dirs    map[string]bool
	files   map[string]*memInode // current namespace
	durable map[string]*memInode // namespace as of the last SyncDir per directory
	locks   map[string]bool      // paths held by Lock
}

type memInode struct {
	mu     sync.RWMutex
	data   []byte
	synced []byte // content as of the last Sync
}

// NewMemFS returns an empty in-memory file system.
func NewMemFS() *MemFS {
	return &MemFS{dirs: map[string]bool{}, files: map[string]*memInode{}, durable: map[string]*memInode{}, locks: map[string]bool{}}
}

func memErr(op, name string, err error) error { return &fs.PathError{Op: op, Path: name, Err: err} }

// OpenFile supports O_CREATE, O_EXCL, O_TRUNC, O_APPEND and the access modes.
func (m *MemFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[filepath.Dir(name)] {
		return nil, memErr("open", name, fs.ErrNotExist)
	}
	if m.dirs[name] {
		return nil, memErr("open", name, fs.ErrInvalid)
	}
	ino, ok := m.files[name]
	switch {
	case ok && flag&os.O_CREATE != 0 && flag&os.O_EXCL != 0:
		return nil, memErr("open", name, fs.ErrExist)
	case !ok && flag&os.O_CREATE == 0:
		return nil, memErr("open", name, fs.ErrNotExist)
	case !ok:
		ino = &memInode{}
		m.files[name] = ino
	}
	f := &memFile{ino: ino, name: name, flag: flag}
	if flag&os.O_TRUNC != 0 && f.writable() {
		ino.mu.Lock()
		ino.data = nil
		ino.mu.Unlock()
	}
	return f, nil
}

// Remove unlinks a file; open handles keep reading its data, as on POSIX.
func (m *MemFS) Remove(name string) error {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.files[name]; !ok {
		return memErr("remove", name, fs.ErrNotExist)
	}
	delete(m.files, name)
	return nil
}

// Rename atomically replaces newname (in the current namespace only; it
// becomes durable with SyncDir). A directory is renamed with everything
// below it, durably at once (see MemFS), onto a name not in use.
func (m *MemFS) Rename(oldname, newname string) error {
	oldname, newname = filepath.Clean(oldname), filepath.Clean(newname)
	m.mu.Lock()
	defer m.mu.Unlock()
	ino, ok := m.files[oldname]
	if !ok && !m.dirs[oldname] {
		return memErr("rename", oldname, fs.ErrNotExist)
	}
	if !m.dirs[filepath.Dir(newname)] {
		return memErr("rename", newname, fs.ErrNotExist)
	}
	if !ok {
		return m.renameDir(oldname, newname)
	}
	if m.dirs[newname] {
		return memErr("rename", newname, fs.ErrExist)
	}
	delete(m.files, oldname)
	m.files[newname] = ino
	return nil
}

// renameDir moves dir oldname and all below it to newname; m.mu held.
func (m *MemFS) renameDir(oldname, newname string) error {
	if _, isFile := m.files[newname]; isFile || m.dirs[newname] {
		return memErr("rename", newname, fs.ErrExist)
	}
	if newname == oldname || strings.HasPrefix(newname, oldname+string(filepath.Separator)) {
		return memErr("rename", newname, fs.ErrInvalid)
	}
	move := func(p string) (string, bool) {
		if p == oldname {
			return newname, true
		}
		if rest, ok := strings.CutPrefix(p, oldname+string(filepath.Separator)); ok {
			return filepath.Join(newname, rest), true
		}
		return "", false
	}
	for _, ns := range []map[string]*memInode{m.files, m.durable} {
		for p, ino := range ns {
			if to, ok := move(p); ok {
				delete(ns, p)
				ns[to] = ino
			}
		}
	}
	for p := range m.dirs {
		if to, ok := move(p); ok {
			delete(m.dirs, p)
			m.dirs[to] = true
		}
	}
	return nil
}

// Stat describes a file (its current size) or a directory.
func (m *MemFS) Stat(name string) (fs.FileInfo, error) {
	name = filepath.Clean(name)
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.dirs[name] {
		return memInfo{name: filepath.Base(name), mode: fs.ModeDir | 0o755}, nil
	}
	ino, ok := m.files[name]
	if !ok {
		return nil, memErr("stat", name, fs.ErrNotExist)
	}
	ino.mu.RLock()
	defer ino.mu.RUnlock()
	return memInfo{name: filepath.Base(name), size: int64(len(ino.data)), mode: 0o644}, nil
}

// memInfo is the fs.FileInfo of a MemFS entry; it keeps no times.
type memInfo struct {
	name string
	size int64
	mode fs.FileMode
}

func (i memInfo) Name() string       { return i.name }
func (i memInfo) Size() int64        { return i.size }
func (i memInfo) Mode() fs.FileMode  { return i.mode }
func (i memInfo) ModTime() time.Time { return time.Time{} }
func (i memInfo) IsDir() bool        { return i.mode.IsDir() }
func (i memInfo) Sys() any           { return nil }

// ReadDir lists the names of files and directories directly inside dir.
func (m *MemFS) ReadDir(dir string) ([]string, error) {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return nil, memErr("readdir", dir, fs.ErrNotExist)
	}
	var names []string
	for p := range m.files {
		if filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	for p := range m.dirs {
		if p != dir && filepath.Dir(p) == dir {
			names = append(names, filepath.Base(p))
		}
	}
	sort.Strings(names)
	return names, nil
}

// MkdirAll creates dir and its parents.
func (m *MemFS) MkdirAll(dir string, perm os.FileMode) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	for d := dir; ; d = filepath.Dir(d) {
		if _, isFile := m.files[d]; isFile {
			return memErr("mkdir", d, fs.ErrExist)
		}
		m.dirs[d] = true
		if p := filepath.Dir(d); p == d {
			break
		}
	}
	return nil
}

// RemoveAll removes dir and everything below it, durably.
func (m *MemFS) RemoveAll(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	prefix := dir + string(filepath.Separator)
	for _, ns := range []map[string]*memInode{m.files, m.durable} {
		for p := range ns {
			if p == dir || strings.HasPrefix(p, prefix) {
				delete(ns, p)
			}
		}
	}
	for p := range m.dirs {
		if p == dir || strings.HasPrefix(p, prefix) {
			delete(m.dirs, p)
		}
	}
	return nil
}

// SyncDir makes the current entries of dir durable.
func (m *MemFS) SyncDir(dir string) error {
	dir = filepath.Clean(dir)
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.dirs[dir] {
		return memErr("syncdir", dir, fs.ErrNotExist)
	}
	for p := range m.durable {
		if filepath.Dir(p) == dir {
			delete(m.durable, p)
		}
	}
	for p, ino := range m.files {
		if filepath.Dir(p) == dir {
			m.durable[p] = ino
		}
	}
	return nil
}

// Crash simulates a power loss: every file reverts to its content as of its
// last Sync and every directory to its entries as of its last SyncDir.
// Handles opened before the crash are detached from the new state.
func (m *MemFS) Crash() { m.CrashTorn(nil) }

// CrashTorn is Crash, except that keep may retain a prefix of each file's
// unsynced bytes, to model a torn write. keep receives the file name and
// the number of bytes written past the longest prefix shared with the
// synced content, and returns how many of them survive.
func (m *MemFS) CrashTorn(keep func(name string, unsynced int) int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	files := make(map[string]*memInode, len(m.durable))
	for name, ino := range m.durable {
		ino.mu.RLock()
		content := ino.synced
		if keep != nil {
			p := commonPrefix(ino.synced, ino.data)
			if k := keep(name, len(ino.data)-p); k > 0 {
				content = ino.data[:p+min(k, len(ino.data)-p)]
			}
		}
		ino.mu.RUnlock()
		c := bytes.Clone(content)
		files[name] = &memInode{data: c, synced: bytes.Clone(c)}
	}
	m.files = files
	m.locks = map[string]bool{} // a crash ends every holder
	m.durable = make(map[string]*memInode, len(files))
	for k, v := range files {
		m.durable[k] = v
	}
}

func commonPrefix(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return i
		}
	}
	return n
}

// fileData returns a copy of a file's current content (test helper).
func (m *MemFS) fileData(name string) ([]byte, bool) {
	m.mu.Lock()
	ino, ok := m.files[filepath.Clean(name)]
	m.mu.Unlock()
	if !ok {
		return nil, false
	}
	ino.mu.RLock()
	defer ino.mu.RUnlock()
	return bytes.Clone(ino.data), true
}

// setFileData replaces a file's content, durably (test helper for
// simulating media corruption).
func (m *MemFS) setFileData(name string, data []byte) {
	m.mu.Lock()
	ino, ok := m.files[filepath.Clean(name)]
	m.mu.Unlock()
	if !ok {
		return
	}
	ino.mu.Lock()
	ino.data = bytes.Clone(data)
	ino.synced = bytes.Clone(data)
	ino.mu.Unlock()
}

type memFile struct {
	ino    *memInode
	name   string
	flag   int
	mu     sync.Mutex // guards pos and closed
	pos    int64
	closed bool
}

func (f *memFile) writable() bool { return f.flag&(os.O_WRONLY|os.O_RDWR) != 0 }

func (f *memFile) check(op string) error {
	if f.closed {
		return memErr(op, f.name, fs.ErrClosed)
	}
	return nil
}

func (f *memFile) Read(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("read"); err != nil {
		return 0, err
	}
	n, err := f.readAt(p, f.pos)
	f.pos += int64(n)
	if err == io.EOF && n > 0 {
		err = nil
	}
	return n, err
}

func (f *memFile) ReadAt(p []byte, off int64) (int, error) {
	f.mu.Lock()
	closed := f.closed
	f.mu.Unlock()
	if closed {
		return 0, memErr("read", f.name, fs.ErrClosed)
	}
	if off < 0 {
		return 0, memErr("read", f.name, fs.ErrInvalid)
	}
	return f.readAt(p, off)
}

func (f *memFile) readAt(p []byte, off int64) (int, error) {
	f.ino.mu.RLock()
	defer f.ino.mu.RUnlock()
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(p, f.ino.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("write"); err != nil {
		return 0, err
	}
	if !f.writable() {
		return 0, memErr("write", f.name, fs.ErrPermission)
	}
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if f.flag&os.O_APPEND != 0 {
		f.pos = int64(len(f.ino.data))
	}
	end := f.pos + int64(len(p))
	if end > int64(len(f.ino.data)) {
		if end > int64(cap(f.ino.data)) {
			// Grow geometrically; a fresh array also keeps slices handed
			// out earlier (synced snapshots) unaffected.
			nd := make([]byte, len(f.ino.data), max(end, 2*int64(cap(f.ino.data))))
			copy(nd, f.ino.data)
			f.ino.data = nd
		}
		f.ino.data = f.ino.data[:end]
	}
	copy(f.ino.data[f.pos:], p)
	f.pos = end
	return len(p), nil
}

func (f *memFile) Close() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("close"); err != nil {
		return err
	}
	f.closed = true
	return nil
}

func (f *memFile) Sync() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("sync"); err != nil {
		return err
	}
	f.ino.mu.Lock()
	f.ino.synced = bytes.Clone(f.ino.data)
	f.ino.mu.Unlock()
	return nil
}

func (f *memFile) Truncate(size int64) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("truncate"); err != nil {
		return err
	}
	if !f.writable() || size < 0 {
		return memErr("truncate", f.name, fs.ErrInvalid)
	}
	f.ino.mu.Lock()
	defer f.ino.mu.Unlock()
	if size <= int64(len(f.ino.data)) {
		// Copy so that a later write cannot scribble over bytes that a
		// synced snapshot still shares.
		f.ino.data = bytes.Clone(f.ino.data[:size])
	} else {
		f.ino.data = append(f.ino.data, make([]byte, size-int64(len(f.ino.data)))...)
	}
	return nil
}

func (f *memFile) Size() (int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.check("stat"); err != nil {
		return 0, err
	}
	f.ino.mu.RLock()
	defer f.ino.mu.RUnlock()
	return int64(len(f.ino.data)), nil
}
