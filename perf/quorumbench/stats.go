package main

import (
	"math"
	"slices"
	"time"
)

// dist summarizes durations: count, p50, p99 and max.
type dist struct {
	N             int
	P50, P99, Max time.Duration
}

// summarize computes the distribution of ds; p50 and p99 are nearest-rank
// percentiles (with 20 samples, p99 is the largest: said in the report).
func summarize(ds []time.Duration) dist {
	if len(ds) == 0 {
		return dist{}
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return dist{N: len(s), P50: percentile(s, 50), P99: percentile(s, 99), Max: s[len(s)-1]}
}

// percentile is the nearest-rank percentile of sorted: the smallest value
// at least p% of the samples are at or below.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	rank = min(max(rank, 1), len(sorted))
	return sorted[rank-1]
}
