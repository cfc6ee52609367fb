//go:build linux

// The io_uring engine.
//
// # Design
//
// Rings. The engine runs one io_uring ring per worker, workers = GOMAXPROCS
// (at least 1). Each ring is driven by its own goroutine locked to an OS
// thread (runtime.LockOSThread), because the ring is created with
// IORING_SETUP_SINGLE_ISSUER: only that thread ever submits to it, so no
// lock guards the submission queue. How completion work reaches the thread
// is chosen by measurement, once per process, before the first ring starts
// (uring_selftest_linux.go): DEFER_TASKRUN (the kernel runs that work only
// when the ring asks for events) where the kernel wakes an idle ring at
// once, else COOP_TASKRUN|TASKRUN_FLAG, else no flags. Some kernels (6.18
// builds seen here) signal a DEFER ring's eventfd for a socket completion
// only after an RCU grace period, ~15 ms: every request reaching an idle
// ring waited that long. The self-test arms a receive on a socket pair,
// times the ring's own wait path against Go's poller, and NewEngine("auto")
// takes the std engine when no mode is as fast. All connection state that
// the kernel touches (sockets, buffers, iovecs, pipes) is owned by the
// ring goroutine.
//
// Accept. Serve hands a duplicate of the listener's descriptor to one ring,
// which keeps one multishot IORING_OP_ACCEPT armed on it. Accepted sockets
// are spread round robin over all rings; a socket for another ring travels
// through that ring's inbox (see wake-ups). The net.Listener stays open
// until Serve returns so the address remains ours.
//
// Receive. Every connection has one multishot IORING_OP_RECV armed that
// picks buffers from the ring's provided-buffer ring (IORING_REGISTER_PBUF_RING,
// 128 buffers of 64 KiB). A completion's bytes are copied once, into the
// frame being reassembled (a frame's buffer is allocated when its size
// prefix arrives, growing in 1 MiB steps so an announced but unsent frame
// cannot make us allocate it all), and the provided buffer goes back to the
// kernel at once. ENOBUFS (all buffers in use) is counted per ring and the
// receive re-armed. Complete frames wait in a per-connection queue and are
// dispatched while fewer than MaxInFlightPerConn requests are in flight;
// when the limit is reached the receive is cancelled and only re-armed once
// a response frees a slot: that is the back-pressure, and RequestsIn counts
// dispatched requests exactly like the std engine.
//
// Handlers. As in the std engine, each connection has one processor
// goroutine calling Handler.Handle for its requests one at a time, in
// arrival order; handlers never run on a ring goroutine. Results go back to
// the ring through a mutex-protected inbox plus a wake-up, except for
// responses the processor could write itself (direct sends, below).
//
// Waiting and wake-ups. Each ring has an eventfd registered with
// IORING_REGISTER_EVENTFD, so the kernel signals it whenever completions or
// deferred completion work arrive. The ring goroutine waits by reading that
// eventfd through Go's poller, not inside io_uring_enter: a goroutine
// blocked in a system call keeps its P until sysmon takes it back (20 µs or
// more), so the processor goroutines the ring had just made runnable would
// wait behind it, while a goroutine parked in the poller gives its P up at
// once. Senders (processor goroutines, Serve, Close) wake the ring by
// writing the same eventfd; we chose it over IORING_OP_MSG_RING because
// they have no ring of their own. They write it only when the ring is
// about to sleep or sleeping (a flag set under the inbox mutex with the
// inbox seen empty, cleared by the first writer), so posts to a busy ring
// cost no system call and a burst costs one wake-up.
//
// Direct sends (uring_direct_linux.go). A processor whose connection has
// nothing queued at the ring writes a byte-only response itself with one
// non-blocking sendmsg(2) and only tells the ring that the slot is free;
// that message wakes the ring only if it waits for the slot. A short or
// failed write hands the rest to the ring, which writes it as below.
//
// Send. One response per connection is written at a time, in request order,
// prefixed with the header from putResponseHeader/FlexibleResponse. A run of
// byte parts (the header in front of the first) goes out with one
// IORING_OP_SENDMSG gathering all of them; partial sends resubmit the rest.
// A file range whose source has a descriptor (FdSource) is spliced with
// IORING_OP_SPLICE in two steps, file -> per-connection pipe (F_SETPIPE_SZ
// 1 MiB) -> socket, resubmitting after short splices; those bytes count as
// BytesZeroCopy. Two steps rather than linked SQEs, because a linked pair
// cannot express "send what the first one actually moved" after a short
// splice, and the extra completion costs little next to 1 MiB of data.
// The pipe is per connection so one stalled peer cannot hold a pipe another
// connection needs. A file range without a descriptor is read with ReadAt
// into a pooled 64 KiB buffer and sent (counted as copied). All SQEs
// prepared in one loop iteration are submitted with one io_uring_enter.
//
// Never wedge a ring. The ring goroutine never blocks except waiting for
// its eventfd; splice to a socket that stopped reading blocks only an
// io-wq worker. A timeout SQE (IORING_OP_TIMEOUT,
// tick = IdleTimeout/4, at most 250 ms) wakes the ring to close idle
// connections and those whose current response has been writing for longer
// than IdleTimeout. Killing a connection shuts its socket down (which fails
// every pending operation on it, including a blocked splice), cancels its
// operations, and closes the descriptor only after every operation has
// completed, so the kernel never writes into memory we consider free.
//
// Close. Close marks the engine closed, tells every ring to cancel its
// accepts and kill its connections, waits until they did, cancels the
// handler contexts, then waits for every goroutine; each ring tears down
// (buffer ring, eventfd, ring) once nothing of it is in flight.
//
// Kernel. Multishot accept, multishot receive and provided-buffer rings
// together need Linux 6.0 or later; NewEngine("auto") probes for them (and
// for every opcode used) and falls back to the std engine otherwise.
package netio

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// uringEngine is the io_uring Engine. See the comment at the top of the file.
type uringEngine struct {
	cfg    Config
	h      Handler
	log    *slog.Logger
	ctx    context.Context // parent of every connection context
	cancel context.CancelFunc
	nextID atomic.Uint64 // connection and listener ids
	st     counters
	rings  []*uRing
	// mode is how every ring is set up and waits (ringModes).
	mode ringMode

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // rings, processors and Serve calls
}

