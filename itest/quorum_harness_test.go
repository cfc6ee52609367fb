package itest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A cluster with a controller quorum of three voters: nodes 1 to 3 are
// combined broker,controller nodes, each with its own CONTROLLER listener,
// and nodes 4 and up (if any) are broker-only nodes listing the same
// voters. It reuses the process harness of cluster_harness_test.go (ports
// kept across restarts, a log per node, cleanup by pid, the race and panic
// checks); only the start differs: the voters gather each other's
// identities at their first start and none logs "broker listening" until
// the quorum elected a controller, so the three are started together.
type quorumCluster struct {
	*cluster
	ctlPorts map[int32]int // a voter's CONTROLLER port

	mu      sync.Mutex
	clients map[string]*kgo.Client // pinned to one address, see pinned
}

// quorumVoters is how many voters every quorum test cluster has.
const quorumVoters = 3

// quorumCheckpointBytes is the quorum test clusters' metadata checkpoint
// interval: a few topic creations.
const quorumCheckpointBytes = 4096

// startQuorumCluster starts three voters together, then brokers
// broker-only nodes, and waits until the metadata on every node lists all
// of them and every node names the same active controller.
func startQuorumCluster(t *testing.T, engine string, brokers int) *quorumCluster {
	t.Helper()
	total := quorumVoters + brokers
	ports := testkit.FreePorts(t, total+quorumVoters)
	qc := &quorumCluster{cluster: &cluster{t: t, engine: engine, dir: t.TempDir()},
		ctlPorts: map[int32]int{}, clients: map[string]*kgo.Client{}}
	var voters []string
	for i := range quorumVoters {
		id := int32(i + 1)
		qc.ctlPorts[id] = ports[total+i]
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", id, qc.ctlPorts[id]))
	}
	for i := range total {
		id := int32(i + 1)
		n := &clusterNode{c: qc.cluster, id: id, port: ports[i],
			dataDir: filepath.Join(qc.dir, fmt.Sprintf("node%d", id)),
			logPath: filepath.Join(qc.dir, fmt.Sprintf("node%d.log", id)),
		}
		roles, listeners := "broker", fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.port)
		if id <= quorumVoters {
			roles = "broker,controller"
			listeners += fmt.Sprintf(",CONTROLLER://127.0.0.1:%d", qc.ctlPorts[id])
		}
		n.args = append([]string{"broker"}, engineArgs(engine)...)
		for _, s := range append([]string{
			fmt.Sprintf("node.id=%d", id),
			"process.roles=" + roles,
			"controller.quorum.voters=" + strings.Join(voters, ","),
			"controller.listener.names=CONTROLLER",
			"listeners=" + listeners,
			"inter.broker.listener.name=PLAINTEXT",
			"admin.listener=127.0.0.1:0",
			"log.dirs=" + n.dataDir,
			"default.replication.factor=3",
			"min.insync.replicas=2",
			"offsets.topic.replication.factor=3",
			// Checkpoint the metadata log every few changes, so every
			// quorum test also runs with voters trimming their logs
			// and replaying, and brokers following, from checkpoints.
			"metadata.log.max.record.bytes.between.snapshots=" + strconv.Itoa(quorumCheckpointBytes),
		}, clusterSets...) {
			n.args = append(n.args, "--set", s)
		}
		qc.nodes = append(qc.nodes, n)
	}
	t.Cleanup(qc.keepLogs)
	t.Cleanup(qc.cleanup)
	t.Cleanup(qc.closeClients) // runs first: the clients go before the processes
	began := time.Now()
	errs := make([]error, quorumVoters)
	var wg sync.WaitGroup
	for i := range quorumVoters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = qc.nodes[i].tryStart()
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	for _, n := range qc.nodes[quorumVoters:] {
		n.start()
	}
	qc.waitRegistered(qc.ids(), 60*time.Second)
	first, _ := qc.agreedController(qc.ids(), -1, 30*time.Second)
	t.Logf("%d voters and %d brokers up in %v; node %d is the active controller",
		quorumVoters, brokers, time.Since(began).Round(time.Millisecond), first)
	return qc
}

