package itest

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// clusterDescribeJSON is the part of `sluice cluster describe --json` the
// cluster tests read.
type clusterDescribeJSON struct {
	Controller *int32 `json:"controller"`
	Brokers    []struct {
		NodeID int32 `json:"node_id"`
	} `json:"brokers"`
	UnderReplicated []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		ISR       []int32 `json:"isr"`
	} `json:"under_replicated_partitions"`
	Offline []struct {
		Topic string `json:"topic"`
	} `json:"offline_partitions"`
	Quorum *struct {
		LeaderID      int32 `json:"leader_id"`
		HighWatermark int64 `json:"high_watermark"`
		Replicas      []struct {
			NodeID       int32  `json:"node_id"`
			Role         string `json:"role"`
			LogEndOffset int64  `json:"log_end_offset"`
			Lag          int64  `json:"lag"`
		} `json:"replicas"`
	} `json:"quorum"`
}

func describeCluster(t *testing.T, addr string) (clusterDescribeJSON, error) {
	t.Helper()
	out, _ := runCLI(t, addr, 0, "cluster", "describe", "--json")
	var d clusterDescribeJSON
	return d, json.Unmarshal([]byte(out), &d)
}

// `sluice cluster describe` on a real three-node cluster, asked through a
// broker-only node: the active controller, the brokers, the metadata
// quorum (DescribeQuorum, forwarded to the controller) with the brokers as
// caught-up observers, and, once a broker is stopped, its partitions as
// under-replicated and it gone from the brokers.
func TestClusterCLIDescribe(t *testing.T) {
	c := startCluster(t, "std")
	const topic = "cli-describe"
	c.createTopic(1, topic, 2, nil)
	c.waitHealthy(topic, nil, 30*time.Second)
	via := c.node(2).addr()

	testkit.EventuallyNil(t, 15*time.Second, func() error {
		d, err := describeCluster(t, via)
		switch {
		case err != nil:
			return err
		case d.Controller == nil || *d.Controller != 1 || len(d.Brokers) != 3:
			return fmt.Errorf("controller %v brokers %v, want 1 and three brokers", d.Controller, d.Brokers)
		case len(d.UnderReplicated) != 0 || len(d.Offline) != 0:
			return fmt.Errorf("healthy cluster lists under-replicated %v offline %v", d.UnderReplicated, d.Offline)
		case d.Quorum == nil || d.Quorum.LeaderID != 1 || len(d.Quorum.Replicas) != 3:
			return fmt.Errorf("quorum %+v, want led by 1 with three members", d.Quorum)
		}
		for i, want := range []struct {
			id   int32
			role string
		}{{1, "leader"}, {2, "observer"}, {3, "observer"}} {
			r := d.Quorum.Replicas[i]
			if r.NodeID != want.id || r.Role != want.role || r.Lag != 0 || r.LogEndOffset != d.Quorum.HighWatermark {
				return fmt.Errorf("quorum member %d is %+v, want node %d as %s, caught up at %d", i, r, want.id, want.role, d.Quorum.HighWatermark)
			}
		}
		return nil
	})
	table, _ := runCLI(t, via, 0, "cluster", "describe")
	if !strings.Contains(table, "Metadata quorum: leader 1") || !strings.Contains(table, "observer") {
		t.Fatalf("cluster describe table lacks the quorum:\n%s", table)
	}

	c.node(3).stop(30 * time.Second)
	testkit.EventuallyNil(t, 30*time.Second, func() error {
		d, err := describeCluster(t, via)
		if err != nil {
			return err
		}
		if len(d.Brokers) != 2 || len(d.UnderReplicated) != 2 {
			return fmt.Errorf("brokers %v under-replicated %+v, want two brokers and both partitions of %s", d.Brokers, d.UnderReplicated, topic)
		}
		for _, p := range d.UnderReplicated {
			if p.Topic != topic || len(p.ISR) != 2 {
				return fmt.Errorf("under-replicated %+v, want %s with an ISR of two", p, topic)
			}
		}
		return nil
	})
}
