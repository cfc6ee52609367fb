package broker

import (
	"context"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/purgatory"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// fetchResult is one partition's answer: offsets, an error code, and the
// file ranges of its record batches (never copied into memory).
type fetchResult struct {
	item           *fetchItem
	t              *topic // nil when unknown
	errCode        int16
	hw, lso, start int64
	read           segment.ReadResult
	// diverging is set when the client's last fetched epoch ended before
	// its fetch offset here: its log and ours differ from there on.
	diverging *epochEnd
	// preferred is the replica the consumer should fetch from instead
	// (KIP-392), when hasPreferred.
	preferred    int32
	hasPreferred bool
	// hint names the current leader elsewhere for NOT_LEADER_OR_FOLLOWER
	// and FENCED_LEADER_EPOCH (KIP-951, v16+); set by finishFetch.
	hint *leaderHint
	// seen is the partition's state the read started from; a waiting
	// fetch reads again only once it changes.
	seen partitionView
}

type epochEnd struct {
	epoch int32
	end   int64
}

// handleFetch reads every requested partition and, if fewer than min_bytes
// are ready, parks the request in the fetch purgatory (fetch_wait.go) until
// an append to one of its partitions brings enough, max_wait_ms passes, or
// the broker stops (long poll). The response is encoded by hand so that
// record bytes stay in the page cache: it is header bytes interleaved with
// file ranges.
func (b *Broker) handleFetch(ctx context.Context, req *kmsg.FetchRequest) *netio.Response {
	if isMetadataFetch(req) {
		return b.handleMetadataFetch(ctx, req)
	}
	plan := b.sessions.plan(req, b.topicNameByID)
	if plan.errCode != 0 {
		b.metrics.requestError(kmsg.Fetch.Int16(), plan.errCode)
		return encodeFetch(req, 0, plan.errCode, nil)
	}
	deadline := b.now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	results, total, failed := b.readFetch(req, plan.items)
	if total >= int64(req.MinBytes) || failed || req.MaxWaitMillis <= 0 {
		return b.finishFetch(req, plan, results)
	}
	results, ok := b.waitFetch(ctx, req, plan, results, deadline.Sub(b.now()))
	if !ok {
		return nil // the connection is gone; nobody to answer
	}
	return b.finishFetch(req, plan, results)
}

func (b *Broker) topicNameByID(id [16]byte) string {
	if t := b.topics.getByID(controller.TopicID(id)); t != nil {
		return t.name
	}
	return ""
}

// readFetch reads each partition in order within the response and partition
// byte limits. failed reports a partition error, which Kafka answers at once
// rather than waiting.
func (b *Broker) readFetch(req *kmsg.FetchRequest, items []fetchItem) (results []fetchResult, total int64, failed bool) {
	results = make([]fetchResult, len(items))
	maxBytes := int64(req.MaxBytes)
	if maxBytes <= 0 {
		maxBytes = 1<<31 - 1
	}
	replicaID, brokerEpoch := followerOf(req)
	for i := range items {
		it := &items[i]
		r := &results[i]
		r.item = it
		r.hw, r.lso, r.start = -1, -1, -1
		t := b.topics.get(it.key.topic)
		r.t = t
		if replicaID >= 0 {
			limit := min(int64(it.maxBytes), maxBytes-total)
			if b.readForFollower(t, it, r, replicaID, brokerEpoch, limit, total == 0) {
				failed = true
			}
			total += r.read.Bytes
			continue
		}
		p, err := t.leader(it.key.partition)
		if err != nil && req.Version >= 11 {
			// KIP-392: a consumer that sends client metadata (v11+)
			// may read a follower, up to the follower's HW.
			if f := t.follower(it.key.partition); f != nil {
				p, err = f, nil
			}
		}
		if err == nil && p.IsLeader() && req.Version >= 11 {
			if id, ok := b.preferredReadReplica(t, it.key.partition, req.Rack, it.fetchOffset); ok {
				r.preferred, r.hasPreferred = id, true
				r.hw, r.lso, r.start = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
				r.seen = partitionView{p, r.hw, r.start, p.LeaderEpoch(), -1}
				failed = true // answered at once, with no records
				continue
			}
		}
		if err != nil {
			r.errCode = errorCode(err)
			if req.Version >= 13 && t == nil {
				r.errCode = codeUnknownTopicID
			}
			failed = true
			continue
		}
		r.hw, r.lso, r.start = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
		r.seen = partitionView{p, r.hw, r.start, p.LeaderEpoch(), -1}
		if code := checkLeaderEpoch(it.currentLeaderEpoch, r.seen.epoch); code != 0 {
			r.errCode, failed = code, true
			continue
		}
		if d := divergence(p, it); d != nil {
			r.diverging, failed = d, true
			continue
		}
		limit := min(int64(it.maxBytes), maxBytes-total)
		if limit <= 0 && total > 0 {
			continue
		}
		read, err := p.Read(it.fetchOffset, int(max(limit, 0)), total == 0)
		if err != nil {
			r.errCode, failed = errorCode(err), true
			continue
		}
		r.read = read
		total += read.Bytes
	}
	return results, total, failed
}

// divergence compares the client's view with our epoch history (fetch v12+):
// if the epoch of the last batch it read ended, here, before the offset it
// fetches from, or that epoch is unknown here, the logs diverged and the
// client must truncate to the returned end offset before fetching on.
func divergence(p *replica.Partition, it *fetchItem) *epochEnd {
	if it.lastFetchedEpoch < 0 {
		return nil
	}
	epoch, end := p.OffsetForLeaderEpoch(it.lastFetchedEpoch)
	if epoch < it.lastFetchedEpoch || end < it.fetchOffset {
		return &epochEnd{epoch, end}
	}
	return nil
}

// checkLeaderEpoch applies KIP-320: a client that knows a newer epoch than
// ours is ahead of us, one that knows an older epoch is stale.
func checkLeaderEpoch(client, ours int32) int16 {
	switch {
	case client < 0 || client == ours:
		return 0
	case client < ours:
		return kerr.FencedLeaderEpoch.Code
	default:
		return kerr.UnknownLeaderEpoch.Code
	}
}

// finishFetch decides which partitions go into the response (all of them,
// or for an incremental session only those with news) and encodes it.
func (b *Broker) finishFetch(req *kmsg.FetchRequest, plan fetchPlan, results []fetchResult) *netio.Response {
	var sessionID int32
	if plan.sess != nil {
		sessionID = plan.sess.id
		b.sessions.lock()
		kept := results[:0]
		for _, r := range results {
			sp := r.item.sp
			news := r.read.Bytes > 0 || r.errCode != 0 || r.diverging != nil || sp.sentHW != r.hw || sp.sentLSO != r.lso || sp.sentLogStart != r.start
			if plan.incremental && !news {
				r.read.Release()
				continue
			}
			sp.sentHW, sp.sentLSO, sp.sentLogStart = r.hw, r.lso, r.start
			kept = append(kept, r)
		}
		b.sessions.unlock()
		results = kept
	}
	var nodes []hintedNode
	if req.Version >= 16 {
		var ids map[int32]bool // only a refused partition allocates
		for i := range results {
			r := &results[i]
			if h, ok := b.hintFor(r.item.key.topic, r.item.key.partition, r.errCode); ok {
				if ids == nil {
					ids = map[int32]bool{}
				}
				r.hint, ids[h.id] = &h, true
			}
		}
		if ids != nil {
			nodes = b.hintedNodes(ids)
		}
	}
	for i := range results {
		r := &results[i]
		b.metrics.requestError(kmsg.Fetch.Int16(), r.errCode)
		if r.t != nil && r.read.Bytes > 0 {
			r.t.m.bytesOut.Add(float64(r.read.Bytes))
			r.t.m.msgsOut.Add(float64(max(r.read.Next-r.item.fetchOffset, 0)))
		}
	}
	return encodeFetch(req, sessionID, 0, results, nodes...)
}

func releaseAll(results []fetchResult) {
	for i := range results {
		results[i].read.Release()
	}
}

// fetchPurgatory holds the fetches waiting for min_bytes, watching their
// partitions. Whatever may let one finish (an append, a moved log start)
// calls Check for that partition; see wakeFetches.
type fetchPurgatory = purgatory.Purgatory[sessionKey]

// wakeFetches re-tests the fetches waiting on a partition. Cheap when none
// are: one map lookup.
func (b *Broker) wakeFetches(topic string, partition int32) {
	b.fetchWaits.Check(sessionKey{topic, partition})
}

// delayedFetch is a fetch parked in the purgatory. Its tryComplete re-reads
// only when one of its partitions moved since the last read, so the Checks
// of appends that cannot matter cost a few atomic loads.
type delayedFetch struct {
	b    *Broker
	req  *kmsg.FetchRequest
	plan fetchPlan
	seen []partitionView // per plan item, as of the last read
	// results is the read that completed the fetch; nil when it ended by
	// expiry or ForceComplete.
	results []fetchResult
	done    chan struct{}
}

// partitionView is what a read of one partition depended on: when none of
// it changed, reading again gives the same answer.
type partitionView struct {
	p         *replica.Partition
	hw, start int64
	epoch     int32
	// leo is the log end offset for a follower's fetch, which reads up to
	// it (an append must wake it); -1 for consumers, which read to hw.
	leo int64
}

func (b *Broker) partitionOf(k sessionKey) *replica.Partition {
	t := b.topics.get(k.topic)
	if p, err := t.leader(k.partition); err == nil {
		return p
	}
	return t.follower(k.partition) // a consumer reading a follower (KIP-392)
}

func (d *delayedFetch) view() []partitionView {
	out := make([]partitionView, len(d.plan.items))
	follower, _ := followerOf(d.req)
	for i := range d.plan.items {
		if p := d.b.partitionOf(d.plan.items[i].key); p != nil {
			leo := int64(-1)
			if follower >= 0 {
				leo = p.LogEndOffset()
			}
			out[i] = partitionView{p, p.HighWatermark(), p.LogStartOffset(), p.LeaderEpoch(), leo}
		}
	}
	return out
}

func views(results []fetchResult) []partitionView {
	out := make([]partitionView, len(results))
	for i := range results {
		out[i] = results[i].seen
	}
	return out
}

// tryComplete runs under the operation's lock (the purgatory's rule), so
// seen and results need no other.
func (d *delayedFetch) tryComplete() bool {
	now := d.view()
	if slices.Equal(now, d.seen) {
		return false
	}
	results, total, failed := d.b.readFetch(d.req, d.plan.items)
	d.seen = views(results)
	if total >= int64(d.req.MinBytes) || failed {
		d.results = results
		return true
	}
	releaseAll(results)
	return false
}

// waitFetch parks a fetch whose first read (results, now released or
// kept) fell short of min_bytes, and returns what to answer with; ok is
// false when the connection went away meanwhile.
func (b *Broker) waitFetch(ctx context.Context, req *kmsg.FetchRequest, plan fetchPlan, first []fetchResult, wait time.Duration) (_ []fetchResult, ok bool) {
	d := &delayedFetch{b: b, req: req, plan: plan, done: make(chan struct{})}
	// The views were taken before the read, so a change since makes the
	// purgatory's first try read again rather than miss it.
	d.seen = views(first)
	releaseAll(first)
	keys := make([]sessionKey, len(plan.items))
	for i := range plan.items {
		keys[i] = plan.items[i].key
	}
	op := purgatory.NewOp(d.tryComplete, func(bool) { close(d.done) })
	if !b.fetchWaits.TryCompleteElseWatch(op, wait, keys) {
		select {
		case <-d.done:
		case <-ctx.Done():
		case <-b.stop:
		}
		op.ForceComplete()
		<-d.done // whoever completed it has finished with d
	}
	if ctx.Err() != nil {
		releaseAll(d.results)
		return nil, false
	}
	if d.results != nil {
		return d.results, true
	}
	// Expired or shutting down: answer with what there is now.
	results, _, _ := b.readFetch(req, plan.items)
	return results, true
}

func init() {
	// Fetch counts its error codes where it builds its response frames.
	register(api{key: kmsg.Fetch, min: 4, max: 18,
		raw: func(b *Broker, ctx context.Context, _ *netio.Request, req kmsg.Request) *netio.Response {
			return b.handleFetch(ctx, req.(*kmsg.FetchRequest))
		},
	})
}
