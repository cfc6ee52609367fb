package netio

import (
	"slices"
	"testing"
	"time"
)

// TestSequentialRequestLatency is a guard against a gross latency defect,
// not a speed target: one connection sends 200 requests one at a time (the
// next only after the previous answer), so every request reaches an idle
// engine. A healthy engine answers in well under a millisecond here; the
// bound is many times that, so only a wake-up that waits for a timer or a
// kernel grace period (the 16 ms io_uring defect, see docs/architecture.md)
// fails it.
func TestSequentialRequestLatency(t *testing.T) { forEachEngine(t, testSequentialRequestLatency) }

func testSequentialRequestLatency(t *testing.T, ne newEngineFunc) {
	const (
		requests = 200
		bound    = 3 * time.Millisecond
	)
	s := startEngine(t, ne, Config{}, HandlerFunc(echoCorr))
	c := dial(t, s)
	// Warm the connection (processor goroutine, buffers) before timing.
	for corr := range int32(5) {
		c.send(18, 0, corr, nil)
		c.recvFor(18, 0)
	}
	rtts := make([]time.Duration, 0, requests)
	for i := range requests {
		corr := int32(100 + i)
		start := time.Now()
		c.send(18, 0, corr, nil)
		got, _ := c.recvFor(18, 0)
		rtts = append(rtts, time.Since(start))
		if got != corr {
			t.Fatalf("response to %d carries correlation id %d", corr, got)
		}
	}
	slices.Sort(rtts)
	p50, p99 := rtts[len(rtts)/2], rtts[len(rtts)*99/100]
	t.Logf("%d sequential requests: p50 %v, p99 %v, max %v", requests, p50, p99, rtts[len(rtts)-1])
	if p50 > bound {
		t.Fatalf("p50 round trip %v with one request in flight; want <= %v (an idle engine waits for something other than the request)", p50, bound)
	}
}
