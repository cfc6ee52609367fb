package main

import (
	"errors"
	"math"
	"testing"
	"time"
)

// The two failover figures, on a producer's timeline around a signal at
// t0: what the report calls failover must start at the first record sent
// after the signal, and the unavailability through a shutdown must be the
// longest wait of a record that overlapped it.
func TestFailoverFigures(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	samples := []produceSample{
		{start: at(-10), end: at(-9)},
		{start: at(-2), end: at(1)},                             // in flight at the signal, answered by the old leader
		{start: at(1), end: at(40), err: errors.New("timeout")}, // failed: not an acknowledgement
		{start: at(40), end: at(3500)},                          // the first acknowledged after the signal
		{start: at(3500), end: at(3502)},
		{start: at(5000), end: at(5900)}, // after the window
	}
	first, ok := firstAckAfter(samples, t0)
	if !ok || first != 3500*time.Millisecond {
		t.Errorf("firstAckAfter = %v, %v; want 3.5s, true", first, ok)
	}
	if _, ok := firstAckAfter(samples[:3], t0); ok {
		t.Error("firstAckAfter found an acknowledgement among a record sent before the signal and a failed one")
	}
	if got := longestWait(samples, t0, at(4000)); got != 3460*time.Millisecond {
		t.Errorf("longestWait = %v, want 3.46s (the record sent at 40 ms)", got)
	}
	if got := longestWait(samples, at(3501), at(4000)); got != 2*time.Millisecond {
		t.Errorf("longestWait after the stall = %v, want 2ms", got)
	}
}

// With 20 events the p99 is the worst one: a single slow failover must
// fail the target, not vanish in interpolation.
func TestSummarizeMSNearestRank(t *testing.T) {
	var xs []float64
	for i := range 20 {
		xs = append(xs, float64(3000+i))
	}
	xs[7] = 9000
	s := summarizeMS(xs)
	if s.Count != 20 || s.P99 != 9000 || s.Max != 9000 || s.P50 != 3010 {
		t.Errorf("summarizeMS = %+v; want count 20, p50 3010, p99 = max = 9000", s)
	}
	if math.Abs(s.Mean-(3000*20+190-7+6000)/20.0) > 1e-9 {
		t.Errorf("mean = %v", s.Mean)
	}
	if got := summarizeMS(nil); got.Count != 0 {
		t.Errorf("summarizeMS(nil) = %+v", got)
	}
}

func TestFailoverTarget(t *testing.T) {
	ws := clusterWorkloads()
	find := func(p99 float64) func(w, label string) (summary, bool) {
		return func(w, label string) (summary, bool) { return summary{OK: 1, P50: p99 / 2, P99: p99}, true }
	}
	for _, c := range []struct {
		w    workload
		p99  float64
		pass bool
	}{
		{ws[1], clusterSessionMS + 1000, true},
		{ws[1], clusterSessionMS + 1001, false},
		{ws[2], 100, true},
		{ws[2], 1008, false},
	} {
		if got := failoverTarget(c.w, find(c.p99)); got.Pass != c.pass || got.Got == "" {
			t.Errorf("%s with p99 %v: %+v, want pass=%v", c.w.Name, c.p99, got, c.pass)
		}
	}
	none := func(string, string) (summary, bool) { return summary{}, false }
	if got := failoverTarget(ws[1], none); got.verdict() != "n/a" {
		t.Errorf("without a run the target is %q, want n/a", got.verdict())
	}
}
