package main

import (
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"math"
	"regexp"
	"slices"
	"testing"
)

func TestMedianAndRatio(t *testing.T) {
	for _, c := range []struct {
		in   []float64
		want float64
	}{
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 2.5},
	} {
		in := slices.Clone(c.in)
		if got := benchkit.Median(c.in); got != c.want {
			t.Errorf("benchkit.Median(%v) = %v, want %v", in, got, c.want)
		}
		if !slices.Equal(in, c.in) {
			t.Errorf("median reordered its input: %v", c.in)
		}
	}
	if !math.IsNaN(benchkit.Median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	if got := ratio(3, 2); got != 1.5 {
		t.Errorf("ratio(3,2) = %v", got)
	}
	for _, c := range [][2]float64{{1, 0}, {math.NaN(), 1}, {1, math.NaN()}} {
		if !math.IsNaN(ratio(c[0], c[1])) {
			t.Errorf("ratio(%v, %v) is not NaN", c[0], c[1])
		}
	}
}

func TestScheduleAlternates(t *testing.T) {
	w := workload{Name: "w", Lanes: []lane{kindLane("A"), kindLane("B"), kindLane("C")}}
	var got []string
	for _, s := range schedule(w, 3) {
		got = append(got, s.Lane.Label+string(rune('0'+s.Round)))
	}
	want := []string{"A1", "B1", "C1", "A2", "B2", "C2", "A3", "B3", "C3"}
	if !slices.Equal(got, want) {
		t.Fatalf("schedule = %v, want %v", got, want)
	}
}

func TestWorkloadsCoverTheIssue(t *testing.T) {
	ws := allWorkloads()
	var produce int
	names := map[string]bool{}
	for _, w := range ws {
		if names[w.Name] {
			t.Errorf("duplicate workload %s", w.Name)
		}
		names[w.Name] = true
		if w.Mode == modeProduce && w.Name != "metrics-scrape-1KiB" && w.Name != "produce-fsync-1KiB" && w.Name != clusterProduce &&
			w.Keys == 0 { // the keyed pair of issue 18 is counted in compaction_test.go
			produce++
		}
	}
	if produce != 16 { // 2 sizes × 2 partition counts × 2 acks × 2 codecs
		t.Errorf("%d produce workloads, want 16", produce)
	}
	for _, n := range quickNames {
		if !names[n] {
			t.Errorf("quick workload %s does not exist", n)
		}
	}
	quick := selectWorkloads(ws, true, nil, allKinds)
	if len(quick) != len(quickNames) {
		t.Errorf("--quick selects %d workloads, want %d", len(quick), len(quickNames))
	}
	only := selectWorkloads(ws, false, regexp.MustCompile(`^consume-`), []string{kindKfake, kindJS})
	if len(only) != 2 {
		t.Fatalf("--only ^consume- selects %d workloads, want 2", len(only))
	}
	if l := only[0].Lanes; len(l) != 2 || l[0].Label != kindKfake || l[1].Label != kindJS {
		t.Errorf("consume-decoded lanes with --peers kfake,jetstream = %+v", l)
	}
	if l := only[1].Lanes; len(l) != 1 || l[0].Label != kindKfake {
		t.Errorf("consume-raw lanes with --peers kfake,jetstream = %+v (JetStream has no raw fetch)", l)
	}
	for _, n := range []string{clusterProduce, clusterKill9, clusterSigterm} { // issue 16
		if !names[n] {
			t.Errorf("cluster workload %s missing", n)
		}
	}
	if got := selectWorkloads(ws, false, regexp.MustCompile(`^cluster-`), []string{kindUring, kindKfake}); len(got) != 0 {
		t.Errorf("cluster workloads kept without --peers %s: %+v", kindCluster, got)
	}
	if got := selectWorkloads(ws, false, regexp.MustCompile(`fsync`), []string{kindKfake}); len(got) != 0 {
		t.Errorf("fsync workload without fsync-capable peers kept: %+v", got)
	}
}

