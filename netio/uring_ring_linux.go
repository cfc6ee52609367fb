//go:build linux

package netio

import (
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"github.com/pawelgaczynski/giouring"
	"golang.org/x/sys/unix"
)

const (
	ringEntries = 1024     // SQ size; the CQ gets twice that (and the kernel never drops CQEs)
	recvBufSize = 64 << 10 // one provided receive buffer
	recvBufs    = 128      // provided buffers per ring (a power of two)
	recvBufGID  = 0        // buffer group id; one group per ring
	maxTick     = 250 * time.Millisecond
	minTick     = 5 * time.Millisecond
)

// Operation kinds, in the low byte of user_data; the rest is the id of the
// connection or listener the operation belongs to.
const (
	opTick uint64 = iota + 1
	opCancel
	opAccept
	opRecv
	opSend
	opSpliceIn  // file -> pipe
	opSpliceOut // pipe -> socket
	opWake      // multishot poll on the eventfd (blocking modes)
)

func userData(id, op uint64) uint64 { return id<<8 | op }

// Inbox message kinds.
const (
	msgListen   = iota + 1 // start accepting on l
	msgNewConn             // adopt the accepted socket fd
	msgResult              // the handler's response for slot s of c, sent bytes already written
	msgSent                // the processor wrote slot s of c itself (at)
	msgProcDone            // c's processor goroutine exited
	msgKill                // kill c (a handler panicked)
	msgClose               // the engine is closing; close ack when connections are killed
)

type ringMsg struct {
	kind int
	l    *uListener
	fd   int
	c    *uConn
	s    *uSlot
	resp *Response
	sent int64     // msgResult: bytes the processor already wrote
	at   time.Time // msgSent: when the response was written
	ack  chan struct{}
}

// uListener is a listener served by one ring.
type uListener struct {
	id    uint64
	fd    int
	addr  net.Addr
	done  chan error // Serve's result
	armed bool
}

// uRing is one ring and the goroutine driving it. Fields below mu are
// shared with other goroutines; all others belong to the ring goroutine.
type uRing struct {
	e    *uringEngine
	idx  int
	ring *giouring.Ring
	br   *giouring.BufAndRing
	bufs []byte // recvBufs provided buffers, referenced by the kernel
	// evfd is registered with the ring (IORING_REGISTER_EVENTFD; in a
	// blocking mode a multishot poll on it wakes the ring instead), so the
	// kernel signals it when completions (or deferred task work) arrive,
	// and posts write it too; the ring goroutine waits on it through Go's
	// poller (evf).
	evfd int
	evf  *os.File
	// block: the ring waits inside io_uring_enter (ringMode.block).
	block bool
	// tick is read by the kernel while the timeout is pending; it lives
	// as long as the ring.
	tick syscall.Timespec
	cqes []*giouring.CompletionQueueEvent

	conns   map[uint64]*uConn
	lns     map[uint64]*uListener
	dirty   []*uConn
	pending int // operations in flight, all kinds
	rr      int // round robin over rings for accepted sockets
	closing bool
	exiting bool // ring-level operations cancelled; leave when pending == 0

	submissions, completions, enobufs, spliced atomic.Int64

	tickDue bool // a tick fired; check timeouts once the inbox is drained

	mu    sync.Mutex
	inbox []ringMsg
	spare []ringMsg
	// sleeping is set (under mu, with the inbox empty) just before the
	// ring waits for its eventfd, and cleared by the first post that
	// writes the eventfd or by the ring once it is back.
	sleeping bool
}

func newURing(e *uringEngine, idx int) *uRing {
	return &uRing{e: e, idx: idx, evfd: -1, conns: make(map[uint64]*uConn), lns: make(map[uint64]*uListener)}
}

