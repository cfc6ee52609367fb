package itest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Quorum timing (broker/quorum_role.go): a voter takes over once it has
// seen the lease unrenewed for controller.quorum.fetch.timeout.ms (2 s by
// default, Kafka's), after a random backoff and register reads each under
// a third of a second; the issue's bound for "every node names the new
// controller" is that timeout plus one second.
const (
	quorumTakeoverTimeout = 2000 * time.Millisecond
	quorumFailoverBound   = quorumTakeoverTimeout + time.Second
	// quorumFailoverSlack is what this harness adds to that bound. The
	// nodes run race-enabled binaries (harness_test.go), two to ten
	// times slower, beside the rest of the suite on two cores: takeover
	// rounds of 0.5-1 s more than in a plain build were measured under
	// CI's load (register phases retried when fsyncs slowed). The figure
	// the issue sets is measured where it means something, without the
	// race detector, by perf/quorumbench (make bench); here the bound
	// guards against a gross regression, such as a takeover missed for
	// a whole timeout or a new controller waiting out the metadata ISR's
	// lag time for the dead one. Observing adds a poll round of every
	// surviving node every 1 to 50 ms; the test logs the longest.
	quorumFailoverSlack = 2 * time.Second
)

// topicCreator creates small topics in a loop from a goroutine through a
// client seeded with every node (it finds the controller as any Kafka
// client does, from Metadata's ControllerID), and records which creations
// succeeded and when: each of those is metadata the cluster acknowledged
// and must never lose.
type topicCreator struct {
	adm    *kadm.Client
	prefix string
	cancel context.CancelFunc
	done   chan struct{}

	mu    sync.Mutex
	ok    []string
	okAt  []time.Time
	nerrs int
	errs  []string
}

func startTopicCreator(qc *quorumCluster, prefix string) *topicCreator {
	tc := &topicCreator{prefix: prefix, done: make(chan struct{}),
		adm: kadm.NewClient(qc.client(kgo.RequestTimeoutOverhead(2*time.Second), kgo.RetryTimeout(4*time.Second)))}
	ctx, cancel := context.WithCancel(context.Background())
	tc.cancel = cancel
	go tc.run(ctx)
	return tc
}

func (tc *topicCreator) run(ctx context.Context) {
	defer close(tc.done)
	for i := 0; ctx.Err() == nil; i++ {
		name := fmt.Sprintf("%s-%04d", tc.prefix, i)
		// One partition, one replica: the test is about the metadata,
		// and a few hundred replicas would load the race-enabled nodes.
		cctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		resp, err := tc.adm.CreateTopic(cctx, 1, 1, nil, name)
		cancel()
		if err == nil {
			err = resp.Err
		}
		tc.mu.Lock()
		// TopicAlreadyExists: an earlier attempt of this very creation
		// (a retry inside the client) committed it.
		if err == nil || errors.Is(err, kerr.TopicAlreadyExists) {
			tc.ok = append(tc.ok, name)
			tc.okAt = append(tc.okAt, time.Now())
		} else {
			tc.nerrs++
			if len(tc.errs) < 10 {
				tc.errs = append(tc.errs, fmt.Sprintf("%s: %v", name, err))
			}
		}
		tc.mu.Unlock()
		time.Sleep(50 * time.Millisecond)
	}
}

// succeeded is every topic whose creation succeeded so far.
func (tc *topicCreator) succeeded() []string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	return append([]string(nil), tc.ok...)
}

// firstOKAfter is when the first creation that succeeded after t
// succeeded, false if none did yet.
func (tc *topicCreator) firstOKAfter(t time.Time) (time.Time, bool) {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	for _, at := range tc.okAt {
		if at.After(t) {
			return at, true
		}
	}
	return time.Time{}, false
}

func (tc *topicCreator) stop() {
	tc.cancel()
	<-tc.done
}

