package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/perf/internal/benchkit"
)

// The cluster: three controller-only voters (node ids 1-3, process.roles=
// controller) and three brokers (ids 4-6, process.roles=broker), each a
// `sluice broker` process on loopback. Every node keeps its ports and log
// directory across restarts, so one can be killed and started again.

const (
	numVoters   = 3
	numBrokers  = 3
	firstBroker = numVoters + 1
)

// timerSets are the short timers the broker's quorum tests use; every node
// gets them (the voters decide session expiry, the brokers heartbeat).
var timerSets = []string{
	"broker.session.timeout.ms=3000",
	"broker.heartbeat.interval.ms=250",
}

// node is one member of the cluster and its current process.
type node struct {
	id      int32
	voter   bool
	addr    string // the client listener (brokers) or CONTROLLER listener (voters)
	argv    []string
	logPath string

	mu  sync.Mutex
	cur *proc
}

func (n *node) name() string {
	if n.voter {
		return fmt.Sprintf("controller-%d", n.id)
	}
	return fmt.Sprintf("broker-%d", n.id)
}

func (n *node) proc() *proc {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cur
}

// start runs a new process for the node.
func (n *node) start() (*proc, error) {
	p, err := startProc(n.name(), n.argv, n.logPath)
	if err != nil {
		return nil, err
	}
	n.mu.Lock()
	n.cur = p
	n.mu.Unlock()
	return p, nil
}

// cluster is the six nodes and one client per broker, each pinned to its
// broker (requests go to that broker only, which forwards what the
// controller decides).
type cluster struct {
	dir     string
	voters  []*node // ids 1..3
	brokers []*node // ids 4..6
	clients []*kgo.Client
	logf    func(string, ...any)
}

// newCluster lays out the nodes under dir with free loopback ports.
func newCluster(sluice, dir string, logf func(string, ...any)) (*cluster, error) {
	c := &cluster{dir: dir, logf: logf}
	var voterList []string
	for i := range numVoters {
		port, err := benchkit.FreePort()
		if err != nil {
			return nil, err
		}
		n := &node{id: int32(i + 1), voter: true, addr: fmt.Sprintf("127.0.0.1:%d", port)}
		voterList = append(voterList, fmt.Sprintf("%d@%s", n.id, n.addr))
		c.voters = append(c.voters, n)
	}
	voters := strings.Join(voterList, ",")
	for i := range numBrokers {
		port, err := benchkit.FreePort()
		if err != nil {
			return nil, err
		}
		c.brokers = append(c.brokers, &node{id: int32(firstBroker + i), addr: fmt.Sprintf("127.0.0.1:%d", port)})
	}
	for _, n := range c.all() {
		data := filepath.Join(dir, n.name())
		if err := os.MkdirAll(data, 0o755); err != nil {
			return nil, err
		}
		n.logPath = filepath.Join(dir, n.name()+".log")
		roles, listener := "broker", "PLAINTEXT://"+n.addr
		if n.voter {
			roles, listener = "controller", "CONTROLLER://"+n.addr
		}
		n.argv = []string{sluice, "broker",
			"--set", fmt.Sprintf("node.id=%d", n.id),
			"--set", "process.roles=" + roles,
			"--set", "controller.quorum.voters=" + voters,
			"--set", "controller.listener.names=CONTROLLER",
			"--set", "listeners=" + listener,
			"--set", "log.dirs=" + data,
			"--set", "admin.listener=",
		}
		for _, s := range timerSets {
			n.argv = append(n.argv, "--set", s)
		}
	}
	for _, b := range c.brokers {
		cl, err := kgo.NewClient(kgo.SeedBrokers(b.addr), kgo.DialTimeout(time.Second),
			kgo.ClientID("quorumbench"), kgo.BrokerMaxReadBytes(256<<20))
		if err != nil {
			c.closeClients()
			return nil, err
		}
		c.clients = append(c.clients, cl)
	}
	return c, nil
}

func (c *cluster) all() []*node { return append(append([]*node{}, c.voters...), c.brokers...) }

// voter is the voter with the given node id.
func (c *cluster) voter(id int32) *node { return c.voters[id-1] }

