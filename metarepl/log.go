package metarepl

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/segment"
)

// File names inside a Log's directory. newLogFile is the log being
// rewritten (TrimTo, TruncateFullyAndStartAt, a version 1 upgrade) until it
// is renamed over logFile; one left by a crash is removed on open.
const (
	logFile    = "metadata.log"
	newLogFile = "metadata.log.new"
	epochsFile = "leader-epochs"
	hwFile     = "high-watermark"
)

// Errors of a Log.
var (
	// ErrCorrupt: the log holds a bad frame before its end, or frames out
	// of order. It is never repaired silently; an operator must look.
	ErrCorrupt = errors.New("metarepl: metadata log corrupt")
	// ErrCommittedLost: the log ends below its persisted high watermark,
	// so records this node knew committed are gone.
	ErrCommittedLost = errors.New("metarepl: metadata log ends below its high watermark")
	// ErrNotBatchStart: an offset inside a batch; the log is read and
	// truncated at batch boundaries only. It wraps OFFSET_OUT_OF_RANGE.
	ErrNotBatchStart = fmt.Errorf("metarepl: offset inside a batch: %w", kerr.OffsetOutOfRange)
)

// span is where one batch lies in the log file.
type span struct {
	offset, end int64
	epoch       int32
	checkpoint  bool
	pos         int64
	size        int64
}

// Log is the durable metadata log of one node: batches in one file, each
// fsynced before Append returns; the leader-epoch cache; the high
// watermark. Everything it reports (End, the epochs, reads) is durable. It
// is safe for concurrent use. A failed write or fsync breaks it: every
// later call fails, and the node must reopen it (what was not fsynced may
// or may not be there).
type Log struct {
	mu    sync.Mutex
	fs    segment.FS
	dir   string
	f     segment.File
	start int64 // the log start offset: the file's first batch, or its end when empty
	// hdrLen is the file's header length and version its frame version
	// (always 2 once open: a version 1 file is rewritten on open).
	hdrLen  int64
	version int
	index   []span
	ckpts   []int64 // offsets of the checkpoint batches in index
	size    int64   // file bytes, all durable
	entries []isr.EpochEntry
	hw      int64 // max(persisted high watermark, start)
	hwFile  hwState
	broken  error
}

// OpenLog opens (creating it if absent) the metadata log in dir. A torn
// last frame, which a crash leaves of an append that was never fsynced and
// so never reported, is cut off; a bad frame before the end is ErrCorrupt;
// a log ending below its persisted high watermark is ErrCommittedLost.
func OpenLog(fsys segment.FS, dir string) (*Log, error) {
	if err := fsys.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("metarepl: create %s: %w", dir, err)
	}
	l := &Log{fs: fsys, dir: dir}
	// A rewrite a crash interrupted: either it was never renamed (the log
	// file is the old one) or it was (the name is gone). Not needed either way.
	if err := fsys.Remove(filepath.Join(dir, newLogFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("metarepl: remove %s: %w", newLogFile, err)
	}
	path := filepath.Join(dir, logFile)
	f, err := fsys.OpenFile(path, os.O_RDWR|os.O_APPEND, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		f, err = l.create(path)
	}
	if err != nil {
		return nil, fmt.Errorf("metarepl: open %s: %w", path, err)
	}
	l.f = f
	if err := l.load(); err != nil {
		f.Close()
		return nil, err
	}
	return l, nil
}

