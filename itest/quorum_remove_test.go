package itest

import (
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// TestQuorumRemoveDeadVoter: a controller dies for good (kill -9, never
// restarted) and is removed with RemoveRaftVoter, as with Kafka's
// kafka-metadata-quorum remove-controller (KIP-853). Users rely on: the
// removal succeeding while it is down; DescribeQuorum then listing two
// voters; the two electing again after the active one restarts, with the
// metadata intact; and the removed node, started again on its old data
// dir, never counting as a voter again (never active, the voters stay
// two).
func TestQuorumRemoveDeadVoter(t *testing.T) { engines.Run(t, testQuorumRemoveDeadVoter) }

func testQuorumRemoveDeadVoter(t *testing.T, engine string) {
	qc := startQuorumCluster(t, engine, 0)
	all := qc.ids()
	const before = "q5-before"
	first, _ := qc.agreedController(all, -1, 30*time.Second)
	qc.createTopicEventually(first, before, 3, 20*time.Second)

	first, _ = qc.agreedController(all, -1, 30*time.Second)
	deadID := except(all, first)[0]
	p, err := qc.describeQuorum(first)
	if err != nil {
		t.Fatal(err)
	}
	var dir [16]byte
	for _, v := range p.CurrentVoters {
		if v.ReplicaID == deadID {
			dir = v.ReplicaDirectoryID
		}
	}
	if dir == [16]byte{} {
		t.Fatalf("DescribeQuorum names no directory id for voter %d: %+v", deadID, p.CurrentVoters)
	}
	qc.mark(fmt.Sprintf("kill -9 node %d for good", deadID))
	qc.node(deadID).kill9()
	alive := except(all, deadID)

	qc.mark(fmt.Sprintf("RemoveRaftVoter %d", deadID))
	began := time.Now()
	attempts := 0
	testkit.EventuallyNil(t, 60*time.Second, func() error {
		req := kmsg.NewPtrRemoveRaftVoterRequest()
		req.VoterID, req.VoterDirectoryID = deadID, dir
		ctl, err := qc.controllerSeenBy(alive[0])
		if err != nil {
			return err
		}
		resp, err := qc.request(qc.node(ctl).addr(), req, 40*time.Second)
		attempts++
		if err != nil {
			t.Logf("RemoveRaftVoter through node %d after %v: %v", ctl, time.Since(began).Round(time.Millisecond), err)
			return fmt.Errorf("RemoveRaftVoter through node %d: %w", ctl, err)
		}
		r := resp.(*kmsg.RemoveRaftVoterResponse)
		if r.ErrorCode == kerr.VoterNotFound.Code && attempts > 1 {
			// An earlier attempt's client gave up (10 s) while the
			// change went on: it is done, as Kafka answers a retry.
			return nil
		}
		if err := kerr.ErrorForCode(r.ErrorCode); err != nil {
			msg := ""
			if r.ErrorMessage != nil {
				msg = *r.ErrorMessage
			}
			t.Logf("RemoveRaftVoter through node %d after %v: %v: %s", ctl, time.Since(began).Round(time.Millisecond), err, msg)
			return fmt.Errorf("RemoveRaftVoter through node %d: %w: %s", ctl, err, msg)
		}
		return nil
	})
	t.Logf("voter %d, down, removed in %v", deadID, time.Since(began).Round(time.Millisecond))
	twoVoters := func(via int32) error {
		p, err := qc.describeQuorum(via)
		if err != nil {
			return err
		}
		var ids []int32
		for _, v := range p.CurrentVoters {
			ids = append(ids, v.ReplicaID)
		}
		if len(ids) != 2 || ids[0] == deadID || ids[1] == deadID {
			return fmt.Errorf("DescribeQuorum through node %d: voters %v, want %v", via, ids, alive)
		}
		return nil
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error { return twoVoters(alive[0]) })

	// The two elect again once the active controller restarts: the
	// quorum is theirs alone now.
	ctl, _ := qc.agreedController(alive, -1, 30*time.Second)
	qc.mark(fmt.Sprintf("restart node %d, the active controller", ctl))
	qc.node(ctl).stop(30 * time.Second)
	qc.node(ctl).start()
	qc.agreedController(alive, -1, 30*time.Second)
	const after = "q5-after"
	qc.createTopicEventually(alive[0], after, 2, 20*time.Second)
	qc.waitTopicsEverywhere(alive, []string{before, after}, 15*time.Second)

	// The removed node comes back on its old data dir: it is no voter.
	qc.mark(fmt.Sprintf("restart the removed node %d on its old data", deadID))
	qc.node(deadID).start()
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
		if n := qc.activeLines(deadID); n != 0 {
			t.Fatalf("the removed node %d logged %d times that it became the active controller", deadID, n)
		}
		if err := twoVoters(alive[1]); err != nil {
			t.Fatal(err)
		}
	}
	qc.createTopicEventually(alive[1], "q5-last", 2, 20*time.Second)
}
