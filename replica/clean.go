package replica

import (
	"fmt"

	"github.com/sluice-io/sluice/segment"
)

// Compaction of a partition's log (cleanup.policy=compact): the cleaner
// passes the topic's settings, and the partition adds the two bounds only
// it knows. A pass never reaches past the high watermark, since records
// above it may still be truncated away and the older versions they
// replace must survive that; and each idempotent producer's newest batch
// keeps its header, so the producer state rebuilt from the log at the
// next start still knows the producer's last sequence.

// Clean runs one cleaning pass (segment.Log.Clean) up to the high
// watermark. A partition with nothing committed yet is left alone.
func (p *Partition) Clean(opts segment.CleanOptions) (segment.CleanStats, error) {
	if p.closed.Load() {
		return segment.CleanStats{}, fmt.Errorf("clean %s: %w", p.name(), ErrClosed)
	}
	if !p.cleanBound(&opts) {
		return segment.CleanStats{}, nil
	}
	opts.ProducerLastOffsets = p.producers.lastOffsets()
	stats, err := p.log.Clean(opts)
	if err != nil {
		return stats, fmt.Errorf("clean %s: %w", p.name(), err)
	}
	return stats, nil
}

// Dirtiness measures what a pass with opts could clean now.
func (p *Partition) Dirtiness(opts segment.CleanOptions) segment.Dirtiness {
	if p.closed.Load() || !p.cleanBound(&opts) {
		return segment.Dirtiness{FirstDirtyTimestamp: -1}
	}
	return p.log.Dirtiness(opts)
}

// cleanBound sets opts.MaxOffset to the high watermark; false when it is
// 0, which segment would read as "no bound".
func (p *Partition) cleanBound(opts *segment.CleanOptions) bool {
	hw := p.LastStableOffset()
	opts.MaxOffset = hw
	return hw > 0
}

// RollIfDue rolls the active segment once it is segment.ms old, even with
// no append to trigger it, and reports whether it did. A quiet partition
// then still gets its last records cleaned (the cleaner never touches the
// active segment) and deleted by retention.ms.
func (p *Partition) RollIfDue() (bool, error) {
	if p.closed.Load() {
		return false, fmt.Errorf("roll %s: %w", p.name(), ErrClosed)
	}
	rolled, err := p.log.RollIfDue(p.now())
	if err != nil {
		return false, fmt.Errorf("roll %s: %w", p.name(), err)
	}
	return rolled, nil
}

// lastOffsets maps each producer to the last offset of its newest batch.
func (s *ProducerState) lastOffsets() map[int64]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int64]int64, len(s.producers))
	for id, e := range s.producers {
		out[id] = e.Batches[len(e.Batches)-1].LastOffset
	}
	return out
}
