package coordinator

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// OffsetDelete answers an OffsetDelete (KIP-496): it removes committed
// offsets of topics the group is not consuming; partitions of a topic a
// member is subscribed to answer GROUP_SUBSCRIBED_TO_TOPIC.
func (c *Coordinator) OffsetDelete(req *kmsg.OffsetDeleteRequest) *kmsg.OffsetDeleteResponse {
	resp := req.ResponseKind().(*kmsg.OffsetDeleteResponse)
	if req.Group == "" {
		resp.ErrorCode = kerr.InvalidGroupID.Code
		return resp
	}
	e, err := c.lookup(req.Group, false)
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	if e == nil {
		resp.ErrorCode = kerr.GroupIDNotFound.Code
		return resp
	}
	var w *write
	defer func() { _ = c.release(e, w) }()
	if e.classic != nil && !e.classic.IsEmpty() && e.classic.ProtocolType() != "consumer" {
		// Kafka can tell what a member consumes only for the consumer
		// protocol; other protocols' groups must be empty.
		resp.ErrorCode = kerr.NonEmptyGroup.Code
		return resp
	}
	subscribed := c.subscribedTopics(e)
	topics := c.topics()
	var recs []Record
	type tp struct {
		topic string
		part  int32
	}
	var gone []tp
	for _, t := range req.Topics {
		rt := kmsg.NewOffsetDeleteResponseTopic()
		rt.Topic = t.Topic
		_, known := topics.Topics[t.Topic]
		for _, p := range t.Partitions {
			rp := kmsg.NewOffsetDeleteResponseTopicPartition()
			rp.Partition = p.Partition
			switch {
			case subscribed[t.Topic]:
				rp.ErrorCode = kerr.GroupSubscribedToTopic.Code
			case !known && e.offsets[t.Topic] == nil:
				rp.ErrorCode = kerr.UnknownTopicOrPartition.Code
			default:
				if _, ok := e.offsets[t.Topic][p.Partition]; ok {
					recs = append(recs, offsetRecord(e.id, t.Topic, p.Partition, nil))
					gone = append(gone, tp{t.Topic, p.Partition})
				}
			}
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	if len(recs) > 0 {
		// resp is read after release returns, which is after apply.
		w = c.enqueue(e, recs, func(err error) {
			if err != nil {
				c.logger.Warn("offset delete not written", "group", e.id, "err", err)
				resp.Topics = nil
				resp.ErrorCode = kerr.CoordinatorNotAvailable.Code
				return
			}
			for _, g := range gone {
				delete(e.offsets[g.topic], g.part)
				if len(e.offsets[g.topic]) == 0 {
					delete(e.offsets, g.topic)
				}
			}
		})
	}
	return resp
}

// subscribedTopics returns the topics some member of the group consumes.
func (c *Coordinator) subscribedTopics(e *entry) map[string]bool {
	out := map[string]bool{}
	if e.consumer != nil {
		for _, m := range e.consumer.Members() {
			for t := range m.Assigned {
				out[t] = true
			}
			for t := range m.Target {
				out[t] = true
			}
		}
		return out
	}
	for _, m := range e.classic.Members() {
		var md kmsg.ConsumerMemberMetadata
		if err := md.ReadFrom(m.Metadata); err != nil {
			continue
		}
		for _, t := range md.Topics {
			out[t] = true
		}
	}
	return out
}
