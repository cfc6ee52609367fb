package itest

import (
	"fmt"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

// minISR2 is the topic config of every test topic here: acks=all needs
// two in-sync replicas, so a write acknowledged is on at least two nodes.
var minISR2 = map[string]*string{"min.insync.replicas": kadm.StringPtr("2")}

// TestClusterKill9LeaderUnderLoad: round after round, kill -9 the leader
// of a partition while an idempotent acks=all producer writes to every
// partition, wait for the controller to fence it and elect another, and
// restart it on its data dir until it is back in every ISR. Every
// acknowledged record is then read back exactly once, and the replicas of
// each partition hold the same bytes.
//
// Most rounds kill a broker-only node; every fifth kills node 1, which is
// also the one controller: with no quorum yet nothing can be elected
// until it is back, so the round only checks that the restart loses
// nothing.
func TestClusterKill9LeaderUnderLoad(t *testing.T) { engines.Run(t, testClusterKill9LeaderUnderLoad) }

func testClusterKill9LeaderUnderLoad(t *testing.T, engine string) {
	const topic, nparts = "k9", 3
	c, lp := startLoadedCluster(t, engine, 2, topic, nparts)

	rounds := 20
	if testing.Short() {
		rounds = 5
	}
	for r := range rounds {
		ps := c.waitHealthy(topic, nil, 60*time.Second)
		victim, led := pickVictim(ps, r)
		n := c.node(victim)
		killedAt := time.Now()
		n.kill9()
		if victim != 1 {
			for _, p := range led {
				d := c.waitNewLeader(topic, p.Partition, victim, p.LeaderEpoch, 30*time.Second)
				t.Logf("round %d: killed node %d, fenced after %v; partition %d led by %d in epoch %d, seen %v after the kill",
					r, victim, c.fencedAfter(victim, killedAt).Round(time.Millisecond), p.Partition, d.Leader, d.LeaderEpoch,
					time.Since(killedAt).Round(time.Millisecond))
			}
			lp.waitProgress(100, 30*time.Second, fmt.Sprintf("round %d, node %d down", r, victim))
		} else {
			t.Logf("round %d: killed node 1, the controller (leading %d partitions)", r, len(led))
		}
		n.start()
	}
	c.waitHealthy(topic, nil, 60*time.Second)
	lp.waitProgress(100, 30*time.Second, "after the last round")
	lp.stop()
	lp.checkLedger(c.readPartitions(topic, nparts))
	c.checkReplicasIdentical(topic, nparts)
}

// startLoadedCluster starts a cluster, creates topic (RF=3, min ISR 2)
// through node via, and starts a load producer on it, returning once the
// producer's writes are being acknowledged.
func startLoadedCluster(t *testing.T, engine string, via int32, topic string, nparts int32) (*cluster, *loadProducer) {
	t.Helper()
	c := startCluster(t, engine)
	c.createTopic(via, topic, nparts, minISR2)
	lp := startLoad(c, topic, nparts)
	lp.waitProgress(200, 30*time.Second, "before the faults")
	return c, lp
}

// pickVictim chooses the node to kill in round r and the partitions it
// leads: a broker-only node leading a partition (rotating over the
// partitions), or node 1 every fifth round or when it leads them all.
func pickVictim(ps kadm.PartitionDetails, r int) (int32, []kadm.PartitionDetail) {
	sorted := ps.Sorted()
	victim := int32(1)
	if r%5 != 4 {
		for i := range sorted {
			if l := sorted[(r+i)%len(sorted)].Leader; l != 1 {
				victim = l
				break
			}
		}
	}
	var led []kadm.PartitionDetail
	for _, p := range sorted {
		if p.Leader == victim {
			led = append(led, p)
		}
	}
	return victim, led
}

// TestClusterSIGSTOPLeader: a partition leader freezes (SIGSTOP) for longer
// than broker.session.timeout.ms. The controller fences it and elects a
// leader from the ISR; writes go on without it. When it thaws (SIGCONT) it
// learns it lost the leadership, rejoins as a follower, truncating any
// suffix it appended that the new leader does not have, and the ISR is
// whole again; every acknowledged record is there once.
func TestClusterSIGSTOPLeader(t *testing.T) { engines.Run(t, testClusterSIGSTOPLeader) }

func testClusterSIGSTOPLeader(t *testing.T, engine string) {
	const topic, nparts = "frozen", 3
	c, lp := startLoadedCluster(t, engine, 3, topic, nparts)

	ps := c.waitHealthy(topic, nil, 30*time.Second)
	var victim kadm.PartitionDetail
	for _, p := range ps.Sorted() {
		if p.Leader != 1 { // not the controller: freezing it is another test
			victim = p
			break
		}
	}
	n := c.node(victim.Leader)
	n.signal(syscall.SIGSTOP)
	stoppedAt := time.Now()
	d := c.waitNewLeader(topic, victim.Partition, victim.Leader, victim.LeaderEpoch, 30*time.Second)
	t.Logf("node %d stopped; fenced by the controller after %v; partition %d led by %d in epoch %d, ISR %v, seen %v after the stop",
		victim.Leader, c.fencedAfter(victim.Leader, stoppedAt).Round(time.Millisecond), victim.Partition, d.Leader, d.LeaderEpoch, d.ISR,
		time.Since(stoppedAt).Round(time.Millisecond))
	lp.waitProgress(100, 30*time.Second, fmt.Sprintf("node %d stopped", victim.Leader))
	// Well past the session timeout (3 s), so the frozen node's requests
	// and fetches have all gone stale by the time it thaws.
	if wait := 6*time.Second - time.Since(stoppedAt); wait > 0 {
		time.Sleep(wait)
	}
	n.signal(syscall.SIGCONT)
	c.waitHealthy(topic, func(ps kadm.PartitionDetails) error {
		if p := ps[victim.Partition]; p.Leader == victim.Leader || p.LeaderEpoch < d.LeaderEpoch {
			return fmt.Errorf("partition %d: leader %d in epoch %d; want the new leader's epoch %d or later and not node %d",
				victim.Partition, p.Leader, p.LeaderEpoch, d.LeaderEpoch, victim.Leader)
		}
		return nil
	}, 60*time.Second)
	lp.waitProgress(100, 30*time.Second, "after the thaw")
	lp.stop()
	lp.checkLedger(c.readPartitions(topic, nparts))
	c.checkReplicasIdentical(topic, nparts)
}

// TestClusterRollingRestart: every node in turn gets SIGTERM (a controlled
// shutdown, which moves its leaderships away first) and is started again,
// the next only once it is back in every ISR, under acks=all load. The
// producer sees no error (retries are the client's business) and writes
// keep being acknowledged while each node is down; nothing is lost.
func TestClusterRollingRestart(t *testing.T) { engines.Run(t, testClusterRollingRestart) }

func testClusterRollingRestart(t *testing.T, engine string) {
	const topic, nparts = "rolling", 3
	c, lp := startLoadedCluster(t, engine, 1, topic, nparts)

	for _, id := range []int32{2, 3, 1} { // the controller last, as operators do
		n := c.node(id)
		began := time.Now()
		n.stop(30 * time.Second)
		t.Logf("node %d stopped after a controlled shutdown in %v", id, time.Since(began).Round(time.Millisecond))
		// A broker-only node asks the controller; node 1, the controller
		// itself, moves its own leaderships before it stops.
		movedAway := strings.Contains(n.currentLog(), "controlled shutdown: the controller moved") ||
			id == 1 && strings.Contains(n.currentLog(), "controlled shutdown: this node's leaderships moved")
		if !lp.progressed(100, 10*time.Second) {
			t.Fatalf("node %d down: acks=all produce stalled for 10s (%s)", id, lp.summary())
		}
		if !movedAway {
			t.Errorf("node %d's log does not say its controlled shutdown moved its leaderships away", id)
		}
		n.restartAfterShutdown()
		c.waitHealthy(topic, nil, 60*time.Second)
		if nerrs, errs := lp.errors(); nerrs > 0 {
			t.Errorf("after restarting node %d the producer has %d failed records: %v", id, nerrs, errs)
		}
	}
	lp.waitProgress(100, 30*time.Second, "after the last restart")
	lp.stop()
	if nerrs, errs := lp.errors(); nerrs > 0 {
		t.Errorf("the producer saw %d failed records: %v", nerrs, errs)
	}
	lp.checkLedger(c.readPartitions(topic, nparts))
	c.checkReplicasIdentical(topic, nparts)
}
