package main

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fixedReport is a small result set: one produce workload where JetStream
// failed, the e2e workload with CDFs, and the /metrics pair unavailable.
func fixedReport() *report {
	ws := []workload{
		{Name: "produce-1KiB-p1-acksall-none", Mode: modeProduce, Lanes: []lane{kindLane(kindUring), kindLane(kindKfake), kindLane(kindJS)}},
		{Name: "e2e-20k-1KiB", Mode: modeE2E, Lanes: []lane{kindLane(kindUring), kindLane(kindKfake)}},
		{Name: "metrics-scrape-1KiB", Mode: modeProduce, Lanes: []lane{kindLane(kindUring), {Label: labelScrape, Peer: kindUring, Kind: kindUring, Scrape: true}}},
	}
	res := func(rps, p99 float64) *clientResult {
		return &clientResult{Records: int64(rps), Bytes: int64(rps) * 1024, Seconds: 1, RecordsPerSec: rps,
			Latency: latencySummary{P50: p99 / 3, P99: p99, P999: p99 * 2},
			CDF:     [][2]float64{{50, p99 / 3}, {90, p99 / 2}, {99, p99}, {99.9, p99 * 2}, {100, p99 * 4}}}
	}
	runs := []runRecord{
		{Workload: ws[0].Name, Lane: kindUring, Round: 1, Result: res(300000, 4), BrokerCPU: 0.6, PeakRSSMB: 61},
		{Workload: ws[0].Name, Lane: kindKfake, Round: 1, Result: res(250000, 3), BrokerCPU: 0.5, PeakRSSMB: 1200},
		{Workload: ws[0].Name, Lane: kindJS, Round: 1, Err: "client: exit status 1: nats: no responders | oops"},
		{Workload: ws[1].Name, Lane: kindUring, Round: 1, Result: res(20000, 1.2), BrokerCPU: 0.1, PeakRSSMB: 40},
		{Workload: ws[1].Name, Lane: kindKfake, Round: 1, Result: res(20000, 17), BrokerCPU: 0.4, PeakRSSMB: 130,
			Notes: []string{"kfake had died (signal: killed), restarted"}},
	}
	r := &report{
		Env: environment{Date: "2026-01-02T03:04:05Z", ShortCommit: "abc1234", Kernel: "6.1.0", CPU: "Test CPU", Cores: 2,
			Go: "go1.26", Commit: "abc1234def", FranzGo: "v1.22.2", NatsServer: "nats-server: v2.15.2", HarnessFlags: "go run ./perf/bench --quick"},
		Options:     map[string]any{"rounds": 1, "fill_records": 200000},
		Limits:      limits{LoopbackTool: "iperf3", LoopbackMBs: 4000, SendfileMBs: 2500, ReadWriteMBs: 2000, SeqWriteMBs: 1500, FdatasyncPerS: 3000, FdatasyncMBs: 12.3},
		Workloads:   ws,
		Summaries:   map[string][]summary{},
		Unavailable: map[string]string{"metrics-scrape-1KiB": "GET /metrics: connection refused"},
		Peers:       []startedPeer{{Name: kindUring, Argv: []string{"/repo/bin/sluice", "broker", "--set", "log.dirs=/tmp/a b"}}},
		Commands:    []clientCommand{{What: "e2e-20k-1KiB, kfake", Argv: []string{"/repo/bin/sluice", "perf", "e2e", "--rate", "20000"}}},
		Runs:        runs,
		Elapsed:     125,
		root:        "/repo",
	}
	for _, w := range ws {
		r.Summaries[w.Name] = summarize(w, runs)
	}
	r.Targets = evalTargets(ws, r.Summaries, r.Limits)
	return r
}

