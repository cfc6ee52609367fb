package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describePartitionsLimit is how many partitions one DescribeTopicPartitions
// answer may carry; Kafka caps it at 2000 (max.request.partition.size.limit)
// and hands back a cursor for the rest.
const describePartitionsLimit = 2000

// fillFromDescribePartitions replaces the partition rows that metadata
// filled with DescribeTopicPartitions' (API 75, Kafka 3.8+), which adds the
// eligible leader replicas. Brokers that do not list API 75 leave the
// metadata rows and null ELR fields: the fallback is silent because the
// rows are as complete as such a broker can make them.
func fillFromDescribePartitions(ctx context.Context, c *client, topics []string, byName map[string]*describedTopic) error {
	ok, err := supportsKey(ctx, c, kmsg.DescribeTopicPartitions)
	if err != nil || !ok {
		return err
	}
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = describePartitionsLimit
	for _, t := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = t
		req.Topics = append(req.Topics, rt)
	}
	for {
		resp, err := req.RequestWith(ctx, c.kgo)
		if err != nil {
			return fmt.Errorf("describing topic partitions: %w", err)
		}
		for _, rt := range resp.Topics {
			if rt.Topic == nil || rt.ErrorCode != 0 {
				continue // metadata already judged the topic
			}
			if t := byName[*rt.Topic]; t != nil {
				mergeDescribedPartitions(t, rt.Partitions)
			}
		}
		if resp.NextCursor == nil {
			return nil
		}
		cur := kmsg.NewDescribeTopicPartitionsRequestCursor()
		cur.Topic, cur.Partition = resp.NextCursor.Topic, resp.NextCursor.Partition
		req.Cursor = &cur
	}
}

func mergeDescribedPartitions(t *describedTopic, ps []kmsg.DescribeTopicPartitionsResponseTopicPartition) {
	for _, rp := range ps {
		for i := range t.Partitions {
			p := &t.Partitions[i]
			if p.Partition != rp.Partition {
				continue
			}
			p.Leader, p.LeaderEpoch = rp.LeaderID, rp.LeaderEpoch
			p.Replicas, p.ISR, p.OfflineReplicas = nonNil(rp.Replicas), nonNil(rp.ISR), nonNil(rp.OfflineReplicas)
			p.ELR, p.LastKnownELR = nonNil(rp.EligibleLeaderReplicas), nonNil(rp.LastKnownELR)
			p.Error = nil
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil && !errors.Is(err, kerr.LeaderNotAvailable) {
				p.Error = errString(err)
			}
		}
	}
}

// partitionFilter selects partitions as kafka-topics.sh --describe's
// --under-replicated-partitions, --under-min-isr-partitions and
// --unavailable-partitions do.
type partitionFilter struct {
	underReplicated, underMinISR, unavailable bool
}

func (f partitionFilter) any() bool { return f.underReplicated || f.underMinISR || f.unavailable }

// apply keeps the partitions that match and drops topics left without any.
func (f partitionFilter) apply(res topicDescribeResult) []describedTopic {
	out := []describedTopic{}
	for _, t := range res.Topics {
		minISR := 0
		if t.MinISR != nil {
			minISR = *t.MinISR
		}
		var kept []topicPartition
		for _, p := range t.Partitions {
			h := classifyPartition(p.Leader, p.Replicas, p.ISR, minISR, res.live)
			if f.underReplicated && h.UnderReplicated || f.underMinISR && h.UnderMinISR || f.unavailable && h.Unavailable {
				kept = append(kept, p)
			}
		}
		if len(kept) > 0 {
			t.Partitions = kept
			out = append(out, t)
		}
	}
	return out
}

// printFilteredPartitions is the table of a filtered describe: the selected
// partitions of every topic, with the topic as the first column.
func printFilteredPartitions(w io.Writer, topics []describedTopic) error {
	if len(topics) == 0 {
		return nil
	}
	tw := newTable(w)
	fmt.Fprintln(tw, "TOPIC\tPARTITION\tLEADER\tLEADER-EPOCH\tREPLICAS\tISR\tELR\tLAST-KNOWN-ELR\tOFFLINE\tMIN-ISR")
	for _, t := range topics {
		for _, p := range t.Partitions {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\n", t.Topic, p.Partition, partitionCells(p),
				formatNodes(p.OfflineReplicas), formatMinISR(t.MinISR))
		}
	}
	return tw.Flush()
}

// partitionCells renders the LEADER to LAST-KNOWN-ELR cells of a row.
func partitionCells(p topicPartition) string {
	return strings.Join([]string{formatLeader(p.Leader), strconv.Itoa(int(p.LeaderEpoch)),
		formatNodes(p.Replicas), formatNodes(p.ISR), formatNodes(p.ELR), formatNodes(p.LastKnownELR)}, "\t")
}

func formatMinISR(n *int) string {
	if n == nil {
		return "-"
	}
	return strconv.Itoa(*n)
}

// listOffsetsOf lists the offsets at timestamp (-2 log start, -1 high
// watermark) of the given partitions only; kadm's helpers take whole
// topics. A shard that failed marks its partitions with its error.
func listOffsetsOf(ctx context.Context, c *client, parts map[string][]int32, timestamp int64) (kadm.ListedOffsets, error) {
	out := make(kadm.ListedOffsets)
	if len(parts) == 0 {
		return out, nil
	}
	req := kmsg.NewPtrListOffsetsRequest()
	for _, t := range slices.Sorted(maps.Keys(parts)) {
		rt := kmsg.NewListOffsetsRequestTopic()
		rt.Topic = t
		for _, p := range parts[t] {
			rp := kmsg.NewListOffsetsRequestTopicPartition()
			rp.Partition, rp.Timestamp = p, timestamp
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
	}
	set := func(t string, p int32, o kadm.ListedOffset) {
		if out[t] == nil {
			out[t] = map[int32]kadm.ListedOffset{}
		}
		out[t][p] = o
	}
	for _, shard := range c.kgo.RequestSharded(ctx, req) {
		if shard.Err != nil {
			if ctx.Err() != nil {
				return nil, shard.Err
			}
			for _, rt := range shard.Req.(*kmsg.ListOffsetsRequest).Topics {
				for _, rp := range rt.Partitions {
					set(rt.Topic, rp.Partition, kadm.ListedOffset{Topic: rt.Topic, Partition: rp.Partition, Err: shard.Err})
				}
			}
			continue
		}
		for _, rt := range shard.Resp.(*kmsg.ListOffsetsResponse).Topics {
			for _, rp := range rt.Partitions {
				set(rt.Topic, rp.Partition, kadm.ListedOffset{Topic: rt.Topic, Partition: rp.Partition,
					Offset: rp.Offset, LeaderEpoch: rp.LeaderEpoch, Err: kerr.ErrorForCode(rp.ErrorCode)})
			}
		}
	}
	return out, nil
}
