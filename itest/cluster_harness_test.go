package itest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A three-node cluster of real sluice processes on loopback, configured as
// a newcomer's is: each node starts from its deploy/cluster/nodeN.properties
// (so those files are tested too), with ports, log dirs and timers
// overridden. Node 1 is broker and controller, nodes 2 and 3 brokers.
//
// Every port is picked free before the first start and kept across
// restarts: the controller's because controller.quorum.voters names it,
// the brokers' so a client's seed list and a restarted node's registration
// stay the same. Each node's stderr goes to nodeN.log in the test's temp
// dir; its tail is printed when the test fails.
type cluster struct {
	t      *testing.T
	engine string
	dir    string
	nodes  []*clusterNode // nodes[i] has node.id i+1
}

// clusterNode is one node: its fixed settings and, while running, its
// process.
type clusterNode struct {
	c        *cluster
	id       int32
	port     int // PLAINTEXT
	dataDir  string
	logPath  string
	args     []string
	starts   int
	cmd      *exec.Cmd
	done     chan struct{} // closed when the current process was reaped
	exitErr  error
	logStart int64 // offset in logPath where the current process's output starts
}

// clusterSets are the settings every test cluster adds to the deploy
// files: short sessions and fetch waits, so a failover takes seconds.
var clusterSets = []string{
	"broker.session.timeout.ms=3000",
	"broker.heartbeat.interval.ms=250",
	"replica.fetch.wait.max.ms=200",
	"replica.fetch.backoff.ms=100",
	"replica.lag.time.max.ms=5000",
	"log.level=info",
}

// startCluster starts nodes 1 to 3 and waits until every broker is
// registered and unfenced (the controller's metadata lists all three).
// Extra --set values apply to every node, after clusterSets.
func startCluster(t *testing.T, engine string, sets ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, engine: engine, dir: t.TempDir()}
	ports := testkit.FreePorts(t, 4)
	ctlPort := ports[3]
	voters := fmt.Sprintf("1@127.0.0.1:%d", ctlPort)
	for i := range 3 {
		id := int32(i + 1)
		n := &clusterNode{c: c, id: id, port: ports[i],
			dataDir: filepath.Join(c.dir, fmt.Sprintf("node%d", id)),
			logPath: filepath.Join(c.dir, fmt.Sprintf("node%d.log", id)),
		}
		listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.port)
		if id == 1 {
			listeners += fmt.Sprintf(",CONTROLLER://127.0.0.1:%d", ctlPort)
		}
		n.args = append([]string{"broker",
			"--config", filepath.Join("..", "deploy", "cluster", fmt.Sprintf("node%d.properties", id))},
			engineArgs(engine)...)
		for _, s := range append(append([]string{
			"controller.quorum.voters=" + voters,
			"listeners=" + listeners,
			"admin.listener=127.0.0.1:0",
			"log.dirs=" + n.dataDir,
		}, clusterSets...), sets...) {
			n.args = append(n.args, "--set", s)
		}
		c.nodes = append(c.nodes, n)
	}
	t.Cleanup(c.cleanup)
	for _, n := range c.nodes {
		n.start()
	}
	c.waitBrokers(30 * time.Second)
	return c
}

// node is the node with id.
func (c *cluster) node(id int32) *clusterNode { return c.nodes[id-1] }

// addrs are every node's PLAINTEXT address, the seeds of a client.
func (c *cluster) addrs() []string {
	var out []string
	for _, n := range c.nodes {
		out = append(out, n.addr())
	}
	return out
}

func (n *clusterNode) addr() string { return fmt.Sprintf("127.0.0.1:%d", n.port) }

