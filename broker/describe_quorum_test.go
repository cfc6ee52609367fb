package broker

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
)

func describeQuorum(t *testing.T, tb *testBroker, version int16, topic string) *kmsg.DescribeQuorumResponse {
	t.Helper()
	req := kmsg.NewPtrDescribeQuorumRequest()
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = topic
	rp := kmsg.NewDescribeQuorumRequestTopicPartition()
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return do[*kmsg.DescribeQuorumResponse](tb.raw(t), req, version)
}

// A single node is its own quorum: it leads the metadata log and is its
// only voter, with no observers; other topics are not quorums.
func TestDescribeQuorumSingleNode(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "q", 1, nil) // a metadata record, so the log is not empty
	resp := describeQuorum(t, tb, 1, controller.MetadataTopic)
	p := resp.Topics[0].Partitions[0]
	if p.ErrorCode != 0 || p.LeaderID != tb.cfg.NodeID || p.HighWatermark <= 0 {
		t.Fatalf("partition %+v: want led by node %d with a high watermark past 0", p, tb.cfg.NodeID)
	}
	if len(p.CurrentVoters) != 1 || p.CurrentVoters[0].ReplicaID != tb.cfg.NodeID || p.CurrentVoters[0].LogEndOffset != p.HighWatermark || len(p.Observers) != 0 {
		t.Fatalf("voters %+v observers %+v: want this node alone, at the high watermark", p.CurrentVoters, p.Observers)
	}
	other := describeQuorum(t, tb, 1, "q").Topics[0].Partitions[0]
	if other.ErrorCode != kerr.UnknownTopicOrPartition.Code {
		t.Fatalf("DescribeQuorum of an ordinary topic: error %d, want UNKNOWN_TOPIC_OR_PARTITION", other.ErrorCode)
	}
}

// In a cluster a broker forwards DescribeQuorum to the controller, whose
// answer lists the brokers as observers placed where their heartbeats put
// them, and (v2) the voters' controller endpoints.
func TestDescribeQuorumCluster(t *testing.T) {
	bs := threeBrokers(t)
	createAssigned(t, bs[0], "q3", 2, 3, 1)
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		resp := describeQuorum(t, bs[1], 2, controller.MetadataTopic)
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || p.LeaderID != 1 || len(p.CurrentVoters) != 1 || p.CurrentVoters[0].ReplicaID != 1 {
			return fmt.Errorf("partition %+v: want led by voter 1 alone", p)
		}
		if len(p.Observers) != 2 || p.Observers[0].ReplicaID != 2 || p.Observers[1].ReplicaID != 3 {
			return fmt.Errorf("observers %+v, want brokers 2 and 3", p.Observers)
		}
		for _, o := range p.Observers {
			if o.LogEndOffset != p.HighWatermark || o.LastCaughtUpTimestamp < 0 || o.LastFetchTimestamp <= 0 {
				return fmt.Errorf("observer %+v not caught up with high watermark %d", o, p.HighWatermark)
			}
		}
		if len(resp.Nodes) != 1 || resp.Nodes[0].NodeID != 1 || len(resp.Nodes[0].Listeners) != 1 || resp.Nodes[0].Listeners[0].Port == 0 {
			return fmt.Errorf("nodes %+v, want voter 1's controller endpoint", resp.Nodes)
		}
		return nil
	})
}
