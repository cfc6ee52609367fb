// Package replica holds the state of one partition replica: its log
// (package segment), the leader-epoch history, the high watermark and the
// idempotent-producer state, and keeps them consistent with each other across
// appends, deletions, retention, restarts and crashes.
//
// A replica leads (clients append with Append) or follows (the leader's
// batches arrive through AppendAsFollower, keeping the leader's offsets and
// epochs). With one replica the high watermark follows the log end offset
// after every append; with replication (Config.Replicated) the caller sets
// it: the leader from its ISR's log end offsets, a follower from the
// leader's (see SetHighWatermark). Invariants:
//
//   - logStartOffset <= HW <= LEO, always;
//   - HW only moves forward while this replica leads; a follower's follows
//     its leader's and drops with truncation;
//   - reads by clients are bounded by HW (records above it may still be
//     lost in a leader change, so nobody may see them);
//   - the leader-epoch cache holds an entry for the current leader epoch
//     before the first batch of that epoch is written, and none at or above
//     the LEO;
//   - producer state reflects exactly the batches below the LEO (a snapshot
//     at offset X covers the batches below X; the rest is replayed).
package replica

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/segment"
)

// Config is the per-partition configuration (topic config resolved against
// broker defaults).
type Config struct {
	Log                    segment.Config
	MaxMessageBytes        int   // max.message.bytes: limit per record batch (<= 0: none)
	LogAppendTime          bool  // message.timestamp.type=LogAppendTime
	ProducerIDExpirationMs int64 // producer.id.expiration.ms; <= 0 selects the default
	// Replicated: the partition has other replicas, so its HW is what
	// the ISR reached, not the LEO. Open then starts HW at the
	// checkpointed HW (at most the LEO) rather than at the LEO, leader
	// appends leave HW alone (see SetAutoHighWatermark), and Close
	// checkpoints it. False is today's single-replica behaviour.
	Replicated bool
}

// AppendResult is what a produce response needs for one partition.
type AppendResult struct {
	BaseOffset     int64
	LastOffset     int64
	LogAppendTime  int64 // -1 for CreateTime topics
	LogStartOffset int64
	// Duplicate is set when the request retried batches that were already
	// appended: nothing was written and the offsets are the original ones.
	Duplicate bool
}

// Partition is one replica of a topic partition. Append, DeleteRecords,
// retention and Close are serialized by one mutex; Read and the offset
// getters do not take it, so fetches never wait behind a slow append.
type Partition struct {
	fs        segment.FS
	dir       string
	topic     string
	partition int32
	now       func() time.Time
	logger    *slog.Logger

	cfg         atomic.Pointer[Config]
	leaderEpoch atomic.Int32
	hw          atomic.Int64
	closed      atomic.Bool
	// leading: Append is allowed (AppendAsFollower and truncation are
	// not). autoHW: leader appends move HW to the LEO (one replica).
	// epochStart: the LEO when this replica last took leadership, -1
	// while it follows. All three change under mu.
	leading    atomic.Bool
	autoHW     atomic.Bool
	epochStart atomic.Int64

	log       *segment.Log
	epochs    *EpochCache
	producers *ProducerState

	// mu serializes everything that changes the log or producer state.
	mu sync.Mutex

	changedMu sync.Mutex
	changed   chan struct{} // closed (and replaced) when HW advances
	// changedFinal: the partition closed; changed stays closed for good so
	// late long-polls return at once.
	changedFinal bool

	// snapMu serializes snapshot writes; lastSnapshot (guarded by it) is the
	// offset of the newest snapshot on disk, -1 if none.
	snapMu       sync.Mutex
	lastSnapshot int64

	// hwCkptMu serializes HW checkpoint writes with Delete; hwCkpt
	// (guarded by it) is the HW last written, -1 if none.
	hwCkptMu sync.Mutex
	hwCkpt   int64
}

