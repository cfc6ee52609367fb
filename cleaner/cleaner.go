// Package cleaner runs log compaction (cleanup.policy=compact): Kafka's
// LogCleaner. log.cleaner.threads goroutines each take the dirtiest
// compacted log that is due (choose.go), run one cleaning pass over it
// (segment.Log.Clean through replica.Partition.Clean, which bounds it by
// the high watermark), and sleep log.cleaner.backoff.ms when no log is
// due. All passes together read and write at most
// log.cleaner.io.max.bytes.per.second, and share
// log.cleaner.dedupe.buffer.size for their key maps.
//
// The cleaner knows nothing of topics beyond the candidates it is handed:
// the replica manager lists the compacted partitions it hosts, leaders and
// followers alike (every replica compacts its own copy, as in Kafka).
package cleaner

import (
	"errors"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/internal/quota"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// Log is a partition's log as the cleaner uses it (*replica.Partition).
type Log interface {
	Dirtiness(segment.CleanOptions) segment.Dirtiness
	Clean(segment.CleanOptions) (segment.CleanStats, error)
}

// Settings are a compacted topic's cleaning settings.
type Settings struct {
	MinCleanableRatio  float64 // min.cleanable.dirty.ratio
	MinCompactionLagMs int64   // min.compaction.lag.ms
	MaxCompactionLagMs int64   // max.compaction.lag.ms
	DeleteRetentionMs  int64   // delete.retention.ms
}

// Candidate is one compacted partition hosted on this node.
type Candidate struct {
	Topic     string
	Partition int32
	Log       Log
	Settings  Settings
}

// Config is what New needs.
type Config struct {
	Threads             int     // log.cleaner.threads; 0 cleans nothing
	DedupeBufferBytes   int64   // log.cleaner.dedupe.buffer.size, shared by the threads
	IOMaxBytesPerSecond float64 // log.cleaner.io.max.bytes.per.second
	Backoff             time.Duration
	Clock               clock.Clock // nil: the wall clock
	Logger              *slog.Logger
	// Candidates lists the compacted partitions to consider; called at
	// every choice, so it follows topics created, deleted and altered.
	Candidates func() []Candidate
}

// PartitionStats is one compacted partition as the cleaner last saw it.
type PartitionStats struct {
	Topic     string
	Partition int32
	// DirtyRatio is its cleanable dirty ratio at the last choice.
	DirtyRatio float64
	// LastCleaned is when a pass on it last ended; zero if none since
	// this broker started.
	LastCleaned time.Time
	// Uncleanable: a pass failed (not merely aborted) and the partition
	// is skipped until the broker restarts (Kafka's uncleanable
	// partitions).
	Uncleanable bool
}

// Stats are the cleaner's figures, for the metrics.
type Stats struct {
	Runs, Failures          uint64 // passes completed, passes failed
	BytesRead, BytesWritten int64  // by all passes
	RecordsDropped          int64
	// RecopyRatio is the last pass's bytes written over bytes read
	// (Kafka's cleaner-recopy-percent, as a fraction).
	RecopyRatio float64
	// MaxCleanTime is the longest of each thread's last pass (Kafka's
	// max-clean-time-secs).
	MaxCleanTime time.Duration
	// MaxDirtyRatio is the highest dirty ratio at the last choice
	// (Kafka's max-dirty-percent, as a fraction).
	MaxDirtyRatio float64
	// LastRun is when the last pass ended; zero before the first.
	LastRun    time.Time
	Partitions []PartitionStats // in no particular order
}

type partKey struct {
	topic     string
	partition int32
}

// Cleaner schedules and runs cleaning passes.
type Cleaner struct {
	cfg   Config
	clock clock.Clock
	log   *slog.Logger
	rate  *quota.Rate // shared by every pass

	mu       sync.Mutex
	busy     map[partKey]bool
	parts    map[partKey]*PartitionStats
	stats    Stats
	lastPass []time.Duration // per thread
}

// New returns a cleaner; Run starts it.
func New(cfg Config) *Cleaner {
	c := &Cleaner{cfg: cfg, clock: cfg.Clock, log: cfg.Logger,
		busy: map[partKey]bool{}, parts: map[partKey]*PartitionStats{}, lastPass: make([]time.Duration, max(cfg.Threads, 0))}
	if c.clock == nil {
		c.clock = clock.Real()
	}
	if c.log == nil {
		c.log = slog.Default()
	}
	if r := cfg.IOMaxBytesPerSecond; r >= 1 && r < math.MaxInt64 {
		c.rate = quota.New(int64(r))
	}
	return c
}

// Run runs the cleaner threads until stop is closed and their passes end.
func (c *Cleaner) Run(stop <-chan struct{}) {
	var wg sync.WaitGroup
	for i := range c.cfg.Threads {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if !c.Step(i) {
					c.sleep(c.cfg.Backoff, stop)
				}
			}
		}()
	}
	wg.Wait()
}

// sleep waits d on the cleaner's clock, or until stop.
func (c *Cleaner) sleep(d time.Duration, stop <-chan struct{}) {
	if d <= 0 {
		d = time.Second // never spin
	}
	done := make(chan struct{})
	disarm := c.clock.AfterFunc(d, func() { close(done) })
	defer disarm()
	select {
	case <-done:
	case <-stop:
	}
}

