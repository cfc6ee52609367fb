package replica

import (
	"fmt"
	"math"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/segment"
)

// BecomeLeader makes this replica the leader in leaderEpoch, as Kafka's
// makeLeader: the epoch is entered in the leader-epoch cache at the LEO
// before any append of it (so a follower of a later epoch can still find
// where this one's records end, however briefly it led; KIP-320), and the
// LEO is recorded as the epoch's start offset (see
// LeaderEpochStartOffset). HW is kept: the ISR moves it from here (with
// the automatic HW, it moves to the LEO). Calling it again for the epoch
// it leads in is harmless; an epoch older than the replica's, or than one
// in its log, fails with ErrStaleLeaderEpoch and changes nothing.
func (p *Partition) BecomeLeader(leaderEpoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("make %s leader: %w", p.name(), ErrClosed)
	}
	if err := p.checkNewEpoch(leaderEpoch); err != nil {
		return fmt.Errorf("make %s leader: %w", p.name(), err)
	}
	leo, hw0 := p.log.EndOffset(), p.hw.Load()
	if p.epochs.LatestEpoch() < leaderEpoch {
		if err := p.epochs.Assign(leaderEpoch, leo); err != nil {
			return fmt.Errorf("make %s leader in epoch %d: %w", p.name(), leaderEpoch, err)
		}
	}
	if !p.leading.Load() || leaderEpoch != p.leaderEpoch.Load() {
		p.epochStart.Store(leo)
	}
	p.leaderEpoch.Store(leaderEpoch)
	p.leading.Store(true)
	if p.autoHW.Load() {
		p.advanceHighWatermark(leo)
	}
	p.logger.Debug("leading", "leaderEpoch", leaderEpoch, "epochStartOffset", p.epochStart.Load(), "highWatermark", p.hw.Load())
	if invariants.Enabled {
		p.assertHWKept("becoming leader", hw0)
		p.assertInvariants("becoming leader")
	}
	return nil
}

// BecomeFollower makes this replica a follower in leaderEpoch: Append
// fails with ErrNotLeader from now on (an append already holding the lock
// finishes first), and the leader's batches come in through
// AppendAsFollower. The log and HW are kept; truncation is the fetcher's
// decision (TruncateTo). An older epoch fails with ErrStaleLeaderEpoch.
func (p *Partition) BecomeFollower(leaderEpoch int32) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("make %s follower: %w", p.name(), ErrClosed)
	}
	if err := p.checkNewEpoch(leaderEpoch); err != nil {
		return fmt.Errorf("make %s follower: %w", p.name(), err)
	}
	p.leaderEpoch.Store(leaderEpoch)
	p.leading.Store(false)
	p.epochStart.Store(-1)
	p.logger.Debug("following", "leaderEpoch", leaderEpoch, "logEndOffset", p.log.EndOffset(), "highWatermark", p.hw.Load())
	if invariants.Enabled {
		p.assertInvariants("becoming follower")
	}
	return nil
}

// checkNewEpoch refuses a role change to an epoch older than the current
// one or than the newest in the epoch history (p.mu held).
func (p *Partition) checkNewEpoch(epoch int32) error {
	cur, latest := p.leaderEpoch.Load(), p.epochs.LatestEpoch()
	if epoch < cur || epoch < latest {
		return fmt.Errorf("leader epoch %d, replica is in %d, history has %d: %w", epoch, cur, latest, ErrStaleLeaderEpoch)
	}
	return nil
}

// IsLeader reports whether this replica leads (Append is allowed).
func (p *Partition) IsLeader() bool { return p.leading.Load() }

// LeaderEpochStartOffset is the LEO when this replica took leadership in
// its current epoch, -1 while it follows. The ISR admits a follower only
// once it reached it, and until HW reaches it ListOffsets answers
// OFFSET_NOT_AVAILABLE (the new leader's HW may lag the old leader's).
func (p *Partition) LeaderEpochStartOffset() int64 { return p.epochStart.Load() }

// ReadForFollower serves a follower's fetch on the leader: Read, but up
// to the LEO rather than HW (followers replicate what is not committed
// yet; that is how it gets committed), with the same zero-copy file
// ranges. It fails with ErrNotLeader on a follower. The caller must
// Release the result.
func (p *Partition) ReadForFollower(offset int64, maxBytes int, minOne bool) (segment.ReadResult, error) {
	if !p.leading.Load() {
		return segment.ReadResult{}, fmt.Errorf("follower read of %s at %d: %w", p.name(), offset, ErrNotLeader)
	}
	res, err := p.log.Read(offset, maxBytes, math.MaxInt64, minOne)
	if err != nil {
		return res, fmt.Errorf("follower read of %s at %d: %w", p.name(), offset, err)
	}
	return res, nil
}