// Open opens (or creates) the replica in dir as leader at leaderEpoch:
// it opens the log (which recovers from a crash by truncating torn batches),
// loads the leader-epoch cache and trims it to the log, loads the newest
// producer snapshot and replays the batch headers after it to rebuild the
// producer state at the log end offset. HW starts at the LEO, or with
// cfg.Replicated at the checkpointed HW. The leader epoch is entered in
// the epoch cache at the first append (BecomeLeader enters it at once);
// BecomeFollower turns the replica into a follower.
func Open(fs segment.FS, dir, topic string, partition int32, leaderEpoch int32, cfg Config,
	now func() time.Time, logger *slog.Logger) (*Partition, error) {
	if now == nil {
		now = time.Now
	}
	if logger == nil {
		logger = slog.Default()
	}
	logger = logger.With("topic", topic, "partition", partition)
	name := fmt.Sprintf("%s-%d", topic, partition)
	if leaderEpoch < 0 {
		return nil, fmt.Errorf("open partition %s: negative leader epoch %d", name, leaderEpoch)
	}
	log, err := segment.Open(fs, dir, cfg.Log, now, logger)
	if err != nil {
		return nil, fmt.Errorf("open partition %s: %w", name, err)
	}
	p := &Partition{
		fs: fs, dir: dir, topic: topic, partition: partition, now: now, logger: logger,
		log: log, changed: make(chan struct{}), lastSnapshot: -1, hwCkpt: -1,
	}
	p.cfg.Store(&cfg)
	p.leaderEpoch.Store(leaderEpoch)
	p.leading.Store(true)
	p.autoHW.Store(!cfg.Replicated)
	if err := p.load(); err != nil {
		log.Close()
		return nil, fmt.Errorf("open partition %s: %w", name, err)
	}
	return p, nil
}

// load rebuilds the epoch cache, producer state and HW from disk.
func (p *Partition) load() error {
	start, leo := p.log.StartOffset(), p.log.EndOffset()

	epochs, err := LoadEpochCache(p.fs, p.dir, p.logger)
	switch {
	case errors.Is(err, errCorruptCheckpoint):
		p.logger.Warn("rebuilding leader epoch cache from the log", "err", err)
		err = p.rebuildEpochs(epochs)
	case err == nil && len(epochs.Entries()) == 0 && leo > start:
		// Every append assigns its epoch first, so an empty cache next to
		// records means the checkpoint was lost; the batches still carry
		// their leader epochs.
		p.logger.Warn("leader epoch checkpoint missing for a non-empty log, rebuilding from the log")
		err = p.rebuildEpochs(epochs)
	}
	if err != nil {
		return err
	}
	// A crash may have cut the log below entries assigned before their
	// batches became durable. Not written now: an empty log's leader
	// would write its entry away here and back at BecomeLeader, two
	// atomic writes per partition at every start; the appends persist
	// it before writing a batch.
	epochs.truncateFromEndUnsynced(leo)
	if err := epochs.TruncateFromStart(start); err != nil {
		return err
	}
	if latest, le := epochs.LatestEpoch(), p.leaderEpoch.Load(); le < latest {
		return fmt.Errorf("leader epoch %d, history has %d: %w", le, latest, ErrStaleLeaderEpoch)
	}
	p.epochs = epochs

	cfg := p.cfg.Load()
	p.producers = NewProducerState(p.fs, p.dir, cfg.ProducerIDExpirationMs, p.logger)
	if err := p.loadProducers(); err != nil {
		return err
	}
	p.logger.Debug("partition loaded", "logStartOffset", start, "logEndOffset", leo,
		"producers", p.producers.Len(), "epochs", epochs.Entries())

	p.hw.Store(leo) // single replica: everything in the log is committed
	if cfg.Replicated {
		// What the ISR had reached may be less than this replica holds.
		p.hw.Store(p.loadHWCheckpoint(start, leo))
	}
	p.epochStart.Store(leo)
	if invariants.Enabled {
		p.assertInvariants("open")
	}
	return nil
}

// loadProducers rebuilds the producer state at the LEO from the newest usable
// snapshot plus a replay of the batch headers after it. Callers hold snapMu
// or have not published p yet.
func (p *Partition) loadProducers() error {
	start, leo := p.log.StartOffset(), p.log.EndOffset()
	snapOff, err := p.producers.Load(leo)
	if err != nil {
		return err
	}
	p.lastSnapshot = -1
	if snapOff > 0 {
		p.lastSnapshot = snapOff
	}
	// Batches deleted by retention since the snapshot cannot be replayed;
	// their producers keep the snapshot's (slightly older) state, which only
	// matters to a retry of one of those deleted batches.
	from := max(snapOff, start)
	replayed := 0
	if from < leo {
		err := p.log.ScanBatches(from, func(h segment.BatchHeader) error {
			if h.LastOffset() < from {
				return nil // the batch containing from starts below it
			}
			p.producers.Update(h, h.BaseOffset, h.LastOffset())
			replayed++
			return nil
		})
		if err != nil {
			return fmt.Errorf("replay producer state from %d: %w", from, err)
		}
	}
	p.logger.Debug("producer state loaded", "snapshot", snapOff, "replayedBatches", replayed)
	return nil
}

