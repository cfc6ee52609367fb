package broker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
)

type controllerPartition = controller.Partition

// kadmOffsets is one committed offset for kadm.
func kadmOffsets(topic string, partition int32, at int64) kadm.Offsets {
	o := kadm.Offsets{}
	o.Add(kadm.Offset{Topic: topic, Partition: partition, At: at, LeaderEpoch: -1})
	return o
}

// threeBrokers starts node 1 (the controller) and brokers 2 and 3 linked to
// it, with short sessions so a stopped broker is fenced within seconds.
func threeBrokers(t *testing.T, sets ...string) []*testBroker {
	t.Helper()
	ctl := startTestBroker(t, append([]string{"node.id=1", "broker.session.timeout.ms=2000", "broker.heartbeat.interval.ms=200",
		"replica.lag.time.max.ms=3000", "min.insync.replicas=2"}, sets...)...)
	links := append([]string{"broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200", "replica.fetch.backoff.ms=100"}, sets...)
	b2 := startLinkedBroker(t, 2, ctl.addr, links...)
	b3 := startLinkedBroker(t, 3, ctl.addr, links...)
	waitUnfenced(t, ctl, 2, 3)
	return []*testBroker{ctl, b2, b3}
}

// createAssigned creates topic with one partition on replicas (the first
// leads), through the controller.
func createAssigned(t *testing.T, ctl *testBroker, topic string, replicas ...int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
	ra.Partition, ra.Replicas = 0, replicas
	rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
	resp := do[*kmsg.CreateTopicsResponse](ctl.raw(t), req, 7)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s on %v: error %d %v", topic, replicas, resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage)
	}
}

// replicaState is (LEO, HW) of broker tb's replica of partition 0.
func replicaState(tb *testBroker, topic string) (leo, hw int64, ok bool) {
	t := tb.topics.get(topic)
	if t == nil || t.partition(0) == nil {
		return 0, 0, false
	}
	p := t.partition(0)
	return p.LogEndOffset(), p.HighWatermark(), true
}

// A topic replicated on three brokers: acks=all produces succeed once the
// followers have the records, every replica ends with the same log end
// offset and high watermark, and a consumer reads every record.
func TestReplicationThreeBrokers(t *testing.T) {
	bs := threeBrokers(t)
	createAssigned(t, bs[0], "r3", 2, 3, 1)
	leader := bs[1]
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead r3", func() bool {
		return leader.topics.get("r3").replication(0) != nil
	})
	cl := leader.client(t, kgo.DefaultProduceTopic("r3"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx := context.Background()
	const n = 200
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		for _, tb := range bs {
			leo, hw, ok := replicaState(tb, "r3")
			if !ok || leo != n || hw != n {
				return fmt.Errorf("broker %d: replica %v, LEO %d, HW %d; want %d and %d", tb.cfg.NodeID, ok, leo, hw, n, n)
			}
		}
		return nil
	})
	if isr := bs[0].metaImage(); true {
		p, _ := isr.Partition("r3", 0)
		if !slices.Equal(sortedIDs(p.ISR), []int32{1, 2, 3}) {
			t.Fatalf("ISR %v, want [1 2 3]", p.ISR)
		}
	}
	got := consumeAll(t, bs[2], "r3", n)
	for i := range n {
		if got[i] != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d is %q", i, got[i])
		}
	}
}

// The leader stops without a controlled shutdown: once its session
// expires, the controller fences it and a follower from the ISR leads in a
// new epoch, with every record that was acknowledged before; producing goes
// on against the new leader.
func TestReplicationLeaderFailover(t *testing.T) {
	bs := threeBrokers(t, "controlled.shutdown.enable=false")
	createAssigned(t, bs[0], "fo", 2, 3, 1)
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead fo", func() bool {
		return bs[1].topics.get("fo").replication(0) != nil
	})
	cl := bs[0].client(t, kgo.DefaultProduceTopic("fo"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	ctx := context.Background()
	const n = 100
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d: %v", i, err)
		}
	}
	before := bs[0].metaImage()
	old, _ := before.Partition("fo", 0)
	if err := bs[1].Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "a new leader for fo", func() bool {
		p, _ := bs[0].metaImage().Partition("fo", 0)
		return p.Leader != 2 && p.Leader >= 0 && p.LeaderEpoch > old.LeaderEpoch
	})
	pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for i := n; i < 2*n; i++ {
		if err := cl.ProduceSync(pctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("acks=all produce %d after the failover: %v", i, err)
		}
	}
	got := consumeAll(t, bs[0], "fo", 2*n)
	for i := range 2 * n {
		if got[i] != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d is %q after the failover", i, got[i])
		}
	}
}

