package segment

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Swapping a cleaned segment in, crash-safely (Kafka's .cleaned/.swap
// protocol). For a group of old segments whose first base is B:
//
//  1. B.log.cleaned, B.index.cleaned and B.timeindex.cleaned are written
//     and fsynced beside the old files.
//  2. They are renamed to .swap; the directory is fsynced. From here on
//     the new segment is complete and durable, and recovery completes the
//     swap (see completeSwaps).
//  3. The old segments' files are renamed to .deleted; fsync.
//  4. The .swap files get their final names; fsync. The new segment is
//     published to readers.
//  5. The .deleted files are removed.
//
// Recovery deletes .cleaned files (the swap had not begun: the old
// segments are whole), completes every .log.swap (removing the segments in
// its offset range, then renaming it), and deletes .deleted files (their
// replacement is in place). A directory fsync separates each step, so a
// crash anywhere leaves either all of the old group or all of the new
// segment, never both, never neither.
//
// Readers holding an old segment never reopen it by a name that now
// belongs to the new segment: each old file's cachedFile follows it to its
// .deleted name (so a failure half-way leaves the poisoned log readable),
// and is marked unlinked before the .deleted file is removed. Removal is
// immediate: a reader using the file holds it open (pinned, as a sendfile
// does), and unlinking keeps an open file's data until its last
// descriptor closes.

// Suffixes of the cleaner's files.
const (
	cleanedSuffix = ".cleaned"
	swapSuffix    = ".swap"
	deletedSuffix = ".deleted"
)

var segmentExts = [3]string{".log", ".index", ".timeindex"}

// cleanedWriter writes a new segment as B.*.cleaned files.
type cleanedWriter struct {
	l        *Log
	ns       *segment
	interval int
	log      File
}

func (l *Log) newCleanedSegment(base int64, interval int) (*cleanedWriter, error) {
	name := segName(l.dir, base, ".log"+cleanedSuffix)
	f, err := l.fs.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", name, err)
	}
	ns := &segment{base: base, dir: l.dir}
	ns.resetIndexes()
	return &cleanedWriter{l: l, ns: ns, interval: interval, log: f}, nil
}

// write appends whole batches to the new segment, indexing them.
func (w *cleanedWriter) write(batches []byte, throttle func(int)) error {
	if len(batches) == 0 {
		return nil
	}
	if _, err := w.log.Write(batches); err != nil {
		return fmt.Errorf("writing cleaned segment %d in %s: %w", w.ns.base, w.l.dir, err)
	}
	for p := 0; p < len(batches); {
		h := parseHeader(batches[p:])
		w.ns.track(h, w.ns.size, w.interval)
		p += h.Size()
	}
	if throttle != nil {
		throttle(len(batches))
	}
	return nil
}

// finish writes the indexes and fsyncs the three .cleaned files, whose
// modification time becomes modified (ms) where the FS can set it: the
// tombstone horizon is measured from it, as from the old segments'.
func (w *cleanedWriter) finish(modified int64) (*segment, error) {
	ns := w.ns
	ns.addTimeEntry() // as roll does: the segment is not active
	err := w.log.Sync()
	if cerr := w.log.Close(); err == nil {
		err = cerr
	}
	for i, data := range [][]byte{ns.index, ns.times} {
		if err != nil {
			break
		}
		err = writeSynced(w.l.fs, segName(w.l.dir, ns.base, segmentExts[i+1]+cleanedSuffix), data)
	}
	if err == nil && modified > 0 {
		err = setModTime(w.l.fs, segName(w.l.dir, ns.base, ".log"+cleanedSuffix), time.UnixMilli(modified))
	}
	if err != nil {
		w.abort()
		return nil, fmt.Errorf("finishing cleaned segment %d in %s: %w", ns.base, w.l.dir, err)
	}
	ns.oidxWritten, ns.tidxWritten = len(ns.index), len(ns.times)
	return ns, nil
}

// abort removes what the writer wrote; the old segments are untouched.
func (w *cleanedWriter) abort() {
	_ = w.log.Close()
	w.l.removeCleaned(w.ns.base)
}

// removeCleaned removes the .cleaned files of base. One left behind (the
// removal failing) is harmless: Open deletes it.
func (l *Log) removeCleaned(base int64) {
	for _, ext := range segmentExts {
		_ = l.fs.Remove(segName(l.dir, base, ext+cleanedSuffix))
	}
}

