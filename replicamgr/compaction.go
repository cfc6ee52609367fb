package replicamgr

import (
	"strings"
	"time"

	"github.com/sluice-io/sluice/cleaner"
	"github.com/sluice-io/sluice/replica"
)

// Compaction: the replica manager hands the log cleaner (package cleaner)
// the partitions it hosts whose topic's cleanup.policy includes compact,
// leaders and followers alike, with their topic's cleaning settings. The
// cleaner runs beside the periodic tasks, on its own goroutines, started
// by RunCleaner.

// newCleaner builds the cleaner from the broker's log.cleaner.* settings.
func (m *Manager) newCleaner() *cleaner.Cleaner {
	c := m.cfg
	threads := c.LogCleanerThreads
	if !c.LogCleanerEnable {
		threads = 0
	}
	return cleaner.New(cleaner.Config{
		Threads:             threads,
		DedupeBufferBytes:   c.LogCleanerDedupeBufferSize,
		IOMaxBytesPerSecond: c.LogCleanerIOMaxBytesPerSecond,
		Backoff:             time.Duration(c.LogCleanerBackoffMs) * time.Millisecond,
		Clock:               m.clock,
		Logger:              m.logger.With("component", "log-cleaner"),
		Candidates:          m.cleanerCandidates,
	})
}

// cleanerCandidates lists the compacted partitions with an open replica.
func (m *Manager) cleanerCandidates() []cleaner.Candidate {
	var out []cleaner.Candidate
	m.eachReplica(func(t *Topic, p *replica.Partition) {
		if !strings.Contains(t.Config.CleanupPolicy, "compact") {
			return
		}
		out = append(out, cleaner.Candidate{Topic: t.Name, Partition: p.Index(), Log: p, Settings: cleaner.Settings{
			MinCleanableRatio:  t.Config.MinCleanableDirtyRatio,
			MinCompactionLagMs: t.Config.MinCompactionLagMs,
			MaxCompactionLagMs: t.Config.MaxCompactionLagMs,
			DeleteRetentionMs:  t.Config.DeleteRetentionMs,
		}})
	})
	return out
}

// RunCleaner runs the log cleaner's threads until stop is closed and their
// passes end; with log.cleaner.enable=false or no threads it returns at
// once.
func (m *Manager) RunCleaner(stop <-chan struct{}) { m.cleaner.Run(stop) }

// CleanOnce runs one cleaner step (tests, with a fake clock): it cleans
// the dirtiest compacted partition that is due, if any, and reports
// whether it did.
func (m *Manager) CleanOnce() bool { return m.cleaner.Step(0) }

// CleanerStats are the log cleaner's figures, for the metrics.
func (m *Manager) CleanerStats() cleaner.Stats { return m.cleaner.Stats() }
