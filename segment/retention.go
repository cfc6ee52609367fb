package segment

import (
	"fmt"

	"github.com/sluice-io/sluice/internal/invariants"
)

// ApplyRetention deletes the oldest segments that are past RetentionMs
// (judged by the segment's largest timestamp) or that the log can lose
// while staying at or above RetentionBytes. The active segment is never
// deleted. The start offset moves to the first remaining segment.
func (l *Log) ApplyRetention() (deletedSegments int, err error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	closed, segs, total := l.closed, l.segs, l.size
	l.mu.RUnlock()
	if closed {
		return 0, ErrLogClosed
	}
	if err := l.refuse("retention"); err != nil {
		return 0, err
	}
	nowMs := l.now().UnixMilli()
	n := 0
	for ; n < len(segs)-1; n++ {
		s := segs[n]
		ts := s.maxTs
		if ts < 0 {
			// No timestamps at all (very old clients): fall back to when
			// it was last written, as far as this process knows.
			ts = s.lastAppend
		}
		byTime := l.cfg.RetentionMs >= 0 && ts < nowMs-l.cfg.RetentionMs
		bySize := l.cfg.RetentionBytes >= 0 && total-s.size >= l.cfg.RetentionBytes
		if !byTime && !bySize {
			break
		}
		total -= s.size
	}
	if n == 0 {
		return 0, nil
	}
	return n, l.deleteLeading(n, segs[n].base)
}

// deleteLeading removes the first n segments and raises the start offset
// to at least newStart; appendMu held, n < len(segs). The new start is
// persisted first so that a crash never resurrects deleted offsets. A
// segment whose files cannot be removed is only reported: it lies below
// the persisted start, so the next Open deletes it.
func (l *Log) deleteLeading(n int, newStart int64) error {
	l.mu.RLock()
	start, rp := max(l.start, newStart), l.recoveryPoint
	l.mu.RUnlock()
	l.ckptMu.Lock()
	err := l.writeCheckpointsLocked(start, rp)
	l.ckptMu.Unlock()
	if err != nil {
		return l.settle(err)
	}
	l.mu.Lock()
	dead := l.segs[:n:n]
	l.segs = append([]*segment(nil), l.segs[n:]...)
	l.start = start
	for _, s := range dead {
		l.size -= s.size
	}
	l.mu.Unlock()
	var firstErr error
	for _, s := range dead {
		if err := s.remove(l.fs); err != nil && firstErr == nil {
			firstErr = err
		}
		s.release()
	}
	l.dirDirty = true
	if invariants.Enabled {
		l.assertInvariants("deleting leading segments")
	}
	return firstErr
}

// SetStartOffset moves the log start to off (DeleteRecords), which may lie
// inside a segment, and deletes the segments entirely below it.
func (l *Log) SetStartOffset(off int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	closed, start, leo, segs := l.closed, l.start, l.leo, l.segs
	l.mu.RUnlock()
	if closed {
		return ErrLogClosed
	}
	if err := l.refuse("setting the start offset"); err != nil {
		return err
	}
	if off > leo {
		return fmt.Errorf("start offset %d beyond log end %d of %s: %w", off, leo, l.dir, ErrOffsetOutOfRange)
	}
	if off <= start {
		return nil
	}
	n := 0
	for n < len(segs)-1 && segs[n+1].base <= off {
		n++
	}
	if n == 0 {
		l.mu.Lock()
		l.start = off
		l.mu.Unlock()
		err := l.settle(l.writeCheckpoints())
		if invariants.Enabled {
			l.assertInvariants("setting the start offset")
		}
		return err
	}
	return l.deleteLeading(n, off)
}

