package itest

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

// quorumNoMajorityFor is how long the tests below watch a quorum without
// a majority for a controller that must not appear: over five takeover
// timeouts, so a takeover that wrongly could happen would have.
func quorumNoMajorityFor() time.Duration {
	if testing.Short() {
		return 5 * time.Second
	}
	return 8 * time.Second
}

// expectNoController watches the running voters of ids for the time: no
// CreateTopics through via succeeds, no node names one of ids as the
// controller and none logs that it became active. It returns how many
// creations were tried.
func (qc *quorumCluster) expectNoController(ids []int32, via int32, prefix string, d time.Duration) int {
	qc.t.Helper()
	lines := map[int32]int{}
	for _, id := range ids {
		lines[id] = qc.activeLines(id)
	}
	tries := 0
	for end := time.Now().Add(d); time.Now().Before(end); {
		name := fmt.Sprintf("%s-%d", prefix, tries)
		tries++
		if err := qc.createTopicAt(qc.node(via).addr(), name, 1, 3, 2*time.Second); err == nil {
			qc.t.Fatalf("CreateTopics %s through node %d succeeded with no majority of voters running", name, via)
		}
		for id, named := range qc.controllersSeen(ids) {
			if slices.Contains(ids, named) {
				qc.t.Fatalf("node %d names node %d the active controller with no majority of voters running", id, named)
			}
		}
		for _, id := range ids {
			if n := qc.activeLines(id); n != lines[id] {
				qc.t.Fatalf("node %d logged that it became the active controller with no majority of voters running", id)
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	return tries
}

// TestQuorumKill9TwoVoters: two of the three voters die. Users rely on
// the survivor not carrying on alone (no split brain: a partitioned
// minority must never decide metadata): metadata changes stop, the
// survivor never names itself the controller, and its copy of the
// metadata still lists every topic. Restarting one dead voter restores a
// majority: a controller again, topics creatable, and every topic
// created before the kills still there.
func TestQuorumKill9TwoVoters(t *testing.T) { engines.Run(t, testQuorumKill9TwoVoters) }

func testQuorumKill9TwoVoters(t *testing.T, engine string) {
	qc := startQuorumCluster(t, engine, 0)
	all := qc.ids()
	var before []string
	for _, id := range all {
		name := fmt.Sprintf("q3-before-%d", id)
		qc.createTopicEventually(id, name, 3, 20*time.Second)
		before = append(before, name)
	}
	qc.waitTopicsEverywhere(all, before, 15*time.Second)
	// The survivor is not the active controller: it must not take over
	// with one voter of three.
	first, _ := qc.agreedController(all, -1, 30*time.Second)
	survivor := except(all, first)[0]
	other := except(all, first, survivor)[0]
	qc.mark(fmt.Sprintf("kill -9 nodes %d (the active controller) and %d", first, other))
	qc.node(first).kill9()
	qc.node(other).kill9()
	killedAt := time.Now()
	tries := qc.expectNoController([]int32{survivor}, survivor, "q3-stalled", quorumNoMajorityFor())
	t.Logf("nodes %d (the active controller) and %d killed: %d creations through node %d over %v all failed",
		first, other, tries, survivor, time.Since(killedAt).Round(time.Millisecond))
	qc.waitTopicsEverywhere([]int32{survivor}, before, 5*time.Second)

	qc.mark(fmt.Sprintf("restart node %d", first))
	restartedAt := time.Now()
	qc.node(first).start()
	running := []int32{survivor, first}
	ctl, _ := qc.agreedController(running, -1, 30*time.Second)
	took := qc.createTopicEventually(survivor, "q3-after", 1, 20*time.Second)
	t.Logf("node %d restarted: node %d the controller, a topic created %v after the restart (%v of retries)",
		first, ctl, time.Since(restartedAt).Round(time.Millisecond), took.Round(time.Millisecond))
	qc.waitTopicsEverywhere(running, append(before, "q3-after"), 15*time.Second)
}

// TestQuorumWipedVoter: a voter's disk is lost (its data dir deleted) and
// the node is started again, empty. Users rely on it starting and serving
// as a broker (it learns the voter set from the others and says it is not
// a configured voter), but never counting as the voter it replaced: it is
// never active, and with only it and one original voter running there is
// no controller at all (a fresh acceptor must not make up a majority with
// state it lost). Restarting the dead original voter brings a controller
// back with every topic.
func TestQuorumWipedVoter(t *testing.T) { engines.Run(t, testQuorumWipedVoter) }

func testQuorumWipedVoter(t *testing.T, engine string) {
	qc := startQuorumCluster(t, engine, 0)
	all := qc.ids()
	first, _ := qc.agreedController(all, -1, 30*time.Second)
	const topic = "q4-before"
	qc.createTopicEventually(first, topic, 3, 20*time.Second)
	qc.waitHealthy(topic, nil, 30*time.Second)

	first, _ = qc.agreedController(all, -1, 30*time.Second)
	wipedID := except(all, first)[0]
	wiped := qc.node(wipedID)
	qc.mark(fmt.Sprintf("kill -9 node %d and wipe its data dir", wipedID))
	wiped.kill9()
	if err := os.RemoveAll(wiped.dataDir); err != nil {
		t.Fatal(err)
	}
	wiped.start()
	if !strings.Contains(wiped.currentLog(), "this incarnation is not in its proposers' configuration") {
		t.Errorf("node %d, started on an empty data dir, does not log that it is not a configured voter", wipedID)
	}
	// Its broker registers and is unfenced: its empty replica of the
	// topic catches up and rejoins the ISR.
	qc.waitHealthy(topic, nil, 60*time.Second)
	if ctl, _ := qc.agreedController(all, -1, 15*time.Second); ctl == wipedID {
		t.Errorf("with the wiped node back every node names it, node %d, the controller", ctl)
	}

	first, _ = qc.agreedController(all, -1, 30*time.Second)
	if first == wipedID {
		t.Fatalf("the wiped node %d became the active controller", wipedID)
	}
	original := except(all, first, wipedID)[0]
	qc.mark(fmt.Sprintf("kill -9 node %d, the active controller", first))
	qc.node(first).kill9()
	killedAt := time.Now()
	tries := qc.expectNoController([]int32{wipedID, original}, original, "q4-stalled", quorumNoMajorityFor())
	t.Logf("active controller %d killed: with the wiped node %d and node %d running, %d creations over %v all failed",
		first, wipedID, original, tries, time.Since(killedAt).Round(time.Millisecond))

	qc.mark(fmt.Sprintf("restart node %d", first))
	qc.node(first).start()
	ctl, _ := qc.agreedController(all, -1, 30*time.Second)
	if ctl == wipedID {
		t.Errorf("the wiped node %d became the active controller", wipedID)
	}
	qc.createTopicEventually(wipedID, "q4-after", 1, 20*time.Second)
	qc.waitTopicsEverywhere(all, []string{topic, "q4-after"}, 15*time.Second)
	if n := qc.activeLines(wipedID); n != 0 {
		t.Errorf("the wiped node %d logged %d times that it became the active controller", wipedID, n)
	}
}
