package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/replica"
)

// Special timestamps of ListOffsets.
const (
	latestTimestamp        = -1
	earliestTimestamp      = -2
	maxTimestamp           = -3 // KIP-734, v7+
	earliestLocalTimestamp = -4 // KIP-405, v8+: no tiering, so the log start
	latestTieredTimestamp  = -5 // KIP-1005, v9+: nothing is tiered
)

func (b *Broker) handleListOffsets(req *kmsg.ListOffsetsRequest) *kmsg.ListOffsetsResponse {
	resp := req.ResponseKind().(*kmsg.ListOffsetsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewListOffsetsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewListOffsetsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.Timestamp, sp.Offset, sp.LeaderEpoch = -1, -1, -1
			p, err := t.leader(rp.Partition)
			switch {
			case err != nil:
				sp.ErrorCode = errorCode(err)
			default:
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch()); code != 0 {
					sp.ErrorCode = code
					break
				}
				if req.ReplicaID >= 0 && rp.Timestamp == latestTimestamp {
					// A follower (or debug tool) resetting an
					// out-of-range fetch wants the log end.
					sp.LeaderEpoch, sp.Offset = p.LeaderEpoch(), p.LogEndOffset()
					break
				}
				if req.ReplicaID < 0 && p.HighWatermark() < p.LeaderEpochStartOffset() {
					// KIP-207: a new leader's high watermark has not
					// yet reached the start of its epoch; offsets it
					// would give may still move. The client retries.
					sp.ErrorCode = kerr.OffsetNotAvailable.Code
					break
				}
				b.listOffset(p, rp.Timestamp, req.IsolationLevel, &sp)
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func (b *Broker) listOffset(p *replica.Partition, ts int64, isolation int8, sp *kmsg.ListOffsetsResponseTopicPartition) {
	sp.LeaderEpoch = p.LeaderEpoch()
	switch ts {
	case latestTimestamp:
		sp.Offset = p.HighWatermark()
		if isolation == 1 {
			sp.Offset = p.LastStableOffset()
		}
	case earliestTimestamp, earliestLocalTimestamp:
		sp.Offset = p.LogStartOffset()
	case latestTieredTimestamp:
		sp.Offset = -1
	case maxTimestamp:
		// The log knows the batch holding the largest timestamp; the answer
		// is the first record in it that carries that timestamp.
		off, mts := p.MaxTimestamp()
		if off < 0 || off >= p.HighWatermark() {
			return
		}
		if roff, rts, found := b.recordAtOrAfter(p, off, mts); found {
			off, mts = roff, rts
		}
		sp.Offset, sp.Timestamp = off, mts
	default:
		if ts < 0 {
			sp.ErrorCode = kerr.InvalidRequest.Code
			return
		}
		off, fts, ok := p.FindOffsetByTimestamp(ts)
		if !ok || off >= p.HighWatermark() {
			return
		}
		// The index finds the batch; the answer is the record inside it.
		if roff, rts, found := b.recordAtOrAfter(p, off, ts); found {
			off, fts = max(roff, p.LogStartOffset()), rts
		}
		if off < p.HighWatermark() {
			sp.Offset, sp.Timestamp = off, fts
		}
	}
}

func init() {
	register(api{key: kmsg.ListOffsets, min: 1, max: 11,
		handle: method((*Broker).handleListOffsets),
		errorCodes: codes(func(r *kmsg.ListOffsetsResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
