package netio

import (
	"bufio"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"
)

// readBufSize is the bufio size per connection: large enough to take most
// small requests (metadata, heartbeats, fetches) in one read syscall.
const readBufSize = 32 << 10

// slot is the place of one request in the connection's response order. The
// handler goroutine sends exactly one value (possibly nil) on done.
type slot struct {
	key, version int16
	corr         int32
	done         chan *Response // buffered: the handler never blocks on it
	t            timing         // set only with an Observer; start/end are written before done is sent
}

// conn is one client connection of the std engine.
//
// Goroutines: serve runs the read loop; it starts writeLoop and processLoop.
// Requests of one connection are handled one at a time, in arrival order, as
// Kafka does: a client pipelines several Produce requests for a partition and
// relies on them being applied in the order sent (idempotent sequence
// numbers fail otherwise). Pipelining still pays off, because reading the
// next requests and writing earlier responses overlap with handling.
//
// The sem channel holds one token per request that has been read but not yet
// answered (plus one held by the reader while it reads the next frame), so at
// most MaxInFlightPerConn requests are queued and the reader stops reading
// once that many are. The reader pushes each request onto work and its slot
// onto queue, in arrival order; the processor answers work in that order;
// the writer takes the slots in the same order, waits for each answer, writes
// (or drops) its response and releases the token.
//
// Shutdown: kill cancels ctx and closes the socket, which fails any pending
// read or write. The reader then closes queue; the writer drains it, still
// waiting for every handler so that each Response is released exactly once;
// serve waits for the writer and the handlers before unregistering.
type conn struct {
	e      *stdEngine
	nc     net.Conn
	info   ConnInfo
	log    *slog.Logger
	ctx    context.Context
	cancel context.CancelFunc

	sem      chan struct{}
	queue    chan *slot
	work     chan job
	handlers sync.WaitGroup

	killOnce sync.Once
	killed   atomic.Bool

	w      respWriter
	hdrBuf [responseHeaderLen]byte
}

func newConn(e *stdEngine, nc net.Conn) *conn {
	ctx, cancel := context.WithCancel(e.ctx)
	c := &conn{
		e:      e,
		nc:     nc,
		ctx:    ctx,
		cancel: cancel,
		sem:    make(chan struct{}, e.cfg.MaxInFlightPerConn),
		queue:  make(chan *slot, e.cfg.MaxInFlightPerConn),
		work:   make(chan job, e.cfg.MaxInFlightPerConn),
	}
	c.info = ConnInfo{ID: e.nextID.Add(1), Remote: nc.RemoteAddr(), Local: nc.LocalAddr()}
	c.log = e.log.With("conn", c.info.ID, "remote", c.info.Remote)
	c.w = newRespWriter(nc, &e.st)
	return c
}

// kill cancels the connection's context and closes its socket. Safe to call
// from any goroutine, any number of times.
func (c *conn) kill() {
	c.killOnce.Do(func() {
		c.killed.Store(true)
		c.cancel()
		c.nc.Close()
	})
}

func (c *conn) serve() {
	defer c.e.connDone(c)
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writeLoop()
	}()
	c.handlers.Add(1)
	go c.processLoop()

	err := c.readLoop()
	c.logReadEnd(err)
	if !errors.Is(err, io.EOF) {
		// Out of sync, idle or killed: pending responses are pointless.
		c.kill()
	}
	// The reader is the only sender on queue and work.
	close(c.queue)
	close(c.work)
	// Nothing more will come from the peer: tell long-polling handlers to
	// finish. Responses already produced are still written if the socket
	// is usable (a client may half-close after its last request).
	c.cancel()
	<-writerDone
	c.handlers.Wait()
	c.kill()
}

// readLoop reads and dispatches requests until the connection ends; it
// returns why.
func (c *conn) readLoop() error {
	fr := NewFrameReader(bufio.NewReaderSize(c.nc, readBufSize), c.e.cfg.MaxRequestBytes)
	for {
		// Back-pressure: wait for an in-flight slot before reading more.
		select {
		case c.sem <- struct{}{}:
		case <-c.ctx.Done():
			return c.ctx.Err()
		}
		payload, err := c.readFrame(fr)
		if err != nil {
			<-c.sem
			return err
		}
		c.e.st.requestsIn.Add(1)
		c.e.st.bytesIn.Add(4 + int64(len(payload)))
		hdr, body, err := ReadRequestHeader(payload)
		if err != nil {
			<-c.sem
			return err
		}
		req := &Request{
			Key:           hdr.Key,
			Version:       hdr.Version,
			CorrelationID: hdr.CorrelationID,
			ClientID:      hdr.ClientID,
			Body:          body,
			Conn:          c.info,
		}
		s := &slot{key: hdr.Key, version: hdr.Version, corr: hdr.CorrelationID, done: make(chan *Response, 1)}
		if c.e.cfg.Observer != nil {
			s.t.read = time.Now()
		}
		// Never blocks: every queued slot holds a sem token and both
		// channels have room for all of them.
		c.work <- job{req, s}
		c.queue <- s
	}
}

