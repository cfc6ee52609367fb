package main

import (
	"context"
	"regexp"
	"strings"
	"testing"
)

func TestRegisterConnectorBenchRefusesDuplicates(t *testing.T) {
	saved := connectorBenches
	defer func() { connectorBenches = saved }()
	connectorBenches = nil
	registerConnectorBench(connectorBench{Name: "b"})
	registerConnectorBench(connectorBench{Name: "a"})
	if connectorBenches[0].Name != "a" || connectorBenches[1].Name != "b" {
		t.Fatalf("benches not sorted: %v", connectorBenches)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("a second benchmark named a was accepted")
		}
	}()
	registerConnectorBench(connectorBench{Name: "a"})
}

func TestConnectorBenchesUnknownName(t *testing.T) {
	_, err := runConnectorBenches(context.Background(), options{}, "", t.TempDir(), regexp.MustCompile("^no-such$"), t.Logf)
	if err == nil || !strings.Contains(err.Error(), "matches none") {
		t.Fatalf("err %v, want one saying the regexp matches none", err)
	}
}

func TestConnectorsMarkdown(t *testing.T) {
	r := &connectorsReport{Env: environment{Date: "2026-12-05T00:00:00Z", ShortCommit: "abc"}, Command: "go run ./perf/connectbench --connectors .",
		Rows: []connectorRow{
			{Bench: "filetail", Workload: "200-byte lines", Tool: "sluice connect", Unit: "lines", Count: 1_000_000, Seconds: 2,
				Bytes: 200_000_000, CPU: map[string]float64{"worker": 1.5, "plugin": 0.5}, Target: ">= 100 MB/s", Met: "met"},
			{Bench: "syslog", Workload: "tcp", Err: "rsyslogd\nnot | found"},
		}}
	md := r.markdown()
	for _, want := range []string{
		"| filetail | 200-byte lines | sluice connect | 500,000 lines/s | 100.0 | plugin 0.50, worker 1.50 | >= 100 MB/s | met |",
		"| syslog | tcp | – | – | – | – |  | failed: rsyslogd not / found |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if !r.failed() {
		t.Error("a report with an errored row is not failed")
	}
}

// --workload picks filetail workloads by the description the report
// shows: the default one-file run alone, or every run without --workload.
func TestWorkloadPicksFiletailRuns(t *testing.T) {
	o, err := parseFlags([]string{"--connectors", "filetail", "--workload", `1 file\(s\)$`}, t.TempDir(), &strings.Builder{})
	if err != nil {
		t.Fatal(err)
	}
	env := &connectorEnv{Workload: o.workload}
	var picked []string
	for _, w := range []struct {
		files  int
		header bool
	}{{1, true}, {4, true}, {1, false}} {
		if d := filetailWorkload(w.files, w.header, 1<<30); env.Wants(d) {
			picked = append(picked, d)
		}
	}
	if len(picked) != 1 || picked[0] != "1024 MiB of 200-byte lines, 1 file(s)" {
		t.Errorf("picked %q", picked)
	}
	if !(&connectorEnv{}).Wants(filetailWorkload(1, false, 1<<30)) {
		t.Error("no --workload skipped a workload")
	}
	if _, err := parseFlags([]string{"--workload", "("}, t.TempDir(), &strings.Builder{}); err == nil {
		t.Error("a bad --workload regexp was taken")
	}
}

// --workload picks syslog runs by their description too: the map-values
// run alone, without the other three ways in.
func TestWorkloadPicksSyslogRuns(t *testing.T) {
	env := &connectorEnv{Workload: regexp.MustCompile("map values")}
	r := &syslogRun{workload: "1000000 RFC 5424 messages of 200 bytes, TCP"}
	var picked []string
	for _, mode := range []string{"direct-map", "direct-json", "omfwd", "omkafka"} {
		if tool, w := r.describe(mode); env.Wants(w) {
			picked = append(picked, tool+": "+w)
		}
	}
	if len(picked) != 1 || picked[0] != "sluice connect: 1000000 RFC 5424 messages of 200 bytes, TCP, Go client to the connector, map values + JsonConverter" {
		t.Errorf("picked %q", picked)
	}
	if tool, _ := r.describe("omkafka"); tool != "rsyslog omkafka" {
		t.Errorf("omkafka's tool is %q", tool)
	}
}
