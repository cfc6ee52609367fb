package netio

import (
	"bytes"
	"context"
	"encoding/binary"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

const (
	keyProduce  int16 = 0
	keyMetadata int16 = 3
)

// echoCorr answers every request with "resp-<correlation id>".
func echoCorr(ctx context.Context, req *Request) *Response {
	r := &Response{}
	r.AppendBytes(corrBody(req.CorrelationID))
	return r
}

func TestInOrderResponsesWithOutOfOrderHandlers(t *testing.T) {
	forEachEngine(t, testInOrderResponsesWithOutOfOrderHandlers)
}

func testInOrderResponsesWithOutOfOrderHandlers(t *testing.T, ne newEngineFunc) {
	check := leakCheck(t)
	var running, maxRunning atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		n := running.Add(1)
		for m := maxRunning.Load(); n > m; m = maxRunning.Load() {
			if maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		running.Add(-1)
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{MaxInFlightPerConn: 64}, h)
	const conns, n = 4, 300
	var wg sync.WaitGroup
	for range conns {
		c := dial(t, s)
		wg.Add(1)
		go func() {
			defer wg.Done()
			go func() {
				for i := range n {
					c.send(keyMetadata, 1, int32(i), nil)
				}
			}()
			for i := range n {
				p, err := c.recv()
				if err != nil {
					t.Errorf("recv %d: %v", i, err)
					return
				}
				corr, body, _ := ReadResponseHeader(p, keyMetadata, 1)
				if corr != int32(i) || !bytes.Equal(body, corrBody(int32(i))) {
					t.Errorf("response %d: corr %d body %q", i, corr, body)
					return
				}
			}
			c.nc.Close()
		}()
	}
	wg.Wait()
	if maxRunning.Load() < 2 {
		t.Errorf("handlers never ran concurrently (max %d)", maxRunning.Load())
	}
	s.close(t)
	if st := s.eng.Stats(); st.RequestsIn != conns*n || st.ResponsesOut != conns*n || st.Open != 0 {
		t.Errorf("stats %+v", st)
	}
	check()
}

func TestNilResponsesSkipped(t *testing.T) { forEachEngine(t, testNilResponsesSkipped) }

func testNilResponsesSkipped(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if req.CorrelationID%3 == 0 { // acks=0 style
			return nil
		}
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	const n = 100
	for i := range n {
		c.send(keyProduce, 3, int32(i), nil)
	}
	for i := range n {
		if i%3 == 0 {
			continue
		}
		corr, body := c.recvFor(keyProduce, 3)
		if corr != int32(i) || !bytes.Equal(body, corrBody(int32(i))) {
			t.Fatalf("want %d, got corr %d body %q", i, corr, body)
		}
	}
	testkit.Eventually(t, patience, "stats", func() bool {
		st := s.eng.Stats()
		return st.RequestsIn == n && st.ResponsesOut == n-(n+2)/3
	})
}

func TestResponseHeaderBytes(t *testing.T) { forEachEngine(t, testResponseHeaderBytes) }

func testResponseHeaderBytes(t *testing.T, ne newEngineFunc) {
	var got sync.Map
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		got.Store(req.CorrelationID, req)
		r := &Response{}
		r.AppendBytes([]byte{0xAA, 0xBB})
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	cases := []struct {
		name         string
		key, version int16
		want         []byte // response payload after the size
	}{
		{"metadata v8 non-flexible", keyMetadata, 8, []byte{0, 0, 0, 1, 0xAA, 0xBB}},
		{"metadata v9 flexible", keyMetadata, 9, []byte{0, 0, 0, 2, 0, 0xAA, 0xBB}},
		{"apiversions v3 flexible request, v0 response header", ApiVersionsKey, 3, []byte{0, 0, 0, 3, 0xAA, 0xBB}},
		{"apiversions v2", ApiVersionsKey, 2, []byte{0, 0, 0, 4, 0xAA, 0xBB}},
		{"produce v9 flexible", keyProduce, 9, []byte{0, 0, 0, 5, 0, 0xAA, 0xBB}},
		{"unknown key", 9999, 0, []byte{0, 0, 0, 6, 0xAA, 0xBB}},
	}
	for i, tc := range cases {
		corr := int32(i + 1)
		body := []byte{1, 2, 3}
		c.send(tc.key, tc.version, corr, body)
		p, err := c.recv()
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if !bytes.Equal(p, tc.want) {
			t.Errorf("%s: payload % x, want % x", tc.name, p, tc.want)
		}
		v, _ := got.Load(corr)
		req := v.(*Request)
		if !bytes.Equal(req.Body, body) || req.Key != tc.key || req.Version != tc.version ||
			req.ClientID == nil || *req.ClientID != "test" {
			t.Errorf("%s: handler saw %+v", tc.name, req)
		}
	}

	// A v2 header with non-empty tagged fields: they are skipped.
	p := binary.BigEndian.AppendUint16([]byte{0, 0, 0, 0}, uint16(keyMetadata))
	p = binary.BigEndian.AppendUint16(p, 12)
	p = binary.BigEndian.AppendUint32(p, 77)
	p = binary.BigEndian.AppendUint16(p, 0xffff)     // null client id
	p = append(p, 2, 0, 3, 'a', 'b', 'c', 5, 1, 'z') // two tagged fields
	p = append(p, 9, 8, 7)
	binary.BigEndian.PutUint32(p, uint32(len(p)-4))
	c.nc.Write(p)
	corr, body := c.recvFor(keyMetadata, 12)
	v, _ := got.Load(int32(77))
	if req := v.(*Request); corr != 77 || !bytes.Equal(body, []byte{0xAA, 0xBB}) ||
		!bytes.Equal(req.Body, []byte{9, 8, 7}) || req.ClientID != nil {
		t.Errorf("tagged header: corr %d body % x, handler saw %+v", corr, body, req)
	}
}

func TestOversizedAndNegativeFramesClose(t *testing.T) {
	forEachEngine(t, testOversizedAndNegativeFramesClose)
}

func testOversizedAndNegativeFramesClose(t *testing.T, ne newEngineFunc) {
	s := startEngine(t, ne, Config{MaxRequestBytes: 1024}, HandlerFunc(echoCorr))
	c := dial(t, s)
	c.send(keyMetadata, 1, 1, make([]byte, 900)) // fits
	if corr, _ := c.recvFor(keyMetadata, 1); corr != 1 {
		t.Fatalf("corr %d", corr)
	}
	c.send(keyMetadata, 1, 2, make([]byte, 2000))
	c.expectClosed()

	c = dial(t, s)
	c.nc.Write([]byte{0xff, 0xff, 0xff, 0xf0, 1, 2, 3})
	c.expectClosed()
	testkit.Eventually(t, patience, "connections closed", func() bool { return s.eng.Stats().Open == 0 })
}

func TestGarbageAndHalfFramesDoNotLeak(t *testing.T) {
	forEachEngine(t, testGarbageAndHalfFramesDoNotLeak)
}

func testGarbageAndHalfFramesDoNotLeak(t *testing.T, ne newEngineFunc) {
	check := leakCheck(t)
	s := startEngine(t, ne, Config{}, HandlerFunc(echoCorr))
	full := frame(keyMetadata, 1, 1, nil, []byte("hello"))
	inputs := [][]byte{
		{},
		{0, 0},                 // half a size
		{0, 0, 0, 50, 1, 2, 3}, // half a frame
		full[:len(full)-2],     // frame missing its tail
		{0, 0, 0, 3, 1, 2, 3},  // payload too short for a header
		{0, 0, 0, 10, 0, 3, 0, 1, 0, 0, 0, 1, 0x7f, 0x00}, // client id overruns
		[]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
		append(append([]byte{}, full...), 0, 0, 0), // good frame, then junk
	}
	for _, in := range inputs {
		c := dial(t, s)
		c.nc.Write(in)
		c.nc.Close()
	}
	// A handful that stay open mid-frame and are reset by the engine.
	var open []*testClient
	for range 5 {
		c := dial(t, s)
		c.nc.Write([]byte{0, 0, 1, 0, 0})
		open = append(open, c)
	}
	testkit.Eventually(t, patience, "garbage connections gone", func() bool {
		st := s.eng.Stats()
		return st.Accepted == int64(len(inputs)+5) && st.Open == 5
	})
	s.close(t)
	for _, c := range open {
		c.expectClosed()
		c.nc.Close()
	}
	check()
}

// countingRelease counts responses made and releases done; each response
// panics the test binary if released twice.
type countingRelease struct{ made, n atomic.Int64 }

func (c *countingRelease) respond(body []byte) *Response {
	c.made.Add(1)
	var once atomic.Bool
	r := &Response{Release: func() {
		if !once.CompareAndSwap(false, true) {
			panic("Response released twice")
		}
		c.n.Add(1)
	}}
	r.AppendBytes(body)
	return r
}

func TestReleaseExactlyOnce(t *testing.T) { forEachEngine(t, testReleaseExactlyOnce) }

func testReleaseExactlyOnce(t *testing.T, ne newEngineFunc) {
	var rel countingRelease
	var blocked atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		if req.Key == keyProduce { // long-poll until the connection dies
			blocked.Add(1)
			<-ctx.Done()
			return rel.respond([]byte("late"))
		}
		return rel.respond(corrBody(req.CorrelationID))
	})
	s := startEngine(t, ne, Config{}, h)

	// Success: every written response is released once.
	c := dial(t, s)
	for i := range 50 {
		c.send(keyMetadata, 1, int32(i), nil)
	}
	for range 50 {
		c.recvFor(keyMetadata, 1)
	}
	testkit.Eventually(t, patience, "50 releases", func() bool { return rel.n.Load() == 50 })

	// Dropped: responses completed behind a blocked one and the blocked
	// one itself are released when the client goes away.
	c = dial(t, s)
	c.send(keyProduce, 3, 100, nil)
	for i := range 10 {
		c.send(keyMetadata, 1, int32(101+i), nil)
	}
	testkit.Eventually(t, patience, "blocked handler", func() bool { return blocked.Load() == 1 })
	testkit.Eventually(t, patience, "queued handlers", func() bool { return s.eng.Stats().RequestsIn == 61 })
	c.nc.Close()
	// Once writing to the closed client fails the connection is killed and
	// requests still queued are dropped without being handled, so how many
	// of the ten ran depends on timing; every response that was made must
	// be released, the blocked one included.
	testkit.Eventually(t, patience, "every response released", func() bool {
		return rel.n.Load() == rel.made.Load() && rel.n.Load() >= 51
	})
	before := rel.made.Load()

	// Dropped by Close.
	c = dial(t, s)
	c.send(keyProduce, 3, 200, nil)
	testkit.Eventually(t, patience, "blocked handler", func() bool { return blocked.Load() == 2 })
	s.close(t)
	if got, want := rel.n.Load(), before+1; got != want || rel.made.Load() != want {
		t.Fatalf("after Close: %d released, %d made, want %d", got, rel.made.Load(), want)
	}
	time.Sleep(20 * time.Millisecond)
	if got := rel.n.Load(); got != before+1 {
		t.Fatalf("releases %d after settle, want %d", got, before+1)
	}
}

