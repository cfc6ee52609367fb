package segment

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Log compaction (cleanup.policy=compact), after Kafka's LogCleaner.
//
// A pass maps every key of the dirty section (from the cleaner checkpoint
// to the first uncleanable offset) to its latest offset, then recopies the
// log from its first segment, keeping a record only if no later record has
// its key (records past what the map covers have none), and dropping
// tombstones once delete.retention.ms is over. Offsets do not change, so a
// compacted log has gaps. Small cleaned segments are grouped into one, and
// each group's new segment replaces the old ones by a sequence of renames
// that recovery completes or rolls back (see swap.go). The active
// segment, and anything at or above CleanOptions.MaxOffset or younger than
// min.compaction.lag.ms, is never cleaned.
//
// The pass reads and writes files without the log's locks; appends and
// reads go on meanwhile. Only the swap of each group holds the mutators'
// lock (a few renames and directory fsyncs), and readers' lock just long
// enough to publish the new segment list.

// cleanerCheckpointFile holds the first dirty offset of the partition
// (one file per log, Kafka keeps one cleaner-offset-checkpoint per log dir).
const cleanerCheckpointFile = "cleaner-offset-checkpoint"

// DefaultDedupeBufferBytes is log.cleaner.dedupe.buffer.size's default.
const DefaultDedupeBufferBytes = 128 << 20

// ErrCleanAborted is returned by Clean when the log changed under the pass
// (retention, truncation, closing) before a group could be swapped in; the
// groups swapped before stay, and the next pass starts over.
var ErrCleanAborted = errors.New("cleaning pass aborted: the log changed meanwhile")

// ErrCleanerBusy is returned by Clean while another pass runs on the log.
var ErrCleanerBusy = errors.New("a cleaning pass is already running on this log")

// CleanOptions are the settings of one cleaning pass.
type CleanOptions struct {
	// MaxOffset bounds the pass: a segment holding offsets at or above it
	// is not cleaned, nor mapped. The broker passes the high watermark
	// (the last stable offset once transactions are handled): records
	// above it may still be truncated away, and their older versions must
	// survive that. 0 or less means the log end.
	MaxOffset int64
	// MinCompactionLagMs is min.compaction.lag.ms: a segment whose
	// largest timestamp is newer than now minus this is not cleaned, nor
	// anything after it.
	MinCompactionLagMs int64
	// DeleteRetentionMs is delete.retention.ms: how long a tombstone stays
	// after the segment holding it became clean.
	DeleteRetentionMs int64
	// DedupeBufferBytes bounds the key map (log.cleaner.dedupe.buffer.size
	// shared by log.cleaner.threads). When it fills, the pass cleans up to
	// where it got. 0 means DefaultDedupeBufferBytes.
	DedupeBufferBytes int64
	// Throttle, when set, is called after every read and write with its
	// size in bytes, and may sleep (log.cleaner.io.max.bytes.per.second).
	Throttle func(bytes int)
	// ProducerLastOffsets maps each idempotent producer of the partition
	// to the last offset of its newest batch (the partition's producer
	// state): that batch keeps its header even when all its records go.
	// Nil makes the pass find them by reading every batch header of the
	// log; a producer missing from a non-nil map has no batch to keep.
	ProducerLastOffsets map[int64]int64
}

// CleanStats describes one pass, for the cleaner's metrics.
type CleanStats struct {
	SegmentsRead, SegmentsWritten int
	// BytesRead and BytesWritten are the recopy's (their ratio is
	// Kafka's cleaner-recopy-percent); MapBytesRead is what building the
	// key map read.
	BytesRead, BytesWritten, MapBytesRead int64
	RecordsKept, RecordsDropped           int64
	TombstonesDropped                     int64 // included in RecordsDropped
	// FirstDirtyOffset and EndOffset bound the dirty section this pass
	// took in: EndOffset is the new cleaner checkpoint.
	FirstDirtyOffset, EndOffset int64
	Duration                    time.Duration
}

