package cleaner

import (
	"github.com/sluice-io/sluice/segment"
)

// Which log to clean next is Kafka's LogCleanerManager.grabFilthiest-
// CompactedLog: among the compacted logs no cleaner holds, those whose
// cleanable dirty ratio reached min.cleanable.dirty.ratio, or that hold a
// dirty record older than max.compaction.lag.ms (and something a pass may
// clean), are eligible; the one with the highest ratio goes first. It is
// a pure function of the measurements, so its rules are tested with
// tables and no logs.

// measured is one candidate with its dirtiness at the time of choosing.
type measured struct {
	c     Candidate
	dirty segment.Dirtiness
}

// mustClean reports whether m holds a dirty record older than its topic's
// max.compaction.lag.ms at nowMs (KIP-354): it is cleaned whatever its
// ratio, provided a pass could clean something.
func (m measured) mustClean(nowMs int64) bool {
	lag := m.c.Settings.MaxCompactionLagMs
	return m.dirty.DirtyBytes > 0 && m.dirty.FirstDirtyTimestamp >= 0 && lag > 0 &&
		nowMs-m.dirty.FirstDirtyTimestamp > lag
}

// eligible reports whether m may be cleaned now.
func (m measured) eligible(nowMs int64) bool {
	if m.dirty.DirtyBytes <= 0 {
		return false
	}
	return m.dirty.Ratio >= m.c.Settings.MinCleanableRatio || m.mustClean(nowMs)
}

// choose returns the index of the log to clean next among ms, or -1. Ties
// go to the earlier candidate, so the choice is deterministic.
func choose(ms []measured, nowMs int64) int {
	best := -1
	for i, m := range ms {
		if !m.eligible(nowMs) {
			continue
		}
		if best < 0 || m.dirty.Ratio > ms[best].dirty.Ratio {
			best = i
		}
	}
	return best
}

// maxDirtyRatio is the highest dirty ratio among ms (Kafka's
// max-dirty-percent, as a fraction), 0 for none.
func maxDirtyRatio(ms []measured) float64 {
	var r float64
	for _, m := range ms {
		r = max(r, m.dirty.Ratio)
	}
	return r
}