func TestHandlerPanicClosesConnection(t *testing.T) {
	forEachEngine(t, testHandlerPanicClosesConnection)
}

func testHandlerPanicClosesConnection(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		if req.CorrelationID == 13 {
			panic("boom")
		}
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 12, nil)
	if corr, _ := c.recvFor(keyMetadata, 1); corr != 12 {
		t.Fatalf("corr %d", corr)
	}
	c.send(keyMetadata, 1, 13, nil)
	c.expectClosed()

	other := dial(t, s)
	other.send(keyMetadata, 1, 14, nil)
	if corr, _ := other.recvFor(keyMetadata, 1); corr != 14 {
		t.Fatalf("corr %d", corr)
	}
	if n := s.eng.Stats().HandlerPanics; n != 1 {
		t.Fatalf("HandlerPanics %d", n)
	}
}

// fdFile exposes exactly ReadAt + Fd, as segment files do.
type fdFile struct{ f *os.File }

func (f fdFile) ReadAt(p []byte, off int64) (int, error) { return f.f.ReadAt(p, off) }
func (f fdFile) Fd() uintptr                             { return f.f.Fd() }

func TestZeroCopySendfile(t *testing.T) { forEachEngine(t, testZeroCopySendfile) }

func testZeroCopySendfile(t *testing.T, ne newEngineFunc) {
	f, data := randomFile(t, 3<<20)
	const off, n = 1234, 2<<20 + 77
	prefix, suffix := []byte("prefix-bytes"), []byte("tail")
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendBytes(prefix)
		r.AppendFile(fdFile{f}, off, n)
		r.AppendBytes(suffix)
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 5, nil)
	corr, body := c.recvFor(keyMetadata, 1)
	want := append(append(append([]byte{}, prefix...), data[off:off+n]...), suffix...)
	if corr != 5 || !bytes.Equal(body, want) {
		t.Fatalf("corr %d, body of %d bytes matches: %v", corr, len(body), bytes.Equal(body, want))
	}
	// The shared file offset is never used.
	if pos, _ := f.Seek(0, 1); pos != 0 {
		t.Fatalf("file offset moved to %d", pos)
	}
	testkit.Eventually(t, patience, "stats", func() bool { return s.eng.Stats().ResponsesOut == 1 })
	st := s.eng.Stats()
	if st.BytesZeroCopy != n {
		t.Errorf("BytesZeroCopy %d, want %d", st.BytesZeroCopy, n)
	}
	if wantCopied := int64(8 + len(prefix) + len(suffix)); st.BytesCopied != wantCopied {
		t.Errorf("BytesCopied %d, want %d", st.BytesCopied, wantCopied)
	}
}

