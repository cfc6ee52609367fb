package segment

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sort"
	"sync"
	"time"
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
	// Next is the offset after the last batch returned (the read's offset
	// when none is): what a consumer's position becomes once it read them.
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
	gaps          []Gap      // set by Open, read-only after

	cfg           Config // appendMu
	maxIndex      int    // appendMu: offset/time index byte cap (tests lower it)
	unflushedMsgs int64  // appendMu
	truncGen      uint64 // appendMu: bumped when the log end moves backwards
	dirDirty      bool   // appendMu: directory entries changed since SyncDir
	failed        error  // appendMu: set when the log can no longer be appended to safely
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
	if l.failed != nil {
		return AppendInfo{}, false, l.failed
	}
	l.mu.RLock()
	closed, next, start := l.closed, l.leo, l.start
	l.mu.RUnlock()
	if closed {
		return AppendInfo{}, false, ErrLogClosed
	}
	info := AppendInfo{FirstOffset: next, LastOffset: next - 1, LogAppendTime: -1, LogStartOffset: start}
	if appendTime >= 0 {
		info.LogAppendTime = appendTime
	}
	total := 0
	for i := range headers {
		total += headers[i].Size()
	}
	if total != len(batches) || len(headers) == 0 {
		return info, false, fmt.Errorf("append to %s: headers describe %d bytes, have %d: %w", l.dir, total, len(batches), ErrCorruptBatch)
	}
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

	seg := l.active()
	now := l.now()
	if seg.size > 0 && (seg.size+int64(len(batches)) > l.cfg.SegmentBytes ||
		(l.cfg.SegmentMs > 0 && now.Sub(seg.created) >= time.Duration(l.cfg.SegmentMs)*time.Millisecond) ||
		seg.indexFull(len(headers), info.LastOffset, int64(len(batches)), l.maxIndex)) {
		var err error
		if seg, err = l.roll(info.FirstOffset, now); err != nil {
			return info, false, err
		}
	}

	if _, err := seg.log.Write(batches); err != nil {
		// Cut off whatever part was written so the file matches seg.size
		// again; if even that fails the log is unusable until reopened.
		if terr := seg.log.Truncate(seg.size); terr != nil {
			l.failed = fmt.Errorf("log %s unusable after failed write and truncate: %w", l.dir, errors.Join(err, terr))
		}
		return info, false, fmt.Errorf("append to segment %d in %s: %w", seg.base, l.dir, err)
	}

	l.mu.Lock()
	p := seg.size
	for i := range headers {
		seg.track(headers[i], p, l.cfg.IndexIntervalBytes)
		p += int64(headers[i].Size())
	}
	seg.lastAppend = now.UnixMilli()
	l.leo = next
	l.size += int64(len(batches))
	l.mu.Unlock()
	seg.dirtyGen++
	l.unflushedMsgs += msgs
	flush := l.cfg.FlushIntervalMessages > 0 && l.unflushedMsgs >= l.cfg.FlushIntervalMessages
	return info, flush, nil
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
// recovery point. The fsyncs run without blocking Append.
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
	var work []todo
	for _, s := range segs {
		if err := s.persistIndexes(); err != nil {
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
	gen, dirDirty := l.truncGen, l.dirDirty
	l.dirDirty = false
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
			err = fmt.Errorf("fsync dir %s: %w", l.dir, err)
		}
	}
	l.appendMu.Lock()
	if err != nil {
		l.dirDirty = l.dirDirty || dirDirty
		l.appendMu.Unlock()
		return err
	}
	for _, w := range work {
		w.seg.syncedGen = max(w.seg.syncedGen, w.gen)
		if w.indexes {
			w.seg.idxSyncedGen = max(w.seg.idxSyncedGen, w.idxGen)
		}
	}
	advanced := false
	if gen == l.truncGen {
		l.mu.Lock()
		if leo > l.recoveryPoint {
			l.recoveryPoint, advanced = leo, true
		}
		l.mu.Unlock()
	}
	l.appendMu.Unlock()
	if now := l.now(); advanced && (ckptEvery <= 0 || now.Sub(l.lastCkpt) >= ckptEvery) {
		l.lastCkpt = now
		return l.writeCheckpoints()
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
		err = l.writeCheckpoints()
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
	l.closed = true
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

// Read returns whole batches starting with the one containing offset, none
// with LastOffset >= maxOffset, at most maxBytes unless minOne and the
// first batch alone is larger (KIP-74). It may span segments.
//
// The ranges' files are the segments' own (with a descriptor for
// sendfile), pinned until Release, unless pinning them took the file
// cache over its cap: then the bytes are copied and the files let go at
// once, so responses in flight cannot hold descriptors beyond the cap.
func (l *Log) Read(offset int64, maxBytes int, maxOffset int64, minOne bool) (ReadResult, error) {
	res, err := l.read(offset, maxBytes, maxOffset, minOne)
	if err == nil && len(res.Ranges) > 0 && l.cache.overLimit() {
		res.detach() // outside l.mu: appends need not wait for the copy
	}
	return res, err
}

func (l *Log) read(offset int64, maxBytes int, maxOffset int64, minOne bool) (ReadResult, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if err := l.checkRange(offset); err != nil {
		return ReadResult{}, err
	}
	if offset == l.leo || maxOffset <= offset {
		return ReadResult{Next: offset}, nil
	}
	var buf [BatchHeaderSize]byte
	i := l.findSegment(offset)
	// A segment's .log is pinned from its first header read to the end of
	// its scan, and stays pinned for its range: one open per segment read,
	// even when the cache is full and closes whatever is let go.
	f, err := l.segs[i].log.pin()
	if err != nil {
		return ReadResult{}, err
	}
	pos, _, found, err := l.segs[i].seek(&buf, offset)
	if err != nil || !found {
		l.segs[i].log.unpin()
		f = nil
	}
	if err != nil {
		return ReadResult{}, err
	}
	if !found { // offset sits in a gap at the end of segment i
		i, pos = i+1, 0
	}
	res := ReadResult{Next: l.leo}
	var used []*segment
	remaining := int64(max(maxBytes, 0))
	first := true
	done := false
	for ; i < len(l.segs) && !done; i, pos = i+1, 0 {
		s := l.segs[i]
		if f == nil {
			if pos >= s.size {
				continue
			}
			if f, err = s.log.pin(); err != nil {
				releaseAll(used)
				return ReadResult{}, err
			}
		}
		from := pos
		for pos < s.size {
			// Jump over whole index intervals that certainly fit: every
			// batch before an entry ends before it and has offsets below it.
			if !first {
				if p := s.jump(pos, pos+remaining, maxOffset); p > pos {
					remaining -= p - pos
					pos = p
					continue
				}
			}
			h, err := s.readHeader(&buf, pos)
			if err != nil {
				s.log.unpin()
				releaseAll(used)
				return ReadResult{}, err
			}
			sz := int64(h.Size())
			if h.LastOffset() >= maxOffset || (sz > remaining && !(first && minOne)) {
				res.Next = max(h.BaseOffset, offset)
				done = true
				break
			}
			pos += sz
			remaining = max(remaining-sz, 0)
			first = false
		}
		if pos > from {
			// The caller may hand the descriptor to sendfile long
			// after this returns: pinned, the cache cannot close it.
			s.acquire()
			used = append(used, s)
			res.Ranges = append(res.Ranges, FileRange{File: f, Offset: from, Length: pos - from})
			res.Bytes += pos - from
		} else {
			s.log.unpin()
		}
		f = nil
	}
	if len(used) > 0 {
		res.release = func() { releaseAll(used) }
	} else {
		res.Next = offset
	}
	return res, nil
}

// releaseAll drops what Read took: the pin on each segment's .log and the
// reference to the segment.
func releaseAll(segs []*segment) {
	for _, s := range segs {
		s.log.unpin()
		s.release()
	}
}

// jump returns the position of the furthest index entry after pos that is
// at most limit and whose offset is <= maxOffset, or pos if none qualifies.
func (s *segment) jump(pos, limit, maxOffset int64) int64 {
	n := s.index.len()
	i := sort.Search(n, func(i int) bool {
		r, p := s.index.entry(i)
		return int64(p) > limit || s.base+int64(r) > maxOffset
	}) - 1
	if i < 0 {
		return pos
	}
	_, p := s.index.entry(i)
	return max(int64(p), pos)
}

// ScanBatches calls fn with the header of every batch from the one
// containing from up to the current log end. fn runs without locks held.
func (l *Log) ScanBatches(from int64, fn func(h BatchHeader) error) error {
	type span struct {
		s        *segment
		pos, end int64
	}
	l.mu.RLock()
	if err := l.checkRange(from); err != nil {
		l.mu.RUnlock()
		return err
	}
	var buf [BatchHeaderSize]byte
	var spans []span
	if from < l.leo {
		i := l.findSegment(from)
		pos, _, _, err := l.segs[i].seek(&buf, from)
		if err != nil {
			l.mu.RUnlock()
			return err
		}
		for ; i < len(l.segs); i, pos = i+1, 0 {
			s := l.segs[i]
			s.acquire()
			spans = append(spans, span{s, pos, s.size})
		}
	}
	l.mu.RUnlock()
	defer func() {
		for _, sp := range spans {
			sp.s.release()
		}
	}()
	for _, sp := range spans {
		if err := l.scanSpan(sp.s, sp.pos, sp.end, &buf, fn); err != nil {
			return err
		}
	}
	return nil
}

// scanSpan is ScanBatches over one segment, whose .log stays open (pinned)
// for the scan only: a long scan holds one descriptor at a time. A segment
// deleted meanwhile whose file the cache had closed cannot be scanned.
func (l *Log) scanSpan(s *segment, pos, end int64, buf *[BatchHeaderSize]byte, fn func(h BatchHeader) error) error {
	if pos >= end {
		return nil
	}
	f, err := s.log.pin()
	if err != nil {
		return fmt.Errorf("scanning segment %d in %s: %w", s.base, l.dir, err)
	}
	defer s.log.unpin()
	for pos < end {
		n, err := f.ReadAt(buf[:], pos)
		if n < BatchHeaderSize {
			return fmt.Errorf("scanning segment %d in %s at %d: %w", s.base, l.dir, pos, errors.Join(err, ErrCorruptBatch))
		}
		h := parseHeader(buf[:])
		if h.Length < minBatchLength {
			return fmt.Errorf("scanning segment %d in %s at %d: %w", s.base, l.dir, pos, ErrCorruptBatch)
		}
		if err := fn(h); err != nil {
			return err
		}
		pos += int64(h.Size())
	}
	return nil
}

// ReadBatches returns a copy of the batches from the one containing from,
// at most maxBytes (but at least one batch), up to the log end.
func (l *Log) ReadBatches(from int64, maxBytes int) ([]byte, error) {
	r, err := l.Read(from, maxBytes, math.MaxInt64, true)
	if err != nil {
		return nil, err
	}
	defer r.Release()
	out := make([]byte, r.Bytes)
	p := int64(0)
	for _, fr := range r.Ranges {
		n, err := fr.File.ReadAt(out[p:p+fr.Length], fr.Offset)
		if int64(n) < fr.Length {
			return nil, fmt.Errorf("reading %d bytes at %d in %s: %w", fr.Length, fr.Offset, l.dir, errors.Join(err, ErrCorruptBatch))
		}
		p += fr.Length
	}
	return out, nil
}

// FindOffsetByTimestamp returns the base offset (at least the log start)
// and max timestamp of the first batch whose MaxTimestamp >= ts, or
// ok=false if there is none.
func (l *Log) FindOffsetByTimestamp(ts int64) (offset int64, timestamp int64, ok bool) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed || l.start >= l.leo {
		return 0, 0, false
	}
	var buf [BatchHeaderSize]byte
	for i := l.findSegment(l.start); i < len(l.segs); i++ {
		s := l.segs[i]
		if s.maxTs < ts {
			continue
		}
		var pos int64
		if rel, found := s.times.before(ts); found {
			pos = s.index.floor(rel)
		}
		for pos < s.size {
			h, err := s.readHeader(&buf, pos)
			if err != nil {
				l.logger.Warn("timestamp lookup failed", "dir", l.dir, "segment", s.base, "err", err)
				return 0, 0, false
			}
			if h.LastOffset() >= l.start && h.MaxTimestamp >= ts {
				return max(h.BaseOffset, l.start), h.MaxTimestamp, true
			}
			pos += int64(h.Size())
		}
	}
	return 0, 0, false
}

// MaxTimestamp returns the largest batch max timestamp in the log and the
// last offset of that batch (the earliest such batch on ties), or -1, -1
// for a log without timestamps.
func (l *Log) MaxTimestamp() (offset int64, timestamp int64) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	offset, timestamp = -1, -1
	for _, s := range l.segs {
		if s.maxTs > timestamp && s.maxTsOffset >= l.start {
			offset, timestamp = s.maxTsOffset, s.maxTs
		}
	}
	return offset, timestamp
}
