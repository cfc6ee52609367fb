package netio

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// uringOnly builds io_uring engines, skipping the test where the probe says
// io_uring cannot run.
func uringOnly(t *testing.T) newEngineFunc {
	t.Helper()
	if err := UringSupported(); err != nil {
		t.Skipf("io_uring unavailable: %v", err)
	}
	return func(cfg Config, h Handler) Engine {
		e, err := NewUringEngine(cfg, h, testLogger(t))
		if err != nil {
			t.Fatalf("NewUringEngine: %v", err)
		}
		return e
	}
}

func TestUringSpliceIsZeroCopy(t *testing.T) {
	ne := uringOnly(t)
	f, data := randomFile(t, 5<<20)
	// Two ranges, larger than the pipe, between byte parts: exercises
	// short splices, pipe refills and switching between sendmsg and splice.
	const off1, n1, off2, n2 = 3, 3<<20 + 5, 4 << 20, 1<<20 - 11
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendBytes([]byte("head"))
		r.AppendFile(fdFile{f}, off1, n1)
		r.AppendBytes([]byte("mid"))
		r.AppendFile(fdFile{f}, off2, n2)
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	c.send(keyMetadata, 9, 1, nil)
	_, body := c.recvFor(keyMetadata, 9)
	want := append(append(append([]byte("head"), data[off1:off1+n1]...), "mid"...), data[off2:off2+n2]...)
	if !bytes.Equal(body, want) {
		t.Fatalf("body of %d bytes differs from the %d expected", len(body), len(want))
	}
	testkit.Eventually(t, patience, "stats", func() bool { return s.eng.Stats().ResponsesOut == 1 })
	st := s.eng.Stats()
	if st.BytesZeroCopy != n1+n2 {
		t.Errorf("BytesZeroCopy %d, want %d", st.BytesZeroCopy, n1+n2)
	}
	if wantCopied := int64(9 + len("head") + len("mid")); st.BytesCopied != wantCopied {
		t.Errorf("BytesCopied %d, want %d", st.BytesCopied, wantCopied)
	}
	var spliced, subs, comps int64
	for _, rs := range s.eng.(RingStatsReporter).RingStats() {
		spliced += rs.BytesSpliced
		subs += rs.Submissions
		comps += rs.Completions
	}
	// The processor sends what the socket takes at once with sendfile;
	// the ring splices the rest. Either way no byte is copied.
	if spliced > n1+n2 || subs == 0 || comps == 0 {
		t.Errorf("ring stats: spliced %d (at most %d), submissions %d, completions %d", spliced, n1+n2, subs, comps)
	}
}

// bigFile returns a page-cached file of n bytes.
func bigFile(t testing.TB, n int64) *os.File {
	t.Helper()
	f, err := os.Create(filepath.Join(t.TempDir(), "big.log"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.Repeat([]byte{0x5a}, int(n))); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestStalledReaderDoesNotWedge(t *testing.T) { forEachEngine(t, testStalledReaderDoesNotWedge) }

func testStalledReaderDoesNotWedge(t *testing.T, ne newEngineFunc) {
	f := bigFile(t, 64<<20)
	check := leakCheck(t)
	var rel countingRelease
	var handled atomic.Int64
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		handled.Add(1)
		r := &Response{Release: func() { rel.n.Add(1) }}
		r.AppendBytes([]byte("x"))
		r.AppendFile(fdFile{f}, 0, 64<<20)
		return r
	})
	// The write deadline (IdleTimeout) ends a response nobody reads.
	s := startEngine(t, ne, Config{IdleTimeout: 300 * time.Millisecond}, h)
	stuck := dial(t, s)
	stuck.send(keyMetadata, 1, 1, nil)
	testkit.Eventually(t, patience, "write timeout", func() bool { return rel.n.Load() == 1 && s.eng.Stats().Open == 0 })
	s.close(t)

	// Close ends a stalled write promptly, and the ring still serves others.
	s2 := startEngine(t, ne, Config{}, h)
	var stalled []*testClient
	for range 3 {
		c := dial(t, s2)
		c.send(keyMetadata, 1, 1, nil)
		stalled = append(stalled, c)
	}
	// Byte counters move only as sends complete, so wait for the handlers
	// and give the writes time to fill the socket buffers and block.
	testkit.Eventually(t, patience, "handled", func() bool { return handled.Load() == 4 })
	time.Sleep(100 * time.Millisecond)
	t0 := time.Now()
	s2.close(t)
	if d := time.Since(t0); d > 2*time.Second {
		t.Fatalf("Close took %v with stalled readers", d)
	}
	if rel.n.Load() != 4 {
		t.Fatalf("releases %d, want 4", rel.n.Load())
	}
	for _, c := range stalled {
		c.nc.Close()
	}
	stuck.nc.Close()
	check()
}

