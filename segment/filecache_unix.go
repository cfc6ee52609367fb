//go:build unix

package segment

import (
	"math"
	"syscall"
)

// nofileLimit is the soft RLIMIT_NOFILE; ok is false when it cannot be read
// or is unlimited.
func nofileLimit() (int64, bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur >= math.MaxInt64 {
		return 0, false
	}
	return int64(rl.Cur), true
}