// Dirtiness is what the cleaner's scheduler ranks logs by.
type Dirtiness struct {
	FirstDirtyOffset int64 // the cleaner checkpoint, at least the log start
	// CleanBytes are the non-active segments wholly below FirstDirtyOffset,
	// DirtyBytes the others a pass may clean now.
	CleanBytes, DirtyBytes int64
	// Ratio is DirtyBytes / (CleanBytes + DirtyBytes), 0 for no bytes:
	// compared with min.cleanable.dirty.ratio.
	Ratio float64
	// FirstDirtyTimestamp is the max timestamp of the first dirty batch
	// outside the active segment (-1 if none), compared with now minus
	// max.compaction.lag.ms: past it, the log is cleaned whatever its
	// ratio.
	FirstDirtyTimestamp int64
}

// cleaning holds the logs a pass runs on.
var cleaning sync.Map

// Clean runs one cleaning pass over the log's non-active segments.
func (l *Log) Clean(opts CleanOptions) (CleanStats, error) {
	if _, busy := cleaning.LoadOrStore(l, true); busy {
		return CleanStats{}, ErrCleanerBusy
	}
	defer cleaning.Delete(l)
	began := time.Now()
	p, err := l.planClean(opts)
	if err != nil {
		return CleanStats{}, err
	}
	defer p.release()
	stats := CleanStats{FirstDirtyOffset: p.firstDirty, EndOffset: p.firstDirty}
	if p.firstDirty < p.uncleanable {
		err = l.runClean(p, &stats)
		if err != nil && !errors.Is(err, ErrCleanAborted) && l.changedSince(p) {
			// A segment truncated or deleted under the pass reads short.
			err = fmt.Errorf("%w: %w", ErrCleanAborted, err)
		}
	}
	stats.Duration = time.Since(began)
	return stats, err
}

// cleanSpan is a segment as the pass saw it when it started.
type cleanSpan struct {
	s          *segment
	size, next int64
	maxTs      int64
	modified   int64 // ms: the file's mtime, or the last append this process saw
	index      int   // bytes of its offset index
}

// cleanPlan is what a pass works on: the spans from the first segment to
// the last cleanable one, each referenced (acquired) until release.
type cleanPlan struct {
	opts        CleanOptions
	spans       []cleanSpan
	firstDirty  int64
	uncleanable int64
	interval    int   // log.index.interval.bytes
	maxIndex    int   // index byte cap per segment
	segBytes    int64 // segment.bytes: cap of a group of cleaned segments
}

func (p *cleanPlan) release() {
	for _, sp := range p.spans {
		sp.s.release()
	}
}

func (l *Log) planClean(opts CleanOptions) (*cleanPlan, error) {
	if opts.DedupeBufferBytes <= 0 {
		opts.DedupeBufferBytes = DefaultDedupeBufferBytes
	}
	p := &cleanPlan{opts: opts}
	l.appendMu.Lock()
	p.interval, p.maxIndex, p.segBytes = l.cfg.IndexIntervalBytes, l.maxIndex, l.cfg.SegmentBytes
	l.mu.RLock()
	closed, start, leo, segs := l.closed, l.start, l.leo, l.segs
	var all []cleanSpan
	if !closed {
		for _, s := range segs[:len(segs)-1] {
			// Referenced under the lock: retention cannot close its
			// files between the snapshot and the pass.
			s.acquire()
			all = append(all, cleanSpan{s: s, size: s.size, next: s.next, maxTs: s.maxTs, modified: s.lastAppend, index: len(s.index)})
		}
		p.uncleanable = segs[len(segs)-1].base
	}
	l.mu.RUnlock()
	l.appendMu.Unlock()
	if closed {
		return nil, ErrLogClosed
	}
	p.spans = all
	if err := l.refuse("cleaning"); err != nil {
		p.release()
		return nil, err
	}
	for i := range all {
		sp := &all[i]
		if st, err := l.fs.Stat(segName(l.dir, sp.s.base, ".log")); err == nil && !st.ModTime().IsZero() {
			sp.modified = st.ModTime().UnixMilli()
		}
	}
	if n := l.cleanable(all, opts, leo); n < len(all) {
		p.uncleanable = all[n].s.base
		for _, rest := range all[n:] {
			rest.s.release()
		}
		all = all[:n]
	}
	p.spans = all
	p.firstDirty = start
	if ckpt, ok := l.readCheckpoint(cleanerCheckpointFile); ok && ckpt > start && ckpt <= leo {
		p.firstDirty = ckpt
	}
	return p, nil
}

