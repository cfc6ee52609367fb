package perf

import (
	"bytes"
	"encoding/json"
	"math"
	"slices"
	"strings"
	"testing"
	"time"
)

func keysOf(t *testing.T, raw json.RawMessage) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	var keys []string
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// checkJSONShape pins the field names a harness reads, written out here
// independently of the struct tags.
func checkJSONShape(t *testing.T, line []byte, mode string) {
	t.Helper()
	top := []string{"brokers", "bytes", "config", "errors", "first_error", "mb_per_sec", "mode",
		"records", "records_per_sec", "seconds", "tool", "topic"}
	withLatency := mode == modeProduce || mode == modeE2E
	if withLatency {
		top = append(top, "latency_cdf_ms", "latency_ms")
	}
	if mode == modeRTT {
		top = append(top, "rtt_ms")
	}
	slices.Sort(top)
	if got := keysOf(t, line); !slices.Equal(got, top) {
		t.Fatalf("top-level keys %v, want %v", got, top)
	}
	var parts map[string]json.RawMessage
	if err := json.Unmarshal(line, &parts); err != nil {
		t.Fatal(err)
	}
	config := []string{"acks", "batch_bytes", "clients", "compressibility", "compression", "idempotent",
		"keys", "linger_ms", "max_inflight", "partitions", "raw", "rate", "record_size", "topic_config", "warmup_s"}
	slices.Sort(config)
	if got := keysOf(t, parts["config"]); !slices.Equal(got, config) {
		t.Fatalf("config keys %v, want %v", got, config)
	}
	if mode == modeRTT {
		var kinds map[string]json.RawMessage
		if err := json.Unmarshal(parts["rtt_ms"], &kinds); err != nil || len(kinds) == 0 {
			t.Fatalf("rtt_ms %s: %v", parts["rtt_ms"], err)
		}
		want := []string{"count", "errors", "max", "mean", "p50", "p99", "p999", "seconds"}
		for kind, l := range kinds {
			if got := keysOf(t, l); !slices.Equal(got, want) {
				t.Fatalf("rtt_ms[%s] keys %v, want %v", kind, got, want)
			}
		}
	}
	if withLatency {
		lat := []string{"count", "max", "mean", "p50", "p99", "p999"}
		if got := keysOf(t, parts["latency_ms"]); !slices.Equal(got, lat) {
			t.Fatalf("latency_ms keys %v, want %v", got, lat)
		}
		var cdf [][]float64
		if err := json.Unmarshal(parts["latency_cdf_ms"], &cdf); err != nil {
			t.Fatalf("latency_cdf_ms: %v", err)
		}
		for _, pt := range cdf {
			if len(pt) != 2 {
				t.Fatalf("CDF point %v is not [percentile, ms]", pt)
			}
		}
	}
}