// client is a kgo client seeded with every node, closed at the test's end.
func (c *cluster) client(opts ...kgo.Opt) *kgo.Client {
	c.t.Helper()
	base := []kgo.Opt{
		kgo.SeedBrokers(c.addrs()...),
		kgo.DialTimeout(3 * time.Second),
		kgo.MetadataMinAge(100 * time.Millisecond),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
	cl, err := kgo.NewClient(append(base, opts...)...)
	if err != nil {
		c.t.Fatalf("kgo.NewClient: %v", err)
	}
	c.t.Cleanup(cl.Close)
	return cl
}

// admin is a kadm client over every node with a short request timeout, so
// a stopped node costs a poll seconds, not the default minute.
func (c *cluster) admin() *kadm.Client {
	return kadm.NewClient(c.client(kgo.RequestTimeoutOverhead(3*time.Second), kgo.RetryTimeout(5*time.Second)))
}

// start runs the node's process and waits until it logs that it listens.
func (n *clusterNode) start() {
	n.c.t.Helper()
	if err := n.tryStart(); err != nil {
		n.c.t.Fatal(err)
	}
}

// restartAfterShutdown starts a node that stopped with a controlled
// shutdown moments ago. Kafka's controller takes such a broker's new
// registration at once; if its old session is still live (the shutdown
// gave up before the controller fenced it), the new process retries its
// registration until the session ends instead of exiting
// (controllerlink.Link.Register). Either way the start must succeed.
func (n *clusterNode) restartAfterShutdown() {
	n.c.t.Helper()
	n.start()
}

func (n *clusterNode) tryStart() error {
	n.starts++
	f, err := os.OpenFile(n.logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "===== itest: start %d of node %d =====\n", n.starts, n.id)
	st, _ := f.Stat()
	n.logStart = st.Size()
	cmd := exec.Command(sluiceBin, n.args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting node %d: %w", n.id, err)
	}
	n.cmd, n.done, n.exitErr = cmd, make(chan struct{}), nil
	done := n.done
	go func() {
		err := cmd.Wait()
		n.exitErr = err
		close(done)
	}()
	ok := testkit.Poll(60*time.Second, func() bool {
		return !n.running() || listeningRE.MatchString(n.currentLog())
	})
	if !n.running() {
		return fmt.Errorf("node %d exited before listening: %v", n.id, n.exitErr)
	}
	if !ok {
		return fmt.Errorf("node %d did not log \"broker listening\" within 60s", n.id)
	}
	return nil
}

// running reports whether the node's current process has not exited.
func (n *clusterNode) running() bool {
	if n.done == nil {
		return false
	}
	select {
	case <-n.done:
		return false
	default:
		return true
	}
}

// currentLog is what the current process wrote so far.
func (n *clusterNode) currentLog() string {
	b, _ := os.ReadFile(n.logPath)
	if int64(len(b)) < n.logStart {
		return ""
	}
	return string(b[n.logStart:])
}

var fencedRE = regexp.MustCompile(`time=(\S+) level=WARN msg="broker fenced: no heartbeat[^\n]*broker_id=(\d+)`)

// fencedAfter is how long after since the controller (node 1) logged that
// it fenced broker id, or -1 if it has not.
func (c *cluster) fencedAfter(id int32, since time.Time) time.Duration {
	for _, m := range fencedRE.FindAllStringSubmatch(c.node(1).currentLog(), -1) {
		at, err := time.Parse(time.RFC3339Nano, m[1])
		if err == nil && m[2] == strconv.Itoa(int(id)) && at.After(since) {
			return at.Sub(since)
		}
	}
	return -1
}

// signal sends sig to the node's process, by its pid.
func (n *clusterNode) signal(sig syscall.Signal) {
	n.c.t.Helper()
	if err := syscall.Kill(n.cmd.Process.Pid, sig); err != nil {
		n.c.t.Fatalf("kill -%d node %d (pid %d): %v", sig, n.id, n.cmd.Process.Pid, err)
	}
}

// kill9 kills the node with SIGKILL and waits for it to be gone.
func (n *clusterNode) kill9() {
	n.c.t.Helper()
	n.signal(syscall.SIGKILL)
	<-n.done
}

// stop sends SIGTERM (a controlled shutdown) and waits for a clean exit.
func (n *clusterNode) stop(within time.Duration) {
	t := n.c.t
	t.Helper()
	n.signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(within):
		n.kill9()
		t.Fatalf("node %d did not exit within %v of SIGTERM", n.id, within)
	}
	if n.exitErr != nil {
		t.Fatalf("node %d exited uncleanly after SIGTERM: %v", n.id, n.exitErr)
	}
	if !strings.Contains(n.currentLog(), "broker stopped cleanly") {
		t.Fatalf(`node %d's log lacks "broker stopped cleanly" after SIGTERM`, n.id)
	}
}