func sortedIDs(ids []int32) []int32 {
	out := slices.Clone(ids)
	slices.Sort(out)
	return out
}

// consumeAll reads partition 0 of topic from the start through tb until n
// records arrived, in offset order.
func consumeAll(t *testing.T, tb *testBroker, topic string, n int) []string {
	t.Helper()
	c := tb.client(t, kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {0: kgo.NewOffset().AtStart()}}))
	var got []string
	deadline := time.Now().Add(20 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := c.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) {
			if int(r.Offset) == len(got) {
				got = append(got, string(r.Value))
			}
		})
	}
	if len(got) < n {
		t.Fatalf("read %d of %d records of %s", len(got), n, topic)
	}
	return got
}

// Groups live on the offsets partitions' leaders: a group's offsets,
// committed through broker 2 or 3 (which forward __consumer_offsets'
// creation to the controller in an Envelope), survive the stop of the
// coordinator's broker: another replica leads the partition, loads the
// group and serves the offsets.
func TestGroupCoordinatorMovesWithLeadership(t *testing.T) {
	bs := threeBrokers(t, "controlled.shutdown.enable=false", "offsets.topic.replication.factor=3", "offsets.topic.num.partitions=3")
	createAssigned(t, bs[0], "events", 1, 2, 3)
	ctx := context.Background()
	adm := bs[1].admin(t)
	// Through broker 2: FindCoordinator creates the offsets topic.
	var coord int32 = -1
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		c := adm.FindGroupCoordinators(ctx, "g")["g"]
		if c.Err != nil {
			return c.Err
		}
		coord = c.NodeID
		return nil
	})
	if rf := len(mustPartition(t, bs[0], "__consumer_offsets").Replicas); rf != 3 {
		t.Fatalf("__consumer_offsets has %d replicas, want 3", rf)
	}
	offsets := kadmOffsets("events", 0, 77)
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		r, err := adm.CommitOffsets(ctx, "g", offsets)
		if err != nil {
			return err
		}
		return r.Error()
	})
	// Stop the coordinator's broker (never the controller: node 1 holds
	// the metadata, and its loss is the controller quorum's issue).
	if coord == 1 {
		t.Skip("the group's coordinator is the controller node; this layout cannot move it")
	}
	if err := bs[coord-1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	survivor := bs[0]
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		// A fresh client each time: one that cached the stopped
		// coordinator keeps dialling it.
		cl, err := kgo.NewClient(kgo.SeedBrokers(survivor.addr))
		if err != nil {
			return err
		}
		defer cl.Close()
		fctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		fetched, err := kadm.NewClient(cl).FetchOffsets(fctx, "g")
		if err != nil {
			return err
		}
		o, ok := fetched.Lookup("events", 0)
		if !ok || o.Err != nil || o.At != 77 {
			return fmt.Errorf("offset of events/0 after the coordinator stopped: %+v (%v)", o, ok)
		}
		return nil
	})
}

func mustPartition(t *testing.T, tb *testBroker, topic string) controllerPartition {
	t.Helper()
	p, ok := tb.metaImage().Partition(topic, 0)
	if !ok {
		t.Fatalf("%s has no partition 0", topic)
	}
	return p
}

// With auto.leader.rebalance.enable, leadership goes back to the preferred
// replica once it is back: broker 2 leads, stops, broker 3 takes over,
// broker 2 restarts on its data (registering again once its old session
// is over), catches up, rejoins the ISR, and the controller's rebalance
// makes it the leader again.
func TestPreferredLeaderComesBack(t *testing.T) {
	bs := threeBrokers(t, "controlled.shutdown.enable=false", "leader.imbalance.check.interval.seconds=1", "leader.imbalance.per.broker.percentage=0")
	createAssigned(t, bs[0], "pref", 2, 3, 1)
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead pref", func() bool {
		return bs[1].topics.get("pref").replication(0) != nil
	})
	cl := bs[0].client(t, kgo.DefaultProduceTopic("pref"), kgo.RequiredAcks(kgo.AllISRAcks()))
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	dir := bs[1].cfg.LogDirs[0]
	if err := bs[1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, "broker 3 to lead pref", func() bool {
		p, _ := bs[0].metaImage().Partition("pref", 0)
		return p.Leader == 3
	})
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("while away")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	startLinkedBroker(t, 2, bs[0].addr, "broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200",
		"replica.fetch.backoff.ms=100", "controlled.shutdown.enable=false", "log.dirs="+dir)
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		p, _ := bs[0].metaImage().Partition("pref", 0)
		if p.Leader != 2 || len(p.ISR) != 3 {
			return fmt.Errorf("pref: leader %d, ISR %v; want broker 2 leading again with all three in sync", p.Leader, p.ISR)
		}
		return nil
	})
	got := consumeAll(t, bs[0], "pref", 2)
	if got[0] != "before" || got[1] != "while away" {
		t.Fatalf("records after the leader came back: %q", got)
	}
}