// cleanable returns how many of spans (the non-active segments, oldest
// first) a pass may clean: those before the first that holds offsets at or
// above the bound, or whose largest timestamp (its last write if it has
// none) is within min.compaction.lag.ms.
func (l *Log) cleanable(spans []cleanSpan, opts CleanOptions, leo int64) int {
	maxOff := opts.MaxOffset
	if maxOff <= 0 {
		maxOff = leo
	}
	lagEdge := l.now().UnixMilli() - opts.MinCompactionLagMs
	for i, sp := range spans {
		ts := sp.maxTs
		if ts < 0 {
			ts = sp.modified
		}
		if sp.next > maxOff || (opts.MinCompactionLagMs > 0 && ts > lagEdge) {
			return i
		}
	}
	return len(spans)
}

// changedSince reports whether a segment the pass planned on is gone or
// has changed size.
func (l *Log) changedSince(p *cleanPlan) bool {
	l.mu.RLock()
	defer l.mu.RUnlock()
	live := make(map[*segment]int64, len(l.segs))
	for _, s := range l.segs {
		live[s] = s.size
	}
	for _, sp := range p.spans {
		if size, ok := live[sp.s]; !ok || size != sp.size {
			return true
		}
	}
	return l.closed
}

// runClean is the pass proper: map the dirty section, then clean and swap
// group by group, then move the checkpoint.
func (l *Log) runClean(p *cleanPlan, stats *CleanStats) error {
	m, lastOfProducer, err := l.buildOffsetMap(p, stats)
	if err != nil {
		return err
	}
	stats.EndOffset = m.end
	// The deletion horizon: tombstones in segments last written before
	// delete.retention.ms ahead of the newest already-clean segment go.
	horizon := int64(math.MinInt64)
	var toClean []cleanSpan
	for _, sp := range p.spans {
		if sp.next <= p.firstDirty {
			horizon = sp.modified - p.opts.DeleteRetentionMs
		}
		if sp.s.base < m.end {
			toClean = append(toClean, sp)
		}
	}
	f := &cleanFilter{m: m, lastOfProducer: lastOfProducer, stats: stats}
	for _, group := range groupSegments(toClean, p.segBytes, p.maxIndex) {
		if err := l.cleanGroup(p, group, f, horizon, stats); err != nil {
			return err
		}
	}
	path := filepath.Join(l.dir, cleanerCheckpointFile)
	if err := WriteFileAtomic(l.fs, path, []byte(strconv.FormatInt(m.end, 10)+"\n")); err != nil {
		// Not poisonous: a stale or unreadable checkpoint only makes the
		// next pass map more than it needs to.
		var p poisonous
		if errors.As(err, &p) {
			err = p.error
		}
		return fmt.Errorf("cleaner checkpoint of %s: %w", l.dir, err)
	}
	return nil
}

// groupSegments splits spans into runs of consecutive segments that fit
// one segment together (Kafka's groupSegmentsBySize): their bytes within
// segment.bytes, their indexes within the index cap, their offsets within
// 32-bit reach of the first. The sizes before cleaning bound those after.
// Empty segments are left out, and end a run.
func groupSegments(spans []cleanSpan, maxBytes int64, maxIndex int) [][]cleanSpan {
	var groups [][]cleanSpan
	for i := 0; i < len(spans); {
		if spans[i].size == 0 {
			i++
			continue
		}
		j := i + 1
		size, index := spans[i].size, spans[i].index
		for ; j < len(spans); j++ {
			sp := spans[j]
			if sp.size == 0 || size+sp.size > maxBytes || index+sp.index > maxIndex ||
				sp.next-1-spans[i].s.base > math.MaxUint32 {
				break
			}
			size += sp.size
			index += sp.index
		}
		groups = append(groups, spans[i:j])
		i = j
	}
	return groups
}

