package broker

import (
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// TestPartitionHostedElsewhereAnswersNotLeader: when the metadata image
// names another broker leader of a partition, whether this node still
// follows it or holds no replica at all, Produce, Fetch, ListOffsets,
// OffsetForLeaderEpoch and DeleteRecords answer NOT_LEADER_OR_FOLLOWER
// (so clients refresh metadata and go to the leader), never
// UNKNOWN_TOPIC_OR_PARTITION; a partition the image does not have stays
// UNKNOWN_TOPIC_OR_PARTITION, and the partition this node leads answers.
func TestPartitionHostedElsewhereAnswersNotLeader(t *testing.T) {
	mb := openMem(t, segment.NewMemFS(), newFakeClock())
	defer mb.Shutdown(t.Context())
	mb.createTopic("moved", nil)
	mb.mustProduce("moved", "a")
	if code := mb.createPartitions("moved", 3); code != 0 {
		t.Fatalf("create partitions: %v", kerr.ErrorForCode(code))
	}
	self := mb.cfg.NodeID
	// Partition 1: broker 2 leads, this node follows. Partition 2: only
	// broker 2 has it.
	mb.commitAndApply(func(s *controller.State) ([]controller.Record, error) {
		id := s.Topics["moved"].ID
		return []controller.Record{
			controller.RegisterBrokerRecord{BrokerID: 2, Endpoints: []controller.Endpoint{{Name: "PLAINTEXT", Host: "other.example", Port: 19092}}},
			controller.PartitionChangeRecord{TopicID: id, Partition: 1, Leader: 2, Replicas: []int32{self, 2}, ISR: []int32{self, 2}},
			controller.PartitionChangeRecord{TopicID: id, Partition: 2, Leader: 2, Replicas: []int32{2}, ISR: []int32{2}},
		}, nil
	})

	want := map[int32]int16{0: 0, 1: kerr.NotLeaderForPartition.Code, 2: kerr.NotLeaderForPartition.Code, 3: kerr.UnknownTopicOrPartition.Code}
	check := func(api string, got map[int32]int16) {
		t.Helper()
		for p, code := range want {
			if got[p] != code {
				t.Errorf("%s partition %d: %v, want %v", api, p, kerr.ErrorForCode(got[p]), kerr.ErrorForCode(code))
			}
		}
	}
	id := mb.topics.get("moved").id
	batch, err := segment.BuildBatch([]segment.KV{{Value: []byte("b")}}, mb.now().UnixMilli())
	if err != nil {
		t.Fatal(err)
	}

	produce := kmsg.NewPtrProduceRequest()
	produce.Acks, produce.TimeoutMillis = -1, 5000
	pt := kmsg.NewProduceRequestTopic()
	pt.Topic, pt.TopicID = "moved", id
	fetch := kmsg.NewPtrFetchRequest()
	fetch.ReplicaID, fetch.MaxBytes, fetch.SessionEpoch = -1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "moved", id
	list := kmsg.NewPtrListOffsetsRequest()
	list.ReplicaID = -1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = "moved"
	epochs := kmsg.NewPtrOffsetForLeaderEpochRequest()
	epochs.ReplicaID = -1
	et := kmsg.NewOffsetForLeaderEpochRequestTopic()
	et.Topic = "moved"
	del := kmsg.NewPtrDeleteRecordsRequest()
	del.TimeoutMillis = 5000
	dt := kmsg.NewDeleteRecordsRequestTopic()
	dt.Topic = "moved"
	for p := range int32(len(want)) {
		pp := kmsg.NewProduceRequestTopicPartition()
		pp.Partition, pp.Records = p, batch
		pt.Partitions = append(pt.Partitions, pp)
		fp := kmsg.NewFetchRequestTopicPartition()
		fp.Partition, fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = p, 1<<20, -1, -1
		ft.Partitions = append(ft.Partitions, fp)
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp, lp.CurrentLeaderEpoch = p, -1, -1
		lt.Partitions = append(lt.Partitions, lp)
		ep := kmsg.NewOffsetForLeaderEpochRequestTopicPartition()
		ep.Partition, ep.LeaderEpoch, ep.CurrentLeaderEpoch = p, 0, -1
		et.Partitions = append(et.Partitions, ep)
		dp := kmsg.NewDeleteRecordsRequestTopicPartition()
		dp.Partition, dp.Offset = p, 0
		dt.Partitions = append(dt.Partitions, dp)
	}
	produce.Topics = append(produce.Topics, pt)
	fetch.Topics = append(fetch.Topics, ft)
	list.Topics = append(list.Topics, lt)
	epochs.Topics = append(epochs.Topics, et)
	del.Topics = append(del.Topics, dt)

	check("Produce", codesOf(callHandle[*kmsg.ProduceResponse](mb, produce).Topics[0].Partitions,
		func(p kmsg.ProduceResponseTopicPartition) (int32, int16) { return p.Partition, p.ErrorCode }))
	// Fetch v10, from before KIP-392: only the leader serves. From v11
	// a consumer (which sends client metadata) may read a follower, so
	// the followed partition 1 answers there.
	check("Fetch", codesOf(callHandleAt[*kmsg.FetchResponse](mb, fetch, 10).Topics[0].Partitions,
		func(p kmsg.FetchResponseTopicPartition) (int32, int16) { return p.Partition, p.ErrorCode }))
	v11 := codesOf(callHandle[*kmsg.FetchResponse](mb, fetch).Topics[0].Partitions,
		func(p kmsg.FetchResponseTopicPartition) (int32, int16) { return p.Partition, p.ErrorCode })
	if v11[1] != 0 || v11[2] != kerr.NotLeaderForPartition.Code {
		t.Errorf("Fetch v11+: followed partition 1 %v, partition 2 hosted elsewhere %v; want served and NOT_LEADER_OR_FOLLOWER",
			kerr.ErrorForCode(v11[1]), kerr.ErrorForCode(v11[2]))
	}
	check("ListOffsets", codesOf(callHandle[*kmsg.ListOffsetsResponse](mb, list).Topics[0].Partitions,
		func(p kmsg.ListOffsetsResponseTopicPartition) (int32, int16) { return p.Partition, p.ErrorCode }))
	check("OffsetForLeaderEpoch", codesOf(callHandle[*kmsg.OffsetForLeaderEpochResponse](mb, epochs).Topics[0].Partitions,
		func(p kmsg.OffsetForLeaderEpochResponseTopicPartition) (int32, int16) {
			return p.Partition, p.ErrorCode
		}))
	check("DeleteRecords", codesOf(callHandle[*kmsg.DeleteRecordsResponse](mb, del).Topics[0].Partitions,
		func(p kmsg.DeleteRecordsResponseTopicPartition) (int32, int16) { return p.Partition, p.ErrorCode }))

	// The follower's replica stays open, with its data; only leadership
	// moved.
	if tp := mb.topics.get("moved"); tp.partition(1) == nil || tp.partition(2) != nil {
		t.Fatalf("replicas open: follower %v, not hosted %v", tp.partition(1) != nil, tp.partition(2) != nil)
	}
}

// TestFetchWaitingOnAPartitionAnswersWhenLeadershipLeaves: a long-poll
// fetch waiting on a partition this node leads is answered at once with
// NOT_LEADER_OR_FOLLOWER when the image moves leadership to another
// broker, not at max_wait_ms, so the consumer goes to the new leader.
func TestFetchWaitingOnAPartitionAnswersWhenLeadershipLeaves(t *testing.T) {
	mb := openMem(t, segment.NewMemFS(), newFakeClock())
	defer mb.Shutdown(t.Context())
	id := mb.createTopic("moving", nil)
	req := longPollFetch("moving", id, 60_000)
	answered := make(chan int16, 1)
	go func() {
		// v10: only the leader serves. (A v11+ consumer may go on
		// reading this node as a follower; with KIP-320's epoch it is
		// told FENCED_LEADER_EPOCH instead, see the cluster tests.)
		answered <- callHandleAt[*kmsg.FetchResponse](mb, req, 10).Topics[0].Partitions[0].ErrorCode
	}()
	testkit.Eventually(t, 10*time.Second, "the fetch to wait", func() bool { return mb.fetchWaits.Keys() == 1 })

	mb.commitAndApply(func(s *controller.State) ([]controller.Record, error) {
		return []controller.Record{
			controller.RegisterBrokerRecord{BrokerID: 2},
			controller.PartitionChangeRecord{TopicID: s.Topics["moving"].ID, Partition: 0, Leader: 2, Replicas: []int32{mb.cfg.NodeID, 2}, ISR: []int32{mb.cfg.NodeID, 2}},
		}, nil
	})
	select {
	case code := <-answered:
		if code != kerr.NotLeaderForPartition.Code {
			t.Fatalf("the waiting fetch answered %v, want NOT_LEADER_OR_FOLLOWER", kerr.ErrorForCode(code))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting fetch was not answered when leadership left")
	}
}

// codesOf maps each partition of a response to its error code.
func codesOf[P any](ps []P, code func(P) (int32, int16)) map[int32]int16 {
	m := map[int32]int16{}
	for _, p := range ps {
		i, c := code(p)
		m[i] = c
	}
	return m
}

// createPartitions grows topic to count partitions and returns the error code.
func (mb *memBroker) createPartitions(topic string, count int32) int16 {
	mb.t.Helper()
	req := kmsg.NewPtrCreatePartitionsRequest()
	rt := kmsg.NewCreatePartitionsRequestTopic()
	rt.Topic, rt.Count = topic, count
	req.Topics = append(req.Topics, rt)
	req.TimeoutMillis = 5000
	return callHandle[*kmsg.CreatePartitionsResponse](mb, req).Topics[0].ErrorCode
}

// commitAndApply commits records to the metadata, as a cluster's
// controller will, and hands the new image to the replica manager.
func (mb *memBroker) commitAndApply(plan controller.Plan) {
	mb.t.Helper()
	if _, err := mb.meta.Commit(plan); err != nil {
		mb.t.Fatal(err)
	}
	if failed := mb.applyImage(); len(failed) > 0 {
		mb.t.Fatalf("apply image: %v", failed)
	}
}
