package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"path/filepath"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// ErrOffsetOutOfRange is returned for reads outside [StartOffset, EndOffset].
var ErrOffsetOutOfRange = errors.New("offset out of range")

// ErrLogClosed is returned by operations on a closed or deleted log.
var ErrLogClosed = errors.New("log closed")

// Config holds the per-partition log settings (the topic-level overrides of
// the broker's log.* settings).
type Config struct {
	SegmentBytes                  int64 // log.segment.bytes
	SegmentMs                     int64 // log.roll.ms (0 = never by age)
	IndexIntervalBytes            int   // log.index.interval.bytes (4096)
	RetentionBytes                int64 // -1 = unlimited
	RetentionMs                   int64 // -1 = unlimited
	FlushIntervalMessages         int64 // fsync after this many messages (0 = never by count)
	FlushIntervalMs               int64 // used by the caller's background flusher
	MessageTimestampLogAppendTime bool  // handled by the caller, kept for completeness
	// CheckpointIntervalMs is log.flush.offset.checkpoint.interval.ms: the
	// least time between two recovery-point checkpoint writes by Flush (0 =
	// at every flush that advanced it). A stale recovery point costs only
	// re-validation at the next start; writing it costs three fsyncs, which
	// would triple the cost of fsync-per-message topics.
	CheckpointIntervalMs int64
	// OnPoisoned, when set, is called once when the log becomes poisoned
	// (see ErrLogPoisoned), with the error that says why; the log then
	// does not log it itself. It may run with the log's locks held and
	// must not call the Log. Only the value given to Open counts.
	OnPoisoned func(err error)
}

func (c Config) withDefaults() Config {
	if c.SegmentBytes <= 0 {
		c.SegmentBytes = 1 << 30
	}
	// Index positions are uint32; staying below 2 GiB also keeps every
	// position a valid int32 for tools that expect Kafka's limits.
	c.SegmentBytes = min(c.SegmentBytes, math.MaxInt32)
	if c.IndexIntervalBytes <= 0 {
		c.IndexIntervalBytes = 4096
	}
	return c
}

// AppendInfo describes a successful append.
type AppendInfo struct {
	// FirstOffset is the first batch's base offset, LastOffset the last
	// batch's last offset. They differ from the old log end and the new
	// one minus one only for a follower's batches after a gap (see
	// AppendAsFollower).
	FirstOffset, LastOffset int64
	LogAppendTime           int64 // -1 unless the batches were stamped
	LogStartOffset          int64
}

// FileRange is a contiguous piece of a segment file.
type FileRange struct {
	File           File
	Offset, Length int64
}

// ReadResult is the outcome of Read: file ranges to send in order. The
// files stay open until Release, even if the segments are deleted meanwhile.
type ReadResult struct {
	Ranges []FileRange // contiguous file pieces to send in order
	Bytes  int64       // sum of lengths
	// Next is the offset after the last batch returned, or, when a gap
	// of a compacted log follows it, the base offset of the batch that
	// stopped the read (the read's offset when none is returned): what a
	// consumer's position becomes once it read them.
	Next    int64
	release func()
}

// Release drops the references taken by Read. It must be called once the
// ranges were sent; extra calls are harmless.
func (r *ReadResult) Release() {
	if r.release != nil {
		r.release()
		r.release = nil
	}
}