func TestMarkdownReport(t *testing.T) {
	md := fixedReport().markdown("latest.svg")
	for _, want := range []string{
		"# Sluice benchmark, 2026-01-02 (abc1234)",
		"| kernel | 6.1.0 |",
		"| CPU | Test CPU, 2 cores |",
		"Harness run took 2m05s.",
		// produce row: 300,000 rec/s, 307.2 MB/s, ratio 1, 2 µs/rec, 1953 µs/MB, RSS 61
		"| produce-1KiB-p1-acksall-none | sluice-uring | 300,000 | – | 307.2 | 1.00× | 2.00 | 1,953 | 61 | 1.333 | 4.000 | 8.000 | 1/1 | tput 1.200× pass; cpu/rec 1.000× pass |",
		"| e2e-20k-1KiB | sluice-uring | 20,000 | – | 20.5 | 1.00× | 5.00 | 4,883 | 40 | 0.400 | 1.200 | 2.400 | 1/1 | p99 1.20 ms **MISS**; p99.9 2.40 ms pass |",
		"| produce-1KiB-p1-acksall-none | kfake | 250,000 | – | 256.0 | 0.83× |",
		// the failed lane shows its error, with the table's pipe escaped
		`| produce-1KiB-p1-acksall-none | jetstream | error: client: exit status 1: nats: no responders \| oops |`,
		"| produce-1KiB-p1-acksall-none | throughput ≥ 1.0× kfake | 1.200× | pass |",
		"| produce-1KiB-p1-acksall-none | broker CPU/record ≤ 1.0× kfake | 1.000× | pass |",
		"| e2e-20k-1KiB | e2e p99 ≤ 1 ms | 1.20 ms | **MISS** |",
		"| e2e-20k-1KiB | e2e p99.9 ≤ 3 ms | 2.40 ms | pass |",
		"4 pass, 1 MISS, 1 n/a.",
		"| metrics-scrape-1KiB | – | unavailable: GET /metrics: connection refused |",
		"Unavailable: GET /metrics: connection refused.",
		"| sendfile of a page-cached file to a loopback socket | 2,500 MB/s |",
		"| 4 KiB writes, fdatasync after each | 3,000 syncs/s (12.3 MB/s) |",
		"![throughput and latency](latest.svg)",
		"bin/sluice broker --set 'log.dirs=/tmp/a b'",
		"# e2e-20k-1KiB, kfake\nbin/sluice perf e2e --rate 20000\n",
		"- e2e-20k-1KiB round 1 kfake: kfake had died (signal: killed), restarted",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "/repo/") {
		t.Error("report shows the repository's absolute path")
	}
	if t.Failed() {
		t.Log(md)
	}
}

func TestReportJSONHasNoNaN(t *testing.T) {
	b, err := encodeJSON(fixedReport())
	if err != nil {
		t.Fatal(err) // encoding/json refuses NaN: the failed lane's medians must become null
	}
	var back struct {
		Summaries []map[string]any `json:"summaries"`
		Runs      []runRecord      `json:"runs"`
		Limits    limits           `json:"limits"`
	}
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	js := back.Summaries[2]
	if js["workload"] != "produce-1KiB-p1-acksall-none" || js["peer"] != kindJS || js["records_per_sec"] != nil {
		t.Errorf("failed lane in JSON = %v, want records_per_sec null", js)
	}
	if len(back.Runs) != 5 || back.Runs[0].Result.RecordsPerSec != 300000 || back.Runs[4].Notes[0] == "" {
		t.Errorf("raw runs did not round-trip: %+v", back.Runs)
	}
	if back.Limits.SendfileMBs != 2500 {
		t.Errorf("limits did not round-trip: %+v", back.Limits)
	}
	// 6 single-line fields, 6 lists with their brackets, braces, one line
	// per item: 5 runs, 7 summaries, 3 workloads, 6 targets, 1 peer, 1 command.
	if lines, want := bytes.Count(b, []byte("\n")), 6+2*6+2+5+7+3+6+1+1; lines != want {
		t.Errorf("%d lines of JSON, want %d (one per item)", lines, want)
	}
}

