// Package benchkit holds the small pieces the benchmark drivers
// (perf/bench, perf/connectbench) share: finding a port for a process they
// start, waiting for it to listen, and the median every report prints.
package benchkit

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"time"
)

// FreePort asks the kernel for an unused loopback port. Another process
// could take it before the peer binds; the peer then fails to start and
// says so.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WaitPort dials addr until it answers, the process exits (exited
// closed), ctx ends or timeout passes.
func WaitPort(ctx context.Context, addr string, timeout time.Duration, exited <-chan struct{}) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-exited:
			return errors.New("process exited")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listening on %s after %s", addr, timeout)
		}
	}
}

// Median of xs, NaN when empty.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}
