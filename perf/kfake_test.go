package perf

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
)

// newFake starts an in-process Kafka (kfake) on a loopback port.
func newFake(t *testing.T) string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return strings.Join(c.ListenAddrs(), ",")
}

// runJSON runs a command that must succeed and returns its result.
func runJSON(t *testing.T, args ...string) Result {
	t.Helper()
	code, stdout, stderr := runCLI(append(args, "--json")...)
	if code != exitOK {
		t.Fatalf("%q: exit %d, stderr %q", args, code, stderr)
	}
	if strings.Count(stdout, "\n") != 1 || !strings.HasSuffix(stdout, "\n") {
		t.Fatalf("%q: stdout is not one line: %q", args, stdout)
	}
	checkJSONShape(t, []byte(stdout), args[0])
	var r Result
	if err := json.Unmarshal([]byte(stdout), &r); err != nil {
		t.Fatalf("%q: %v in %q", args, err, stdout)
	}
	return r
}

func checkLatency(t *testing.T, r Result, count int64) {
	t.Helper()
	l := r.Latency
	if l == nil || l.Count != count {
		t.Fatalf("%s: latency %+v, want %d samples", r.Mode, l, count)
	}
	if !(l.P50 > 0 && l.P50 <= l.P99 && l.P99 <= l.P999 && l.P999 <= l.Max && l.Max < 5000) {
		t.Fatalf("%s: implausible latency %+v", r.Mode, l)
	}
	if last := r.LatencyCDF[len(r.LatencyCDF)-1]; last != [2]float64{100, l.Max} {
		t.Fatalf("%s: CDF ends at %v, max is %v", r.Mode, last, l.Max)
	}
}

func TestProduceThenConsumeAgainstKfake(t *testing.T) {
	brokers := newFake(t)
	common := []string{"--brokers", brokers, "--topic", "load"}

	p := runJSON(t, append([]string{"produce", "--records", "2000", "--record-size", "100", "--partitions", "3",
		"--clients", "2"}, common...)...)
	if p.Records != 2000 || p.Bytes != 200000 || p.Errors != 0 || p.FirstError != "" {
		t.Fatalf("produce: %+v", p)
	}
	if p.Seconds <= 0 || p.RecordsPerSec <= 0 || p.MBPerSec <= 0 {
		t.Fatalf("produce rates: %+v", p)
	}
	if p.Config.Partitions != 3 || p.Config.Clients != 2 || !p.Config.Idempotent {
		t.Fatalf("produce config: %+v", p.Config)
	}
	checkLatency(t, p, 2000)

	// Producing again to the existing topic does not fail on its creation.
	again := runJSON(t, append([]string{"produce", "--records", "10", "--record-size", "100", "--acks", "1"}, common...)...)
	if again.Records != 10 || again.Errors != 0 || again.Config.Idempotent || again.Config.Partitions != 3 {
		t.Fatalf("second produce: %+v", again)
	}

	// A bound on the duration keeps a miscount from hanging the test.
	c := runJSON(t, append([]string{"consume", "--records", "2010", "--duration", "20s", "--clients", "2"}, common...)...)
	if c.Records != 2010 || c.Bytes != 201000 || c.Errors != 0 || c.Latency != nil {
		t.Fatalf("consume: %+v", c)
	}

	raw := runJSON(t, append([]string{"consume", "--raw", "--records", "2010", "--duration", "20s", "--clients", "2"}, common...)...)
	if raw.Records != 2010 || raw.Bytes < 201000 || raw.Errors != 0 || !raw.Config.Raw {
		t.Fatalf("raw consume: %+v", raw)
	}

	// From the end there is nothing to read: the run ends at --duration
	// with nothing counted.
	latest := runJSON(t, append([]string{"consume", "--raw", "--from", "latest", "--duration", "300ms"}, common...)...)
	if latest.Records != 0 || latest.Errors != 0 || latest.Seconds < 0.25 {
		t.Fatalf("raw consume from latest: %+v", latest)
	}
}

func TestCompressionShowsInRawBytes(t *testing.T) {
	brokers := newFake(t)
	common := []string{"--brokers", brokers, "--topic", "zipped"}
	p := runJSON(t, append([]string{"produce", "--records", "2000", "--record-size", "1000",
		"--compression", "lz4", "--compressibility", "0.5"}, common...)...)
	if p.Records != 2000 || p.Bytes != 2000000 || p.Errors != 0 || p.Config.Compression != "lz4" {
		t.Fatalf("produce: %+v", p)
	}
	raw := runJSON(t, append([]string{"consume", "--raw", "--records", "2000", "--duration", "20s"}, common...)...)
	if raw.Records != 2000 || raw.Bytes < 850000 || raw.Bytes > 1250000 {
		t.Fatalf("raw consume of half-compressible lz4 batches: %+v, want about 1 MB on the wire", raw)
	}
}