// Log is the log of one partition. It is safe for concurrent use by one
// appender (Append and the other mutators are serialized internally, and
// the caller is expected to serialize Append anyway) and many readers.
type Log struct {
	fs     FS
	cache  *FileCache // where the segments' files are kept open
	dir    string
	now    func() time.Time
	logger *slog.Logger

	// appendMu serializes mutators: Append, Flush's bookkeeping, retention,
	// truncation, SetConfig, Close. mu guards what readers look at;
	// mutators take it (exclusively) only to publish changes, so file I/O
	// of appends happens without blocking readers.
	appendMu sync.Mutex
	mu       sync.RWMutex
	flushMu  sync.Mutex // one Flush at a time
	lastCkpt time.Time  // when Flush last wrote the checkpoints; flushMu
	ckptMu   sync.Mutex // checkpoint file writes

	segs          []*segment // mu; ascending base, last is active
	start         int64      // mu
	leo           int64      // mu
	recoveryPoint int64      // mu
	size          int64      // mu
	closed        bool       // mu
	deleted       bool       // mu
	gaps          []Gap      // set by Open, read-only after

	cfg           Config // appendMu
	maxIndex      int    // appendMu: offset/time index byte cap (tests lower it)
	unflushedMsgs int64  // appendMu
	truncGen      uint64 // appendMu: bumped when the log end moves backwards
	dirDirty      bool   // appendMu: directory entries changed since SyncDir
	// newDir: Open found no segment and created the first one without
	// syncing it or the directory (see finishOpen). Its entries become
	// due (as dirDirty) at the first flush that has data to sync. appendMu.
	newDir bool
	// parentDue: the log's own directory may be new, and its entry in
	// the parent (the log dir) was never synced. The first flush with
	// data syncs the parent too (Kafka's LocalLog flushes the parent dir
	// at its first flush): records it made durable must not be lost with
	// the directory that holds them. appendMu.
	parentDue bool

	// ckptStart and ckptRP are what the checkpoint files say (an absent
	// file says 0), -1 when unknown; ckptMu. A write of the same values
	// is skipped: the files already say them.
	ckptStart, ckptRP int64

	poisonErr atomic.Pointer[error] // set once; see ErrLogPoisoned
	onPoison  func(error)           // Config.OnPoisoned as given to Open
}

// StartOffset is the first offset that may be read.
func (l *Log) StartOffset() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.start }

// EndOffset is the log end offset (LEO): the offset the next record gets.
func (l *Log) EndOffset() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.leo }

// RecoveryPoint is the offset below which everything is fsynced.
func (l *Log) RecoveryPoint() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.recoveryPoint }

// Size is the total size of all segment files.
func (l *Log) Size() int64 { l.mu.RLock(); defer l.mu.RUnlock(); return l.size }

// NumSegments is the number of segments, including the active one.
func (l *Log) NumSegments() int { l.mu.RLock(); defer l.mu.RUnlock(); return len(l.segs) }

// Dir is the partition directory.
func (l *Log) Dir() string { return l.dir }

// SetConfig applies changed topic settings to subsequent operations.
func (l *Log) SetConfig(cfg Config) {
	l.appendMu.Lock()
	l.cfg = cfg.withDefaults()
	l.appendMu.Unlock()
}

func (l *Log) active() *segment { return l.segs[len(l.segs)-1] }

// Append assigns consecutive offsets from the log end to the batches
// (already validated into headers), rewrites their base offset, leader
// epoch and, if appendTime >= 0, their timestamp type and max timestamp in
// place, and writes them to the active segment, rolling it first when
// needed. headers are updated to match the rewritten batches.
func (l *Log) Append(batches []byte, headers []BatchHeader, leaderEpoch int32, appendTime int64) (AppendInfo, error) {
	info, flush, err := l.append(batches, headers, leaderEpoch, appendTime)
	if err == nil && flush {
		err = l.Flush()
	}
	return info, err
}

func (l *Log) append(batches []byte, headers []BatchHeader, leaderEpoch int32, appendTime int64) (AppendInfo, bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	info, err := l.appendInfo("append", batches, headers)
	if err != nil {
		return info, false, err
	}
	if appendTime >= 0 {
		info.LogAppendTime = appendTime
	}
	next := info.FirstOffset
	var msgs int64
	pos := 0
	for i := range headers {
		h := &headers[i]
		b := batches[pos : pos+h.Size()]
		SetBaseOffset(b, next)
		SetPartitionLeaderEpoch(b, leaderEpoch)
		h.BaseOffset, h.PartitionLeaderEpoch = next, leaderEpoch
		if appendTime >= 0 {
			SetMaxTimestampLogAppendTime(b, appendTime)
			*h = parseHeader(b) // attributes, max timestamp and CRC changed
		}
		next = h.LastOffset() + 1
		msgs += int64(h.NumRecords)
		pos += h.Size()
	}
	info.LastOffset = next - 1
	return l.write(batches, headers, info, msgs, leaderEpoch)
}

