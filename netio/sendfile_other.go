//go:build !linux

package netio

import (
	"errors"
	"syscall"
)

var errSendfileUnsupported = errors.New("netio: sendfile unsupported")

// sendFile is only implemented on Linux; elsewhere file ranges are copied.
func sendFile(raw syscall.RawConn, fd uintptr, off, n int64) (int64, error) {
	return 0, errSendfileUnsupported
}