// TruncateTo removes every batch containing an offset >= off, so the log
// end becomes the end of the last batch kept (off itself for
// batch-aligned truncation in a log without gaps). Truncating below the start offset empties
// the log and restarts it at off.
func (l *Log) TruncateTo(off int64) error {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	l.mu.RLock()
	closed, start, leo, segs := l.closed, l.start, l.leo, l.segs
	l.mu.RUnlock()
	if closed {
		return ErrLogClosed
	}
	if err := l.refuse("truncation"); err != nil {
		return err
	}
	if off >= leo {
		return nil
	}
	if off < start {
		return l.truncateFully(off)
	}
	l.mu.RLock()
	i := l.findSegment(off)
	l.mu.RUnlock()
	s := segs[i]
	var buf [BatchHeaderSize]byte
	pos, _, _, err := s.seek(&buf, off)
	if err != nil {
		return err
	}
	// Rebuild the segment's derived state from its remaining headers, on a
	// copy so readers never see a half-rebuilt index, and before anything
	// changes, so that a failed read leaves the log as it was.
	ns := &segment{base: s.base, dir: s.dir}
	ns.resetIndexes()
	for p := int64(0); p < pos; {
		hh, err := s.readHeader(&buf, p)
		if err != nil {
			return err
		}
		ns.track(hh, p, l.cfg.IndexIntervalBytes)
		p += int64(hh.Size())
	}
	// The new end is where the kept batches end: off itself when it is a
	// batch boundary, as it is in a log without gaps. Inside a gap (a
	// compacted leader's log copied by a follower) it is the gap's start,
	// never the next batch's base, which would claim offsets this log
	// never held, nor off, which the next open would not find again.
	newLEO := ns.next
	// Lower the recovery point before touching data: a crash mid-way then
	// makes recovery re-check everything from here.
	l.ckptMu.Lock()
	err = l.writeCheckpointsLocked(min(start, newLEO), min(l.RecoveryPoint(), newLEO))
	l.ckptMu.Unlock()
	if err != nil {
		return l.settle(err)
	}
	l.truncGen++
	l.mu.Lock()
	dead := l.segs[i+1:]
	l.segs = l.segs[: i+1 : i+1]
	for _, d := range dead {
		l.size -= d.size
	}
	// As on disk now: should the log be poisoned from here on, its reads
	// stop at the new end.
	l.recoveryPoint = min(l.recoveryPoint, newLEO)
	l.mu.Unlock()
	// From here on a failure leaves the files and the log apart: a segment
	// that cannot be removed would come back at the next Open with offsets
	// the log has given up, and a segment that cannot be cut holds them.
	var poisoned error
	for _, d := range dead {
		if err := d.remove(l.fs); err != nil && poisoned == nil {
			poisoned = l.poison(err)
		}
		d.release()
	}
	l.dirDirty = true
	if len(dead) > 0 && poisoned == nil {
		if err := l.syncDirAfterRemoval(); err != nil {
			return err
		}
	}

	cutErr := func(err error) error {
		return l.poison(fmt.Errorf("truncating segment %d in %s to %d bytes: %w", s.base, l.dir, pos, err))
	}
	if err := s.log.Truncate(pos); err != nil {
		return cutErr(err)
	}
	// The truncated data must not come back after a crash. If the fsync
	// fails the file is cut even so, and the log must say so.
	syncErr := s.log.Sync()
	l.mu.Lock()
	l.size += pos - s.size
	s.size, s.next = pos, newLEO
	s.index, s.times = ns.index, ns.times
	s.maxTs, s.maxTsOffset = ns.maxTs, ns.maxTsOffset
	s.bytesSinceIndex = ns.bytesSinceIndex
	l.leo = newLEO
	l.start = min(l.start, newLEO)
	l.mu.Unlock()
	s.dirtyGen++
	s.idxGen++
	err = s.rewriteIndexes()
	switch {
	case syncErr != nil:
		return cutErr(syncErr)
	case err != nil:
		return l.settle(err)
	}
	if invariants.Enabled {
		l.assertInvariants("truncation")
	}
	return poisoned
}

// truncateFully drops all segments and restarts the log empty at off.
func (l *Log) truncateFully(off int64) error {
	l.ckptMu.Lock()
	err := l.writeCheckpointsLocked(off, off)
	l.ckptMu.Unlock()
	if err != nil {
		return l.settle(err)
	}
	l.truncGen++
	l.mu.Lock()
	dead := l.segs
	// With start == leo == off, readers return before looking at segs.
	l.segs = nil
	l.start, l.leo, l.recoveryPoint, l.size = off, off, off, 0
	l.mu.Unlock()
	// Unlink first: the new segment may reuse a dead one's name, and
	// creating it must not truncate the file readers still hold. A
	// segment left behind would come back at the next Open.
	var poisoned error
	for _, d := range dead {
		if err := d.remove(l.fs); err != nil && poisoned == nil {
			poisoned = l.poison(err)
		}
		d.release()
	}
	l.dirDirty = true
	ns, err := openSegment(l.fs, l.cache, l.dir, off, true)
	if err != nil {
		return l.poison(fmt.Errorf("log %s has no segment after truncation: %w", l.dir, err))
	}
	now := l.now()
	ns.created, ns.lastAppend = now, now.UnixMilli()
	ns.dirtyGen++
	ns.idxGen++
	l.mu.Lock()
	l.segs = []*segment{ns}
	l.mu.Unlock()
	if poisoned == nil {
		// The old segments must stay gone: come back after a crash,
		// they would hold offsets below the new start, or a hole.
		poisoned = l.syncDirAfterRemoval()
	}
	if invariants.Enabled {
		l.assertInvariants("truncation")
	}
	return poisoned
}