func TestScrapeSection(t *testing.T) {
	r := fixedReport()
	delete(r.Unavailable, "metrics-scrape-1KiB")
	for i, rps := range [][2]float64{{100, 90}, {100, 101}, {200, 198}} {
		for j, lane := range []string{kindUring, labelScrape} {
			r.Runs = append(r.Runs, runRecord{Workload: "metrics-scrape-1KiB", Lane: lane, Round: i + 1, Scrapes: 2 * j,
				Result: &clientResult{Records: 1, Seconds: 1, RecordsPerSec: rps[j]}})
		}
	}
	r.Summaries["metrics-scrape-1KiB"] = summarize(r.Workloads[2], r.Runs)
	mustContain(t, r.markdown(""),
		"median of the per-round ratios = **0.990×** (ratio of the medians: 1.01×; 6 scrapes answered, 0 failed)",
		"Per round: 0.90, 1.01, 0.99. Rounds disagree by 11%",
		"| metrics-scrape-1KiB | sluice-uring | 100 | 100% |",
	)
}

func TestSVGIsWellFormed(t *testing.T) {
	svg := svgPlot(fixedReport())
	dec := xml.NewDecoder(bytes.NewReader(svg))
	var rects, polylines, texts int
	var root string
	for {
		tok, err := dec.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("SVG is not well-formed XML: %v\n%s", err, svg)
		}
		if se, ok := tok.(xml.StartElement); ok {
			if root == "" {
				root = se.Name.Local
			}
			switch se.Name.Local {
			case "rect":
				rects++
			case "polyline":
				polylines++
			case "text":
				texts++
			}
		}
	}
	if root != "svg" {
		t.Fatalf("root element %q", root)
	}
	// Two bars for the produce workload (JetStream failed), none for e2e;
	// one CDF line per e2e lane.
	if polylines != 2 {
		t.Errorf("%d CDF lines, want 2", polylines)
	}
	if !bytes.Contains(svg, []byte(">error</text>")) {
		t.Error("failed lane not marked in the plot")
	}
	if rects < 3 || texts < 10 {
		t.Errorf("suspiciously empty plot: %d rects, %d texts", rects, texts)
	}
}

func TestNinesAxis(t *testing.T) {
	for p, want := range map[float64]float64{50: math.Log10(2), 90: 1, 99: 2, 99.9: 3, 100: 4.5} {
		if got := nines(p); math.Abs(got-want) > 1e-9 {
			t.Errorf("nines(%v) = %v, want %v", p, got, want)
		}
	}
}

func TestFormatting(t *testing.T) {
	for in, want := range map[float64]string{0: "0", 999: "999", 1000: "1,000", 1234567.4: "1,234,567", -4500: "-4,500"} {
		if got := fmtInt(in); got != want {
			t.Errorf("fmtInt(%v) = %q, want %q", in, got, want)
		}
	}
	if got := fmtNum(math.NaN(), 2); got != "–" {
		t.Errorf("fmtNum(NaN) = %q", got)
	}
	if got := shellJoin([]string{"a", "b c", "it's"}); got != `a 'b c' 'it'\''s'` {
		t.Errorf("shellJoin = %q", got)
	}
}

// --render rebuilds the same report from latest.json alone.
func TestRerenderFromJSON(t *testing.T) {
	orig := fixedReport()
	js, err := encodeJSON(orig)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	in := filepath.Join(dir, "in.json")
	if err := os.WriteFile(in, js, 0o644); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "out")
	var stdout, stderr bytes.Buffer
	if code := rerender(in, out, "/repo", &stdout, &stderr); code != 0 {
		t.Fatalf("rerender exit %d: %s", code, stderr.String())
	}
	got, err := os.ReadFile(filepath.Join(out, "latest.md"))
	if err != nil {
		t.Fatal(err)
	}
	if want := orig.markdown("latest.svg"); string(got) != want {
		t.Errorf("re-rendered report differs:\n%s\n--- want ---\n%s", got, want)
	}
	again, err := os.ReadFile(filepath.Join(out, "latest.json"))
	if err != nil || !bytes.Equal(again, js) {
		t.Errorf("re-encoded JSON differs (err %v)", err)
	}
}