func TestSummarize(t *testing.T) {
	w := workload{Name: "w", Mode: modeProduce, Lanes: []lane{kindLane(kindUring), kindLane(kindKfake), kindLane(kindJS)}}
	run := func(round int, l string, rps float64, cpu float64, rss float64, p99 float64) runRecord {
		return runRecord{Workload: "w", Lane: l, Round: round, BrokerCPU: cpu, PeakRSSMB: rss,
			Result: &clientResult{Records: int64(rps), Bytes: int64(rps) * 1000, Seconds: 1, RecordsPerSec: rps,
				Latency: latencySummary{P50: 1, P99: p99, P999: 2 * p99}, CDF: [][2]float64{{99, p99}}}}
	}
	runs := []runRecord{
		run(1, kindUring, 100, 1e-3, 50, 5), run(1, kindKfake, 300, 1e-3, 400, 1), {Workload: "w", Lane: kindJS, Round: 1, Err: "boom"},
		run(2, kindUring, 200, 2e-3, 70, 1), run(2, kindKfake, 100, 1e-3, 10, 2), {Workload: "w", Lane: kindJS, Round: 2, Err: "again"},
		run(3, kindUring, 300, 3e-3, 60, 3), run(3, kindKfake, 200, 1e-3, 20, 3),
		run(1, "other", 1, 1, 1, 1),
	}
	s := summarize(w, runs)
	if len(s) != 3 {
		t.Fatalf("%d rows, want 3", len(s))
	}
	u, k, j := s[0], s[1], s[2]
	if u.RecordsPerS != 200 || u.MBPerS != 0.2 || u.Runs != 3 || u.OK != 3 {
		t.Errorf("uring row = %+v", u)
	}
	if u.CPUPerRecUS != 10 { // 1 ms / 100 records, 2 ms / 200, 3 ms / 300
		t.Errorf("uring cpu/record = %v µs, want 10", u.CPUPerRecUS)
	}
	if u.PeakRSSMB != 70 || k.PeakRSSMB != 400 {
		t.Errorf("peak RSS = %v and %v, want the maximum of the rounds", u.PeakRSSMB, k.PeakRSSMB)
	}
	if u.P99 != 3 || u.CDF[0][1] != 3 {
		t.Errorf("uring p99 = %v, CDF %v: want the median run's", u.P99, u.CDF)
	}
	if k.Ratio != 1 || u.Ratio != 1 {
		t.Errorf("ratios = %v, %v; want 1 (kfake median 200 over uring 200)", u.Ratio, k.Ratio)
	}
	// Per round kfake/uring: 3, 0.5, 0.667; the median differs from the
	// ratio of the medians (1).
	if math.Abs(k.PairedRatio-2.0/3) > 1e-9 || u.PairedRatio != 1 {
		t.Errorf("paired ratios = %v, %v; want 1 and 0.667", u.PairedRatio, k.PairedRatio)
	}
	if j.OK != 0 || j.Runs != 2 || j.FirstErr != "boom" || !math.IsNaN(j.RecordsPerS) || !math.IsNaN(j.Ratio) {
		t.Errorf("failed lane row = %+v", j)
	}
}