func TestHumanSummaryAgainstKfake(t *testing.T) {
	brokers := newFake(t)
	code, stdout, stderr := runCLI("produce", "--brokers", brokers, "--topic", "human", "--records", "50")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"records", "50", "MB/s", "errors", "latency ms", "p99.9"} {
		if !strings.Contains(stdout, want) {
			t.Fatalf("summary lacks %q:\n%s", want, stdout)
		}
	}
}

func TestE2EAgainstKfake(t *testing.T) {
	brokers := newFake(t)
	r := runJSON(t, "e2e", "--brokers", brokers, "--topic", "e2e", "--rate", "2000", "--duration", "1s",
		"--record-size", "64", "--partitions", "2")
	if r.Records != 2000 || r.Errors != 0 || r.FirstError != "" || r.Bytes != 2000*64 {
		t.Fatalf("e2e: %+v", r)
	}
	// The schedule spans 1 s; the run ends with the last receipt.
	if r.Seconds < 0.99 || r.Seconds > 3 || r.Config.Rate != 2000 {
		t.Fatalf("e2e timing: %+v", r)
	}
	checkLatency(t, r, 2000)
}

func TestE2EWarmupIsExcluded(t *testing.T) {
	brokers := newFake(t)
	r := runJSON(t, "e2e", "--brokers", brokers, "--topic", "warm", "--rate", "1000", "--warmup", "200ms",
		"--records", "300", "--duration", "10s", "--record-size", "16")
	if r.Records != 300 || r.Errors != 0 || r.Config.WarmupS != 0.2 {
		t.Fatalf("e2e with warmup: %+v", r)
	}
	checkLatency(t, r, 300)
}

func TestUnreachableBrokerExits1(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there any more

	for _, mode := range []string{"produce", "consume", "e2e", "rtt"} {
		args := []string{mode, "--brokers", addr, "--topic", "t", "--duration", "1s", "--timeout", "2s", "--json"}
		if mode == "e2e" {
			args = append(args, "--rate", "10")
		}
		begun := time.Now()
		code, stdout, stderr := runCLI(args...)
		if code != exitError {
			t.Errorf("%s: exit %d, want 1 (stderr %q)", mode, code, stderr)
		}
		if stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, addr) {
			t.Errorf("%s: want one stderr line naming %s, got stdout %q stderr %q", mode, addr, stdout, stderr)
		}
		if d := time.Since(begun); d > 5*time.Second {
			t.Errorf("%s: took %v to give up", mode, d)
		}
	}
}

func TestMissingTopicExits1(t *testing.T) {
	brokers := newFake(t)
	for _, extra := range [][]string{nil, {"--raw"}} {
		code, stdout, stderr := runCLI(append([]string{"consume", "--brokers", brokers, "--topic", "absent", "--records", "1"}, extra...)...)
		if code != exitError || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, "absent") {
			t.Errorf("consume %v of a missing topic: exit %d, stdout %q, stderr %q", extra, code, stdout, stderr)
		}
	}
}

// The trace has one line per record with its steps in order, the Produce
// and Fetch round trips, and says where the run began.
func TestE2ETraceAgainstKfake(t *testing.T) {
	brokers := newFake(t)
	path := filepath.Join(t.TempDir(), "trace")
	r := runJSON(t, "e2e", "--brokers", brokers, "--topic", "traced", "--rate", "1000", "--duration", "300ms",
		"--warmup", "100ms", "--record-size", "64", "--trace", path)
	if r.Records != 300 || r.Errors != 0 {
		t.Fatalf("e2e: %+v", r)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	recs, kinds := map[int64]bool{}, map[int16]int{}
	var origin int64
	for line := range strings.Lines(string(data)) {
		f := strings.Fields(line)
		switch f[0] {
		case "o":
			origin, _ = strconv.ParseInt(f[1], 10, 64)
		case "r":
			i, _ := strconv.ParseInt(f[1], 10, 64)
			var at [4]float64
			for k := range at {
				at[k], _ = strconv.ParseFloat(f[2+k], 64)
			}
			// due <= sent <= received, and acknowledged after sent
			if !(at[0] > 0 && at[0] <= at[1] && at[1] <= at[3] && at[1] <= at[2]) {
				t.Errorf("record %d out of order: %q", i, line)
			}
			recs[i] = true
		case "q":
			k, _ := strconv.ParseInt(f[1], 10, 16)
			kinds[int16(k)]++
		case "g":
		default:
			t.Errorf("unknown line %q", line)
		}
	}
	if len(recs) != 400 { // warmup records are traced too
		t.Errorf("%d records traced, want 400", len(recs))
	}
	if kinds[0] == 0 || kinds[1] == 0 {
		t.Errorf("round trips by request key %v, want Produce (0) and Fetch (1)", kinds)
	}
	if since := time.Since(time.UnixMicro(origin)); since < 0 || since > time.Minute {
		t.Errorf("origin %d is %v ago", origin, since)
	}
}
