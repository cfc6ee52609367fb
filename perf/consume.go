package perf

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// runConsume reads the topic with kgo consumers, decoding every record.
// Each client is assigned a share of the partitions directly (no group),
// so the measurement includes no rebalance.
func runConsume(ctx context.Context, o *options, rn *run) (outcome, error) {
	info, err := existingTopic(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	from := kgo.NewOffset().AtStart()
	if o.from == "latest" {
		from = kgo.NewOffset().AtEnd()
	}
	var clients []*kgo.Client
	for _, share := range split(info.partitions, o.clients) {
		if len(share) == 0 {
			continue // more clients than partitions
		}
		offsets := map[int32]kgo.Offset{}
		for _, p := range share {
			offsets[p] = from
		}
		cl, err := newClient(ctx, o,
			kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets}),
			kgo.FetchMaxBytes(int32(min(o.fetchMaxBytes, 1<<31-1))),
			kgo.FetchMaxPartitionBytes(int32(min(o.partitionMaxBytes, 1<<31-1))),
		)
		if err != nil {
			closeAll(clients)
			return outcome{}, err
		}
		clients = append(clients, cl)
	}

	m := rn.begin(o, false)
	wctx, cancel := window(ctx, o, m)
	defer cancel()
	var wg sync.WaitGroup
	for _, cl := range clients {
		wg.Go(func() { consumeLoop(wctx, cl, m) })
	}
	wg.Wait()
	stop := rn.end()
	closeAll(clients)
	return m.outcome(len(info.partitions), stop), nil
}

// existingTopic describes a topic the run only reads.
func existingTopic(ctx context.Context, o *options) (topicInfo, error) {
	cl, err := newClient(ctx, o)
	if err != nil {
		return topicInfo{}, err
	}
	defer cl.Close()
	return describeTopic(ctx, kadm.NewClient(cl), o, false)
}

func consumeLoop(wctx context.Context, cl *kgo.Client, m *meter) {
	for wctx.Err() == nil {
		fetches := cl.PollFetches(wctx)
		now := time.Now()
		if !m.measuring(now) {
			continue
		}
		fetches.EachError(func(topic string, partition int32, err error) {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return // the end of the window, not a failure
			}
			m.fail(1, fmt.Errorf("fetching %s partition %d: %w", topic, partition, err))
		})
		var records, bytes int64
		fetches.EachPartition(func(p kgo.FetchTopicPartition) {
			for _, r := range p.Records {
				records++
				bytes += int64(len(r.Key) + len(r.Value))
			}
		})
		if records > 0 {
			m.add(now, records, bytes)
		}
	}
}
