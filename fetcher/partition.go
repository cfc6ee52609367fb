package fetcher

import (
	"encoding/binary"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// next says what to fetch for the partition now (ok), after truncating
// it if the follower must first; otherwise how long it still backs off
// (0: it does not fetch until something changes).
func (ps *partState) next(now time.Time, backoff time.Duration) (s sent, wait time.Duration, ok bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	switch {
	case ps.removed || ps.err != nil:
		return sent{}, 0, false
	case now.Before(ps.backoffUntil):
		return sent{}, ps.backoffUntil.Sub(now), false
	}
	if err := ps.r.Poisoned(); err != nil {
		ps.fail("replica log is poisoned", err)
		return sent{}, 0, false
	}
	for range 2 { // at most a truncation, then a fetch
		act := ps.follower.Next()
		switch act.Kind {
		case isr.ActFetch:
			return sent{ps: ps, req: act.Request, logStart: ps.r.LogStartOffset()}, 0, true
		case isr.ActTruncate:
			if !ps.truncate(act.Truncation.Offset, now, backoff) {
				return sent{}, ps.waitLocked(now), false
			}
		default: // fenced: wait for a newer epoch
			return sent{}, 0, false
		}
	}
	return sent{}, 0, false
}

// waitLocked is the backoff left, 0 if none (ps.mu held).
func (ps *partState) waitLocked(now time.Time) time.Duration {
	return max(0, ps.backoffUntil.Sub(now))
}

// quickRetry is the first wait before fetching again from a broker that
// does not lead the partition yet (see applyFetch).
const quickRetry = 25 * time.Millisecond

// delay makes the partition back off after a failed request.
func (ps *partState) delay(now time.Time, backoff time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	ps.backoffUntil = now.Add(backoff)
}

// applyFetch applies the leader's answer to req, unless the state was
// retired meanwhile, and reports whether it needs a reset (the caller
// asks the leader's log bounds, then calls applyReset).
func (ps *partState) applyFetch(req isr.FetchRequest, rp *kmsg.FetchResponseTopicPartition, now time.Time, backoff time.Duration) (reset bool) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.removed || ps.err != nil {
		return false
	}
	resp := isr.FetchResponse{Err: kerr.ErrorForCode(rp.ErrorCode), HighWatermark: rp.HighWatermark}
	if resp.Err == nil && (rp.DivergingEpoch.Epoch != -1 || rp.DivergingEpoch.EndOffset != -1) {
		resp.Diverging = &isr.EpochEndOffset{Epoch: rp.DivergingEpoch.Epoch, EndOffset: rp.DivergingEpoch.EndOffset}
	}
	act := ps.follower.HandleResponse(req, resp, epochEntries(ps.r), localLog(ps.r))
	switch act.Kind {
	case isr.ActAppend:
		ps.quickRetries = 0
		ps.append(rp.RecordBatches, rp.HighWatermark, rp.LogStartOffset, now, backoff)
	case isr.ActTruncate:
		ps.logger.Info("log diverges from the leader's, truncating", "diverging_epoch", resp.Diverging.Epoch,
			"diverging_end_offset", resp.Diverging.EndOffset, "log_end_offset", ps.r.LogEndOffset(),
			"truncate_to", act.Truncation.Offset, "complete", act.Truncation.Complete)
		ps.truncate(act.Truncation.Offset, now, backoff)
	case isr.ActReset:
		return true
	case isr.ActBackoff:
		d := backoff
		if errors.Is(resp.Err, kerr.NotLeaderForPartition) || errors.Is(resp.Err, kerr.UnknownLeaderEpoch) {
			// Right after a leader change the new leader may not have
			// applied the metadata yet: ask again soon (25 ms,
			// doubling) rather than a whole replica.fetch.backoff.ms,
			// which would hold acks=all produces that long.
			d = min(quickRetry<<min(ps.quickRetries, 6), backoff)
			ps.quickRetries++
		}
		ps.logger.Debug("leader refused the fetch, backing off", "err", resp.Err, "backoff", d)
		ps.backoffUntil = now.Add(d)
	case isr.ActWait:
		ps.logger.Info("fenced by the leader: waiting for metadata with a newer leader epoch", "err", resp.Err)
	}
	return false
}

