package perf

import (
	"math"
	"testing"
	"time"
)

func uniform(from, to int) *hist {
	h := newHist()
	for us := from; us <= to; us++ {
		h.Record(time.Duration(us) * time.Microsecond)
	}
	return h
}

// near checks got against want within HDR's precision (3 significant
// digits, 0.1%) plus one sample's worth of quantile rounding.
func near(t *testing.T, what string, got, want time.Duration) {
	t.Helper()
	if math.Abs(float64(got-want)) > float64(want)*0.002+float64(time.Microsecond) {
		t.Errorf("%s = %v, want %v within 0.2%%", what, got, want)
	}
}

func TestHistPercentilesOfUniform(t *testing.T) {
	h := uniform(1, 10000)
	if h.Count() != 10000 {
		t.Fatalf("count %d", h.Count())
	}
	near(t, "p50", h.Percentile(50), 5000*time.Microsecond)
	near(t, "p99", h.Percentile(99), 9900*time.Microsecond)
	near(t, "p99.9", h.Percentile(99.9), 9990*time.Microsecond)
	near(t, "mean", h.Mean(), 5000500*time.Nanosecond)
	if h.Max() != 10*time.Millisecond {
		t.Errorf("max = %v, want exactly 10ms", h.Max())
	}
	if h.Percentile(100) != h.Max() {
		t.Errorf("p100 %v differs from max %v", h.Percentile(100), h.Max())
	}
}

func TestHistMerge(t *testing.T) {
	lo, hi := uniform(1, 5000), uniform(5001, 10000)
	lo.Merge(hi)
	if lo.Count() != 10000 {
		t.Fatalf("merged count %d, want 10000", lo.Count())
	}
	if lo.Max() != 10*time.Millisecond {
		t.Errorf("merged max %v, want 10ms", lo.Max())
	}
	near(t, "merged p50", lo.Percentile(50), 5000*time.Microsecond)
	near(t, "merged p99", lo.Percentile(99), 9900*time.Microsecond)
}

func TestHistClampsOutOfRange(t *testing.T) {
	h := newHist()
	h.Record(-time.Second)
	h.Record(2 * time.Hour)
	if h.Count() != 2 {
		t.Fatalf("count %d, want both samples kept", h.Count())
	}
	if h.Percentile(50) != 0 || h.Max() != time.Hour {
		t.Fatalf("p50 %v max %v, want 0 and 1h", h.Percentile(50), h.Max())
	}
}

func TestHistCDF(t *testing.T) {
	if cdf := newHist().CDF(); cdf != nil {
		t.Fatalf("empty histogram has CDF %v", cdf)
	}
	h := uniform(1, 10000)
	h.Record(250 * time.Millisecond) // one outlier beyond every bucket the rest use
	cdf := h.CDF()
	if len(cdf) < 20 || len(cdf) > 30 {
		t.Fatalf("%d CDF points, want about 25", len(cdf))
	}
	if cdf[0][0] != 50 {
		t.Fatalf("CDF starts at p%v, want p50", cdf[0][0])
	}
	for i := 1; i < len(cdf); i++ {
		if cdf[i][0] <= cdf[i-1][0] || cdf[i][1] < cdf[i-1][1] {
			t.Fatalf("CDF not monotonic at %d: %v then %v", i, cdf[i-1], cdf[i])
		}
	}
	last := cdf[len(cdf)-1]
	if last != [2]float64{100, 250} {
		t.Fatalf("CDF ends at %v, want [100 250] (the max)", last)
	}
	if math.Abs(cdf[0][1]-5) > 0.02 {
		t.Fatalf("CDF p50 = %v ms, want about 5", cdf[0][1])
	}
	// 1/(1-p) spacing: each point at most ~3.4x further into the tail.
	for i := 1; i < len(cdf)-1; i++ {
		ratio := (100 - cdf[i-1][0]) / (100 - cdf[i][0])
		if ratio < 1.2 || ratio > 3.4 {
			t.Fatalf("p%v to p%v is not log-spaced (ratio %.2f)", cdf[i-1][0], cdf[i][0], ratio)
		}
	}
}

func TestSyncHistSnapshotIsIndependent(t *testing.T) {
	s := newSyncHist()
	s.Record(time.Millisecond)
	snap := s.snapshot()
	s.Record(time.Second)
	if snap.Count() != 1 || snap.Max() != time.Millisecond {
		t.Fatalf("snapshot changed with its source: count %d max %v", snap.Count(), snap.Max())
	}
}