// KIP-951: a follower answering NOT_LEADER_OR_FOLLOWER to Produce, and a
// broker without a replica to Fetch, name the current leader, its epoch
// and its endpoint.
func TestNotLeaderNamesTheLeader(t *testing.T) {
	bs := threeBrokers(t)
	createAssigned(t, bs[0], "hint", 2, 3)
	var leader controllerPartition
	testkit.Eventually(t, 10*time.Second, "broker 3 to follow hint", func() bool {
		var ok bool
		leader, ok = bs[2].metaImage().Partition("hint", 0)
		return ok && leader.Leader == 2 && bs[2].topics.get("hint") != nil
	})
	leaderAddr := bs[1].Addr().(*net.TCPAddr)

	preq := kmsg.NewPtrProduceRequest()
	preq.Acks, preq.TimeoutMillis = -1, 5000
	rt := kmsg.NewProduceRequestTopic()
	rt.Topic = "hint"
	rp := kmsg.NewProduceRequestTopicPartition()
	rp.Records = testkit.Batch{PartitionLeaderEpoch: -1, Records: []testkit.Record{{Value: []byte("x")}}}.Encode()
	rt.Partitions = append(rt.Partitions, rp)
	preq.Topics = append(preq.Topics, rt)
	presp := do[*kmsg.ProduceResponse](bs[2].raw(t), preq, 11)
	pp := presp.Topics[0].Partitions[0]
	if pp.ErrorCode != kerr.NotLeaderForPartition.Code || pp.CurrentLeader.LeaderID != 2 || pp.CurrentLeader.LeaderEpoch != leader.LeaderEpoch {
		t.Fatalf("produce to a follower: error %d, current leader %+v; want NOT_LEADER_OR_FOLLOWER naming 2 at epoch %d", pp.ErrorCode, pp.CurrentLeader, leader.LeaderEpoch)
	}
	if len(presp.Brokers) != 1 || presp.Brokers[0].NodeID != 2 || presp.Brokers[0].Port != int32(leaderAddr.Port) {
		t.Fatalf("produce NodeEndpoints %+v, want broker 2 on port %d", presp.Brokers, leaderAddr.Port)
	}

	freq := kmsg.NewPtrFetchRequest()
	freq.ReplicaID, freq.MaxBytes, freq.SessionEpoch = -1, 1<<20, -1
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "hint", bs[2].topics.get("hint").id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 1<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	freq.Topics = append(freq.Topics, ft)
	// Fetch from node 1, which holds no replica (a follower would serve a
	// v11+ consumer itself, KIP-392).
	fresp := do[*kmsg.FetchResponse](bs[0].raw(t), freq, 16)
	fpr := fresp.Topics[0].Partitions[0]
	if fpr.ErrorCode != kerr.NotLeaderForPartition.Code || fpr.CurrentLeader.LeaderID != 2 || fpr.CurrentLeader.LeaderEpoch != leader.LeaderEpoch {
		t.Fatalf("fetch from a broker without a replica: error %d, current leader %+v", fpr.ErrorCode, fpr.CurrentLeader)
	}
	if len(fresp.Brokers) != 1 || fresp.Brokers[0].NodeID != 2 || fresp.Brokers[0].Port != int32(leaderAddr.Port) {
		t.Fatalf("fetch NodeEndpoints %+v, want broker 2 on port %d", fresp.Brokers, leaderAddr.Port)
	}
}

