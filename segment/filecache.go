package segment

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"sync/atomic"
)

// FileCache bounds how many segment files (.log, .index, .timeindex) the
// process keeps open. Every partition used to hold its segments' three
// descriptors for its whole life, so the number of partitions a broker could
// even start with was RLIMIT_NOFILE/3 (issue 13). Files are now opened on
// first use and, once the cap is reached, the least recently used idle ones
// are closed and reopened by name when needed again: a table cache, as
// pebble and RocksDB keep for their sstables.
//
// Eviction is CLOCK (second chance), an approximation of LRU that needs no
// shared lock on the hot path: using an open file only sets its referenced
// bit, under the file's own mutex; the cache lock is taken to open or close
// one.
//
// A file in use is pinned and never closed under its user: an operation
// pins for its duration, a ReadResult until Release (the network layer may
// sendfile from the descriptor long after Read returned). The cap is
// therefore soft: when every open file is pinned, opening one more goes
// above it (counted in Stats), and the next unpin brings the cache back
// under. Blocking instead could deadlock a reader that pins two files. So
// that responses in flight cannot keep the cache above the cap for as long
// as a slow client takes, a Read that finds it there copies its bytes and
// lets the files go before it returns (ReadResult.detach).
//
// Lock order: FileCache.mu, then cachedFile.mu. cachedFile.openMu is taken
// before either, and only by whoever opens or unlinks that file.
type FileCache struct {
	limit int64

	mu    sync.Mutex
	slots int64       // mu: files open or being opened
	hand  *cachedFile // mu: clock hand; nil when no file is open
	ring  int64       // mu: files on the ring (open, not being closed)

	open                          atomic.Int64 // mirror of slots, for Stats without the lock
	peak, opens, evicted, overCap atomic.Int64
}

// FileCacheStats describes a FileCache at one moment.
type FileCacheStats struct {
	Open      int64 // segment files open now
	Limit     int64 // the cap
	Peak      int64 // most files ever open at once
	Opens     int64 // files opened (first opens and reopens)
	Evictions int64 // idle files closed to make room
	OverLimit int64 // opens that went above the cap because every open file was pinned
}

// NewFileCache returns a cache that keeps at most limit segment files open
// (at least 1).
func NewFileCache(limit int) *FileCache { return &FileCache{limit: max(int64(limit), 1)} }

// Stats reports the current use of the cache.
func (c *FileCache) Stats() FileCacheStats {
	return FileCacheStats{Open: c.open.Load(), Limit: c.limit, Peak: c.peak.Load(), Opens: c.opens.Load(),
		Evictions: c.evicted.Load(), OverLimit: c.overCap.Load()}
}

// Limit is the cap on open segment files.
func (c *FileCache) Limit() int { return int(c.limit) }

// DefaultFileCacheLimit is half the soft RLIMIT_NOFILE (the rest is left to
// connections, checkpoints and metadata), or 4096 where the limit cannot be
// read.
func DefaultFileCacheLimit() int {
	n, ok := nofileLimit()
	if !ok {
		return 4096
	}
	return int(max(min(n/2, 1<<20), 16))
}

var defaultCache = sync.OnceValue(func() *FileCache { return NewFileCache(DefaultFileCacheLimit()) })

// WithFileCache returns fsys with c attached: logs opened on it keep their
// segment files in c. Logs opened on an FS without a cache share a
// process-wide one of DefaultFileCacheLimit files.
func WithFileCache(fsys FS, c *FileCache) FS { return cachedFS{fsys, c} }

type cachedFS struct {
	FS
	c *FileCache
}

func (f cachedFS) fileCache() *FileCache { return f.c }

func cacheOf(fsys FS) *FileCache {
	if cf, ok := fsys.(interface{ fileCache() *FileCache }); ok && cf.fileCache() != nil {
		return cf.fileCache()
	}
	return defaultCache()
}

// errUnlinked is returned for a segment file that must be reopened after
// its segment was deleted: its name may already belong to a new segment.
var errUnlinked = errors.New("segment file deleted while closed")

// cachedFile is one segment file: open or not, reopened by name on demand.
type cachedFile struct {
	c    *FileCache
	fsys FS
	name string

	// openMu serializes opening the file with opening it again elsewhere
	// and with unlinking it, so a reopen never races a new file that
	// took the name.
	openMu   sync.Mutex
	flag     int  // openMu: flags of the next open
	unlinked bool // openMu: the name no longer refers to this file

	mu   sync.Mutex
	f    File // mu: nil while closed
	pins int  // mu: users of f; it is not closed while > 0
	ref  bool // mu: used since the clock hand last passed
	dead bool // mu: closed for good (the segment's last reference went)

	prev, next *cachedFile // FileCache.mu: ring of open files
}

func newCachedFile(c *FileCache, fsys FS, name string, flag int) *cachedFile {
	return &cachedFile{c: c, fsys: fsys, name: name, flag: flag}
}

