package main

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestSummarizeNearestRank(t *testing.T) {
	var ds []time.Duration
	for i := 20; i >= 1; i-- { // unsorted on purpose
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	d := summarize(ds)
	if d.N != 20 || d.P50 != 10*time.Millisecond || d.P99 != 20*time.Millisecond || d.Max != 20*time.Millisecond {
		t.Fatalf("summarize(1..20 ms) = %+v; want n 20, p50 10ms, p99 = max = 20ms", d)
	}
	if ds[0] != 20*time.Millisecond {
		t.Fatalf("summarize sorted its argument in place: %v", ds[:3])
	}
	var many []time.Duration
	for i := 1; i <= 200; i++ {
		many = append(many, time.Duration(i))
	}
	if d := summarize(many); d.P99 != 198 || d.P50 != 100 {
		t.Fatalf("summarize(1..200) = %+v; want p50 100, p99 198", d)
	}
	if d := summarize(nil); d != (dist{}) {
		t.Fatalf("summarize(nil) = %+v; want zero", d)
	}
}

func TestParseFlagsQuickKeepsExplicitValues(t *testing.T) {
	o, err := parseFlags([]string{"--quick", "--kills", "7"}, "/repo", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.kills != 7 || o.partitions != 1000 || o.window != 5*time.Second || o.latencyCalls != 30 {
		t.Fatalf("--quick --kills 7: kills %d partitions %d window %v latency calls %d; want 7, 1000, 5s, 30", o.kills, o.partitions, o.window, o.latencyCalls)
	}
	o, err = parseFlags(nil, "/repo", io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if o.kills != 20 || o.partitions != 10_000 || o.sluice != "/repo/bin/sluice" || len(o.phases) != len(allPhases) {
		t.Fatalf("defaults: %+v; want 20 kills, 10,000 partitions, /repo/bin/sluice, every phase", o)
	}
	if _, err := parseFlags([]string{"--phases", "failover,nope"}, "/repo", io.Discard); err == nil {
		t.Fatal("--phases failover,nope accepted")
	}
	if _, err := parseFlags([]string{"--rf", "4"}, "/repo", io.Discard); err == nil {
		t.Fatal("--rf 4 accepted with three brokers")
	}
}

func TestListenLine(t *testing.T) {
	for line, want := range map[string]bool{
		`time=2026-12-05T08:14:13.360Z level=INFO msg="broker listening" listener=PLAINTEXT addr=127.0.0.1:45087`:      true,
		`time=2026-12-05T08:14:09.111Z level=INFO msg="controller listening" listener=CONTROLLER addr=127.0.0.1:37725`: true,
		`time=2026-12-05T08:14:09.111Z level=INFO msg="connect worker listening" urls=[http://x]`:                      false,
		`time=2026-12-05T08:14:09.111Z level=INFO msg="topic created" topic="broker listening"`:                        false,
	} {
		if got := listenLine(line); got != want {
			t.Errorf("listenLine(%q) = %v; want %v", line, got, want)
		}
	}
}

const sampleLog = `=== controller-3 start 2026-12-05T08:14:03.677331968Z
time=2026-12-05T08:14:07.509Z level=INFO msg="controller quorum voters settled" role=controller
time=2026-12-05T08:15:16.481Z level=WARN msg="broker fenced: no heartbeat within broker.session.timeout.ms; its leaderships move to other in-sync replicas" broker_id=5 session_timeout_ms=3000
time=2026-12-05T08:15:16.566Z level=WARN msg="broker fenced: no heartbeat within broker.session.timeout.ms; its leaderships move to other in-sync replicas" broker_id=6 session_timeout_ms=3000
time=2026-12-05T08:15:20.000Z level=INFO msg="fenced by the leader: waiting for metadata with a newer leader epoch" topic=a partition=1
time=2026-12-05T08:15:22.483Z level=WARN msg="broker fenced: no heartbeat within broker.session.timeout.ms; its leaderships move to other in-sync replicas" broker_id=5 session_timeout_ms=3000
time=2026-12-05T08:15:23.000Z level=ERROR msg="opening the replicas the metadata assigns to this node" topic=big-0000 err="partition closed"
`

func TestFencedInCountsPerBrokerSince(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.log")
	if err := os.WriteFile(path, []byte(sampleLog), 0o644); err != nil {
		t.Fatal(err)
	}
	all := fencedIn([]string{path, filepath.Join(dir, "missing.log")}, time.Time{})
	if all[5] != 2 || all[6] != 1 || len(all) != 2 {
		t.Fatalf("fencedIn since the start = %v; want broker 5 twice, broker 6 once", all)
	}
	since, _ := time.Parse(time.RFC3339, "2026-12-05T08:15:17Z")
	later := fencedIn([]string{path}, since)
	if later[5] != 1 || later[6] != 0 {
		t.Fatalf("fencedIn since 08:15:17 = %v; want only broker 5's second fencing", later)
	}
}

func TestImportantTailKeepsWarningsAndStarts(t *testing.T) {
	got := importantTail(strings.NewReader(sampleLog), 3)
	if len(got) != 3 || !strings.Contains(got[0], "broker_id=6") || !strings.Contains(got[2], "level=ERROR") {
		t.Fatalf("importantTail(3) = %q; want the last three WARN/ERROR lines", got)
	}
	got = importantTail(strings.NewReader(sampleLog), 100)
	if len(got) != 5 || !strings.HasPrefix(got[0], "=== ") {
		t.Fatalf("importantTail(100) = %d lines starting %q; want the start marker and 4 warnings/errors", len(got), got[0])
	}
	for _, l := range got {
		if strings.Contains(l, "level=INFO") {
			t.Fatalf("importantTail kept an info line: %q", l)
		}
	}
}

func sampleReport() *report {
	o, _ := parseFlags([]string{"--kills", "2"}, "/repo", io.Discard)
	lat := latencyResult{Calls: 10, Dist: dist{N: 10, P50: 12 * time.Millisecond, P99: 40 * time.Millisecond, Max: 40 * time.Millisecond}}
	fo := failoverOpts{kills: 2, retryEvery: 20 * time.Millisecond, reqTimeout: 500 * time.Millisecond, settle: 2 * time.Second, replicas: 3, pollInterval: 20 * time.Millisecond}
	tp := throughputResult{Clients: 4, PartsPerTopic: 50, RF: 3, Wall: 10 * time.Second, Calls: 100, Partitions: 5000, Records: 5100}
	setup := setupResult{Partitions: 10_000, Topics: 100, RF: 3, Create: 30 * time.Second, HW: 10_200}
	return &report{Opts: o, Command: "go run ./perf/quorumbench --kills 2", Latency: &lat, Failover: &fo,
		Kills: []killResult{
			{Index: 1, Killed: 1, Epoch: 1, NewLeader: 2, NewEpoch: 2, Leader: 2100 * time.Millisecond, AllLeader: 2200 * time.Millisecond, Create: 2300 * time.Millisecond, Attempts: 4, Failures: "timeout×3"},
			{Index: 2, Killed: 2, Epoch: 2, NewLeader: 3, NewEpoch: 3, Leader: 1900 * time.Millisecond, AllLeader: 1950 * time.Millisecond, Create: 2500 * time.Millisecond, Attempts: 5, Fencings: 1},
		},
		Throughput: &tp, Setup: &setup,
		Restarts: []restartResult{{Mode: "kill -9", Broker: 5, Listening: 1500 * time.Millisecond, Unfenced: 2 * time.Second, CaughtUp: 1800 * time.Millisecond, Ready: 2 * time.Second, AllParts: 1600 * time.Millisecond, FullISR: 12 * time.Second}}}
}

func TestReportMarkdown(t *testing.T) {
	md := string(sampleReport().markdown())
	for _, want := range []string{
		"go run ./perf/quorumbench --kills 2",
		"| (a) a broker's DescribeQuorum names the new leader | 2 | 1900 ms | 2100 ms | 2100 ms |",
		"| (b) the first successful CreateTopics | 2 | 2300 ms | 2500 ms | 2500 ms |",
		"| 1 | 1 (1) | 2 (2) | 2100 ms | 2200 ms | 2300 ms | 4 | timeout×3 |",
		"| 10 | 0 | 12 ms | 40 ms | 40 ms |",
		"| 10.0 s | 100 | 0 | 5000 | 5100 | 51.0 | **510** | 10.0 | 500 |",
		"| 5 | kill -9 | - | 0 | 1500 ms | 2000 ms | 1800 ms | **2000 ms** | 1600 ms | 12.0 s | 0 |",
		"(1 over all kills)",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if strings.Contains(md, "The run failed") {
		t.Error("a report without an error says the run failed")
	}
	r := sampleReport()
	r.Err = errors.New("controller failover: kill 3: not done\nlog lines")
	md = string(r.markdown())
	if !strings.Contains(md, "**The run failed:** controller failover: kill 3: not done\n") || !strings.Contains(md, "log lines") {
		t.Errorf("a failed run's report does not say so with the error in full:\n%s", md[:min(len(md), 800)])
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{0: "-", 2500 * time.Microsecond: "2.5 ms", 1234567 * time.Microsecond: "1235 ms", 12340 * time.Millisecond: "12.3 s"} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q; want %q", d, got, want)
		}
	}
}

// A whole quick run against a real binary, when QUORUMBENCH_SLUICE names
// one (it takes minutes): it succeeds, writes its report and leaves no
// process behind.
func TestQuickRunLeavesNothing(t *testing.T) {
	bin := os.Getenv("QUORUMBENCH_SLUICE")
	if bin == "" {
		t.Skip("QUORUMBENCH_SLUICE is not set")
	}
	out := t.TempDir()
	var stderr strings.Builder
	code := run([]string{"--sluice", bin, "--out", out, "--quick", "--kills", "1", "--latency-calls", "5",
		"--window", "2s", "--partitions", "150"}, io.Discard, &stderr)
	if code != 0 {
		t.Fatalf("run exited %d:\n%s", code, stderr.String())
	}
	md, err := os.ReadFile(filepath.Join(out, "quorum.md"))
	if err != nil || !strings.Contains(string(md), "1 of 1 kills done") || !strings.Contains(string(md), "| kill -9 |") {
		t.Fatalf("report (%v):\n%s", err, md)
	}
	if left := leftovers(t); len(left) > 0 {
		t.Fatalf("processes left behind: %v", left)
	}
}

// leftovers lists the processes whose command line names a quorumbench
// temporary directory.
func leftovers(t *testing.T) []string {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Skip("no /proc")
	}
	var out []string
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), "sluice-quorumbench-") {
			out = append(out, e.Name()+": "+strings.ReplaceAll(string(b), "\x00", " "))
		}
	}
	return out
}