// KIP-392: with the rack-aware selector, the leader sends a consumer in
// another rack to the in-sync follower in its rack, which serves it up to
// its high watermark; a franz-go consumer with that rack reads everything.
func TestFetchFromFollowerInTheConsumersRack(t *testing.T) {
	selector := "replica.selector.class=org.apache.kafka.common.replica.RackAwareReplicaSelector"
	ctl := startTestBroker(t, "node.id=1", "broker.rack=r1", selector, "broker.session.timeout.ms=2000", "broker.heartbeat.interval.ms=200")
	links := []string{"broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200", selector}
	startLinkedBroker(t, 2, ctl.addr, append(links, "broker.rack=r2")...)
	b3 := startLinkedBroker(t, 3, ctl.addr, append(links, "broker.rack=r3")...)
	waitUnfenced(t, ctl, 2, 3)
	createAssigned(t, ctl, "racked", 1, 2, 3)
	cl := ctl.client(t, kgo.DefaultProduceTopic("racked"), kgo.RequiredAcks(kgo.AllISRAcks()))
	const n = 50
	for i := range n {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "broker 3's replica to reach the HW", func() bool {
		_, hw, ok := replicaState(b3, "racked")
		return ok && hw == n
	})
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.SessionEpoch, req.Rack = -1, 1<<20, -1, "r3"
	ft := kmsg.NewFetchRequestTopic()
	ft.Topic, ft.TopicID = "racked", ctl.topics.get("racked").id
	fp := kmsg.NewFetchRequestTopicPartition()
	fp.PartitionMaxBytes, fp.CurrentLeaderEpoch, fp.LogStartOffset = 1<<20, -1, -1
	ft.Partitions = append(ft.Partitions, fp)
	req.Topics = append(req.Topics, ft)
	lp := do[*kmsg.FetchResponse](ctl.raw(t), req, 12).Topics[0].Partitions[0]
	if lp.ErrorCode != 0 || lp.PreferredReadReplica != 3 || len(lp.RecordBatches) != 0 {
		t.Fatalf("leader's answer to a consumer in rack r3: error %d, preferred replica %d, %d bytes; want broker 3 and no records",
			lp.ErrorCode, lp.PreferredReadReplica, len(lp.RecordBatches))
	}
	fpr := do[*kmsg.FetchResponse](b3.raw(t), req, 12).Topics[0].Partitions[0]
	if fpr.ErrorCode != 0 || fpr.HighWatermark != n || len(fpr.RecordBatches) == 0 {
		t.Fatalf("follower's answer to the consumer: error %d, HW %d, %d bytes", fpr.ErrorCode, fpr.HighWatermark, len(fpr.RecordBatches))
	}
	consumer := ctl.client(t, kgo.Rack("r3"), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{"racked": {0: kgo.NewOffset().AtStart()}}))
	got := 0
	deadline := time.Now().Add(20 * time.Second)
	for got < n && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(context.Background(), time.Second)
		consumer.PollFetches(fctx).EachRecord(func(*kgo.Record) { got++ })
		cancel()
	}
	if got != n {
		t.Fatalf("a consumer in rack r3 read %d of %d records", got, n)
	}
}

