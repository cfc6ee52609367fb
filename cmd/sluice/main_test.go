package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Bad settings stop the broker before it touches anything, with a message
// that names the setting.
func TestBrokerRejectsBadSettings(t *testing.T) {
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte("log.dirs="+dir+"/data\nlog.segment.bytes=huge\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"broker", "--set", "no.such.setting=1"}, "no.such.setting"},
		{[]string{"broker", "--set", "num.partitions=zero"}, "num.partitions"},
		{[]string{"broker", "--set", "listeners=SSL://127.0.0.1:9093"}, "listeners"},
		{[]string{"broker", "--set", "novalue"}, "novalue"},
		{[]string{"broker", "--config", props}, "log.segment.bytes"},
		{[]string{"broker", "--config", filepath.Join(dir, "missing.properties")}, "missing.properties"},
		{[]string{"broker", "extra-arg"}, "extra-arg"},
		{[]string{"broker", "--engine", "epoll"}, "netio.engine"},
		{[]string{"broker", "--log-format", "xml"}, "log.format"},
		{[]string{"broker", "--set", "admin.listener=nocolon"}, "admin.listener"},
		{[]string{"frobnicate"}, "frobnicate"},
	} {
		var stdout, stderr bytes.Buffer
		code := run(tc.args, &stdout, &stderr)
		if code != 2 {
			t.Errorf("%v: exit %d, want 2", tc.args, code)
		}
		if !strings.Contains(stderr.String(), tc.want) {
			t.Errorf("%v: stderr %q does not name %q", tc.args, stderr.String(), tc.want)
		}
		if strings.Contains(stderr.String(), "goroutine") {
			t.Errorf("%v: stack trace in %q", tc.args, stderr.String())
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "data")); err == nil {
		t.Error("a rejected configuration still created the data directory")
	}
}

func TestHelpAndUsage(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"help"}, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), "broker") {
		t.Fatalf("help: exit %d, %q", code, stdout.String())
	}
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Fatalf("no command: exit %d", code)
	}
}

// Every command main dispatches must be offered by shell completion, whose
// table lives in package cli.
func TestCompletionCoversEveryCommand(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"completion", "bash"}, &stdout, &stderr); code != 0 {
		t.Fatalf("completion bash: exit %d: %s", code, stderr.String())
	}
	script := stdout.String()
	for _, line := range strings.Split(usage, "\n") {
		fields := strings.Fields(line)
		if len(fields) < 2 || !strings.HasPrefix(line, "  ") || strings.HasPrefix(line, "    ") {
			continue
		}
		if !strings.Contains(script, fields[0]) {
			t.Errorf("command %q is missing from the completion script", fields[0])
		}
	}
	if !strings.Contains(script, "e2e") || !strings.Contains(script, "--rate") {
		t.Errorf("perf modes or their flags are missing from the completion script")
	}
}
