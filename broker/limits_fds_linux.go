package broker

import (
	"math"
	"os"
	"syscall"
)

// processFDUsage reads the soft RLIMIT_NOFILE and counts /proc/self/fd.
func processFDUsage() (limit, open int64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt64 {
		return 0, 0, false // unknown or unlimited
	}
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0, false
	}
	return int64(rl.Cur), int64(len(ents)), true
}
