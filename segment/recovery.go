package segment

import (
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Checkpoint file names in the partition directory.
const (
	recoveryPointFile  = "recovery-point"
	logStartOffsetFile = "log-start-offset"
)

// Open opens (creating if needed) the log in dir. Segments wholly below the
// recovery point are trusted and only their indexes are checked; from the
// segment containing the recovery point on, and in any segment whose index
// does not check out, every batch is re-validated (framing, offsets, CRC). A
// segment ends at its first torn or corrupt batch; later segments are kept,
// so damage costs the damaged range only (see Gaps), never what follows it,
// and the log end is never moved below an offset it already handed out.
func Open(fsys FS, dir string, cfg Config, now func() time.Time, logger *slog.Logger) (*Log, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	l := &Log{fs: fsys, cache: cacheOf(fsys), dir: dir, now: now, logger: logger, cfg: cfg.withDefaults(), maxIndex: maxIndexBytes,
		onPoison: cfg.OnPoisoned}
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating log dir %s: %w", dir, err)
	}
	names, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("listing log dir %s: %w", dir, err)
	}
	// A cleaner's swap interrupted by a crash is completed or undone
	// first, so that no offset is found in two segments, or in none.
	if names, err = completeSwaps(fsys, dir, names, logger.Warn); err != nil {
		return nil, err
	}
	var bases []int64
	for _, name := range names {
		switch {
		case strings.HasSuffix(name, ".tmp"):
			// A checkpoint write that never got renamed into place.
			_ = fsys.Remove(filepath.Join(dir, name))
		case strings.HasSuffix(name, ".log"):
			stem := strings.TrimSuffix(name, ".log")
			b, err := strconv.ParseInt(stem, 10, 64)
			if err != nil || len(stem) != 20 || b < 0 {
				logger.Warn("ignoring unexpected file in log dir", "dir", dir, "file", name)
				continue
			}
			bases = append(bases, b)
		}
	}
	sort.Slice(bases, func(i, j int) bool { return bases[i] < bases[j] })
	start, startKnown := l.readCheckpointFile(logStartOffsetFile)
	rp, rpKnown := l.readCheckpointFile(recoveryPointFile)
	l.ckptStart, l.ckptRP = -1, -1
	if startKnown {
		l.ckptStart = start
	}
	if rpKnown {
		l.ckptRP = rp
	}

	if err := l.recover(bases, rp); err != nil {
		for _, s := range l.segs {
			s.closeFiles()
		}
		return nil, err
	}
	if err := l.finishOpen(start, rp); err != nil {
		for _, s := range l.segs {
			s.closeFiles()
		}
		return nil, err
	}
	if invariants.Enabled {
		l.assertRecovered()
	}
	// A partition nobody uses holds no descriptor: its files reopen on
	// the first read or append.
	for _, s := range l.segs {
		s.dropFiles()
	}
	return l, nil
}

// recover loads and checks the segments at bases, leaving the survivors in
// l.segs. It never deletes a segment that holds a valid batch: damage makes
// the damaged segment end early, and what lies beyond becomes a gap (see
// damaged). Segments are opened one at a time and closed again when done,
// so recovery needs three descriptors however many segments there are.
func (l *Log) recover(bases []int64, rp int64) error {
	var scratch []byte // for scanSegment; most opens need none
	for i, base := range bases {
		s, err := openSegment(l.fs, l.cache, l.dir, base, false)
		if err != nil {
			return err
		}
		err = l.recoverSegment(s, bases, i, rp, &scratch)
		s.dropFiles()
		if err != nil {
			return err
		}
	}
	l.recordHoles()
	return nil
}

