package broker

import (
	"github.com/twmb/franz-go/pkg/kmsg"
)

// handleDeleteRecords moves log start offsets forward; whole segments below
// the new start are deleted, the rest become unreadable.
func (b *Broker) handleDeleteRecords(req *kmsg.DeleteRecordsRequest) *kmsg.DeleteRecordsResponse {
	resp := req.ResponseKind().(*kmsg.DeleteRecordsResponse)
	for _, rt := range req.Topics {
		st := kmsg.NewDeleteRecordsResponseTopic()
		st.Topic = rt.Topic
		t := b.topics.get(rt.Topic)
		for _, rp := range rt.Partitions {
			sp := kmsg.NewDeleteRecordsResponseTopicPartition()
			sp.Partition = rp.Partition
			sp.LowWatermark = -1
			p, err := t.leader(rp.Partition)
			if err != nil {
				sp.ErrorCode = errorCode(err)
			} else if err := clientMayTrim(t.name); err != nil {
				b.logRefusal("DeleteRecords", t.name, err)
				sp.ErrorCode = errorCode(err)
			} else {
				low, err := p.DeleteRecords(rp.Offset)
				sp.LowWatermark, sp.ErrorCode = low, errorCode(err)
				b.wakeFetches(t.name, rp.Partition) // log start moved
				if err == nil {
					b.logger.Info("records deleted", "topic", rt.Topic, "partition", rp.Partition, "log_start_offset", low)
				}
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
	}
	return resp
}

func init() {
	register(api{key: kmsg.DeleteRecords, min: 0, max: 2,
		handle: method((*Broker).handleDeleteRecords),
		errorCodes: codes(func(r *kmsg.DeleteRecordsResponse, count func(int16)) {
			for _, t := range r.Topics {
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
