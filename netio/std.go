package netio

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// refusedLogEvery limits logging of refused connections: a client stuck in a
// reconnect loop against MaxConnections would otherwise flood the log.
const refusedLogEvery = 1000

type counters struct {
	accepted, refused, closed, open        atomic.Int64
	requestsIn, responsesOut, bytesIn      atomic.Int64
	bytesCopied, bytesZeroCopy, panicsSeen atomic.Int64
}

// snapshot reads every counter; both engines report their Stats with it.
func (s *counters) snapshot() Stats {
	return Stats{
		Accepted:      s.accepted.Load(),
		Refused:       s.refused.Load(),
		Closed:        s.closed.Load(),
		Open:          s.open.Load(),
		RequestsIn:    s.requestsIn.Load(),
		ResponsesOut:  s.responsesOut.Load(),
		BytesIn:       s.bytesIn.Load(),
		BytesCopied:   s.bytesCopied.Load(),
		BytesZeroCopy: s.bytesZeroCopy.Load(),
		HandlerPanics: s.panicsSeen.Load(),
	}
}

// stdEngine is the portable engine built on the Go runtime's netpoller: a
// reader and a writer goroutine per connection plus one goroutine per
// in-flight request.
type stdEngine struct {
	cfg    Config
	h      Handler
	log    *slog.Logger
	ctx    context.Context // parent of every connection context
	cancel context.CancelFunc
	nextID atomic.Uint64
	st     counters

	mu        sync.Mutex
	closed    bool
	listeners map[net.Listener]struct{}
	conns     map[*conn]struct{}
	wg        sync.WaitGroup // Serve loops and connection goroutines
}

// NewStdEngine returns an Engine built on the Go runtime's network poller
// that writes file ranges with sendfile(2). logger may be nil.
func NewStdEngine(cfg Config, h Handler, logger *slog.Logger) Engine {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &stdEngine{
		cfg:       cfg.withDefaults(),
		h:         h,
		log:       logger.With("engine", "std"),
		ctx:       ctx,
		cancel:    cancel,
		listeners: make(map[net.Listener]struct{}),
		conns:     make(map[*conn]struct{}),
	}
}

func (e *stdEngine) Serve(ln net.Listener) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		ln.Close()
		return ErrEngineClosed
	}
	e.listeners[ln] = struct{}{}
	e.wg.Add(1)
	e.mu.Unlock()
	defer e.wg.Done()
	defer func() {
		e.mu.Lock()
		delete(e.listeners, ln)
		e.mu.Unlock()
		ln.Close()
	}()

	var backoff time.Duration
	for {
		nc, err := ln.Accept()
		if err != nil {
			if e.isClosed() {
				return ErrEngineClosed
			}
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Anything else (EMFILE, ECONNABORTED, ...) is usually
			// transient: back off instead of spinning or giving up.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			e.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
			t := time.NewTimer(backoff)
			select {
			case <-t.C:
			case <-e.ctx.Done():
				t.Stop()
				return ErrEngineClosed
			}
			continue
		}
		backoff = 0
		e.startConn(nc)
	}
}

func (e *stdEngine) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// startConn registers nc and starts its goroutines, or refuses it.
func (e *stdEngine) startConn(nc net.Conn) {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		nc.Close()
		return
	}
	if e.cfg.MaxConnections > 0 && len(e.conns) >= e.cfg.MaxConnections {
		e.mu.Unlock()
		n := e.st.refused.Add(1)
		nc.Close()
		if n%refusedLogEvery == 1 {
			e.log.Warn("max connections reached; refusing connection",
				"max", e.cfg.MaxConnections, "remote", nc.RemoteAddr(), "refused_total", n)
		}
		return
	}
	c := newConn(e, nc)
	e.conns[c] = struct{}{}
	// Add under mu while !closed: Close sets closed under mu before it
	// waits, so no Add can race with Wait.
	e.wg.Add(1)
	e.mu.Unlock()
	e.st.accepted.Add(1)
	e.st.open.Add(1)
	go c.serve()
}

// connDone unregisters c once all its goroutines have exited.
func (e *stdEngine) connDone(c *conn) {
	e.mu.Lock()
	delete(e.conns, c)
	e.mu.Unlock()
	e.st.open.Add(-1)
	e.st.closed.Add(1)
	e.wg.Done()
}

func (e *stdEngine) Close() error {
	e.mu.Lock()
	e.closed = true
	var lns []net.Listener
	for ln := range e.listeners {
		lns = append(lns, ln)
	}
	var conns []*conn
	for c := range e.conns {
		conns = append(conns, c)
	}
	e.mu.Unlock()

	for _, ln := range lns {
		ln.Close()
	}
	// Kill connections before cancelling the shared context, so no
	// handler that returns on cancellation gets its response written.
	for _, c := range conns {
		c.kill()
	}
	e.cancel()
	e.wg.Wait()
	return nil
}

func (e *stdEngine) Stats() Stats { return e.st.snapshot() }