func TestReaderAtWithoutFdIsCopied(t *testing.T) { forEachEngine(t, testReaderAtWithoutFdIsCopied) }

func testReaderAtWithoutFdIsCopied(t *testing.T, ne newEngineFunc) {
	data := bytes.Repeat([]byte("0123456789abcdef"), 20000) // 320000 bytes, > copy buffer
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendFile(bytes.NewReader(data), 7, int64(len(data)-7))
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 9, 1, nil) // flexible: 9-byte header
	corr, body := c.recvFor(keyMetadata, 9)
	if corr != 1 || !bytes.Equal(body, data[7:]) {
		t.Fatalf("corr %d, body mismatch (%d bytes)", corr, len(body))
	}
	testkit.Eventually(t, patience, "stats", func() bool { return s.eng.Stats().ResponsesOut == 1 })
	if st := s.eng.Stats(); st.BytesZeroCopy != 0 || st.BytesCopied != int64(9+len(data)-7) {
		t.Fatalf("stats %+v", st)
	}
}

func TestShortFileRangeClosesConnection(t *testing.T) {
	forEachEngine(t, testShortFileRangeClosesConnection)
}

func testShortFileRangeClosesConnection(t *testing.T, ne newEngineFunc) {
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendFile(bytes.NewReader([]byte("short")), 0, 100)
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 1, 1, nil)
	if _, err := c.recv(); err == nil {
		t.Fatal("expected a broken response")
	}
	testkit.Eventually(t, patience, "closed", func() bool { return s.eng.Stats().Open == 0 })
}

