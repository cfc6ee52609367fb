package segment

import (
	"errors"
	"fmt"
	"math"
	"sort"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Read returns whole batches starting with the one containing offset, none
// with LastOffset >= maxOffset, at most maxBytes unless minOne and the
// first batch alone is larger (KIP-74). It may span segments.
//
// On a poisoned log (see ErrLogPoisoned) no batch at or above the
// recovery point is returned.
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
	if l.poisonErr.Load() != nil {
		// Above the recovery point the data may not survive: consumers
		// must not see records that the restart takes back.
		maxOffset = min(maxOffset, l.recoveryPoint)
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
	if invariants.Enabled {
		l.assertRead(&res, offset, maxOffset, used, !done)
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
