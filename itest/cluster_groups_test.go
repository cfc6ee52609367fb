package itest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Consumer groups across a coordinator failover: a classic group and a
// KIP-848 group, two members each, consume a topic (RF=3) while an
// acks=all producer writes to it. Both groups' offsets live in the same
// __consumer_offsets partition, so one broker, its leader, coordinates
// both; it is killed (kill -9) or stopped (SIGTERM, a controlled
// shutdown). The groups must find the new coordinator (the partition's
// new leader), go on consuming and committing there, and lose nothing: no
// committed offset goes backwards, no record is skipped, and a record is
// consumed twice only at or past the last commit acknowledged before. The
// stopped broker then restarts and rejoins every ISR, is elected the
// partition's leader again (preferred election), and coordinates the
// groups again from the replica it caught up as a follower.

// TestClusterGroupCoordinatorKill9: the coordinator dies with kill -9; the
// controller fences it after the session timeout and elects new leaders.
func TestClusterGroupCoordinatorKill9(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) { testClusterGroupFailover(t, engine, false) })
}

// TestClusterGroupCoordinatorSIGTERM: the coordinator stops with a
// controlled shutdown, which moves its leaderships away before it exits.
func TestClusterGroupCoordinatorSIGTERM(t *testing.T) {
	engines.Run(t, func(t *testing.T, engine string) { testClusterGroupFailover(t, engine, true) })
}

func testClusterGroupFailover(t *testing.T, engine string, controlled bool) {
	const topic, nparts = "grouped", 3
	c := startCluster(t, engine, groupBrokerSets()...)
	c.createTopic(2, topic, nparts, minISR2)
	lp := startLoad(c, topic, nparts)
	lp.waitProgress(200, 30*time.Second, "before the groups")
	adm := c.admin()

	// Not node 1: it is the only controller, and with it gone nothing
	// elects a new leader (a quorum is the next issue).
	classic, coord := c.groupCoordinatedBy(adm, "classic", func(id int32) bool { return id != 1 })
	kip848 := sharingPartition("kip848", classic)
	groups := []*failoverGroup{startFailoverGroup(c, classic, topic, false), startFailoverGroup(c, kip848, topic, true)}
	for _, g := range groups {
		g.waitCommitsPast(nil, 30*time.Second, "before the failover")
	}

	victim := c.node(coord)
	before := map[*failoverGroup]map[int32]int64{}
	for _, g := range groups {
		before[g] = g.ackedCommits()
	}
	began := time.Now()
	if controlled {
		victim.stop(30 * time.Second)
	} else {
		victim.kill9()
	}
	stoppedAt := time.Now()
	t.Logf("node %d, coordinator of %s and %s, stopped in %v (controlled: %v)", coord, classic, kip848,
		stoppedAt.Sub(began).Round(time.Millisecond), controlled)
	for _, g := range groups {
		to := c.waitCoordinator(adm, g.name, func(id int32) bool { return id != coord }, 30*time.Second)
		g.waitCommitsPast(before[g], 30*time.Second, "on the new coordinator")
		t.Logf("%s: coordinated by node %d; every partition's commit acknowledged past its value before the failover %v after the exit",
			g.name, to, time.Since(stoppedAt).Round(time.Millisecond))
	}
	lp.waitProgress(100, 30*time.Second, fmt.Sprintf("node %d down", coord))

	if controlled {
		victim.restartAfterShutdown()
	} else {
		victim.start()
	}
	c.waitHealthy(topic, nil, 60*time.Second)
	c.waitHealthy(offsetsTopic, nil, 60*time.Second)
	for _, g := range groups {
		g.waitCommitsPast(g.ackedCommits(), 30*time.Second, fmt.Sprintf("node %d back", coord))
	}

	// Move the coordination back to the restarted node, which loads the
	// groups from the replica it caught up on while it was a follower.
	c.electPreferred(adm, offsetsTopic, offsetsPartition(classic, 50), coord)
	for _, g := range groups {
		c.waitCoordinator(adm, g.name, func(id int32) bool { return id == coord }, 30*time.Second)
		g.waitCommitsPast(g.ackedCommits(), 30*time.Second, fmt.Sprintf("coordinated by node %d again", coord))
	}
	t.Logf("the groups are coordinated by node %d again", coord)

	lp.stop()
	if nerrs, errs := lp.errors(); nerrs > 0 {
		t.Logf("the producer saw %d failed records (not what this test checks): %v", nerrs, errs)
	}
	ends := endOffsets(t, c.node(1).addr(), topic) // every node is up and in every ISR
	for _, g := range groups {
		g.finish(adm, ends)
	}
}

