package segment

import (
	"math"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Assertions of the Log's invariants, run only in builds with the
// invariants tag (see package internal/invariants); every call site is
// behind `if invariants.Enabled`, so the broker binary compiles none of
// this in. They check what the code guarantees whatever the files hold:
// data read from disk is input, checked with errors, never asserted on.

// assertInvariants checks the Log's shape after the mutator op, with
// appendMu held (so no mutation is half-published) and l.mu not held. A
// poisoned log is skipped: a failure half-way through a mutation may leave
// memory and files apart, which is what poisoning records.
func (l *Log) assertInvariants(op string) {
	if l.Poisoned() != nil {
		return
	}
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.closed {
		l.checkShapeLocked(op)
	}
}

// checkShapeLocked asserts, with l.mu held: at least one segment; segment
// bases strictly ascending and no segment's offsets reaching into the
// next; segs[0].base <= start <= LEO; recovery point <= LEO; the active
// segment ends at the LEO; the size is the sum of the segments'.
func (l *Log) checkShapeLocked(op string) {
	if len(l.segs) == 0 {
		invariants.Failf("log %s after %s: no segments", l.dir, op)
	}
	if l.start < l.segs[0].base || l.start > l.leo {
		invariants.Failf("log %s after %s: log start %d outside [first segment base %d, LEO %d]",
			l.dir, op, l.start, l.segs[0].base, l.leo)
	}
	if l.recoveryPoint > l.leo {
		invariants.Failf("log %s after %s: recovery point %d beyond LEO %d", l.dir, op, l.recoveryPoint, l.leo)
	}
	if act := l.active(); act.next != l.leo {
		invariants.Failf("log %s after %s: active segment %d ends at offset %d, LEO is %d",
			l.dir, op, act.base, act.next, l.leo)
	}
	var size int64
	for i, s := range l.segs {
		if s.next < s.base || s.size < 0 {
			invariants.Failf("log %s after %s: segment %d ends at offset %d, position %d",
				l.dir, op, s.base, s.next, s.size)
		}
		if i > 0 && (s.base <= l.segs[i-1].base || l.segs[i-1].next > s.base) {
			invariants.Failf("log %s after %s: segment %d (offsets to %d) overlaps segment %d",
				l.dir, op, l.segs[i-1].base, l.segs[i-1].next, s.base)
		}
		size += s.size
	}
	if size != l.size {
		invariants.Failf("log %s after %s: size %d, segments hold %d bytes", l.dir, op, l.size, size)
	}
}

// assertRecovered checks what Open rebuilt, before the log is published:
// the shape above; every segment's in-memory offset index strictly
// increasing and inside the segment's bytes and offsets, its time index
// increasing and below the next segment; every recorded gap a non-empty
// range, ascending, that no segment serves offsets of. (A time index that
// recovery adopted from disk is checked only against the next segment's
// base, as recovery does: its offsets are input, not the code's doing.)
func (l *Log) assertRecovered() {
	l.mu.RLock()
	defer l.mu.RUnlock()
	l.checkShapeLocked("recovery")
	for i, s := range l.segs {
		if err := s.index.check(s.size, s.next-s.base-1); err != nil {
			invariants.Failf("log %s after recovery: segment %d: %v", l.dir, s.base, err)
		}
		maxRel := int64(math.MaxUint32)
		if i+1 < len(l.segs) {
			maxRel = l.segs[i+1].base - s.base - 1
		}
		if err := s.times.check(maxRel); err != nil {
			invariants.Failf("log %s after recovery: segment %d: %v", l.dir, s.base, err)
		}
	}
	for i, g := range l.gaps {
		if g.From >= g.To || (i > 0 && g.From < l.gaps[i-1].To) {
			invariants.Failf("log %s after recovery: gap %d [%d, %d) empty or out of order", l.dir, i, g.From, g.To)
		}
		for _, s := range l.segs {
			if s.next > g.From && s.base < g.To && s.next > s.base {
				invariants.Failf("log %s after recovery: gap [%d, %d) overlaps segment %d holding [%d, %d)",
					l.dir, g.From, g.To, s.base, s.base, s.next)
			}
		}
	}
}

// assertAppendPlan checks an append before its write: the batches go to
// the segment that ends at the LEO, the first one starts at the LEO, and
// each starts right after the one before, stamped with leaderEpoch
// (unless verbatimEpoch: a follower's batches keep the leader's epochs,
// which must not decrease, and its offsets, which may skip a compacted
// leader's gaps but never go back). appendMu held.
func (l *Log) assertAppendPlan(seg *segment, headers []BatchHeader, leo int64, leaderEpoch int32) {
	if seg.next != leo {
		invariants.Failf("log %s: appending at LEO %d to segment %d, which ends at offset %d", l.dir, leo, seg.base, seg.next)
	}
	next := leo
	for i, h := range headers {
		epochOK := h.PartitionLeaderEpoch == leaderEpoch
		if leaderEpoch == verbatimEpoch {
			epochOK = i == 0 || h.PartitionLeaderEpoch >= headers[i-1].PartitionLeaderEpoch
		}
		offsetOK := h.BaseOffset == next || (leaderEpoch == verbatimEpoch && h.BaseOffset > next)
		if !offsetOK || h.LastOffset() < h.BaseOffset || !epochOK {
			invariants.Failf("log %s: appending batch %d with offsets %d..%d epoch %d, want from %d epoch %d",
				l.dir, i, h.BaseOffset, h.LastOffset(), h.PartitionLeaderEpoch, next, leaderEpoch)
		}
		next = h.LastOffset() + 1
	}
}

// assertAppended checks an append after its write: the LEO moved from leo
// to the end of the last batch (the first starting at leo, or above it
// past a follower's gap), and seg grew by exactly the batches' bytes from
// size0 and ends at the new LEO. appendMu held.
func (l *Log) assertAppended(seg *segment, info AppendInfo, leo, size0 int64, n int) {
	l.mu.RLock()
	newLEO, end, size := l.leo, seg.next, seg.size
	l.mu.RUnlock()
	if info.FirstOffset < leo || newLEO != info.LastOffset+1 || end != newLEO || size != size0+int64(n) {
		invariants.Failf("log %s: append of offsets %d..%d (%d bytes) moved LEO %d to %d, segment %d to offset %d, position %d to %d",
			l.dir, info.FirstOffset, info.LastOffset, n, leo, newLEO, seg.base, end, size0, size)
	}
	l.assertInvariants("append")
}

// assertRead checks a read's result (l.mu held): Bytes is the sum of the
// ranges; a read that returned batches moved the position forward and not
// past the LEO; and one that ran to the end of the last segment it used
// (toEnd: no batch stopped it) returned that segment's batches up to its
// end, which must then lie within the bound it was given (the HW for
// clients) and, on a poisoned log, the recovery point. A read stopped by a
// batch returned only batches whose header it checked against the bound,
// or that the offset index placed below it.
func (l *Log) assertRead(res *ReadResult, offset, maxOffset int64, used []*segment, toEnd bool) {
	var sum int64
	for _, r := range res.Ranges {
		sum += r.Length
	}
	limit := min(maxOffset, l.leo)
	if l.poisonErr.Load() != nil {
		limit = min(limit, l.recoveryPoint)
	}
	end := offset
	if toEnd && len(used) > 0 {
		end = used[len(used)-1].next
	}
	if sum != res.Bytes || end > limit || (len(res.Ranges) > 0 && (res.Next <= offset || res.Next > l.leo)) {
		invariants.Failf("log %s: read at %d below %d (LEO %d) returned %d ranges of %d bytes (sum %d) up to offset %d, next %d",
			l.dir, offset, maxOffset, l.leo, len(res.Ranges), res.Bytes, sum, end, res.Next)
	}
}
