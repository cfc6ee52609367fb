package quorumnet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/netio"
)

// fake is a quorum peer on the netio std engine: it parses requests the
// way the broker does and answers with serve.
type fake struct {
	addr string
	eng  netio.Engine
}

type serveFunc func(ctx context.Context, r netio.Request, req Request) Response

func startFake(t testing.TB, addr string, serve serveFunc) *fake {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	eng, _, err := netio.NewEngine(netio.Config{Engine: netio.EngineStd}, netio.HandlerFunc(func(ctx context.Context, r *netio.Request) *netio.Response {
		if r.Key != APIKey || r.Version != APIVersion {
			return &netio.Response{CloseAfter: true}
		}
		req, err := ParseRequest(r.Body)
		if err != nil {
			return &netio.Response{CloseAfter: true}
		}
		out := &netio.Response{}
		out.AppendBytes(serve(ctx, *r, req).AppendTo(nil))
		return out
	}), nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = eng.Serve(ln) }()
	f := &fake{addr: ln.Addr().String(), eng: eng}
	t.Cleanup(f.stop)
	return f
}

func (f *fake) stop() { _ = f.eng.Close() }

// echo answers envelopes with an ack after handing them to got (if not
// nil), and fetches with the fetch offset as the high watermark.
func echo(got chan<- Request) serveFunc {
	return func(ctx context.Context, _ netio.Request, req Request) Response {
		if req.Channel == ChannelEnvelope {
			if got != nil {
				got <- Request{From: req.From, Channel: req.Channel, Payload: append([]byte(nil), req.Payload...)}
			}
			return Response{}
		}
		out, err := FetchHandler(func(_ context.Context, fr metarepl.FetchRequest) metarepl.FetchResponse {
			return metarepl.FetchResponse{Epoch: fr.CurrentEpoch, HighWatermark: fr.FetchOffset}
		})(ctx, req.From, req.Payload)
		if err != nil {
			return Response{ErrorCode: CodeHandlerFailed, ErrorMessage: err.Error()}
		}
		return Response{Payload: out}
	}
}