// cleanup kills every process still running (SIGCONT first, in case a test
// left one stopped), checks the logs for races and panics, and prints the
// tail of each log if the test failed.
func (c *cluster) cleanup() {
	for _, n := range c.nodes {
		if n.running() {
			_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGCONT)
			_ = syscall.Kill(n.cmd.Process.Pid, syscall.SIGKILL)
			<-n.done
		}
	}
	for _, n := range c.nodes {
		b, _ := os.ReadFile(n.logPath)
		if bytes.Contains(b, []byte("DATA RACE")) {
			c.t.Errorf("node %d's log reports a DATA RACE", n.id)
		}
		for _, line := range strings.Split(string(b), "\n") {
			if !strings.Contains(line, "panic") && !strings.Contains(line, "fatal error:") {
				continue
			}
			c.t.Errorf("node %d's log contains a panic or fatal runtime error: %.300s", n.id, line)
			break
		}
		if c.t.Failed() {
			c.t.Logf("node %d (%s), last lines of its log:\n%s", n.id, n.logPath, tailLines(b, 60))
		}
	}
}

func tailLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitBrokers waits until the cluster's metadata lists all three brokers
// (registered; Sluice lists fenced brokers too, so a topic created right
// after may still find too few unfenced: createTopic retries).
//
// It sends a real Metadata request each time. kadm's BrokerMetadata must
// not be used for this: it answers from the client's cached broker list
// once the client knows any broker, and franz-go refreshes that list only
// every metadata.max.age (5 min), so a client that first saw two brokers
// went on reporting two for the whole wait while every node listed three.
func (c *cluster) waitBrokers(within time.Duration) {
	c.t.Helper()
	cl := c.client()
	testkit.EventuallyNil(c.t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		req := kmsg.NewPtrMetadataRequest()
		req.Topics = []kmsg.MetadataRequestTopic{}
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		var ids []int32
		for _, b := range resp.Brokers {
			ids = append(ids, b.NodeID)
		}
		if len(ids) != 3 {
			return fmt.Errorf("metadata lists brokers %v, want 1, 2 and 3 (each node's own answer: %s)", ids, c.brokersPerNode())
		}
		return nil
	})
}

// brokersPerNode asks every running node for the brokers its own
// metadata image lists, so a failure says which node's view lags.
func (c *cluster) brokersPerNode() string {
	var out []string
	for _, n := range c.nodes {
		if !n.running() {
			out = append(out, fmt.Sprintf("node %d down", n.id))
			continue
		}
		cl, err := kgo.NewClient(kgo.SeedBrokers(n.addr()), kgo.DialTimeout(time.Second))
		if err != nil {
			out = append(out, fmt.Sprintf("node %d: %v", n.id, err))
			continue
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := cl.SeedBrokers()[0].Request(ctx, kmsg.NewPtrMetadataRequest())
		cancel()
		cl.Close()
		if err != nil {
			out = append(out, fmt.Sprintf("node %d: %v", n.id, err))
			continue
		}
		var ids []int32
		for _, b := range resp.(*kmsg.MetadataResponse).Brokers {
			ids = append(ids, b.NodeID)
		}
		out = append(out, fmt.Sprintf("node %d lists %v", n.id, ids))
	}
	return strings.Join(out, "; ")
}

// createTopic creates topic with partitions of three replicas through the
// given node, and waits until every partition has a leader and a full ISR.
func (c *cluster) createTopic(via int32, topic string, partitions int32, configs map[string]*string) {
	c.t.Helper()
	adm := kadm.NewClient(c.client(kgo.SeedBrokers(c.node(via).addr())))
	testkit.EventuallyNil(c.t, 20*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := adm.CreateTopic(ctx, partitions, 3, configs, topic)
		if err == nil && resp.Err == nil || errors.Is(resp.Err, kerr.TopicAlreadyExists) {
			return nil
		}
		return fmt.Errorf("create topic %s through node %d: %v / %v", topic, via, err, resp.Err)
	})
	c.waitHealthy(topic, nil, 30*time.Second)
}

// partitions is the metadata of topic's partitions as one broker sees it.
func partitions(ctx context.Context, adm *kadm.Client, topic string) (kadm.PartitionDetails, error) {
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

// waitPartitions polls topic's partitions (as any broker sees them) until
// check accepts them, and returns them.
func (c *cluster) waitPartitions(topic string, within time.Duration, check func(kadm.PartitionDetails) error) kadm.PartitionDetails {
	c.t.Helper()
	adm := c.admin()
	var last kadm.PartitionDetails
	testkit.EventuallyNil(c.t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := partitions(ctx, adm, topic)
		if err == nil {
			err = check(ps)
		}
		last = ps
		return err
	})
	return last
}

