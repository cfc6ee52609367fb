package broker

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replicamgr"
)

// uncleanlyElected makes broker 3 the leader of topic-0 on replicas [2 3]
// by an unclean election: both stop, 3 comes back as after a crash (no
// longer eligible), 2 stays down. It returns the three brokers (b2
// stopped, b3 the new process) and the partition as the election left it.
func uncleanlyElected(t *testing.T, topic string) (ctl, b2, b3 *testBroker, elected controller.Partition) {
	t.Helper()
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b2, b3 = bs[0], bs[1], bs[2]
	createAssigned(t, ctl, topic, 2, 3)
	testkit.Eventually(t, 10*time.Second, "broker 3 in the ISR of "+topic, func() bool {
		p, _ := ctl.metaImage().Partition(topic, 0)
		return len(p.ISR) == 2
	})
	stopLinked(t, ctl, b3)
	stopLinked(t, ctl, b2)
	dropCleanShutdownMarker(t, b3)
	b3 = startAgain(t, ctl, b3)
	waitUnfenced(t, ctl, 3)

	watch := watchPartition(t, ctl, topic)
	res, err := kadm.NewClient(b3.client(t)).ElectLeaders(context.Background(), kadm.ElectLiveReplica, kadm.TopicsSet{topic: {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res[topic][0]; r.Err != nil {
		t.Fatalf("unclean election of %s-0: %+v", topic, r)
	}
	testkit.Eventually(t, 10*time.Second, "the election in the controller's metadata", func() bool {
		p, _ := ctl.metaImage().Partition(topic, 0)
		return p.Leader == 3
	})
	for _, p := range watch() {
		if p.Leader == 3 {
			elected = p
			break
		}
	}
	if !slices.Equal(elected.ISR, []int32{3}) || elected.LeaderRecoveryState != controller.Recovering {
		t.Fatalf("the unclean election left leader %d ISR %v state %d; want 3, [3], RECOVERING", elected.Leader, elected.ISR, elected.LeaderRecoveryState)
	}
	return ctl, b2, b3, elected
}

// watchPartition records every state of topic-0 the controller commits
// until the returned function is called, which returns them. It follows
// the controller's metadata log batch by batch through an Observer, as a
// broker does, so no state is missed however briefly it lasted: sampling
// the image every millisecond missed a RECOVERED-alone state on a loaded
// machine, the follower's AlterPartition committed right after it.
func watchPartition(t *testing.T, ctl *testBroker, topic string) func() []controller.Partition {
	store, ok := ctl.meta.(*controller.Store)
	if !ok {
		t.Fatalf("watchPartition: node %d is not the controller", ctl.cfg.NodeID)
	}
	snap, _, err := store.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	obs, err := controller.NewObserver(snap, ctl.cfg.NodeID)
	if err != nil {
		t.Fatal(err)
	}
	var states []controller.Partition
	var followErr error
	last := int32(-1)
	catchUp := func() {
		for followErr == nil {
			batches, err := store.BatchesFrom(obs.Next(), 1<<20)
			if err != nil || len(batches) == 0 {
				followErr = err
				return
			}
			for _, b := range batches {
				if err := obs.Apply(b); err != nil {
					followErr = err
					return
				}
				if p, ok := obs.Image().Partition(topic, 0); ok && p.PartitionEpoch != last {
					last = p.PartitionEpoch
					states = append(states, p)
				}
			}
		}
	}
	catchUp()
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-stop:
				catchUp() // what was committed before the caller stopped
				return
			case <-time.After(5 * time.Millisecond):
				catchUp()
			}
		}
	}()
	return func() []controller.Partition {
		close(stop)
		<-done
		if followErr != nil {
			t.Fatalf("watchPartition: following the controller's log: %v", followErr)
		}
		return states
	}
}

