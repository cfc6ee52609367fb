package broker

import (
	"context"
	"fmt"
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

// startAgain starts a new process of linked broker tb, stopped, on its
// log directory.
func startAgain(t *testing.T, ctl, tb *testBroker) *testBroker {
	t.Helper()
	return startLinkedBroker(t, tb.cfg.NodeID, ctl.addr, append(slices.Clone(linkSets), "log.dirs="+tb.cfg.LogDirs[0])...)
}

// stopLinked shuts tb down (a controlled shutdown) and waits until the
// controller has fenced it and its session is over.
func stopLinked(t *testing.T, ctl, tb *testBroker) {
	t.Helper()
	id := tb.cfg.NodeID
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 15*time.Second, fmt.Sprintf("broker %d to be fenced", id), func() bool {
		br, ok := ctl.metaImage().Broker(id)
		return ok && br.Fenced
	})
}

// linkSets are the settings of brokers 2 and 3 in these tests: the
// controller's own rebalancing must not do the elections under test.
var linkSets = []string{"broker.heartbeat.interval.ms=200", "replica.fetch.wait.max.ms=200", "replica.fetch.backoff.ms=100", "auto.leader.rebalance.enable=false"}

// electOne sends an ElectLeaders for partition 0 of topic to tb, raw at
// version, and returns the partition's error code (a request-level error
// is also on the partition).
func electOne(t *testing.T, tb *testBroker, typ controller.ElectionType, topic string, version int16) int16 {
	t.Helper()
	req := kmsg.NewPtrElectLeadersRequest()
	req.ElectionType, req.TimeoutMillis = int8(typ), 10000
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = topic, []int32{0}
	req.Topics = append(req.Topics, rt)
	resp := do[*kmsg.ElectLeadersResponse](tb.raw(t), req, version)
	if len(resp.Topics) != 1 || resp.Topics[0].Topic != topic || len(resp.Topics[0].Partitions) != 1 || resp.Topics[0].Partitions[0].Partition != 0 {
		t.Fatalf("ElectLeaders v%d for %s-0: %+v", version, topic, resp)
	}
	code := resp.Topics[0].Partitions[0].ErrorCode
	if resp.ErrorCode != 0 && resp.ErrorCode != code {
		t.Fatalf("ElectLeaders v%d for %s-0: top-level error %d, partition's %d", version, topic, resp.ErrorCode, code)
	}
	return code
}

func wantCode(t *testing.T, what string, got, want int16) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: error %v, want %v", what, kerr.ErrorForCode(got), kerr.ErrorForCode(want))
	}
}

// The preferred replica of a partition stops (its leadership moves to the
// follower) and comes back: once it is in the ISR again, a preferred
// election sent to a broker that is not the controller (it forwards) gives
// it the leadership back, in a new leader epoch, with every record; asked
// again, the election is not needed. While the preferred replica was down
// its election was not possible.
func TestElectLeadersPreferred(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b2, b3 := bs[0], bs[1], bs[2]
	createAssigned(t, ctl, "pe", 2, 3)
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead pe", func() bool { return b2.topics.get("pe").replication(0) != nil })
	cl := ctl.client(t, kgo.DefaultProduceTopic("pe"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	const n = 50
	for i := range n {
		produceSync(t, cl, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)})
	}

	stopLinked(t, ctl, b2)
	if p, _ := ctl.metaImage().Partition("pe", 0); p.Leader != 3 {
		t.Fatalf("after broker 2 stopped, pe is led by %d; want 3", p.Leader)
	}
	wantCode(t, "preferred election while the preferred replica is down", electOne(t, b3, controller.PreferredElection, "pe", 1), kerr.PreferredLeaderNotAvailable.Code)
	wantCode(t, "an election type that does not exist", electOne(t, b3, 7, "pe", 1), kerr.InvalidRequest.Code)

	b2 = startAgain(t, ctl, b2)
	waitUnfenced(t, ctl, 2)
	testkit.Eventually(t, 15*time.Second, "broker 2 back in the ISR of pe", func() bool {
		p, _ := ctl.metaImage().Partition("pe", 0)
		return slices.Contains(p.ISR, 2)
	})
	before, _ := ctl.metaImage().Partition("pe", 0)
	wantCode(t, "preferred election", electOne(t, b3, controller.PreferredElection, "pe", 2), 0)
	// Forwarded: the answer comes once broker 3's own metadata has it.
	after, _ := b3.metaImage().Partition("pe", 0)
	if after.Leader != 2 || after.LeaderEpoch <= before.LeaderEpoch {
		t.Fatalf("after the election broker 3 sees leader %d epoch %d; want 2 in an epoch after %d", after.Leader, after.LeaderEpoch, before.LeaderEpoch)
	}
	wantCode(t, "preferred election of the leader (v0)", electOne(t, b3, controller.PreferredElection, "pe", 0), kerr.ElectionNotNeeded.Code)
	wantCode(t, "unclean election of a partition with a leader", electOne(t, b3, controller.UncleanElection, "pe", 1), kerr.ElectionNotNeeded.Code)

	testkit.Eventually(t, 10*time.Second, "broker 2 to lead pe again", func() bool { return b2.topics.get("pe").replication(0) != nil })
	for i := n; i < 2*n; i++ {
		produceSync(t, cl, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)})
	}
	got := consumeAll(t, b2, "pe", 2*n)
	for i := range 2 * n {
		if got[i] != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d is %q", i, got[i])
		}
	}
}

