package perf

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// meter accumulates what a run measures. Everything before measureStart
// (the warmup) is ignored; --records and --duration bound what comes after
// it. Safe for concurrent use.
type meter struct {
	start        time.Time
	measureStart time.Time
	limit        int64     // measured records that end the run; 0: none
	lat          *syncHist // nil when the mode measures no latency
	requests     bool      // rtt: what is counted is requests, not records

	records atomic.Int64
	bytes   atomic.Int64
	errors  atomic.Int64
	claimed atomic.Int64
	// pending counts measured records sent and not yet acknowledged or
	// failed.
	pending atomic.Int64
	// last is when the latest measured record was counted, in nanoseconds
	// after measureStart: the end of the measured interval.
	last atomic.Int64

	mu       sync.Mutex
	firstErr string

	reachedOnce sync.Once
	reached     chan struct{} // closed once limit records are counted
}

func newMeter(start time.Time, o *options, withLatency bool) *meter {
	m := &meter{
		start:        start,
		measureStart: start.Add(o.warmup),
		limit:        o.records,
		requests:     o.mode == modeRTT,
		reached:      make(chan struct{}),
	}
	if withLatency {
		m.lat = newSyncHist()
	}
	return m
}

// measuring reports whether work done at t is past the warmup.
func (m *meter) measuring(t time.Time) bool { return !t.Before(m.measureStart) }

// claim asks, before sending a record at now, whether it counts and
// whether it may be sent at all: false once --records measured sends were
// claimed.
func (m *meter) claim(now time.Time) (measured, ok bool) {
	if !m.measuring(now) {
		return false, true
	}
	if m.limit > 0 && m.claimed.Add(1) > m.limit {
		return true, false
	}
	return true, true
}

// add counts measured records completed at now; the caller has checked
// that they are measured.
func (m *meter) add(now time.Time, records, bytes int64) {
	total := m.records.Add(records)
	m.bytes.Add(bytes)
	at := int64(now.Sub(m.measureStart))
	for {
		last := m.last.Load()
		if at <= last || m.last.CompareAndSwap(last, at) {
			break
		}
	}
	if m.limit > 0 && total >= m.limit {
		m.reachedOnce.Do(func() { close(m.reached) })
	}
}

// fail counts n failed records (or requests) and keeps the first error
// for the report.
func (m *meter) fail(n int64, err error) {
	m.errors.Add(n)
	m.mu.Lock()
	if m.firstErr == "" && err != nil {
		m.firstErr = oneLine(err.Error())
	}
	m.mu.Unlock()
}

// settle waits, up to timeout, for the promises of pending records: kgo
// calls them from its own goroutine, even after Close has failed what was
// still buffered. Records never settled count as errors.
func (m *meter) settle(timeout time.Duration) {
	deadline := time.Now().Add(timeout)
	for m.pending.Load() > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := m.pending.Load(); n > 0 {
		m.fail(n, fmt.Errorf("%d records neither acknowledged nor failed %s after the end", n, timeout))
	}
}

func (m *meter) firstError() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.firstErr
}

// seconds is the measured interval: from the end of the warmup to the last
// counted record, or to stop if nothing was counted. Ending at the last
// record rather than at stop keeps an idle tail (a consumer that has read
// everything and waits for the deadline) out of the rates.
func (m *meter) seconds(stop time.Time) float64 {
	if m.records.Load() > 0 {
		return time.Duration(m.last.Load()).Seconds()
	}
	return max(stop.Sub(m.measureStart).Seconds(), 0)
}