// keepLogs copies every node's log to the directory named by
// $SLUICE_ITEST_KEEP_LOGS, if set, before the test's temp dir goes: a
// race report or a failover's timeline outlives the run.
func (qc *quorumCluster) keepLogs() {
	dir := os.Getenv("SLUICE_ITEST_KEEP_LOGS")
	if dir == "" {
		return
	}
	dst := filepath.Join(dir, strings.NewReplacer("/", "_", "=", "-").Replace(qc.t.Name()))
	if err := os.MkdirAll(dst, 0o755); err != nil {
		qc.t.Logf("keeping the logs: %v", err)
		return
	}
	for _, n := range qc.nodes {
		if b, err := os.ReadFile(n.logPath); err == nil {
			_ = os.WriteFile(filepath.Join(dst, filepath.Base(n.logPath)), b, 0o644)
		}
	}
	qc.t.Logf("node logs kept in %s", dst)
}

func (qc *quorumCluster) closeClients() {
	qc.mu.Lock()
	defer qc.mu.Unlock()
	for _, cl := range qc.clients {
		cl.Close()
	}
}

// ids are every node's id.
func (qc *quorumCluster) ids() []int32 {
	var out []int32
	for _, n := range qc.nodes {
		out = append(out, n.id)
	}
	return out
}

// except is ids without the given ones.
func except(ids []int32, drop ...int32) []int32 {
	return slices.DeleteFunc(slices.Clone(ids), func(id int32) bool { return slices.Contains(drop, id) })
}

// ctlAddr is voter id's CONTROLLER listener.
func (qc *quorumCluster) ctlAddr(id int32) string {
	return fmt.Sprintf("127.0.0.1:%d", qc.ctlPorts[id])
}

// pinned is a client whose requests (through request below) go to addr
// and nowhere else: a node's own answer, not whichever broker kgo picks.
func (qc *quorumCluster) pinned(addr string) *kgo.Client {
	qc.mu.Lock()
	defer qc.mu.Unlock()
	if cl, ok := qc.clients[addr]; ok {
		return cl
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second))
	if err != nil {
		qc.t.Fatalf("kgo.NewClient(%s): %v", addr, err)
	}
	qc.clients[addr] = cl
	return cl
}

// request sends req to addr (a node's PLAINTEXT or CONTROLLER listener)
// and returns its answer, waiting at most within.
func (qc *quorumCluster) request(addr string, req kmsg.Request, within time.Duration) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return qc.pinned(addr).SeedBrokers()[0].Request(ctx, req)
}

// controllerSeenBy is the ControllerID node id's own Metadata answer names.
func (qc *quorumCluster) controllerSeenBy(id int32) (int32, error) {
	req := kmsg.NewPtrMetadataRequest()
	req.Topics = []kmsg.MetadataRequestTopic{}
	resp, err := qc.request(qc.node(id).addr(), req, time.Second)
	if err != nil {
		return -1, fmt.Errorf("node %d: %w", id, err)
	}
	return resp.(*kmsg.MetadataResponse).ControllerID, nil
}

// controllersSeen asks every node of ids at once for the controller it
// names (-1 where it did not answer).
func (qc *quorumCluster) controllersSeen(ids []int32) map[int32]int32 {
	out := make([]int32, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i], _ = qc.controllerSeenBy(id)
		}()
	}
	wg.Wait()
	seen := map[int32]int32{}
	for i, id := range ids {
		seen[id] = out[i]
	}
	return seen
}

// agreedController waits until every node of ids names the same active
// controller, other than not, and returns it with how long that took.
func (qc *quorumCluster) agreedController(ids []int32, not int32, within time.Duration) (int32, time.Duration) {
	qc.t.Helper()
	began := time.Now()
	var agreed int32
	testkit.EventuallyNil(qc.t, within, func() error {
		seen := qc.controllersSeen(ids)
		agreed = seen[ids[0]]
		for _, id := range ids {
			if c := seen[id]; c < 0 || c == not || c != agreed {
				return fmt.Errorf("nodes name controllers %v; want one they agree on, not %d", seen, not)
			}
		}
		return nil
	})
	return agreed, time.Since(began)
}

// namedAfter polls the nodes of ids until each names the same controller
// other than not, and returns it with, per node, how long after since it
// first named a controller other than not (and -1 for none): where a
// failover's time goes (voters learn of a takeover from the register,
// broker-only nodes from their link's search for the controller), and
// the longest poll round (the observation's own delay).
func (qc *quorumCluster) namedAfter(ids []int32, not int32, since time.Time, within time.Duration) (int32, map[int32]time.Duration, time.Duration) {
	qc.t.Helper()
	firstSeen := map[int32]time.Duration{}
	var agreed int32
	var longest time.Duration
	testkit.EventuallyNil(qc.t, within, func() error {
		began := time.Now()
		seen := qc.controllersSeen(ids)
		longest = max(longest, time.Since(began))
		now := time.Since(since)
		for id, c := range seen {
			if _, ok := firstSeen[id]; !ok && c >= 0 && c != not {
				firstSeen[id] = now
			}
		}
		agreed = seen[ids[0]]
		for _, id := range ids {
			if c := seen[id]; c < 0 || c == not || c != agreed {
				return fmt.Errorf("nodes name controllers %v; want one they agree on, not %d", seen, not)
			}
		}
		return nil
	})
	return agreed, firstSeen, longest
}