// append stores the whole batches of a fetch as they came, then takes the
// leader's high watermark (capped by the LEO) and log start (ps.mu held).
func (ps *partState) append(records []byte, leaderHW, leaderStart int64, now time.Time, backoff time.Duration) {
	if batches := wholeBatches(records); len(batches) > 0 {
		if _, err := ps.r.AppendAsFollower(batches); err != nil {
			ps.replicaFailed("append", err, now, backoff)
			return
		}
	}
	ps.leaderHW = leaderHW
	hw := ps.follower.Appended(localLog(ps.r), leaderHW)
	advanced, err := ps.r.SetHighWatermark(hw)
	if err != nil {
		ps.replicaFailed("set the high watermark", err, now, backoff)
		return
	}
	if advanced && ps.onHW != nil {
		ps.onHW(ps.p.Topic, ps.p.Index)
	}
	// The leader's log start moved (retention, DeleteRecords): follow it,
	// never past what is committed here (DeleteRecords refuses that).
	if to := min(leaderStart, ps.r.HighWatermark()); to > ps.r.LogStartOffset() {
		if _, err := ps.r.DeleteRecords(to); err != nil {
			ps.replicaFailed("follow the leader's log start", err, now, backoff)
		}
	}
}

// truncate cuts the log to offset and tells the follower (ps.mu held).
func (ps *partState) truncate(offset int64, now time.Time, backoff time.Duration) bool {
	if err := ps.r.TruncateTo(offset); err != nil {
		ps.replicaFailed("truncate", err, now, backoff)
		return false
	}
	ps.follower.Truncated(localLog(ps.r))
	return true
}

// applyReset applies isr.OutOfRangeReset with the leader's log bounds
// (err: they could not be had) unless the state was retired meanwhile.
func (ps *partState) applyReset(leaderStart, leaderEnd int64, err error, now time.Time, backoff time.Duration) {
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if ps.removed || ps.err != nil {
		return
	}
	if err != nil {
		ps.logger.Warn("offset out of range and the leader's log bounds are unknown, backing off", "err", err)
		ps.backoffUntil = now.Add(backoff)
		return
	}
	leo := ps.r.LogEndOffset()
	offset, full := isr.OutOfRangeReset(leo, leaderStart, leaderEnd)
	ps.logger.Info("offset out of range on the leader, resetting", "log_end_offset", leo,
		"leader_log_start", leaderStart, "leader_log_end", leaderEnd, "offset", offset, "truncate_fully", full)
	switch {
	case full:
		err = ps.r.TruncateFullyAndStartAt(offset)
	case offset < leo:
		err = ps.r.TruncateTo(offset)
	default:
		// The log is within the leader's bounds after all (they moved
		// since the fetch): fetch again, not at once.
		ps.backoffUntil = now.Add(backoff)
		return
	}
	if err != nil {
		ps.replicaFailed("reset", err, now, backoff)
		return
	}
	ps.follower.Truncated(localLog(ps.r))
}

// replicaFailed handles an error of the replica (ps.mu held): a poisoned,
// closed or leading replica is not fetched any more, anything else backs
// off.
func (ps *partState) replicaFailed(op string, err error, now time.Time, backoff time.Duration) {
	if perr := ps.r.Poisoned(); perr != nil || errors.Is(err, replica.ErrClosed) || errors.Is(err, replica.ErrNotFollower) {
		ps.fail(op, err)
		return
	}
	ps.logger.Warn("follower "+op+" failed, backing off", "err", err)
	ps.backoffUntil = now.Add(backoff)
}

// fail stops fetching the partition for good (ps.mu held); the replica
// manager sees Err in Stats and the replica's own state.
func (ps *partState) fail(op string, err error) {
	ps.err = err
	ps.logger.Error("replica fetching stopped: "+op, "err", err)
}

// wholeBatches is the prefix of records made of whole batches: a leader
// may cut the last batch of a partition at the response's size limit
// (its rest comes with the next fetch). A batch whose length field is
// too small to be one is kept, for the append to refuse as corrupt.
func wholeBatches(records []byte) []byte {
	const lengthEnd = 12 // base offset (8) and length (4)
	pos := 0
	for len(records)-pos >= lengthEnd {
		length := int(int32(binary.BigEndian.Uint32(records[pos+8:])))
		if length < segment.BatchHeaderSize-lengthEnd {
			return records
		}
		if len(records)-pos-lengthEnd < length {
			break
		}
		pos += lengthEnd + length
	}
	return records[:pos]
}