// TestManyConnections opens and closes 10,000 connections (2,000 with
// -short) against each engine, mixing valid requests, malformed headers,
// oversized frames and half-written requests, and checks that no goroutine
// or descriptor is left behind.
func TestManyConnections(t *testing.T) { engines.Run(t, testManyConnections) }

func testManyConnections(t *testing.T, kind string) {
	total := 10000
	if testing.Short() {
		total = 2000
	}
	check := leakCheck(t)
	// No per-connection debug log: 10,000 connections would drown the output.
	quiet := slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelError}))
	s := startEngine(t, func(cfg Config, h Handler) Engine { return makeEngine(t, kind, cfg, h, quiet) },
		Config{MaxRequestBytes: 4096}, HandlerFunc(echoCorr))
	var next, failures atomic.Int64
	var wg sync.WaitGroup
	t0 := time.Now()
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := next.Add(1) - 1
				if i >= int64(total) || failures.Load() > 0 {
					return
				}
				if err := oneConnection(s.addr, int(i)); err != nil {
					if failures.Add(1) == 1 {
						t.Errorf("connection %d: %v", i, err)
					}
					return
				}
			}
		}()
	}
	wg.Wait()
	t.Logf("%d connections in %v", total, time.Since(t0))
	testkit.Eventually(t, patience, "all closed", func() bool { return s.eng.Stats().Open == 0 })
	st := s.eng.Stats()
	if st.Accepted != int64(total) || st.Closed != int64(total) || st.ResponsesOut != int64((total+3)/4) {
		t.Errorf("stats %+v", st)
	}
	s.close(t)
	check()
}

// oneConnection runs one of four scripted clients, chosen by i.
func oneConnection(addr string, i int) error {
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		return err
	}
	defer nc.Close()
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	switch i % 4 {
	case 0: // valid request, read the response
		if _, err := nc.Write(frame(keyMetadata, 1, int32(i), nil, []byte("body"))); err != nil {
			return err
		}
		var sz [4]byte
		if _, err := io.ReadFull(nc, sz[:]); err != nil {
			return err
		}
		p := make([]byte, binary.BigEndian.Uint32(sz[:]))
		if _, err := io.ReadFull(nc, p); err != nil {
			return err
		}
		if corr, body, _ := ReadResponseHeader(p, keyMetadata, 1); corr != int32(i) || !bytes.Equal(body, corrBody(int32(i))) {
			return io.ErrUnexpectedEOF
		}
		return nil
	case 1: // malformed header: the server closes
		nc.Write([]byte{0, 0, 0, 3, 1, 2, 3})
	case 2: // oversized frame: the server closes
		nc.Write([]byte{0, 1, 0, 0, 1, 2, 3})
	case 3: // half-written request, then the client leaves
		f := frame(keyMetadata, 1, int32(i), nil, []byte("body"))
		nc.Write(f[:len(f)/2])
		return nil
	}
	// Wait for the server's close.
	if _, err := io.Copy(io.Discard, nc); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		return err
	}
	return nil
}

