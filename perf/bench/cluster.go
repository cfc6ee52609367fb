package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The cluster peer (issue 16): three Sluice brokers on this machine, the
// way a newcomer starts one. Node 1 is broker and the one controller, on a
// CONTROLLER listener that controller.quorum.voters names; nodes 2 and 3
// are brokers only. Every node keeps its ports and log directory across
// restarts, so the failover workloads can kill one and start it again.

// Cluster workload names.
const (
	clusterProduce = "cluster-produce-1KiB-p3-acksall"
	clusterKill9   = "cluster-failover-kill9"
	clusterSigterm = "cluster-failover-sigterm"
)

// clusterSessionMS is the cluster's broker.session.timeout.ms. Kafka's
// default is 9000; a third of it keeps ≥ 20 kills within minutes, and the
// target is relative to whatever this is.
const clusterSessionMS = 3000

// clusterSets are the settings every node gets beside its identity and
// listeners: Kafka's recommended three-replica durability, and the short
// session above with a heartbeat a sixth of it (Kafka's ratio is 2000 to
// 9000).
var clusterSets = []string{
	"default.replication.factor=3",
	"min.insync.replicas=2",
	"offsets.topic.replication.factor=3",
	fmt.Sprintf("broker.session.timeout.ms=%d", clusterSessionMS),
	fmt.Sprintf("broker.heartbeat.interval.ms=%d", clusterSessionMS/6),
}

// clusterWorkloads are the workloads of the cluster peer: RF=3 beside RF=1
// produce on the same brokers, then the two failover measurements. The
// failovers run once with all their kills in the one run (Rounds: 1).
func clusterWorkloads() []workload {
	return []workload{
		{Name: clusterProduce, Mode: modeProduce, RecordSize: 1024, Partitions: 3, Acks: "all", Compression: "none",
			Lanes: []lane{
				{Label: kindCluster + " rf=3", Peer: kindCluster, Kind: kindCluster, RF: 3},
				{Label: kindCluster + " rf=1", Peer: kindCluster, Kind: kindCluster, RF: 1},
			}},
		{Name: clusterKill9, Mode: modeFailover, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none", Rounds: 1,
			Lanes: []lane{{Label: kindCluster + " kill -9", Peer: kindCluster, Kind: kindCluster}}},
		{Name: clusterSigterm, Mode: modeFailover, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none", Rounds: 1,
			Lanes: []lane{{Label: kindCluster + " SIGTERM", Peer: kindCluster, Kind: kindCluster}}},
	}
}

// clusterPeer is the three processes of the cluster peer. nodes[0] is the
// peer itself (node 1), so peerSet's log and argv records name it.
type clusterPeer struct {
	ps    *peerSet
	nodes []*peer // nodes[i] is node.id i+1
	argvs [][]string
}

// startCluster starts nodes 1 to 3 for p (node 1) and waits until a topic
// with three replicas can be created, which needs all three registered and
// unfenced.
func (ps *peerSet) startCluster(ctx context.Context, p *peer, dir string) error {
	ctlPort, err := benchkit.FreePort()
	if err != nil {
		return err
	}
	voters := fmt.Sprintf("1@127.0.0.1:%d", ctlPort)
	c := &clusterPeer{ps: ps}
	p.cluster = c
	for i := 1; i <= 3; i++ {
		n := p
		if i > 1 {
			port, err := benchkit.FreePort()
			if err != nil {
				return err
			}
			n = &peer{spec: peerSpec{Name: fmt.Sprintf("%s-node%d", kindCluster, i), Kind: kindCluster}, gen: p.gen,
				addr: fmt.Sprintf("127.0.0.1:%d", port), logPath: filepath.Join(dir, fmt.Sprintf("node%d.log", i))}
		} else {
			n.logPath = filepath.Join(dir, "node1.log")
		}
		listeners, roles := "PLAINTEXT://"+n.addr, "broker"
		if i == 1 {
			listeners += fmt.Sprintf(",CONTROLLER://127.0.0.1:%d", ctlPort)
			roles = "broker,controller"
		}
		argv := []string{ps.tools.Sluice, "broker", "--engine", "uring",
			"--set", fmt.Sprintf("node.id=%d", i), "--set", "process.roles=" + roles,
			"--set", "controller.quorum.voters=" + voters, "--set", "controller.listener.names=CONTROLLER",
			"--set", "listeners=" + listeners, "--set", "inter.broker.listener.name=PLAINTEXT",
			"--set", "log.dirs=" + filepath.Join(dir, fmt.Sprintf("node%d", i)), "--set", "log.level=warn",
			// No /metrics here: each node would need a port of its own.
			"--set", "admin.listener="}
		for _, s := range clusterSets {
			argv = append(argv, "--set", s)
		}
		c.nodes, c.argvs = append(c.nodes, n), append(c.argvs, argv)
		if err := ps.launch(ctx, n, argv); err != nil {
			c.stop(5 * time.Second)
			return fmt.Errorf("node %d: %w", i, err)
		}
		if i > 1 {
			p.notes = append(p.notes, "node "+shellJoin(argv))
		}
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		c.stop(5 * time.Second)
		return err
	}
	return nil
}

