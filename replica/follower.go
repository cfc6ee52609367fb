package replica

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/segment"
)

// AppendAsFollower appends batches fetched from the leader as they are
// (Kafka's appendAsFollower): base offsets and partition leader epochs are
// the leader's, nothing is reassigned. The batches must pass their CRC
// (segment.ValidateFetchedBatches) and continue the log exactly: the first
// starts at the LEO and each next one right after the one before (a gap or
// an overlap fails with segment.ErrUnexpectedAppendOffset, nothing
// written). Their epochs must not go below the epoch of the log's last
// batch (that would mean the truncation that reconciles the two logs was
// skipped) nor above the epoch this replica follows in
// (ErrStaleLeaderEpoch).
//
// Each batch of a newer epoch enters the epoch cache at its base offset
// before it is written (Kafka's maybeAssignEpochStartOffset per batch),
// and producer state learns every batch, unchecked (the leader checked),
// so that this replica has it should it lead. HW is not moved: the caller
// sets it from the leader's (SetHighWatermark).
func (p *Partition) AppendAsFollower(batches []byte) (AppendResult, error) {
	headers, err := segment.ValidateFetchedBatches(batches)
	if err != nil {
		return AppendResult{}, fmt.Errorf("follower append to %s: %w", p.name(), err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return AppendResult{}, fmt.Errorf("follower append to %s: %w", p.name(), ErrClosed)
	}
	if p.leading.Load() {
		return AppendResult{}, fmt.Errorf("follower append to %s: %w", p.name(), ErrNotFollower)
	}
	leo := p.log.EndOffset()
	if err := p.checkFollowerBatches(headers, leo); err != nil {
		return AppendResult{}, fmt.Errorf("follower append to %s at %d: %w", p.name(), leo, err)
	}
	// An entry at the LEO is an epoch that appended nothing here (this
	// replica led in it briefly); the leader's batches say what follows.
	if err := p.epochs.TruncateFromEnd(leo); err != nil {
		return AppendResult{}, fmt.Errorf("follower append to %s: %w", p.name(), err)
	}
	for _, h := range headers {
		if h.PartitionLeaderEpoch > p.epochs.LatestEpoch() {
			if err := p.epochs.Assign(h.PartitionLeaderEpoch, h.BaseOffset); err != nil {
				return AppendResult{}, p.undoFollowerEpochs(leo, err)
			}
		}
	}
	if err := p.epochs.persist(); err != nil {
		return AppendResult{}, p.undoFollowerEpochs(leo, err)
	}
	info, err := p.log.AppendAsFollower(batches, headers)
	if p.log.EndOffset() == leo {
		if err == nil {
			err = errors.New("log accepted the batches but its end offset did not move")
		}
		return AppendResult{}, p.undoFollowerEpochs(leo, err)
	}
	// Written (even if a flush after it failed): producer state must
	// know the batches, as after a leader append.
	for i := range headers {
		p.producers.Update(headers[i], headers[i].BaseOffset, headers[i].LastOffset())
	}
	if invariants.Enabled {
		p.assertFollowerAppend(headers, leo)
		p.assertInvariants("follower append")
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("follower append to %s at %d: %w", p.name(), leo, err)
	}
	return AppendResult{BaseOffset: info.FirstOffset, LastOffset: info.LastOffset,
		LogAppendTime: -1, LogStartOffset: info.LogStartOffset}, nil
}

// checkFollowerBatches checks what AppendAsFollower needs before the
// epoch cache changes: offsets from leo on, ascending (gaps allowed), and epochs
// between the log's last one and the one this replica follows in (p.mu
// held). A batch without an epoch (-1) is accepted only where no epoch
// came before it (a leader stamps every batch it appends), and is not
// entered in the history.
func (p *Partition) checkFollowerBatches(headers []segment.BatchHeader, leo int64) error {
	last, following := p.epochs.LatestEpochBefore(leo), p.leaderEpoch.Load()
	next := leo
	for i, h := range headers {
		e := h.PartitionLeaderEpoch
		switch {
		case h.BaseOffset < next:
			// Above is fine: a compacted leader's log has gaps, which
			// the follower's copy keeps (Kafka refuses only below).
			return fmt.Errorf("batch %d starts at %d, below where the log continues (%d): %w", i, h.BaseOffset, next, segment.ErrUnexpectedAppendOffset)
		case e > following:
			return fmt.Errorf("batch %d at %d is of leader epoch %d, this replica follows in %d: %w", i, h.BaseOffset, e, following, ErrStaleLeaderEpoch)
		case e < last:
			return fmt.Errorf("batch %d at %d is of leader epoch %d, after %d: %w", i, h.BaseOffset, e, last, segment.ErrUnexpectedAppendOffset)
		}
		last = max(last, e)
		next = h.LastOffset() + 1
	}
	return nil
}

// undoFollowerEpochs drops the entries a failed follower append entered
// (the log still ends at leo) and returns the append's error.
func (p *Partition) undoFollowerEpochs(leo int64, err error) error {
	err = fmt.Errorf("follower append to %s at %d: %w", p.name(), leo, err)
	if uerr := p.epochs.TruncateFromEnd(leo); uerr != nil {
		err = errors.Join(err, fmt.Errorf("dropping its leader epoch entries: %w", uerr))
	}
	return err
}

// LastFetchedEpoch is the leader epoch of the last batch in the log
// (UndefinedEpoch for an empty one): what a follower's fetch carries as
// LastFetchedEpoch so the leader can tell whether the logs diverge.
func (p *Partition) LastFetchedEpoch() int32 {
	return p.epochs.LatestEpochBefore(p.log.EndOffset())
}

// TruncateTo removes every batch containing an offset >= offset, as a
// follower does when its log diverged from the leader's (found with
// OffsetForLeaderEpoch or a fetch's DivergingEpoch); it fails with
// ErrNotFollower on the leader, whose log only grows. The epoch cache
// loses the entries starting at or after the new LEO (even when nothing
// is cut: an entry at the LEO is an epoch this replica led in without
// appending, which the leader's log contradicts), producer snapshots
// above it are deleted and the producer state is rebuilt from the newest
// snapshot at or below it plus the log (Kafka's loadProducerState), and
// HW drops to the new LEO if it was above. An offset below the log start
// empties the log and restarts it there.
//
// Each step leaves what a crash finds consistent: the log is cut first
// (a crash leaves a prefix of it at or above offset, never a hole), and
// Open trims the epoch cache and producer snapshots to whatever LEO it
// finds, and takes HW no higher than it.
func (p *Partition) TruncateTo(offset int64) error {
	p.snapMu.Lock() // no snapshot of the pre-truncation state may land afterwards
	defer p.snapMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	if err := p.checkTruncation(); err != nil {
		return fmt.Errorf("truncate %s to %d: %w", p.name(), offset, err)
	}
	if offset >= p.log.EndOffset() {
		if err := p.epochs.TruncateFromEnd(p.log.EndOffset()); err != nil {
			return fmt.Errorf("truncate %s to %d: %w", p.name(), offset, err)
		}
		return nil
	}
	if err := p.log.TruncateTo(offset); err != nil {
		// A failure late in the truncation (which poisons the log) may
		// have moved the log end already: HW must not stay above it.
		p.lowerHighWatermark()
		return fmt.Errorf("truncate %s to %d: %w", p.name(), offset, err)
	}
	leo := p.log.EndOffset()
	err := p.epochs.TruncateFromEnd(leo)
	if err == nil {
		err = p.producers.DeleteSnapshotsAbove(leo)
	}
	if err == nil {
		err = p.loadProducers()
	}
	p.lowerHighWatermark()
	if err != nil {
		return fmt.Errorf("truncate %s to %d: %w", p.name(), offset, err)
	}
	if invariants.Enabled {
		p.assertInvariants("truncation")
	}
	return nil
}

// TruncateFullyAndStartAt empties the log and restarts it at offset, for a
// follower whose fetch offset is below its leader's log start (the leader
// answered OFFSET_OUT_OF_RANGE): the epoch history and producer state
// (and snapshots) go with the records, as in Kafka, and HW becomes offset.
// It fails with ErrNotFollower on the leader.
//
// Snapshots and epoch history go first: a crash before the log is cut
// then finds the old log without them, and Open rebuilds both from it; the
// other way round it would find old producer state on an empty log.
func (p *Partition) TruncateFullyAndStartAt(offset int64) error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	p.mu.Lock()
	defer p.mu.Unlock()
	op := fmt.Sprintf("truncate %s fully to start at %d", p.name(), offset)
	if err := p.checkTruncation(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := p.producers.DeleteSnapshotsAbove(-1); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	p.lastSnapshot = -1
	if err := p.epochs.Reset(nil); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := p.log.TruncateFullyAndStartAt(offset); err != nil {
		err = fmt.Errorf("%s: %w", op, err)
		p.lowerHighWatermark()
		if p.log.EndOffset() > p.log.StartOffset() {
			// Not cut after all: the history must describe it again.
			if rerr := p.rebuildEpochs(p.epochs); rerr != nil {
				err = errors.Join(err, rerr)
			}
		}
		return err
	}
	err := p.loadProducers() // nothing to load: empty
	p.lowerHighWatermark()
	if p.hw.Load() < offset {
		p.hw.Store(offset) // the leader committed at least up to its log start
		p.wake(false)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if invariants.Enabled {
		p.assertInvariants("full truncation")
	}
	return nil
}

// checkTruncation refuses a truncation on a closed partition or a leader
// (p.mu held).
func (p *Partition) checkTruncation() error {
	if p.closed.Load() {
		return ErrClosed
	}
	if p.leading.Load() {
		return ErrNotFollower
	}
	return nil
}