func TestTargets(t *testing.T) {
	ws := []workload{
		{Name: "produce-x", Mode: modeProduce},
		{Name: "consume-raw", Mode: modeConsume, Raw: true},
		{Name: "e2e-20k-1KiB", Mode: modeE2E},
		{Name: "produce-fsync-1KiB", Mode: modeProduce},
		{Name: "metrics-scrape-1KiB", Mode: modeProduce},
	}
	sums := map[string][]summary{
		"produce-x": {
			{Lane: kindUring, OK: 3, Runs: 3, RecordsPerS: 110, CPUPerRecUS: 2, PeakRSSMB: 320},
			{Lane: kindKfake, OK: 3, Runs: 3, RecordsPerS: 100, CPUPerRecUS: 1},
		},
		"consume-raw": {
			{Lane: kindUring, OK: 3, Runs: 3, MBPerS: 900, CPUPerMBUS: 10, PeakRSSMB: 40},
			{Lane: kindKfake, OK: 0, Runs: 3},
		},
		"e2e-20k-1KiB":       {{Lane: kindUring, OK: 3, Runs: 3, P99: 0.8, P999: 3.5}},
		"produce-fsync-1KiB": {{Lane: labelUringFsync, OK: 3, Runs: 3, RecordsPerS: 1000}, {Lane: labelJSSync, OK: 3, Runs: 3, RecordsPerS: 50}},
		"metrics-scrape-1KiB": {{Lane: kindUring, OK: 6, Runs: 6, RecordsPerS: 100, PairedRatio: 1},
			{Lane: labelScrape, OK: 6, Runs: 6, RecordsPerS: 100, Ratio: 1, PairedRatio: 0.985}},
	}
	got := verdicts(evalTargets(ws, sums, limits{SendfileMBs: 1000}))
	for k, want := range map[string]string{
		"produce-x: throughput ≥ 1.0× kfake":                                                                           "pass 1.100×",
		"produce-x: broker CPU/record ≤ 1.0× kfake":                                                                    "MISS 2.000×",
		"consume-raw: raw fetch ≥ 0.8× sendfile loopback limit":                                                        "pass 0.900×",
		"consume-raw: broker CPU/byte ≤ 0.5× kfake":                                                                    "n/a ",
		"e2e-20k-1KiB: e2e p99 ≤ 1 ms":                                                                                 "pass 0.80 ms",
		"e2e-20k-1KiB: e2e p99.9 ≤ 3 ms":                                                                               "MISS 3.50 ms",
		"produce-fsync-1KiB: fsync before ack: ≥ 10× JetStream sync_interval=always records/s":                         "pass 20.000×",
		"metrics-scrape-1KiB: /metrics every second costs < 1% of throughput (with/without, median of rounds, ≥ 0.99)": "MISS 0.985×",
		"all: sluice-uring RSS < 300 MB in every workload":                                                             "MISS max 320 MB (produce-x)",
	} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q", k, got[k], want)
		}
	}
	if len(got) != 9 {
		t.Errorf("%d targets, want 9: %v", len(got), got)
	}
}

func TestLatencyStats(t *testing.T) {
	lats := make([]float64, 1000)
	for i := range lats {
		lats[len(lats)-1-i] = float64(i + 1) // 1000 … 1, unsorted
	}
	s, cdf := latencyStats(lats)
	if s.Count != 1000 || s.P50 != 500 || s.P99 != 990 || s.P999 != 999 || s.Max != 1000 || s.Mean != 500.5 {
		t.Fatalf("stats = %+v", s)
	}
	if cdf[0] != [2]float64{50, 500} || cdf[len(cdf)-1] != [2]float64{100, 1000} {
		t.Fatalf("cdf = %v", cdf)
	}
	if s, cdf := latencyStats(nil); s.Count != 0 || cdf != nil {
		t.Fatalf("empty: %+v %v", s, cdf)
	}
}

func TestParseClientOutput(t *testing.T) {
	out := "progress 1\n{\"tool\":\"x\",\"records\":1}\nnoise\n{\"tool\":\"sluice perf\",\"records\":5,\"bytes\":50,\"seconds\":0.5,\"latency_ms\":{\"p99\":1.5}}\n"
	r, err := parseClientOutput([]byte(out))
	if err != nil {
		t.Fatal(err)
	}
	if r.Records != 5 || r.Latency.P99 != 1.5 {
		t.Fatalf("took %+v, want the last JSON line", r)
	}
	if _, err := parseClientOutput([]byte("sluice perf produce: broker down\n")); err == nil {
		t.Error("output without JSON accepted")
	}
}
