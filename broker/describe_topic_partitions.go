package broker

import (
	"context"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// DescribeTopicPartitions (API 75, KIP-966) describes topics' partitions as
// Metadata does, with the eligible leader replicas (ELR) and the last known
// ELR, in pages: a response holds at most ResponsePartitionLimit
// partitions and a cursor naming the first partition left out
// (kafka-topics.sh --describe). It is answered from this node's image,
// as Kafka's brokers answer it from their metadata cache
// (DescribeTopicPartitionsRequestHandler,
// KRaftMetadataCache.getTopicMetadataForDescribeTopicResponse).

// maxDescribePartitions caps ResponsePartitionLimit: Kafka's
// max.request.partition.size.limit default.
const maxDescribePartitions = 2000

// handleDescribeTopicPartitions answers from the image. Topics are
// described in name order from the cursor's topic on; an empty topic list
// means every topic, and then unknown names cannot occur.
func (b *Broker) handleDescribeTopicPartitions(req *kmsg.DescribeTopicPartitionsRequest) *kmsg.DescribeTopicPartitionsResponse {
	img := b.metaImage()
	all := len(req.Topics) == 0
	var from string
	if req.Cursor != nil {
		from = req.Cursor.Topic
	}
	var names []string
	if all {
		names = img.TopicNames()
	} else {
		for _, rt := range req.Topics {
			names = append(names, rt.Topic)
		}
		slices.Sort(names)
		names = slices.Compact(names)
	}
	names = slices.DeleteFunc(names, func(n string) bool { return n < from })
	if c := req.Cursor; c != nil {
		// The cursor's topic must be among those asked, and its
		// partition a valid index.
		if !all && !slices.Contains(names, c.Topic) {
			return describeTopicPartitionsFailed(req, kerr.InvalidRequest.Code)
		}
		if c.Partition < 0 {
			return describeTopicPartitionsFailed(req, kerr.InvalidRequest.Code)
		}
	}
	limit := max(min(req.ResponsePartitionLimit, maxDescribePartitions), 1)
	return describePage(img, names, req.Cursor, int(limit), !all)
}

// describePage describes names (sorted) until limit partitions are in the
// response; the cursor, if set, gives the first partition of its topic.
// When the limit cuts a topic, or is reached before the next topic, the
// response's cursor names where the next page starts. Unknown topics are
// answered with an error when reportUnknown.
func describePage(img *controller.Image, names []string, cursor *kmsg.DescribeTopicPartitionsRequestCursor, limit int, reportUnknown bool) *kmsg.DescribeTopicPartitionsResponse {
	resp := kmsg.NewPtrDescribeTopicPartitionsResponse()
	remaining := limit
	for _, name := range names {
		if remaining == 0 {
			// Every partition so far fit: the next page starts at
			// this topic, whether it exists or not.
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: 0}
			break
		}
		t, ok := img.Topic(name)
		if !ok {
			if reportUnknown {
				resp.Topics = append(resp.Topics, unknownDescribedTopic(name))
			}
			continue
		}
		start := int32(0)
		if cursor != nil && cursor.Topic == name {
			start = cursor.Partition
		}
		end := min(int32(len(t.Partitions)), start+int32(remaining))
		rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
		rt.Topic, rt.TopicID, rt.IsInternal = kmsg.StringPtr(name), t.ID, isInternalTopic(name)
		rt.AuthorizedOperations = authorizedOperationsOmitted
		rt.Partitions = []kmsg.DescribeTopicPartitionsResponseTopicPartition{}
		for i := start; i < end; i++ {
			rt.Partitions = append(rt.Partitions, describePartition(img, t.Partitions[i]))
		}
		resp.Topics = append(resp.Topics, rt)
		if end < int32(len(t.Partitions)) {
			resp.NextCursor = &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: name, Partition: end}
			break
		}
		remaining -= len(rt.Partitions)
	}
	return resp
}

// describePartition is one partition as the image has it. The leader is
// -1 when it is not a registered broker; offline are the replicas whose
// broker is unregistered or fenced.
func describePartition(img *controller.Image, p controller.Partition) kmsg.DescribeTopicPartitionsResponseTopicPartition {
	dp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
	dp.Partition, dp.LeaderID, dp.LeaderEpoch = p.Index, -1, p.LeaderEpoch
	if _, ok := img.Broker(p.Leader); ok {
		dp.LeaderID = p.Leader
	}
	dp.Replicas, dp.ISR = p.Replicas, p.ISR
	dp.EligibleLeaderReplicas, dp.LastKnownELR = p.ELR, p.LastKnownELR
	dp.OfflineReplicas = []int32{}
	for _, id := range p.Replicas {
		if br, ok := img.Broker(id); !ok || br.Fenced {
			dp.OfflineReplicas = append(dp.OfflineReplicas, id)
		}
	}
	return dp
}

// unknownDescribedTopic answers a topic asked by name that does not exist:
// UNKNOWN_TOPIC_OR_PARTITION, or INVALID_TOPIC_EXCEPTION for a name no
// topic could have.
func unknownDescribedTopic(name string) kmsg.DescribeTopicPartitionsResponseTopic {
	rt := kmsg.NewDescribeTopicPartitionsResponseTopic()
	rt.Topic, rt.IsInternal = kmsg.StringPtr(name), isInternalTopic(name)
	rt.ErrorCode = kerr.UnknownTopicOrPartition.Code
	if controller.ValidateTopicName(name) != nil {
		rt.ErrorCode = kerr.InvalidTopicException.Code
	}
	rt.AuthorizedOperations = authorizedOperationsOmitted
	return rt
}

// describeTopicPartitionsFailed answers a request refused as a whole:
// code on every topic it names (DescribeTopicPartitionsRequest.getErrorResponse).
func describeTopicPartitionsFailed(req *kmsg.DescribeTopicPartitionsRequest, code int16) *kmsg.DescribeTopicPartitionsResponse {
	resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
	for _, rt := range req.Topics {
		t := kmsg.NewDescribeTopicPartitionsResponseTopic()
		t.Topic, t.ErrorCode = kmsg.StringPtr(rt.Topic), code
		t.AuthorizedOperations = authorizedOperationsOmitted
		resp.Topics = append(resp.Topics, t)
	}
	return resp
}

func init() {
	register(api{key: kmsg.DescribeTopicPartitions, min: 0, max: 0,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleDescribeTopicPartitions(req.(*kmsg.DescribeTopicPartitionsRequest))
		},
		errorCodes: codes(func(r *kmsg.DescribeTopicPartitionsResponse, count func(int16)) {
			for _, t := range r.Topics {
				count(t.ErrorCode)
				for _, p := range t.Partitions {
					count(p.ErrorCode)
				}
			}
		}),
	})
}
