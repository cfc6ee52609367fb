package segment

import (
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// segment is one .log file with its two indexes.
//
// Locking: fields marked "mu" are written with both Log.appendMu and
// Log.mu held and may be read under either; fields marked "appendMu" are
// only touched by mutators holding Log.appendMu.
type segment struct {
	base int64
	dir  string
	// The files open on first use and may be closed while idle (see
	// FileCache); whoever uses one past the Log's locks pins it.
	log  *cachedFile
	oidx *cachedFile
	tidx *cachedFile

	// refs counts the Log's own reference plus one per outstanding
	// ReadResult/scan; files close for good when it drops to zero, so an
	// unlinked segment stays readable for in-flight sendfiles (which also
	// pin the .log, so the cache cannot close it either).
	refs atomic.Int32

	size            int64       // mu: bytes of valid batches
	next            int64       // mu: offset after the last batch (base if empty)
	index           offsetIndex // mu
	times           timeIndex   // mu
	maxTs           int64       // mu: largest batch MaxTimestamp, -1 if none
	maxTsOffset     int64       // mu: last offset of the batch carrying maxTs
	lastAppend      int64       // mu: wall clock ms of the last append, for retention of untimestamped data
	bytesSinceIndex int64       // appendMu

	created     time.Time // appendMu: for SegmentMs rolling
	oidxWritten int       // appendMu: bytes of index already written to oidx
	tidxWritten int       // appendMu
	dirtyGen    uint64    // appendMu: bumped on every change not yet fsynced
	syncedGen   uint64    // appendMu
	// idxGen counts the changes that touched the index files (or created
	// the segment); a flush fsyncs them only when it moved, so an append
	// that added no index entry costs one fsync, not three.
	idxGen       uint64 // appendMu
	idxSyncedGen uint64 // appendMu

	// trusted is set by recovery for a segment wholly below the recovery
	// point whose indexes checked out: nothing of it waits for an fsync.
	trusted bool
	// fresh is set by Open for the segment it creates in a log that had
	// none: it needs no fsync while it is empty (see finishOpen).
	fresh bool
}

func segName(dir string, base int64, ext string) string {
	return filepath.Join(dir, fmt.Sprintf("%020d%s", base, ext))
}

// openSegment sets up the three files of the segment at base. With create
// they are created now, discarding any stale content; otherwise each opens
// on first use, so a segment nobody reads costs no descriptor. Either way
// they are left idle in the cache.
func openSegment(fsys FS, cache *FileCache, dir string, base int64, create bool) (*segment, error) {
	flag := os.O_RDWR | os.O_APPEND
	if create {
		flag |= os.O_CREATE | os.O_TRUNC
	}
	s := &segment{base: base, dir: dir, next: base, maxTs: -1, maxTsOffset: -1}
	s.log = newCachedFile(cache, fsys, segName(dir, base, ".log"), flag)
	// Index files may legitimately be missing (they are rebuilt), so their
	// first open creates them.
	s.oidx = newCachedFile(cache, fsys, segName(dir, base, ".index"), flag|os.O_CREATE)
	s.tidx = newCachedFile(cache, fsys, segName(dir, base, ".timeindex"), flag|os.O_CREATE)
	s.refs.Store(1)
	if !create {
		return s, nil
	}
	for _, f := range s.files() {
		if err := s.create(f); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// newFirstSegment creates the .log of the first segment of a log that has
// none (see finishOpen). Its index files are created, empty, on first use
// instead (the flags of their first open still create and truncate
// them): until then none is needed, as Open treats a missing index as
// one to rebuild, and a new partition costs two file creations less.
func newFirstSegment(fsys FS, cache *FileCache, dir string, base int64) (*segment, error) {
	s, err := openSegment(fsys, cache, dir, base, false)
	if err != nil {
		return nil, err
	}
	for _, f := range s.files() {
		f.flag |= os.O_CREATE | os.O_TRUNC // set before anyone else sees s
	}
	if err := s.create(s.log); err != nil {
		return nil, err
	}
	return s, nil
}

// create opens f now, creating it; on failure the segment is closed.
func (s *segment) create(f *cachedFile) error {
	if _, err := f.pin(); err != nil {
		s.closeFiles()
		return fmt.Errorf("segment %d in %s: %w", s.base, s.dir, err)
	}
	f.unpin()
	return nil
}

func (s *segment) files() [3]*cachedFile { return [3]*cachedFile{s.log, s.oidx, s.tidx} }

// closeFiles closes the files for good (each once it is no longer pinned).
func (s *segment) closeFiles() {
	for _, f := range s.files() {
		if f != nil {
			f.close()
		}
	}
}

// dropFiles closes the files that are open and idle; they reopen on the
// next use. Recovery calls it so an untouched partition holds nothing.
func (s *segment) dropFiles() {
	for _, f := range s.files() {
		if f != nil {
			_ = f.closeIdle() // idle: nothing written is lost by closing
		}
	}
}

func (s *segment) acquire() { s.refs.Add(1) }

func (s *segment) release() {
	if s.refs.Add(-1) == 0 {
		s.closeFiles()
	}
}

// remove unlinks the segment's files; open handles stay usable until the
// last reference is released.
func (s *segment) remove(fsys FS) error {
	// Marked before the names go: a closed file must not be reopened by
	// a name a new segment may take next (truncation to below the start).
	for _, f := range s.files() {
		if f != nil {
			f.markUnlinked()
		}
	}
	var errs []error
	for _, ext := range []string{".log", ".index", ".timeindex"} {
		if err := fsys.Remove(segName(s.dir, s.base, ext)); err != nil && !errors.Is(err, os.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("removing segment %d in %s: %w", s.base, s.dir, err)
	}
	return nil
}

// resetIndexes clears all derived state so it can be rebuilt by tracking
// every batch again.
func (s *segment) resetIndexes() {
	s.size, s.next = 0, s.base
	s.index, s.times = nil, nil
	s.maxTs, s.maxTsOffset = -1, -1
	s.bytesSinceIndex = 0
	s.oidxWritten, s.tidxWritten = 0, 0
}

// track accounts for a batch written at pos: size, next offset, running max
// timestamp and, once per interval bytes, an offset and time index entry.
func (s *segment) track(h BatchHeader, pos int64, interval int) {
	if invariants.Enabled && pos != s.size {
		// Batches are tracked in file order, each where the last one ended.
		invariants.Failf("segment %d in %s: batch %d..%d tracked at position %d, segment ends at %d",
			s.base, s.dir, h.BaseOffset, h.LastOffset(), pos, s.size)
	}
	if s.bytesSinceIndex >= int64(interval) {
		s.index = s.index.add(uint32(h.BaseOffset-s.base), uint32(pos))
		s.addTimeEntry()
		s.bytesSinceIndex = 0
	}
	if h.MaxTimestamp > s.maxTs {
		s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
	}
	s.bytesSinceIndex += int64(h.Size())
	s.size = pos + int64(h.Size())
	s.next = h.LastOffset() + 1
}

// addTimeEntry records the running max timestamp if it is new.
func (s *segment) addTimeEntry() {
	if s.maxTs < 0 {
		return
	}
	if ts, _, ok := s.times.last(); ok && ts >= s.maxTs {
		return
	}
	s.times = s.times.add(s.maxTs, uint32(s.maxTsOffset-s.base))
}

// indexFull reports whether appending n more batches could overflow the
// offset index or the 32-bit relative offsets and positions.
func (s *segment) indexFull(n int, lastOffset int64, addBytes int64, maxIdx int) bool {
	return len(s.index)+n*offsetEntrySize > maxIdx ||
		len(s.times)+n*timeEntrySize > maxIdx ||
		lastOffset-s.base > math.MaxUint32 ||
		s.size+addBytes > math.MaxUint32
}

// persistIndexes writes index bytes not yet in the files.
func (s *segment) persistIndexes() error {
	if err := s.persistIndex(s.oidx, s.index, &s.oidxWritten, "offset"); err != nil {
		return err
	}
	return s.persistIndex(s.tidx, s.times, &s.tidxWritten, "time")
}

// persistIndex appends data[*written:] to f. A write that fails after
// writing part of it is cut off again, so that the retry appends at the
// right place; if that fails too, the error is poisonous.
func (s *segment) persistIndex(f *cachedFile, data []byte, written *int, what string) error {
	if *written >= len(data) {
		return nil
	}
	if n, err := f.Write(data[*written:]); err != nil {
		err = fmt.Errorf("writing %s index of segment %d in %s: %w", what, s.base, s.dir, err)
		if n > 0 {
			if terr := f.Truncate(int64(*written)); terr != nil {
				return poisonous{fmt.Errorf("%w; cutting the torn write off: %w", err, terr)}
			}
		}
		return err
	}
	*written = len(data)
	s.dirtyGen++
	s.idxGen++
	return nil
}

// rewriteIndexes replaces the index files with the in-memory indexes,
// after a rebuild or truncation. A failed truncation leaves the files out
// of step with what was written to them: poisonous.
func (s *segment) rewriteIndexes() error {
	for _, f := range []*cachedFile{s.oidx, s.tidx} {
		if err := f.Truncate(0); err != nil {
			return poisonous{fmt.Errorf("truncating index of segment %d in %s: %w", s.base, s.dir, err)}
		}
	}
	s.oidxWritten, s.tidxWritten = 0, 0
	s.dirtyGen++
	s.idxGen++
	return s.persistIndexes()
}

// sync fsyncs the segment's log file, and its index files with indexes.
// A failed fsync is poisonous (see cachedFile.Sync).
func (s *segment) sync(indexes bool) error {
	files := s.files()
	n := len(files)
	if !indexes {
		n = 1
	}
	for _, f := range files[:n] {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("fsync segment %d in %s: %w", s.base, s.dir, err)
		}
	}
	return nil
}

// readHeader reads the batch header at pos into buf.
func (s *segment) readHeader(buf *[BatchHeaderSize]byte, pos int64) (BatchHeader, error) {
	n, err := s.log.ReadAt(buf[:], pos)
	if n < BatchHeaderSize {
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return BatchHeader{}, fmt.Errorf("reading batch header at %d of segment %d in %s: %w", pos, s.base, s.dir, err)
	}
	h := parseHeader(buf[:])
	if h.Length < minBatchLength || pos+int64(h.Size()) > s.size {
		return h, fmt.Errorf("bad batch header at %d of segment %d in %s: %w", pos, s.base, s.dir, ErrCorruptBatch)
	}
	return h, nil
}

// seek returns the position and header of the first batch at or after the
// index floor for off whose last offset is >= off, scanning headers only.
// found is false if the segment has no such batch (pos is then s.size).
func (s *segment) seek(buf *[BatchHeaderSize]byte, off int64) (pos int64, h BatchHeader, found bool, err error) {
	if off > s.base {
		pos = s.index.floor(uint32(min(off-s.base, math.MaxUint32)))
	}
	for pos < s.size {
		if h, err = s.readHeader(buf, pos); err != nil {
			return pos, h, false, err
		}
		if h.LastOffset() >= off {
			return pos, h, true, nil
		}
		pos += int64(h.Size())
	}
	return pos, h, false, nil
}
