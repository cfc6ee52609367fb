//go:build unix

package broker

import (
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"
)

// errnoString names an errno as the C headers do (ENOSPC), which is what
// operators search for; the number when it has no name.
func errnoString(e syscall.Errno) string {
	if name := unix.ErrnoName(e); name != "" {
		return name
	}
	return "errno " + strconv.Itoa(int(e))
}
