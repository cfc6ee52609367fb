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
)

// After an unclean election the partition is RECOVERING with the new
// leader alone in its ISR (KIP-704). When a follower catches up, the
// leader's first AlterPartition marks the partition RECOVERED, still
// alone; the follower joins with the next one. At no point does the
// controller hold a RECOVERING partition with a follower in its ISR.
func TestUncleanLeaderRecoversBeforeFollowersJoin(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b2, b3 := bs[0], bs[1], bs[2]
	createAssigned(t, ctl, "rec", 2, 3)
	testkit.Eventually(t, 10*time.Second, "broker 3 in the ISR of rec", func() bool {
		p, _ := ctl.metaImage().Partition("rec", 0)
		return len(p.ISR) == 2
	})
	stopLinked(t, ctl, b3)
	stopLinked(t, ctl, b2)
	// Broker 3 comes back as after a crash: no longer eligible, so
	// only an unclean election gives the partition a leader.
	dropCleanShutdownMarker(t, b3)
	b3 = startAgain(t, ctl, b3)
	waitUnfenced(t, ctl, 3)

	res, err := kadm.NewClient(b3.client(t)).ElectLeaders(context.Background(), kadm.ElectLiveReplica, kadm.TopicsSet{"rec": {0: {}}})
	if err != nil {
		t.Fatal(err)
	}
	if r := res["rec"][0]; r.Err != nil {
		t.Fatalf("unclean election of rec-0: %+v", r)
	}
	p, _ := ctl.metaImage().Partition("rec", 0)
	if p.Leader != 3 || !slices.Equal(p.ISR, []int32{3}) || p.LeaderRecoveryState != controller.Recovering {
		t.Fatalf("after the unclean election: leader %d ISR %v state %d; want 3, [3], RECOVERING", p.Leader, p.ISR, p.LeaderRecoveryState)
	}

	// Watch every partition state the controller commits from here on.
	var states []controller.Partition
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		last := int32(-1)
		for {
			if p, ok := ctl.metaImage().Partition("rec", 0); ok && p.PartitionEpoch != last {
				last = p.PartitionEpoch
				states = append(states, p)
			}
			select {
			case <-stop:
				return
			case <-time.After(time.Millisecond):
			}
		}
	}()

	// Broker 2 comes back, follows 3 and catches up.
	startAgain(t, ctl, b2)
	testkit.Eventually(t, 20*time.Second, "broker 2 back in the ISR of rec", func() bool {
		p, _ := ctl.metaImage().Partition("rec", 0)
		return len(p.ISR) == 2
	})
	close(stop)
	<-done
	p, _ = ctl.metaImage().Partition("rec", 0)
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
