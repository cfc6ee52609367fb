package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"slices"
	"time"
)

// The engine round-trip probe: what a client with one request in flight
// waits for, measured through a whole engine (accept, receive, dispatch to
// a processor, handle, send) on a loopback connection. A ring that wakes up
// at once can still lose to Go's poller on the way to the processor
// goroutine and back, so NewEngine("auto") compares engines this way before
// choosing io_uring. The engines are measured in alternating batches, so a
// burst of load from elsewhere on the machine falls on all of them rather
// than on whichever ran last.

const (
	rttWarmup  = 20 // requests per engine before timing
	rttBatch   = 10 // requests per engine in a row
	rttBatches = 8  // timed batches per engine; the median of all decides
	rttTimeout = 5 * time.Second
)

// rttClient is a loopback client of one engine under test.
type rttClient struct {
	nc  net.Conn
	br  *bufio.Reader
	lat []time.Duration
}

// engineRTTs serves a loopback listener with each engine (closing them all
// at the end) and returns the median round trip of sequential empty
// requests through each, in the order given. The client runs in a child
// process where the program allows it (ProbeClientMain): a client inside
// this process would share its Ps with the engine under test, and a ring
// that keeps its P while it sleeps (defer-block) would look slower than it
// is to a real client.
func engineRTTs(engines ...Engine) ([]time.Duration, error) {
	defer func() {
		for _, e := range engines {
			e.Close()
		}
	}()
	addrs := make([]string, 0, len(engines))
	for _, e := range engines {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listening on loopback: %w", err)
		}
		go func() { _ = e.Serve(ln) }()
		addrs = append(addrs, ln.Addr().String())
	}
	// Settle the heap first: a ring's buffers are megabytes, and a
	// collection running during the measurement would be timed instead.
	runtime.GC()
	if probeChildOK.Load() {
		if rtts, err := rttsFromChild(addrs); err == nil {
			return rtts, nil
		}
		// An executable replaced on disk, a sandbox without fork: measure
		// from here rather than not at all.
	}
	return measureRTTs(addrs)
}

// measureRTTs connects to every address and times sequential requests:
// a warm-up per connection, then alternating batches, so a burst of load
// from elsewhere falls on every engine rather than on the last one.
func measureRTTs(addrs []string) ([]time.Duration, error) {
	clients := make([]*rttClient, 0, len(addrs))
	defer func() {
		for _, c := range clients {
			c.nc.Close()
		}
	}()
	for _, a := range addrs {
		nc, err := net.DialTimeout("tcp", a, rttTimeout)
		if err != nil {
			return nil, fmt.Errorf("dialling the probe listener: %w", err)
		}
		_ = nc.SetDeadline(time.Now().Add(rttTimeout))
		clients = append(clients, &rttClient{nc: nc, br: bufio.NewReader(nc)})
	}
	for _, c := range clients {
		if err := c.run(rttWarmup, false); err != nil {
			return nil, err
		}
	}
	for range rttBatches {
		for _, c := range clients {
			if err := c.run(rttBatch, true); err != nil {
				return nil, err
			}
		}
	}
	out := make([]time.Duration, len(clients))
	for i, c := range clients {
		out[i] = median(c.lat)
	}
	return out, nil
}

// run sends n sequential requests, recording their round trips if timed.
func (c *rttClient) run(n int, timed bool) error {
	req := AppendRequestHeader(make([]byte, 4, 32), 18, 0, 0, nil) // ApiVersions v0, empty body
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	var resp [64]byte
	for range n {
		start := time.Now()
		if _, err := c.nc.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(c.br, resp[:4]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(resp[:4])
		if size > uint32(len(resp)) {
			return errors.New("oversized probe response")
		}
		if _, err := io.ReadFull(c.br, resp[:size]); err != nil {
			return err
		}
		if timed {
			c.lat = append(c.lat, time.Since(start))
		}
	}
	return nil
}

// rttBody is the probe's answer: a few bytes, like the smallest real
// answers, so that it takes the same path through an engine as they do.
var rttBody = []byte{0, 0, 0, 0, 0, 0, 0, 0}

// rttHandler answers every request with rttBody.
func rttHandler(context.Context, *Request) *Response {
	r := &Response{}
	r.AppendBytes(rttBody)
	return r
}

// rttAsGood reports whether a ring engine's round trip is as good as the
// std engine's, within the noise of a short measurement on a busy machine.
func rttAsGood(uring, std time.Duration) bool {
	return uring <= std+std/5+10*time.Microsecond
}

func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
