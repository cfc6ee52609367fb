//go:build linux

package netio

import (
	"fmt"
	"io"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

const (
	pipeSizeWanted = 1 << 20 // F_SETPIPE_SZ for the splice pipe
	maxIovecs      = 1024    // IOV_MAX
)

// uWrite is the state of one response being written. Everything the kernel
// reads (msg, iovs, the header, the byte parts via resp) is referenced from
// here until the operation's completion arrives.
type uWrite struct {
	s       *uSlot
	resp    *Response
	started time.Time
	hdr     [responseHeaderLen]byte
	next    int // next part of resp to start

	iovs []syscall.Iovec // byte run still to send, first entry possibly advanced
	msg  syscall.Msghdr

	file     FileSource // the file range being sent, if any
	fd       int        // its descriptor, or -1 to copy with ReadAt
	fileOff  int64
	fileLeft int64
	inPipe   int // bytes spliced into the pipe, not yet out
	copyBuf  *[]byte
	finished bool
}

// pumpWrites starts the next response when none is being written.
func (c *uConn) pumpWrites() {
	for c.w == nil && len(c.results) > 0 && !c.dead {
		res := c.results[0]
		c.results[0] = uResult{}
		c.results = c.results[1:]
		if res.resp == nil {
			c.resultDone()
			continue
		}
		if c.peerGone {
			c.release(res.resp)
			c.resultDone()
			continue
		}
		if res.resp.CloseAfter && len(res.resp.Parts()) == 0 {
			// Nothing to say (the request could not be understood):
			// close without a response, as a Kafka client expects.
			c.log.Debug("closing connection without a response", "api_key", res.s.key, "correlation_id", res.s.corr)
			c.release(res.resp)
			c.resultDone()
			c.kill(io.EOF)
			return
		}
		w := &uWrite{s: res.s, resp: res.resp, started: time.Now(), fd: -1}
		hdr, err := putResponseHeader(&w.hdr, res.s.corr, FlexibleResponse(res.s.key, res.s.version), res.resp.Len())
		if err != nil {
			c.log.Debug("writing response failed; closing connection", "api_key", res.s.key, "correlation_id", res.s.corr, "err", err)
			c.release(res.resp)
			c.resultDone()
			c.kill(err)
			return
		}
		w.iovs = append(w.iovs, syscall.Iovec{Base: &hdr[0], Len: uint64(len(hdr))})
		if res.sent > 0 {
			// The processor wrote (and counted) the start of it.
			c.skip(w, res.sent)
		}
		c.w = w
		c.step()
	}
	if len(c.results) == 0 {
		c.results = nil
	}
}

// slotDone frees the in-flight slot of the response just finished.
func (c *uConn) slotDone() {
	c.inflight--
	c.lastActive = time.Now()
}

// resultDone frees the slot of a response the processor handed to the
// ring, which lets the processor write directly again once none is left.
func (c *uConn) resultDone() {
	c.slotDone()
	c.direct.queued.Add(-1)
}

// step submits the next operation of the current write, or finishes it.
func (c *uConn) step() {
	w := c.w
	for {
		if w.fileLeft == 0 && w.inPipe == 0 {
			w.gather()
		}
		if len(w.iovs) > 0 {
			c.submitSend()
			return
		}
		if w.inPipe > 0 {
			c.submitSpliceOut()
			return
		}
		if w.fileLeft > 0 {
			if w.fd >= 0 {
				c.submitSpliceIn()
				return
			}
			if err := w.readChunk(); err != nil {
				c.failWrite(err)
				return
			}
			continue
		}
		if w.next == len(w.resp.parts) {
			c.completeWrite()
			return
		}
		// Byte parts were gathered above: this one is a file range.
		c.startFile(w, 0)
	}
}

// startFile makes the next part, a file range, the one being sent, from
// skip bytes into it.
func (c *uConn) startFile(w *uWrite, skip int64) {
	p := w.resp.parts[w.next]
	w.next++
	w.file, w.fileOff, w.fileLeft, w.fd = p.File, p.Off+skip, p.Len-skip, -1
	if fs, ok := p.File.(FdSource); ok {
		if err := c.ensurePipe(); err != nil {
			c.log.Debug("no splice pipe; copying file ranges", "err", err)
		} else {
			w.fd = int(fs.Fd())
		}
	}
}

// skip drops the first n bytes of the response, which the processor
// already wrote: whole byte runs and file ranges, then part of one.
func (c *uConn) skip(w *uWrite, n int64) {
	for {
		w.gather()
		var run int64
		for _, v := range w.iovs {
			run += int64(v.Len)
		}
		if n < run || w.next == len(w.resp.parts) {
			w.advance(min(n, run))
			return
		}
		w.advance(run)
		n -= run
		if p := w.resp.parts[w.next]; n < p.Len {
			c.startFile(w, n)
			return
		}
		n -= w.resp.parts[w.next].Len
		w.next++
	}
}

// gather appends the run of byte parts behind what is pending, so the
// header and the parts go out in one sendmsg.
func (w *uWrite) gather() {
	for w.next < len(w.resp.parts) && w.resp.parts[w.next].File == nil {
		b := w.resp.parts[w.next].Bytes
		w.iovs = append(w.iovs, syscall.Iovec{Base: &b[0], Len: uint64(len(b))})
		w.next++
	}
}

// advance drops n sent bytes from iovs, advancing a partly sent entry.
func (w *uWrite) advance(n int64) {
	left := uint64(n)
	for left > 0 {
		v := &w.iovs[0]
		if left < v.Len {
			v.Base = (*byte)(unsafe.Add(unsafe.Pointer(v.Base), left))
			v.Len -= left
			break
		}
		left -= v.Len
		w.iovs[0] = syscall.Iovec{}
		w.iovs = w.iovs[1:]
	}
	if len(w.iovs) == 0 {
		w.iovs = nil
	}
}

// readChunk reads the next chunk of a descriptor-less file range into the
// copy buffer and queues it for sending.
func (w *uWrite) readChunk() error {
	if w.copyBuf == nil {
		w.copyBuf = copyBufPool.Get().(*[]byte)
	}
	chunk := (*w.copyBuf)[:min(w.fileLeft, int64(len(*w.copyBuf)))]
	k, err := w.file.ReadAt(chunk, w.fileOff)
	if k < len(chunk) {
		// The frame size is already on the wire; a short range cannot
		// be repaired.
		if err == nil || err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return fmt.Errorf("netio: reading file range at %d: %w", w.fileOff, err)
	}
	w.fileOff += int64(k)
	w.fileLeft -= int64(k)
	w.iovs = append(w.iovs, syscall.Iovec{Base: &chunk[0], Len: uint64(k)})
	return nil
}

func (c *uConn) ensurePipe() error {
	if c.pipe[0] >= 0 {
		return nil
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		return fmt.Errorf("netio: pipe2: %w", err)
	}
	// A bigger pipe means fewer splice round trips; the default (64 KiB)
	// still works if the system limit refuses 1 MiB.
	_, _ = unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, pipeSizeWanted)
	sz, err := unix.FcntlInt(uintptr(p[1]), unix.F_GETPIPE_SZ, 0)
	if err != nil || sz <= 0 {
		sz = 64 << 10
	}
	c.pipe, c.pipeSize = p, sz
	return nil
}