// pin returns the open file, opening it if needed; unpin must follow.
func (cf *cachedFile) pin() (File, error) {
	if f := cf.tryPin(); f != nil {
		return f, nil
	}
	cf.openMu.Lock()
	defer cf.openMu.Unlock()
	if f := cf.tryPin(); f != nil {
		return f, nil
	}
	cf.mu.Lock()
	dead := cf.dead
	cf.mu.Unlock()
	switch {
	case dead:
		return nil, &fs.PathError{Op: "open", Path: cf.name, Err: fs.ErrClosed}
	case cf.unlinked:
		return nil, &fs.PathError{Op: "open", Path: cf.name, Err: errUnlinked}
	}
	c := cf.c
	// Close the victims before opening, so the descriptors really open
	// never exceed the slots counted.
	for _, v := range c.reserve() {
		_ = v.Close() // idle and reopened by name when needed; nothing to lose
	}
	f, err := cf.fsys.OpenFile(cf.name, cf.flag, 0o644)
	if err != nil {
		c.unreserve()
		return nil, err
	}
	c.opens.Add(1)
	// Creating and truncating happen once; a reopen must find the file.
	cf.flag &^= os.O_CREATE | os.O_TRUNC | os.O_EXCL
	c.mu.Lock()
	cf.mu.Lock()
	if cf.dead {
		cf.mu.Unlock()
		c.mu.Unlock()
		_ = f.Close()
		c.unreserve()
		return nil, &fs.PathError{Op: "open", Path: cf.name, Err: fs.ErrClosed}
	}
	cf.f, cf.pins, cf.ref = f, 1, true
	c.link(cf)
	cf.mu.Unlock()
	c.mu.Unlock()
	return f, nil
}

func (cf *cachedFile) tryPin() File {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.f == nil {
		return nil
	}
	cf.pins++
	cf.ref = true
	return cf.f
}

func (cf *cachedFile) unpin() {
	cf.mu.Lock()
	cf.pins--
	idle := cf.pins == 0
	closeNow := idle && cf.dead && cf.f != nil
	cf.mu.Unlock()
	switch {
	case closeNow:
		// A dead file (its segment deleted) is never read or synced
		// again: a close error has nothing left to protect.
		_ = cf.closeIdle()
	case idle && cf.c.open.Load() > cf.c.limit:
		cf.c.shrink()
	}
}

// closeIdle closes the file if it is open and not pinned; it stays
// reopenable unless dead or unlinked.
func (cf *cachedFile) closeIdle() error {
	c := cf.c
	c.mu.Lock()
	cf.mu.Lock()
	f := cf.f
	if f == nil || cf.pins > 0 {
		cf.mu.Unlock()
		c.mu.Unlock()
		return nil
	}
	cf.f = nil
	c.unlink(cf)
	cf.mu.Unlock()
	c.mu.Unlock()
	err := f.Close()
	c.unreserve() // only now: the descriptor is gone
	return err
}

// close closes the file for good: now if idle, else at the last unpin.
func (cf *cachedFile) close() {
	cf.mu.Lock()
	cf.dead = true
	cf.mu.Unlock()
	_ = cf.closeIdle() // read-only use from here on; nothing to lose
}

// markUnlinked forbids reopening by name: call it before removing the file.
func (cf *cachedFile) markUnlinked() {
	cf.openMu.Lock()
	cf.unlinked = true
	cf.openMu.Unlock()
}

// isOpen reports whether the file holds a descriptor now (for tests).
func (cf *cachedFile) isOpen() bool {
	cf.mu.Lock()
	defer cf.mu.Unlock()
	return cf.f != nil
}

func (cf *cachedFile) ReadAt(p []byte, off int64) (int, error) {
	f, err := cf.pin()
	if err != nil {
		return 0, err
	}
	defer cf.unpin()
	return f.ReadAt(p, off)
}

func (cf *cachedFile) Write(p []byte) (int, error) {
	f, err := cf.pin()
	if err != nil {
		return 0, err
	}
	defer cf.unpin()
	return f.Write(p)
}

func (cf *cachedFile) Truncate(size int64) error {
	f, err := cf.pin()
	if err != nil {
		return err
	}
	defer cf.unpin()
	return f.Truncate(size)
}

func (cf *cachedFile) Size() (int64, error) {
	f, err := cf.pin()
	if err != nil {
		return 0, err
	}
	defer cf.unpin()
	return f.Size()
}

// Sync fsyncs the file, reopening it if it was evicted: fsync through any
// descriptor writes back the inode's dirty pages. A file deleted meanwhile
// (retention racing a flush) has nothing left worth making durable. A
// failed fsync is poisonous (see ErrLogPoisoned); failing to reopen the
// file is not, as no fsync ran.
func (cf *cachedFile) Sync() error {
	f, err := cf.pin()
	if errors.Is(err, errUnlinked) {
		return nil
	}
	if err != nil {
		return err
	}
	defer cf.unpin()
	if err := f.Sync(); err != nil {
		return syncFailed(err)
	}
	return nil
}

