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