// Both replicas of a partition stop, the follower first; the follower
// comes back, but uncleanly restarted it is no longer eligible and the
// partition stays without a leader (unclean elections are off), as
// DescribeTopicPartitions shows with its ELR fields. An unclean election
// makes it the leader; a client's kadm sees the same answers.
func TestElectLeadersUnclean(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b2, b3 := bs[0], bs[1], bs[2]
	createAssigned(t, ctl, "uc", 2, 3)
	testkit.Eventually(t, 10*time.Second, "broker 3 in the ISR of uc", func() bool {
		p, _ := ctl.metaImage().Partition("uc", 0)
		return len(p.ISR) == 2
	})
	stopLinked(t, ctl, b3)
	stopLinked(t, ctl, b2)
	dropCleanShutdownMarker(t, b3) // broker 3 comes back as after a crash
	b3 = startAgain(t, ctl, b3)
	waitUnfenced(t, b3, 3) // in broker 3's own image, which answers below

	// What the ELR fields say: 2 was the last in the ISR and is
	// eligible but fenced; 3 was eligible until it restarted uncleanly.
	d := describeTopics(t, b3, 10, nil, "uc")
	if len(d.Topics) != 1 || len(d.Topics[0].Partitions) != 1 {
		t.Fatalf("DescribeTopicPartitions uc: %+v", d.Topics)
	}
	dp := d.Topics[0].Partitions[0]
	if dp.LeaderID != -1 || len(dp.ISR) != 0 || !slices.Equal(dp.EligibleLeaderReplicas, []int32{2}) ||
		!slices.Equal(dp.LastKnownELR, []int32{3}) || !slices.Equal(dp.OfflineReplicas, []int32{2}) || !slices.Equal(dp.Replicas, []int32{2, 3}) {
		t.Fatalf("uc-0 with both replicas restarted: leader %d, replicas %v, ISR %v, ELR %v, last known ELR %v, offline %v; want -1, [2 3], [], [2], [3], [2]",
			dp.LeaderID, dp.Replicas, dp.ISR, dp.EligibleLeaderReplicas, dp.LastKnownELR, dp.OfflineReplicas)
	}

	adm := kadm.NewClient(b3.client(t))
	ctx := context.Background()
	res, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := res["uc"][0]; r.Err != kerr.PreferredLeaderNotAvailable {
		t.Fatalf("kadm preferred election of every partition: uc-0 %+v; want PREFERRED_LEADER_NOT_AVAILABLE", res)
	}
	res, err = adm.ElectLeaders(ctx, kadm.ElectLiveReplica, kadm.TopicsSet{"uc": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res["uc"][0]; r.Err != nil || r.How != kadm.ElectLiveReplica {
		t.Fatalf("kadm unclean election of uc-0: %+v", r)
	}
	p, _ := ctl.metaImage().Partition("uc", 0)
	if p.Leader != 3 || !slices.Equal(p.ISR, []int32{3}) || len(p.ELR) != 0 {
		t.Fatalf("after the unclean election: leader %d, ISR %v, ELR %v; want 3, [3], []", p.Leader, p.ISR, p.ELR)
	}
	testkit.Eventually(t, 10*time.Second, "broker 3 to lead uc", func() bool { return b3.topics.get("uc").replication(0) != nil })
	cl := b3.client(t, kgo.DefaultProduceTopic("uc"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	produceSync(t, cl, &kgo.Record{Value: []byte("after")})
	wantCode(t, "unclean election of the new leader", electOne(t, b3, controller.UncleanElection, "uc", 2), kerr.ElectionNotNeeded.Code)
}

// ElectLeaders for every partition (null topics) answers every topic, and
// within it only the partitions whose election was needed; named
// partitions that do not exist are UNKNOWN_TOPIC_OR_PARTITION.
func TestElectLeadersAnswers(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "a", 2, nil)
	req := kmsg.NewPtrElectLeadersRequest()
	resp := do[*kmsg.ElectLeadersResponse](tb.raw(t), req, 2)
	if resp.ErrorCode != 0 || len(resp.Topics) != 1 || resp.Topics[0].Topic != "a" || len(resp.Topics[0].Partitions) != 0 {
		t.Fatalf("preferred election of every partition, each led by its preferred replica: %+v", resp)
	}
	rt := kmsg.NewElectLeadersRequestTopic()
	rt.Topic, rt.Partitions = "a", []int32{1, 5, 0}
	missing := kmsg.NewElectLeadersRequestTopic()
	missing.Topic, missing.Partitions = "missing", []int32{0}
	req.Topics = []kmsg.ElectLeadersRequestTopic{rt, missing}
	resp = do[*kmsg.ElectLeadersResponse](tb.raw(t), req, 1)
	var got []string
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			got = append(got, fmt.Sprintf("%s-%d:%d", t.Topic, p.Partition, p.ErrorCode))
		}
	}
	notNeeded, unknown := kerr.ElectionNotNeeded.Code, kerr.UnknownTopicOrPartition.Code
	want := []string{fmt.Sprintf("a-1:%d", notNeeded), fmt.Sprintf("a-5:%d", unknown), fmt.Sprintf("a-0:%d", notNeeded), fmt.Sprintf("missing-0:%d", unknown)}
	if !slices.Equal(got, want) {
		t.Fatalf("ElectLeaders answers %v; want %v", got, want)
	}
	req.ElectionType = -1
	resp = do[*kmsg.ElectLeadersResponse](tb.raw(t), req, 1)
	if resp.ErrorCode != kerr.InvalidRequest.Code || resp.Topics[1].Partitions[0].ErrorCode != kerr.InvalidRequest.Code {
		t.Fatalf("an unknown election type: %+v; want INVALID_REQUEST at the top and on every partition", resp)
	}
}