func (tc *topicCreator) summary() string {
	tc.mu.Lock()
	defer tc.mu.Unlock()
	s := fmt.Sprintf("%d topics created, %d creations failed", len(tc.ok), tc.nerrs)
	if len(tc.errs) > 0 {
		s += "; first errors: " + strings.Join(tc.errs, "; ")
	}
	return s
}

// createAssigned creates topic with the given replicas per partition (the
// first of each is its preferred leader) through any node, then waits
// until every partition has a leader and a full ISR, and returns the
// partitions.
func (qc *quorumCluster) createAssigned(topic string, replicas [][]int32, configs map[string]*string) kadm.PartitionDetails {
	qc.t.Helper()
	cl := qc.client()
	testkit.EventuallyNil(qc.t, 30*time.Second, func() error {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.TimeoutMillis = 5000
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
		for p, rs := range replicas {
			a := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
			a.Partition, a.Replicas = int32(p), rs
			rt.ReplicaAssignment = append(rt.ReplicaAssignment, a)
		}
		for k, v := range configs {
			c := kmsg.NewCreateTopicsRequestTopicConfig()
			c.Name, c.Value = k, v
			rt.Configs = append(rt.Configs, c)
		}
		req.Topics = append(req.Topics, rt)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		resp, err := req.RequestWith(ctx, cl)
		if err != nil {
			return err
		}
		if err := kerr.ErrorForCode(resp.Topics[0].ErrorCode); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create %s: %w", topic, err)
		}
		return nil
	})
	return qc.waitHealthy(topic, nil, 30*time.Second)
}

// TestQuorumKill9ActiveController: the machine of the active controller
// dies (SIGKILL) while topics are being created and an acks=all producer
// writes to a replicated topic one of whose partitions it leads, in a
// cluster of three voters and three broker-only nodes. Users rely on:
//
//   - another voter taking over within the takeover timeout plus a
//     second, every surviving node (voters and broker-only nodes alike)
//     naming it as the controller in Metadata;
//   - no acknowledged metadata lost: every topic whose CreateTopics
//     succeeded, before or after the kill, exists on every surviving node;
//   - topics can be created again within seconds;
//   - the brokers keep serving: acknowledged records all readable, the
//     producer's writes still acknowledged;
//   - the dead node, restarted on its data, rejoining: it names the new
//     controller and its broker is unfenced (back in every ISR).
func TestQuorumKill9ActiveController(t *testing.T) {
	engines.Run(t, testQuorumKill9ActiveController)
}

