package main

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

func TestCompactionPair(t *testing.T) {
	ws := selectWorkloads(allWorkloads(), false, regexp.MustCompile(`^produce-1KiB-(keyed|compacted)$`), allKinds)
	if len(ws) != 2 || ws[0].Name != keyedWorkload || ws[1].Name != compactedWorkload {
		t.Fatalf("selected %+v", ws)
	}
	for _, w := range ws {
		if l := w.Lanes; len(l) != 2 || l[0].Kind != kindUring || l[1].Kind != kindStd {
			t.Errorf("%s lanes %+v, want sluice-uring then sluice-std", w.Name, l)
		}
	}
	// The control differs only by the cleaner: same keys, same segments.
	keyed, compacted := ws[0], ws[1]
	if keyed.Keys != compacted.Keys || keyed.MinDuration != compacted.MinDuration ||
		!slices.Contains(keyed.TopicConfig, compactionSegmentBytes) || !slices.Contains(compacted.TopicConfig, compactionSegmentBytes) ||
		!slices.Contains(keyed.TopicConfig, "cleanup.policy=delete") || !slices.Contains(compacted.TopicConfig, "cleanup.policy=compact") {
		t.Errorf("keyed %+v vs compacted %+v", keyed, compacted)
	}
	// Runs outlast the cleaner's idle back-off; --quick leaves the pair out.
	if compacted.MinDuration < 2*15e9 {
		t.Errorf("compacted runs %s: too short for several cleaner passes", compacted.MinDuration)
	}
	if q := selectWorkloads(allWorkloads(), true, regexp.MustCompile(`keyed|compacted`), allKinds); len(q) != 0 {
		t.Errorf("--quick runs %d of the pair", len(q))
	}

	r := &runner{opts: runOpts{Duration: 4e9, Warmup: 1e9}, tools: tools{Sluice: "bin/sluice"}}
	argv := strings.Join(r.clientArgv(compacted, &peer{spec: peerSpec{Kind: kindUring}, addr: "127.0.0.1:1"}, "t"), " ")
	for _, want := range []string{"--keys 1000", "--topic-config cleanup.policy=compact", "--topic-config segment.bytes=16777216",
		"--topic-config min.cleanable.dirty.ratio=0.1", "--duration 1m0s", "--acks all"} {
		if !strings.Contains(argv, want) {
			t.Errorf("argv %q lacks %q", argv, want)
		}
	}
}

func TestParseCounters(t *testing.T) {
	names := []string{"a_total", "b_total"}
	for _, tc := range []struct {
		name, text string
		want       map[string]float64
		err        string
	}{
		{"both", "# HELP a_total x\n# TYPE a_total counter\na_total 3\nb_total 1.5e+06\n", map[string]float64{"a_total": 3, "b_total": 1.5e6}, ""},
		{"labelled samples and other metrics ignored", "a_total{x=\"1\"} 9\na_total 2\nb_total 0\nc_total 7\n", map[string]float64{"a_total": 2, "b_total": 0}, ""},
		{"missing", "a_total 1\n", nil, "no b_total"},
		{"bad value", "a_total x\nb_total 1\n", nil, "a_total"},
	} {
		got, err := parseCounters(strings.NewReader(tc.text), names)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: err %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || len(got) != len(tc.want) || got["a_total"] != tc.want["a_total"] || got["b_total"] != tc.want["b_total"] {
			t.Errorf("%s: %v, %v; want %v", tc.name, got, err, tc.want)
		}
	}
	d := cleanerDeltaOf(map[string]float64{"sluice_log_cleaner_runs_total": 2, "sluice_log_cleaner_read_bytes_total": 1e6},
		map[string]float64{"sluice_log_cleaner_runs_total": 7, "sluice_log_cleaner_read_bytes_total": 51e6})
	if d.Runs != 5 || d.ReadMB != 50 {
		t.Errorf("delta %+v, want 5 runs and 50 MB", d)
	}
}

