package cli

import (
	"flag"
	"net"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in stderr
	}{
		{nil, "usage: sluice"},
		{[]string{"frobnicate"}, `unknown command "frobnicate"`},
		{[]string{"group"}, "usage: sluice group"},
		{[]string{"group", "frobnicate"}, `unknown group subcommand "frobnicate"`},
		{[]string{"group", "list", "--bogus"}, "bogus"},
		{[]string{"group", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"group", "list", "--type", "fancy"}, `unknown group type "fancy"`},
		{[]string{"group", "list", "--timeout", "soon"}, "timeout"},
		{[]string{"group", "list", "--timeout", "-1s"}, "--timeout must be positive"},
		{[]string{"group", "describe"}, "name at least one GROUP"},
		{[]string{"group", "describe", "g", "--json=maybe"}, "json"},
		{[]string{"group", "describe", "g", "--brokers", " , "}, "no broker addresses"},
		{[]string{"group", "describe", "g", "--brokers", "http://x:1"}, "not a host:port"},
		{[]string{"group", "list", "--brokers", "localhost:notaport"}, "invalid brokers"},
	} {
		r := runCLI(tc.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want 2", tc.args, r.code)
		}
		if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage:") {
			t.Errorf("%q: stderr %q lacks %q and usage", tc.args, r.stderr, tc.want)
		}
		if r.stdout != "" {
			t.Errorf("%q: stdout %q, want nothing", tc.args, r.stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{
		{"help"}, {"--help"}, {"group", "--help"}, {"group", "help"},
		{"group", "list", "--help"}, {"group", "describe", "-h"}, {"group", "describe", "g", "-help"},
	} {
		r := runCLI(args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: sluice") || r.stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, r.code, r.stdout, r.stderr)
		}
	}
	if r := runCLI("group", "list", "--help"); !strings.Contains(r.stdout, "--state") || !strings.Contains(r.stdout, "--brokers") {
		t.Errorf("list help lacks its flags:\n%s", r.stdout)
	}
}

// checkRuntimeFailure asserts the shape every runtime error must have:
// exit 1, nothing on stdout, exactly one line on stderr naming want, and
// nothing that looks like a crash.
func checkRuntimeFailure(t *testing.T, r result, want string) {
	t.Helper()
	if r.code != exitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	if r.stdout != "" {
		t.Errorf("stdout %q, want nothing", r.stdout)
	}
	if strings.Count(r.stderr, "\n") != 1 || !strings.HasPrefix(r.stderr, "sluice: ") || !strings.Contains(r.stderr, want) {
		t.Errorf("stderr %q, want one line with %q", r.stderr, want)
	}
	for _, bad := range []string{"goroutine", "panic"} {
		if strings.Contains(r.stderr, bad) {
			t.Errorf("stderr contains %q: %s", bad, r.stderr)
		}
	}
}

func TestUnreachableBroker(t *testing.T) {
	for _, args := range [][]string{
		{"group", "list", "--brokers", "127.0.0.1:1"},
		{"group", "list", "--json", "--brokers", "127.0.0.1:1"},
		{"group", "describe", "g", "--brokers", "127.0.0.1:1"},
		{"group", "describe", "g", "h", "--json", "--brokers", "127.0.0.1:1"},
	} {
		start := time.Now()
		r := runCLI(args...)
		checkRuntimeFailure(t, r, "cannot reach brokers 127.0.0.1:1: ")
		if !strings.Contains(r.stderr, "dial tcp") {
			t.Errorf("%q: stderr %q does not say the dial failed", args, r.stderr)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%q: took %s to fail on a refused connection", args, d)
		}
	}
}

// A broker that accepts connections but never answers must not hang the
// command past --timeout.
func TestSilentBrokerTimesOut(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})

	start := time.Now()
	r := runCLI("group", "describe", "g", "--brokers", ln.Addr().String(), "--timeout", "300ms")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("took %s with --timeout 300ms", d)
	}
	checkRuntimeFailure(t, r, "no answer within 300ms")
	if !strings.Contains(r.stderr, "cannot reach brokers "+ln.Addr().String()) {
		t.Errorf("stderr %q does not name the broker", r.stderr)
	}
}

func TestBrokersFromEnvironment(t *testing.T) {
	_, brokers := testCluster(t)

	t.Setenv(brokersEnv, brokers)
	if r := runCLI("group", "list"); r.code != 0 || !strings.HasPrefix(r.stdout, "GROUP") {
		t.Errorf("list via $%s: exit %d, stdout %q, stderr %q", brokersEnv, r.code, r.stdout, r.stderr)
	}

	// The flag wins over the environment.
	t.Setenv(brokersEnv, "127.0.0.1:1")
	if r := runCLI("group", "list", "--brokers", brokers); r.code != 0 {
		t.Errorf("--brokers did not override $%s: exit %d, stderr %q", brokersEnv, r.code, r.stderr)
	}
	checkRuntimeFailure(t, runCLI("group", "list"), "cannot reach brokers 127.0.0.1:1")
}

func TestResolveBrokers(t *testing.T) {
	t.Setenv(brokersEnv, "")
	for _, tc := range []struct {
		flag, env string
		want      []string
	}{
		{"", "", []string{"127.0.0.1:9092"}},
		{"", "a:1, b:2", []string{"a:1", "b:2"}},
		{"c:3,", "a:1", []string{"c:3"}},
		{"[::1]:9092", "", []string{"[::1]:9092"}},
	} {
		t.Setenv(brokersEnv, tc.env)
		got, err := resolveBrokers(tc.flag)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("flag %q env %q: %v, %v; want %v", tc.flag, tc.env, got, err, tc.want)
		}
	}
}

func TestParseArgsInterspersed(t *testing.T) {
	fs, cf := newFlagSet("t")
	var states listFlag
	fs.Var(&states, "state", "")
	pos, err := parseArgs(fs, []string{"a", "--json", "b", "--state", "x,y", "--timeout=3s", "--", "--c", "-d"})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(pos, []string{"a", "b", "--c", "-d"}) || !cf.json || cf.timeout != 3*time.Second ||
		!slices.Equal(states, listFlag{"x", "y"}) {
		t.Errorf("positional %q json %v timeout %s states %q", pos, cf.json, cf.timeout, states)
	}
	if _, err := parseArgs(fs, []string{"--nope"}); err == nil || err == flag.ErrHelp {
		t.Errorf("unknown flag: err %v", err)
	}
}
