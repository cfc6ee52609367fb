package itest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// TestClusterReassignUnderLoad: a topic with two replicas per partition on
// brokers 1 and 2 is written continuously by an idempotent acks=all
// producer (min.insync.replicas=2, so every acknowledged record is on both
// replicas). While it writes, AlterPartitionReassignments moves every
// partition to brokers 2 and 3, and then `sluice partitions reassign
// --execute` moves it to 3 and 1 (back onto broker 1, which held it
// before), with --verify polled until it reports completion. After each
// move the partition has exactly the replicas asked for, all in the ISR,
// the replica taken away is gone from its broker's log dir, and writes go
// on. At the end the producer saw no error (retries are the client's), the
// two replicas hold the same bytes, and every acknowledged record is read
// back exactly once, in order.
func TestClusterReassignUnderLoad(t *testing.T) { engines.Run(t, testClusterReassignUnderLoad) }

func testClusterReassignUnderLoad(t *testing.T, engine string) {
	const topic, nparts = "moving", 2
	c := startCluster(t, engine)
	// Partition 0 led by 1, partition 1 by 2: the first move takes the
	// leader of one and a follower of the other away.
	assign := map[int32][]int32{0: {1, 2}, 1: {2, 1}}
	c.createAssigned(topic, assign, minISR2)
	lp := startLoad(c, topic, nparts)
	lp.waitProgress(1000, 30*time.Second, "before the moves")
	adm := c.admin()

	// Move 1, through the admin API.
	move1 := map[int32][]int32{0: {2, 3}, 1: {3, 2}}
	began := time.Now()
	var req kadm.AlterPartitionAssignmentsReq
	for p, rs := range move1 {
		req.Assign(topic, p, rs)
	}
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resps, err := adm.AlterPartitionAssignments(ctx, req)
		if err != nil {
			return fmt.Errorf("AlterPartitionAssignments: %w", err)
		}
		return resps.Error()
	})
	c.waitReassigned(adm, topic, move1, 60*time.Second)
	t.Logf("move to %v done in %v", move1, time.Since(began).Round(time.Millisecond))
	lp.waitProgress(100, 30*time.Second, "after the first move")
	c.checkReplicaRemoved(topic, assign, move1)

	// Move 2, with the CLI, as an operator does it.
	move2 := map[int32][]int32{0: {3, 1}, 1: {1, 3}}
	plan := filepath.Join(t.TempDir(), "plan.json")
	writePlan(t, plan, topic, move2)
	brokers := strings.Join(c.addrs(), ",")
	began = time.Now()
	out, _ := runCLI(t, brokers, 0, "partitions", "reassign", "--execute", "--reassignment-json-file", plan)
	if !strings.Contains(out, "Successfully started partition reassignments for "+topic+"-0,"+topic+"-1") {
		t.Errorf("partitions reassign --execute printed:\n%s", out)
	}
	var verified struct {
		Complete   bool `json:"complete"`
		Partitions []struct {
			Partition int32   `json:"partition"`
			Status    string  `json:"status"`
			Replicas  []int32 `json:"replicas"`
		} `json:"partitions"`
	}
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		// --preserve-throttles: see the known bug below.
		out, _ := runCLI(t, brokers, 0, "partitions", "reassign", "--verify", "--reassignment-json-file", plan, "--json", "--preserve-throttles")
		if err := json.Unmarshal([]byte(out), &verified); err != nil {
			return fmt.Errorf("--verify --json printed %q: %w", out, err)
		}
		if !verified.Complete {
			return fmt.Errorf("--verify: not complete: %s", out)
		}
		return nil
	})
	t.Logf("move to %v reported complete by --verify after %v", move2, time.Since(began).Round(time.Millisecond))
	for _, p := range verified.Partitions {
		if p.Status != "completed" || !slices.Equal(p.Replicas, move2[p.Partition]) {
			t.Errorf("--verify: partition %d %s with replicas %v; want completed with %v", p.Partition, p.Status, p.Replicas, move2[p.Partition])
		}
	}
	// A plain --verify, once complete, clears the throttles it may have
	// set, as Kafka's tool does; with none set it must still succeed.
	cmd := exec.Command(sluiceBin, "partitions", "reassign", "--verify", "--reassignment-json-file", plan, "--brokers", brokers)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("partitions reassign --verify: %v\n%s", err, out)
	}
	c.waitReassigned(adm, topic, move2, 30*time.Second)
	lp.waitProgress(100, 30*time.Second, "after the second move")
	c.checkReplicaRemoved(topic, move1, move2)

	lp.stop()
	if nerrs, errs := lp.errors(); nerrs > 0 {
		t.Errorf("the producer saw %d failed records: %v", nerrs, errs)
	}
	lp.checkLedger(c.readPartitions(topic, nparts))
	c.checkAssignedIdentical(topic, move2)
}

