package main

import (
	"encoding/json"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// rttRun is one rtt run whose kinds all take base ms at p50, 3× at p99
// and 5× at p99.9; kinds in skip got no answer.
func rttRun(lane string, round int, base float64, skip ...string) runRecord {
	res := &clientResult{Mode: modeRTT, Records: 400, Seconds: 1, RecordsPerSec: 400, RTT: map[string]latencySummary{}}
	for i, k := range rttKinds {
		if slices.Contains(skip, k) {
			continue
		}
		b := base * float64(i+1)
		res.RTT[k] = latencySummary{Count: 100, P50: b, P99: 3 * b, P999: 5 * b}
	}
	return runRecord{Workload: "rtt-sequential", Lane: lane, Round: round, Result: res, BrokerCPU: 0.01, PeakRSSMB: 30}
}

// rttReport has the rtt workload and the light e2e one: sluice-uring as
// fast as kfake at p50 and slower at p99 in round 2, sluice-std without
// a single OffsetCommit answered.
func rttReport() *report {
	ws := selectWorkloads(allWorkloads(), false, regexp.MustCompile(`^(rtt-sequential|e2e-1k-1KiB)$`), allKinds)
	runs := []runRecord{
		rttRun(kindUring, 1, 0.1), rttRun(kindStd, 1, 0.2, "OffsetCommit"), rttRun(kindKfake, 1, 0.1),
		rttRun(kindUring, 2, 0.3), rttRun(kindStd, 2, 0.2, "OffsetCommit"), rttRun(kindKfake, 2, 0.2),
		rttRun(kindUring, 3, 0.2), rttRun(kindStd, 3, 0.2, "OffsetCommit"), rttRun(kindKfake, 3, 0.2),
		{Workload: "e2e-1k-1KiB", Lane: kindUring, Round: 1, Result: &clientResult{Records: 1000, Seconds: 1, RecordsPerSec: 1000,
			Latency: latencySummary{P50: 0.3, P99: 0.9, P999: 4}}},
	}
	r := &report{Env: environment{Date: "2026-01-02T03:04:05Z"}, Options: map[string]any{}, Workloads: ws, Runs: runs,
		Unavailable: map[string]string{}}
	finish(r, "/repo")
	return r
}

func TestRTTWorkloads(t *testing.T) {
	ws := selectWorkloads(allWorkloads(), true, regexp.MustCompile(`rtt|e2e-1k`), allKinds)
	if len(ws) != 2 || ws[0].Name != "e2e-1k-1KiB" || ws[1].Name != "rtt-sequential" {
		t.Fatalf("--quick --only 'rtt|e2e-1k' = %+v", ws)
	}
	if e := ws[0]; e.Mode != modeE2E || e.Rate != 1000 || e.RecordSize != 1024 || e.Acks != "all" || len(e.Lanes) != 4 {
		t.Errorf("e2e-1k-1KiB = %+v", e)
	}
	var lanes []string
	for _, l := range ws[1].Lanes {
		lanes = append(lanes, l.Label)
	}
	if !slices.Equal(lanes, []string{kindUring, kindStd, kindKfake}) {
		t.Errorf("rtt-sequential lanes %v", lanes)
	}
	if got := selectWorkloads(allWorkloads(), false, regexp.MustCompile(`^rtt`), []string{kindJS}); len(got) != 0 {
		t.Errorf("rtt kept with JetStream alone: %+v", got)
	}

	rn := &runner{opts: runOpts{Duration: 2 * time.Second, Warmup: time.Second}, tools: tools{Sluice: "bin/sluice"}}
	argv := rn.clientArgv(ws[1], &peer{spec: peerSpec{Kind: kindKfake}, addr: "127.0.0.1:1"}, "topic")
	if got := strings.Join(argv, " "); got != "bin/sluice perf rtt --brokers 127.0.0.1:1 --topic topic --json --duration 2s --warmup 1s" {
		t.Errorf("rtt client: %s", got)
	}

	// A light load needs more samples than --duration gives a full run;
	// --quick keeps its short runs.
	for _, quick := range []bool{false, true} {
		rn.opts.Quick = quick
		argv := strings.Join(rn.clientArgv(ws[0], &peer{spec: peerSpec{Kind: kindUring}, addr: "127.0.0.1:1"}, "topic"), " ")
		want := "--duration 15s"
		if quick {
			want = "--duration 2s"
		}
		if !strings.Contains(argv, want+" ") {
			t.Errorf("e2e-1k client (quick %v): %s, want %s", quick, argv, want)
		}
	}
}

func TestRTTSummaryAndTargets(t *testing.T) {
	r := rttReport()
	sums := r.Summaries["rtt-sequential"]
	u, s := sums[0], sums[1]
	// Medians of 0.1, 0.3, 0.2 for Produce; Fetch is twice that.
	if p := u.RTT["Produce"]; !near(p.P50, 0.2) || !near(p.P99, 0.6) || !near(p.P999, 1) {
		t.Errorf("uring Produce %+v", p)
	}
	if !near(u.RTT["Fetch"].P50, 0.4) || len(u.RTT) != 4 {
		t.Errorf("uring rows %+v", u.RTT)
	}
	if _, ok := s.RTT["OffsetCommit"]; ok || len(s.RTT) != 3 {
		t.Errorf("std rows %+v: OffsetCommit never answered, so no row", s.RTT)
	}

	got := verdicts(r.Targets)
	for k, want := range map[string]string{
		"rtt-sequential: Produce p50 ≤ 1.0× kfake":      "pass 1.000× (0.200 vs 0.200 ms)",
		"rtt-sequential: Produce p99 ≤ 1.0× kfake":      "pass 1.000× (0.600 vs 0.600 ms)",
		"rtt-sequential: OffsetCommit p50 ≤ 1.0× kfake": "pass 1.000× (0.800 vs 0.800 ms)",
		"e2e-1k-1KiB: e2e p99 ≤ 1 ms":                   "pass 0.90 ms",
	} {
		if got[k] != want {
			t.Errorf("%s: got %q, want %q", k, got[k], want)
		}
	}
	// 2 per kind, the light e2e's p99 (no p99.9 bound: 4 ms would miss
	// it) and RSS.
	if len(got) != 2*len(rttKinds)+2 {
		t.Errorf("%d targets: %v", len(got), got)
	}

	// A slower uring misses; a kind kfake never answered cannot pass.
	r.Runs = append(r.Runs, rttRun(kindUring, 4, 0.5), rttRun(kindUring, 5, 0.5))
	r.Runs = slices.DeleteFunc(r.Runs, func(x runRecord) bool { return x.Lane == kindKfake && x.Round == 1 })
	for i := range r.Runs {
		if r.Runs[i].Lane == kindKfake {
			delete(r.Runs[i].Result.RTT, "Metadata")
		}
	}
	finish(r, "/repo")
	got = verdicts(r.Targets)
	if got["rtt-sequential: Produce p50 ≤ 1.0× kfake"] != "MISS 1.500× (0.300 vs 0.200 ms)" ||
		got["rtt-sequential: Metadata p99 ≤ 1.0× kfake"] != "n/a " {
		t.Errorf("targets %v", got)
	}
}

func TestRTTReport(t *testing.T) {
	r := rttReport()
	md := r.markdown("")
	mustContain(t, md,
		"## Latency at low load: rtt-sequential (issue 12)",
		"| request | peer | p50 ms | p99 ms | p99.9 ms | p50 × kfake | p99 × kfake |",
		"| Produce | sluice-uring | 0.200 | 0.600 | 1.000 | 1.00× | 1.00× |",
		"| Fetch | sluice-std | 0.400 | 1.200 | 2.000 | 1.00× | 1.00× |",
		"| OffsetCommit | sluice-std | error: – |",
		// rtt rows of the results table: requests/s, no MB/s nor latency,
		// and the eight targets counted.
		"| rtt-sequential | sluice-uring | 400 | 0% | – | 1.00× | 25.00 | – | 30 | – | – | – | 3/3 | 8 pass, 0 MISS (targets table) |",
		"| e2e-1k-1KiB | sluice-uring | 1,000 |",
		"p99 0.90 ms pass |",
	)
	b, err := encodeJSON(r)
	if err != nil {
		t.Fatal(err)
	}
	type rttJSON struct {
		Peer string                        `json:"peer"`
		RTT  map[string]map[string]float64 `json:"rtt_ms"`
	}
	var back struct {
		Summaries []rttJSON `json:"summaries"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(back.Summaries, func(s rttJSON) bool { return s.Peer == kindKfake && s.RTT != nil })
	if i < 0 || !near(back.Summaries[i].RTT["Metadata"]["p50"], 0.6) {
		t.Errorf("kfake's rtt summary in JSON: %+v", back.Summaries)
	}
}

func TestRTTPlot(t *testing.T) {
	svg := string(svgPlot(rttReport()))
	// Bars for every kind and lane but sluice-std's OffsetCommit, which
	// never got an answer; rtt has no throughput bars.
	if n := strings.Count(svg, `fill-opacity="0.35"`); n != 4*3-1 {
		t.Errorf("%d p99 bars, want 11", n)
	}
	for _, want := range []string{"rtt-sequential: round trip", ">OffsetCommit</text>", ">0.200 / 0.600</text>", ">error</text>"} {
		if !strings.Contains(svg, want) {
			t.Errorf("plot lacks %q", want)
		}
	}
	if strings.Contains(svg, "MB/s (") && strings.Contains(svg, ">rtt-sequential</text>") {
		t.Error("rtt drawn as throughput")
	}
}

func near(a, b float64) bool { return math.Abs(a-b) < 1e-9 }

// verdicts maps "workload: target" to "verdict measured".
func verdicts(ts []target) map[string]string {
	got := map[string]string{}
	for _, tg := range ts {
		got[tg.Workload+": "+tg.What] = tg.verdict() + " " + tg.Got
	}
	return got
}

// mustContain fails the test for each piece the report lacks, and then
// shows the report.
func mustContain(t *testing.T, md string, wants ...string) {
	t.Helper()
	for _, want := range wants {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if t.Failed() {
		t.Log(md)
	}
}
