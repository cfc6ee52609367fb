package perf

import (
	"bytes"
	"maps"
	"strings"
	"testing"
)

func runCLI(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = Run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadCommandLinesExit2(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // in the first stderr line
	}{
		{nil, "usage"},
		{[]string{"bench"}, `unknown mode "bench"`},
		{[]string{"produce", "--records", "10"}, "--topic is required"},
		{[]string{"produce", "--topic", "t"}, "--records N or --duration D"},
		{[]string{"consume", "--topic", "t", "--records", "-1"}, "--records must not be negative"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--nope"}, "flag provided but not defined"},
		{[]string{"produce", "--topic", "t", "--records", "1", "extra"}, `unexpected argument "extra"`},
		{[]string{"produce", "--topic", "t", "--records", "1", "--acks", "2"}, "--acks must be all, 1 or 0"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--compression", "brotli"}, "--compression must be"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--compressibility", "1.5"}, "--compressibility must be between 0 and 1"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--acks", "1", "--idempotent"}, "--idempotent needs --acks all"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--max-inflight", "3"}, "--max-inflight 3 needs --idempotent=false"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--clients", "0"}, "--clients must be at least 1"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--record-size", "4096", "--batch-bytes", "1024"}, "does not fit"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--raw"}, "flag provided but not defined: -raw"},
		{[]string{"consume", "--topic", "t", "--records", "1", "--from", "middle"}, "--from must be earliest or latest"},
		{[]string{"consume", "--topic", "t", "--records", "1", "--acks", "1"}, "flag provided but not defined: -acks"},
		{[]string{"e2e", "--topic", "t", "--duration", "1s"}, "--rate R"},
		{[]string{"e2e", "--topic", "t", "--duration", "1s", "--rate", "10", "--record-size", "4"}, "--record-size must be at least 8"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--brokers", "a b:1"}, "is not a host:port address"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--keys", "-1"}, "--keys must not be negative"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--topic-config", "cleanup.policy"}, "want key=value"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--topic-config", "=compact"}, "want key=value"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--topic-config", "a=1", "--topic-config", "a=2"}, "a given twice"},
		{[]string{"produce", "--topic", "t", "--records", "1", "--topic-config", "a=1", "--create=false"}, "--topic-config applies to a topic the tool creates"},
		{[]string{"e2e", "--topic", "t", "--duration", "1s", "--rate", "10", "--keys", "3"}, "flag provided but not defined: -keys"},
	} {
		code, stdout, stderr := runCLI(tc.args...)
		if code != exitUsage {
			t.Errorf("%q: exit %d, want 2 (stderr %q)", tc.args, code, stderr)
			continue
		}
		if first, _, _ := strings.Cut(stderr, "\n"); !strings.Contains(first, tc.want) {
			t.Errorf("%q: first stderr line %q lacks %q", tc.args, first, tc.want)
		}
		if stdout != "" {
			t.Errorf("%q: wrote %q on stdout", tc.args, stdout)
		}
	}
}

func TestHelp(t *testing.T) {
	for mode, want := range map[string]string{
		"produce": "--compressibility F",
		"consume": "--raw",
		"e2e":     "--rate R",
	} {
		code, stdout, stderr := runCLI(mode, "--help")
		if code != exitOK || stderr != "" || !strings.Contains(stdout, want) || !strings.Contains(stdout, "--brokers") {
			t.Errorf("%s --help: exit %d, stdout %q, stderr %q", mode, code, stdout, stderr)
		}
	}
	if code, stdout, _ := runCLI("--help"); code != exitOK || !strings.Contains(stdout, "produce|consume|e2e") {
		t.Errorf("--help: exit %d, stdout %q", code, stdout)
	}
}

func TestOptionDefaults(t *testing.T) {
	t.Setenv(brokersEnv, "127.0.0.1:1, 127.0.0.1:2")
	o, err := parseOptions(modeProduce, []string{"--topic", "t", "--duration", "1s"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(o.brokers, ",") != "127.0.0.1:1,127.0.0.1:2" {
		t.Errorf("brokers from the environment: %q", o.brokers)
	}
	if !o.idempotent || o.effectiveInflight() != 5 || o.acks != "all" || !o.create || o.partitions != 1 ||
		o.recordSize != 1024 || o.batchBytes != 1<<20 || o.maxBuffered != 100000 || o.clients != 1 {
		t.Errorf("produce defaults: %+v", o)
	}

	o, err = parseOptions(modeProduce, []string{"--topic", "t", "--duration", "1s", "--acks", "1", "--brokers", "127.0.0.1:3"})
	if err != nil {
		t.Fatal(err)
	}
	if o.idempotent || strings.Join(o.brokers, ",") != "127.0.0.1:3" {
		t.Errorf("--acks 1 should turn idempotence off, --brokers beat the environment: %+v", o)
	}
	o, err = parseOptions(modeProduce, []string{"--topic", "t", "--records", "1", "--idempotent=false", "--max-inflight", "2"})
	if err != nil {
		t.Fatal(err)
	}
	if o.idempotent || o.effectiveInflight() != 2 {
		t.Errorf("--idempotent=false --max-inflight 2: %+v", o)
	}
	o, err = parseOptions(modeProduce, []string{"--topic", "t", "--records", "1", "--acks", "-1"})
	if err != nil || o.acks != "all" || !o.idempotent {
		t.Errorf("--acks -1 should mean all: %+v, %v", o, err)
	}
	if o.keys != 0 || o.topicConfigs() != nil {
		t.Errorf("keys and topic configs are off by default: %+v", o)
	}
}

func TestTopicConfigFlags(t *testing.T) {
	o, err := parseOptions(modeProduce, []string{"--topic", "t", "--records", "1", "--keys", "1000",
		"--topic-config", "cleanup.policy=compact", "--topic-config", "min.cleanable.dirty.ratio=0.1",
		"--topic-config", "retention.bytes="})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for k, v := range o.topicConfigs() {
		got[k] = *v
	}
	want := map[string]string{"cleanup.policy": "compact", "min.cleanable.dirty.ratio": "0.1", "retention.bytes": ""}
	if !maps.Equal(got, want) || o.keys != 1000 {
		t.Errorf("topic configs %v, keys %d; want %v and 1000", got, o.keys, want)
	}
	// The report echoes them in the order given.
	if c := configOf(o, 1); c.Keys != 1000 || c.TopicConfig != "cleanup.policy=compact,min.cleanable.dirty.ratio=0.1,retention.bytes=" {
		t.Errorf("config echo: %+v", c)
	}
}
