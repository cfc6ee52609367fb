//go:build linux

package netio

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

// uSlot is one request's place in the connection's response order.
type uSlot struct {
	key, version int16
	corr         int32
	t            timing // set only with an Observer
}

type uResult struct {
	s    *uSlot
	resp *Response
	sent int64 // bytes of the response the processor already wrote
}

type uJob struct {
	req *Request
	s   *uSlot
}

// uConn is one connection of the io_uring engine. Unless noted, fields
// belong to the ring goroutine; the processor goroutine uses only work,
// killed, ctx, info, log, r.post and the direct-send fields
// (uring_direct_linux.go).
type uConn struct {
	r      *uRing
	id     uint64
	fd     int
	info   ConnInfo
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc
	work   chan uJob   // ring -> processor; closed by the ring
	killed atomic.Bool // read by the processor
	dirty  bool        // queued in r.dirty
	direct uDirect     // the processor's direct-send state
	ops    int         // operations in flight on this connection

	// Receiving.
	recvArmed, recvCancelled bool
	eof                      bool // the peer finished sending (or recv ended)
	peerGone                 bool // a write failed after eof: drop responses
	szBuf                    [4]byte
	szN                      int    // bytes of szBuf filled
	inFrame                  bool   // frame has its size; payload incomplete
	frame                    []byte // payload being reassembled
	frameSize                int
	parked                   [][]byte    // complete frames not yet dispatched
	parkedAt                 []time.Time // when each parked frame was complete
	lastActive               time.Time

	// Handling and writing.
	inflight   int // dispatched requests whose response is not written or dropped
	workClosed bool
	procDone   bool
	results    []uResult // handled, waiting to be written in order
	w          *uWrite   // the response being written
	pipe       [2]int    // for splicing; -1 until needed
	pipeSize   int

	dead      bool
	finalized bool
}

// adopt registers an accepted socket and starts its processor.
func (r *uRing) adopt(fd int) {
	e := r.e
	if r.closing {
		unix.Close(fd)
		e.st.open.Add(-1)
		e.st.closed.Add(1)
		return
	}
	// As Go's net package does for accepted connections.
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	// Non-blocking, so a processor's direct sendfile never waits on a peer
	// that stopped reading; the ring's operations poll for readiness
	// themselves either way.
	if err := unix.SetNonblock(fd, true); err != nil {
		e.log.Warn("accepted socket: cannot set non-blocking; closing it", "err", err)
		unix.Close(fd)
		e.st.open.Add(-1)
		e.st.closed.Add(1)
		return
	}
	ctx, cancel := context.WithCancel(e.ctx)
	c := &uConn{
		r: r, id: e.nextID.Add(1), fd: fd, ctx: ctx, cancel: cancel,
		work:       make(chan uJob, e.cfg.MaxInFlightPerConn),
		pipe:       [2]int{-1, -1},
		lastActive: time.Now(),
	}
	c.info = ConnInfo{ID: c.id, Remote: peerAddr(fd)}
	if sa, err := unix.Getsockname(fd); err == nil {
		c.info.Local = sockaddrToTCP(sa)
	}
	c.log = e.log.With("conn", c.id, "remote", c.info.Remote)
	r.conns[c.id] = c
	e.wg.Add(1) // the ring itself is counted, so this cannot race Wait
	go c.processLoop()
	r.touch(c)
}

// progress moves the connection forward after any change.
func (c *uConn) progress() {
	if c.dead {
		c.dropResults()
		if c.ops == 0 && c.procDone && !c.finalized {
			c.finalize()
		}
		return
	}
	c.dispatch()
	if c.dead {
		c.progress()
		return
	}
	c.pumpWrites()
	if c.dead {
		c.progress()
		return
	}
	want := !c.eof && c.inflight+len(c.parked) < c.r.e.cfg.MaxInFlightPerConn
	switch {
	case want && !c.recvArmed:
		c.armRecv()
	case !want && c.recvArmed && !c.recvCancelled:
		// Back-pressure (or the end): stop the multishot receive.
		c.recvCancelled = true
		c.r.cancel(userData(c.id, opRecv))
	}
	if c.eof && len(c.parked) == 0 && !c.workClosed {
		// Nothing more will come from the peer: tell long-polling
		// handlers to finish; their responses are still written.
		c.workClosed = true
		close(c.work)
		c.cancel()
	}
	if c.eof && c.procDone && c.inflight == 0 && len(c.results) == 0 && c.w == nil {
		c.kill(io.EOF)
		return
	}
	// Slots freed by direct sends matter at once only when the ring waits
	// for them: a full window, or the end of the stream.
	c.direct.needWake.Store(c.eof || c.inflight+len(c.parked) >= c.r.e.cfg.MaxInFlightPerConn)
}

