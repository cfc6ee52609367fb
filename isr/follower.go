package isr

import (
	"errors"

	"github.com/twmb/franz-go/pkg/kerr"
)

// Truncation is where a follower cuts its log, and whether that offset is
// final (false: the follower did not know the leader's epoch, so it cut to
// the end of its own older epoch and must ask again; with truncation on
// fetch its next fetch does).
type Truncation struct {
	Offset   int64
	Complete bool
}

// TruncationFor decides a follower's truncation from its epoch cache, log end
// offset and high watermark and the leader's answer for its last epoch (an
// OffsetForLeaderEpoch answer or a Fetch DivergingEpoch), as Kafka's
// AbstractFetcherThread.getOffsetTruncationState (KIP-101, KIP-279):
//   - no end offset from the leader: cut to the high watermark;
//   - no epoch from the leader (a pre-KIP-279 peer): cut to its end offset;
//   - the follower knows the leader's epoch: cut to where both logs agree it
//     ends, min(own end, leader's end, LEO);
//   - the follower does not know it: cut to the end of its largest epoch
//     below it and ask again;
//   - the follower has no epoch at or below it: cut to the leader's end.
//
// The result never exceeds the log end offset.
func TruncationFor(local []EpochEntry, logEndOffset, highWatermark int64, leader EpochEndOffset) Truncation {
	if leader.EndOffset == UndefinedEpochOffset {
		return Truncation{Offset: min(highWatermark, logEndOffset), Complete: true}
	}
	if leader.Epoch == UndefinedEpoch {
		return Truncation{Offset: min(leader.EndOffset, logEndOffset), Complete: true}
	}
	mine := EndOffsetFor(local, leader.Epoch, logEndOffset)
	switch {
	case mine.EndOffset == UndefinedEpochOffset:
		return Truncation{Offset: min(leader.EndOffset, logEndOffset), Complete: true}
	case mine.Epoch != leader.Epoch:
		return Truncation{Offset: min(mine.EndOffset, logEndOffset), Complete: false}
	}
	return Truncation{Offset: min(mine.EndOffset, leader.EndOffset, logEndOffset), Complete: true}
}

// FollowerHighWatermark is a follower's high watermark after a fetch: the
// leader's, capped by what the follower has (ReplicaFetcherThread). It may
// go down when a new leader's high watermark lags the old one's.
func FollowerHighWatermark(leaderHW, logEndOffset int64) int64 {
	return min(leaderHW, logEndOffset)
}

// OutOfRangeReset is the follower's answer to OFFSET_OUT_OF_RANGE, given the
// leader's log start and end offsets (ListOffsets earliest and latest), as
// Kafka's fetchOffsetAndTruncate: a leader that ends below the follower
// (after an unclean election) makes it cut to the leader's end; a leader
// whose log starts above the follower's end makes it drop its whole log and
// start at the leader's start (truncateFully); otherwise the follower keeps
// its log and fetches from max(leader start, own LEO).
func OutOfRangeReset(logEndOffset, leaderStart, leaderEnd int64) (offset int64, truncateFully bool) {
	switch {
	case leaderEnd < logEndOffset:
		return leaderEnd, false
	case leaderStart > logEndOffset:
		return leaderStart, true
	}
	return logEndOffset, false
}

// LocalLog is the follower's log as the caller sees it now.
type LocalLog struct {
	LogEndOffset  int64
	HighWatermark int64
	LatestEpoch   int32 // UndefinedEpoch for a log without epochs
}

// FetchRequest is what a follower puts in its Fetch for the partition.
type FetchRequest struct {
	FetchOffset        int64
	LastFetchedEpoch   int32
	CurrentLeaderEpoch int32
}

// FetchResponse is the leader's answer for the partition: an error, or a
// DivergingEpoch, or records (the caller's) and the leader's high watermark.
type FetchResponse struct {
	Err           error
	Diverging     *EpochEndOffset
	HighWatermark int64
}

// ActionKind says what the caller of a Follower does next.
type ActionKind int

const (
	ActFetch    ActionKind = iota // send Request to the leader
	ActTruncate                   // truncate the log to Truncation.Offset, then call Truncated
	ActAppend                     // append the records, keeping the leader's offsets and epochs; then Appended
	ActReset                      // OFFSET_OUT_OF_RANGE: ask the leader's log bounds, apply OutOfRangeReset, then Truncated
	ActBackoff                    // retry after replica.fetch.backoff.ms
	ActWait                       // fenced: wait for metadata naming a newer leader epoch (SetLeader)
	ActIgnore                     // a response to an older request: drop it
)