// recordHoles reports the offsets between two segments that neither holds
// and no damage found by the scan explains: a segment cut short exactly at
// a batch boundary (its indexes and CRCs are then all fine), or an empty
// one dropped from the middle. Segments roll at the log end, so nothing
// else leaves such a hole: those offsets are lost, and an operator must
// learn of it as of any other damage. Compaction leaves none: a cleaned
// segment keeps its last batch, emptied if need be, so it ends where the
// segments it replaced ended; and a follower that rolls at a gap of its
// compacted leader starts the new segment at its old log end, not at the
// batch (a gap inside a segment is no damage: batch offsets only have to
// increase). Only a gap wider than a segment's 32-bit offset range,
// which no leader sends, ends up reported here.
func (l *Log) recordHoles() {
	var holes []Gap
	for i := 0; i+1 < len(l.segs); i++ {
		s, next := l.segs[i], l.segs[i+1]
		if s.next >= next.base || l.gapAt(s.next) {
			continue
		}
		g := Gap{File: segName(l.dir, s.base, ".log"), Position: s.size, From: s.next, To: next.base,
			Reason: "no segment holds these offsets: the segment ends before the next one begins"}
		holes = append(holes, g)
		l.logger.Error("log segments leave a hole: offsets lost, later segments kept", "file", g.File,
			"file_size", s.size, "first_lost_offset", g.From, "next_offset", g.To, "reason", g.Reason)
	}
	if len(holes) > 0 {
		l.gaps = append(l.gaps, holes...)
		sort.Slice(l.gaps, func(i, j int) bool { return l.gaps[i].From < l.gaps[j].From })
	}
}

// gapAt reports whether a recorded gap starts at offset.
func (l *Log) gapAt(offset int64) bool {
	for _, g := range l.gaps {
		if g.From == offset {
			return true
		}
	}
	return false
}

// recoverSegment checks the segment at bases[i] and appends it to l.segs
// unless it is an empty one in the middle; on error s is closed.
func (l *Log) recoverSegment(s *segment, bases []int64, i int, rp int64, scratch *[]byte) error {
	base := bases[i]
	fileSize, err := s.log.Size()
	if err != nil {
		s.closeFiles()
		return fmt.Errorf("segment %d in %s: %w", base, l.dir, err)
	}
	nextBase := int64(math.MaxInt64)
	if i+1 < len(bases) {
		nextBase = bases[i+1]
	}
	if fileSize == 0 && nextBase != math.MaxInt64 {
		// Rolled but never written (or emptied by a crash): an empty
		// segment in the middle carries nothing.
		s.closeFiles()
		return l.removeBases(bases[i : i+1])
	}
	if nextBase <= rp && l.loadIndexes(s, fileSize, nextBase, true) {
		s.trusted = true
		l.segs = append(l.segs, s)
		return nil
	}
	// After a clean stop the active segment lies wholly below the
	// recovery point too; its indexes then spare reading all of it.
	// A torn tail or data past the recovery point (a crash) fails
	// the check, and the segment is scanned. The batches after the
	// last index entry, the ones written last, are CRC-checked even
	// so: a damaged one there is reported as a gap by the scan rather
	// than served.
	if nextBase == math.MaxInt64 && l.loadIndexes(s, fileSize, nextBase, false) && s.next <= rp && l.tailIntact(s, fileSize) {
		s.trusted = true
		l.segs = append(l.segs, s)
		return nil
	}
	reason, err := l.scanSegment(s, fileSize, nextBase, scratch)
	if err != nil {
		s.closeFiles()
		return err
	}
	if reason == "" && nextBase != math.MaxInt64 {
		s.addTimeEntry()
	}
	if reason != "" {
		if err := l.damaged(s, fileSize, nextBase, rp, reason); err != nil {
			s.closeFiles()
			return err
		}
	}
	if err := s.rewriteIndexes(); err != nil {
		s.closeFiles()
		return err
	}
	l.segs = append(l.segs, s)
	if reason != "" && nextBase == math.MaxInt64 && s.next < rp {
		// The log end itself was damaged below the recovery point:
		// offsets up to rp were acknowledged and flushed, so the log
		// goes on from there in a fresh segment rather than after the
		// garbage or, worse, from an offset consumers already saw.
		ns, err := openSegment(l.fs, l.cache, l.dir, rp, true)
		if err != nil {
			return err
		}
		l.dirDirty = true
		l.segs = append(l.segs, ns)
	}
	return nil
}