// appendInfo starts an append of batches described by headers (appendMu
// held): it refuses on a poisoned or closed log and checks that headers
// cover batches exactly. The result's offsets describe an empty append at
// the log end.
func (l *Log) appendInfo(op string, batches []byte, headers []BatchHeader) (AppendInfo, error) {
	if err := l.refuse(op); err != nil {
		return AppendInfo{}, err
	}
	l.mu.RLock()
	closed, next, start := l.closed, l.leo, l.start
	l.mu.RUnlock()
	if closed {
		return AppendInfo{}, ErrLogClosed
	}
	info := AppendInfo{FirstOffset: next, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: start}
	total := 0
	for i := range headers {
		total += headers[i].Size()
	}
	if total != len(batches) || len(headers) == 0 {
		return info, fmt.Errorf("%s to %s: headers describe %d bytes, have %d: %w", op, l.dir, total, len(batches), ErrCorruptBatch)
	}
	return info, nil
}

// write puts batches (offsets info.FirstOffset..info.LastOffset, msgs
// records, headers final) at the end of the active segment, rolling it
// first when needed, and publishes them; appendMu held. leaderEpoch is
// what every batch is stamped with, or verbatimEpoch for a follower's
// batches, which keep the leader's. It reports whether the flush interval
// asks for a flush.
func (l *Log) write(batches []byte, headers []BatchHeader, info AppendInfo, msgs int64, leaderEpoch int32) (AppendInfo, bool, error) {
	seg := l.active()
	// The log end; a follower's first batch may start above it, past a
	// gap its compacted leader has.
	l.mu.RLock()
	leo := l.leo
	l.mu.RUnlock()
	now := l.now()
	// A new segment starts at the log end even after a gap, so the one
	// before it ends where it begins: recovery reports any offsets
	// between two segments as lost (recordHoles). Only a gap too wide for
	// 32-bit relative offsets forces the segment to start at the batch;
	// a leader whose segments span fewer offsets never sends one.
	base := leo
	tooWide := info.LastOffset-seg.base > math.MaxUint32
	if info.LastOffset-leo > math.MaxUint32 {
		base = headers[0].BaseOffset
	}
	if (seg.size > 0 && (seg.size+int64(len(batches)) > l.cfg.SegmentBytes || l.rollDue(seg, now) ||
		seg.indexFull(len(headers), info.LastOffset, int64(len(batches)), l.maxIndex))) || tooWide {
		var err error
		if seg, err = l.roll(base, now); err != nil {
			return info, false, l.settle(err)
		}
	}

	var size0 int64
	if invariants.Enabled {
		// The segment ends at the log end, unless a too wide gap made it
		// start at the batch.
		l.assertAppendPlan(seg, headers, max(leo, seg.base), leaderEpoch)
		size0 = seg.size
	}

	if n, err := seg.log.Write(batches); err != nil {
		err = fmt.Errorf("append to segment %d in %s: %w", seg.base, l.dir, err)
		// Cut off whatever part was written so the file matches seg.size
		// again: then nothing of the log changed and the append may be
		// retried (a full disk fails writes with nothing written until
		// space is freed, and the broker reports the log dir failing
		// meanwhile). If the cut fails, the file's length is unknown.
		if n > 0 {
			if terr := seg.log.Truncate(seg.size); terr != nil {
				return info, false, l.poison(fmt.Errorf("%w; cutting the torn write off: %w", err, terr))
			}
		}
		return info, false, err
	}

	l.mu.Lock()
	p := seg.size
	for i := range headers {
		seg.track(headers[i], p, l.cfg.IndexIntervalBytes)
		p += int64(headers[i].Size())
	}
	seg.lastAppend = now.UnixMilli()
	l.leo = info.LastOffset + 1
	l.size += int64(len(batches))
	l.mu.Unlock()
	seg.dirtyGen++
	l.unflushedMsgs += msgs
	flush := l.cfg.FlushIntervalMessages > 0 && l.unflushedMsgs >= l.cfg.FlushIntervalMessages
	if invariants.Enabled {
		l.assertAppended(seg, info, leo, size0, len(batches))
	}
	return info, flush, nil
}