func newClient(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.NodeID == 0 {
		cfg.NodeID = 5
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func fetchReq(id int32, offset int64) metarepl.FetchRequest {
	return metarepl.FetchRequest{Replica: metalog.Voter{ID: id}, CurrentEpoch: 3, FetchOffset: offset, MaxWaitMs: 100}
}

func fetch(c *Client, to int32, offset int64, within time.Duration) (metarepl.FetchResponse, error) {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	return c.Fetch(ctx, to, fetchReq(c.cfg.NodeID, offset))
}

// An envelope arrives with this node's id and its bytes; a fetch comes
// back with its own answer.
func TestEnvelopeAndFetchReachThePeer(t *testing.T) {
	got := make(chan Request, 100)
	f := startFake(t, "127.0.0.1:0", echo(got))
	c := newClient(t, Config{NodeID: 5, Peers: map[int32]string{5: "self:1", 1: f.addr}})
	var first Request
	testkit.Eventually(t, 5*time.Second, "an envelope to arrive", func() bool {
		c.Send(1, []byte("prepare"))
		select {
		case first = <-got:
			return true
		case <-time.After(20 * time.Millisecond):
			return false
		}
	})
	if first.From != 5 || first.Channel != ChannelEnvelope || string(first.Payload) != "prepare" {
		t.Fatalf("got %+v", first)
	}
	resp, err := fetch(c, 1, 42, 5*time.Second)
	if err != nil || resp.Epoch != 3 || resp.HighWatermark != 42 {
		t.Fatalf("fetch: %+v, %v", resp, err)
	}
	// Sent counts after the write returns, which may be after the peer
	// has the envelope.
	testkit.Eventually(t, 5*time.Second, "the sent envelopes to be counted", func() bool { return c.Stats().Sent > 0 })
	if s := c.Stats(); s.Refused != 0 {
		t.Fatalf("stats %+v", s)
	}
	if _, err := fetch(c, 9, 0, time.Second); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("fetch from an unknown peer: %v", err)
	}
	if _, err := fetch(c, 5, 0, time.Second); !errors.Is(err, ErrUnknownPeer) {
		t.Fatalf("fetch from itself: %v", err)
	}
}

// Concurrent fetches share one connection and each gets its own answer.
func TestFetchesPipelineByCorrelationID(t *testing.T) {
	f := startFake(t, "127.0.0.1:0", echo(nil))
	c := newClient(t, Config{Peers: map[int32]string{1: f.addr}})
	var wg sync.WaitGroup
	errs := make(chan error, 50)
	for i := range 50 {
		wg.Go(func() {
			resp, err := fetch(c, 1, int64(i), 5*time.Second)
			if err == nil && resp.HighWatermark != int64(i) {
				err = fmt.Errorf("fetch %d answered %d", i, resp.HighWatermark)
			}
			if err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// Errors the peer answers with reach the caller: a fetch fails wrapping
// the Kafka error, a refused envelope is counted.
func TestRefusalsReachTheCaller(t *testing.T) {
	f := startFake(t, "127.0.0.1:0", func(context.Context, netio.Request, Request) Response {
		return Response{ErrorCode: CodeNoHandler, ErrorMessage: "no voter here"}
	})
	c := newClient(t, Config{Peers: map[int32]string{1: f.addr}})
	_, err := fetch(c, 1, 0, 5*time.Second)
	if !errors.Is(err, kerr.BrokerNotAvailable) {
		t.Fatalf("fetch: %v, want BROKER_NOT_AVAILABLE", err)
	}
	testkit.Eventually(t, 5*time.Second, "a refused envelope", func() bool {
		c.Send(1, []byte("x"))
		return c.Stats().Refused > 0
	})
}

// A fetch whose ctx ends while the peer holds it closes the connection,
// which cancels it there, and the next fetch goes through at once on a
// new one.
func TestAbandonedFetchClosesItsConnection(t *testing.T) {
	cancelled := make(chan struct{})
	base := echo(nil)
	f := startFake(t, "127.0.0.1:0", func(ctx context.Context, r netio.Request, req Request) Response {
		var fr metarepl.FetchRequest
		if req.Channel == ChannelFetch && fr.UnmarshalBinary(req.Payload) == nil && fr.FetchOffset == 1 {
			<-ctx.Done() // a long poll that never ends by itself
			close(cancelled)
			return Response{ErrorCode: CodeHandlerFailed}
		}
		return base(ctx, r, req)
	})
	c := newClient(t, Config{Peers: map[int32]string{1: f.addr}})
	if _, err := fetch(c, 1, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := fetch(c, 1, 1, 200*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("held fetch: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("held fetch returned after %v", d)
	}
	select {
	case <-cancelled:
	case <-time.After(5 * time.Second):
		t.Fatal("the peer still holds the abandoned fetch")
	}
	if resp, err := fetch(c, 1, 2, 5*time.Second); err != nil || resp.HighWatermark != 2 {
		t.Fatalf("fetch after an abandoned one: %+v, %v", resp, err)
	}
}

// A peer that goes down: fetches fail at once and envelopes are dropped;
// once it is back on its address the client reconnects by itself.
func TestPeerDownThenBack(t *testing.T) {
	got := make(chan Request, 1000)
	f := startFake(t, "127.0.0.1:0", echo(got))
	c := newClient(t, Config{Peers: map[int32]string{1: f.addr}, MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond})
	if _, err := fetch(c, 1, 0, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	f.stop()
	testkit.Eventually(t, 5*time.Second, "fetches to fail at once and envelopes to be dropped", func() bool {
		start := time.Now()
		_, err := fetch(c, 1, 0, 2*time.Second)
		dropped := c.Stats().Dropped
		c.Send(1, []byte("lost"))
		return errors.Is(err, ErrUnreachable) && time.Since(start) < time.Second && c.Stats().Dropped > dropped
	})
	dropped := c.Stats().Dropped
	start := time.Now()
	for range 100 {
		c.Send(1, []byte("lost"))
	}
	if d := time.Since(start); d > time.Second {
		t.Fatalf("100 Sends to a dead peer took %v", d)
	}
	if s := c.Stats(); s.Dropped < dropped+100 {
		t.Fatalf("dropped %d of 100 envelopes to a dead peer", s.Dropped-dropped)
	}
	startFake(t, f.addr, echo(got))
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		_, err := fetch(c, 1, 7, time.Second)
		return err
	})
	testkit.Eventually(t, 5*time.Second, "an envelope after the restart", func() bool {
		c.Send(1, []byte("again"))
		for {
			select {
			case r := <-got:
				if string(r.Payload) == "again" {
					return true
				}
			case <-time.After(20 * time.Millisecond):
				return false
			}
		}
	})
}

// Send never waits: with the peer stuck and a small queue, it drops.
func TestSendDropsWhenTheQueueIsFull(t *testing.T) {
	release := make(chan struct{})
	var handled atomic.Int64
	f := startFake(t, "127.0.0.1:0", func(ctx context.Context, _ netio.Request, req Request) Response {
		if handled.Add(1) > 1 {
			select {
			case <-release:
			case <-ctx.Done():
			}
		}
		return Response{}
	})
	c := newClient(t, Config{Peers: map[int32]string{1: f.addr}, QueueSize: 4})
	testkit.Eventually(t, 5*time.Second, "the first envelope", func() bool {
		c.Send(1, []byte("x"))
		return handled.Load() > 0
	})
	payload := make([]byte, 4096)
	start := time.Now()
	for range 20000 {
		c.Send(1, payload)
	}
	d := time.Since(start)
	close(release)
	if d > 2*time.Second {
		t.Fatalf("20000 Sends to a stuck peer took %v", d)
	}
	if s := c.Stats(); s.Dropped == 0 {
		t.Fatalf("nothing dropped with a stuck peer: %+v", s)
	}
}

// listen runs accept on a raw TCP listener until the test ends.
func listen(t *testing.T, accept func(net.Conn)) (string, *atomic.Int64) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var n atomic.Int64
	var wg sync.WaitGroup
	t.Cleanup(func() { _ = ln.Close(); wg.Wait() })
	wg.Go(func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			n.Add(1)
			wg.Go(func() { accept(conn) })
		}
	})
	return ln.Addr().String(), &n
}

// A peer that reads but never answers is taken for dead within IOTimeout,
// not left to the fetch's own deadline.
func TestSilentPeerFailsWithinIOTimeout(t *testing.T) {
	addr, _ := listen(t, func(conn net.Conn) {
		defer conn.Close()
		buf := make([]byte, 4096)
		for {
			if _, err := conn.Read(buf); err != nil {
				return
			}
		}
	})
	c := newClient(t, Config{Peers: map[int32]string{1: addr}, IOTimeout: 200 * time.Millisecond})
	start := time.Now()
	_, err := fetch(c, 1, 0, 10*time.Second)
	if !errors.Is(err, ErrUnreachable) {
		t.Fatalf("fetch from a silent peer: %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("silent peer found after %v", d)
	}
}

// An answer to a correlation id not in flight means the stream cannot be
// trusted: the connection is dropped and made again.
func TestWrongCorrelationIDDropsTheConnection(t *testing.T) {
	addr, accepts := listen(t, func(conn net.Conn) {
		defer conn.Close()
		fr := netio.NewFrameReader(conn, 0)
		for {
			payload, err := fr.Next()
			if err != nil {
				return
			}
			h, _, _ := netio.ReadRequestHeader(payload)
			body := Response{}.AppendTo([]byte{0, 0, 0, 0, 0, 0, 0, 0})
			putU32(body, uint32(len(body)-4))
			putU32(body[4:], uint32(h.CorrelationID+1000))
			if _, err := conn.Write(body); err != nil {
				return
			}
		}
	})
	c := newClient(t, Config{Peers: map[int32]string{1: addr}, MinBackoff: 10 * time.Millisecond})
	if _, err := fetch(c, 1, 0, 5*time.Second); !errors.Is(err, ErrUnreachable) {
		t.Fatalf("fetch answered with a wrong correlation id: %v", err)
	}
	testkit.Eventually(t, 5*time.Second, "a new connection", func() bool { return accepts.Load() >= 3 })
}

func putU32(b []byte, v uint32) {
	b[0], b[1], b[2], b[3] = byte(v>>24), byte(v>>16), byte(v>>8), byte(v)
}

// Connection attempts to a peer that hangs up at once back off, doubling
// up to MaxBackoff and no further.
func TestReconnectBackoffIsCapped(t *testing.T) {
	addr, accepts := listen(t, func(conn net.Conn) { _ = conn.Close() })
	c := newClient(t, Config{Peers: map[int32]string{1: addr}, MinBackoff: 5 * time.Millisecond, MaxBackoff: 40 * time.Millisecond})
	time.Sleep(time.Second)
	_ = c.Close()
	// Two links. Per link: 5+10+20 ms, then 40 ms (+ up to 25% jitter)
	// for the rest of the second, about 24 attempts; no backoff would be
	// 200, an uncapped one about 8.
	if n := accepts.Load(); n < 28 || n > 150 {
		t.Fatalf("%d connection attempts in 1s by two links", n)
	}
}

// Close stops every goroutine, fails a fetch in flight, and the client
// stays harmless afterwards.
func TestCloseLeavesNoGoroutines(t *testing.T) {
	held := make(chan struct{})
	f := startFake(t, "127.0.0.1:0", func(ctx context.Context, _ netio.Request, req Request) Response {
		if req.Channel == ChannelFetch {
			close(held)
			<-ctx.Done()
		}
		return Response{}
	})
	dead := testkit.FreePorts(t, 1)[0]
	before := runtime.NumGoroutine()
	c, err := New(Config{NodeID: 5, Peers: map[int32]string{1: f.addr, 2: fmt.Sprintf("127.0.0.1:%d", dead)}})
	if err != nil {
		t.Fatal(err)
	}
	fetchErr := make(chan error, 1)
	go func() {
		_, err := fetch(c, 1, 0, 30*time.Second)
		fetchErr <- err
	}()
	<-held
	c.Send(1, []byte("x"))
	c.Send(2, []byte("x"))
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-fetchErr:
		if !errors.Is(err, ErrClosed) {
			t.Fatalf("fetch in flight at Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("fetch in flight still waits after Close")
	}
	if _, err := fetch(c, 1, 0, time.Second); !errors.Is(err, ErrClosed) {
		t.Fatalf("fetch after Close: %v", err)
	}
	c.Send(1, []byte("x"))
	testkit.EventuallyNil(t, 5*time.Second, func() error {
		if n := runtime.NumGoroutine(); n > before {
			return fmt.Errorf("%d goroutines after Close, %d before New", n, before)
		}
		return nil
	})
}