// create makes an empty log file: the header is fsynced before the
// directory, so a file that survives a crash always has it.
func (l *Log) create(path string) (segment.File, error) {
	f, err := l.fs.OpenFile(path, os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, err
	}
	if _, err := f.Write(appendHeader(nil, 0)); err != nil {
		f.Close()
		return nil, err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return nil, err
	}
	if err := l.fs.SyncDir(l.dir); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// load scans the file, cuts a torn tail, reads the epoch cache and the
// high watermark, and rewrites a version 1 file as version 2.
func (l *Log) load() error {
	path := filepath.Join(l.dir, logFile)
	size, err := l.f.Size()
	if err != nil {
		return fmt.Errorf("metarepl: size of %s: %w", path, err)
	}
	data := make([]byte, size)
	if _, err := l.f.ReadAt(data, 0); err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("metarepl: read %s: %w", path, err)
	}
	start, hdrLen, version, err := parseHeader(data)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrCorrupt, path, err)
	}
	l.start, l.hdrLen, l.version = start, hdrLen, version
	pos, next := hdrLen, start
	for pos < size {
		rest := data[pos:]
		b, n, err := decodeFrame(rest, version)
		if err != nil {
			if torn(rest, err) {
				break
			}
			return fmt.Errorf("%w: %s at byte %d (offset %d): %w", ErrCorrupt, path, pos, next, err)
		}
		if b.Offset != next {
			return fmt.Errorf("%w: %s at byte %d: batch at offset %d, expected %d", ErrCorrupt, path, pos, b.Offset, next)
		}
		if k := len(l.index); k > 0 && b.Epoch < l.index[k-1].epoch {
			return fmt.Errorf("%w: %s at offset %d: epoch %d after %d", ErrCorrupt, path, b.Offset, b.Epoch, l.index[k-1].epoch)
		}
		l.index = append(l.index, span{offset: b.Offset, end: b.End(), epoch: b.Epoch, checkpoint: b.Checkpoint, pos: pos, size: int64(n)})
		if b.Checkpoint {
			l.ckpts = append(l.ckpts, b.Offset)
		}
		pos += int64(n)
		next = b.End()
	}
	if pos < size {
		// The torn tail was never fsynced, so never reported: cut it, durably,
		// before anything is appended after it.
		if err := l.f.Truncate(pos); err != nil {
			return fmt.Errorf("metarepl: cut torn tail of %s at byte %d: %w", path, pos, err)
		}
		if err := l.f.Sync(); err != nil {
			return fmt.Errorf("metarepl: fsync %s: %w", path, err)
		}
	}
	l.size = pos
	if l.hwFile, l.hw, err = readHW(l.fs, filepath.Join(l.dir, hwFile)); err != nil {
		return err
	}
	if l.hw > l.endLocked() {
		return fmt.Errorf("%w: %s ends at %d, high watermark %d", ErrCommittedLost, path, l.endLocked(), l.hw)
	}
	// Everything below the start was committed (see TrimTo and
	// TruncateFullyAndStartAt), which a high watermark written before the
	// start moved may not say yet.
	l.hw = max(l.hw, l.start)
	persisted, err := readEpochs(l.fs, filepath.Join(l.dir, epochsFile))
	if err != nil {
		return err
	}
	l.entries = l.derivedEntries(persisted)
	if l.version < frameV2 {
		// Upgrade: every frame this Log writes is version 2.
		if err := l.rewriteLocked(l.start, 0); err != nil {
			return fmt.Errorf("metarepl: upgrade %s to version 2: %w", path, err)
		}
	}
	return nil
}

// torn says whether a bad frame at the start of rest is a torn tail: it is
// cut short, or it is the last frame (its declared length reaches the end
// exactly), or everything from it on is zeros (a file extended but not
// written). A bad frame with another one after it is corruption.
func torn(rest []byte, err error) bool {
	if errors.Is(err, errShortFrame) {
		return true
	}
	if n, lerr := frameLen(rest); lerr == nil && n == len(rest) {
		return true
	}
	return !slices.ContainsFunc(rest, func(c byte) bool { return c != 0 })
}