func writeSynced(fsys FS, name string, data []byte) error {
	f, err := fsys.OpenFile(name, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, 0o644)
	if err != nil {
		return err
	}
	if _, err = f.Write(data); err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// setModTime sets a file's mtime where the FS supports it (the real one);
// elsewhere the segments' last-append times stand in for it.
func setModTime(fsys FS, name string, t time.Time) error {
	if c, ok := fsys.(cachedFS); ok {
		fsys = c.FS
	}
	if _, ok := fsys.(osFS); ok {
		return os.Chtimes(name, t, t)
	}
	return nil
}

// swapIn replaces the group's segments by ns (steps 2 to 5 above), unless
// the log changed since the pass began. A failure from step 2 on leaves
// the files ahead of the published segments: the log is poisoned, and the
// next Open settles the files.
func (l *Log) swapIn(group []cleanSpan, ns *segment) error {
	base := ns.base
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	i := -1
	for j, s := range l.segs {
		if s == group[0].s {
			i = j
			break
		}
	}
	ok := !l.closed && i >= 0 && i+len(group) < len(l.segs)
	for k := 0; ok && k < len(group); k++ {
		s := l.segs[i+k]
		ok = s == group[k].s && s.size == group[k].size && s.next == group[k].next
	}
	l.mu.RUnlock()
	if err := l.refuse("cleaning"); err != nil || !ok {
		l.removeCleaned(base)
		if err != nil {
			return err
		}
		return fmt.Errorf("swapping in cleaned segment %d of %s: %w", base, l.dir, ErrCleanAborted)
	}
	fail := func(step string, err error) error {
		return l.poison(fmt.Errorf("swapping in cleaned segment %d of %s: %s: %w", base, l.dir, step, err))
	}
	if err := l.renameToSwap(base); err != nil {
		return err
	}
	// The old files follow their new names, so a reader (or a Flush)
	// reopening one finds it whatever step a failure stops at.
	for _, sp := range group {
		for i, f := range sp.s.files() {
			name := segName(l.dir, sp.s.base, segmentExts[i])
			if err := f.renameTo(l.fs, name+deletedSuffix); err != nil {
				return fail("renaming the old segment to .deleted", err)
			}
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fail("fsync dir", err)
	}
	for _, ext := range segmentExts {
		name := segName(l.dir, base, ext)
		if err := l.fs.Rename(name+swapSuffix, name); err != nil {
			return fail("renaming from .swap", err)
		}
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		return fail("fsync dir", err)
	}
	// The new segment's files are complete and fsynced: nothing for
	// Flush to do (dirtyGen == syncedGen), and they open on first use.
	ns.log = newCachedFile(l.cache, l.fs, segName(l.dir, base, ".log"), os.O_RDWR|os.O_APPEND)
	ns.oidx = newCachedFile(l.cache, l.fs, segName(l.dir, base, ".index"), os.O_RDWR|os.O_APPEND|os.O_CREATE)
	ns.tidx = newCachedFile(l.cache, l.fs, segName(l.dir, base, ".timeindex"), os.O_RDWR|os.O_APPEND|os.O_CREATE)
	ns.refs.Store(1)
	ns.trusted = true
	l.mu.Lock()
	segs := make([]*segment, 0, len(l.segs)-len(group)+1)
	segs = append(segs, l.segs[:i]...)
	segs = append(segs, ns)
	segs = append(segs, l.segs[i+len(group):]...)
	l.segs = segs
	for _, sp := range group {
		l.size -= sp.size
	}
	l.size += ns.size
	l.mu.Unlock()
	// Readers still using an old segment hold its .log open (pinned,
	// as a sendfile does): unlinking keeps their data until they close
	// it. One holding only a reference, whose file the cache closed,
	// cannot reopen it, as after retention.
	var firstErr error
	for _, sp := range group {
		for i, f := range sp.s.files() {
			f.markUnlinked()
			name := segName(l.dir, sp.s.base, segmentExts[i]) + deletedSuffix
			if err := l.fs.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) && firstErr == nil {
				// Left for the next Open to remove: harmless meanwhile.
				firstErr = fmt.Errorf("removing %s: %w", name, err)
			}
		}
		sp.s.release()
	}
	l.dirDirty = true
	if invariants.Enabled {
		l.assertCleaned(ns, group[0].s.base, group[len(group)-1].next)
	}
	return firstErr
}

// renameToSwap is step 2. If it fails, the .swap and .cleaned files are
// removed again (durably): the old segments were not touched, and the log
// goes on as it was. Only if that fails too is the log poisoned, since a
// .swap left behind would be completed by the next Open over whatever
// the log holds by then.
func (l *Log) renameToSwap(base int64) error {
	err := func() error {
		for _, ext := range segmentExts {
			from := segName(l.dir, base, ext+cleanedSuffix)
			if err := l.fs.Rename(from, segName(l.dir, base, ext+swapSuffix)); err != nil {
				return err
			}
		}
		return l.fs.SyncDir(l.dir)
	}()
	if err == nil {
		return nil
	}
	err = fmt.Errorf("swapping in cleaned segment %d of %s: renaming to .swap: %w", base, l.dir, err)
	var undo []error
	for _, ext := range segmentExts {
		for _, suffix := range []string{swapSuffix, cleanedSuffix} {
			if rerr := l.fs.Remove(segName(l.dir, base, ext+suffix)); rerr != nil && !errors.Is(rerr, fs.ErrNotExist) {
				undo = append(undo, rerr)
			}
		}
	}
	if len(undo) == 0 {
		undo = append(undo, l.fs.SyncDir(l.dir))
	}
	if uerr := errors.Join(undo...); uerr != nil {
		return l.poison(fmt.Errorf("%w; removing the .swap files: %w", err, uerr))
	}
	return err
}

// renameTo renames the file and makes it reopen by the new name; openMu
// keeps a reopen from running between the two.
func (cf *cachedFile) renameTo(fsys FS, to string) error {
	cf.openMu.Lock()
	defer cf.openMu.Unlock()
	if err := fsys.Rename(cf.name, to); err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		// An index file never created: nothing to move, but it must
		// not be created under the old name, which is the new
		// segment's now.
	}
	cf.name = to
	return nil
}