// Gap is a range of offsets that recovery found damaged and no longer
// serves. The bytes stay on disk (from Position of File on) unless they were
// an unflushed torn tail.
type Gap struct {
	File     string
	Position int64 // first damaged byte in File
	From, To int64 // offsets [From, To) are not served
	Reason   string
}

// Gaps returns the damaged ranges the last Open found. They are counted in
// a metric so operators learn of them.
func (l *Log) Gaps() []Gap { return l.gaps }

// damaged settles a segment whose scan stopped early at s.size.
//
// Beyond the recovery point the bad bytes were never fsynced: a crash tore
// them, and they are cut off as Kafka does. At or below it they held
// acknowledged, flushed data, so the file is left alone for an operator to
// inspect. Either way later segments stay, and if any follow, the offsets
// between this segment's last good batch and the next segment are a gap.
func (l *Log) damaged(s *segment, fileSize, nextBase, rp int64, reason string) error {
	file := segName(l.dir, s.base, ".log")
	flushed := s.next < rp
	if !flushed {
		err := s.log.Truncate(s.size)
		if err == nil {
			// Else the torn bytes could come back after a crash, behind
			// batches appended from here on.
			err = s.log.Sync()
		}
		if err != nil {
			return fmt.Errorf("truncating segment %d in %s: %w", s.base, l.dir, err)
		}
	}
	end := nextBase
	if end == s.next {
		// Garbage after the last batch, but no offset is missing.
		l.logger.Warn("ignoring damaged bytes after the last batch of a segment", "file", file,
			"position", s.size, "file_size", fileSize, "reason", reason)
		return nil
	}
	if end == math.MaxInt64 {
		if !flushed {
			l.logger.Warn("truncating unflushed torn tail of the log", "file", file,
				"position", s.size, "file_size", fileSize, "reason", reason, "log_end_offset", s.next)
			return nil
		}
		end = rp
	}
	g := Gap{File: file, Position: s.size, From: s.next, To: end, Reason: reason}
	l.gaps = append(l.gaps, g)
	l.logger.Error("damaged log segment: offsets lost, later segments kept", "file", file,
		"position", s.size, "file_size", fileSize, "first_lost_offset", g.From, "next_offset", g.To,
		"flushed", flushed, "reason", reason)
	return nil
}

func (l *Log) removeBases(bases []int64) error {
	for _, b := range bases {
		s := &segment{base: b, dir: l.dir}
		if err := s.remove(l.fs); err != nil {
			return err
		}
		l.dirDirty = true
	}
	return nil
}

