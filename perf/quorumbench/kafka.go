package main

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// metadataTopic is the metadata log DescribeQuorum describes.
const metadataTopic = "__cluster_metadata"

// replicaState is one voter's or observer's line of DescribeQuorum.
type replicaState struct {
	leo           int64
	lastFetchMs   int64
	lastCaughtUpM int64
}

// quorumState is what one DescribeQuorum answered.
type quorumState struct {
	leader    int32
	epoch     int32
	hw        int64
	voters    map[int32]replicaState
	observers map[int32]replicaState
}

// describeQuorum asks one broker (which forwards to the active
// controller) for the metadata log's state.
func describeQuorum(ctx context.Context, b *kgo.Broker, timeout time.Duration) (quorumState, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = metadataTopic
	rt.Partitions = append(rt.Partitions, kmsg.NewDescribeQuorumRequestTopicPartition())
	req.Topics = append(req.Topics, rt)
	raw, err := b.Request(ctx, req)
	if err != nil {
		return quorumState{}, err
	}
	resp := raw.(*kmsg.DescribeQuorumResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return quorumState{}, err
	}
	if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
		return quorumState{}, fmt.Errorf("DescribeQuorum: %d topics in the answer", len(resp.Topics))
	}
	p := resp.Topics[0].Partitions[0]
	if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
		return quorumState{}, err
	}
	q := quorumState{leader: p.LeaderID, epoch: p.LeaderEpoch, hw: p.HighWatermark,
		voters: map[int32]replicaState{}, observers: map[int32]replicaState{}}
	for _, v := range p.CurrentVoters {
		q.voters[v.ReplicaID] = replicaState{leo: v.LogEndOffset, lastFetchMs: v.LastFetchTimestamp, lastCaughtUpM: v.LastCaughtUpTimestamp}
	}
	for _, o := range p.Observers {
		q.observers[o.ReplicaID] = replicaState{leo: o.LogEndOffset, lastFetchMs: o.LastFetchTimestamp, lastCaughtUpM: o.LastCaughtUpTimestamp}
	}
	return q, nil
}

// createTopics creates the named topics, each with partitions partitions
// of rf replicas, through one broker. It returns the number created and
// the first error code other than success; TOPIC_ALREADY_EXISTS counts as
// created (an earlier attempt the client gave up on was committed).
func createTopics(ctx context.Context, b *kgo.Broker, names []string, partitions, rf int32, timeout time.Duration) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(timeout.Milliseconds())
	for _, n := range names {
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = n, partitions, int16(rf)
		req.Topics = append(req.Topics, t)
	}
	raw, err := b.Request(ctx, req)
	if err != nil {
		return 0, err
	}
	created := 0
	var first error
	for _, t := range raw.(*kmsg.CreateTopicsResponse).Topics {
		err := kerr.ErrorForCode(t.ErrorCode)
		if err == nil || err == kerr.TopicAlreadyExists {
			created++
		} else if first == nil {
			first = fmt.Errorf("%s: %w", t.Topic, err)
		}
	}
	return created, first
}

// metaView is what one broker's Metadata lists.
type metaView struct {
	brokers    []int32 // listed, so registered and unfenced (sorted)
	partitions int     // partitions of user topics without an error
	fullISR    int     // of those, with every replica in the ISR
}

// fetchMetadata asks one broker for its metadata: the brokers only, or
// every topic when allTopics.
func fetchMetadata(ctx context.Context, b *kgo.Broker, allTopics bool, timeout time.Duration) (metaView, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req := kmsg.NewPtrMetadataRequest()
	if !allTopics {
		req.Topics = []kmsg.MetadataRequestTopic{}
	}
	raw, err := b.Request(ctx, req)
	if err != nil {
		return metaView{}, err
	}
	resp := raw.(*kmsg.MetadataResponse)
	var m metaView
	for _, br := range resp.Brokers {
		m.brokers = append(m.brokers, br.NodeID)
	}
	slices.Sort(m.brokers)
	for _, t := range resp.Topics {
		if t.ErrorCode != 0 || t.IsInternal {
			continue
		}
		for _, p := range t.Partitions {
			if p.ErrorCode != 0 && p.ErrorCode != kerr.LeaderNotAvailable.Code {
				continue
			}
			m.partitions++
			if len(p.ISR) == len(p.Replicas) {
				m.fullISR++
			}
		}
	}
	return m, nil
}

// lists reports whether the sorted broker list holds id.
func (m metaView) lists(id int32) bool {
	_, ok := slices.BinarySearch(m.brokers, id)
	return ok
}