func (c *uConn) armRecv() {
	s := c.r.sqe()
	s.PrepareRecvMultishot(c.fd, 0, 0, 0)
	s.Flags |= giouring.SqeBufferSelect
	s.BufIG = recvBufGID
	s.UserData = userData(c.id, opRecv)
	c.recvArmed, c.recvCancelled = true, false
	c.ops++
	c.r.pending++
}

func (c *uConn) completeRecv(res int32, flags uint32, more bool) {
	if !more {
		c.recvArmed = false
	}
	if flags&giouring.CQEFBuffer != 0 {
		bid := uint16(flags >> giouring.CQEBufferShift)
		if res > 0 && !c.dead {
			err := c.consume(c.r.recvBuf(bid, int(res)))
			c.r.returnBuf(bid)
			if err != nil {
				c.kill(err)
			}
			return
		}
		c.r.returnBuf(bid)
	}
	if c.dead || res > 0 {
		return
	}
	switch e := syscall.Errno(-res); {
	case res == 0:
		c.eof = true
		if c.inFrame || c.szN > 0 {
			c.kill(fmt.Errorf("%w: %w", ErrPartialFrame, io.ErrUnexpectedEOF))
		}
	case e == unix.ENOBUFS:
		// Every provided buffer is in use; progress re-arms.
		c.r.enobufs.Add(1)
	case e == unix.ECANCELED, e == unix.EINTR, e == unix.EAGAIN:
	default:
		c.kill(fmt.Errorf("netio: recv: %w", e))
	}
}

// consume splits received bytes into frames, copying each byte once.
func (c *uConn) consume(b []byte) error {
	limit := int(c.r.e.cfg.MaxRequestBytes)
	for len(b) > 0 {
		if !c.inFrame {
			k := copy(c.szBuf[c.szN:], b)
			c.szN += k
			b = b[k:]
			if c.szN < 4 {
				return nil
			}
			c.szN = 0
			size := int32(binary.BigEndian.Uint32(c.szBuf[:]))
			if size < 0 {
				return fmt.Errorf("%w: %d", ErrInvalidFrameSize, size)
			}
			if int(size) > limit {
				return fmt.Errorf("%w: %d > %d", ErrFrameTooLarge, size, limit)
			}
			c.frameSize = int(size)
			c.frame = make([]byte, 0, min(c.frameSize, frameChunk))
			c.inFrame = true
		}
		if len(c.frame) == cap(c.frame) && len(c.frame) < c.frameSize {
			nb := make([]byte, len(c.frame), min(2*cap(c.frame), c.frameSize))
			copy(nb, c.frame)
			c.frame = nb
		}
		k := copy(c.frame[len(c.frame):cap(c.frame)], b)
		c.frame = c.frame[:len(c.frame)+k]
		b = b[k:]
		if len(c.frame) == c.frameSize {
			c.lastActive = time.Now()
			c.parked = append(c.parked, c.frame)
			c.parkedAt = append(c.parkedAt, c.lastActive)
			c.frame, c.inFrame = nil, false
		}
	}
	return nil
}