// rebuildEpochs derives the epoch history from the leader epochs stamped in
// the batch headers, applying the same rules as Assign.
func (p *Partition) rebuildEpochs(c *EpochCache) error {
	var entries []EpochEntry
	err := p.log.ScanBatches(p.log.StartOffset(), func(h segment.BatchHeader) error {
		if h.PartitionLeaderEpoch < 0 {
			return nil
		}
		if n := len(entries); n > 0 && entries[n-1].Epoch == h.PartitionLeaderEpoch {
			return nil
		}
		entries, _ = assignEntry(entries, EpochEntry{Epoch: h.PartitionLeaderEpoch, StartOffset: h.BaseOffset})
		return nil
	})
	if err != nil {
		return fmt.Errorf("rebuild leader epoch cache: %w", err)
	}
	return c.Reset(entries)
}

// Append validates records (one or more record batches of a produce request
// for this partition) and appends them as a whole or not at all.
//
// Order matters: validation and producer checks come before any write so a
// rejected request leaves no trace; the epoch entry is persisted before the
// first batch of the epoch so the cache never lags the log; producer state and
// HW are updated only after the log accepted the batches.
func (p *Partition) Append(records []byte) (AppendResult, error) {
	cfg := p.cfg.Load()
	// CRC and record parsing are the expensive part; do them before taking
	// the lock so appends from many connections validate in parallel.
	headers, err := segment.ValidateBatches(records, cfg.MaxMessageBytes)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	for i := range headers {
		if headers[i].Control() {
			// Control records are written by the broker itself (transaction
			// markers), never accepted from clients.
			return AppendResult{}, fmt.Errorf("append to %s: control batch from a client: %w", p.name(), segment.ErrInvalidRecord)
		}
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return AppendResult{}, fmt.Errorf("append to %s: %w", p.name(), ErrClosed)
	}
	if !p.leading.Load() {
		return AppendResult{}, fmt.Errorf("append to %s in leader epoch %d: %w", p.name(), p.leaderEpoch.Load(), ErrNotLeader)
	}
	dup, err := p.producers.CheckAll(headers)
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	if dup != nil {
		res := AppendResult{BaseOffset: dup.FirstOffset, LastOffset: dup.LastOffset,
			LogAppendTime: -1, LogStartOffset: p.log.StartOffset(), Duplicate: true}
		if cfg.LogAppendTime {
			res.LogAppendTime = dup.MaxTimestamp
		}
		return res, nil
	}

	epoch := p.leaderEpoch.Load()
	leo := p.log.EndOffset()
	var hw0 int64
	if invariants.Enabled {
		p.assertEpochNotStale(epoch, leo)
		hw0 = p.hw.Load()
	}
	if p.epochs.LatestEpoch() != epoch {
		if err := p.epochs.Assign(epoch, leo); err != nil {
			return AppendResult{}, fmt.Errorf("append to %s: %w", p.name(), err)
		}
	}
	if err := p.epochs.persist(); err != nil {
		return AppendResult{}, fmt.Errorf("append to %s: %w", p.name(), err)
	}
	appendTime := int64(-1)
	if cfg.LogAppendTime {
		appendTime = p.now().UnixMilli()
	}
	info, err := p.log.Append(records, headers, epoch, appendTime)
	if p.log.EndOffset() == leo {
		if err == nil {
			err = errors.New("log accepted the batches but its end offset did not move")
		}
		return AppendResult{}, fmt.Errorf("append to %s at offset %d: %w", p.name(), leo, err)
	}
	// The batches are in the log (even if err reports a failed fsync after
	// the write), so producer state and HW must account for them: otherwise a
	// retry of a written batch would be appended a second time.
	// Log.Append rewrote headers in place: real offsets, epoch, timestamps.
	for i := range headers {
		p.producers.Update(headers[i], headers[i].BaseOffset, headers[i].LastOffset())
	}
	if p.autoHW.Load() {
		// Single replica: the append is committed once it is in the log.
		p.advanceHighWatermark(p.log.EndOffset())
	}
	if invariants.Enabled {
		p.assertHWKept("append", hw0)
		p.assertInvariants("append")
	}
	if err != nil {
		return AppendResult{}, fmt.Errorf("append to %s at offset %d: %w", p.name(), leo, err)
	}
	return AppendResult{BaseOffset: info.FirstOffset, LastOffset: info.LastOffset,
		LogAppendTime: appendTime, LogStartOffset: info.LogStartOffset}, nil
}