// Step is one cleaner thread's turn (thread in [0, Threads)): choose the
// log due for cleaning, if any, and run one pass over it. It reports
// whether a log was chosen.
func (c *Cleaner) Step(thread int) bool {
	cand, ok := c.grab()
	if !ok {
		return false
	}
	k := partKey{cand.Topic, cand.Partition}
	defer func() {
		c.mu.Lock()
		delete(c.busy, k)
		c.mu.Unlock()
	}()
	opts := segment.CleanOptions{
		MinCompactionLagMs: cand.Settings.MinCompactionLagMs,
		DeleteRetentionMs:  cand.Settings.DeleteRetentionMs,
		DedupeBufferBytes:  c.cfg.DedupeBufferBytes / int64(max(c.cfg.Threads, 1)),
		Throttle:           c.throttle,
	}
	began := c.clock.Now()
	st, err := cand.Log.Clean(opts)
	c.record(thread, k, st, err, c.clock.Now().Sub(began))
	return true
}

// grab measures every candidate and marks the one to clean busy.
func (c *Cleaner) grab() (Candidate, bool) {
	cands := c.cfg.Candidates()
	nowMs := c.clock.Now().UnixMilli()
	c.mu.Lock()
	skip := make(map[partKey]bool, len(c.busy))
	for k := range c.busy {
		skip[k] = true
	}
	for k, ps := range c.parts {
		if ps.Uncleanable {
			skip[k] = true
		}
	}
	c.mu.Unlock()

	ms := make([]measured, 0, len(cands))
	seen := make(map[partKey]float64, len(cands))
	for _, cand := range cands {
		k := partKey{cand.Topic, cand.Partition}
		d := cand.Log.Dirtiness(segment.CleanOptions{MinCompactionLagMs: cand.Settings.MinCompactionLagMs})
		seen[k] = d.Ratio
		if !skip[k] {
			ms = append(ms, measured{c: cand, dirty: d})
		}
	}
	i := choose(ms, nowMs)

	c.mu.Lock()
	defer c.mu.Unlock()
	for k := range c.parts {
		if _, ok := seen[k]; !ok {
			delete(c.parts, k) // no longer compacted here
		}
	}
	for k, r := range seen {
		ps := c.parts[k]
		if ps == nil {
			ps = &PartitionStats{Topic: k.topic, Partition: k.partition}
			c.parts[k] = ps
		}
		ps.DirtyRatio = r
	}
	c.stats.MaxDirtyRatio = maxDirtyRatio(ms)
	if i < 0 || c.busy[partKey{ms[i].c.Topic, ms[i].c.Partition}] {
		return Candidate{}, false
	}
	c.busy[partKey{ms[i].c.Topic, ms[i].c.Partition}] = true
	return ms[i].c, true
}

// throttle paces every pass together to the I/O rate.
func (c *Cleaner) throttle(n int) {
	if c.rate == nil {
		return
	}
	now := c.clock.Now()
	c.rate.Record(int64(n), now)
	if d := c.rate.Delay(now); d > 0 {
		done := make(chan struct{})
		disarm := c.clock.AfterFunc(d, func() { close(done) })
		<-done
		disarm()
	}
}

// record books a pass's outcome.
func (c *Cleaner) record(thread int, k partKey, st segment.CleanStats, err error, took time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.clock.Now()
	ps := c.parts[k]
	if ps == nil {
		ps = &PartitionStats{Topic: k.topic, Partition: k.partition}
		c.parts[k] = ps
	}
	c.stats.BytesRead += st.BytesRead
	c.stats.BytesWritten += st.BytesWritten
	c.stats.RecordsDropped += st.RecordsDropped
	switch {
	case err == nil:
		c.stats.Runs++
		c.stats.LastRun = now
		ps.LastCleaned = now
		if thread < len(c.lastPass) {
			c.lastPass[thread] = took
		}
		c.stats.MaxCleanTime = 0
		for _, d := range c.lastPass {
			c.stats.MaxCleanTime = max(c.stats.MaxCleanTime, d)
		}
		if st.BytesRead > 0 {
			c.stats.RecopyRatio = float64(st.BytesWritten) / float64(st.BytesRead)
		}
		if st.RecordsDropped > 0 {
			c.log.Info("cleaned log", "topic", k.topic, "partition", k.partition, "records_dropped", st.RecordsDropped,
				"bytes_read", st.BytesRead, "bytes_written", st.BytesWritten, "checkpoint", st.EndOffset, "took", took)
		}
	case errors.Is(err, segment.ErrCleanAborted), errors.Is(err, segment.ErrCleanerBusy), errors.Is(err, replica.ErrClosed):
		// Retention, truncation or a close changed the log under the
		// pass: what was swapped stays, the rest waits for the next.
		c.log.Debug("cleaning pass aborted", "topic", k.topic, "partition", k.partition, "err", err)
	default:
		c.stats.Failures++
		ps.Uncleanable = true
		c.log.Error("cleaning failed; the partition is not cleaned again until the broker restarts",
			"topic", k.topic, "partition", k.partition, "err", err)
	}
}

// Stats returns the cleaner's figures now.
func (c *Cleaner) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Partitions = make([]PartitionStats, 0, len(c.parts))
	for _, ps := range c.parts {
		s.Partitions = append(s.Partitions, *ps)
	}
	return s
}