// client is the client pinned to broker i (0-based).
func (c *cluster) client(i int) *kgo.Broker {
	return c.clients[i%len(c.clients)].SeedBrokers()[0]
}

// start starts every node at once (the voters of a new cluster gather
// each other's identities at first start), waits for each to listen, for
// an elected active controller and for the three brokers unfenced.
func (c *cluster) start(ctx context.Context) error {
	t0 := time.Now()
	for _, n := range c.all() {
		if _, err := n.start(); err != nil {
			return err
		}
	}
	for _, n := range c.all() {
		if err := n.proc().waitListening(60 * time.Second); err != nil {
			return err
		}
	}
	if err := c.waitReady(ctx, 60*time.Second); err != nil {
		return err
	}
	c.logf("cluster up in %.1fs: voters %s", time.Since(t0).Seconds(), c.pids())
	return nil
}

// waitReady waits until broker 4's DescribeQuorum names a leader and its
// Metadata lists every broker (listed = registered and unfenced).
func (c *cluster) waitReady(ctx context.Context, within time.Duration) error {
	deadline := time.Now().Add(within)
	var last string
	for time.Now().Before(deadline) {
		if err := ctx.Err(); err != nil {
			return err
		}
		q, err := describeQuorum(ctx, c.client(0), time.Second)
		switch {
		case err != nil:
			last = err.Error()
		case q.leader < 0:
			last = "no leader"
		default:
			m, err := fetchMetadata(ctx, c.client(0), false, 2*time.Second)
			if err != nil {
				last = err.Error()
			} else if len(m.brokers) < numBrokers {
				last = fmt.Sprintf("brokers listed: %v", m.brokers)
			} else {
				return nil
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("cluster not ready after %s: %s", within, last)
}

func (c *cluster) pids() string {
	var parts []string
	for _, n := range c.all() {
		if p := n.proc(); p != nil {
			parts = append(parts, fmt.Sprintf("%d=pid %d", n.id, p.pid()))
		}
	}
	return strings.Join(parts, ", ")
}

// stop stops every node: SIGTERM to all at once, then SIGKILL to the
// process group of any still running after 10 s (brokers stopping
// together cannot hand their leaderships to each other, so their
// controlled shutdowns may wait that long; the data is thrown away). It
// returns what needed SIGKILL, for the log.
func (c *cluster) stop() []string {
	c.closeClients()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var killed []string
	for _, n := range c.all() {
		p := n.proc()
		if p == nil {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d, clean := p.stop(10 * time.Second); !clean {
				mu.Lock()
				killed = append(killed, fmt.Sprintf("%s after %s", n.name(), d.Round(time.Millisecond)))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	return killed
}

func (c *cluster) closeClients() {
	for _, cl := range c.clients {
		cl.Close()
	}
	c.clients = nil
}

// tails is the last n warnings and errors of every node's log, for a
// failure report.
func (c *cluster) tails(n int) string {
	var b strings.Builder
	for _, nd := range c.all() {
		f, err := os.Open(nd.logPath)
		if err != nil {
			continue
		}
		fmt.Fprintf(&b, "--- %s: its last warnings and errors\n%s\n", nd.name(), strings.Join(importantTail(f, n), "\n"))
		f.Close()
	}
	return b.String()
}

// fencings counts the sessions the controllers expired since t (a broker
// fenced for want of heartbeats), from the voters' logs, leaving out
// broker except (-1: none).
func (c *cluster) fencings(since time.Time, except int32) int {
	var paths []string
	for _, v := range c.voters {
		paths = append(paths, v.logPath)
	}
	n := 0
	for id, k := range fencedIn(paths, since) {
		if id != except {
			n += k
		}
	}
	return n
}

// newClient is a client of its own pinned to broker addr: concurrent
// workers need one each, as a broker answers one connection's requests in
// order.
func newClient(addr string) (*kgo.Client, *kgo.Broker, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.DialTimeout(time.Second), kgo.ClientID("quorumbench"))
	if err != nil {
		return nil, nil, err
	}
	return cl, cl.SeedBrokers()[0], nil
}