// createAssigned creates topic with the replicas of assign (partition →
// replicas, first the preferred leader), which kadm's helper cannot send,
// and waits until each partition has its replicas, a leader and a full
// ISR.
func (c *cluster) createAssigned(topic string, assign map[int32][]int32, configs map[string]*string) {
	c.t.Helper()
	cl := c.client()
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = 10_000
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for p := range int32(len(assign)) {
		a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		a.Partition, a.Replicas = p, assign[p]
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
	}
	for k, v := range configs {
		cfg := kmsg.NewCreateTopicsRequestTopicConfig()
		cfg.Name, cfg.Value = k, v
		rt.Configs = append(rt.Configs, cfg)
	}
	req.Topics = append(req.Topics, rt)
	testkit.EventuallyNil(c.t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create topic %s: %w", topic, err)
		}
		return nil
	})
	c.waitPartitions(topic, 30*time.Second, func(ps kadm.PartitionDetails) error { return assignedAs(topic, ps, assign) })
}

// assignedAs is nil when every partition of ps has the replicas of assign,
// in that order, a leader among them and all of them in its ISR.
func assignedAs(topic string, ps kadm.PartitionDetails, assign map[int32][]int32) error {
	if len(ps) != len(assign) {
		return fmt.Errorf("%s has %d partitions, want %d", topic, len(ps), len(assign))
	}
	for _, p := range ps.Sorted() {
		want := assign[p.Partition]
		isr := slices.Sorted(slices.Values(p.ISR))
		if p.Err != nil || !slices.Equal(p.Replicas, want) || !slices.Contains(want, p.Leader) ||
			!slices.Equal(isr, slices.Sorted(slices.Values(want))) {
			return fmt.Errorf("%s[%d]: replicas %v, leader %d (epoch %d), ISR %v, err %v; want replicas %v, all in the ISR, one leading",
				topic, p.Partition, p.Replicas, p.Leader, p.LeaderEpoch, p.ISR, p.Err, want)
		}
	}
	return nil
}

// waitReassigned waits until ListPartitionReassignments (asked of every
// node in turn, as kadm spreads requests) lists no move of topic's
// partitions and the metadata shows the replicas of target, all in sync.
func (c *cluster) waitReassigned(adm *kadm.Client, topic string, target map[int32][]int32, within time.Duration) {
	c.t.Helper()
	set := kadm.TopicsSet{}
	for p := range target {
		set.Add(topic, p)
	}
	testkit.EventuallyNil(c.t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ongoing, err := adm.ListPartitionReassignments(ctx, set)
		if err != nil {
			return fmt.Errorf("ListPartitionReassignments: %w", err)
		}
		for _, o := range ongoing.Sorted() {
			return fmt.Errorf("%s[%d] still moving: replicas %v, adding %v, removing %v", o.Topic, o.Partition, o.Replicas, o.AddingReplicas, o.RemovingReplicas)
		}
		ps, err := partitions(ctx, adm, topic)
		if err != nil {
			return err
		}
		return assignedAs(topic, ps, target)
	})
}

// checkReplicaRemoved checks that each node that held a partition in from
// and not in to has no directory of it left in its log dir: Kafka deletes
// a replica a reassignment removes once the move completes.
func (c *cluster) checkReplicaRemoved(topic string, from, to map[int32][]int32) {
	c.t.Helper()
	left := func() []string {
		var out []string
		for p, old := range from {
			for _, id := range old {
				if slices.Contains(to[p], id) {
					continue
				}
				name := fmt.Sprintf("%s-%d", topic, p)
				entries, _ := os.ReadDir(c.node(id).dataDir)
				for _, e := range entries {
					if e.Name() == name || strings.HasPrefix(e.Name(), name+".") {
						out = append(out, fmt.Sprintf("node %d: %s", id, e.Name()))
					}
				}
			}
		}
		slices.Sort(out)
		return out
	}
	if !testkit.Poll(10*time.Second, func() bool { return len(left()) == 0 }) {
		c.t.Fatalf("after the move to %v, replicas taken away are still in their log dirs: %v", to, left())
	}
}

// checkAssignedIdentical asserts both replicas of each partition of assign
// hold the same bytes once the followers caught up: the replica re-created
// on a node that held the partition before holds the leader's batches, not
// what was left there. Call it with the producer stopped.
func (c *cluster) checkAssignedIdentical(topic string, assign map[int32][]int32) {
	c.t.Helper()
	differ := func() error {
		for p, rs := range assign {
			ref := c.node(rs[0]).replicaBytes(topic, p)
			for _, id := range rs[1:] {
				if got := c.node(id).replicaBytes(topic, p); !slices.Equal(got, ref) {
					return fmt.Errorf("%s[%d]: node %d holds %d bytes of batches, node %d holds %d; they differ from byte %d",
						topic, p, id, len(got), rs[0], len(ref), firstDiff(got, ref))
				}
			}
		}
		return nil
	}
	testkit.Poll(20*time.Second, func() bool { return differ() == nil })
	if err := differ(); err != nil {
		c.t.Error(err)
	}
}

// writePlan writes a kafka-reassign-partitions.sh reassignment file.
func writePlan(t *testing.T, path, topic string, target map[int32][]int32) {
	t.Helper()
	type part struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Replicas  []int32 `json:"replicas"`
	}
	plan := struct {
		Version    int    `json:"version"`
		Partitions []part `json:"partitions"`
	}{Version: 1}
	for p := range int32(len(target)) {
		plan.Partitions = append(plan.Partitions, part{topic, p, target[p]})
	}
	b, err := json.Marshal(plan)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
