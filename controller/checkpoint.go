package controller

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"

	"github.com/sluice-io/sluice/internal/invariants"
)

// CheckpointRecord restates the whole metadata as of its own offset:
// applied, it replaces the State. It is how the replicated metadata log
// stops growing (KRaft keeps snapshot files beside its log; Sluice keeps
// the snapshot in the log): the active controller appends one, alone in a
// checkpoint batch, every metadata.log.max.record.bytes.between.snapshots
// of records or metadata.log.max.snapshot.interval.ms, and once it is
// committed each voter drops every batch below it (package metarepl). A
// voter that replays the log from its start, a voter that fell behind the
// leader's start and an observer all begin at a checkpoint.
type CheckpointRecord struct {
	State *State `json:"state"`
}

func (CheckpointRecord) recordType() string { return "metadata_checkpoint" }

// applyCheckpoint replaces s by the checkpoint's State. A topic equal to
// s's own keeps s's *Topic, so an Image after a checkpoint shares every
// unchanged topic with the one before (the replica manager skips those),
// as after any other batch.
func (s *State) applyCheckpoint(r CheckpointRecord) error {
	switch {
	case r.State == nil:
		return errors.New("checkpoint holds no state")
	case r.State.ClusterID != s.ClusterID:
		return fmt.Errorf("checkpoint of cluster %q applied to cluster %q", r.State.ClusterID, s.ClusterID)
	case r.State.NextProducerID < s.NextProducerID:
		return fmt.Errorf("checkpoint would take producer ids back from %d to %d", s.NextProducerID, r.State.NextProducerID)
	}
	next := r.State.clone() // clears r.State's ownership: neither changes a topic in place
	if invariants.Enabled && !s.empty() {
		// A node that replayed the log up to a checkpoint must already
		// hold exactly what it restates: anything else means the log or
		// the replay lost or changed a committed record.
		if d := s.differs(next); d != "" {
			invariants.Failf("controller: checkpoint differs from the replayed state: %s", d)
		}
	}
	for name, t := range next.Topics {
		if old, ok := s.Topics[name]; ok && old != t && reflect.DeepEqual(old, t) {
			next.Topics[name], next.byID[t.ID] = old, old
		}
	}
	*s = *next
	return nil
}

// empty reports whether s holds nothing yet: a replay that starts at a
// checkpoint.
func (s *State) empty() bool {
	return len(s.Topics) == 0 && len(s.Brokers) == 0 && s.NextProducerID == 0 && len(s.BrokerConfigs) == 0
}

// differs names the first difference between s and o, "" when equal.
func (s *State) differs(o *State) string {
	a, errA := json.Marshal(s)
	b, errB := json.Marshal(o)
	switch {
	case errA != nil || errB != nil:
		return fmt.Sprintf("encode: %v %v", errA, errB)
	case string(a) != string(b):
		i := 0
		for i < len(a) && i < len(b) && a[i] == b[i] {
			i++
		}
		lo := max(0, i-80)
		return fmt.Sprintf("at byte %d: %q vs %q", i, a[lo:min(len(a), i+80)], b[lo:min(len(b), i+80)])
	}
	return ""
}

// CheckpointPolicy says when the active controller appends a checkpoint.
type CheckpointPolicy struct {
	// MaxBytes is metadata.log.max.record.bytes.between.snapshots: the
	// encoded records appended since the last checkpoint that trigger the
	// next. 0 never checkpoints by size.
	MaxBytes int64
	// MaxInterval is metadata.log.max.snapshot.interval.ms: a checkpoint
	// is due once this long has passed since the last one (or since the
	// Store opened) and records were appended since. 0 never checkpoints
	// by time.
	MaxInterval time.Duration
	// Now is the clock (time.Now when nil); tests inject one.
	Now func() time.Time
}

// checkpointer tracks what the policy looks at. It is guarded by the
// Store's lock.
type checkpointer struct {
	policy CheckpointPolicy
	bytes  int64     // encoded record bytes appended since the last checkpoint
	since  time.Time // when the last checkpoint was appended (or the Store opened)
	taken  int       // checkpoints appended by this Store
}

func (c *checkpointer) now() time.Time {
	if c.policy.Now != nil {
		return c.policy.Now()
	}
	return time.Now()
}

// appended counts a batch of n encoded bytes.
func (c *checkpointer) appended(n int64) { c.bytes += n }

// due reports whether a checkpoint should follow what was appended.
func (c *checkpointer) due() bool {
	switch {
	case c.bytes == 0:
		return false
	case c.policy.MaxBytes > 0 && c.bytes >= c.policy.MaxBytes:
		return true
	case c.policy.MaxInterval > 0 && c.now().Sub(c.since) >= c.policy.MaxInterval:
		return true
	}
	return false
}

// done restarts the count after a checkpoint.
func (c *checkpointer) done() { c.bytes, c.since = 0, c.now() }

// checkpointLocked appends a checkpoint of s.state after the batches
// started so far, on s.mu. It is pipelined like any batch: nobody waits
// for it but plans with no records, and it is published when committed. A
// failed start fails the Store's log like a failed batch would, so the
// next Commit reports it; the current one, already started, is unharmed.
func (s *Store) checkpointLocked(pl pipelinedLog) {
	offset := s.next
	rec := CheckpointRecord{State: s.state}
	next := s.state.clone()
	if err := applyBatch(next, offset, []Record{rec}); err != nil {
		s.logger.Error("metadata checkpoint not applied", "offset", offset, "err", err)
		return
	}
	wait, err := pl.startCheckpoint(offset, rec)
	if err != nil {
		s.logger.Warn("metadata checkpoint not appended", "offset", offset, "err", err)
		return
	}
	s.ckpt.done()
	s.ckpt.taken++
	end := offset + 1
	c := &pendingCommit{wait: wait}
	s.state, s.next, s.last = next, end, c
	go func() {
		if err := c.result(); err != nil {
			s.logger.Warn("metadata checkpoint not committed", "offset", offset, "err", err)
			return
		}
		s.publishCommitted(next, end)
		s.logger.Info("metadata checkpoint committed", "offset", offset, "topics", len(next.Topics))
	}()
}