// derivedEntries is the epoch cache: an entry for each epoch's first batch
// in the log, plus the last persisted entry if it starts at the log end in
// a newer epoch (a takeover cached before any append, or whose appends a
// crash lost).
func (l *Log) derivedEntries(persisted []isr.EpochEntry) []isr.EpochEntry {
	var out []isr.EpochEntry
	for _, s := range l.index {
		if len(out) == 0 || out[len(out)-1].Epoch != s.epoch {
			out = append(out, isr.EpochEntry{Epoch: s.epoch, StartOffset: s.offset})
		}
	}
	if k := len(persisted); k > 0 {
		last := persisted[k-1]
		if last.StartOffset == l.endLocked() && (len(out) == 0 || last.Epoch > out[len(out)-1].Epoch) {
			out = assign(out, last)
		}
	}
	return out
}

// assign adds e to the cache as Kafka's LeaderEpochFileCache.assign does:
// entries starting at or after it go.
func assign(entries []isr.EpochEntry, e isr.EpochEntry) []isr.EpochEntry {
	entries = slices.DeleteFunc(entries, func(x isr.EpochEntry) bool { return x.StartOffset >= e.StartOffset })
	return append(entries, e)
}

func (l *Log) endLocked() int64 {
	if len(l.index) == 0 {
		return l.start
	}
	return l.index[len(l.index)-1].end
}

// End is the durable log end offset: the offset the next batch gets.
func (l *Log) End() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.endLocked()
}

// StartOffset is the log start offset: the offset of its first batch (a
// checkpoint batch once trimmed), or its end when it is empty. Reads below
// it fail with OFFSET_OUT_OF_RANGE.
func (l *Log) StartOffset() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.start
}

// HighWatermark is the persisted high watermark, or the log start offset
// if that is higher: everything below the start is committed.
func (l *Log) HighWatermark() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.hw
}

// EpochEntries is the leader-epoch cache.
func (l *Log) EpochEntries() []isr.EpochEntry {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.entries)
}

// LatestEpoch is the newest epoch in the cache, isr.UndefinedEpoch if none.
func (l *Log) LatestEpoch() int32 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latestLocked()
}

func (l *Log) latestLocked() int32 {
	if len(l.entries) == 0 {
		return isr.UndefinedEpoch
	}
	return l.entries[len(l.entries)-1].Epoch
}

// EndOffsetFor answers "where does epoch e end" over the cache and the
// durable end (an isr.EpochLookup, for metalog.Leader.Fetch). On a trimmed
// log the cache starts at the log start, so an epoch older than the first
// batch's has no answer (isr.UndefinedEpoch, which a fetch answers with
// OFFSET_OUT_OF_RANGE): the log no longer shows where it ended, and a
// fetcher with records of it past the start holds records that differ from
// the committed ones, perhaps below the start too. It must start over at
// the start (see beforeStart), as KRaft sends a snapshot then.
func (l *Log) EndOffsetFor(e int32) (int32, int64) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if beforeStart(e, l.start, l.startEpochLocked()) {
		return isr.UndefinedEpoch, isr.UndefinedEpochOffset
	}
	r := isr.EndOffsetFor(l.entries, e, l.endLocked())
	return r.Epoch, r.EndOffset
}

// startEpochLocked is the first epoch in the cache of a trimmed log (the
// epoch of its first batch, or of a takeover at the start of an empty
// one), isr.UndefinedEpoch on a log starting at 0 or without epochs.
func (l *Log) startEpochLocked() int32 {
	if l.start == 0 || len(l.entries) == 0 {
		return isr.UndefinedEpoch
	}
	return l.entries[0].Epoch
}

// beforeStart says whether a fetcher whose last fetched epoch is epoch must
// drop its log and start at the leader's log start: the leader's log
// starts past 0 and epoch is older than its first (unknown, if it has
// none). The leader's EndOffsetFor and the follower's reset both use it.
func beforeStart(epoch int32, start int64, startEpoch int32) bool {
	return start > 0 && epoch != isr.UndefinedEpoch && (startEpoch == isr.UndefinedEpoch || epoch < startEpoch)
}

