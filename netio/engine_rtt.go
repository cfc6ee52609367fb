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

// rttProbe is a loopback client of one engine under test.
type rttProbe struct {
	e   Engine
	nc  net.Conn
	br  *bufio.Reader
	lat []time.Duration
}

// engineRTTs serves a loopback listener with each engine (closing them all
// at the end) and returns the median round trip of sequential empty
// requests through each, in the order given.
func engineRTTs(engines ...Engine) ([]time.Duration, error) {
	probes := make([]*rttProbe, 0, len(engines))
	defer func() {
		for _, p := range probes {
			if p.nc != nil {
				p.nc.Close()
			}
		}
		for _, e := range engines {
			e.Close()
		}
	}()
	for _, e := range engines {
		p, err := startRTTProbe(e)
		if err != nil {
			return nil, err
		}
		probes = append(probes, p)
	}
	// Settle the heap first: a ring's buffers are megabytes, and a
	// collection running during the measurement would be timed instead.
	runtime.GC()
	for _, p := range probes {
		if err := p.run(rttWarmup, false); err != nil {
			return nil, err
		}
	}
	for range rttBatches {
		for _, p := range probes {
			if err := p.run(rttBatch, true); err != nil {
				return nil, err
			}
		}
	}
	out := make([]time.Duration, len(probes))
	for i, p := range probes {
		out[i] = median(p.lat)
	}
	return out, nil
}

func startRTTProbe(e Engine) (*rttProbe, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening on loopback: %w", err)
	}
	go func() { _ = e.Serve(ln) }()
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), rttTimeout)
	if err != nil {
		return nil, fmt.Errorf("dialling the probe listener: %w", err)
	}
	_ = nc.SetDeadline(time.Now().Add(rttTimeout))
	return &rttProbe{e: e, nc: nc, br: bufio.NewReader(nc)}, nil
}

// run sends n sequential requests, recording their round trips if timed.
func (p *rttProbe) run(n int, timed bool) error {
	req := AppendRequestHeader(make([]byte, 4, 32), 18, 0, 0, nil) // ApiVersions v0, empty body
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	var resp [64]byte
	for range n {
		start := time.Now()
		if _, err := p.nc.Write(req); err != nil {
			return err
		}
		if _, err := io.ReadFull(p.br, resp[:4]); err != nil {
			return err
		}
		size := binary.BigEndian.Uint32(resp[:4])
		if size > uint32(len(resp)) {
			return errors.New("oversized probe response")
		}
		if _, err := io.ReadFull(p.br, resp[:size]); err != nil {
			return err
		}
		if timed {
			p.lat = append(p.lat, time.Since(start))
		}
	}
	return nil
}

// rttHandler answers every request with an empty body.
func rttHandler(context.Context, *Request) *Response { return &Response{} }

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