// offsetsTopic is Kafka's internal topic of group offsets and metadata.
const offsetsTopic = "__consumer_offsets"

// groupCoordinatedBy returns the first group name prefix-N (N = 0, 1, …)
// whose coordinator, by FindCoordinator, is a node ok accepts, and that
// node. The first request creates the offsets topic.
func (c *cluster) groupCoordinatedBy(adm *kadm.Client, prefix string, ok func(int32) bool) (string, int32) {
	c.t.Helper()
	for i := range 100 {
		name := fmt.Sprintf("%s-%d", prefix, i)
		var node int32
		testkit.EventuallyNil(c.t, 30*time.Second, func() error {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			r := adm.FindGroupCoordinators(ctx, name)[name]
			node = r.NodeID
			return r.Err
		})
		if ok(node) {
			return name, node
		}
	}
	c.t.Fatalf("no group %s-0 to %s-99 is coordinated by a node wanted", prefix, prefix)
	return "", -1
}

// sharingPartition is the first group name prefix-N (N = 0, 1, …) whose
// offsets partition is other's: the same node coordinates both, always.
func sharingPartition(prefix, other string) string {
	for i := 0; ; i++ {
		if name := fmt.Sprintf("%s-%d", prefix, i); offsetsPartition(name, 50) == offsetsPartition(other, 50) {
			return name
		}
	}
}

// waitCoordinator waits until FindCoordinator names a node ok accepts for
// group, and that node is the leader of the group's offsets partition in
// the metadata; it returns the node.
func (c *cluster) waitCoordinator(adm *kadm.Client, group string, ok func(int32) bool, within time.Duration) int32 {
	c.t.Helper()
	p := offsetsPartition(group, 50)
	var node int32
	testkit.EventuallyNil(c.t, within, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		r := adm.FindGroupCoordinators(ctx, group)[group]
		if r.Err != nil {
			return fmt.Errorf("FindCoordinator %s: %w", group, r.Err)
		}
		ps, err := partitions(ctx, adm, offsetsTopic)
		if err != nil {
			return err
		}
		node = r.NodeID
		if leader := ps[p].Leader; !ok(node) || node != leader {
			return fmt.Errorf("group %s: FindCoordinator names node %d, %s[%d] is led by %d; want its leader, and another node",
				group, node, offsetsTopic, p, leader)
		}
		return nil
	})
	return node
}

// electPreferred elects the preferred replica of topic[p], which must be
// node want, as leader (kafka-leader-election.sh --election-type
// preferred), and waits until the metadata shows it leading.
func (c *cluster) electPreferred(adm *kadm.Client, topic string, p, want int32) {
	c.t.Helper()
	testkit.EventuallyNil(c.t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ps, err := partitions(ctx, adm, topic)
		if err != nil {
			return err
		}
		d := ps[p]
		if len(d.Replicas) == 0 || d.Replicas[0] != want {
			c.t.Fatalf("%s[%d]: replicas %v; the preferred replica is not node %d", topic, p, d.Replicas, want)
		}
		if d.Leader == want {
			return nil
		}
		rs, err := adm.ElectLeaders(ctx, kadm.ElectPreferredReplica, kadm.TopicsSet{topic: {p: {}}})
		if err != nil {
			return fmt.Errorf("ElectLeaders %s[%d]: %w", topic, p, err)
		}
		if r := rs[topic][p]; r.Err != nil {
			return fmt.Errorf("ElectLeaders %s[%d]: %w", topic, p, r.Err)
		}
		return fmt.Errorf("%s[%d]: led by %d, preferred leader %d elected", topic, p, d.Leader, want)
	})
}

// offsetsPartition is the offsets partition of group, as Kafka picks it:
// the non-negative Java String.hashCode of the id mod the partition count
// (offsets.topic.num.partitions, 50 by default).
func offsetsPartition(group string, n int32) int32 {
	var h int32
	for _, r := range group { // ASCII names: one UTF-16 unit each
		h = 31*h + r
	}
	return (h & 0x7fffffff) % n
}

