package tail

import (
	"io"
	"os"
	"path/filepath"
	"sort"
	"sync"
)

// memFS is an in-memory file system with inodes: a rename keeps the
// inode, a removed file stays readable through open handles, and
// truncation happens in place, as on Linux.
type memFS struct {
	mu      sync.Mutex
	paths   map[string]*memNode
	nextIno uint64
}

type memNode struct {
	ino  uint64
	data []byte
}

func newMemFS() *memFS { return &memFS{paths: map[string]*memNode{}, nextIno: 100} }

func (m *memFS) Glob(pattern string) ([]string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []string
	for p := range m.paths {
		ok, err := filepath.Match(pattern, p)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

func (m *memFS) Open(path string) (File, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.paths[path]
	if n == nil {
		return nil, os.ErrNotExist
	}
	return &memHandle{fs: m, n: n}, nil
}

// append writes to the file at path, creating it.
func (m *memFS) append(path, s string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	n := m.paths[path]
	if n == nil {
		m.nextIno++
		n = &memNode{ino: m.nextIno}
		m.paths[path] = n
	}
	n.data = append(n.data, s...)
}

func (m *memFS) rename(from, to string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paths[to] = m.paths[from]
	delete(m.paths, from)
}

func (m *memFS) remove(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.paths, path)
}

// copyFile copies from to a new file to (logrotate's copytruncate copy).
func (m *memFS) copyFile(from, to string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.nextIno++
	m.paths[to] = &memNode{ino: m.nextIno, data: append([]byte(nil), m.paths[from].data...)}
}

func (m *memFS) truncate(path string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.paths[path].data = m.paths[path].data[:0:0]
}

type memHandle struct {
	fs *memFS
	n  *memNode
}

func (h *memHandle) ReadAt(p []byte, off int64) (int, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	if off >= int64(len(h.n.data)) {
		return 0, io.EOF
	}
	n := copy(p, h.n.data[off:])
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}

func (h *memHandle) Stat() (FileInfo, error) {
	h.fs.mu.Lock()
	defer h.fs.mu.Unlock()
	return FileInfo{Size: int64(len(h.n.data)), Dev: 1, Ino: h.n.ino}, nil
}

func (h *memHandle) Close() error { return nil }