// Read returns whole batches starting with the one containing offset, only
// below HW (a client's fetch, on the leader or, KIP-392, a follower). The
// caller must Release the result.
func (p *Partition) Read(offset int64, maxBytes int, minOne bool) (segment.ReadResult, error) {
	res, err := p.log.Read(offset, maxBytes, p.hw.Load(), minOne)
	if err != nil {
		return res, fmt.Errorf("read %s at %d: %w", p.name(), offset, err)
	}
	return res, nil
}

// HighWatermark returns the offset below which records are committed.
func (p *Partition) HighWatermark() int64 { return p.hw.Load() }

// LastStableOffset equals HW until transactions exist.
func (p *Partition) LastStableOffset() int64 { return p.hw.Load() }

// LogStartOffset returns the first offset still in the log.
func (p *Partition) LogStartOffset() int64 { return p.log.StartOffset() }

// LogEndOffset returns the offset the next appended record gets.
func (p *Partition) LogEndOffset() int64 { return p.log.EndOffset() }

// LeaderEpoch returns the epoch this replica leads or follows in.
func (p *Partition) LeaderEpoch() int32 { return p.leaderEpoch.Load() }

// EpochEntries returns the leader-epoch history (for tests and debugging).
func (p *Partition) EpochEntries() []EpochEntry { return p.epochs.Entries() }

// OffsetForLeaderEpoch answers OffsetForLeaderEpoch (the end offset of
// epoch in this replica's log, see EpochCache.EndOffsetFor) on a leader,
// and on a follower gives the local end of the epoch the leader named,
// which truncation needs (KIP-279). The latest epoch ends at the LEO, not
// at HW, as a follower must not truncate records it already holds.
func (p *Partition) OffsetForLeaderEpoch(epoch int32) (int32, int64) {
	return p.epochs.EndOffsetFor(epoch, p.log.EndOffset())
}

// FindOffsetByTimestamp returns the first batch with a timestamp >= ts below
// HW (ListOffsets with a timestamp).
func (p *Partition) FindOffsetByTimestamp(ts int64) (offset, timestamp int64, ok bool) {
	offset, timestamp, ok = p.log.FindOffsetByTimestamp(ts)
	if ok && offset >= p.hw.Load() {
		return -1, -1, false
	}
	return offset, timestamp, ok
}

// MaxTimestamp returns the offset and value of the largest timestamp in the
// log (ListOffsets -3).
func (p *Partition) MaxTimestamp() (offset, timestamp int64) { return p.log.MaxTimestamp() }

// DeleteRecords moves the log start offset to before (DeleteRecords API);
// before == -1 means HW. Offsets above HW are out of range, because deleting
// uncommitted records would let a consumer's position pass the HW. Moving
// backwards is a no-op. It returns the new log start offset.
//
// Producer state is kept: per KIP-360 it lives until expiry, so a producer
// retrying a batch that was just deleted is still recognised.
func (p *Partition) DeleteRecords(before int64) (lowWatermark int64, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return -1, fmt.Errorf("delete records of %s: %w", p.name(), ErrClosed)
	}
	hw := p.hw.Load()
	if before == -1 {
		before = hw
	}
	if before < 0 || before > hw {
		return -1, fmt.Errorf("delete records of %s before %d (high watermark %d): %w",
			p.name(), before, hw, ErrOffsetOutOfRange)
	}
	if before <= p.log.StartOffset() {
		return p.log.StartOffset(), nil
	}
	if err := p.log.SetStartOffset(before); err != nil {
		return -1, fmt.Errorf("delete records of %s before %d: %w", p.name(), before, err)
	}
	if err := p.epochs.TruncateFromStart(p.log.StartOffset()); err != nil {
		return -1, fmt.Errorf("delete records of %s before %d: %w", p.name(), before, err)
	}
	if invariants.Enabled {
		p.assertHWKept("delete records", hw)
		p.assertInvariants("delete records")
	}
	return p.log.StartOffset(), nil
}

// ApplyRetention deletes segments beyond retention.ms / retention.bytes and
// returns how many.
func (p *Partition) ApplyRetention() (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return 0, fmt.Errorf("retention of %s: %w", p.name(), ErrClosed)
	}
	var hw0 int64
	if invariants.Enabled {
		hw0 = p.hw.Load()
	}
	n, err := p.log.ApplyRetention()
	if err != nil {
		return n, fmt.Errorf("retention of %s: %w", p.name(), err)
	}
	if n > 0 {
		if err := p.epochs.TruncateFromStart(p.log.StartOffset()); err != nil {
			return n, fmt.Errorf("retention of %s: %w", p.name(), err)
		}
	}
	if invariants.Enabled {
		p.assertHWKept("retention", hw0)
		p.assertInvariants("retention")
	}
	return n, nil
}