func testQuorumKill9ActiveController(t *testing.T, engine string) {
	const topic, nparts = "qload", 6
	qc := startQuorumCluster(t, engine, 3)
	all := qc.ids()
	first, _ := qc.agreedController(all, -1, 30*time.Second)
	oldEpoch := qc.waitQuorumLeader(all[len(all)-1], first, 0, 10*time.Second)

	// Partition p's replicas are three consecutive nodes starting at
	// first+p: partition 0 is led by the active controller, so its kill
	// moves a leadership as well as the controller.
	var replicas [][]int32
	for p := range int32(nparts) {
		var rs []int32
		for i := range int32(3) {
			rs = append(rs, (first-1+p+i)%int32(len(all))+1)
		}
		replicas = append(replicas, rs)
	}
	if l := qc.createAssigned(topic, replicas, minISR2)[0].Leader; l != first {
		t.Fatalf("partition 0 is led by %d; want the active controller %d", l, first)
	}
	lp := startLoad(qc.cluster, topic, nparts)
	lp.waitProgress(200, 30*time.Second, "before the kill")
	tc := startTopicCreator(qc, "q1")
	defer tc.stop()
	testkit.Eventually(t, 20*time.Second, "five topics created before the kill", func() bool { return len(tc.succeeded()) >= 5 })

	// Read again: on a loaded machine a lease can lapse and another voter
	// take over before the kill.
	first, _ = qc.agreedController(all, -1, 30*time.Second)
	qc.mark(fmt.Sprintf("kill -9 node %d, the active controller", first))
	killedAt := time.Now()
	qc.node(first).kill9()
	survivors := except(all, first)
	second, firstSeen, longest := qc.namedAfter(survivors, first, killedAt, 30*time.Second)
	took := time.Since(killedAt)
	qc.mark(fmt.Sprintf("every survivor names node %d", second))
	t.Logf("killed the active controller %d: node %d named by every survivor after %v (bound %v + slack %v; longest poll round %v); per node, first named after %v",
		first, second, took.Round(time.Millisecond), quorumFailoverBound, quorumFailoverSlack, longest.Round(time.Millisecond), firstSeen)
	if second < 1 || second > quorumVoters {
		t.Errorf("the survivors name node %d the controller; want one of the voters", second)
	}
	if took > quorumFailoverBound+quorumFailoverSlack {
		t.Errorf("the survivors named the new controller %v after the kill; want within %v + %v", took, quorumFailoverBound, quorumFailoverSlack)
	}
	var createdAt time.Time
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		var ok bool
		if createdAt, ok = tc.firstOKAfter(killedAt); !ok {
			return fmt.Errorf("no topic created since the kill: %s", tc.summary())
		}
		return nil
	})
	t.Logf("first topic created %v after the kill", createdAt.Sub(killedAt).Round(time.Millisecond))

	lp.waitProgress(200, 30*time.Second, fmt.Sprintf("controller %d killed", first))
	testkit.Eventually(t, 20*time.Second, "another topic created after the first one since the kill", func() bool {
		at, _ := tc.firstOKAfter(createdAt.Add(250 * time.Millisecond))
		return !at.IsZero()
	})
	tc.stop()
	t.Logf("topic creator: %s", tc.summary())
	created := tc.succeeded()
	qc.waitTopicsEverywhere(survivors, created, 15*time.Second)
	qc.waitQuorumLeader(survivors[0], second, oldEpoch, 10*time.Second)

	lp.stop()
	lp.checkLedger(qc.readPartitions(topic, nparts))

	// The dead node comes back on its data: it follows the new
	// controller, and its broker unfenced rejoins every ISR.
	qc.node(first).start()
	if again, _ := qc.agreedController(all, -1, 30*time.Second); again != second {
		t.Errorf("after the restart the nodes name controller %d; want %d still", again, second)
	}
	qc.waitHealthy(topic, nil, 60*time.Second)
	qc.waitTopicsEverywhere([]int32{first}, created, 15*time.Second)

	// The topics outgrew the checkpoint interval many times: the
	// controllers checkpointed and the surviving voters trimmed their
	// logs (the killed one may have died before its first trim, which
	// waits a second after a checkpoint commits).
	for _, id := range except(all[:quorumVoters], first) {
		if log := qc.node(id).allLogs(); !strings.Contains(log, `msg="metadata log trimmed"`) {
			t.Errorf("node %d never trimmed its metadata log", id)
		}
	}
	checkpoints := 0
	for _, id := range all[:quorumVoters] {
		checkpoints += strings.Count(qc.node(id).allLogs(), `msg="metadata checkpoint committed"`)
	}
	t.Logf("%d metadata checkpoints committed", checkpoints)
	if checkpoints < 2 {
		t.Errorf("%d metadata checkpoints committed; want several", checkpoints)
	}
}

// TestQuorumSIGSTOPActiveController: the active controller freezes
// (SIGSTOP: a long GC pause, a stalled VM) for well past its lease.
// Users rely on: another voter becoming active and topics being creatable
// while it is frozen; when it thaws (SIGCONT) it is deposed, not a second
// controller: a CreateTopics that reached its CONTROLLER listener while it
// was frozen fails, it names the new controller within seconds, its
// CONTROLLER listener answers NOT_CONTROLLER, and every node ends up with
// the same topics, none of them committed by the deposed controller.
func TestQuorumSIGSTOPActiveController(t *testing.T) {
	engines.Run(t, testQuorumSIGSTOPActiveController)
}