// failoverGroup is a group of two in-process members consuming one topic
// with auto-commit, which keeps the account the checks need: what was
// consumed, how often, and the highest commit the coordinator acknowledged
// per partition. A watcher reads the committed offsets through the admin
// API meanwhile, to see that none goes backwards.
type failoverGroup struct {
	t       *testing.T
	name    string
	topic   string
	kip848  bool
	members []*kgo.Client
	adm     *kadm.Client
	stop    atomic.Bool
	wg      sync.WaitGroup

	mu        sync.Mutex
	seen      map[int32]map[int64]int // partition → offset → times consumed
	acked     map[int32]int64         // partition → highest commit acknowledged to a member
	committed map[int32]int64         // partition → last committed offset the watcher read
	dups      int
	bad       []string // violations of the rules above
}

func startFailoverGroup(c *cluster, name, topic string, kip848 bool) *failoverGroup {
	g := &failoverGroup{t: c.t, name: name, topic: topic, kip848: kip848, adm: c.admin(),
		seen: map[int32]map[int64]int{}, acked: map[int32]int64{}, committed: map[int32]int64{}}
	conf := groupConf{Group: name, Topic: topic, KIP848: kip848}
	for i := range 2 {
		opts := append([]kgo.Opt{
			kgo.SeedBrokers(c.addrs()...),
			kgo.DialTimeout(3 * time.Second),
			kgo.MetadataMinAge(100 * time.Millisecond),
			kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
			kgo.FetchMaxWait(500 * time.Millisecond),
		}, conf.opts()...)
		opts = append(opts,
			kgo.AutoCommitInterval(300*time.Millisecond),
			kgo.AutoCommitCallback(g.onCommit),
		)
		cl, err := kgo.NewClient(opts...)
		if err != nil {
			c.t.Fatalf("group %s member %d: %v", name, i, err)
		}
		g.members = append(g.members, cl)
		g.wg.Add(1)
		go g.consume(cl)
	}
	g.wg.Add(1)
	go g.watch()
	c.t.Cleanup(g.close)
	return g
}

// consume is a member's poll loop.
func (g *failoverGroup) consume(cl *kgo.Client) {
	defer g.wg.Done()
	for !g.stop.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := cl.PollRecords(ctx, 1000)
		cancel()
		if fs.IsClientClosed() {
			return
		}
		g.mu.Lock()
		for _, r := range fs.Records() {
			if g.seen[r.Partition] == nil {
				g.seen[r.Partition] = map[int64]int{}
			}
			g.seen[r.Partition][r.Offset]++
			if g.seen[r.Partition][r.Offset] > 1 {
				g.dups++
				if acked := g.acked[r.Partition]; r.Offset < acked {
					g.violate("partition %d: offset %d consumed again after a commit at %d was acknowledged", r.Partition, r.Offset, acked)
				}
			}
		}
		g.mu.Unlock()
	}
}

