package pace

import (
	"time"

	"golang.org/x/sys/unix"
)

// precise sleeps in nanosleep, which the kernel wakes on a high-resolution
// timer. It holds its thread meanwhile; the runtime hands the thread's P to
// other goroutines as for any blocking system call.
func precise(d time.Duration) {
	if d <= 0 {
		return
	}
	ts := unix.NsecToTimespec(int64(d))
	// The runtime's preemption signal interrupts the sleep; go on with
	// what is left.
	for unix.Nanosleep(&ts, &ts) == unix.EINTR { //revive:disable-line:empty-block
	}
}