// NewUringEngine returns an Engine built on io_uring (see the package
// comment of uring_linux.go for the design). It fails when io_uring cannot
// be used here; NewEngine with "auto" falls back to the std engine instead.
// logger may be nil.
func NewUringEngine(cfg Config, h Handler, logger *slog.Logger) (Engine, error) {
	if err := UringSupported(); err != nil {
		return nil, err
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if pinnedMode(cfg) {
		m, ok := modeNamed(cfg.UringMode)
		switch {
		case !ok:
			return nil, fmt.Errorf("unknown io_uring ring mode %q (want auto or one of %v)", cfg.UringMode, RingModes)
		case m.block && runtime.GOMAXPROCS(0) < 2:
			return nil, fmt.Errorf("io_uring ring mode %s needs GOMAXPROCS >= 2", m.name)
		}
		e, err := newUringEngine(cfg, h, logger, m)
		if err != nil {
			return nil, err
		}
		e.log.Info("io_uring rings ready", "mode", m.name, "self_test", "skipped (netio.uring.mode)")
		return e, nil
	}
	w := UringWake()
	if w.Chosen == "" {
		return nil, fmt.Errorf("no io_uring ring mode could be set up: %s", w)
	}
	m, _ := modeNamed(w.Chosen)
	e, err := newUringEngine(cfg, h, logger, m)
	if err != nil {
		return nil, err
	}
	c := w.chosen()
	if w.Pass {
		args := []any{"mode", c.Mode, "wake_median", c.Median, "poller_median", w.Poller, "rtt_uring", c.RTT, "rtt_std", c.RTTStd}
		if !w.Measured.IsZero() {
			args = append(args, "measured", w.Measured.UTC().Format(time.RFC3339)) // kept for this boot
		}
		e.log.Info("io_uring rings ready", args...)
	} else {
		e.log.Warn("io_uring is slower than the std engine at low load on this kernel; requests reaching an idle ring wait longer",
			"mode", c.Mode, "self_test", w.String())
	}
	return e, nil
}

// newUringEngine starts the rings, each set up in mode m.
func newUringEngine(cfg Config, h Handler, logger *slog.Logger, m ringMode) (*uringEngine, error) {
	ctx, cancel := context.WithCancel(context.Background())
	e := &uringEngine{
		cfg:    cfg.withDefaults(),
		h:      h,
		log:    logger.With("engine", "uring"),
		ctx:    ctx,
		cancel: cancel,
		mode:   m,
	}
	n := max(runtime.GOMAXPROCS(0), 1)
	if m.block {
		// A ring blocked in io_uring_enter keeps its P; leave one for
		// the processors (the self-test runs block modes only with 2+).
		n = max(n-1, 1)
	}
	for i := range n {
		r := newURing(e, i)
		ready := make(chan error, 1)
		e.wg.Add(1)
		go r.run(ready)
		if err := <-ready; err != nil {
			// Stop the rings already running before giving up.
			e.Close()
			return nil, fmt.Errorf("netio: starting io_uring ring %d: %w", i, err)
		}
		e.rings = append(e.rings, r)
	}
	return e, nil
}

func (e *uringEngine) Serve(ln net.Listener) error {
	tl, ok := ln.(*net.TCPListener)
	if !ok {
		ln.Close()
		return fmt.Errorf("netio: the uring engine serves only *net.TCPListener, got %T", ln)
	}
	fd, err := dupListenerFd(tl)
	if err != nil {
		ln.Close()
		return fmt.Errorf("netio: duplicating listener %v: %w", ln.Addr(), err)
	}
	l := &uListener{id: e.nextID.Add(1), fd: fd, addr: ln.Addr(), done: make(chan error, 1)}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		unix.Close(fd)
		ln.Close()
		return ErrEngineClosed
	}
	e.wg.Add(1)
	// Posted under mu: Close posts its close message under mu too, so a
	// ring always sees this listener before it is told to close.
	e.rings[int(l.id)%len(e.rings)].post(ringMsg{kind: msgListen, l: l})
	e.mu.Unlock()
	defer e.wg.Done()
	err = <-l.done
	ln.Close()
	return err
}