// mutable refuses the mutation op on a closed log (ErrLogClosed) or a
// poisoned one; appendMu held.
func (l *Log) mutable(op string) error {
	l.mu.RLock()
	closed := l.closed
	l.mu.RUnlock()
	if closed {
		return ErrLogClosed
	}
	return l.refuse(op)
}

// rollDue reports whether seg is older than segment.ms (appendMu held).
func (l *Log) rollDue(seg *segment, now time.Time) bool {
	return l.cfg.SegmentMs > 0 && now.Sub(seg.created) >= time.Duration(l.cfg.SegmentMs)*time.Millisecond
}

// RollIfDue rolls the active segment when it holds data and is older than
// segment.ms (Config.SegmentMs), starting an empty one at the log end; it
// reports whether it rolled. Appends roll by age too, but only when one
// comes: a partition that stopped receiving writes would keep its last
// data in the active segment, which retention never deletes and the
// cleaner never cleans, so the broker calls this periodically. An empty
// active segment, or SegmentMs 0, is left alone. It takes the mutators'
// lock, as Append does; readers are blocked only while the new segment is
// published. On a closed log it returns ErrLogClosed, on a poisoned one
// the poison.
func (l *Log) RollIfDue(now time.Time) (rolled bool, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.mutable("roll"); err != nil {
		return false, err
	}
	seg := l.active()
	if seg.size == 0 || !l.rollDue(seg, now) {
		return false, nil
	}
	if _, err := l.roll(seg.next, now); err != nil {
		return false, l.settle(err)
	}
	if invariants.Enabled {
		l.assertInvariants("roll")
	}
	return true, nil
}

// roll closes the active segment for appends and starts a new one at base.
func (l *Log) roll(base int64, now time.Time) (*segment, error) {
	old := l.active()
	// A final time index entry lets timestamp lookups skip the whole
	// segment via the index rather than scanning its tail.
	l.mu.Lock()
	old.addTimeEntry()
	l.mu.Unlock()
	if err := old.persistIndexes(); err != nil {
		return nil, err
	}
	seg, err := openSegment(l.fs, l.cache, l.dir, base, true)
	if err != nil {
		return nil, err
	}
	seg.created = now
	seg.lastAppend = now.UnixMilli()
	seg.dirtyGen++ // the empty files must be synced (and the dir) before they count
	seg.idxGen++
	l.dirDirty = true
	l.mu.Lock()
	l.segs = append(l.segs, seg)
	l.mu.Unlock()
	return seg, nil
}