// setup creates the ring with the given setup flags (see ringModes and the
// wake-up self-test that picks them) on the locked thread (SINGLE_ISSUER
// binds it to the creating task), together with its buffer ring and
// eventfd.
func (r *uRing) setup(m ringMode) error {
	r.block = m.block
	r.ring = giouring.NewRing()
	if err := r.ring.QueueInit(ringEntries, m.flags); err != nil {
		return fmt.Errorf("io_uring_setup(flags %#x): %w", m.flags, err)
	}
	var err error
	r.br, err = r.ring.SetupBufRing(recvBufs, recvBufGID, 0)
	if err != nil {
		r.ring.QueueExit()
		return err
	}
	r.bufs = make([]byte, recvBufs*recvBufSize)
	for i := range recvBufs {
		r.br.BufRingAdd(uintptr(unsafe.Pointer(&r.bufs[i*recvBufSize])), recvBufSize, uint16(i), giouring.BufRingMask(recvBufs), i)
	}
	r.br.BufRingAdvance(recvBufs)
	r.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		r.teardown()
		return err
	}
	// A non-blocking descriptor, so os.NewFile registers it with the poller.
	r.evf = os.NewFile(uintptr(r.evfd), "io_uring-eventfd")
	// A blocking ring is woken by a poll on the eventfd instead
	// (armWakePoll); registered, every completion would also trigger that
	// poll.
	if !r.block {
		if _, err = r.ring.RegisterEventFd(r.evfd); err != nil {
			r.teardown()
			return err
		}
	}
	r.cqes = make([]*giouring.CompletionQueueEvent, 2*ringEntries)
	tick := min(max(r.e.cfg.IdleTimeout/4, minTick), maxTick)
	r.tick = syscall.NsecToTimespec(tick.Nanoseconds())
	return nil
}

func (r *uRing) teardown() {
	if r.evf != nil {
		if !r.block {
			_, _ = r.ring.UnregisterEventFd(r.evfd)
		}
		r.evf.Close()
	}
	_ = r.ring.FreeBufRing(recvBufGID)
	// giouring maps the buffer ring but does not unmap it.
	mem := unsafe.Slice((*byte)(unsafe.Pointer(r.br)), recvBufs*int(unsafe.Sizeof(giouring.BufAndRing{})))
	_ = unix.Munmap(mem)
	r.ring.QueueExit()
}

// run is the ring goroutine.
func (r *uRing) run(ready chan<- error) {
	defer r.e.wg.Done()
	runtime.LockOSThread()
	// Not unlocked: the thread dies with the goroutine, which is what we
	// want for a thread the kernel associated with a ring.
	if err := r.setup(r.e.mode); err != nil {
		ready <- err
		return
	}
	ready <- nil
	defer r.teardown()
	r.armTick()
	if r.block {
		r.armWakePoll()
	}
	for {
		r.drainInbox()
		if r.tickDue {
			// After the drain, so slots the processors freed are seen.
			r.tickDue = false
			r.checkTimeouts()
		}
		r.flushDirty()
		if r.closing && len(r.conns) == 0 && len(r.lns) == 0 {
			if !r.exiting {
				r.exiting = true
				r.cancel(userData(0, opTick))
				if r.block {
					r.cancel(userData(0, opWake))
				}
			}
			if r.pending == 0 {
				// Anything posted now (nothing should be) is ignored.
				return
			}
		}
		r.wait()
		r.reap()
	}
}

// reap handles every completion available now.
func (r *uRing) reap() {
	for {
		ready := min(int(r.ring.CQReady()), len(r.cqes))
		if ready == 0 {
			return
		}
		// Copy the entries out and release the CQ slots before handling:
		// handlers may submit, and the kernel may then post more.
		n := int(r.ring.PeekBatchCQE(r.cqes[:ready]))
		batch := make([]giouring.CompletionQueueEvent, n)
		for i := range n {
			batch[i] = *r.cqes[i]
		}
		r.ring.CQAdvance(uint32(n))
		r.completions.Add(int64(n))
		for i := range batch {
			r.complete(&batch[i])
		}
	}
}

// sqe returns a zeroed submission entry, submitting to make room if the
// queue is full. giouring's prepare helpers leave some fields of a reused
// entry untouched, hence the zeroing.
func (r *uRing) sqe() *giouring.SubmissionQueueEntry {
	for {
		if s := r.ring.GetSQE(); s != nil {
			*s = giouring.SubmissionQueueEntry{}
			return s
		}
		n, err := r.ring.SubmitAndGetEvents()
		r.submissions.Add(int64(n))
		if err != nil && !errors.Is(err, unix.EINTR) && !errors.Is(err, unix.EBUSY) {
			r.e.log.Error("io_uring submit failed", "ring", r.idx, "err", err)
		}
		if errors.Is(err, unix.EBUSY) {
			// The completion queue is full: make room first.
			r.reap()
		}
	}
}

