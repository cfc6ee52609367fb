//go:build linux

package netio

import (
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Direct sends.
//
// Handing every response to the ring costs a round trip per request: inbox,
// eventfd write, the ring waking up, a SENDMSG and its completion. Most
// responses are a few bytes going to a socket with plenty of buffer space,
// so a processor goroutine whose connection has nothing queued at the ring
// writes a byte-only response itself, with one non-blocking sendmsg(2).
// When that writes everything, the processor accounts the response exactly
// as the ring would (stats, Release) and only tells the ring that a slot is
// free (msgSent). That message does not even wake the ring unless the ring
// waits for the slot (a full window, the end of the stream: needWake);
// otherwise the ring picks it up at its next wake-up, before checking idle
// timeouts. In every other case (EAGAIN, a short write, an error, a file
// range, CloseAfter) the response and the number of bytes already written
// go to the ring as before, which finishes the write or reports the error.
//
// Ownership of the socket's output: only the processor adds responses, so
// "queued == 0" (every response handed to the ring was written or dropped)
// means the ring has nothing to write and will not start anything until the
// processor posts again; the processor then writes without racing the ring
// and responses stay in order. The descriptor stays open while the
// processor runs: finalize waits for its msgProcDone.

// uDirect is a connection's direct-send state.
type uDirect struct {
	// Shared between the ring and the processor.
	queued   atomic.Int32 // responses posted to the ring, not yet written or dropped
	off      atomic.Bool  // set by the ring: no more direct writes (peer gone, closing)
	needWake atomic.Bool  // set by the ring: it waits for freed slots; read under r.mu

	// Processor only.
	hdr  [responseHeaderLen]byte
	iovs []syscall.Iovec
	msg  syscall.Msghdr
}

// deliver passes the handler's response for slot s on: written directly
// when possible, else to the ring.
func (c *uConn) deliver(s *uSlot, resp *Response) {
	d := &c.direct
	o := c.r.e.cfg.Observer
	if resp == nil && o != nil && !s.t.end.IsZero() {
		s.t.report(o, s.key, s.version, time.Time{})
	}
	var sent int64
	if resp != nil {
		resp.inlineSmall()
	}
	if resp != nil && d.queued.Load() == 0 && !d.off.Load() && !c.killed.Load() && directable(resp) {
		n, done := c.writeDirect(s, resp)
		if done {
			c.r.e.st.responsesOut.Add(1)
			c.release(resp)
			now := time.Now()
			if o != nil {
				s.t.report(o, s.key, s.version, now)
			}
			c.r.post(ringMsg{kind: msgSent, c: c, s: s, at: now})
			return
		}
		sent = n
	}
	d.queued.Add(1)
	c.r.post(ringMsg{kind: msgResult, c: c, s: s, resp: resp, sent: sent})
}

// directable reports a response the processor may try to write itself:
// byte parts and file ranges with a descriptor (sent with sendfile(2), still
// zero-copy). A small fetch answer then costs one sendmsg and one sendfile
// from the processor instead of a trip through the ring and two splices.
func directable(resp *Response) bool {
	if resp.CloseAfter || len(resp.parts) >= maxIovecs {
		return false
	}
	for _, p := range resp.parts {
		if p.File == nil {
			continue
		}
		if _, ok := p.File.(FdSource); !ok {
			return false
		}
	}
	return true
}

// writeDirect writes as much of resp as the socket takes without blocking
// and reports how many bytes (header included) went out and whether that
// is all of it. It counts what it wrote in the engine's stats. Errors are
// left for the ring to meet again and report.
func (c *uConn) writeDirect(s *uSlot, resp *Response) (int64, bool) {
	d := &c.direct
	hdr, err := putResponseHeader(&d.hdr, s.corr, FlexibleResponse(s.key, s.version), resp.Len())
	if err != nil {
		return 0, false
	}
	st := &c.r.e.st
	d.iovs = append(d.iovs[:0], syscall.Iovec{Base: &hdr[0], Len: uint64(len(hdr))})
	pending := int64(len(hdr))
	var sent int64
	defer clear(d.iovs) // do not pin response memory until the next write
	for i := 0; ; i++ {
		if i == len(resp.parts) || resp.parts[i].File != nil {
			if pending > 0 {
				n := c.sendmsgDirect()
				sent += n
				st.bytesCopied.Add(n)
				if n < pending {
					return sent, false
				}
				d.iovs, pending = d.iovs[:0], 0
			}
			if i == len(resp.parts) {
				return sent, true
			}
			p := resp.parts[i]
			// The socket is non-blocking (adopt set it so): this stops
			// where it would block, fails, or the file ends early, and
			// the ring then finishes the write or reports the error.
			n, _ := sendfileSome(c.fd, int(p.File.(FdSource).Fd()), p.Off, p.Len)
			sent += n
			st.bytesZeroCopy.Add(n)
			if n < p.Len {
				return sent, false
			}
			continue
		}
		b := resp.parts[i].Bytes
		d.iovs = append(d.iovs, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
		pending += int64(len(b))
	}
}

// sendmsgDirect writes d.iovs with one non-blocking sendmsg and returns the
// bytes written (0 on EAGAIN or an error).
func (c *uConn) sendmsgDirect() int64 {
	d := &c.direct
	d.msg = syscall.Msghdr{Iov: &d.iovs[0], Iovlen: uint64(len(d.iovs))}
	for {
		r, _, e := unix.Syscall(unix.SYS_SENDMSG, uintptr(c.fd), uintptr(unsafe.Pointer(&d.msg)), unix.MSG_DONTWAIT|unix.MSG_NOSIGNAL)
		if e == unix.EINTR {
			continue
		}
		if e != 0 {
			return 0
		}
		return int64(r)
	}
}