// Flush fsyncs everything appended so far and advances and persists the
// recovery point. The fsyncs run without blocking Append. A failed fsync
// poisons the log (see ErrLogPoisoned); the recovery point then never
// moves again.
func (l *Log) Flush() error {
	l.flushMu.Lock()
	defer l.flushMu.Unlock()

	type todo struct {
		seg         *segment
		gen, idxGen uint64
		indexes     bool
	}
	l.appendMu.Lock()
	ckptEvery := time.Duration(l.cfg.CheckpointIntervalMs) * time.Millisecond
	l.mu.RLock()
	closed, leo, segs := l.closed, l.leo, l.segs
	l.mu.RUnlock()
	if closed {
		l.appendMu.Unlock()
		return nil
	}
	if err := l.refuse("flush"); err != nil {
		l.appendMu.Unlock()
		return err
	}
	var work []todo
	for _, s := range segs {
		if err := s.persistIndexes(); err != nil {
			err = l.settle(err)
			l.appendMu.Unlock()
			for _, w := range work {
				w.seg.release()
			}
			return err
		}
		if s.dirtyGen != s.syncedGen {
			s.acquire()
			work = append(work, todo{s, s.dirtyGen, s.idxGen, s.idxGen != s.idxSyncedGen})
		}
	}
	// A new log's first segment and directory entries matter from the
	// first data on: until then a crash that loses them loses nothing
	// (Open recreates the same empty segment).
	gen, dirDirty := l.truncGen, l.dirDirty || (l.newDir && len(work) > 0)
	parentDue := l.parentDue && len(work) > 0
	l.dirDirty = false
	if dirDirty {
		l.newDir = false
	}
	l.unflushedMsgs = 0
	l.appendMu.Unlock()

	var err error
	for _, w := range work {
		if err == nil {
			err = w.seg.sync(w.indexes)
		}
		w.seg.release()
	}
	if err == nil && dirDirty {
		if err = l.fs.SyncDir(l.dir); err != nil {
			err = syncFailed(fmt.Errorf("fsync dir %s: %w", l.dir, err))
		}
	}
	if parent := filepath.Dir(l.dir); err == nil && parentDue {
		if err = l.fs.SyncDir(parent); err != nil {
			err = syncFailed(fmt.Errorf("fsync dir %s: %w", parent, err))
		}
	}
	l.appendMu.Lock()
	if err == nil && parentDue {
		l.parentDue = false
	}
	if err != nil {
		// A failed fsync poisons: the pages it could not write may be
		// gone, and a retry would succeed over them (see ErrLogPoisoned).
		l.dirDirty = l.dirDirty || dirDirty
		err = l.settle(err)
		l.appendMu.Unlock()
		return err
	}
	for _, w := range work {
		w.seg.syncedGen = max(w.seg.syncedGen, w.gen)
		if w.indexes {
			w.seg.idxSyncedGen = max(w.seg.idxSyncedGen, w.idxGen)
		}
	}
	if err := l.refuse("flush"); err != nil {
		// Poisoned meanwhile: the recovery point stays where it is.
		l.appendMu.Unlock()
		return err
	}
	advanced := false
	if gen == l.truncGen {
		l.mu.Lock()
		if leo > l.recoveryPoint {
			l.recoveryPoint, advanced = leo, true
		}
		l.mu.Unlock()
	}
	if invariants.Enabled {
		l.assertInvariants("flush")
	}
	l.appendMu.Unlock()
	if now := l.now(); advanced && (ckptEvery <= 0 || now.Sub(l.lastCkpt) >= ckptEvery) {
		l.lastCkpt = now
		return l.settle(l.writeCheckpoints())
	}
	return nil
}

// Close flushes, persists the checkpoints and closes the files (each as
// soon as no ReadResult uses it any more).
func (l *Log) Close() error {
	err := l.Flush()
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return err
	}
	l.closed = true
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	if err == nil {
		err = l.settle(l.writeCheckpoints())
	}
	for _, s := range segs {
		s.release()
	}
	return err
}

// Delete closes the log without flushing and removes its directory.
func (l *Log) Delete() error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.Lock()
	wasClosed := l.closed
	l.closed, l.deleted = true, true
	segs := l.segs
	l.segs = nil
	l.mu.Unlock()
	if !wasClosed {
		for _, s := range segs {
			s.release()
		}
	}
	if err := l.fs.RemoveAll(l.dir); err != nil {
		return fmt.Errorf("deleting log %s: %w", l.dir, err)
	}
	return nil
}

// findSegment returns the index of the segment that contains off: the
// last one whose base is <= off (mu held).
func (l *Log) findSegment(off int64) int {
	return max(sort.Search(len(l.segs), func(i int) bool { return l.segs[i].base > off })-1, 0)
}

func (l *Log) checkRange(off int64) error {
	if l.closed {
		return ErrLogClosed
	}
	if off < l.start || off > l.leo {
		return fmt.Errorf("offset %d outside [%d, %d] of %s: %w", off, l.start, l.leo, l.dir, ErrOffsetOutOfRange)
	}
	return nil
}
