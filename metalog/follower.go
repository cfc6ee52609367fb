package metalog

import (
	"errors"
	"fmt"

	"github.com/sluice-io/sluice/isr"
)

// ErrCommittedTruncation is a truncation below the high watermark: the
// leader's log lacks a record this node knows is committed. It cannot happen
// while the register's rules hold; the caller must stop and not truncate.
var ErrCommittedTruncation = errors.New("metalog: truncation below the high watermark")

// Response is the leader's answer to a fetch of the metadata log: an error,
// a DivergingEpoch, or records (the caller's) and the leader's high
// watermark. Epoch is the controller epoch the leader answered in.
type Response struct {
	Epoch         int32
	Err           error
	Diverging     *isr.EpochEndOffset
	HighWatermark int64
}

// Follower is a node's fetch state for the metadata log: a voter that
// replicates it (NewFollower) or a broker that observes it (NewObserver).
// It is isr.Follower plus the metadata log's rules: it follows one
// controller epoch and ignores answers in another, never goes back to a
// lower epoch, reports only durable positions (it waits between an append
// and the caller's fsync), keeps a high watermark that never goes back, and
// refuses to truncate below it. Every isr.LocalLog handed to it describes
// the durable log. Not safe for concurrent use.
type Follower struct {
	leader   Voter
	inner    *isr.Follower
	hw       int64
	syncing  bool
	observer bool
}

// NewFollower starts a voter following leader, the active controller of
// epoch, from its durable log (whose HighWatermark is this node's so far).
func NewFollower(leader Voter, epoch int32, log isr.LocalLog) *Follower {
	return &Follower{leader: leader, inner: isr.NewFollower(leader.ID, epoch, log), hw: log.HighWatermark}
}

// NewObserver starts a broker observing the metadata log of leader in
// epoch. The leader serves an observer only committed records, so its log
// end is its high watermark.
func NewObserver(leader Voter, epoch int32, log isr.LocalLog) *Follower {
	f := NewFollower(leader, epoch, log)
	f.observer = true
	return f
}

// Leader is the controller followed and its epoch; Observer whether this
// node is a broker; HighWatermark its high watermark.
func (f *Follower) Leader() (Voter, int32) { _, e := f.inner.Leader(); return f.leader, e }
func (f *Follower) Observer() bool         { return f.observer }
func (f *Follower) HighWatermark() int64   { return f.hw }

// SetLeader follows a newer controller epoch (true); the same or an older
// epoch changes nothing, so a deposed controller is never followed again.
// An append waiting for its fsync keeps the follower waiting until
// Appended.
func (f *Follower) SetLeader(leader Voter, epoch int32, log isr.LocalLog) bool {
	log.HighWatermark = f.hw
	if !f.inner.SetLeader(leader.ID, epoch, log) {
		return false
	}
	f.leader = leader
	return true
}

// Next is what to do now: truncate, fetch (isr.Action.Request), or wait
// (fenced by a newer epoch until SetLeader, or an append not yet durable).
func (f *Follower) Next() isr.Action {
	if f.syncing {
		return isr.Action{Kind: isr.ActWait}
	}
	return f.inner.Next()
}

// HandleResponse decides what to do with the answer to req: ignore one from
// another epoch or to an older request; append records (then fsync and call
// Appended); truncate to the divergence point (then Truncated); reset,
// back off or wait on errors as isr.Follower does. A truncation below the
// high watermark is refused with ErrCommittedTruncation.
func (f *Follower) HandleResponse(req isr.FetchRequest, resp Response, local []isr.EpochEntry, log isr.LocalLog) (isr.Action, error) {
	if resp.Err == nil && resp.Epoch != req.CurrentLeaderEpoch {
		return isr.Action{Kind: isr.ActIgnore}, nil
	}
	if f.syncing {
		return isr.Action{Kind: isr.ActIgnore}, nil
	}
	log.HighWatermark = f.hw
	a := f.inner.HandleResponse(req, isr.FetchResponse{Err: resp.Err, Diverging: resp.Diverging, HighWatermark: resp.HighWatermark}, local, log)
	switch a.Kind {
	case isr.ActTruncate:
		if a.Truncation.Offset < f.hw {
			return isr.Action{Kind: isr.ActWait}, fmt.Errorf("to %d, high watermark %d, diverging %+v: %w",
				a.Truncation.Offset, f.hw, resp.Diverging, ErrCommittedTruncation)
		}
	case isr.ActAppend:
		f.syncing = true
	}
	return a, nil
}

// Appended records that the fetched records were appended and fsynced, so
// the log is durable up to log.LogEndOffset; the next fetch reports it. It
// returns the node's high watermark, which never goes back: the leader's,
// capped by the durable log end.
func (f *Follower) Appended(log isr.LocalLog, leaderHW int64) int64 {
	f.syncing = false
	f.inner.Appended(log, leaderHW)
	f.hw = max(f.hw, min(leaderHW, log.LogEndOffset))
	return f.hw
}

// Truncated records that the log was durably truncated (or reset) to log;
// fetching resumes from its end. A log that now ends below the high
// watermark is ErrCommittedTruncation.
func (f *Follower) Truncated(log isr.LocalLog) error {
	if log.LogEndOffset < f.hw {
		return fmt.Errorf("log end %d, high watermark %d: %w", log.LogEndOffset, f.hw, ErrCommittedTruncation)
	}
	f.syncing = false
	f.inner.Truncated(log)
	return nil
}