// completeSwaps settles what an interrupted swap left in the directory,
// before Open loads the segments: .cleaned files go (the swap had not
// begun), every .log.swap replaces the segments in its offset range,
// .deleted files go (their replacement is in place). It returns the
// directory's names afterwards.
func completeSwaps(fsys FS, dir string, names []string, logf func(msg string, args ...any)) ([]string, error) {
	has := func(suffix string) bool {
		for _, n := range names {
			if strings.HasSuffix(n, suffix) {
				return true
			}
		}
		return false
	}
	if !has(cleanedSuffix) && !has(swapSuffix) && !has(deletedSuffix) {
		return names, nil
	}
	remove := func(name string) error {
		if err := fsys.Remove(filepath.Join(dir, name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("removing %s in %s: %w", name, dir, err)
		}
		return nil
	}
	var logBases, swapBases []int64
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, cleanedSuffix):
			if err := remove(n); err != nil {
				return nil, err
			}
		case strings.HasSuffix(n, ".log"+swapSuffix):
			if b, ok := parseBase(strings.TrimSuffix(n, ".log"+swapSuffix)); ok {
				swapBases = append(swapBases, b)
			}
		case strings.HasSuffix(n, ".log"):
			if b, ok := parseBase(strings.TrimSuffix(n, ".log")); ok {
				logBases = append(logBases, b)
			}
		}
	}
	sort.Slice(swapBases, func(i, j int) bool { return swapBases[i] < swapBases[j] })
	for _, b := range swapBases {
		end, err := swapEnd(fsys, segName(dir, b, ".log"+swapSuffix))
		if err != nil {
			return nil, err
		}
		logf("completing an interrupted swap of a cleaned segment", "dir", dir, "segment", b, "next_offset", end)
		for _, ob := range logBases {
			if ob >= b && ob < end {
				for _, ext := range segmentExts {
					if err := remove(filepath.Base(segName(dir, ob, ext))); err != nil {
						return nil, err
					}
				}
			}
		}
		if err := fsys.SyncDir(dir); err != nil {
			return nil, fmt.Errorf("fsync dir %s: %w", dir, err)
		}
		for _, ext := range segmentExts {
			name := segName(dir, b, ext)
			if err := fsys.Rename(name+swapSuffix, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("completing swap of %s: %w", name, err)
			}
		}
	}
	var err error
	if names, err = fsys.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("listing log dir %s: %w", dir, err)
	}
	for _, n := range names {
		switch {
		case strings.HasSuffix(n, deletedSuffix):
			err = remove(n)
		case strings.HasSuffix(n, swapSuffix):
			// An index whose .log swap completed or never began: which,
			// the names cannot tell, so the segment's index goes too and
			// recovery rebuilds it from the .log.
			stem := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(n, swapSuffix), ".index"), ".timeindex")
			err = errors.Join(remove(n), remove(stem+".index"), remove(stem+".timeindex"))
		}
		if err != nil {
			return nil, err
		}
	}
	if err := fsys.SyncDir(dir); err != nil {
		return nil, fmt.Errorf("fsync dir %s: %w", dir, err)
	}
	if names, err = fsys.ReadDir(dir); err != nil {
		return nil, fmt.Errorf("listing log dir %s: %w", dir, err)
	}
	return names, nil
}

func parseBase(stem string) (int64, bool) {
	b, err := strconv.ParseInt(stem, 10, 64)
	return b, err == nil && len(stem) == 20 && b >= 0
}

// swapEnd returns the offset after the last batch of the segment file
// name, reading only headers (the file was fsynced whole before it was
// named .swap).
func swapEnd(fsys FS, name string) (int64, error) {
	f, err := fsys.OpenFile(name, os.O_RDONLY, 0)
	if err != nil {
		return 0, fmt.Errorf("opening %s: %w", name, err)
	}
	defer f.Close()
	size, err := f.Size()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", name, err)
	}
	var buf [BatchHeaderSize]byte
	end := int64(-1)
	for pos := int64(0); pos+BatchHeaderSize <= size; {
		if n, _ := f.ReadAt(buf[:], pos); n < BatchHeaderSize {
			break
		}
		h := parseHeader(buf[:])
		if h.Length < minBatchLength || pos+int64(h.Size()) > size {
			break
		}
		end = h.LastOffset() + 1
		pos += int64(h.Size())
	}
	if end < 0 {
		return 0, fmt.Errorf("%s holds no batch: cannot complete its swap: %w", name, ErrCorruptBatch)
	}
	return end, nil
}