// A node that is broker and controller moves its leaderships away in a
// controlled shutdown before it stops, so the other brokers keep taking
// acks=all writes while it (and with it the controller) is down.
func TestControllerNodeControlledShutdown(t *testing.T) {
	cport := testkit.FreePorts(t, 1)[0]
	ctl := startTestBroker(t, "node.id=1", "process.roles=broker,controller", fmt.Sprintf("controller.quorum.voters=1@127.0.0.1:%d", cport),
		"controller.listener.names=CONTROLLER", fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:%d", cport),
		"broker.session.timeout.ms=2000", "broker.heartbeat.interval.ms=200", "min.insync.replicas=2")
	caddr := fmt.Sprintf("127.0.0.1:%d", cport)
	links := []string{"broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200", "replica.fetch.backoff.ms=100"}
	b2 := startLinkedBroker(t, 2, caddr, links...)
	startLinkedBroker(t, 3, caddr, links...)
	waitUnfenced(t, ctl, 2, 3)
	createAssigned(t, ctl, "moving", 1, 2, 3)
	cl := b2.client(t, kgo.DefaultProduceTopic("moving"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	ctx := context.Background()
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("before")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	if err := ctl.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	p, _ := b2.metaImage().Partition("moving", 0)
	if p.Leader == 1 || slices.Contains(p.ISR, 1) {
		t.Fatalf("after node 1's controlled shutdown broker 2 sees leader %d, ISR %v; want node 1 out of both", p.Leader, p.ISR)
	}
	pctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := cl.ProduceSync(pctx, &kgo.Record{Value: []byte("after")}).FirstErr(); err != nil {
		t.Fatalf("acks=all produce with the controller node stopped: %v", err)
	}
}

// The replication throttles hold a throttled replica's catch-up to their
// rate: 384 KiB behind at 128 KiB/s takes two seconds, not the tens of
// milliseconds it takes unthrottled; leader.replication.throttled.rate on
// the leader's side, follower.replication.throttled.rate on the
// follower's.
func TestReplicationThrottles(t *testing.T) {
	for _, side := range []string{"leader", "follower"} {
		t.Run(side, func(t *testing.T) { testReplicationThrottle(t, side) })
	}
}

func testReplicationThrottle(t *testing.T, side string) {
	bs := threeBrokers(t, side+".replication.throttled.rate=131072", "replica.fetch.max.bytes=65536") // one record per fetch
	createAssigned(t, bs[0], "thr", 2, 3)
	adm := bs[0].admin(t)
	ctx := context.Background()
	rs, err := adm.AlterTopicConfigs(ctx, []kadm.AlterConfig{{Name: side + ".replication.throttled.replicas", Value: kmsg.StringPtr("*")}}, "thr")
	if err != nil || rs[0].Err != nil {
		t.Fatalf("set the throttled replicas: %v %v", err, rs)
	}
	testkit.Eventually(t, 10*time.Second, "the throttle setting on brokers 2 and 3", func() bool {
		for _, tb := range bs[1:] {
			tp := tb.topics.get("thr")
			if tp == nil || tp.cfg.LeaderReplicationThrottledReplicas+tp.cfg.FollowerReplicationThrottledReplicas != "*" {
				return false
			}
		}
		return true
	})
	cl := bs[1].client(t, kgo.DefaultProduceTopic("thr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := make([]byte, 64<<10)
	for i := range value {
		value[i] = byte(i*7919 + i/251) // not compressible to nothing
	}
	start := time.Now()
	for range 6 { // 384 KiB
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	leaderLEO, _, _ := replicaState(bs[1], "thr")
	testkit.Eventually(t, 60*time.Second, "the throttled follower to catch up", func() bool {
		leo, _, ok := replicaState(bs[2], "thr")
		return ok && leo == leaderLEO
	})
	if took := time.Since(start); took < 1200*time.Millisecond {
		t.Fatalf("a follower 384 KiB behind caught up in %v at 128 KiB/s (a 128 KiB burst); the throttle did not hold it (want 1.2 s or more)", took)
	}
}

// __consumer_offsets is not created with fewer replicas than the brokers
// the cluster has while one of them is fenced (a cluster still starting, or
// a broker restarting): FindCoordinator answers COORDINATOR_NOT_AVAILABLE,
// which clients retry, and once the broker is back the topic gets its full
// replication factor. Creating it with the live brokers only would leave
// it under-replicated for good (Kafka refuses too, KIP-115).
func TestOffsetsTopicWaitsForFencedBrokers(t *testing.T) {
	bs := threeBrokers(t, "controlled.shutdown.enable=false", "offsets.topic.replication.factor=3", "offsets.topic.num.partitions=3")
	stopLinked(t, bs[0], bs[2])
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.CoordinatorKeys = []string{"g"}
	resp := do[*kmsg.FindCoordinatorResponse](bs[0].raw(t), req, 4)
	if len(resp.Coordinators) != 1 || resp.Coordinators[0].ErrorCode != kerr.CoordinatorNotAvailable.Code {
		t.Fatalf("FindCoordinator with broker 3 fenced: %+v, want COORDINATOR_NOT_AVAILABLE", resp.Coordinators)
	}
	if bs[0].topics.get("__consumer_offsets") != nil {
		t.Fatal("__consumer_offsets was created with a broker fenced")
	}
	startAgain(t, bs[0], bs[2])
	waitUnfenced(t, bs[0], 3)
	adm := bs[1].admin(t)
	testkit.EventuallyNil(t, 20*time.Second, func() error { return adm.FindGroupCoordinators(context.Background(), "g")["g"].Err })
	if rf := len(mustPartition(t, bs[0], "__consumer_offsets").Replicas); rf != 3 {
		t.Fatalf("__consumer_offsets has %d replicas, want 3", rf)
	}
}