// readFrame reads the next frame under the idle timeout.
func (c *conn) readFrame(fr *FrameReader) ([]byte, error) {
	idle := c.e.cfg.IdleTimeout
	for {
		if err := c.nc.SetReadDeadline(time.Now().Add(idle)); err != nil {
			return nil, err
		}
		p, err := fr.Next()
		if err == nil {
			return p, nil
		}
		// A connection waiting for its own long-running requests is not
		// idle. The reader holds one token itself.
		if errors.Is(err, os.ErrDeadlineExceeded) && !fr.InFrame() && len(c.sem) > 1 && c.ctx.Err() == nil {
			continue
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errIdle
		}
		return nil, err
	}
}

var errIdle = errors.New("netio: idle timeout")

func (c *conn) logReadEnd(err error) {
	logConnEnd(c.log, err, c.killed.Load() || errors.Is(err, context.Canceled), c.e.cfg.IdleTimeout)
}

// errWriteTimeout ends a connection whose response took longer than the
// idle timeout to write (a peer that stopped reading).
var errWriteTimeout = errors.New("netio: writing a response timed out")

// logConnEnd logs why a connection ended, at a level that says whether an
// operator should care; both engines use it. byEngine marks closes the
// engine itself caused (shutdown, a killed connection).
func logConnEnd(log *slog.Logger, err error, byEngine bool, idle time.Duration) {
	switch {
	case byEngine:
		log.Debug("connection closed by engine", "err", err)
	case errors.Is(err, io.EOF):
		log.Debug("connection closed by client")
	case errors.Is(err, ErrFrameTooLarge), errors.Is(err, ErrInvalidFrameSize):
		// Kafka logs this too: it usually means a misconfigured client or
		// a non-Kafka client (TLS, HTTP) talking to a plaintext port.
		log.Warn("closing connection: bad frame size (socket.request.max.bytes)", "err", err)
	case errors.Is(err, ErrMalformedHeader):
		log.Warn("closing connection: malformed request header", "err", err)
	case errors.Is(err, errIdle):
		log.Info("closing idle connection", "idle_timeout", idle)
	case errors.Is(err, errWriteTimeout):
		log.Info("closing connection: writing a response took longer than the idle timeout", "idle_timeout", idle)
	default:
		log.Debug("connection failed", "err", err)
	}
}

// job is one read request waiting for the processor.
type job struct {
	req *Request
	s   *slot
}

// processLoop handles the connection's requests one at a time, in order.
// Once the connection is dead the remaining requests are answered with nil
// without running them: nobody would read their responses.
func (c *conn) processLoop() {
	defer c.handlers.Done()
	for j := range c.work {
		if c.killed.Load() {
			j.s.done <- nil
			continue
		}
		if c.e.cfg.Observer == nil {
			j.s.done <- c.callHandler(j.req)
			continue
		}
		j.s.t.start = time.Now()
		resp := c.callHandler(j.req)
		j.s.t.end = time.Now()
		j.s.done <- resp
	}
}

// callHandler runs the handler, turning a panic into a closed connection: a
// bug in one request must not take the broker down, and the connection's
// response stream cannot continue without the missing response.
func (c *conn) callHandler(req *Request) (resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			c.e.st.panicsSeen.Add(1)
			c.log.Error("handler panicked; closing connection",
				"api_key", req.Key, "api_version", req.Version,
				"correlation_id", req.CorrelationID, "panic", p, "stack", string(debug.Stack()))
			c.kill()
			resp = nil
		}
	}()
	return c.e.h.Handle(c.ctx, req)
}

func (c *conn) writeLoop() {
	for s := range c.queue {
		resp := <-s.done
		written := resp != nil && c.writeOne(s, resp)
		if o := c.e.cfg.Observer; o != nil && !s.t.end.IsZero() && (written || resp == nil) {
			var sent time.Time
			if written {
				sent = time.Now()
			}
			s.t.report(o, s.key, s.version, sent)
		}
		<-c.sem
	}
}

// writeOne writes resp unless the connection is dead, then releases it. It
// reports whether the response went out.
func (c *conn) writeOne(s *slot, resp *Response) bool {
	defer c.release(resp)
	if c.killed.Load() {
		return false
	}
	if resp.CloseAfter && len(resp.Parts()) == 0 {
		// Nothing to say (the request could not be understood): close
		// without a response, which is what a Kafka client expects then.
		c.log.Debug("closing connection without a response", "api_key", s.key, "correlation_id", s.corr)
		c.kill()
		return false
	}
	hdr, err := putResponseHeader(&c.hdrBuf, s.corr, FlexibleResponse(s.key, s.version), resp.Len())
	if err == nil {
		err = c.nc.SetWriteDeadline(time.Now().Add(c.e.cfg.IdleTimeout))
	}
	if err == nil {
		err = c.w.write(hdr, resp)
	}
	if err != nil {
		if !c.killed.Load() {
			c.log.Debug("writing response failed; closing connection",
				"api_key", s.key, "correlation_id", s.corr, "err", err)
		}
		c.kill()
		return false
	}
	c.e.st.responsesOut.Add(1)
	if resp.CloseAfter {
		// Shut down the write side first so the response is followed by
		// a FIN rather than racing the close.
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		c.kill()
	}
	return true
}

// release runs resp.Release, shielding the writer from a panic in it.
func (c *conn) release(resp *Response) {
	defer func() {
		if p := recover(); p != nil {
			c.log.Error("Response.Release panicked", "panic", p, "stack", string(debug.Stack()))
		}
	}()
	resp.release()
}