// buildOffsetMap maps the keys of the dirty section, batch by batch, until
// the section ends or the map is full; unless given, it also finds each
// idempotent producer's last batch in the whole log.
func (l *Log) buildOffsetMap(p *cleanPlan, stats *CleanStats) (*offsetMap, map[int64]int64, error) {
	lastOfProducer := p.opts.ProducerLastOffsets
	if lastOfProducer == nil {
		lastOfProducer = map[int64]int64{}
		err := l.ScanBatches(l.StartOffset(), func(h BatchHeader) error {
			if h.ProducerID >= 0 {
				lastOfProducer[h.ProducerID] = h.LastOffset()
			}
			return nil
		})
		if err != nil {
			return nil, nil, fmt.Errorf("cleaning %s: finding producers' last batches: %w", l.dir, err)
		}
	}
	m := newOffsetMap(p.opts.DedupeBufferBytes, p.firstDirty)
	var keys [][]byte
	var offs []int64
	errFull := errors.New("offset map full")
	var scratch []byte
	for _, sp := range p.spans {
		if sp.next <= p.firstDirty {
			continue
		}
		err := l.eachBatch(sp, p, &scratch, &stats.MapBytesRead, func(b []byte, h BatchHeader) error {
			if h.LastOffset() < p.firstDirty {
				return nil
			}
			keys, offs = keys[:0], offs[:0]
			if !h.Control() { // transaction markers carry no key to map
				recs, err := batchRecords(b, h)
				if err != nil {
					return err
				}
				err = eachRawRecord(recs, h, func(r cleanedRecord, key, _ []byte) {
					if key != nil {
						keys, offs = append(keys, key), append(offs, r.offset)
					}
				})
				if err != nil {
					return err
				}
			}
			if !m.fits(keys) {
				return errFull
			}
			for i, k := range keys {
				m.put(k, offs[i])
			}
			m.end = h.LastOffset() + 1
			return nil
		})
		if errors.Is(err, errFull) {
			if m.end == p.firstDirty {
				return nil, nil, fmt.Errorf("cleaning %s: the dedupe buffer of %d bytes cannot hold the keys of the batch at %d",
					l.dir, p.opts.DedupeBufferBytes, m.end)
			}
			break
		}
		if err != nil {
			return nil, nil, err
		}
	}
	return m, lastOfProducer, nil
}

// cleanGroup writes the cleaned form of group's segments as one new
// segment beside them and swaps it in.
func (l *Log) cleanGroup(p *cleanPlan, group []cleanSpan, f *cleanFilter, horizon int64, stats *CleanStats) error {
	w, err := l.newCleanedSegment(group[0].s.base, p.interval)
	if err != nil {
		return err
	}
	var scratch, out []byte
	var modified, lastAppend int64
	for gi, sp := range group {
		f.retainTombstones = sp.modified > horizon
		modified = max(modified, sp.modified)
		last := gi == len(group)-1
		err := l.eachBatch(sp, p, &scratch, &stats.BytesRead, func(b []byte, h BatchHeader) error {
			var err error
			if out, err = f.filter(out, b, h, last && h.LastOffset()+1 == sp.next); err != nil {
				return err
			}
			if len(out) < 1<<20 {
				return nil
			}
			err = w.write(out, p.opts.Throttle)
			out = out[:0]
			return err
		})
		if err == nil {
			err = w.write(out, p.opts.Throttle)
			out = out[:0]
		}
		if err != nil {
			w.abort()
			return fmt.Errorf("cleaning segment %d of %s: %w", sp.s.base, l.dir, err)
		}
		stats.SegmentsRead++
	}
	l.mu.RLock()
	for _, sp := range group {
		lastAppend = max(lastAppend, sp.s.lastAppend)
	}
	l.mu.RUnlock()
	ns, err := w.finish(modified)
	if err != nil {
		return err
	}
	ns.lastAppend = lastAppend
	stats.BytesWritten += ns.size
	if err := l.swapIn(group, ns); err != nil {
		return err
	}
	stats.SegmentsWritten++
	return nil
}