// onCommit notes the commits the coordinator acknowledged.
func (g *failoverGroup) onCommit(_ *kgo.Client, req *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
	if err != nil {
		return
	}
	asked := map[int32]int64{}
	for _, rt := range req.Topics {
		if rt.Topic == g.topic {
			for _, rp := range rt.Partitions {
				asked[rp.Partition] = rp.Offset
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, rt := range resp.Topics {
		if rt.Topic != g.topic {
			continue
		}
		for _, rp := range rt.Partitions {
			off, ok := asked[rp.Partition]
			if !ok || rp.ErrorCode != 0 {
				continue
			}
			if prev, ok := g.acked[rp.Partition]; ok && off < prev {
				g.violate("partition %d: a commit at %d acknowledged after one at %d", rp.Partition, off, prev)
				continue
			}
			g.acked[rp.Partition] = off
		}
	}
}

// watch reads the group's committed offsets every 200 ms and notes any
// that went backwards. Errors (while the coordinator moves) are skipped.
func (g *failoverGroup) watch() {
	defer g.wg.Done()
	for !g.stop.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := g.adm.FetchOffsets(ctx, g.name)
		cancel()
		if err == nil && resp.Error() == nil {
			g.mu.Lock()
			for p, prev := range g.committed {
				if o, ok := resp.Lookup(g.topic, p); !ok || o.At < prev {
					g.violate("partition %d: committed offset went from %d back to %d (listed: %v)", p, prev, o.At, ok)
				}
			}
			for p, o := range resp[g.topic] {
				g.committed[p] = max(g.committed[p], o.At)
			}
			g.mu.Unlock()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// violate notes a broken rule; the caller holds g.mu.
func (g *failoverGroup) violate(format string, args ...any) {
	if len(g.bad) < 20 {
		g.bad = append(g.bad, fmt.Sprintf(format, args...))
	}
}

// ackedCommits is a copy of the highest acknowledged commit per partition.
func (g *failoverGroup) ackedCommits() map[int32]int64 {
	g.mu.Lock()
	defer g.mu.Unlock()
	return maps.Clone(g.acked)
}

// waitCommitsPast waits until a commit past the offset in past (or any
// commit, for a partition past lacks) was acknowledged on every partition
// the group has consumed from: the group consumes and its coordinator
// takes commits.
func (g *failoverGroup) waitCommitsPast(past map[int32]int64, within time.Duration, what string) {
	g.t.Helper()
	testkit.EventuallyNil(g.t, within, func() error {
		g.mu.Lock()
		defer g.mu.Unlock()
		if len(g.seen) == 0 {
			return fmt.Errorf("%s: group %s consumed nothing yet", what, g.name)
		}
		var behind []string
		for p := range g.seen {
			at, ok := g.acked[p]
			if was, had := past[p]; !ok || had && at <= was {
				behind = append(behind, fmt.Sprintf("partition %d: acknowledged %d (had %v), before %d", p, at, ok, past[p]))
			}
		}
		if len(behind) > 0 {
			slices.Sort(behind)
			return fmt.Errorf("%s: group %s has no new acknowledged commit on %s", what, g.name, strings.Join(behind, "; "))
		}
		return nil
	})
}

// finish waits until the group consumed every partition up to ends and
// committed those ends, stops it, and checks its account: every offset
// below the end consumed (nothing skipped), nothing past it, and none of
// the rules broken. Duplicates are allowed, and logged.
func (g *failoverGroup) finish(adm *kadm.Client, ends map[int32]int64) {
	g.t.Helper()
	short := func() []string {
		g.mu.Lock()
		defer g.mu.Unlock()
		var s []string
		for p, end := range ends {
			var missing int64
			for off := range end {
				if g.seen[p][off] == 0 {
					missing++
				}
			}
			if missing > 0 {
				s = append(s, fmt.Sprintf("partition %d: %d of the %d offsets below the end never consumed", p, missing, end))
			}
		}
		slices.Sort(s)
		return s
	}
	testkit.EventuallyNil(g.t, 30*time.Second, func() error {
		if s := short(); len(s) > 0 {
			return fmt.Errorf("group %s: %s", g.name, strings.Join(s, "; "))
		}
		return nil
	})
	testkit.EventuallyNil(g.t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		resp, err := adm.FetchOffsets(ctx, g.name)
		if err == nil {
			err = resp.Error()
		}
		if err != nil {
			return fmt.Errorf("FetchOffsets %s: %w", g.name, err)
		}
		for p, end := range ends {
			if o, ok := resp.Lookup(g.topic, p); !ok || o.At != end {
				return fmt.Errorf("group %s: partition %d committed at %d, want its end %d", g.name, p, o.At, end)
			}
		}
		return nil
	})
	g.close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for p, offs := range g.seen {
		for off := range offs {
			if off >= ends[p] {
				g.t.Errorf("group %s: consumed partition %d offset %d, past its end %d", g.name, p, off, ends[p])
			}
		}
	}
	for _, b := range g.bad {
		g.t.Errorf("group %s: %s", g.name, b)
	}
	total := 0
	for _, end := range ends {
		total += int(end)
	}
	g.t.Logf("group %s (KIP-848: %v): consumed all %d records, %d of them twice or more", g.name, g.kip848, total, g.dups)
}

// close stops the members and the watcher; it can be called twice.
func (g *failoverGroup) close() {
	if g.stop.Swap(true) {
		return
	}
	g.wg.Wait()
	for _, cl := range g.members {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := cl.LeaveGroupContext(ctx); err != nil && !errors.Is(err, context.DeadlineExceeded) {
			g.t.Logf("group %s: leaving: %v", g.name, err)
		}
		cancel()
		cl.Close()
	}
}