func (r *uRing) cancel(ud uint64) {
	s := r.sqe()
	s.PrepareCancel64(ud, 0)
	s.UserData = userData(0, opCancel)
	r.pending++
}

func (r *uRing) armTick() {
	s := r.sqe()
	s.PrepareTimeout(&r.tick, 0, 0)
	// giouring passes the address of its pointer argument; point the
	// entry at the timespec itself.
	s.Addr = uint64(uintptr(unsafe.Pointer(&r.tick)))
	s.UserData = userData(0, opTick)
	r.pending++
}

func (r *uRing) armAccept(l *uListener) {
	s := r.sqe()
	s.PrepareMultishotAccept(l.fd, 0, 0, unix.SOCK_CLOEXEC)
	s.UserData = userData(l.id, opAccept)
	l.armed = true
	r.pending++
}

func (r *uRing) drainInbox() {
	r.mu.Lock()
	msgs := r.inbox
	r.inbox = r.spare[:0]
	r.mu.Unlock()
	for i := range msgs {
		r.handleMsg(&msgs[i])
		msgs[i] = ringMsg{}
	}
	r.spare = msgs[:0]
}

func (r *uRing) handleMsg(m *ringMsg) {
	switch m.kind {
	case msgListen:
		if r.closing {
			unix.Close(m.l.fd)
			m.l.done <- ErrEngineClosed
			return
		}
		r.lns[m.l.id] = m.l
		r.armAccept(m.l)
	case msgNewConn:
		r.adopt(m.fd)
	case msgResult:
		m.c.results = append(m.c.results, uResult{m.s, m.resp, m.sent})
		r.touch(m.c)
	case msgSent:
		m.c.inflight--
		if m.at.After(m.c.lastActive) {
			m.c.lastActive = m.at
		}
		r.touch(m.c)
	case msgProcDone:
		m.c.procDone = true
		r.touch(m.c)
	case msgKill:
		m.c.kill(errHandlerPanic)
	case msgClose:
		r.closing = true
		for _, l := range r.lns {
			if l.armed {
				r.cancel(userData(l.id, opAccept))
			}
		}
		for _, c := range r.conns {
			c.kill(errEngineClosing)
		}
		close(m.ack)
	}
}

var (
	errHandlerPanic  = errors.New("netio: handler panicked")
	errEngineClosing = errors.New("netio: engine closing")
)

func (r *uRing) touch(c *uConn) {
	if !c.dirty {
		c.dirty = true
		r.dirty = append(r.dirty, c)
	}
}

// flushDirty lets every connection that changed make progress. Progress
// may dirty connections again (or others), hence the loop.
func (r *uRing) flushDirty() {
	for len(r.dirty) > 0 {
		d := r.dirty
		r.dirty = nil
		for _, c := range d {
			c.dirty = false
			c.progress()
		}
	}
}

func (r *uRing) complete(cqe *giouring.CompletionQueueEvent) {
	op, id := cqe.UserData&0xff, cqe.UserData>>8
	more := cqe.Flags&giouring.CQEFMore != 0
	if !more {
		r.pending--
	}
	switch op {
	case opTick:
		if !r.exiting {
			r.armTick()
			r.tickDue = true
		}
	case opWake:
		r.completeWakePoll(more)
	case opCancel:
	case opAccept:
		r.completeAccept(id, cqe.Res, more)
	default:
		c := r.conns[id]
		if c == nil {
			// Cannot happen: a connection outlives its operations.
			r.e.log.Error("completion for unknown connection", "conn", id, "op", op, "res", cqe.Res)
			return
		}
		if !more {
			c.ops--
		}
		switch op {
		case opRecv:
			c.completeRecv(cqe.Res, cqe.Flags, more)
		case opSend:
			c.completeSend(cqe.Res)
		case opSpliceIn:
			c.completeSpliceIn(cqe.Res)
		case opSpliceOut:
			c.completeSpliceOut(cqe.Res)
		}
		r.touch(c)
	}
}