// scanSegment rebuilds s's state by reading every batch from the start of
// its file, verifying framing and CRC. It stops at the first bad batch and
// returns why; s.size is then the length of the valid prefix.
func (l *Log) scanSegment(s *segment, fileSize, nextBase int64, scratch *[]byte) (reason string, err error) {
	s.resetIndexes()
	expected := s.base
	var pos int64
	if *scratch == nil {
		*scratch = make([]byte, 1<<20)
	}
	for pos < fileSize {
		buf := *scratch
		n, err := s.log.ReadAt(buf[:min(int64(len(buf)), fileSize-pos)], pos)
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("reading segment %d in %s at %d: %w", s.base, l.dir, pos, err)
		}
		if n == 0 {
			return "", fmt.Errorf("reading segment %d in %s at %d: %w", s.base, l.dir, pos, io.ErrUnexpectedEOF)
		}
		chunk := buf[:n]
		off := 0
		for {
			rest := fileSize - pos - int64(off)
			if rest == 0 {
				break
			}
			if rest < BatchHeaderSize {
				return fmt.Sprintf("%d trailing bytes, less than a batch header", rest), nil
			}
			if len(chunk)-off < BatchHeaderSize {
				break // header straddles the chunk; read on
			}
			h := parseHeader(chunk[off:])
			switch {
			case h.Length < minBatchLength:
				return fmt.Sprintf("batch length %d too small", h.Length), nil
			case int64(h.Size()) > rest:
				return fmt.Sprintf("batch of %d bytes but only %d left in file", h.Size(), rest), nil
			case h.Magic != 2:
				return fmt.Sprintf("magic %d", h.Magic), nil
			case h.BaseOffset < expected || h.LastOffsetDelta < 0:
				return fmt.Sprintf("batch offsets %d..%d, expected from %d", h.BaseOffset, h.LastOffset(), expected), nil
			case h.LastOffset()-s.base > math.MaxUint32:
				return fmt.Sprintf("offset %d too far from segment base", h.LastOffset()), nil
			case h.LastOffset() >= nextBase:
				// The base offset is outside the CRC, so a flipped bit
				// there shows only as a batch running into the next
				// segment's range.
				return fmt.Sprintf("batch offsets %d..%d reach the next segment at %d", h.BaseOffset, h.LastOffset(), nextBase), nil
			}
			if off+h.Size() > len(chunk) {
				if off == 0 && h.Size() > len(buf) {
					*scratch = make([]byte, h.Size())
				}
				break
			}
			if c := crc32.Checksum(chunk[off+offAttributes:off+h.Size()], castagnoli); c != h.CRC {
				return fmt.Sprintf("crc mismatch (computed %08x, stored %08x)", c, h.CRC), nil
			}
			s.track(h, pos+int64(off), l.cfg.IndexIntervalBytes)
			expected = h.LastOffset() + 1
			off += h.Size()
		}
		pos += int64(off)
	}
	return "", nil
}

// loadIndexes adopts the segment's index files if they check out and
// derives the rest of its state from the last indexed batch onwards. It
// reports false (after logging why, with warn) if the indexes must be
// rebuilt.
func (l *Log) loadIndexes(s *segment, fileSize, nextBase int64, warn bool) bool {
	fail := func(why string) bool {
		if warn {
			l.logger.Warn("rebuilding segment index", "dir", l.dir, "segment", s.base, "reason", why)
		}
		s.resetIndexes()
		return false
	}
	oidx, err := readAll(s.oidx)
	if err != nil {
		return fail(err.Error())
	}
	tidx, err := readAll(s.tidx)
	if err != nil {
		return fail(err.Error())
	}
	maxRel := nextBase - s.base - 1
	if err := offsetIndex(oidx).check(fileSize, maxRel); err != nil {
		return fail(err.Error())
	}
	if err := timeIndex(tidx).check(maxRel); err != nil {
		return fail(err.Error())
	}
	s.index, s.times = oidx, tidx
	s.oidxWritten, s.tidxWritten = len(oidx), len(tidx)
	s.size = fileSize
	if ts, rel, ok := s.times.last(); ok {
		s.maxTs, s.maxTsOffset = ts, s.base+int64(rel)
	}
	// The tail after the last index entry is at most one interval; its
	// headers give the exact end offset and any newer max timestamp.
	var pos int64
	expected := s.base
	if n := s.index.len(); n > 0 {
		rel, p := s.index.entry(n - 1)
		pos, expected = int64(p), s.base+int64(rel)
	}
	// What track would have counted since the last entry: the active
	// segment goes on indexing from there.
	s.bytesSinceIndex = fileSize - pos
	var buf [BatchHeaderSize]byte
	for first := true; pos < fileSize; first = false {
		h, err := s.readHeader(&buf, pos)
		if err != nil {
			return fail(err.Error())
		}
		if h.Magic != 2 || (first && h.BaseOffset != expected && s.index.len() > 0) || h.BaseOffset < expected || h.LastOffset() >= nextBase {
			return fail(fmt.Sprintf("batch at %d (offset %d) does not match the index", pos, h.BaseOffset))
		}
		if h.MaxTimestamp > s.maxTs {
			s.maxTs, s.maxTsOffset = h.MaxTimestamp, h.LastOffset()
		}
		s.next = h.LastOffset() + 1
		expected = s.next
		pos += int64(h.Size())
	}
	return true
}