// eachBatch calls fn with every batch of the span, whole, after checking
// its CRC: the cleaner rewrites what it reads, and must not give rotten
// bytes a fresh checksum. It reads a chunk at a time (one descriptor,
// pinned for the span), telling the throttle.
func (l *Log) eachBatch(sp cleanSpan, p *cleanPlan, scratch *[]byte, read *int64, fn func(b []byte, h BatchHeader) error) error {
	file, err := sp.s.log.pin()
	if err != nil {
		return fmt.Errorf("reading segment %d of %s: %w", sp.s.base, l.dir, err)
	}
	defer sp.s.log.unpin()
	if len(*scratch) < 1<<20 {
		*scratch = make([]byte, 1<<20)
	}
	for pos := int64(0); pos < sp.size; {
		buf := *scratch
		n, _ := file.ReadAt(buf[:min(int64(len(buf)), sp.size-pos)], pos)
		if n < BatchHeaderSize {
			return fmt.Errorf("reading segment %d of %s at %d: %w", sp.s.base, l.dir, pos, ErrCorruptBatch)
		}
		*read += int64(n)
		if p.opts.Throttle != nil {
			p.opts.Throttle(n)
		}
		chunk := buf[:n]
		off := 0
		for len(chunk)-off >= BatchHeaderSize {
			h := parseHeader(chunk[off:])
			if h.Length < minBatchLength || h.Magic != 2 || pos+int64(off+h.Size()) > sp.size {
				return fmt.Errorf("segment %d of %s at %d: bad batch header: %w", sp.s.base, l.dir, pos+int64(off), ErrCorruptBatch)
			}
			if off+h.Size() > len(chunk) {
				if off == 0 {
					*scratch = make([]byte, h.Size())
				}
				break
			}
			b := chunk[off : off+h.Size()]
			if crc := crcOf(b); crc != h.CRC {
				return fmt.Errorf("segment %d of %s at %d: crc mismatch: %w", sp.s.base, l.dir, pos+int64(off), ErrCorruptBatch)
			}
			if err := fn(b, h); err != nil {
				return err
			}
			off += h.Size()
		}
		pos += int64(off)
	}
	return nil
}

// CleanerCheckpoint returns the first dirty offset: where the next pass's
// dirty section starts (the log start if no pass completed).
func (l *Log) CleanerCheckpoint() int64 {
	l.mu.RLock()
	start, leo := l.start, l.leo
	l.mu.RUnlock()
	if ckpt, ok := l.readCheckpoint(cleanerCheckpointFile); ok && ckpt > start && ckpt <= leo {
		return ckpt
	}
	return start
}

// Dirtiness measures the log against its cleaner checkpoint, within what
// a pass with opts may clean (MaxOffset, MinCompactionLagMs; as Kafka's
// cleanable ratio, dirty data it may not clean yet does not count). It
// costs one small file read, and a batch header read for
// FirstDirtyTimestamp.
func (l *Log) Dirtiness(opts CleanOptions) Dirtiness {
	first := l.CleanerCheckpoint()
	d := Dirtiness{FirstDirtyOffset: first, FirstDirtyTimestamp: -1}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return d
	}
	spans := make([]cleanSpan, 0, len(l.segs)-1)
	for _, s := range l.segs[:len(l.segs)-1] {
		spans = append(spans, cleanSpan{s: s, size: s.size, next: s.next, maxTs: s.maxTs, modified: s.lastAppend})
	}
	n := l.cleanable(spans, opts, l.leo)
	var firstDirty *segment
	for i, sp := range spans {
		switch {
		case sp.next <= first:
			d.CleanBytes += sp.size
		case i < n:
			d.DirtyBytes += sp.size
		}
		if sp.next > first && firstDirty == nil && sp.size > 0 {
			firstDirty = sp.s
		}
	}
	if total := d.CleanBytes + d.DirtyBytes; total > 0 {
		d.Ratio = float64(d.DirtyBytes) / float64(total)
	}
	if firstDirty != nil {
		var buf [BatchHeaderSize]byte
		if _, h, found, err := firstDirty.seek(&buf, first); err == nil && found {
			d.FirstDirtyTimestamp = h.MaxTimestamp
		}
	}
	return d
}

// DirtyRatio is Dirtiness(opts).Ratio.
func (l *Log) DirtyRatio(opts CleanOptions) float64 { return l.Dirtiness(opts).Ratio }

// assertCleaned checks the log after a group was swapped in (appendMu
// held): the usual shape, and the new segment where the old ones were.
func (l *Log) assertCleaned(ns *segment, base, next int64) {
	l.assertInvariants("cleaning")
	if ns.base != base || ns.next != next {
		invariants.Failf("log %s: cleaned segment %d..%d replaced segments %d..%d", l.dir, ns.base, ns.next, base, next)
	}
}
