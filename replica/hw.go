package replica

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/internal/invariants"
	"github.com/sluice-io/sluice/segment"
)

// HighWatermarkCheckpointFile is the name of the HW checkpoint in a
// partition directory. Kafka keeps one replication-offset-checkpoint per
// log dir; one file per partition keeps a partition's files together (it
// is written only for replicated partitions, at the interval the caller
// schedules and at Close). The text layout is Kafka's offset checkpoint
// with one entry: version 0, count 1, "topic partition offset".
const HighWatermarkCheckpointFile = "high-watermark-checkpoint"

// advanceHighWatermark moves HW forward to hw and wakes waiting fetches;
// it never lowers HW. Callers hold p.mu.
func (p *Partition) advanceHighWatermark(hw int64) bool {
	if hw <= p.hw.Load() {
		return false
	}
	p.hw.Store(hw)
	p.wake(false)
	return true
}

// lowerHighWatermark drops HW to the LEO after the log lost its end (p.mu
// held): the one way HW moves back, allowed because a replica that
// truncates follows, and what it cut was never committed by its leader.
func (p *Partition) lowerHighWatermark() {
	if leo := p.log.EndOffset(); p.hw.Load() > leo {
		p.hw.Store(leo)
	}
}

// wake closes the current Changed channel and installs a fresh one, unless
// final, which leaves it closed for good.
func (p *Partition) wake(final bool) {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	if p.changedFinal {
		return
	}
	close(p.changed)
	if final {
		p.changedFinal = true
		return
	}
	p.changed = make(chan struct{})
}

// Changed returns a channel that is closed the next time HW advances (or the
// partition is closed; after Close it is always closed). A long-polling fetch takes it before checking for
// data, so an append between the check and the wait still wakes it.
func (p *Partition) Changed() <-chan struct{} {
	p.changedMu.Lock()
	defer p.changedMu.Unlock()
	return p.changed
}

// SetAutoHighWatermark says whether leader appends move HW to the new LEO
// (on: one replica, everything in the log is committed) or leave it to
// SetHighWatermark (off: the ISR decides). Open starts it on unless
// Config.Replicated. Turning it on while leading moves HW to the LEO at
// once.
func (p *Partition) SetAutoHighWatermark(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.autoHW.Store(on)
	if on && p.leading.Load() && !p.closed.Load() {
		p.advanceHighWatermark(p.log.EndOffset())
	}
}

// SetHighWatermark stores the HW the replication protocol decided and
// wakes waiting fetches if it advanced; it reports whether it did.
//
// On the leader hw is what the ISR reached (the isr core's decision): it
// must not exceed the LEO (an error wrapping ErrOffsetOutOfRange, nothing
// changes), and one at or below the current HW is ignored, because the
// leader's HW never moves backwards (Kafka's maybeIncrementHighWatermark).
//
// On a follower hw is the leader's HW from a fetch response: it is
// clamped to [log start, LEO] (the follower may hold less than the leader
// committed) and taken as it is, even if lower, as Kafka's follower does
// (maybeUpdateHighWatermark): after a failover the new leader's HW can lag
// the old one's by a fetch round. Within one leader's epoch the leader's
// HW only grows, so a follower's goes back only across a leader change
// or by truncation.
func (p *Partition) SetHighWatermark(hw int64) (advanced bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return false, fmt.Errorf("set high watermark of %s: %w", p.name(), ErrClosed)
	}
	start, leo, hw0 := p.log.StartOffset(), p.log.EndOffset(), p.hw.Load()
	if p.leading.Load() {
		if hw > leo {
			return false, fmt.Errorf("set high watermark of %s to %d beyond LEO %d: %w", p.name(), hw, leo, ErrOffsetOutOfRange)
		}
		advanced = p.advanceHighWatermark(hw)
		if invariants.Enabled {
			p.assertHWKept("setting the high watermark", hw0)
			p.assertInvariants("setting the high watermark")
		}
		return advanced, nil
	}
	hw = min(max(hw, start), leo)
	if hw < hw0 {
		p.hw.Store(hw)
	} else {
		advanced = p.advanceHighWatermark(hw)
	}
	if invariants.Enabled {
		p.assertInvariants("setting the high watermark")
	}
	return advanced, nil
}

// CheckpointHighWatermark persists HW (atomically, through segment.FS) if
// it changed since the last checkpoint, so that a restarted replica of a
// replicated partition starts from it rather than from its LEO. The
// caller schedules it (replica.high.watermark.checkpoint.interval.ms);
// Close writes a last one.
func (p *Partition) CheckpointHighWatermark() error {
	p.hwCkptMu.Lock()
	defer p.hwCkptMu.Unlock()
	if p.closed.Load() {
		return fmt.Errorf("checkpoint high watermark of %s: %w", p.name(), ErrClosed)
	}
	return p.writeHWCheckpoint()
}

// writeHWCheckpoint writes HW unless it is already on disk; hwCkptMu held.
func (p *Partition) writeHWCheckpoint() error {
	hw := p.hw.Load()
	if hw == p.hwCkpt {
		return nil
	}
	data := fmt.Sprintf("0\n1\n%s %d %d\n", p.topic, p.partition, hw)
	if err := segment.WriteFileAtomic(p.fs, filepath.Join(p.dir, HighWatermarkCheckpointFile), []byte(data)); err != nil {
		return fmt.Errorf("checkpoint high watermark of %s: %w", p.name(), err)
	}
	p.hwCkpt = hw
	return nil
}

// loadHWCheckpoint returns the checkpointed HW clamped to [start, leo]: a
// crash may have taken records the HW had covered (they were committed,
// so the leader still has them and the follower fetches them again). With
// no usable checkpoint it returns start, as Kafka starts from 0: the
// leader's next fetch response tells the truth.
func (p *Partition) loadHWCheckpoint(start, leo int64) int64 {
	path := filepath.Join(p.dir, HighWatermarkCheckpointFile)
	data, err := segment.ReadFile(p.fs, path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			p.logger.Warn("cannot read the high watermark checkpoint, starting from the log start", "file", path, "err", err)
			return start
		}
		// An absent checkpoint reads as the log start, which is 0 as
		// long as HW is 0 (HW >= start): writing 0 would change nothing
		// a later open reads, so writeHWCheckpoint skips it.
		p.hwCkpt = 0
		return start
	}
	hw, err := parseHWCheckpoint(data, p.topic, p.partition)
	if err != nil {
		p.logger.Warn("ignoring the high watermark checkpoint, starting from the log start", "file", path, "err", err)
		return start
	}
	p.hwCkpt = hw
	return min(max(hw, start), leo)
}

// parseHWCheckpoint reads the layout writeHWCheckpoint writes and checks
// that it names this partition.
func parseHWCheckpoint(data []byte, topic string, partition int32) (int64, error) {
	f := strings.Fields(string(data))
	if len(f) != 5 || f[0] != "0" || f[1] != "1" {
		return 0, fmt.Errorf("want version 0 and one entry, have %q", data)
	}
	if f[2] != topic || f[3] != strconv.Itoa(int(partition)) {
		return 0, fmt.Errorf("entry is for %s-%s, not %s-%d", f[2], f[3], topic, partition)
	}
	hw, err := strconv.ParseInt(f[4], 10, 64)
	if err != nil || hw < 0 {
		return 0, fmt.Errorf("bad offset %q", f[4])
	}
	return hw, nil
}