// seeds are every node's address.
func (c *clusterPeer) seeds() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr)
	}
	return out
}

func (c *clusterPeer) pids() []int {
	var out []int
	for _, n := range c.nodes {
		if n.cmd != nil && n.cmd.Process != nil {
			out = append(out, n.cmd.Process.Pid)
		}
	}
	return out
}

// alive reports whether all three nodes run.
func (c *clusterPeer) alive() bool {
	for _, n := range c.nodes {
		if n.exited == nil || !n.running() {
			return false
		}
	}
	return len(c.nodes) == 3
}

// stop stops brokers 2 and 3 before node 1: their controlled shutdown
// asks node 1's controller to move their leaderships away, and waits for
// it.
func (c *clusterPeer) stop(grace time.Duration) {
	var wg sync.WaitGroup
	for _, n := range c.nodes[1:] {
		wg.Add(1)
		go func() { defer wg.Done(); stopOne(n, grace) }()
	}
	wg.Wait()
	stopOne(c.nodes[0], grace)
}

// restart starts node id again with its argv and data. A broker whose
// registration is refused with DUPLICATE_BROKER_REGISTRATION (its previous
// process's session still live) retries it itself until the session ends;
// a broker built before it did exited instead, so restart still tries
// again every second and returns how many starts were refused that way
// (0 for current builds).
func (c *clusterPeer) restart(ctx context.Context, id int) (refused int, err error) {
	n := c.nodes[id-1]
	for try := 1; ; try++ {
		err = c.ps.launch(ctx, n, c.argvs[id-1])
		if err == nil {
			// The listener answers before registration; a refused
			// registration ends the process within moments.
			select {
			case <-n.exited:
				err = fmt.Errorf("node %d exited after start: %v; log: %s", id, n.waitErr, logTail(n.logPath, 2))
			case <-time.After(time.Second):
				return refused, nil
			}
		}
		if !strings.Contains(logTail(n.logPath, 5), "DUPLICATE_BROKER_REGISTRATION") || try == 2*clusterSessionMS/1000+5 {
			return refused, err
		}
		refused++
		select {
		case <-ctx.Done():
			return refused, ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// waitReady waits until a topic of three replicas can be created and has a
// full ISR, then deletes it.
func (c *clusterPeer) waitReady(ctx context.Context, within time.Duration) error {
	probe := fmt.Sprintf("bench-cluster-probe-%d", time.Now().UnixNano())
	deadline := time.Now().Add(within)
	var err error
	for time.Now().Before(deadline) {
		if err = createTopicRF(ctx, c.seeds(), probe, 1, 3, nil); err == nil {
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err != nil {
		return fmt.Errorf("cluster not ready within %s: %w", within, err)
	}
	if _, err := waitISR(ctx, c.seeds(), probe, 3, time.Until(deadline)); err != nil {
		return err
	}
	return deleteTopicAt(ctx, c.seeds(), probe)
}

// createReplicated creates a run's topic on the cluster peer with rf
// replicas before the load client starts.
func createReplicated(ctx context.Context, p *peer, topic string, partitions, rf int) error {
	if p.cluster == nil {
		return fmt.Errorf("replication factor %d asked of peer %s, which is not a cluster", rf, p.spec.Name)
	}
	if err := createTopicRF(ctx, p.cluster.seeds(), topic, partitions, rf, nil); err != nil {
		return err
	}
	_, err := waitISR(ctx, p.cluster.seeds(), topic, rf, 30*time.Second)
	return err
}

// withAdmin runs f with an admin client over seeds that has short
// timeouts (a dead node must cost a request a second or so, not kgo's
// default minute), under ctx bounded by within when within > 0.
func withAdmin(ctx context.Context, seeds []string, within time.Duration, f func(context.Context, *kgo.Client, *kadm.Client) error) error {
	cl, err := kgo.NewClient(kgo.SeedBrokers(seeds...), kgo.DialTimeout(time.Second),
		kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(3*time.Second), kgo.MetadataMinAge(50*time.Millisecond))
	if err != nil {
		return err
	}
	defer cl.Close()
	if within > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, within)
		defer cancel()
	}
	return f(ctx, cl, kadm.NewClient(cl))
}

// createTopicRF creates topic with partitions of rf replicas, or, when
// replicas is set, one partition on exactly those brokers, the first its
// preferred leader.
func createTopicRF(ctx context.Context, seeds []string, topic string, partitions, rf int, replicas []int32) error {
	return withAdmin(ctx, seeds, 10*time.Second, func(ctx context.Context, cl *kgo.Client, adm *kadm.Client) error {
		if replicas == nil {
			resp, err := adm.CreateTopic(ctx, int32(partitions), int16(rf), nil, topic)
			if err == nil {
				err = resp.Err
			}
			if err != nil {
				return fmt.Errorf("create topic %s (%d partitions, rf %d): %w", topic, partitions, rf, err)
			}
			return nil
		}
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 10000
		t := kmsg.NewCreateTopicsRequestTopic()
		t.Topic, t.NumPartitions, t.ReplicationFactor = topic, -1, -1
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = 0, replicas
		t.ReplicaAssignment = append(t.ReplicaAssignment, a)
		req.Topics = append(req.Topics, t)
		resp, err := req.RequestWith(ctx, cl)
		if err == nil && len(resp.Topics) != 1 {
			err = fmt.Errorf("%d topics in the response", len(resp.Topics))
		}
		if err == nil {
			err = kerr.ErrorForCode(resp.Topics[0].ErrorCode)
		}
		if err != nil {
			return fmt.Errorf("create topic %s on brokers %v: %w", topic, replicas, err)
		}
		return nil
	})
}

// waitISR waits until every partition of topic has a leader and isr
// replicas in sync, and returns the partitions as the metadata last showed
// them.
func waitISR(ctx context.Context, seeds []string, topic string, isr int, within time.Duration) (parts kadm.PartitionDetails, err error) {
	err = withAdmin(ctx, seeds, 0, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
		deadline := time.Now().Add(within)
		for {
			var err error
			parts, err = topicPartitions(ctx, adm, topic)
			if err == nil {
				err = checkISR(parts, isr)
			}
			if err == nil {
				return nil
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("topic %s not in sync within %s: %w", topic, within, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(50 * time.Millisecond):
			}
		}
	})
	return parts, err
}

func checkISR(parts kadm.PartitionDetails, isr int) error {
	if len(parts) == 0 {
		return errors.New("no partitions")
	}
	for _, pd := range parts {
		switch {
		case pd.Err != nil:
			return fmt.Errorf("partition %d: %w", pd.Partition, pd.Err)
		case pd.Leader < 0:
			return fmt.Errorf("partition %d has no leader", pd.Partition)
		case len(pd.ISR) < isr:
			return fmt.Errorf("partition %d: ISR %v, want %d replicas", pd.Partition, pd.ISR, isr)
		}
	}
	return nil
}

func topicPartitions(ctx context.Context, adm *kadm.Client, topic string) (kadm.PartitionDetails, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	m, err := adm.Metadata(ctx, topic)
	if err != nil {
		return nil, err
	}
	td, ok := m.Topics[topic]
	if !ok {
		return nil, fmt.Errorf("metadata has no topic %s", topic)
	}
	if td.Err != nil {
		return nil, fmt.Errorf("topic %s: %w", topic, td.Err)
	}
	return td.Partitions, nil
}

func deleteTopicAt(ctx context.Context, seeds []string, topic string) error {
	return withAdmin(ctx, seeds, 10*time.Second, func(ctx context.Context, _ *kgo.Client, adm *kadm.Client) error {
		resp, err := adm.DeleteTopics(ctx, topic)
		if err != nil {
			return err
		}
		return resp.Error()
	})
}