// ExpireProducers forgets producers idle for longer than
// producer.id.expiration.ms; the broker calls it periodically.
func (p *Partition) ExpireProducers() int { return p.producers.ExpireProducers(p.now()) }

// Flush fsyncs the log and then writes a producer snapshot at the LEO, so the
// next open replays only what was appended afterwards. The snapshot follows
// the log flush so it never describes records a crash could still lose.
func (p *Partition) Flush() error {
	if p.closed.Load() {
		return fmt.Errorf("flush %s: %w", p.name(), ErrClosed)
	}
	if err := p.log.Flush(); err != nil {
		return fmt.Errorf("flush %s: %w", p.name(), err)
	}
	return p.snapshot()
}

// snapshot writes a producer snapshot at the current LEO unless one exists.
func (p *Partition) snapshot() error {
	p.snapMu.Lock()
	defer p.snapMu.Unlock()
	// Encode under the append lock so the state matches the LEO exactly;
	// write (with its fsyncs) outside it.
	p.mu.Lock()
	leo := p.log.EndOffset()
	if leo == p.lastSnapshot || (leo == 0 && p.producers.Len() == 0) {
		// An empty state at offset 0 is what loadProducers builds with
		// no snapshot at all: writing it would cost two fsyncs per
		// never-written partition at every flush and close.
		p.mu.Unlock()
		return nil
	}
	data := p.producers.encodeSnapshot(leo)
	p.mu.Unlock()
	if err := p.producers.writeSnapshotData(leo, data); err != nil {
		return fmt.Errorf("snapshot %s: %w", p.name(), err)
	}
	p.lastSnapshot = leo
	return nil
}

// SetConfig applies a topic config change. A change of Replicated
// switches the automatic HW (see SetAutoHighWatermark).
func (p *Partition) SetConfig(cfg Config) {
	old := p.cfg.Swap(&cfg)
	p.log.SetConfig(cfg.Log)
	p.producers.SetExpirationMs(cfg.ProducerIDExpirationMs)
	if old.Replicated != cfg.Replicated {
		p.SetAutoHighWatermark(!cfg.Replicated)
	}
}

// Close flushes the log, writes a producer snapshot (and, unless HW is
// automatic, the HW checkpoint) and closes the log. Waiting fetches are
// woken; later calls fail with ErrClosed.
func (p *Partition) Close() error {
	if !p.markClosed() {
		return nil
	}
	err := p.log.Flush()
	if err == nil {
		err = p.snapshot()
	}
	if err == nil && !p.autoHW.Load() {
		p.hwCkptMu.Lock()
		err = p.writeHWCheckpoint()
		p.hwCkptMu.Unlock()
	}
	err = errors.Join(err, p.log.Close())
	if err != nil {
		return fmt.Errorf("close %s: %w", p.name(), err)
	}
	return nil
}

// Delete closes the partition and removes its directory.
func (p *Partition) Delete() error {
	p.snapMu.Lock() // let a running snapshot finish before the directory goes
	defer p.snapMu.Unlock()
	p.hwCkptMu.Lock() // and a running HW checkpoint
	defer p.hwCkptMu.Unlock()
	p.markClosed()
	if err := p.log.Delete(); err != nil {
		return fmt.Errorf("delete %s: %w", p.name(), err)
	}
	return nil
}

// markClosed stops further mutations (waiting for a running one) and wakes
// long-polls; it reports whether this call closed the partition.
func (p *Partition) markClosed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Swap(true) {
		return false
	}
	p.wake(true)
	return true
}

// Size returns the bytes of all segments.
func (p *Partition) Size() int64 { return p.log.Size() }

// NumSegments returns the number of segments.
func (p *Partition) NumSegments() int { return p.log.NumSegments() }

// Poisoned is why the partition's log refuses writes until the broker
// restarts (a failed fsync; see segment.ErrLogPoisoned), nil if it does not.
func (p *Partition) Poisoned() error { return p.log.Poisoned() }

// RecoveryGaps is the number of damaged offset ranges recovery found when
// the log was opened; each was logged at ERROR.
func (p *Partition) RecoveryGaps() int { return len(p.log.Gaps()) }

// Topic returns the topic name.
func (p *Partition) Topic() string { return p.topic }

// Index returns the partition number.
func (p *Partition) Index() int32 { return p.partition }

func (p *Partition) name() string { return fmt.Sprintf("%s-%d", p.topic, p.partition) }

// NumProducers is the number of producer ids with live idempotence state.
func (p *Partition) NumProducers() int { return p.producers.Len() }
