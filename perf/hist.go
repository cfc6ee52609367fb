package perf

import (
	"math"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Latencies are kept in microseconds from 0 to an hour with three
// significant digits: 0.1% error at any magnitude, about 200 KB per
// histogram.
const (
	histMaxMicros = int64(time.Hour / time.Microsecond)
	histSigFigs   = 3
)

// hist is a latency histogram. Beside the HDR buckets it keeps the exact
// maximum, because a bucket's upper bound can exceed every recorded value
// and "max" should be a latency that really happened. Not safe for
// concurrent use; see syncHist.
type hist struct {
	h   *hdrhistogram.Histogram
	max int64 // µs
}

func newHist() *hist {
	return &hist{h: hdrhistogram.New(1, histMaxMicros, histSigFigs)}
}

// Record adds one latency. Negative values (a wall clock stepped back
// between stamping and receiving) count as zero and values beyond the
// range as the range's end, so no sample is silently dropped.
func (h *hist) Record(d time.Duration) {
	us := min(max(d.Microseconds(), 0), histMaxMicros)
	_ = h.h.RecordValue(us) // cannot fail: us is within the range
	h.max = max(h.max, us)
}

// Merge adds every sample of o.
func (h *hist) Merge(o *hist) {
	h.h.Merge(o.h)
	h.max = max(h.max, o.max)
}

func (h *hist) Count() int64 { return h.h.TotalCount() }

func (h *hist) Max() time.Duration { return time.Duration(h.max) * time.Microsecond }

func (h *hist) Mean() time.Duration {
	return time.Duration(h.h.Mean() * float64(time.Microsecond))
}

// Percentile returns the latency below which p percent (0 to 100) of the
// samples fall, never more than the maximum.
func (h *hist) Percentile(p float64) time.Duration {
	if h.Count() == 0 {
		return 0
	}
	return time.Duration(min(h.h.ValueAtQuantile(p), h.max)) * time.Microsecond
}

// cdfPercentiles are spaced about evenly on a log scale of 1/(1-p) (three
// to four points per "nine") from the median to six nines, the usual axis
// of latency CDF plots; 100 (the maximum) closes the curve.
var cdfPercentiles = []float64{
	50, 70, 80, 90,
	95, 97, 98, 99,
	99.5, 99.7, 99.8, 99.9,
	99.95, 99.97, 99.98, 99.99,
	99.995, 99.997, 99.998, 99.999,
	99.9995, 99.9997, 99.9998, 99.9999,
	100,
}

// CDF returns [percentile, latency ms] points for plotting; empty when
// nothing was recorded. The points never decrease and the last one is the
// maximum.
func (h *hist) CDF() [][2]float64 {
	if h.Count() == 0 {
		return nil
	}
	out := make([][2]float64, 0, len(cdfPercentiles))
	for _, p := range cdfPercentiles {
		v := h.Percentile(p)
		if p == 100 {
			v = h.Max()
		}
		out = append(out, [2]float64{p, millis(v)})
	}
	return out
}

// millis renders a latency in milliseconds, rounded to the microsecond the
// histogram resolves.
func millis(d time.Duration) float64 {
	return roundTo(float64(d)/float64(time.Millisecond), 3)
}

func roundTo(x float64, digits int) float64 {
	scale := math.Pow(10, float64(digits))
	return math.Round(x*scale) / scale
}

// syncHist is a hist shared between the goroutines that record into it
// (kgo promise workers, consumers) and the progress line that reads it.
type syncHist struct {
	mu sync.Mutex
	h  *hist
}

func newSyncHist() *syncHist { return &syncHist{h: newHist()} }

func (s *syncHist) Record(d time.Duration) {
	s.mu.Lock()
	s.h.Record(d)
	s.mu.Unlock()
}

func (s *syncHist) Percentile(p float64) time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.h.Percentile(p)
}

// snapshot returns a copy that the caller may read without the lock.
func (s *syncHist) snapshot() *hist {
	c := newHist()
	s.mu.Lock()
	c.Merge(s.h)
	s.mu.Unlock()
	return c
}
