package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleOffsetForLeaderEpoch tells a client (or, later, a follower) where a
// leader epoch ended, so it can detect and cut a diverged log (KIP-101/320).
func (b *Broker) handleOffsetForLeaderEpoch(req *kmsg.OffsetForLeaderEpochRequest) *kmsg.OffsetForLeaderEpochResponse {
	resp := req.ResponseKind().(*kmsg.OffsetForLeaderEpochResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewOffsetForLeaderEpochResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewOffsetForLeaderEpochResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LeaderEpoch, sp.EndOffset = -1, -1
			if p, err := t.leader(rp.Partition); err != nil {
				sp.ErrorCode = errorCode(err)
			} else {
				if code := checkLeaderEpoch(rp.CurrentLeaderEpoch, p.LeaderEpoch()); code != 0 {
					sp.ErrorCode = code
				} else {
					sp.LeaderEpoch, sp.EndOffset = p.OffsetForLeaderEpoch(rp.LeaderEpoch)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func init() {
	register(api{key: kmsg.OffsetForLeaderEpoch, min: 0, max: 4,
		handle: method((*Broker).handleOffsetForLeaderEpoch),
		errorCodes: codes(func(r *kmsg.OffsetForLeaderEpochResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
