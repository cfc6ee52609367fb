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
// choosing io_uring.
//
// Each engine is measured alone, in rounds that take the engines in turn
// (std, each ring mode, std, ...), each started for its turn and closed
// after it. Two engines alive at once do not measure what either does in a
// broker: a ring that sleeps in io_uring_enter (defer-block) holds one of
// the Ps, and a std engine left with one P hands requests between its
// goroutines without ever waking another thread, which made std look ~1.5x
// faster than a std broker is (41 us against 65-80 us on this 2-core
// machine, same client). Many short rounds rather than a few long ones:
// a round's median drifts by 2x with whatever else the machine does, and
// alternating often puts that drift on every engine alike.

const (
	rttWarmup  = 10 // requests per engine before timing
	rttBatch   = 10 // requests in a row
	rttBatches = 2  // timed batches per engine and round
	rttRounds  = 8  // rounds; each engine's figure is its median round
	rttTimeout = 5 * time.Second
)

// rttClient is a loopback client of one engine under test.
type rttClient struct {
	nc  net.Conn
	br  *bufio.Reader
	lat []time.Duration
}

// engineRTTs measures, for each engine that start builds, the median round
// trip of sequential empty requests through it, in the order given. An
// engine that fails to start gets its error in startErrs and is left out
// of later rounds; err reports a failed measurement, which ends them all.
// The client runs in a child process where the program allows it
// (ProbeClientMain): a client inside this process would share its Ps with
// the engine under test.
func engineRTTs(starts ...func() (Engine, error)) (rtts []time.Duration, startErrs []error, err error) {
	measure := func(addr string) (time.Duration, error) {
		rtts, err := measureRTTs([]string{addr})
		if err != nil {
			return 0, err
		}
		return rtts[0], nil
	}
	if probeChildOK.Load() {
		// An executable replaced on disk, a sandbox without fork: measure
		// from here rather than not at all.
		if child, err := startProbeChild(); err == nil {
			defer child.close()
			measure = child.rtt
		}
	}
	rounds := make([][]time.Duration, len(starts))
	startErrs = make([]error, len(starts))
	for range rttRounds {
		for i, start := range starts {
			if startErrs[i] != nil {
				continue
			}
			e, err := start()
			if err != nil {
				startErrs[i] = err
				continue
			}
			d, err := engineRTT(e, measure)
			if err != nil {
				return nil, nil, err
			}
			rounds[i] = append(rounds[i], d)
		}
	}
	rtts = make([]time.Duration, len(starts))
	for i, r := range rounds {
		rtts[i] = median(r)
	}
	return rtts, startErrs, nil
}

// engineRTT serves a loopback listener with e, has measure time it and
// closes e again.
func engineRTT(e Engine, measure func(addr string) (time.Duration, error)) (time.Duration, error) {
	defer e.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("listening on loopback: %w", err)
	}
	go func() { _ = e.Serve(ln) }()
	// Settle the heap first: a ring's buffers are megabytes, and a
	// collection running during the measurement would be timed instead.
	runtime.GC()
	return measure(ln.Addr().String())
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
		// A deadline per write and per read, cleared after it, as franz-go
		// sets them (and as librdkafka and the Java client wait: with a
		// timeout). The client's timers change how its process sleeps and
		// so where the kernel runs the engine's threads: without them a
		// ring measured ~1.4x slower than std here, with them ~1.4x
		// faster, and franz-go itself sees the ring ahead.
		_ = c.nc.SetWriteDeadline(time.Now().Add(rttTimeout))
		if _, err := c.nc.Write(req); err != nil {
			return err
		}
		_ = c.nc.SetWriteDeadline(time.Time{})
		_ = c.nc.SetReadDeadline(time.Now().Add(rttTimeout))
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
		_ = c.nc.SetReadDeadline(time.Time{})
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