func TestCompactionTarget(t *testing.T) {
	sums := func(keyed, compacted float64, passes ...float64) map[string][]summary {
		return map[string][]summary{
			keyedWorkload:     {{Lane: kindUring, OK: 3, RecordsPerS: keyed}},
			compactedWorkload: {{Lane: kindUring, OK: 3, RecordsPerS: compacted, CleanerRuns: passes}},
		}
	}
	for _, tc := range []struct {
		name string
		sums map[string][]summary
		want string
	}{
		{"cleaner ran, fast enough", sums(100, 95, 4, 5, 4), "pass 0.950× (≥ 4 cleaner passes per run)"},
		{"too slow", sums(100, 85, 4, 5, 4), "MISS 0.850× (≥ 4 cleaner passes per run)"},
		{"a run without a pass proves nothing", sums(100, 99, 4, 0, 4), "MISS 0.990× (≥ 0 cleaner passes per run)"},
		{"a run not counted", sums(100, 99, 4, 4), "MISS 0.990× (≥ 4 cleaner passes per run)"},
		{"passes unknown", sums(100, 99), "MISS 0.990× (cleaner passes not counted)"},
		{"keyed missing", map[string][]summary{compactedWorkload: {{Lane: kindUring, OK: 3, RecordsPerS: 1}}}, "n/a "},
		{"no rate", sums(100, math.NaN(), 4, 4, 4), "n/a "},
	} {
		ws := compactionWorkloads()
		ts := evalTargets(ws, tc.sums, limits{})
		got := verdicts(ts)
		if len(got) != 1 {
			t.Errorf("%s: targets %v, want only the compacted one", tc.name, got)
			continue
		}
		for _, v := range got {
			if v != tc.want {
				t.Errorf("%s: %q, want %q", tc.name, v, tc.want)
			}
		}
	}
}

func TestCompactionSection(t *testing.T) {
	ws := compactionWorkloads()
	run := func(w string, lane string, round int, rps float64, passes float64) runRecord {
		return runRecord{Workload: w, Lane: lane, Round: round, BrokerCPU: 1,
			Result:  &clientResult{Records: int64(rps), Bytes: int64(rps) * 1024, Seconds: 1, RecordsPerSec: rps, Latency: latencySummary{P50: 2, P99: 8}},
			Cleaner: &cleanerDelta{Runs: passes, ReadMB: 10 * passes}}
	}
	runs := []runRecord{
		run(keyedWorkload, kindUring, 1, 1000, 0), run(keyedWorkload, kindStd, 1, 800, 0),
		run(compactedWorkload, kindUring, 1, 950, 6), run(compactedWorkload, kindStd, 1, 400, 3),
	}
	r := &report{Workloads: ws, Summaries: map[string][]summary{}, Runs: runs}
	for _, w := range ws {
		r.Summaries[w.Name] = summarize(w, runs)
	}
	var b strings.Builder
	r.writeCompaction(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) })
	md := b.String()
	mustContain(t, md,
		"## Produce while the cleaner runs (issue 18)",
		"| sluice-uring | 1,000 | 950 | 0.950× | 2.00 → 2.00 | 8.00 → 8.00 | 1000.00 → 1052.63 | 6 | 60 | 0 |",
		"| sluice-std | 800 | 400 | 0.500× |")
	if ts := verdicts(evalTargets(ws, r.Summaries, limits{})); len(ts) != 1 {
		t.Errorf("targets %v", ts)
	}
}

// A peer's admin listener can come up a moment after its Kafka port: the
// first count of a run must wait for it rather than give up.
func TestCleanerCountersWaitForTheListener(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if calls.Add(1) <= 2 {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		for _, n := range cleanerCounterNames {
			fmt.Fprintf(w, "%s 1\n", n)
		}
	}))
	defer srv.Close()
	m, err := cleanerCountersSoon(context.Background(), strings.TrimPrefix(srv.URL, "http://"))
	if err != nil || m["sluice_log_cleaner_runs_total"] != 1 || calls.Load() != 3 {
		t.Fatalf("counters %v, err %v after %d calls", m, err, calls.Load())
	}
}