// Local is the durable log as a metalog.Follower sees it.
func (l *Log) Local() isr.LocalLog {
	l.mu.Lock()
	defer l.mu.Unlock()
	return isr.LocalLog{LogEndOffset: l.endLocked(), HighWatermark: l.hw, LatestEpoch: l.latestLocked()}
}

// Append writes batches at the log end and fsyncs them; only then does it
// return, and only then do End, reads and the epoch cache include them.
// The batches must be contiguous from End with epochs that never go back.
func (l *Log) Append(batches ...Batch) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	next, epoch := l.endLocked(), l.latestLocked()
	var buf []byte
	for _, b := range batches {
		if b.Offset != next {
			return fmt.Errorf("metarepl: append of batch at %d to a log ending at %d", b.Offset, next)
		}
		if b.Epoch < epoch {
			return fmt.Errorf("metarepl: append of epoch %d at %d after epoch %d", b.Epoch, b.Offset, epoch)
		}
		var err error
		if buf, err = appendFrame(buf, b); err != nil {
			return err
		}
		next, epoch = b.End(), b.Epoch
	}
	if len(buf) == 0 {
		return nil
	}
	if _, err := l.f.Write(buf); err != nil {
		return l.breakLocked(fmt.Errorf("metarepl: write %s: %w", logFile, err))
	}
	if err := l.f.Sync(); err != nil {
		return l.breakLocked(fmt.Errorf("metarepl: fsync %s: %w", logFile, err))
	}
	pos := l.size
	for _, b := range batches {
		n := frameSize(b)
		l.index = append(l.index, span{offset: b.Offset, end: b.End(), epoch: b.Epoch, checkpoint: b.Checkpoint, pos: pos, size: n})
		if b.Checkpoint {
			l.ckpts = append(l.ckpts, b.Offset)
		}
		pos += n
		if b.Epoch > l.latestLocked() {
			l.entries = assign(l.entries, isr.EpochEntry{Epoch: b.Epoch, StartOffset: b.Offset})
		}
	}
	l.size = pos
	return nil
}

func frameSize(b Batch) int64 {
	n := int64(frameHeader + bodyFixed)
	for _, r := range b.Records {
		n += 4 + int64(len(r))
	}
	return n
}

// breakLocked marks the log unusable after a failed write or fsync: the
// kernel may have dropped the pages, so a later fsync proves nothing.
func (l *Log) breakLocked(err error) error {
	l.broken = err
	return err
}

// Read returns whole batches from offset from (a batch start or the end)
// that end at or before upTo, stopping once maxBytes of frames are read
// (at least one batch when there is one). None when nothing is there. Each
// frame's checksum is verified again. From outside [start, end] is
// OFFSET_OUT_OF_RANGE.
func (l *Log) Read(from int64, maxBytes int, upTo int64) ([]Batch, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return nil, l.broken
	}
	end := l.endLocked()
	switch {
	case from < l.start || from > end:
		return nil, fmt.Errorf("metarepl: read from %d outside [%d, %d]: %w", from, l.start, end, kerr.OffsetOutOfRange)
	case from == end || from >= upTo:
		return nil, nil
	}
	i := l.find(from)
	if i < 0 {
		return nil, fmt.Errorf("metarepl: read from %d: %w", from, ErrNotBatchStart)
	}
	j, total := i, int64(0)
	for j < len(l.index) && l.index[j].end <= upTo && (j == i || total < int64(maxBytes)) {
		total += l.index[j].size
		j++
	}
	if j == i {
		return nil, nil
	}
	data := make([]byte, total)
	if _, err := l.f.ReadAt(data, l.index[i].pos); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("metarepl: read %s: %w", logFile, err)
	}
	out := make([]Batch, 0, j-i)
	for k := i; k < j; k++ {
		b, n, err := decodeFrame(data, l.version)
		if err != nil {
			return nil, fmt.Errorf("%w: %s at offset %d: %w", ErrCorrupt, logFile, l.index[k].offset, err)
		}
		out = append(out, b)
		data = data[n:]
	}
	return out, nil
}

