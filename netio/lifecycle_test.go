package netio

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

func TestCloseWithBlockedHandlers(t *testing.T) { forEachEngine(t, testCloseWithBlockedHandlers) }

func testCloseWithBlockedHandlers(t *testing.T, ne newEngineFunc) {
	check := leakCheck(t)
	var started, cancelled atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		started.Add(1)
		<-ctx.Done()
		cancelled.Add(1)
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{}, h)
	var clients []*testClient
	for range 5 {
		c := dial(t, s)
		for i := range 3 {
			c.send(keyMetadata, 1, int32(i), nil)
		}
		clients = append(clients, c)
	}
	// One handler per connection runs; the other two requests wait behind it.
	testkit.Eventually(t, patience, "handlers started", func() bool { return started.Load() == 5 })
	t0 := time.Now()
	s.close(t)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v", d)
	}
	// The queued requests of a dead connection are never run.
	if cancelled.Load() != 5 || started.Load() != 5 {
		t.Fatalf("started %d, cancelled %d; want 5 and 5", started.Load(), cancelled.Load())
	}
	if st := s.eng.Stats(); st.Open != 0 || st.Closed != 5 {
		t.Fatalf("stats %+v", st)
	}
	for _, c := range clients {
		c.expectClosed()
		c.nc.Close()
	}
	check()
}

func TestIdleTimeout(t *testing.T) { forEachEngine(t, testIdleTimeout) }

func testIdleTimeout(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		if req.CorrelationID == 1 {
			time.Sleep(400 * time.Millisecond) // longer than the idle timeout
		}
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{IdleTimeout: 100 * time.Millisecond}, h)
	idle := dial(t, s)
	busy := dial(t, s)
	busy.send(keyMetadata, 1, 1, nil)
	t0 := time.Now()
	idle.expectClosed()
	if d := time.Since(t0); d < 50*time.Millisecond {
		t.Fatalf("idle connection closed after %v", d)
	}
	if corr, _ := busy.recvFor(keyMetadata, 1); corr != 1 {
		t.Fatalf("corr %d", corr)
	}
	busy.expectClosed() // idle after its response
}

func TestMaxConnections(t *testing.T) { forEachEngine(t, testMaxConnections) }

func testMaxConnections(t *testing.T, ne newEngineFunc) {
	s := startEngine(t, ne, Config{MaxConnections: 2}, HandlerFunc(echoCorr))
	a, b := dial(t, s), dial(t, s)
	for i, c := range []*testClient{a, b} {
		c.send(keyMetadata, 1, int32(i), nil)
		c.recvFor(keyMetadata, 1)
	}
	c := dial(t, s)
	c.expectClosed()
	if st := s.eng.Stats(); st.Refused != 1 || st.Accepted != 2 {
		t.Fatalf("stats %+v", st)
	}
	a.nc.Close()
	testkit.Eventually(t, patience, "slot freed", func() bool { return s.eng.Stats().Open == 1 })
	d := dial(t, s)
	d.send(keyMetadata, 1, 9, nil)
	if corr, _ := d.recvFor(keyMetadata, 1); corr != 9 {
		t.Fatalf("corr %d", corr)
	}
}

func TestServeAfterClose(t *testing.T) { forEachEngine(t, testServeAfterClose) }

func testServeAfterClose(t *testing.T, ne newEngineFunc) {
	s := startEngine(t, ne, Config{}, HandlerFunc(echoCorr))
	s.close(t)
	eng := ne(Config{}, HandlerFunc(echoCorr))
	eng.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := eng.Serve(ln); err != ErrEngineClosed {
		t.Fatalf("Serve after Close: %v", err)
	}
}

func TestReleaseOnWriteFailure(t *testing.T) { forEachEngine(t, testReleaseOnWriteFailure) }

func testReleaseOnWriteFailure(t *testing.T, ne newEngineFunc) {
	check := leakCheck(t)
	var rel countingRelease
	var conns sync.Map
	big := make([]byte, 32<<20) // far more than socket buffers hold
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		conns.Store(req.Conn.ID, req.Conn)
		return rel.respond(big)
	})
	s := startEngine(t, ne, Config{}, h)
	for range 3 {
		c := dial(t, s)
		c.send(keyMetadata, 1, 1, nil)
		buf := make([]byte, 10)
		if _, err := c.br.Read(buf); err != nil {
			t.Fatal(err)
		}
		c.nc.Close() // vanish mid-response
	}
	testkit.Eventually(t, patience, "releases", func() bool { return rel.n.Load() == 3 })
	testkit.Eventually(t, patience, "closed", func() bool { return s.eng.Stats().Open == 0 })
	n := 0
	conns.Range(func(k, v any) bool {
		if ci := v.(ConnInfo); ci.Remote == nil || ci.Local == nil || ci.ID == 0 {
			t.Errorf("conn info %+v", ci)
		}
		n++
		return true
	})
	if n != 3 {
		t.Errorf("%d distinct connection ids, want 3", n)
	}
	s.close(t)
	if rel.n.Load() != 3 {
		t.Fatalf("releases %d", rel.n.Load())
	}
	check()
}

func TestHalfCloseStillAnswered(t *testing.T) { forEachEngine(t, testHalfCloseStillAnswered) }

func testHalfCloseStillAnswered(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		time.Sleep(20 * time.Millisecond)
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 1, nil)
	c.send(keyMetadata, 1, 2, nil)
	c.nc.(interface{ CloseWrite() error }).CloseWrite()
	for i := int32(1); i <= 2; i++ {
		if corr, _ := c.recvFor(keyMetadata, 1); corr != i {
			t.Fatalf("corr %d", corr)
		}
	}
	c.expectClosed()
}

func TestCloseAfter(t *testing.T) { forEachEngine(t, testCloseAfter) }

func testCloseAfter(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := echoCorr(ctx, req)
		r.CloseAfter = req.Version > 5
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 1, nil)
	c.send(keyMetadata, 6, 2, nil)
	c.recvFor(keyMetadata, 1)
	if corr, _ := c.recvFor(keyMetadata, 6); corr != 2 {
		t.Fatalf("corr %d", corr)
	}
	c.expectClosed()
}

func TestCloseAfterWithoutPartsWritesNothing(t *testing.T) {
	forEachEngine(t, testCloseAfterWithoutPartsWritesNothing)
}

func testCloseAfterWithoutPartsWritesNothing(t *testing.T, ne newEngineFunc) {
	check := leakCheck(t)
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		if req.CorrelationID == 2 {
			return &Response{CloseAfter: true}
		}
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 1, nil)
	c.send(keyMetadata, 1, 2, nil)
	if corr, _ := c.recvFor(keyMetadata, 1); corr != 1 {
		t.Fatalf("first response corr %d", corr)
	}
	c.expectClosed()
	c.nc.Close()
	s.close(t)
	check()
}
