//go:build !unix

package broker

import (
	"strconv"
	"syscall"
)

// errnoString is the errno's number: golang.org/x/sys/unix, which names
// them, is for unix only.
func errnoString(e syscall.Errno) string { return "errno " + strconv.Itoa(int(e)) }