// mark writes a line with the time into every node's log, so a test's
// steps (a kill, a stop) line up with what the nodes logged.
func (qc *quorumCluster) mark(what string) {
	line := fmt.Sprintf("===== itest: %s %s =====\n", time.Now().UTC().Format(time.RFC3339Nano), what)
	for _, n := range qc.nodes {
		f, err := os.OpenFile(n.logPath, os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			continue
		}
		_, _ = f.WriteString(line)
		_ = f.Close()
	}
}

// waitRegistered waits until the Metadata of every node of ids lists
// every node of the cluster as a broker.
func (qc *quorumCluster) waitRegistered(ids []int32, within time.Duration) {
	qc.t.Helper()
	want := qc.ids()
	testkit.EventuallyNil(qc.t, within, func() error {
		for _, id := range ids {
			req := kmsg.NewPtrMetadataRequest()
			req.Topics = []kmsg.MetadataRequestTopic{}
			resp, err := qc.request(qc.node(id).addr(), req, 2*time.Second)
			if err != nil {
				return fmt.Errorf("node %d: %w", id, err)
			}
			var got []int32
			for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
				got = append(got, b.NodeID)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				return fmt.Errorf("node %d lists brokers %v, want %v", id, got, want)
			}
		}
		return nil
	})
}

// createTopicAt sends CreateTopics for one topic (partitions, replication
// factor rf) to addr and returns the topic's error (nil when created).
func (qc *quorumCluster) createTopicAt(addr, topic string, partitions int32, rf int16, within time.Duration) error {
	req := kmsg.NewPtrCreateTopicsRequest()
	req.TimeoutMillis = int32(within / time.Millisecond)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, partitions, rf
	req.Topics = append(req.Topics, rt)
	resp, err := qc.request(addr, req, within)
	if err != nil {
		return err
	}
	ts := resp.(*kmsg.CreateTopicsResponse).Topics
	if len(ts) != 1 {
		return fmt.Errorf("CreateTopics answered %d topics, want 1", len(ts))
	}
	return kerr.ErrorForCode(ts[0].ErrorCode)
}

// createTopicEventually retries creating topic (one partition, rf
// replicas) through node via (which forwards it to the active controller
// unless it is that) until it succeeds, and returns how long that took.
func (qc *quorumCluster) createTopicEventually(via int32, topic string, rf int16, within time.Duration) time.Duration {
	qc.t.Helper()
	began := time.Now()
	testkit.EventuallyNil(qc.t, within, func() error {
		err := qc.createTopicAt(qc.node(via).addr(), topic, 1, rf, 3*time.Second)
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return fmt.Errorf("create %s through node %d: %w", topic, via, err)
	})
	return time.Since(began)
}

// createTopicByClient retries creating topic (one partition, one
// replica) with a kadm client seeded with the nodes of ids, as a Kafka
// client does it (to the ControllerID Metadata names), until it succeeds,
// and returns how long that took.
func (qc *quorumCluster) createTopicByClient(ids []int32, topic string, within time.Duration) time.Duration {
	qc.t.Helper()
	var seeds []string
	for _, id := range ids {
		seeds = append(seeds, qc.node(id).addr())
	}
	adm := kadm.NewClient(qc.client(kgo.SeedBrokers(seeds...), kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(3*time.Second)))
	began := time.Now()
	testkit.EventuallyNil(qc.t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 4*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, 1, 1, nil, topic)
		if err == nil {
			err = resp.Err
		}
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			return nil
		}
		return fmt.Errorf("create %s with a client seeded with nodes %v: %w", topic, ids, err)
	})
	return time.Since(began)
}

// topicsOn is the set of topics node id's own Metadata lists.
func (qc *quorumCluster) topicsOn(id int32) (map[string]bool, error) {
	resp, err := qc.request(qc.node(id).addr(), kmsg.NewPtrMetadataRequest(), 2*time.Second)
	if err != nil {
		return nil, fmt.Errorf("node %d: %w", id, err)
	}
	out := map[string]bool{}
	for _, t := range resp.(*kmsg.MetadataResponse).Topics {
		if t.Topic != nil && t.ErrorCode == 0 {
			out[*t.Topic] = true
		}
	}
	return out, nil
}

