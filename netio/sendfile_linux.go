package netio

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// maxSendfileChunk keeps each sendfile call below Linux's per-call limit
// (0x7ffff000 bytes).
const maxSendfileChunk = 1 << 30

// errSendfileUnsupported marks sendfile failures that mean "this pair of
// descriptors cannot do sendfile", after which copying is still possible.
var errSendfileUnsupported = errors.New("netio: sendfile unsupported")

// sendFile writes n bytes of file descriptor fd, starting at off, to the
// socket behind raw. It passes an explicit offset, so the file's shared
// offset is neither used nor moved and concurrent sends of one file are safe.
// It runs inside raw.Write: returning false on EAGAIN parks the goroutine in
// the netpoller until the socket is writable (honouring the write deadline),
// and partial writes simply continue from where they stopped.
func sendFile(raw syscall.RawConn, fd uintptr, off, n int64) (int64, error) {
	var written int64
	var serr error
	err := raw.Write(func(sock uintptr) bool {
		k, err := sendfileSome(int(sock), int(fd), off+written, n-written)
		written += k
		if errors.Is(err, unix.EAGAIN) {
			return false
		}
		serr = err
		return true
	})
	if serr != nil {
		return written, serr
	}
	return written, err
}

// sendfileSome sends up to n bytes of fd from off to sock until all went
// out or the socket would block (unix.EAGAIN, with what went out so far).
// Both engines use it: std inside RawConn.Write, the uring processors
// directly on their non-blocking sockets.
func sendfileSome(sock, fd int, off, n int64) (int64, error) {
	var written int64
	for written < n {
		pos := off + written
		k, e := unix.Sendfile(sock, fd, &pos, int(min(n-written, maxSendfileChunk)))
		if k > 0 {
			written += int64(k)
		}
		switch {
		case e == unix.EINTR:
			continue
		case e == unix.EAGAIN:
			return written, unix.EAGAIN
		case e == unix.EINVAL || e == unix.ENOSYS || e == unix.EOPNOTSUPP:
			return written, fmt.Errorf("%w: %w", errSendfileUnsupported, os.NewSyscallError("sendfile", e))
		case e != nil:
			return written, os.NewSyscallError("sendfile", e)
		case k == 0:
			// End of file before the end of the range: the file shrank
			// under us and the announced frame cannot be completed.
			return written, fmt.Errorf("netio: sendfile at %d: %w", pos, io.ErrUnexpectedEOF)
		}
	}
	return written, nil
}
