package netio

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// testLogger logs through t so failures come with the engine's view.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

type testServer struct {
	eng    Engine
	closed bool
	addr   string
	serve  chan error
}

// newEngineFunc builds the engine under test.
type newEngineFunc func(cfg Config, h Handler) Engine

// engines is the engine table of netio's tests: std, and uring unless the
// probe says io_uring cannot run here (then that subtest is skipped with
// the reason).
var engines = testkit.Engines{Unavailable: func(kind string) error {
	if kind == EngineUring {
		return UringSupported()
	}
	return nil
}}

// forEachEngine runs test against every engine of the table, handing it a
// constructor for that engine.
func forEachEngine(t *testing.T, test func(t *testing.T, ne newEngineFunc)) {
	engines.Run(t, func(t *testing.T, kind string) {
		test(t, func(cfg Config, h Handler) Engine { return makeEngine(t, kind, cfg, h, testLogger(t)) })
	})
}

// makeEngine builds the engine named kind.
func makeEngine(t testing.TB, kind string, cfg Config, h Handler, logger *slog.Logger) Engine {
	t.Helper()
	cfg.Engine = kind
	e, got, err := NewEngine(cfg, h, logger)
	if err != nil || got != kind {
		t.Fatalf("NewEngine(%q) = %q, %v", kind, got, err)
	}
	return e
}

// startEngine runs an engine made by ne on a loopback listener; it is
// closed (and Serve's return value checked) at the end of the test.
func startEngine(t *testing.T, ne newEngineFunc, cfg Config, h Handler) *testServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &testServer{eng: ne(cfg, h), addr: ln.Addr().String(), serve: make(chan error, 1)}
	go func() { s.serve <- s.eng.Serve(ln) }()
	t.Cleanup(func() { s.close(t) })
	return s
}

func (s *testServer) close(t *testing.T) {
	t.Helper()
	if s.closed {
		return
	}
	s.closed = true
	if err := s.eng.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	select {
	case err := <-s.serve:
		if err != ErrEngineClosed {
			t.Errorf("Serve returned %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Errorf("Serve did not return after Close")
	}
}

type testClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

func dial(t *testing.T, s *testServer) *testClient {
	t.Helper()
	nc, err := net.Dial("tcp", s.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	return &testClient{t: t, nc: nc, br: bufio.NewReader(nc)}
}

// frame builds a request frame.
func frame(key, version int16, corr int32, clientID *string, body []byte) []byte {
	p := AppendRequestHeader(make([]byte, 4, 64+len(body)), key, version, corr, clientID)
	p = append(p, body...)
	binary.BigEndian.PutUint32(p, uint32(len(p)-4))
	return p
}

func (c *testClient) send(key, version int16, corr int32, body []byte) {
	c.t.Helper()
	cid := "test"
	if _, err := c.nc.Write(frame(key, version, corr, &cid, body)); err != nil {
		c.t.Fatalf("write: %v", err)
	}
}

// recv reads one response frame payload (correlation id included).
func (c *testClient) recv() ([]byte, error) {
	c.nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	var sz [4]byte
	if _, err := io.ReadFull(c.br, sz[:]); err != nil {
		return nil, err
	}
	p := make([]byte, binary.BigEndian.Uint32(sz[:]))
	if _, err := io.ReadFull(c.br, p); err != nil {
		return nil, err
	}
	return p, nil
}

// recvFor reads a response to (key, version) and splits its header.
func (c *testClient) recvFor(key, version int16) (int32, []byte) {
	c.t.Helper()
	p, err := c.recv()
	if err != nil {
		c.t.Fatalf("recv: %v", err)
	}
	corr, body, err := ReadResponseHeader(p, key, version)
	if err != nil {
		c.t.Fatalf("response header: %v", err)
	}
	return corr, body
}

// expectClosed asserts the server closes the connection without sending more.
func (c *testClient) expectClosed() {
	c.t.Helper()
	c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	b, err := c.br.ReadByte()
	if err == nil {
		c.t.Fatalf("expected close, got byte %#x", b)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		c.t.Fatalf("connection not closed by server")
	}
}

// patience is how long a test waits for an engine to do what it must: far
// beyond what any of these needs on a loaded 2-core machine.
const patience = 5 * time.Second

func countFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("no /proc/self/fd: %v", err)
	}
	return len(ents)
}

// leakCheck records goroutine and fd counts and returns a function that
// waits until both are back to (at most) those values. Call the returned
// function after everything the test started has been closed.
func leakCheck(t *testing.T) func() {
	t.Helper()
	// Make the runtime create its netpoller descriptors before the
	// baseline, so they are not mistaken for leaks.
	if ln, err := net.Listen("tcp", "127.0.0.1:0"); err == nil {
		ln.Close()
	}
	g0, f0 := runtime.NumGoroutine(), countFDs(t)
	return func() {
		t.Helper()
		var g, f int
		if !testkit.Poll(patience, func() bool {
			g, f = runtime.NumGoroutine(), countFDs(t)
			return g <= g0 && f <= f0
		}) {
			buf := make([]byte, 1<<20)
			buf = buf[:runtime.Stack(buf, true)]
			t.Fatalf("leak: goroutines %d -> %d, fds %d -> %d\n%s", g0, g, f0, f, buf)
		}
	}
}

func corrBody(corr int32) []byte { return []byte(fmt.Sprintf("resp-%d", corr)) }

// randomFile writes size random bytes to a file in a temp dir and returns it
// open (closed at cleanup) with its content: a stand-in for a segment.
func randomFile(t *testing.T, size int) (*os.File, []byte) {
	t.Helper()
	data := make([]byte, size)
	for i := range data {
		data[i] = byte(rand.Uint32())
	}
	path := filepath.Join(t.TempDir(), "seg.log")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f, data
}

// The shared engine table (testkit, which cannot import netio) must name
// every engine netio has, as netio names them.
func TestEngineTableNamesEveryEngine(t *testing.T) {
	if want := []string{EngineStd, EngineUring}; !slices.Equal(testkit.EngineNames, want) {
		t.Fatalf("testkit.EngineNames = %q, netio's engines are %q", testkit.EngineNames, want)
	}
}
