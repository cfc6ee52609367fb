package netio

import (
	"bufio"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"slices"
	"time"
)

// The engine round-trip probe: what a client with one request in flight
// waits for, measured through a whole engine (accept, receive, dispatch to
// a processor, handle, send) on a loopback connection. A ring that wakes up
// at once can still lose to Go's poller on the way to the processor
// goroutine and back, so NewEngine("auto") compares the two engines this
// way before choosing io_uring.

const (
	rttWarmup   = 5
	rttRequests = 41 // sequential, timed; the median decides
	rttTimeout  = 2 * time.Second
)

// engineRTT serves a loopback listener with e (which it closes) and returns
// the median round trip of rttRequests sequential empty requests on one
// connection.
func engineRTT(e Engine) (time.Duration, error) {
	defer e.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listening on loopback: %w", err)
	}
	go func() { _ = e.Serve(ln) }()
	nc, err := net.DialTimeout("tcp", ln.Addr().String(), rttTimeout)
	if err != nil {
		return 0, fmt.Errorf("dialling the probe listener: %w", err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(rttTimeout))
	br := bufio.NewReader(nc)
	req := AppendRequestHeader(make([]byte, 4, 32), 18, 0, 0, nil) // ApiVersions v0, empty body
	binary.BigEndian.PutUint32(req, uint32(len(req)-4))
	lat := make([]time.Duration, 0, rttRequests)
	var resp [64]byte
	for i := range rttWarmup + rttRequests {
		start := time.Now()
		if _, err := nc.Write(req); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(br, resp[:4]); err != nil {
			return 0, err
		}
		n := binary.BigEndian.Uint32(resp[:4])
		if n > uint32(len(resp)) {
			return 0, fmt.Errorf("probe response of %d bytes", n)
		}
		if _, err := io.ReadFull(br, resp[:n]); err != nil {
			return 0, err
		}
		if i >= rttWarmup {
			lat = append(lat, time.Since(start))
		}
	}
	return median(lat), nil
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
