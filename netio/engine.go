// Package netio holds Sluice's network engines and the Kafka wire framing.
//
// An Engine accepts connections, splits the byte stream into size-prefixed
// frames, decodes request headers, runs a Handler per request and writes the
// responses back in request order, prefixed with the response header. It
// knows nothing about topics or the bodies of requests and responses.
//
// Responses are lists of byte slices and file ranges (see Response) so that
// engines can send log data without copying it through Go memory: the std
// engine uses writev for byte slices and sendfile(2) for file ranges.
package netio

import (
	"context"
	"errors"
	"net"
	"time"
)

// Request is one decoded request. Body and ClientID belong to the handler.
type Request struct {
	Key           int16
	Version       int16
	CorrelationID int32
	ClientID      *string // nil for a null client id
	// Body is the request after the header; tagged fields of a v2 header
	// have been skipped.
	Body []byte
	Conn ConnInfo
}

// ConnInfo identifies the connection a request arrived on.
type ConnInfo struct {
	ID     uint64 // unique per engine, increasing
	Remote net.Addr
	Local  net.Addr
}

// Handler serves requests.
type Handler interface {
	// Handle returns the response to req, or nil when there is none (Produce
	// with acks=0). The requests of one connection are handled one at a
	// time, in arrival order (clients rely on pipelined Produce requests
	// being applied in order), while up to Config.MaxInFlightPerConn more
	// are read ahead; different connections are handled concurrently.
	// Handle may block (long-polling Fetch), but must return soon after ctx
	// is done: ctx is cancelled when the connection dies or the engine is
	// closing, and Engine.Close waits for every handler. A panic is
	// recovered and closes the connection.
	Handle(ctx context.Context, req *Request) *Response
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, req *Request) *Response

// Handle calls f(ctx, req).
func (f HandlerFunc) Handle(ctx context.Context, req *Request) *Response { return f(ctx, req) }

// Engine serves Kafka connections with a Handler.
type Engine interface {
	// Serve accepts connections on ln until Close (then, or when called
	// after Close, it returns ErrEngineClosed) or until ln fails
	// permanently. It may be called for several listeners.
	// The engine owns ln and closes it.
	Serve(ln net.Listener) error
	// Close stops accepting, closes every connection, cancels handler
	// contexts and waits until all goroutines of the engine have exited and
	// every pending Response was released. It is idempotent. Because it
	// waits for handlers, it must not be called from a Handler, and a
	// handler that ignores ctx delays it.
	Close() error
	// Stats returns a snapshot of the engine's counters.
	Stats() Stats
}

// ErrEngineClosed is returned by Serve once the engine was closed.
var ErrEngineClosed = errors.New("netio: engine closed")

// Stats are engine counters. Each field is read atomically, but the snapshot
// as a whole is not.
type Stats struct {
	Accepted      int64 // connections accepted (excluding refused ones)
	Refused       int64 // connections closed right away because of MaxConnections
	Closed        int64 // accepted connections closed since
	Open          int64 // connections currently open
	RequestsIn    int64 // request frames read
	ResponsesOut  int64 // responses fully written
	BytesIn       int64 // bytes of request frames, size prefixes included
	BytesCopied   int64 // bytes written from Go memory: headers, byte parts, copied file ranges
	BytesZeroCopy int64 // file bytes written by the kernel (sendfile)
	HandlerPanics int64 // handler panics recovered
}

// Observer receives the timings of each handled request, for metrics. It is
// called on engine goroutines (an io_uring ring's included), so it must be
// cheap and must never block.
type Observer interface {
	RequestDone(RequestTiming)
}

// RequestTiming splits a request's time in the broker into the three parts
// an operator tells apart when latency grows: waiting behind the
// connection's earlier requests, the handler, and writing the response.
type RequestTiming struct {
	Key, Version int16
	Queue        time.Duration // frame read until its handler started
	Handle       time.Duration // the handler
	Send         time.Duration // handler returned until the response was written; 0 without a response
}

// timing is the clock readings of one request; the zero value means "not
// observed", so engines without an Observer never read the clock.
type timing struct{ read, start, end time.Time }

// report hands t to o as a RequestTiming, the response written at sent
// (zero when there was none).
func (t *timing) report(o Observer, key, version int16, sent time.Time) {
	rt := RequestTiming{Key: key, Version: version, Queue: t.start.Sub(t.read), Handle: t.end.Sub(t.start)}
	if !sent.IsZero() {
		rt.Send = sent.Sub(t.end)
	}
	o.RequestDone(rt)
}

// Defaults of Config.
const (
	// DefaultMaxInFlightPerConn bounds the requests read ahead per connection.
	// Kafka's queued.max.requests (500) is broker wide; well-behaved clients
	// pipeline at most max.in.flight.requests.per.connection (5 by default),
	// so 32 leaves room without letting one connection hog the broker.
	DefaultMaxInFlightPerConn = 32
	// DefaultIdleTimeout is Kafka's connections.max.idle.ms default.
	DefaultIdleTimeout = 10 * time.Minute
)

// Config tunes an engine. The zero value means the defaults.
type Config struct {
	// MaxRequestBytes is socket.request.max.bytes: a bigger (or negative)
	// frame size closes the connection. Default DefaultMaxRequestBytes.
	MaxRequestBytes int32
	// MaxInFlightPerConn is the number of requests of one connection that
	// may be read but not yet answered at once (one being handled, the rest
	// queued). When reached, the engine stops reading from that connection:
	// that is the back-pressure. Default DefaultMaxInFlightPerConn.
	MaxInFlightPerConn int
	// IdleTimeout closes a connection that has neither sent a request nor
	// had one in progress for this long (connections.max.idle.ms). It also
	// bounds writing a single response. Default DefaultIdleTimeout.
	IdleTimeout time.Duration
	// MaxConnections, if > 0, closes newly accepted connections right away
	// while that many are open.
	MaxConnections int
	// Observer, if set, is told the timings of every request handled.
	Observer Observer
	// Engine selects the implementation for NewEngine: EngineAuto (the
	// default), EngineUring or EngineStd. Constructors of one specific
	// engine ignore it.
	Engine string
	// UringMode pins how io_uring rings wait (one of RingModes) and skips
	// the wake-up self-test; "" or "auto" measures it at the first start
	// (uring_selftest_linux.go). With Engine auto, a pinned mode means
	// io_uring in that mode, unmeasured: the operator chose it.
	UringMode string
}

func (c Config) withDefaults() Config {
	if c.MaxRequestBytes <= 0 {
		c.MaxRequestBytes = DefaultMaxRequestBytes
	}
	if c.MaxInFlightPerConn <= 0 {
		c.MaxInFlightPerConn = DefaultMaxInFlightPerConn
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	return c
}
