package perf

import (
	"bufio"
	"cmp"
	"fmt"
	"io"
	"os"
	"runtime"
	"slices"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// e2eTrace keeps, for --trace, when each record passed each step of its
// way (due, sent, acknowledged, received) and when each Produce and Fetch
// response was read off the wire, so that a latency tail can be put on
// the producer, the broker or the consumer, and seen to cluster in time.
// Safe for concurrent use.
type e2eTrace struct {
	origin time.Time
	mu     sync.Mutex
	recs   map[int64]*traceRecord
	reqs   []traceRequest
}

type traceRecord struct {
	due, sent, acked, received time.Duration // since origin; 0: not seen
}

// traceRequest is one request's round trip as kgo's OnBrokerE2E reports
// it: written from writeStart, its response fully read at readEnd.
type traceRequest struct {
	key                 int16
	writeStart, readEnd time.Duration
	written, read       int
}

func newE2ETrace(origin time.Time) *e2eTrace {
	return &e2eTrace{origin: origin, recs: map[int64]*traceRecord{}}
}

func (t *e2eTrace) rec(i int64) *traceRecord {
	r := t.recs[i]
	if r == nil {
		r = &traceRecord{}
		t.recs[i] = r
	}
	return r
}

func (t *e2eTrace) sent(i int64, due, now time.Time) {
	t.mu.Lock()
	r := t.rec(i)
	r.due, r.sent = due.Sub(t.origin), now.Sub(t.origin)
	t.mu.Unlock()
}

func (t *e2eTrace) acked(i int64, now time.Time) {
	t.mu.Lock()
	t.rec(i).acked = now.Sub(t.origin)
	t.mu.Unlock()
}

func (t *e2eTrace) received(i int64, now time.Time) {
	t.mu.Lock()
	t.rec(i).received = now.Sub(t.origin)
	t.mu.Unlock()
}

// OnBrokerE2E implements kgo.HookBrokerE2E.
func (t *e2eTrace) OnBrokerE2E(_ kgo.BrokerMetadata, key int16, e kgo.BrokerE2E) {
	now := time.Since(t.origin)
	t.mu.Lock()
	t.reqs = append(t.reqs, traceRequest{
		key:        key,
		writeStart: now - e.TimeToRead - e.ReadWait - e.TimeToWrite,
		readEnd:    now,
		written:    e.BytesWritten,
		read:       e.BytesRead,
	})
	t.mu.Unlock()
}

// write saves the trace as text: the origin ("o unixMicros"), one line per
// record ("r index due sent
// acked received", microseconds since the run began), one per request
// ("q key writeStart readEnd bytesWritten bytesRead") and one per garbage
// collection of this process ("g pauseEnd pause").
func (t *e2eTrace) write(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("writing trace: %w", err)
	}
	w := bufio.NewWriter(f)
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	fmt.Fprintf(w, "o %d\n", t.origin.UnixMicro())
	// The client's own garbage collections, to tell its pauses from the
	// broker's: the end of each cycle's stop-the-world pause.
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	for i := uint32(0); i < min(ms.NumGC, uint32(len(ms.PauseEnd))); i++ {
		k := (ms.NumGC - 1 - i) % uint32(len(ms.PauseEnd))
		end := time.Unix(0, int64(ms.PauseEnd[k])).Sub(t.origin)
		if end < 0 {
			break
		}
		fmt.Fprintf(w, "g %.1f %.1f\n", us(end), float64(ms.PauseNs[k])/1e3)
	}
	t.mu.Lock()
	for i, r := range t.recs {
		fmt.Fprintf(w, "r %d %.1f %.1f %.1f %.1f\n", i, us(r.due), us(r.sent), us(r.acked), us(r.received))
	}
	for _, q := range t.reqs {
		fmt.Fprintf(w, "q %d %.1f %.1f %d %d\n", q.key, us(q.writeStart), us(q.readEnd), q.written, q.read)
	}
	t.mu.Unlock()
	if err := w.Flush(); err != nil {
		f.Close()
		return fmt.Errorf("writing trace %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing trace %s: %w", path, err)
	}
	return nil
}

// traceSteps names the parts a record's latency is split into by
// breakdown, in the order of its way.
var traceSteps = []string{
	"total",      // due to received: the run's latency
	"pace",       // due to sent: the client's own lateness (its timer, its CPU)
	"to wire",    // sent to the start of the Produce request carrying it
	"produce rt", // that Produce request's round trip, as the producer saw it
	"to fetched", // its Produce written to the Fetch response with it read
	"deliver",    // that Fetch response read to PollFetches returning it
}

// breakdown splits the latency of every record due from measureFrom (a
// duration since origin) into traceSteps and returns, per step, the
// percentiles qs of what it took. A record's Produce request is the first
// one written after it was sent, its Fetch response the last one read
// before it was received that carried at least minRead bytes; with one
// record per request, as at light rates, that pairing is exact.
func (t *e2eTrace) breakdown(measureFrom time.Duration, minRead int, qs []float64) [][]time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	var produces, fetches []traceRequest
	for _, q := range t.reqs {
		switch {
		case q.key == 0:
			produces = append(produces, q)
		case q.key == 1 && q.read >= minRead:
			fetches = append(fetches, q)
		}
	}
	slices.SortFunc(produces, func(a, b traceRequest) int { return cmp.Compare(a.writeStart, b.writeStart) })
	slices.SortFunc(fetches, func(a, b traceRequest) int { return cmp.Compare(a.readEnd, b.readEnd) })
	steps := make([]*hist, len(traceSteps))
	for i := range steps {
		steps[i] = newHist()
	}
	for _, r := range t.recs {
		if r.due < measureFrom || r.received == 0 {
			continue
		}
		pi, _ := slices.BinarySearchFunc(produces, r.sent, func(q traceRequest, d time.Duration) int { return cmp.Compare(q.writeStart, d) })
		fi, found := slices.BinarySearchFunc(fetches, r.received, func(q traceRequest, d time.Duration) int { return cmp.Compare(q.readEnd, d) })
		if found {
			fi++ // read at the very moment of receipt: still before it
		}
		if pi == len(produces) || fi == 0 {
			continue
		}
		p, f := produces[pi], fetches[fi-1]
		for i, d := range []time.Duration{r.received - r.due, r.sent - r.due, p.writeStart - r.sent,
			p.readEnd - p.writeStart, f.readEnd - p.writeStart, r.received - f.readEnd} {
			steps[i].Record(d)
		}
	}
	out := make([][]time.Duration, len(steps))
	for i, h := range steps {
		for _, q := range qs {
			out[i] = append(out[i], h.Percentile(q))
		}
	}
	return out
}

// printBreakdown writes breakdown's table, in milliseconds.
func (t *e2eTrace) printBreakdown(w io.Writer, measureFrom time.Duration, minRead int) {
	qs := []float64{50, 90, 99, 99.9, 100}
	fmt.Fprintf(w, "%-12s %8s %8s %8s %8s %8s  (ms, from --trace)\n", "step", "p50", "p90", "p99", "p99.9", "max")
	for i, row := range t.breakdown(measureFrom, minRead, qs) {
		fmt.Fprintf(w, "%-12s", traceSteps[i])
		for _, d := range row {
			fmt.Fprintf(w, " %8.3f", float64(d)/float64(time.Millisecond))
		}
		fmt.Fprintln(w)
	}
}