func TestBackPressureBoundsInFlight(t *testing.T) { forEachEngine(t, testBackPressureBoundsInFlight) }

func testBackPressureBoundsInFlight(t *testing.T, ne newEngineFunc) {
	// One connection's requests are handled one at a time, in order; the
	// limit bounds how many are read ahead while one is being handled.
	const limit = 4
	var running, maxRunning atomic.Int64
	unblock := make(chan struct{})
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		n := running.Add(1)
		for m := maxRunning.Load(); n > m; m = maxRunning.Load() {
			if maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		select {
		case <-unblock:
		case <-ctx.Done():
		}
		running.Add(-1)
		return echoCorr(ctx, req)
	})
	s := startEngine(t, ne, Config{MaxInFlightPerConn: limit}, h)
	c := dial(t, s)
	for i := range 20 {
		c.send(keyMetadata, 1, int32(i), nil)
	}
	testkit.Eventually(t, patience, "reader filled its read-ahead", func() bool { return s.eng.Stats().RequestsIn == limit })
	time.Sleep(50 * time.Millisecond)
	if in := s.eng.Stats().RequestsIn; in != limit {
		t.Fatalf("engine read %d requests while the first was blocked; limit %d", in, limit)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d handlers of one connection ran at once, want 1", m)
	}
	close(unblock)
	for i := range 20 {
		if corr, _ := c.recvFor(keyMetadata, 1); corr != int32(i) {
			t.Fatalf("corr %d, want %d", corr, i)
		}
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d handlers of one connection ran at once, want 1", m)
	}
}
