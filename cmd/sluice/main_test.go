package main

import (
	"bytes"
	"net"
	"os"
	"path/filepath"
	"runtime"
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
		{[]string{"broker", "--engine", "epoll"}, `--engine "epoll": netio.engine`},
		{[]string{"broker", "--jsn"}, "unknown flag --jsn"},
		{[]string{"engines", "--bogus"}, "--bogus"},
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
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"help"}, "commands:"},
		{[]string{"--help"}, "commands:"},
		{[]string{"help", "produce"}, "usage: sluice produce"},
		{[]string{"help", "broker"}, "usage: sluice broker"},
		{[]string{"broker", "--help"}, "usage: sluice broker"},
		{[]string{"broker", "-h"}, "--log-format FORMAT"},
		{[]string{"engines", "--help"}, "usage: sluice engines"},
		{[]string{"version", "--help"}, "usage: sluice version"},
		{[]string{"topic", "--help"}, "usage: sluice topic"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(tc.args, &stdout, &stderr); code != 0 || !strings.Contains(stdout.String(), tc.want) || stderr.Len() > 0 {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want 0 and %q on stdout", tc.args, code, stdout.String(), stderr.String(), tc.want)
		}
	}
	var stdout, stderr bytes.Buffer
	if code := run(nil, &stdout, &stderr); code != 2 {
		t.Fatalf("no command: exit %d", code)
	}
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"version", "--version"} {
		var stdout, stderr bytes.Buffer
		if code := run([]string{arg}, &stdout, &stderr); code != 0 {
			t.Fatalf("%s: exit %d: %s", arg, code, stderr.String())
		}
		out := stdout.String()
		for _, want := range []string{"sluice ", "commit: ", "go: " + runtime.Version(), "engines:", "  std: available"} {
			if !strings.Contains(out, want) {
				t.Errorf("%s: %q does not contain %q", arg, out, want)
			}
		}
	}
}

// A port already taken fails the start with a message that names the
// setting that chose it and the flag that changes it.
func TestBindErrorsNameTheSetting(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	addr := taken.Addr().String()
	for _, tc := range []struct {
		sets []string
		want []string
	}{
		{[]string{"admin.listener=" + addr}, []string{"address already in use", "admin.listener=" + addr + " (from --set)", "--set admin.listener= (empty) turns it off"}},
		{[]string{"admin.listener=", "listeners=PLAINTEXT://" + addr}, []string{"address already in use", "listeners=PLAINTEXT://" + addr, "--set listeners=PLAINTEXT://HOST:PORT"}},
	} {
		args := []string{"broker", "--set", "log.dirs=" + t.TempDir()}
		for _, s := range tc.sets {
			args = append(args, "--set", s)
		}
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != 1 {
			t.Errorf("%v: exit %d, want 1; stderr %s", tc.sets, code, stderr.String())
		}
		for _, w := range tc.want {
			if !strings.Contains(stderr.String(), w) {
				t.Errorf("%v: stderr does not contain %q:\n%s", tc.sets, w, stderr.String())
			}
		}
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

// Kafka tuning keys with no meaning here are accepted and named in one
// warning (the start then fails on the taken admin port, which ends the
// test quickly).
func TestIgnoredKafkaKeysWarnOnce(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	dir := t.TempDir()
	props := filepath.Join(dir, "server.properties")
	if err := os.WriteFile(props, []byte("num.io.threads=8\nnum.network.threads=3\nsocket.send.buffer.bytes=102400\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	run([]string{"broker", "--config", props, "--set", "log.dirs=" + dir + "/data", "--set", "admin.listener=" + taken.Addr().String()}, &stdout, &stderr)
	log := stderr.String()
	if n := strings.Count(log, "level=WARN"); n != 1 || !strings.Contains(log, "num.io.threads,num.network.threads,socket.send.buffer.bytes") {
		t.Errorf("want one WARN naming the three keys, got %d:\n%s", n, log)
	}
}
