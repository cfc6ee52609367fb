package broker

import (
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// A broker that shut down cleanly registers again with the epoch it
// stopped at, and the controller keeps it an eligible leader (ELR) of the
// partitions it was one of (KIP-966). One whose marker is gone (a crash)
// leaves the ELR as it registers.
func TestCleanRestartStaysEligible(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b3 := bs[0], bs[2]
	createAssigned(t, ctl, "cr", 2, 3)
	inISR := func() bool {
		p, _ := ctl.metaImage().Partition("cr", 0)
		return len(p.ISR) == 2
	}
	testkit.Eventually(t, 10*time.Second, "broker 3 in the ISR of cr", inISR)
	for _, clean := range []bool{true, false} {
		// min.insync.replicas=2: broker 3 leaving the ISR stays eligible.
		stopLinked(t, ctl, b3)
		if p, _ := ctl.metaImage().Partition("cr", 0); !slices.Equal(p.ELR, []int32{3}) {
			t.Fatalf("after broker 3 stopped: ISR %v ELR %v; want ELR [3]", p.ISR, p.ELR)
		}
		if !clean {
			dropCleanShutdownMarker(t, b3)
		}
		watch := watchPartition(t, ctl, "cr")
		b3 = startAgain(t, ctl, b3)
		testkit.Eventually(t, 20*time.Second, "broker 3 back in the ISR of cr", inISR)
		dropped := false
		for _, p := range watch() {
			if !slices.Contains(p.ELR, 3) && !slices.Contains(p.ISR, 3) {
				dropped = true
			}
		}
		if dropped == clean {
			t.Errorf("clean=%v: broker 3 left the ELR before rejoining the ISR: %v, want %v", clean, dropped, !clean)
		}
	}
}