func testQuorumSIGSTOPActiveController(t *testing.T, engine string) {
	qc := startQuorumCluster(t, engine, 0)
	all := qc.ids()
	first, _ := qc.agreedController(all, -1, 30*time.Second)
	qc.createTopicEventually(first, "q2-before", 1, 20*time.Second)
	// One connection to its CONTROLLER listener, open before the stop, so
	// a request on it is read as soon as the process runs again.
	if _, err := qc.request(qc.ctlAddr(first), kmsg.NewPtrApiVersionsRequest(), 5*time.Second); err != nil {
		t.Fatalf("ApiVersions to node %d's CONTROLLER listener: %v", first, err)
	}

	first, _ = qc.agreedController(all, -1, 30*time.Second) // still the one?
	frozen := qc.node(first)
	qc.mark(fmt.Sprintf("SIGSTOP node %d, the active controller", first))
	frozen.signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	others := except(all, first)
	second, took := qc.agreedController(others, first, 20*time.Second)
	t.Logf("froze the active controller %d: node %d named by the others after %v", first, second, took.Round(time.Millisecond))
	// As a Kafka client creates a topic: to the ControllerID the
	// survivors' Metadata names.
	qc.createTopicByClient(others, "q2-during-client", 10*time.Second)
	t.Logf("a client created a topic %v after the freeze", time.Since(stoppedAt).Round(time.Millisecond))
	// Through the voter that is not active: it forwards to the new
	// controller, not to the frozen one.
	other := except(others, second)[0]
	qc.createTopicEventually(other, "q2-during-forwarded", 1, 10*time.Second)
	t.Logf("a topic created through node %d (forwarded) %v after the freeze", other, time.Since(stoppedAt).Round(time.Millisecond))
	during := []string{"q2-during-client", "q2-during-forwarded"}

	// A CreateTopics waiting on the frozen node's CONTROLLER listener: it
	// is the first thing the node reads when it thaws.
	queued := make(chan error, 1)
	go func() { queued <- qc.createTopicAt(qc.ctlAddr(first), "q2-queued", 1, 3, 10*time.Second) }()
	if wait := 4*time.Second - time.Since(stoppedAt); wait > 0 {
		time.Sleep(wait)
	}
	qc.mark(fmt.Sprintf("SIGCONT node %d", first))
	frozen.signal(syscall.SIGCONT)
	thawedAt := time.Now()
	if err := <-queued; err == nil {
		t.Errorf("a CreateTopics queued at the frozen controller's CONTROLLER listener succeeded after the thaw")
	} else {
		t.Logf("the CreateTopics queued at node %d's CONTROLLER listener failed after the thaw: %v", first, err)
	}
	var named int32
	testkit.EventuallyNil(t, 5*time.Second, func() error {
		var err error
		if named, err = qc.controllerSeenBy(first); err == nil && (named == first || named < 0) {
			err = fmt.Errorf("node %d still names controller %d", first, named)
		}
		return err
	})
	t.Logf("thawed node %d names controller %d after %v", first, named, time.Since(thawedAt).Round(time.Millisecond))
	if err := qc.createTopicAt(qc.ctlAddr(first), "q2-deposed", 1, 3, 5*time.Second); !errors.Is(err, kerr.NotController) {
		t.Errorf("CreateTopics at the deposed controller %d's CONTROLLER listener: %v; want NOT_CONTROLLER", first, err)
	}

	if again, _ := qc.agreedController(all, -1, 15*time.Second); again != second {
		t.Errorf("after the thaw every node names controller %d; want %d", again, second)
	}
	qc.createTopicEventually(first, "q2-after", 1, 10*time.Second)
	topics := qc.waitSameTopics(all, 15*time.Second)
	for _, want := range append(during, "q2-before", "q2-after") {
		if !topics[want] {
			t.Errorf("topic %s, created while or after the controller was frozen, is missing: every node lists %v", want, sortedKeys(topics))
		}
	}
	for _, never := range []string{"q2-queued", "q2-deposed"} {
		if topics[never] {
			t.Errorf("topic %s, sent to the deposed controller, exists", never)
		}
	}
}