// find returns the index of the batch starting at offset, or -1.
func (l *Log) find(offset int64) int {
	i := sort.Search(len(l.index), func(i int) bool { return l.index[i].offset >= offset })
	if i < len(l.index) && l.index[i].offset == offset {
		return i
	}
	return -1
}

// Truncate cuts the log to end at offset to (a batch boundary), durably,
// and the epoch cache with it. A cut below the high watermark is refused
// with metalog.ErrCommittedTruncation. The epoch cache is persisted first:
// a crash between the two leaves the records, which the cache is rebuilt
// from, so the node is as before the truncation and will cut again.
func (l *Log) Truncate(to int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	end := l.endLocked()
	switch {
	case to > end || to < l.start:
		return fmt.Errorf("metarepl: truncate to %d outside [%d, %d]", to, l.start, end)
	case to < l.hw:
		return fmt.Errorf("metarepl: truncate to %d, high watermark %d: %w", to, l.hw, metalog.ErrCommittedTruncation)
	}
	i := len(l.index)
	if to < end {
		if i = l.find(to); i < 0 {
			return fmt.Errorf("metarepl: truncate to %d: %w", to, ErrNotBatchStart)
		}
	}
	entries := slices.DeleteFunc(slices.Clone(l.entries), func(e isr.EpochEntry) bool { return e.StartOffset >= to })
	if !slices.Equal(entries, l.entries) {
		if err := writeEpochs(l.fs, filepath.Join(l.dir, epochsFile), entries); err != nil {
			return l.breakLocked(err)
		}
		l.entries = entries
	}
	if to == end {
		return nil
	}
	pos := l.index[i].pos
	if err := l.f.Truncate(pos); err != nil {
		return l.breakLocked(fmt.Errorf("metarepl: truncate %s: %w", logFile, err))
	}
	if err := l.f.Sync(); err != nil {
		return l.breakLocked(fmt.Errorf("metarepl: fsync %s: %w", logFile, err))
	}
	l.index = l.index[:i]
	l.ckpts = slices.DeleteFunc(l.ckpts, func(o int64) bool { return o >= to })
	l.size = pos
	return nil
}

// CacheEpoch records, durably, that epoch starts at the log end: what a
// new leader does after winning a takeover and before any append, so it
// can answer DivergingEpoch for the epochs before it. epoch must be newer
// than every epoch in the cache.
func (l *Log) CacheEpoch(epoch int32) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if last := l.latestLocked(); epoch <= last {
		return fmt.Errorf("metarepl: cache epoch %d after epoch %d", epoch, last)
	}
	entries := assign(slices.Clone(l.entries), isr.EpochEntry{Epoch: epoch, StartOffset: l.endLocked()})
	if err := writeEpochs(l.fs, filepath.Join(l.dir, epochsFile), entries); err != nil {
		return l.breakLocked(err)
	}
	l.entries = entries
	return nil
}

// SetHighWatermark persists a new high watermark; one at or below the
// current is ignored (it never goes back), one past the end refused.
func (l *Log) SetHighWatermark(hw int64) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken != nil {
		return l.broken
	}
	if hw <= l.hw {
		return nil
	}
	if end := l.endLocked(); hw > end {
		return fmt.Errorf("metarepl: high watermark %d past the log end %d", hw, end)
	}
	if err := l.hwFile.write(l.fs, filepath.Join(l.dir, hwFile), hw); err != nil {
		return l.breakLocked(err)
	}
	l.hw = hw
	return nil
}

// brokenErr is why the log is broken, nil while it works.
func (l *Log) brokenErr() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.broken
}

// Close closes the log file.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.broken == nil {
		l.broken = errors.New("metarepl: log closed")
	}
	return l.f.Close()
}