// recvBuf returns the provided buffer bid, holding n received bytes.
func (r *uRing) recvBuf(bid uint16, n int) []byte {
	off := int(bid) * recvBufSize
	return r.bufs[off : off+n]
}

// returnBuf gives provided buffer bid back to the kernel.
func (r *uRing) returnBuf(bid uint16) {
	r.br.BufRingAdd(uintptr(unsafe.Pointer(&r.bufs[int(bid)*recvBufSize])), recvBufSize, bid, giouring.BufRingMask(recvBufs), 0)
	r.br.BufRingAdvance(1)
}

func (r *uRing) completeAccept(id uint64, res int32, more bool) {
	l := r.lns[id]
	if l == nil {
		if res >= 0 {
			unix.Close(int(res))
		}
		return
	}
	if !more {
		l.armed = false
	}
	if res >= 0 {
		r.accepted(int(res))
	}
	if more {
		return
	}
	if r.closing {
		delete(r.lns, id)
		unix.Close(l.fd)
		l.done <- ErrEngineClosed
		return
	}
	switch e := syscall.Errno(-res); {
	case res >= 0, e == unix.EINTR, e == unix.EAGAIN, e == unix.ECONNABORTED, e == unix.ECANCELED,
		e == unix.EMFILE, e == unix.ENFILE, e == unix.ENOBUFS, e == unix.ENOMEM, e == unix.EPERM:
		// Transient (or the kernel merely ended the multishot): re-arm.
		// Out of descriptors re-arms at once too; the failing accepts
		// leave the pending connections in the backlog.
		if res < 0 {
			r.e.log.Warn("accept failed; retrying", "listener", l.addr, "err", e)
		}
		r.armAccept(l)
	default:
		delete(r.lns, id)
		unix.Close(l.fd)
		l.done <- &net.OpError{Op: "accept", Net: "tcp", Addr: l.addr, Err: e}
	}
}

// accepted admits or refuses a new socket and hands it to a ring.
func (r *uRing) accepted(fd int) {
	e := r.e
	if r.closing {
		unix.Close(fd)
		return
	}
	if e.cfg.MaxConnections > 0 && e.st.open.Load() >= int64(e.cfg.MaxConnections) {
		n := e.st.refused.Add(1)
		if n%refusedLogEvery == 1 {
			e.log.Warn("max connections reached; refusing connection",
				"max", e.cfg.MaxConnections, "remote", peerAddr(fd), "refused_total", n)
		}
		unix.Close(fd)
		return
	}
	e.st.accepted.Add(1)
	e.st.open.Add(1)
	target := e.rings[r.rr%len(e.rings)]
	r.rr++
	if target == r {
		r.adopt(fd)
	} else {
		target.post(ringMsg{kind: msgNewConn, fd: fd})
	}
}

// checkTimeouts kills idle connections and stuck writes.
func (r *uRing) checkTimeouts() {
	now := time.Now()
	idle := r.e.cfg.IdleTimeout
	for _, c := range r.conns {
		if c.dead {
			continue
		}
		if c.w != nil && now.Sub(c.w.started) > idle {
			c.kill(errWriteTimeout)
			continue
		}
		if c.eof {
			continue
		}
		// A connection waiting for its own requests is not idle, unless
		// it sits in the middle of a frame (as the std engine decides).
		if c.inflight > 0 && !c.inFrame {
			c.lastActive = now
			continue
		}
		if now.Sub(c.lastActive) > idle {
			c.kill(errIdle)
		}
	}
}

func peerAddr(fd int) net.Addr {
	sa, err := unix.Getpeername(fd)
	if err != nil {
		return nil
	}
	return sockaddrToTCP(sa)
}

func sockaddrToTCP(sa unix.Sockaddr) net.Addr {
	switch a := sa.(type) {
	case *unix.SockaddrInet4:
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port}
	case *unix.SockaddrInet6:
		z := ""
		if a.ZoneId != 0 {
			if ifi, err := net.InterfaceByIndex(int(a.ZoneId)); err == nil {
				z = ifi.Name
			}
		}
		return &net.TCPAddr{IP: append(net.IP(nil), a.Addr[:]...), Port: a.Port, Zone: z}
	}
	return nil
}
