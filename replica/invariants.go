package replica

import (
	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/segment"
)

// Assertions of the invariants in the package comment, run only in builds
// with the invariants tag (see package internal/invariants); every call
// site is behind `if invariants.Enabled`, so the broker binary compiles
// none of this in.

// assertInvariants checks, with p.mu held after op: logStart <= HW <= LEO;
// the leader-epoch history strictly increasing in epoch and start offset,
// its newest epoch no newer than the one this replica leads in and
// starting no later than the LEO (at the LEO when an append of a new epoch
// assigned it and then failed). Skipped on a poisoned log, whose failed
// mutation may have left it half-done (see segment.ErrLogPoisoned).
func (p *Partition) assertInvariants(op string) {
	if p.log.Poisoned() != nil {
		return
	}
	start, hw, leo := p.log.StartOffset(), p.hw.Load(), p.log.EndOffset()
	if start > hw || hw > leo {
		invariants.Failf("partition %s (%s) after %s: HW %d outside [log start %d, LEO %d]",
			p.name(), p.dir, op, hw, start, leo)
	}
	entries := p.epochs.Entries()
	for i, e := range entries {
		if i > 0 && (e.Epoch <= entries[i-1].Epoch || e.StartOffset <= entries[i-1].StartOffset) {
			invariants.Failf("partition %s (%s) after %s: leader epoch entry %v does not follow %v",
				p.name(), p.dir, op, e, entries[i-1])
		}
	}
	if n := len(entries); n > 0 {
		if last, le := entries[n-1], p.leaderEpoch.Load(); last.Epoch > le || last.StartOffset > leo {
			invariants.Failf("partition %s (%s) after %s: newest leader epoch entry %v, leading in epoch %d, LEO %d",
				p.name(), p.dir, op, last, le, leo)
		}
	}
	if p.leading.Load() {
		if es := p.epochStart.Load(); es < 0 || es > leo {
			invariants.Failf("partition %s (%s) after %s: leading since offset %d, LEO %d", p.name(), p.dir, op, es, leo)
		}
	}
}

// assertFollowerAppend checks a follower append of headers at leo: the
// log now ends right after the last batch, and the epoch history's newest
// epoch with records is the last batch's (for batches carrying one).
func (p *Partition) assertFollowerAppend(headers []segment.BatchHeader, leo int64) {
	last := headers[len(headers)-1]
	if end := p.log.EndOffset(); end != last.LastOffset()+1 {
		invariants.Failf("partition %s (%s): follower append at %d of batches up to %d left LEO %d",
			p.name(), p.dir, leo, last.LastOffset(), end)
	}
	if e, got := last.PartitionLeaderEpoch, p.LastFetchedEpoch(); e >= 0 && got != e {
		invariants.Failf("partition %s (%s): follower append at %d ended with a batch of epoch %d, the epoch history says %d",
			p.name(), p.dir, leo, e, got)
	}
}

// assertHWKept checks that op did not lower HW from hw0: HW only moves
// forward while this replica leads. Only a follower's HW goes back (its
// leader's is lower after a failover, or it truncated).
func (p *Partition) assertHWKept(op string, hw0 int64) {
	if hw := p.hw.Load(); hw < hw0 {
		invariants.Failf("partition %s (%s): %s lowered HW from %d to %d while leading", p.name(), p.dir, op, hw0, hw)
	}
}

// assertEpochNotStale checks, before an append at leo, that the epoch the
// batches will be stamped with is not older than the newest in the
// history: leader epochs in the log never decrease, and Assign with an
// older epoch would silently drop the history after it.
func (p *Partition) assertEpochNotStale(epoch int32, leo int64) {
	if latest := p.epochs.LatestEpoch(); epoch < latest {
		invariants.Failf("partition %s (%s): appending at %d in leader epoch %d, history already has epoch %d",
			p.name(), p.dir, leo, epoch, latest)
	}
}
