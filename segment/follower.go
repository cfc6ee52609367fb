package segment

import (
	"errors"
	"fmt"
	"math"
)

// ErrUnexpectedAppendOffset: a follower's batches do not continue the log
// (the first starts below the log end, or one starts at or below the last
// offset of the one before, or their leader epochs go backwards). The
// follower's fetch position and its log disagree; nothing was written.
var ErrUnexpectedAppendOffset = errors.New("batches do not continue the log")

// verbatimEpoch tells write and its assertions that the batches keep the
// leader epochs they came with.
const verbatimEpoch int32 = math.MinInt32

// ValidateFetchedBatches checks batches a follower fetched from its leader
// before AppendAsFollower stores them as they are: framing, magic 2, CRC
// and a non-negative last offset delta. The leader validated the records
// when it appended them, and a follower must take whatever its leader's
// log holds, so neither max.message.bytes nor the record count against
// the offset delta (which compaction changes) is checked. It returns the
// parsed headers in order.
func ValidateFetchedBatches(buf []byte) ([]BatchHeader, error) {
	if len(buf) == 0 {
		return nil, fmt.Errorf("empty record set: %w", ErrCorruptBatch)
	}
	var hs []BatchHeader
	for pos := 0; pos < len(buf); {
		h, err := checkFrame(buf[pos:], 0)
		if err == nil && h.LastOffsetDelta < 0 {
			err = fmt.Errorf("last offset delta %d: %w", h.LastOffsetDelta, ErrCorruptBatch)
		}
		if err != nil {
			return hs, fmt.Errorf("batch at byte %d: %w", pos, err)
		}
		hs = append(hs, h)
		pos += h.Size()
	}
	return hs, nil
}

// AppendAsFollower writes batches fetched from the leader as they are:
// their base offsets, leader epochs and timestamps are the leader's and
// nothing is rewritten (Kafka's appendAsFollower). headers describe
// batches (see ValidateFetchedBatches).
//
// A compacted leader's log has offset gaps, so, as Kafka, only offsets
// going backwards are refused: the first batch must start at or above the
// log end and each next one above the last offset of the one before, with
// leader epochs that never decrease; otherwise nothing is written and the
// error wraps ErrUnexpectedAppendOffset. The offsets skipped are served
// by no batch: a read at one of them returns the next batch. A segment
// rolled by such an append still starts at the old log end, not at the
// batch, so the segments stay contiguous and recovery finds no hole
// between them (see recordHoles).
//
// In the result FirstOffset is the first batch's base offset, LastOffset
// the last batch's last offset (the log end becomes LastOffset+1) and
// LogAppendTime -1.
func (l *Log) AppendAsFollower(batches []byte, headers []BatchHeader) (AppendInfo, error) {
	info, flush, err := l.appendVerbatim(batches, headers)
	if err == nil && flush {
		err = l.Flush()
	}
	return info, err
}

func (l *Log) appendVerbatim(batches []byte, headers []BatchHeader) (AppendInfo, bool, error) {
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	info, err := l.appendInfo("follower append", batches, headers)
	if err != nil {
		return info, false, err
	}
	next := info.FirstOffset // the log end
	var msgs int64
	for i := range headers {
		h := &headers[i]
		switch {
		case h.BaseOffset < next || h.LastOffsetDelta < 0:
			return info, false, fmt.Errorf("follower append to %s: batch %d has offsets %d..%d, below %d where the log continues: %w",
				l.dir, i, h.BaseOffset, h.LastOffset(), next, ErrUnexpectedAppendOffset)
		case i > 0 && h.PartitionLeaderEpoch < headers[i-1].PartitionLeaderEpoch:
			return info, false, fmt.Errorf("follower append to %s: batch %d at %d has leader epoch %d after %d: %w",
				l.dir, i, h.BaseOffset, h.PartitionLeaderEpoch, headers[i-1].PartitionLeaderEpoch, ErrUnexpectedAppendOffset)
		}
		next = h.LastOffset() + 1
		msgs += int64(h.NumRecords)
	}
	info.FirstOffset, info.LastOffset = headers[0].BaseOffset, next-1
	return l.write(batches, headers, info, msgs, verbatimEpoch)
}

// TruncateFullyAndStartAt drops every segment and restarts the log empty
// at off, whatever the current start and end: a follower whose fetch
// position fell below its leader's log start (OFFSET_OUT_OF_RANGE) starts
// over at the leader's log start.
func (l *Log) TruncateFullyAndStartAt(off int64) error {
	if off < 0 {
		return fmt.Errorf("truncate %s fully to start at %d: negative offset", l.dir, off)
	}
	l.appendMu.Lock()
	defer l.appendMu.Unlock()
	if err := l.mutable("truncation"); err != nil {
		return err
	}
	return l.truncateFully(off)
}

// syncDirAfterRemoval makes removed segments stay removed (appendMu
// held). Truncation calls it before it cuts the segment that keeps the
// new log end: were the removals still undone at a crash, the cut segment
// and the resurrected ones after it would leave a hole, with the
// diverged suffix served beyond it.
func (l *Log) syncDirAfterRemoval() error {
	if err := l.fs.SyncDir(l.dir); err != nil {
		return l.poison(fmt.Errorf("fsync dir %s after removing segments: %w", l.dir, err))
	}
	l.dirDirty, l.newDir = false, false
	return nil
}