func (c *uConn) submitSend() {
	w := c.w
	n := min(len(w.iovs), maxIovecs)
	w.msg = syscall.Msghdr{Iov: &w.iovs[0], Iovlen: uint64(n)}
	s := c.r.sqe()
	s.PrepareSendMsg(c.fd, &w.msg, unix.MSG_NOSIGNAL)
	s.UserData = userData(c.id, opSend)
	c.ops++
	c.r.pending++
}

func (c *uConn) submitSpliceIn() {
	w := c.w
	n := min(w.fileLeft, int64(c.pipeSize))
	s := c.r.sqe()
	s.PrepareSplice(w.fd, w.fileOff, c.pipe[1], -1, uint32(n), 0)
	s.UserData = userData(c.id, opSpliceIn)
	c.ops++
	c.r.pending++
}

func (c *uConn) submitSpliceOut() {
	s := c.r.sqe()
	s.PrepareSplice(c.pipe[0], -1, c.fd, -1, uint32(c.w.inPipe), 0)
	s.UserData = userData(c.id, opSpliceOut)
	c.ops++
	c.r.pending++
}

// retryable reports a result that only means "try again".
func retryable(res int32) bool {
	e := syscall.Errno(-res)
	return res < 0 && (e == unix.EINTR || e == unix.EAGAIN)
}

