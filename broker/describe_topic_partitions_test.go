package broker

import (
	"fmt"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// describeTopics sends one DescribeTopicPartitions page request to tb.
func describeTopics(t *testing.T, tb *testBroker, limit int32, cursor *kmsg.DescribeTopicPartitionsResponseNextCursor, topics ...string) *kmsg.DescribeTopicPartitionsResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeTopicPartitionsRequest()
	req.ResponsePartitionLimit = limit
	for _, name := range topics {
		rt := kmsg.NewDescribeTopicPartitionsRequestTopic()
		rt.Topic = name
		req.Topics = append(req.Topics, rt)
	}
	if cursor != nil {
		req.Cursor = &kmsg.DescribeTopicPartitionsRequestCursor{Topic: cursor.Topic, Partition: cursor.Partition}
	}
	return do[*kmsg.DescribeTopicPartitionsResponse](tb.raw(t), req, 0)
}

// pageOf renders a page as "topic-partition" items, and its cursor.
func pageOf(resp *kmsg.DescribeTopicPartitionsResponse) (items []string, cursor string) {
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			items = append(items, fmt.Sprintf("%s-%d", *rt.Topic, p.Partition))
		}
	}
	if c := resp.NextCursor; c != nil {
		cursor = fmt.Sprintf("%s-%d", c.Topic, c.Partition)
	}
	return items, cursor
}

// Pages hold at most the limit, in topic-name and partition order; the
// cursor names the first partition left out (the next topic's first when
// the limit falls at a topic's end), and following the cursors visits
// every partition exactly once, whatever the limit.
func TestDescribeTopicPartitionsPages(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "c", 1, nil)
	tb.createTopic(t, "a", 3, nil)
	tb.createTopic(t, "b", 2, nil)
	all := []string{"a-0", "a-1", "a-2", "b-0", "b-1", "c-0"}

	for _, tc := range []struct {
		limit      int32
		cursor     *kmsg.DescribeTopicPartitionsResponseNextCursor
		items      []string
		nextCursor string
	}{
		{2, nil, []string{"a-0", "a-1"}, "a-2"},
		{2, &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: "a", Partition: 2}, []string{"a-2", "b-0"}, "b-1"},
		{2, &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: "b", Partition: 1}, []string{"b-1", "c-0"}, ""},
		{3, nil, []string{"a-0", "a-1", "a-2"}, "b-0"},
		{0, nil, []string{"a-0"}, "a-1"},  // at least one
		{-5, nil, []string{"a-0"}, "a-1"}, // at least one
		{1 << 30, nil, all, ""},           // capped, still all
		{10, &kmsg.DescribeTopicPartitionsResponseNextCursor{Topic: "b", Partition: 9}, []string{"c-0"}, ""}, // past b's end
	} {
		items, cursor := pageOf(describeTopics(t, tb, tc.limit, tc.cursor))
		if !slices.Equal(items, tc.items) || cursor != tc.nextCursor {
			t.Errorf("limit %d from %+v: %v, cursor %q; want %v, cursor %q", tc.limit, tc.cursor, items, cursor, tc.items, tc.nextCursor)
		}
	}
	for limit := int32(1); limit <= 7; limit++ {
		var seen []string
		var cursor *kmsg.DescribeTopicPartitionsResponseNextCursor
		for range 10 {
			resp := describeTopics(t, tb, limit, cursor, "c", "b", "a", "b")
			items, _ := pageOf(resp)
			if len(items) > int(limit) {
				t.Fatalf("limit %d: a page of %d", limit, len(items))
			}
			seen = append(seen, items...)
			if cursor = resp.NextCursor; cursor == nil {
				break
			}
		}
		if !slices.Equal(seen, all) {
			t.Errorf("limit %d: the pages hold %v; want %v", limit, seen, all)
		}
	}
}

// Each topic carries its id, is_internal and no authorized operations;
// each partition its leader, epoch, replicas and ISR, with empty ELR and
// offline lists on a healthy node. Topics asked by name that do not exist
// are errors; a cursor outside the topics asked, or with a negative
// partition, makes the whole request invalid.
func TestDescribeTopicPartitionsFields(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "a", 2, nil)
	resp := describeTopics(t, tb, 100, nil, "zz", "a", "bad name!", "__consumer_offsets")
	if len(resp.Topics) != 4 || resp.NextCursor != nil {
		t.Fatalf("four topics asked: %+v", resp)
	}
	a, _ := tb.metaImage().Topic("a")
	got := resp.Topics[1] // "__consumer_offsets" sorts first
	if *got.Topic != "a" || got.ErrorCode != 0 || got.TopicID != a.ID || got.IsInternal || got.AuthorizedOperations != -2147483648 || len(got.Partitions) != 2 {
		t.Fatalf("topic a: %+v", got)
	}
	self := tb.cfg.NodeID
	for i, p := range got.Partitions {
		want := a.Partitions[i]
		if p.ErrorCode != 0 || p.Partition != int32(i) || p.LeaderID != self || p.LeaderEpoch != want.LeaderEpoch || !slices.Equal(p.Replicas, []int32{self}) ||
			!slices.Equal(p.ISR, []int32{self}) || len(p.EligibleLeaderReplicas) != 0 || len(p.LastKnownELR) != 0 || len(p.OfflineReplicas) != 0 {
			t.Fatalf("a-%d: %+v", i, p)
		}
	}
	// Sorted by name: "__consumer_offsets" < "a" < "bad name!" < "zz".
	for _, want := range []struct {
		name     string
		code     int16
		internal bool
	}{{"__consumer_offsets", kerr.UnknownTopicOrPartition.Code, true}, {"bad name!", kerr.InvalidTopicException.Code, false}, {"zz", kerr.UnknownTopicOrPartition.Code, false}} {
		j := slices.IndexFunc(resp.Topics, func(rt kmsg.DescribeTopicPartitionsResponseTopic) bool { return *rt.Topic == want.name })
		if j < 0 || resp.Topics[j].ErrorCode != want.code || resp.Topics[j].IsInternal != want.internal || len(resp.Topics[j].Partitions) != 0 {
			t.Errorf("topic %q: %+v; want error %d, internal %v", want.name, resp.Topics, want.code, want.internal)
		}
	}
	var names []string
	for _, rt := range resp.Topics {
		names = append(names, *rt.Topic)
	}
	if !slices.IsSorted(names) {
		t.Errorf("topics answered in the order %v; want name order", names)
	}

	for _, cursor := range []*kmsg.DescribeTopicPartitionsResponseNextCursor{{Topic: "b", Partition: 0}, {Topic: "a", Partition: -1}} {
		resp := describeTopics(t, tb, 100, cursor, "a", "zz")
		if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].ErrorCode != kerr.InvalidRequest.Code || len(resp.Topics[0].Partitions) != 0 {
			t.Errorf("cursor %+v: %+v; want INVALID_REQUEST on every topic", cursor, resp.Topics)
		}
	}
	// Asking for every topic leaves nothing unknown to report.
	if items, _ := pageOf(describeTopics(t, tb, 100, nil)); !slices.Equal(items, []string{"a-0", "a-1"}) {
		t.Errorf("every topic: %v", items)
	}
}
