package itest

import (
	"context"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

// TestClusterProduceV13AcksAllWaitFails: an acks=all produce whose wait for
// the ISR cannot end well (both followers frozen) answers the partition
// with REQUEST_TIMED_OUT when its timeout passes, as Kafka does, at every
// Produce version; v13 names topics by ID, not by name. The connection
// stays open and the broker keeps running.
func TestClusterProduceV13AcksAllWaitFails(t *testing.T) {
	engines.Run(t, testClusterProduceAcksAllWaitFails)
}

func testClusterProduceAcksAllWaitFails(t *testing.T, engine string) {
	c := startCluster(t, engine)
	const topic = "wait-fails"
	c.createTopic(1, topic, 1, minISR2)
	adm := c.admin()
	leader, _, err := c.leaderOf(adm, topic, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	m, err := adm.Metadata(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	id := m.Topics[topic].ID
	for _, n := range c.nodes {
		if n.id != leader {
			n.signal(syscall.SIGSTOP)
			defer n.signal(syscall.SIGCONT)
		}
	}
	for _, version := range []int16{12, 13} {
		// kgo sends the newest version both sides know, whatever the
		// request says: cap it.
		versions := kversion.Stable()
		versions.SetMaxKeyVersion(kmsg.Produce.Int16(), version)
		cl := c.client(kgo.SeedBrokers(c.node(leader).addr()), kgo.MaxVersions(versions))
		req := kmsg.NewPtrProduceRequest()
		req.SetVersion(version)
		req.Acks, req.TimeoutMillis = -1, 1000
		rt := kmsg.NewProduceRequestTopic()
		rt.Topic, rt.TopicID = topic, id
		rp := kmsg.NewProduceRequestTopicPartition()
		rp.Records = oneRecord([]byte("v"))
		rt.Partitions = append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
		resp, err := cl.Broker(int(leader)).Request(ctx, req)
		if err != nil {
			t.Fatalf("Produce v%d acks=all to the leader with its followers frozen: %v", version, err)
		}
		pr := resp.(*kmsg.ProduceResponse)
		code := pr.Topics[0].Partitions[0].ErrorCode
		if code != kerr.RequestTimedOut.Code && code != kerr.NotEnoughReplicasAfterAppend.Code {
			t.Errorf("Produce v%d acks=all with the followers frozen: error %v, want REQUEST_TIMED_OUT", version, kerr.ErrorForCode(code))
		}
	}
	if !c.node(leader).running() {
		t.Fatalf("the leader, node %d, exited", leader)
	}
}
