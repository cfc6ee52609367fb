package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A session that took a topic id before this broker knew the topic (a
// follower's first fetch racing the metadata of a new topic) must serve
// the topic once it is known, although incremental requests never name
// the unchanged partition again.
func TestSessionResolvesTopicIDsLearnedLater(t *testing.T) {
	id := [16]byte{9, 9}
	known := false
	resolve := func(got [16]byte) string {
		if known && got == id {
			return "late"
		}
		return ""
	}
	c := newFetchSessionCache(10)
	req := kmsg.NewPtrFetchRequest()
	req.Version, req.SessionID, req.SessionEpoch = 13, 0, 0
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset = 0, 5
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	first := c.plan(req, resolve)
	if first.sess == nil || len(first.items) != 1 || first.items[0].key.topic != unknownTopicKey(id) {
		t.Fatalf("full fetch of an unknown id: %+v", first)
	}

	known = true
	inc := kmsg.NewPtrFetchRequest()
	inc.Version, inc.SessionID, inc.SessionEpoch = 13, first.sess.id, 1
	next := c.plan(inc, resolve)
	if next.errCode != 0 || len(next.items) != 1 {
		t.Fatalf("incremental plan: %+v", next)
	}
	if it := next.items[0]; it.key != (sessionKey{"late", 0}) || it.fetchOffset != 5 {
		t.Fatalf("item %+v, want topic late partition 0 at offset 5", it)
	}

	// Forgetting it by id now removes the named partition.
	forget := kmsg.NewPtrFetchRequest()
	forget.Version, forget.SessionID, forget.SessionEpoch = 13, first.sess.id, 2
	forget.ForgottenTopics = append(forget.ForgottenTopics, kmsg.FetchRequestForgottenTopic{TopicID: id, Partitions: []int32{0}})
	if last := c.plan(forget, resolve); len(last.items) != 0 {
		t.Fatalf("after forgetting: items %+v", last.items)
	}
}

// A topic whose metadata arrives while an incremental request is planned
// (its id unknown when the request's partitions are recorded, known when
// the session's order is rebuilt) must not leave a partition in the order
// without its state: that was a nil dereference in a broker's Fetch
// during a burst of topic creations.
func TestSessionPlanNamesEachPartitionOnce(t *testing.T) {
	id := [16]byte{7}
	calls := 0
	resolve := func(got [16]byte) string {
		calls++
		if got == id && calls > 1 {
			return "born-meanwhile" // known from the second lookup on
		}
		return ""
	}
	c := newFetchSessionCache(10)
	full := kmsg.NewPtrFetchRequest()
	full.Version, full.SessionID, full.SessionEpoch = 13, 0, 0
	first := c.plan(full, func([16]byte) string { return "" })
	if first.sess == nil {
		t.Fatal("no session")
	}
	inc := kmsg.NewPtrFetchRequest()
	inc.Version, inc.SessionID, inc.SessionEpoch = 13, first.sess.id, 1
	rt := kmsg.NewFetchRequestTopic()
	rt.TopicID = id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset = 3, 11
	rt.Partitions = append(rt.Partitions, rp)
	inc.Topics = append(inc.Topics, rt)
	plan := c.plan(inc, resolve)
	if plan.errCode != 0 || len(plan.items) != 1 || plan.items[0].sp == nil || plan.items[0].fetchOffset != 11 {
		t.Fatalf("incremental plan: %+v", plan)
	}
}
