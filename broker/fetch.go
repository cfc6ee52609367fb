package broker

import (
	"context"
	"reflect"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
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
}

type epochEnd struct {
	epoch int32
	end   int64
}

// handleFetch reads every requested partition and, if fewer than min_bytes
// are ready, waits up to max_wait_ms for an append to any of them (long
// poll). The response is encoded by hand so that record bytes stay in the
// page cache: it is header bytes interleaved with file ranges.
func (b *Broker) handleFetch(ctx context.Context, req *kmsg.FetchRequest) *netio.Response {
	plan := b.sessions.plan(req, b.topicNameByID)
	if plan.errCode != 0 {
		b.metrics.requestError(kmsg.Fetch.Int16(), plan.errCode)
		return encodeFetch(req, 0, plan.errCode, nil)
	}
	deadline := time.Now().Add(time.Duration(req.MaxWaitMillis) * time.Millisecond)
	for {
		// Changed channels are taken before reading, so an append that lands
		// between the read and the wait still wakes us.
		changed := b.fetchWatch(plan.items)
		results, total, failed := b.readFetch(req, plan.items)
		remaining := time.Until(deadline)
		if total >= int64(req.MinBytes) || failed || remaining <= 0 {
			return b.finishFetch(req, plan, results)
		}
		releaseAll(results)
		if !waitAny(ctx, b.stop, changed, remaining) {
			if ctx.Err() != nil {
				return nil // the connection is gone; nobody to answer
			}
			// Timed out or shutting down: answer with what there is now.
			results, _, _ = b.readFetch(req, plan.items)
			return b.finishFetch(req, plan, results)
		}
	}
}

func (b *Broker) topicNameByID(id [16]byte) string {
	if t := b.topics.getByID(controller.TopicID(id)); t != nil {
		return t.name
	}
	return ""
}

func (b *Broker) fetchWatch(items []fetchItem) []<-chan struct{} {
	chans := make([]<-chan struct{}, 0, len(items))
	for i := range items {
		if t := b.topics.get(items[i].key.topic); t != nil {
			if p := t.partition(items[i].key.partition); p != nil {
				chans = append(chans, p.Changed())
			}
		}
	}
	return chans
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
	for i := range items {
		it := &items[i]
		r := &results[i]
		r.item = it
		r.hw, r.lso, r.start = -1, -1, -1
		t := b.topics.get(it.key.topic)
		r.t = t
		var p *replica.Partition
		if t != nil {
			p = t.partition(it.key.partition)
		}
		if p == nil {
			r.errCode = errorCode(t.unavailable(it.key.partition))
			if req.Version >= 13 && t == nil {
				r.errCode = codeUnknownTopicID
			}
			failed = true
			continue
		}
		r.hw, r.lso, r.start = p.HighWatermark(), p.LastStableOffset(), p.LogStartOffset()
		if code := checkLeaderEpoch(it.currentLeaderEpoch, p.LeaderEpoch()); code != 0 {
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
	for i := range results {
		r := &results[i]
		b.metrics.requestError(kmsg.Fetch.Int16(), r.errCode)
		if r.t != nil && r.read.Bytes > 0 {
			r.t.m.bytesOut.Add(float64(r.read.Bytes))
			r.t.m.msgsOut.Add(float64(max(r.read.Next-r.item.fetchOffset, 0)))
		}
	}
	return encodeFetch(req, sessionID, 0, results)
}

func releaseAll(results []fetchResult) {
	for i := range results {
		results[i].read.Release()
	}
}

// waitAny blocks until one channel fires (true), or the timeout, the
// connection's context or the broker's stop channel ends the wait (false).
func waitAny(ctx context.Context, stop <-chan struct{}, chans []<-chan struct{}, timeout time.Duration) bool {
	timer := time.NewTimer(timeout)
	defer timer.Stop()
	if len(chans) == 1 {
		select {
		case <-chans[0]:
			return true
		case <-timer.C:
		case <-ctx.Done():
		case <-stop:
		}
		return false
	}
	cases := make([]reflect.SelectCase, 0, len(chans)+3)
	for _, c := range []any{timer.C, ctx.Done(), stop} {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	for _, c := range chans {
		cases = append(cases, reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(c)})
	}
	i, _, _ := reflect.Select(cases)
	return i >= 3
}