// After an unclean election the partition is RECOVERING with the new
// leader alone in its ISR (KIP-704). When a follower catches up, the
// leader's first AlterPartition marks the partition RECOVERED, still
// alone; the follower joins with the next one. At no point does the
// controller hold a RECOVERING partition with a follower in its ISR.
func TestUncleanLeaderRecoversBeforeFollowersJoin(t *testing.T) {
	ctl, b2, _, _ := uncleanlyElected(t, "rec")
	watch := watchPartition(t, ctl, "rec")

	// Broker 2 comes back, follows 3 and catches up.
	startAgain(t, ctl, b2)
	testkit.Eventually(t, 20*time.Second, "broker 2 back in the ISR of rec", func() bool {
		p, _ := ctl.metaImage().Partition("rec", 0)
		return len(p.ISR) == 2
	})
	states := watch()
	p, _ := ctl.metaImage().Partition("rec", 0)
	if p.LeaderRecoveryState != controller.Recovered || p.Leader != 3 {
		t.Fatalf("with the follower back: leader %d ISR %v state %d; want 3, RECOVERED", p.Leader, p.ISR, p.LeaderRecoveryState)
	}
	recovered := false
	for _, s := range states {
		if s.LeaderRecoveryState == controller.Recovering && len(s.ISR) > 1 {
			t.Errorf("RECOVERING with ISR %v at partition epoch %d", s.ISR, s.PartitionEpoch)
		}
		if s.LeaderRecoveryState == controller.Recovered && slices.Equal(s.ISR, []int32{3}) {
			recovered = true
		}
	}
	if !recovered {
		t.Errorf("the partition never was RECOVERED with the leader alone before the follower joined: %+v", states)
	}
}

// dropCleanShutdownMarker makes tb's next start look like one after a
// crash: its clean-shutdown marker, and the epoch in it, are gone.
func dropCleanShutdownMarker(t *testing.T, tb *testBroker) {
	t.Helper()
	for _, dir := range tb.cfg.LogDirs {
		if err := os.Remove(filepath.Join(dir, cleanShutdownFile)); err != nil {
			t.Fatal(err)
		}
	}
}

// The leader of a partition an unclean election left RECOVERING marks it
// RECOVERED as it takes the leadership, with no follower to add.
func TestUncleanLeaderMarksRecoveredOnTakingLeadership(t *testing.T) {
	ctl, _, b3, before := uncleanlyElected(t, "alone")
	// The election went to the controller: wait until broker 3's own
	// copy has it, as the image that elects it would when applied.
	testkit.Eventually(t, 10*time.Second, "broker 3 to see its election", func() bool {
		p, _ := b3.metaImage().Partition("alone", 0)
		return p.Leader == 3 && p.LeaderRecoveryState == controller.Recovering
	})
	b3.recoverElected(context.Background(), []replicamgr.TopicPartition{{Topic: "alone", Partition: 0}, {Topic: "missing", Partition: 0}})
	testkit.Eventually(t, 10*time.Second, "alone-0 RECOVERED", func() bool {
		p, _ := ctl.metaImage().Partition("alone", 0)
		return p.LeaderRecoveryState == controller.Recovered
	})
	p, _ := ctl.metaImage().Partition("alone", 0)
	if p.Leader != 3 || !slices.Equal(p.ISR, []int32{3}) || p.LeaderEpoch != before.LeaderEpoch || p.PartitionEpoch != before.PartitionEpoch+1 {
		t.Errorf("recovered: leader %d ISR %v epochs %d/%d; want 3, [3], %d/%d", p.Leader, p.ISR, p.LeaderEpoch, p.PartitionEpoch,
			before.LeaderEpoch, before.PartitionEpoch+1)
	}
	// Nothing more to do: a second call sends nothing.
	b3.recoverElected(context.Background(), []replicamgr.TopicPartition{{Topic: "alone", Partition: 0}})
	if again, _ := ctl.metaImage().Partition("alone", 0); again.PartitionEpoch != p.PartitionEpoch {
		t.Errorf("a recovered partition changed again: epochs %d/%d", again.LeaderEpoch, again.PartitionEpoch)
	}
}