// Action is a Follower's instruction to its caller.
type Action struct {
	Kind       ActionKind
	Request    FetchRequest // ActFetch
	Truncation Truncation   // ActTruncate
}

// Follower is the fetch state of one partition this broker follows (Kafka's
// PartitionFetchState): whom it follows in which leader epoch, and whether it
// must truncate before it fetches.
type Follower struct {
	leaderID    int32
	leaderEpoch int32
	truncating  bool // no epoch in the local log: truncate to the HW first
	fenced      bool
	fetchOffset int64
	lastEpoch   int32
}

// NewFollower starts following leaderID in leaderEpoch. With an epoch in its
// log the follower fetches from its log end offset and lets the leader say
// where it diverges (truncation on fetch, KAFKA-10554); without one it first
// truncates to its high watermark.
func NewFollower(leaderID, leaderEpoch int32, log LocalLog) *Follower {
	f := &Follower{leaderID: leaderID, leaderEpoch: leaderEpoch}
	f.start(log)
	return f
}

func (f *Follower) start(log LocalLog) {
	f.fenced = false
	f.truncating = log.LatestEpoch == UndefinedEpoch
	f.lastEpoch = log.LatestEpoch
	f.fetchOffset = log.LogEndOffset
	if f.truncating {
		f.fetchOffset = min(log.HighWatermark, log.LogEndOffset)
	}
}

// Leader is the leader followed and its epoch.
func (f *Follower) Leader() (id, epoch int32) { return f.leaderID, f.leaderEpoch }

// SetLeader applies metadata: a newer leader epoch restarts the follower
// against the new leader (true); the same or an older epoch changes nothing.
func (f *Follower) SetLeader(leaderID, leaderEpoch int32, log LocalLog) bool {
	if leaderEpoch <= f.leaderEpoch {
		return false
	}
	f.leaderID, f.leaderEpoch = leaderID, leaderEpoch
	f.start(log)
	return true
}

func (f *Follower) request() FetchRequest {
	return FetchRequest{FetchOffset: f.fetchOffset, LastFetchedEpoch: f.lastEpoch, CurrentLeaderEpoch: f.leaderEpoch}
}

// Next is what to do now: truncate to the high watermark, fetch, or wait.
func (f *Follower) Next() Action {
	switch {
	case f.fenced:
		return Action{Kind: ActWait}
	case f.truncating:
		return Action{Kind: ActTruncate, Truncation: Truncation{Offset: f.fetchOffset, Complete: true}}
	}
	return Action{Kind: ActFetch, Request: f.request()}
}

// HandleResponse decides what to do with the answer to req, given the local
// epoch cache and log. Answers to a request other than the current one
// (an older epoch or offset) are ignored, as the fetcher thread does.
func (f *Follower) HandleResponse(req FetchRequest, resp FetchResponse, local []EpochEntry, log LocalLog) Action {
	if f.fenced || f.truncating || req != f.request() {
		return Action{Kind: ActIgnore}
	}
	if resp.Err == nil {
		if resp.Diverging != nil {
			return Action{Kind: ActTruncate, Truncation: TruncationFor(local, log.LogEndOffset, log.HighWatermark, *resp.Diverging)}
		}
		return Action{Kind: ActAppend}
	}
	var ke *kerr.Error
	errors.As(resp.Err, &ke)
	switch ke {
	case kerr.OffsetOutOfRange:
		return Action{Kind: ActReset}
	case kerr.FencedLeaderEpoch:
		// The leader is ahead of us in epochs: stop until metadata catches up.
		f.fenced = true
		return Action{Kind: ActWait}
	}
	return Action{Kind: ActBackoff}
}

// Truncated records that the log was truncated (or reset) and now looks like
// log; fetching resumes from its end with its latest epoch.
func (f *Follower) Truncated(log LocalLog) {
	f.truncating = false
	f.fetchOffset = log.LogEndOffset
	f.lastEpoch = log.LatestEpoch
}

// Appended records an append of fetched records and returns the follower's
// new high watermark, min(leader's, LEO).
func (f *Follower) Appended(log LocalLog, leaderHW int64) int64 {
	f.fetchOffset = log.LogEndOffset
	if log.LatestEpoch != UndefinedEpoch {
		f.lastEpoch = log.LatestEpoch
	}
	return FollowerHighWatermark(leaderHW, log.LogEndOffset)
}