// maxTailCheck bounds what tailIntact reads; a longer tail (a huge last
// batch) is left to the scan.
const maxTailCheck = 16 << 20

// tailIntact reports whether every batch after the segment's last index
// entry (at most an index interval and one batch) passes its CRC check.
func (l *Log) tailIntact(s *segment, fileSize int64) bool {
	var pos int64
	if n := s.index.len(); n > 0 {
		_, p := s.index.entry(n - 1)
		pos = int64(p)
	}
	if fileSize-pos > maxTailCheck {
		return false
	}
	buf := make([]byte, fileSize-pos)
	if n, err := s.log.ReadAt(buf, pos); n < len(buf) {
		l.logger.Warn("reading the active segment's tail", "dir", l.dir, "segment", s.base, "err", err)
		return false
	}
	for off := 0; off < len(buf); {
		if len(buf)-off < BatchHeaderSize {
			return false
		}
		h := parseHeader(buf[off:])
		if h.Length < minBatchLength || off+h.Size() > len(buf) {
			return false
		}
		if crc32.Checksum(buf[off+offAttributes:off+h.Size()], castagnoli) != h.CRC {
			return false
		}
		off += h.Size()
	}
	return true
}

// readAll reads an index file whole. A missing one reads as empty without
// being created: it is created when first written (or synced), and
// creating the index files of every empty partition at every start cost
// two file creations each.
func readAll(cf *cachedFile) ([]byte, error) {
	if _, err := cf.fsys.Stat(cf.name); errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	f, err := cf.pin()
	if err != nil {
		return nil, err
	}
	defer cf.unpin()
	n, err := f.Size()
	if err != nil {
		return nil, err
	}
	b := make([]byte, n)
	if m, err := f.ReadAt(b, 0); int64(m) < n {
		return nil, fmt.Errorf("short index read: %w", errors.Join(err, io.ErrUnexpectedEOF))
	}
	return b, nil
}

// finishOpen settles start offset, log end and recovery point after the
// segments were recovered. A checkpoint that contradicts the segments is
// reported and ignored: the files on disk are the truth, and a bad
// checkpoint must never be a reason to delete them.
func (l *Log) finishOpen(start, rp int64) error {
	if len(l.segs) > 0 && start > l.active().next {
		l.logger.Warn("ignoring log-start-offset checkpoint beyond the log end", "dir", l.dir,
			"file", logStartOffsetFile, "checkpoint", start, "log_end_offset", l.active().next)
		start = l.segs[0].base
	}
	// Segments wholly below the start offset were about to be deleted when
	// the broker stopped.
	for len(l.segs) > 1 && l.segs[0].next <= start {
		if err := l.segs[0].remove(l.fs); err != nil {
			return err
		}
		l.segs[0].closeFiles()
		l.segs = l.segs[1:]
		l.dirDirty = true
	}
	if len(l.segs) == 0 {
		// An empty directory, or one whose segment files are gone: begin
		// at the furthest offset the checkpoints vouch for, so no offset
		// is handed out twice.
		base := max(start, rp)
		if base > 0 {
			l.logger.Warn("no segment files; the log starts empty at its checkpointed offsets", "dir", l.dir,
				"log_start_offset", start, "recovery_point", rp)
		}
		s, err := newFirstSegment(l.fs, l.cache, l.dir, base)
		if err != nil {
			return err
		}
		// Neither its empty files nor the directory entries are synced
		// now: a crash that loses them loses nothing, as the next Open
		// creates the same segment from the same checkpoints (they
		// change only by a write that syncs the directory). The first
		// flush with data syncs them (newDir). So a new partition, and
		// one closed and reopened while empty, costs no fsync here.
		s.fresh = true
		l.segs = []*segment{s}
		l.newDir, l.parentDue = true, true
		start = base
	}
	now := l.now()
	for _, s := range l.segs {
		s.lastAppend = now.UnixMilli()
		if !s.trusted && !s.fresh {
			// Recovered data may only have lived in the page cache. A
			// trusted segment lies below the recovery point, which only
			// ever moves after an fsync: flushing it again would open
			// every segment of every partition at the first flush.
			s.dirtyGen++
			s.idxGen++
		}
		l.size += s.size
	}
	act := l.active()
	act.created = now
	l.start = max(start, l.segs[0].base)
	l.leo = act.next
	if rp > l.leo {
		l.logger.Warn("ignoring recovery-point checkpoint beyond the log end", "dir", l.dir,
			"file", recoveryPointFile, "checkpoint", rp, "log_end_offset", l.leo)
	}
	l.recoveryPoint = min(rp, l.leo)
	if err := l.writeCheckpoints(); err != nil {
		return err
	}
	return nil
}