// waitTopicsEverywhere waits until every node of ids lists every topic of
// want (a node's copy may lag the controller by a fetch; a topic missing
// past within is lost).
func (qc *quorumCluster) waitTopicsEverywhere(ids []int32, want []string, within time.Duration) {
	qc.t.Helper()
	testkit.EventuallyNil(qc.t, within, func() error {
		for _, id := range ids {
			have, err := qc.topicsOn(id)
			if err != nil {
				return err
			}
			var missing []string
			for _, topic := range want {
				if !have[topic] {
					missing = append(missing, topic)
				}
			}
			if len(missing) > 0 {
				return fmt.Errorf("node %d lacks %d of the %d topics whose creation succeeded: %v", id, len(missing), len(want), missing)
			}
		}
		return nil
	})
}

// waitSameTopics waits until every node of ids lists the same topics, and
// returns them.
func (qc *quorumCluster) waitSameTopics(ids []int32, within time.Duration) map[string]bool {
	qc.t.Helper()
	var ref map[string]bool
	testkit.EventuallyNil(qc.t, within, func() error {
		var err error
		if ref, err = qc.topicsOn(ids[0]); err != nil {
			return err
		}
		for _, id := range ids[1:] {
			have, err := qc.topicsOn(id)
			if err != nil {
				return err
			}
			if !mapsEqual(have, ref) {
				return fmt.Errorf("node %d lists topics %v, node %d %v", id, sortedKeys(have), ids[0], sortedKeys(ref))
			}
		}
		return nil
	})
	return ref
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// allLogs is everything node n logged, across its restarts.
func (n *clusterNode) allLogs() string {
	b, _ := os.ReadFile(n.logPath)
	return string(b)
}

// activeLines counts the lines in which node id's current process logged
// that it became the active controller.
func (qc *quorumCluster) activeLines(id int32) int {
	return strings.Count(qc.node(id).currentLog(), `msg="active controller"`)
}

// describeQuorum is the metadata log's partition as node id's
// DescribeQuorum (v2, forwarded to the active controller) answers it.
func (qc *quorumCluster) describeQuorum(id int32) (kmsg.DescribeQuorumResponseTopicPartition, error) {
	req := kmsg.NewPtrDescribeQuorumRequest()
	req.Version = 2
	rt := kmsg.NewDescribeQuorumRequestTopic()
	rt.Topic = "__cluster_metadata"
	rt.Partitions = []kmsg.DescribeQuorumRequestTopicPartition{kmsg.NewDescribeQuorumRequestTopicPartition()}
	req.Topics = append(req.Topics, rt)
	resp, err := qc.request(qc.node(id).addr(), req, 3*time.Second)
	if err != nil {
		return kmsg.DescribeQuorumResponseTopicPartition{}, err
	}
	r := resp.(*kmsg.DescribeQuorumResponse)
	if r.ErrorCode != 0 {
		return kmsg.DescribeQuorumResponseTopicPartition{}, kerr.ErrorForCode(r.ErrorCode)
	}
	if len(r.Topics) != 1 || len(r.Topics[0].Partitions) != 1 {
		return kmsg.DescribeQuorumResponseTopicPartition{}, fmt.Errorf("DescribeQuorum answered %+v", r.Topics)
	}
	p := r.Topics[0].Partitions[0]
	return p, kerr.ErrorForCode(p.ErrorCode)
}

// waitQuorumLeader waits until node via's DescribeQuorum names leader in
// an epoch past after with three voters, and returns the epoch.
func (qc *quorumCluster) waitQuorumLeader(via, leader, after int32, within time.Duration) int32 {
	qc.t.Helper()
	var epoch int32
	testkit.EventuallyNil(qc.t, within, func() error {
		p, err := qc.describeQuorum(via)
		if err != nil {
			return fmt.Errorf("DescribeQuorum through node %d: %w", via, err)
		}
		if p.LeaderID != leader || p.LeaderEpoch <= after || len(p.CurrentVoters) != quorumVoters {
			return fmt.Errorf("DescribeQuorum through node %d: leader %d in epoch %d, %d voters; want leader %d in an epoch past %d, %d voters",
				via, p.LeaderID, p.LeaderEpoch, len(p.CurrentVoters), leader, after, quorumVoters)
		}
		epoch = p.LeaderEpoch
		return nil
	})
	return epoch
}
