package itest

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// cliRecord is one line of `sluice consume --json`.
type cliRecord struct {
	Topic     string  `json:"topic"`
	Partition int32   `json:"partition"`
	Offset    int64   `json:"offset"`
	Timestamp int64   `json:"timestamp"`
	Key       *string `json:"key"`
	Value     *string `json:"value"`
	Headers   []struct {
		Key   string  `json:"key"`
		Value *string `json:"value"`
	} `json:"headers"`
}

// TestCLIProduceConsumeAgainstSluice: lines produced from a file with keys
// and headers by `sluice produce` come back exactly from `sluice consume`,
// through the format string and as JSON, from a real broker.
func TestCLIProduceConsumeAgainstSluice(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	run := func(wantExit int, args ...string) (string, string) {
		t.Helper()
		return runCLI(t, b.Addr(), wantExit, args...)
	}
	run(0, "topic", "create", "cli-data", "--partitions", "2")

	var lines []string
	for i := range 20 {
		if i%5 == 4 {
			lines = append(lines, fmt.Sprintf("no separator %d", i)) // null key
		} else {
			lines = append(lines, fmt.Sprintf("key-%d|value %d|with bar", i, i))
		}
	}
	file := filepath.Join(t.TempDir(), "records.txt")
	if err := os.WriteFile(file, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now().UnixMilli()
	_, stderr := run(0, "produce", "cli-data", "--file", file, "--key-separator", "|",
		"--header", "source=itest", "--header", "n=1", "--partition", "1", "--compression", "lz4")
	if stderr != "produced 20 records to \"cli-data\"\n" {
		t.Fatalf("produce stderr %q", stderr)
	}

	var want strings.Builder
	for i := range 20 {
		if i%5 == 4 {
			v := fmt.Sprintf("no separator %d", i)
			fmt.Fprintf(&want, "1|%d||%s|source=itest,n=1|-1|%d\n", i, v, len(v))
		} else {
			k, v := fmt.Sprintf("key-%d", i), fmt.Sprintf("value %d|with bar", i)
			fmt.Fprintf(&want, "1|%d|%s|%s|source=itest,n=1|%d|%d\n", i, k, v, len(k), len(v))
		}
	}
	out, stderr := run(0, "consume", "cli-data", "--partition", "1", "--exit-at-end", "--format", `%p|%o|%k|%s|%h|%K|%S\n`)
	if out != want.String() || stderr != "" {
		t.Fatalf("consume --format:\n%s\nwant:\n%s\nstderr %q", out, want.String(), stderr)
	}

	out, _ = run(0, "consume", "cli-data", "-e", "--json")
	got := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
	if len(got) != 20 {
		t.Fatalf("consume --json printed %d lines, want 20:\n%s", len(got), out)
	}
	for i, line := range got {
		var r cliRecord
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %d: %v: %s", i, err, line)
		}
		wantKey, wantValue, _ := strings.Cut(lines[i], "|")
		if i%5 == 4 {
			wantValue = lines[i]
		}
		if r.Topic != "cli-data" || r.Partition != 1 || r.Offset != int64(i) || r.Value == nil || *r.Value != wantValue ||
			(i%5 == 4) != (r.Key == nil) || (r.Key != nil && *r.Key != wantKey) ||
			r.Timestamp < start-1000 || r.Timestamp > time.Now().UnixMilli()+1000 ||
			len(r.Headers) != 2 || r.Headers[0].Key != "source" || *r.Headers[0].Value != "itest" || r.Headers[1].Key != "n" || *r.Headers[1].Value != "1" {
			t.Errorf("line %d: %s", i, line)
		}
	}

	// Keyed lines through the default partitioner: one key, one partition.
	keyed := filepath.Join(t.TempDir(), "keyed.txt")
	if err := os.WriteFile(keyed, []byte("a=1\nb=1\na=2\nb=2\na=3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(0, "produce", "cli-data", "--file", keyed, "--key-separator", "=", "--acks", "1")
	out, _ = run(0, "consume", "cli-data", "-e", "--from", "-5", "--format", `%k %p %s\n`)
	parts := map[string]string{}
	values := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue // the older records of partition 1 (-5 is per partition)
		}
		if p, ok := parts[f[0]]; ok && p != f[1] {
			t.Errorf("key %s on partitions %s and %s", f[0], p, f[1])
		}
		parts[f[0]] = f[1]
		values[f[0]] += f[2]
	}
	if values["a"] != "123" || values["b"] != "12" {
		t.Errorf("keyed records read back as %v (per key, in order), want a:123 b:12:\n%s", values, out)
	}
}