func testOptions(t *testing.T, mode string, args ...string) *options {
	t.Helper()
	o, err := parseOptions(mode, append([]string{"--brokers", "127.0.0.1:1", "--topic", "t"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

func TestResultJSON(t *testing.T) {
	o := testOptions(t, modeProduce, "--records", "123", "--warmup", "1500ms", "--linger", "2500us")
	h := newHist()
	for i := 1; i <= 123; i++ {
		h.Record(time.Duration(i) * 100 * time.Microsecond)
	}
	r := newResult(o, outcome{partitions: 3, records: 123, bytes: 125952, seconds: 1.5, lat: h, firstErr: "x"})
	var buf bytes.Buffer
	if err := writeJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	out := buf.Bytes()
	if bytes.Count(out, []byte("\n")) != 1 || out[len(out)-1] != '\n' {
		t.Fatalf("not exactly one line: %q", out)
	}
	checkJSONShape(t, out, modeProduce)

	var back Result
	if err := json.Unmarshal(out, &back); err != nil {
		t.Fatal(err)
	}
	if back.Tool != "sluice perf" || back.Mode != "produce" || back.Topic != "t" || !slices.Equal(back.Brokers, []string{"127.0.0.1:1"}) {
		t.Fatalf("identity fields: %+v", back)
	}
	if back.RecordsPerSec != 82 || back.MBPerSec != 0.084 || back.Seconds != 1.5 || back.FirstError != "x" {
		t.Fatalf("rates: %+v", back)
	}
	want := Config{RecordSize: 1024, Partitions: 3, Acks: "all", Compression: "none", Idempotent: true,
		LingerMS: 2.5, BatchBytes: 1 << 20, MaxInflight: 5, Clients: 1, WarmupS: 1.5}
	if back.Config != want {
		t.Fatalf("config %+v, want %+v", back.Config, want)
	}
	if back.Latency == nil || back.Latency.Count != 123 || back.Latency.Max != 12.3 || math.Abs(back.Latency.P50-6.2) > 0.01 {
		t.Fatalf("latency %+v", back.Latency)
	}
	if n := len(back.LatencyCDF); n == 0 || back.LatencyCDF[n-1] != [2]float64{100, 12.3} {
		t.Fatalf("CDF %v does not end at the max", back.LatencyCDF)
	}
}

func TestResultJSONConsumeHasNoLatency(t *testing.T) {
	o := testOptions(t, modeConsume, "--duration", "1s", "--raw")
	r := newResult(o, outcome{partitions: 2, records: 10, bytes: 1000, seconds: 2})
	var buf bytes.Buffer
	if err := writeJSON(&buf, r); err != nil {
		t.Fatal(err)
	}
	checkJSONShape(t, buf.Bytes(), modeConsume)
	if !r.Config.Raw || r.Config.Acks != "" || r.Config.Partitions != 2 || r.RecordsPerSec != 5 {
		t.Fatalf("consume result %+v", r)
	}
}

func TestSummaryNamesEveryFigure(t *testing.T) {
	o := testOptions(t, modeE2E, "--duration", "1s", "--rate", "100")
	h := newHist()
	h.Record(1500 * time.Microsecond)
	var buf bytes.Buffer
	r := newResult(o, outcome{partitions: 1, records: 100, bytes: 102400, seconds: 1, errors: 2, firstErr: "boom", lat: h})
	if err := writeSummary(&buf, r); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"records ", "100\n", "bytes ", "102400", "seconds ", "records/s ", "MB/s ", "0.102",
		"errors ", "2\n", "boom", "p50 1.500", "p99 1.500", "p99.9 1.500", "max 1.500", "100 records/s"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, buf.String())
		}
	}
}

func TestMeterWarmupAndSeconds(t *testing.T) {
	o := testOptions(t, modeProduce, "--records", "2", "--warmup", "1s")
	start := time.Unix(100, 0)
	m := newMeter(start, o, true)
	if measured, ok := m.claim(start.Add(500 * time.Millisecond)); measured || !ok {
		t.Fatalf("claim during warmup: measured=%v ok=%v", measured, ok)
	}
	for i := range 3 {
		measured, ok := m.claim(start.Add(time.Second))
		if !measured || ok != (i < 2) {
			t.Fatalf("claim %d after warmup: measured=%v ok=%v", i, measured, ok)
		}
	}
	if got := m.seconds(start.Add(3 * time.Second)); got != 2 {
		t.Fatalf("seconds with nothing counted = %v, want stop - end of warmup = 2", got)
	}
	m.add(start.Add(1500*time.Millisecond), 1, 10)
	select {
	case <-m.reached:
		t.Fatal("limit reached after 1 of 2 records")
	default:
	}
	m.add(start.Add(1250*time.Millisecond), 1, 10) // a late promise must not move the end back
	<-m.reached
	if got := m.seconds(start.Add(9 * time.Second)); got != 0.5 {
		t.Fatalf("seconds = %v, want 0.5 (end of warmup to the last record)", got)
	}
}

func TestProgressLine(t *testing.T) {
	if got := (status{elapsed: 500 * time.Millisecond, warming: true}).line(); !strings.Contains(got, "warming up") {
		t.Errorf("warmup line %q", got)
	}
	got := status{elapsed: 3 * time.Second, recsPerSec: 1234.5, mbPerSec: 1.2345, p99: 2300 * time.Microsecond}.line()
	for _, want := range []string{"3.0s", "1234.5 records/s", "1.234 MB/s", "p99 2.300 ms"} {
		if !strings.Contains(got, want) {
			t.Errorf("progress line %q lacks %q", got, want)
		}
	}
	if got := (status{elapsed: time.Second, recsPerSec: 5, p99: -1, requests: true}).line(); !strings.HasSuffix(got, " 5.0 requests/s") {
		t.Errorf("rtt line %q", got)
	}
	if got := (status{elapsed: time.Second, p99: -1}).line(); strings.Contains(got, "p99") {
		t.Errorf("consume line shows a latency: %q", got)
	}
	var buf bytes.Buffer
	startProgress(&buf, newMeter(time.Now(), testOptions(t, modeConsume, "--records", "1"), false))()
	if buf.Len() != 0 {
		t.Errorf("progress written to a non-terminal: %q", buf.String())
	}
}
