package pace

import (
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// The kernel may wake a sleeper up to its thread's timer slack late (50 µs
// by default); precise sleeps with the smallest.
func TestPreciseSleepsWithTheSmallestTimerSlack(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	const dflt = 50_000
	if err := unix.Prctl(unix.PR_SET_TIMERSLACK, dflt, 0, 0, 0); err != nil {
		t.Skipf("PR_SET_TIMERSLACK: %v", err)
	}
	precise(10_000) // 10 µs
	slack, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if slack != 1 {
		t.Errorf("timer slack after precise: %d ns, want 1", slack)
	}
}