func (c *uConn) completeSend(res int32) {
	w := c.w
	if c.dead || w == nil {
		return
	}
	if retryable(res) {
		c.step()
		return
	}
	if res <= 0 {
		c.failWrite(sysResult("sendmsg", res))
		return
	}
	c.r.e.st.bytesCopied.Add(int64(res))
	w.advance(int64(res))
	c.step()
}

func (c *uConn) completeSpliceIn(res int32) {
	w := c.w
	if c.dead || w == nil {
		return
	}
	switch {
	case retryable(res):
	case res < 0:
		c.failWrite(sysResult("splice from file", res))
		return
	case res == 0:
		// End of file before the end of the range: the file shrank
		// under us and the announced frame cannot be completed.
		c.failWrite(fmt.Errorf("netio: splice at %d: %w", w.fileOff, io.ErrUnexpectedEOF))
		return
	default:
		w.inPipe = int(res)
		w.fileOff += int64(res)
		w.fileLeft -= int64(res)
	}
	c.step()
}

func (c *uConn) completeSpliceOut(res int32) {
	w := c.w
	if c.dead || w == nil {
		return
	}
	switch {
	case retryable(res):
	case res <= 0:
		c.failWrite(sysResult("splice to socket", res))
		return
	default:
		w.inPipe -= int(res)
		c.r.e.st.bytesZeroCopy.Add(int64(res))
		c.r.spliced.Add(int64(res))
	}
	c.step()
}

func sysResult(op string, res int32) error {
	if res == 0 {
		return fmt.Errorf("netio: %s: %w", op, io.ErrShortWrite)
	}
	return fmt.Errorf("netio: %s: %w", op, syscall.Errno(-res))
}

// failWrite closes the connection after a write error; the response is
// released by dropResults once no operation refers to it.
//
// After the peer finished sending (EOF), a failed write means it is gone,
// but the requests it sent before leaving were already read: they are
// still handled (their context is cancelled), and their responses dropped,
// before the connection closes. That keeps the outcome independent of how
// fast the peer's reset arrives.
func (c *uConn) failWrite(err error) {
	c.log.Debug("writing response failed; closing connection",
		"api_key", c.w.s.key, "correlation_id", c.w.s.corr, "err", err)
	if c.eof && !c.workClosed {
		c.kill(err)
		return
	}
	if c.eof {
		c.peerGone = true
		c.direct.off.Store(true) // responses are dropped from now on
		c.w.finish(c)            // the failed operation was the write's only one
		c.w = nil
		return
	}
	c.kill(err)
}

// completeWrite finishes a fully written response.
func (c *uConn) completeWrite() {
	w := c.w
	c.w = nil
	c.r.e.st.responsesOut.Add(1)
	if o := c.r.e.cfg.Observer; o != nil {
		w.s.t.report(o, w.s.key, w.s.version, time.Now())
	}
	closeAfter := w.resp.CloseAfter
	if closeAfter {
		// Nothing may follow this response, not even a direct send.
		c.direct.off.Store(true)
	}
	w.finish(c)
	if closeAfter {
		// Shut down the write side first so the response is followed by
		// a FIN rather than racing the close.
		_ = unix.Shutdown(c.fd, unix.SHUT_WR)
		c.kill(io.EOF)
	}
}

// finish releases the response and its slot, written or not.
func (w *uWrite) finish(c *uConn) {
	if w.finished {
		return
	}
	w.finished = true
	if w.copyBuf != nil {
		copyBufPool.Put(w.copyBuf)
		w.copyBuf = nil
	}
	c.release(w.resp)
	c.resultDone()
}