// dupListenerFd returns a close-on-exec duplicate of the listener's socket,
// so the ring's accept does not depend on Go's descriptor, which the
// runtime poller owns.
func dupListenerFd(tl *net.TCPListener) (int, error) {
	rc, err := tl.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) {
		fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0)
	}); err != nil {
		return -1, err
	}
	return fd, derr
}

func (e *uringEngine) Close() error {
	e.mu.Lock()
	first := !e.closed
	e.closed = true
	var acks []chan struct{}
	if first {
		for _, r := range e.rings {
			ack := make(chan struct{})
			acks = append(acks, ack)
			r.post(ringMsg{kind: msgClose, ack: ack})
		}
	}
	e.mu.Unlock()
	// Connections are killed before the shared context is cancelled, so
	// no handler that returns on cancellation gets its response written.
	for _, ack := range acks {
		<-ack
	}
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *uringEngine) Stats() Stats { return e.st.snapshot() }

// RingStats returns one snapshot per ring, in ring order.
func (e *uringEngine) RingStats() []RingStats {
	out := make([]RingStats, len(e.rings))
	for i, r := range e.rings {
		out[i] = RingStats{
			Submissions:     r.submissions.Load(),
			Completions:     r.completions.Load(),
			BufferExhausted: r.enobufs.Load(),
			BytesSpliced:    r.spliced.Load(),
		}
	}
	return out
}