// reserve takes a slot for a file about to be opened, detaching idle files
// the clock hand finds unreferenced until the cache is under its cap. The
// caller closes the returned files; their slots are passed on to it.
func (c *FileCache) reserve() (victims []File) {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Two turns of the hand clear every referenced bit once and then meet
	// an unreferenced idle file, if there is one.
	for n := 2*c.ring + 1; c.slots >= c.limit && c.hand != nil && n > 0; n-- {
		if f := c.tryEvict(); f != nil {
			victims = append(victims, f)
			c.slots--
		}
	}
	c.slots++
	if c.slots > c.limit {
		c.overCap.Add(1)
	}
	c.publish()
	return victims
}

// shrink closes idle files while the cache is above its cap, after pinned
// files made it go over.
func (c *FileCache) shrink() {
	var victims []File
	c.mu.Lock()
	for n := 2*c.ring + 1; c.slots-int64(len(victims)) > c.limit && c.hand != nil && n > 0; n-- {
		if f := c.tryEvict(); f != nil {
			victims = append(victims, f)
		}
	}
	c.mu.Unlock()
	for _, f := range victims {
		_ = f.Close()
		c.unreserve()
	}
}

// tryEvict looks at the file under the hand and advances the hand: an idle
// file not referenced since the last pass is detached and returned, a
// referenced one gets its second chance. mu held.
func (c *FileCache) tryEvict() File {
	cf := c.hand
	c.hand = cf.next
	cf.mu.Lock()
	defer cf.mu.Unlock()
	if cf.pins > 0 {
		return nil
	}
	if cf.ref {
		cf.ref = false
		return nil
	}
	f := cf.f
	cf.f = nil
	c.unlink(cf)
	c.evicted.Add(1)
	return f
}

func (c *FileCache) unreserve() {
	c.mu.Lock()
	c.slots--
	c.publish()
	c.mu.Unlock()
}

// publish mirrors slots for Stats; mu held.
func (c *FileCache) publish() {
	c.open.Store(c.slots)
	if c.slots > c.peak.Load() {
		c.peak.Store(c.slots)
	}
}

// link puts cf on the ring just behind the hand, the last place the hand
// reaches: the most recently used position. mu held.
func (c *FileCache) link(cf *cachedFile) {
	if c.hand == nil {
		cf.prev, cf.next = cf, cf
		c.hand = cf
	} else {
		cf.next, cf.prev = c.hand, c.hand.prev
		c.hand.prev.next = cf
		c.hand.prev = cf
	}
	c.ring++
}

// unlink takes cf off the ring. mu held.
func (c *FileCache) unlink(cf *cachedFile) {
	if cf.next == nil {
		return
	}
	if cf.next == cf {
		c.hand = nil
	} else {
		cf.prev.next, cf.next.prev = cf.next, cf.prev
		if c.hand == cf {
			c.hand = cf.next
		}
	}
	cf.prev, cf.next = nil, nil
	c.ring--
}

// overLimit reports whether more files are open than the cap, which only
// pinned files can cause.
func (c *FileCache) overLimit() bool { return c.open.Load() > c.limit }

// detach replaces the ranges of r by a copy of their bytes and releases
// the pins and references it held. If a range cannot be read whole (a
// truncation raced the read), r is left as it was: its files still hold
// whatever the caller will meet when sending it.
func (r *ReadResult) detach() {
	buf := make([]byte, r.Bytes)
	at := int64(0)
	for _, fr := range r.Ranges {
		if n, _ := fr.File.ReadAt(buf[at:at+fr.Length], fr.Offset); int64(n) < fr.Length {
			return
		}
		at += fr.Length
	}
	r.Release()
	r.Ranges = []FileRange{{File: memRange{bytes.NewReader(buf)}, Length: r.Bytes}}
}

// memRange is the File of a detached ReadResult: read-only bytes, without
// a descriptor, so the network layer copies them.
type memRange struct{ *bytes.Reader }

func (memRange) Write([]byte) (int, error) { return 0, errReadOnly }
func (memRange) Close() error              { return nil }
func (memRange) Sync() error               { return nil }
func (memRange) Truncate(int64) error      { return errReadOnly }
func (m memRange) Size() (int64, error)    { return m.Reader.Size(), nil }

var errReadOnly = errors.New("segment: read-only copy of a log range")

// String is for logs and test failures.
func (c *FileCache) String() string {
	s := c.Stats()
	return fmt.Sprintf("%d/%d segment files open (peak %d, %d opens, %d evictions, %d over the cap)",
		s.Open, s.Limit, s.Peak, s.Opens, s.Evictions, s.OverLimit)
}
