package main

import (
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseProcStat(t *testing.T) {
	// A command name with a space and a ')' in it; ppid 4321; utime 150,
	// stime 50, cutime 30, cstime 20 ticks.
	line := "1234 (gen source) x) S 4321 1234 1234 0 -1 4194560 100 0 0 0 150 50 30 20 20 0 12 0 555 1000000 200 18446744073709551615\n"
	st, err := parseProcStat([]byte(line))
	if err != nil {
		t.Fatal(err)
	}
	if st.PPid != 4321 {
		t.Errorf("ppid = %d, want 4321", st.PPid)
	}
	if want := 2.5; math.Abs(st.CPU-want) > 1e-9 {
		t.Errorf("cpu = %v s, want %v (utime+stime+cutime+cstime)", st.CPU, want)
	}
	for _, bad := range []string{"1234 no parens S 1", "1 (x) S 2 3", "1 (x) S 2 1 1 0 -1 0 0 0 0 0 a 0 0 0 0"} {
		if _, err := parseProcStat([]byte(bad)); err == nil {
			t.Errorf("parseProcStat(%q) accepted a malformed line", bad)
		}
	}
}

// The live process's own stat parses, with its parent and some CPU.
func TestParseProcStatSelf(t *testing.T) {
	st, err := readProcStat(os.Getpid())
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	if st.PPid != os.Getppid() {
		t.Errorf("ppid = %d, want %d", st.PPid, os.Getppid())
	}
}

func TestMetricSum(t *testing.T) {
	text := []byte(`# HELP sluice_connect_sink_records_put_total Records handed to a sink task's Put after transforms.
# TYPE sluice_connect_sink_records_put_total counter
sluice_connect_sink_records_put_total{connector="a-sink",task="0"} 1.2345e+06
sluice_connect_sink_records_put_total{connector="a-sink",task="1"} 5
sluice_connect_sink_records_put_total{connector="a-sink2",task="0"} 99
sluice_connect_sink_records_read_total{connector="a-sink",task="0"} 7
sluice_connect_source_records_written_total{connector="a-src",task="0"} 42 1700000000000
`)
	got, ok, err := metricSum(text, "sluice_connect_sink_records_put_total", "a-sink")
	if err != nil || !ok || got != 1234505 {
		t.Errorf("put total = %v, %v, %v; want 1234505 (both tasks, not a-sink2, not read_total)", got, ok, err)
	}
	got, ok, err = metricSum(text, "sluice_connect_source_records_written_total", "a-src")
	if err != nil || !ok || got != 42 {
		t.Errorf("written total with a timestamp = %v, %v, %v; want 42", got, ok, err)
	}
	if _, ok, _ := metricSum(text, "sluice_connect_sink_records_put_total", "other"); ok {
		t.Error("a connector with no samples reported ok")
	}
	if _, _, err := metricSum([]byte(`x_total{connector="c"} NaNx`), "x_total", "c"); err == nil {
		t.Error("a malformed value was accepted")
	}
}

func TestMedianRatio(t *testing.T) {
	for _, tc := range []struct {
		in   []float64
		want float64
	}{{[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}, {[]float64{7}, 7}} {
		if got := benchkit.Median(tc.in); got != tc.want {
			t.Errorf("benchkit.Median(%v) = %v, want %v", tc.in, got, tc.want)
		}
	}
	if !math.IsNaN(benchkit.Median(nil)) {
		t.Error("median of nothing is not NaN")
	}
	in := []float64{3, 1, 2}
	benchkit.Median(in)
	if in[0] != 3 {
		t.Error("median sorted its argument in place")
	}
	if got := ratio(70, 100); got != 0.7 {
		t.Errorf("ratio = %v", got)
	}
	if !math.IsNaN(ratio(1, 0)) || !math.IsNaN(ratio(math.NaN(), 1)) {
		t.Error("ratio over nothing is not NaN")
	}
}

func TestSteadyWindow(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, src, sink int64) sample {
		return sample{At: t0.Add(time.Duration(ms) * time.Millisecond), Src: src, Sink: sink}
	}
	// The sink passes the warm mark (200) at 1 s; the source finishes at
	// 3 s, when the sink has 800: the stretch is 1 s..3 s, 600 records.
	s := []sample{at(0, 0, 0), at(500, 150, 50), at(1000, 400, 250), at(2000, 700, 550), at(3000, 1000, 800), at(3500, 1000, 1000)}
	w, err := steadyWindow(s, 200, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if w.From != 2 || w.To != 4 || w.Records != 550 || w.Rate != 275 || w.SrcRate != 300 || w.CatchUp {
		t.Errorf("window = %+v; want samples 2..4, 550 records at 275/s, source 300/s", w)
	}
	// The source done before the sink was warm: the stretch runs to the
	// sink's end.
	s = []sample{at(0, 0, 0), at(1000, 1000, 300), at(2000, 1000, 700), at(3000, 1000, 1000)}
	w, err = steadyWindow(s, 200, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if !w.CatchUp || w.From != 1 || w.To != 3 || w.Rate != 350 {
		t.Errorf("catch-up window = %+v; want samples 1..3 at 350/s", w)
	}
	// Warm-up and end within one sample: the whole run, flagged short.
	w, err = steadyWindow([]sample{at(0, 0, 0), at(500, 0, 0), at(1500, 1000, 1000)}, 200, 1000)
	if err != nil || !w.Short || w.From != 0 || w.To != 2 || w.Rate != 1000/1.5 {
		t.Errorf("short run: window %+v, %v; want the whole run at 667/s, flagged", w, err)
	}
	if _, err := steadyWindow([]sample{at(0, 0, 0), at(1000, 100, 100)}, 200, 1000); err == nil {
		t.Error("a run that never warmed up gave a window")
	}
	if _, err := steadyWindow([]sample{at(0, 0, 0), at(1000, 300, 300), at(2000, 500, 500)}, 200, 1000); err == nil {
		t.Error("a run that never finished gave a window")
	}
}

func TestSummarize(t *testing.T) {
	r := &report{Rounds: 3, Configs: []benchConfig{{Name: "c", Records: 1000}}}
	add := func(mode string, round int, rate, cpu float64) {
		p := cpuClient
		if mode == "connect" {
			p = cpuWorker
		}
		r.Runs = append(r.Runs, runResult{Config: "c", Mode: mode, Round: round, Records: 1000, Rate: rate,
			CPU: map[string]float64{p: cpu, cpuBroker: 0.001}})
	}
	add("connect", 0, 70, 0.010)
	add("direct", 0, 100, 0.002)
	add("connect", 1, 80, 0.020)
	add("direct", 1, 200, 0.004)
	add("connect", 2, 60, 0.030)
	add("direct", 2, 100, 0.003)
	r.Runs = append(r.Runs, runResult{Config: "c", Mode: "connect", Round: 2, Err: "boom"})
	r.summarize()
	s := r.Summaries[0]
	if s.ConnectRate != 70 || s.DirectRate != 100 || s.Ratio != 0.7 {
		t.Errorf("medians %v / %v = %v; want 70 / 100 = 0.7", s.ConnectRate, s.DirectRate, s.Ratio)
	}
	if s.WorkerUS != 20 || s.ClientUS != 3 || s.ConnectBrokerUS != 1 {
		t.Errorf("µs/record worker %v client %v broker %v; want 20, 3, 1", s.WorkerUS, s.ClientUS, s.ConnectBrokerUS)
	}
	if len(s.RoundRatios) != 3 || s.RoundRatios[1] != 0.4 {
		t.Errorf("round ratios %v", s.RoundRatios)
	}
	if s.ConnectRuns != 3 {
		t.Errorf("%d connect runs counted; the failed one must not count", s.ConnectRuns)
	}
	md := r.markdown()
	for _, want := range []string{"| c | 1000 | 70 | 100 | 0.70× | met |", "failed: boom"} {
		if !strings.Contains(md, want) {
			t.Errorf("the report lacks %q:\n%s", want, md)
		}
	}
	if !r.failed() {
		t.Error("a report with a failed run does not say so")
	}
	// A configuration with no run at all still writes (JSON has no NaN).
	r.Configs = append(r.Configs, benchConfig{Name: "none", Records: 5})
	r.summarize()
	if _, err := r.write(t.TempDir()); err != nil {
		t.Errorf("writing a report with an empty configuration: %v", err)
	}
	if md := r.markdown(); !strings.Contains(md, "| none | 5 | – | – | – | no result |") {
		t.Errorf("the empty configuration's row is wrong:\n%s", md)
	}
}

// TestSmoke runs the whole benchmark small: a broker, a worker, both
// plugins and the direct client, one round of one configuration.
func TestSmoke(t *testing.T) {
	if testing.Short() {
		t.Skip("builds sluice and the plugins and runs them")
	}
	root := moduleRoot()
	dir := t.TempDir()
	build := func(out string, pkgs ...string) {
		cmd := exec.Command("go", append([]string{"build", "-o", out}, pkgs...)...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOFLAGS=-ldflags=-checklinkname=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build %v: %v\n%s", pkgs, err, b)
		}
	}
	build(filepath.Join(dir, "sluice"), "./cmd/sluice")
	build(filepath.Join(dir, "connectbench"), "./perf/connectbench")
	out := filepath.Join(dir, "out")
	cmd := exec.Command(filepath.Join(dir, "connectbench"), "--sluice", filepath.Join(dir, "sluice"),
		"--only", "^bytes-100B$", "--rounds", "1", "--scale", "0.1", "--out", out)
	cmd.Dir = root
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("connectbench: %v\n%s", err, b)
	}
	md, err := os.ReadFile(filepath.Join(out, "connect-throughput.md"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| bytes-100B | 60000 |") || strings.Contains(string(md), "failed") {
		t.Errorf("unexpected report:\n%s\n%s", md, b)
	}
}

// The direct baseline writes values of the configured size: raw bytes
// exactly, JSON as JsonConverter writes the generator's map (about the
// size, since seq's digits vary).
func TestDirectValueSize(t *testing.T) {
	for _, n := range []int{100, 1024} {
		b, err := directValue("t", n, "bytes")
		if err != nil || len(b) != n {
			t.Errorf("bytes value of %d: %d bytes, %v", n, len(b), err)
		}
		j, err := directValue("t", n, "json")
		if err != nil || len(j) < n-6 || len(j) > n+6 {
			t.Errorf("json value of about %d: %d bytes (%s), %v", n, len(j), j, err)
		}
	}
	if _, err := directValue("t", 10, "avro"); err == nil {
		t.Error("an unknown value type was accepted")
	}
}