// dispatch hands parked frames to the processor while slots are free.
func (c *uConn) dispatch() {
	e := c.r.e
	for len(c.parked) > 0 && c.inflight < e.cfg.MaxInFlightPerConn && !c.workClosed {
		payload, at := c.parked[0], c.parkedAt[0]
		c.parked[0] = nil
		c.parked, c.parkedAt = c.parked[1:], c.parkedAt[1:]
		e.st.requestsIn.Add(1)
		e.st.bytesIn.Add(4 + int64(len(payload)))
		hdr, body, err := ReadRequestHeader(payload)
		if err != nil {
			c.kill(err)
			return
		}
		s := &uSlot{key: hdr.Key, version: hdr.Version, corr: hdr.CorrelationID}
		if e.cfg.Observer != nil {
			s.t.read = at
		}
		c.inflight++
		// Never blocks: work holds at most inflight <= its capacity jobs.
		c.work <- uJob{&Request{
			Key: hdr.Key, Version: hdr.Version, CorrelationID: hdr.CorrelationID,
			ClientID: hdr.ClientID, Body: body, Conn: c.info,
		}, s}
	}
	if len(c.parked) == 0 {
		c.parked, c.parkedAt = nil, nil // drop the consumed backing arrays
	}
}

// processLoop handles the connection's requests one at a time, in order,
// on its own goroutine; see conn.processLoop for the std twin.
func (c *uConn) processLoop() {
	defer c.r.e.wg.Done()
	for j := range c.work {
		var resp *Response
		if !c.killed.Load() {
			if c.r.e.cfg.Observer != nil {
				j.s.t.start = time.Now()
			}
			resp = c.callHandler(j.req)
			if c.r.e.cfg.Observer != nil {
				j.s.t.end = time.Now()
			}
		}
		c.deliver(j.s, resp)
	}
	c.r.post(ringMsg{kind: msgProcDone, c: c})
}

func (c *uConn) callHandler(req *Request) (resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			c.r.e.st.panicsSeen.Add(1)
			c.log.Error("handler panicked; closing connection",
				"api_key", req.Key, "api_version", req.Version,
				"correlation_id", req.CorrelationID, "panic", p, "stack", string(debug.Stack()))
			c.killed.Store(true)
			c.r.post(ringMsg{kind: msgKill, c: c})
			resp = nil
		}
	}()
	return c.r.e.h.Handle(c.ctx, req)
}

// kill ends the connection: it cancels the handlers' context, shuts the
// socket down, which fails every pending operation on it (a splice blocked
// on a peer that stopped reading included), and cancels what is left. The
// descriptor is closed by finalize once no operation refers to it.
func (c *uConn) kill(why error) {
	if c.dead {
		return
	}
	c.dead = true
	c.killed.Store(true)
	c.direct.needWake.Store(true)
	c.cancel()
	c.logEnd(why)
	_ = unix.Shutdown(c.fd, unix.SHUT_RDWR)
	if c.ops > 0 {
		s := c.r.sqe()
		s.PrepareCancelFd(c.fd, giouring.AsyncCancelAll)
		s.UserData = userData(0, opCancel)
		c.r.pending++
	}
	if !c.workClosed {
		c.workClosed = true
		close(c.work)
	}
	c.parked = nil
	c.frame = nil
	c.r.touch(c)
}

func (c *uConn) logEnd(err error) {
	byEngine := errors.Is(err, errEngineClosing) || errors.Is(err, errHandlerPanic)
	logConnEnd(c.log, err, byEngine, c.r.e.cfg.IdleTimeout)
}

// dropResults releases responses that will never be written.
func (c *uConn) dropResults() {
	if c.w != nil && c.ops == 0 {
		c.w.finish(c)
		c.w = nil
	}
	for i, res := range c.results {
		if res.resp != nil {
			c.release(res.resp)
		}
		c.results[i] = uResult{}
	}
	c.results = c.results[:0]
}

// finalize closes the descriptors once nothing refers to them.
func (c *uConn) finalize() {
	c.finalized = true
	unix.Close(c.fd)
	for _, p := range c.pipe {
		if p >= 0 {
			unix.Close(p)
		}
	}
	delete(c.r.conns, c.id)
	st := &c.r.e.st
	st.open.Add(-1)
	st.closed.Add(1)
}

// release runs resp.Release, shielding the ring from a panic in it.
func (c *uConn) release(resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("Response.Release panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	resp.release()
}