func TestNewEngineSelection(t *testing.T) {
	h := HandlerFunc(echoCorr)
	// auto picks io_uring only where its rings wake up as fast as Go's
	// poller (the self-test); uring is given when asked for regardless.
	autoWant := EngineStd
	if UringSupported() == nil && UringWake().Pass {
		autoWant = EngineUring
	}
	for _, tc := range []struct{ ask, want string }{
		{EngineStd, EngineStd}, {EngineAuto, autoWant}, {"", autoWant}, {EngineUring, EngineUring},
	} {
		if tc.want == EngineUring && UringSupported() != nil {
			tc.want = EngineStd
			if tc.ask == EngineUring {
				if _, _, err := NewEngine(Config{Engine: tc.ask}, h, nil); err == nil {
					t.Errorf("NewEngine(uring) succeeded though the probe failed")
				}
				continue
			}
		}
		e, got, err := NewEngine(Config{Engine: tc.ask}, h, testLogger(t))
		if err != nil || got != tc.want {
			t.Fatalf("NewEngine(%q) = %q, %v; want %q", tc.ask, got, err, tc.want)
		}
		_, isRing := e.(RingStatsReporter)
		if isRing != (got == EngineUring) {
			t.Errorf("NewEngine(%q): RingStatsReporter %v", tc.ask, isRing)
		}
		e.Close()
	}
	if _, _, err := NewEngine(Config{Engine: "epoll"}, h, nil); err == nil {
		t.Errorf("unknown engine accepted")
	}
	// Serve refuses listeners the ring cannot accept on.
	if UringSupported() == nil {
		e, _ := NewUringEngine(Config{}, h, nil)
		defer e.Close()
		ln, err := net.Listen("unix", filepath.Join(t.TempDir(), "s"))
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Serve(ln); err == nil || err == ErrEngineClosed {
			t.Errorf("Serve(unix listener) = %v", err)
		}
	}
}

// A response larger than the socket buffer, to a client that reads only
// later: the processor's direct write stops partway through a file range
// and the ring must carry on from that exact byte.
func TestUringDirectSendHandsOverMidFile(t *testing.T) {
	ne := uringOnly(t)
	f, data := randomFile(t, 12<<20)
	h := HandlerFunc(func(ctx context.Context, req *Request) *Response {
		r := &Response{}
		r.AppendBytes([]byte("a"))
		r.AppendFile(fdFile{f}, 1, 5<<20)
		r.AppendBytes([]byte("bc"))
		r.AppendFile(fdFile{f}, 6<<20, 6<<20-7)
		r.AppendBytes([]byte("d"))
		return r
	})
	s := startEngine(t, ne, Config{}, h)
	c := dial(t, s)
	for corr := int32(1); corr <= 3; corr++ {
		c.send(keyMetadata, 9, corr, nil)
	}
	time.Sleep(200 * time.Millisecond) // let the socket buffer fill
	want := append(append(append(append([]byte("a"), data[1:1+5<<20]...), "bc"...), data[6<<20:12<<20-7]...), 'd')
	for corr := int32(1); corr <= 3; corr++ {
		got, body := c.recvFor(keyMetadata, 9)
		if got != corr || !bytes.Equal(body, want) {
			t.Fatalf("response %d (want %d): %d bytes, equal %v", got, corr, len(body), bytes.Equal(body, want))
		}
	}
	testkit.Eventually(t, patience, "stats", func() bool { return s.eng.Stats().ResponsesOut == 3 })
	st := s.eng.Stats()
	if st.BytesZeroCopy != 3*(11<<20-7) {
		t.Errorf("BytesZeroCopy %d, want %d", st.BytesZeroCopy, 3*(11<<20-7))
	}
	if want := int64(3 * (9 + len("abcd"))); st.BytesCopied != want {
		t.Errorf("BytesCopied %d, want %d (headers and byte parts, counted once)", st.BytesCopied, want)
	}
	var spliced int64
	for _, rs := range s.eng.(RingStatsReporter).RingStats() {
		spliced += rs.BytesSpliced
	}
	if spliced == 0 {
		t.Errorf("the ring spliced nothing: the direct write cannot have taken 33 MiB into a socket nobody read")
	}
}