func (l *Log) readCheckpoint(name string) (int64, bool) {
	v, ok, _ := l.readCheckpointAbsent(name)
	return v, ok
}

// readCheckpointFile returns the checkpoint's value, 0 when it cannot be
// read, and whether the file says that value (an absent file says 0).
func (l *Log) readCheckpointFile(name string) (int64, bool) {
	v, ok, absent := l.readCheckpointAbsent(name)
	return v, ok || absent
}

func (l *Log) readCheckpointAbsent(name string) (v int64, ok, absent bool) {
	f, err := l.fs.OpenFile(filepath.Join(l.dir, name), os.O_RDONLY, 0)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			l.logger.Warn("cannot read checkpoint", "dir", l.dir, "file", name, "err", err)
			return 0, false, false
		}
		return 0, false, true
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, 64))
	if err == nil {
		var v int64
		if v, err = strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil && v >= 0 {
			return v, true, false
		}
	}
	l.logger.Warn("ignoring unreadable checkpoint", "dir", l.dir, "file", name, "content", string(b), "err", err)
	return 0, false, false
}

// writeCheckpoints persists the current start offset and recovery point.
func (l *Log) writeCheckpoints() error {
	l.ckptMu.Lock()
	defer l.ckptMu.Unlock()
	l.mu.RLock()
	start, rp := l.start, l.recoveryPoint
	l.mu.RUnlock()
	return l.writeCheckpointsLocked(start, rp)
}

// writeCheckpointsLocked writes both files atomically (replaceFile of
// each, then one fsync of the dir; see WriteFileAtomic); ckptMu held. A
// failed fsync is poisonous (see ErrLogPoisoned): the directory's fsync
// also stands for the segment files created since the last one. A failed
// write, rename or open is not: the old checkpoint is still in place.
//
// Values the files already say are not written again: the files and the
// directory entries that hold them are as durable as when they were
// written (each write ends in the directory's fsync), so rewriting them
// would only cost three fsyncs per partition at every open and close.
// Segment files created since need no fsync of the directory from here:
// Flush syncs it for them (dirDirty), before the recovery point passes
// their data.
func (l *Log) writeCheckpointsLocked(start, rp int64) error {
	if start == l.ckptStart && rp == l.ckptRP {
		return nil
	}
	// Unknown until both files and the directory are synced.
	l.ckptStart, l.ckptRP = -1, -1
	for _, c := range []struct {
		name string
		v    int64
	}{{logStartOffsetFile, start}, {recoveryPointFile, rp}} {
		path := filepath.Join(l.dir, c.name)
		if err := replaceFile(l.fs, path, []byte(strconv.FormatInt(c.v, 10)+"\n")); err != nil {
			return fmt.Errorf("checkpoint %s: %w", path, err)
		}
	}
	if err := syncDir(l.fs, l.dir); err != nil {
		return fmt.Errorf("checkpoint: %w", err)
	}
	l.ckptStart, l.ckptRP = start, rp
	return nil
}
