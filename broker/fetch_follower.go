package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/isr"
)

// A follower's fetch (replica id >= 0) is served by the leader as Kafka's
// Partition.fetchRecords does for followers: the fetch first updates the
// leader's view of the follower (isr.Leader.Fetch: epoch and broker-epoch
// fences, divergence, its log end offset, the ISR and the high watermark),
// then reads up to the log end offset, not the high watermark, with the
// same zero-copy file ranges consumers get.

// followerOf is the replica fetching and its broker epoch (KIP-903's
// ReplicaState from v15, the top-level ReplicaID before); -1 for consumers.
func followerOf(req *kmsg.FetchRequest) (id int32, brokerEpoch int64) {
	if req.Version >= 15 {
		return req.ReplicaState.ID, req.ReplicaState.Epoch
	}
	return req.ReplicaID, -1
}

// readForFollower fills r for one partition of a follower's fetch and
// reports whether it failed (an error or a divergence, answered at once).
func (b *Broker) readForFollower(t *topic, it *fetchItem, r *fetchResult, replicaID int32, brokerEpoch, limit int64, minOne bool) bool {
	p, err := t.leader(it.key.partition)
	if err != nil {
		r.errCode = errorCode(err)
		if f := t.follower(it.key.partition); f != nil && it.currentLeaderEpoch > f.LeaderEpoch() {
			// The follower knows a newer epoch than this node has
			// applied (it may be about to lead): Kafka's answer is
			// UNKNOWN_LEADER_EPOCH, retried soon.
			r.errCode = kerr.UnknownLeaderEpoch.Code
		}
		return true
	}
	repl := t.replication(it.key.partition)
	if repl == nil {
		// One replica, or this node's view is not yet the image that
		// added the follower: it retries.
		r.errCode = kerr.NotLeaderForPartition.Code
		return true
	}
	start, leo := p.LogStartOffset(), p.LogEndOffset()
	d, err := repl.FollowerFetch(isr.FollowerFetch{
		ReplicaID: replicaID, BrokerEpoch: brokerEpoch, CurrentLeaderEpoch: it.currentLeaderEpoch,
		FetchOffset: it.fetchOffset, LastFetchedEpoch: it.lastFetchedEpoch, LogStartOffset: it.logStartOffset,
		LeaderLogStartOffset: start, LeaderLogEndOffset: leo,
	})
	r.hw, r.lso, r.start = p.HighWatermark(), p.LastStableOffset(), start
	r.seen = partitionView{p, r.hw, r.start, p.LeaderEpoch(), leo}
	switch {
	case err != nil:
		r.errCode = errorCode(err)
		return true
	case d != nil:
		r.diverging = &epochEnd{d.Epoch, d.EndOffset}
		return true
	case limit <= 0 && !minOne:
		return false
	}
	throttled := b.leaderThrottled(t, it.key.partition)
	if throttled && b.throttles.leader.Exceeded(b.now()) {
		return false // the leader throttle is used up: no records this time
	}
	read, err := p.ReadForFollower(it.fetchOffset, int(max(limit, 0)), minOne)
	if err != nil {
		r.errCode = errorCode(err)
		return true
	}
	if throttled {
		b.throttles.leader.Record(read.Bytes, b.now())
	}
	r.read = read
	return false
}