// waitHealthy waits until every partition of topic has a leader and all
// three replicas in its ISR, and (when check is not nil) check accepts the
// partitions; it returns them.
func (c *cluster) waitHealthy(topic string, check func(kadm.PartitionDetails) error, within time.Duration) kadm.PartitionDetails {
	c.t.Helper()
	return c.waitPartitions(topic, within, func(ps kadm.PartitionDetails) error {
		for _, p := range ps.Sorted() {
			if p.Err != nil || p.Leader < 0 || len(p.ISR) != 3 {
				return fmt.Errorf("%s[%d]: leader %d (epoch %d), ISR %v, err %v; want a leader and ISR of 3", topic, p.Partition, p.Leader, p.LeaderEpoch, p.ISR, p.Err)
			}
		}
		if check != nil {
			return check(ps)
		}
		return nil
	})
}

// waitNewLeader waits until partition p of topic is led by a node other
// than old, in an epoch past oldEpoch, with old out of its ISR: the
// controller fenced old and elected a replacement.
func (c *cluster) waitNewLeader(topic string, p, old, oldEpoch int32, within time.Duration) kadm.PartitionDetail {
	c.t.Helper()
	ps := c.waitPartitions(topic, within, func(ps kadm.PartitionDetails) error {
		d := ps[p]
		if d.Leader < 0 || d.Leader == old || d.LeaderEpoch <= oldEpoch || slices.Contains(d.ISR, old) {
			return fmt.Errorf("%s[%d]: leader %d epoch %d ISR %v; want a leader other than %d, epoch > %d, %d out of the ISR",
				topic, p, d.Leader, d.LeaderEpoch, d.ISR, old, oldEpoch, old)
		}
		return nil
	})
	return ps[p]
}

// replicaBytes is the concatenation of every .log segment of a partition in
// a node's data dir: the record batches it holds, whatever its segments.
func (n *clusterNode) replicaBytes(topic string, p int32) []byte {
	dir := filepath.Join(n.dataDir, fmt.Sprintf("%s-%d", topic, p))
	names, err := filepath.Glob(filepath.Join(dir, "*.log"))
	if err != nil || len(names) == 0 {
		n.c.t.Fatalf("node %d has no segments of %s[%d] in %s (%v)", n.id, topic, p, dir, err)
	}
	slices.Sort(names) // zero-padded base offsets sort in offset order
	var out []byte
	for _, name := range names {
		b, err := os.ReadFile(name)
		if err != nil {
			n.c.t.Fatal(err)
		}
		out = append(out, b...)
	}
	return out
}

// checkReplicasIdentical asserts the three replicas of each partition of
// topic hold the same bytes: followers copied the leader's batches as they
// are, and a suffix a former leader had beyond what the others kept was
// truncated away. Call it with every node running, the ISR full and the
// producer stopped: it waits for followers to catch up (the files of a
// running broker are read as they are, no API reports a follower's log),
// then kills every node and compares once more.
func (c *cluster) checkReplicasIdentical(topic string, nparts int32) {
	c.t.Helper()
	differ := func() error {
		for p := range nparts {
			ref := c.nodes[0].replicaBytes(topic, p)
			for _, n := range c.nodes[1:] {
				if got := n.replicaBytes(topic, p); !bytes.Equal(got, ref) {
					return fmt.Errorf("%s[%d]: node %d holds %d bytes of batches, node 1 holds %d; they differ from byte %d",
						topic, p, n.id, len(got), len(ref), firstDiff(got, ref))
				}
			}
		}
		return nil
	}
	testkit.Poll(20*time.Second, func() bool { return differ() == nil })
	for _, n := range c.nodes {
		if n.running() {
			n.kill9()
		}
	}
	if err := differ(); err != nil {
		c.t.Error(err)
	}
}

func firstDiff(a, b []byte) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

var errNoLeader = errors.New("no leader")

// leaderOf is the leader of partition p of topic in the metadata.
func (c *cluster) leaderOf(adm *kadm.Client, topic string, p int32) (id, epoch int32, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	ps, err := partitions(ctx, adm, topic)
	if err != nil {
		return -1, -1, err
	}
	d, ok := ps[p]
	if !ok || d.Leader < 0 {
		return -1, -1, fmt.Errorf("%s[%d]: %w", topic, p, errNoLeader)
	}
	return d.Leader, d.LeaderEpoch, nil
}

var seqRE = regexp.MustCompile(`^[0-9]+$`)

// seqOf parses a record value written by a loadProducer.
func seqOf(v []byte) (int64, bool) {
	if !seqRE.Match(v) {
		return 0, false
	}
	n, err := strconv.ParseInt(string(v), 10, 64)
	return n, err == nil
}
