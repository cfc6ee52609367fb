package main

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// target is issue 19's: Connect moves records at least this fraction of
// the rate franz-go alone does.
const target = 0.7

// environment is what the report says about the machine.
type environment struct {
	Date        string `json:"date"`
	Kernel      string `json:"kernel"`
	CPU         string `json:"cpu"`
	Cores       int    `json:"cores"`
	Go          string `json:"go"`
	Commit      string `json:"sluice_commit"`
	ShortCommit string `json:"sluice_short_commit"`
	LoadBefore  string `json:"loadavg_before"`
	LoadAfter   string `json:"loadavg_after"`
}

func collectEnv(ctx context.Context, root string) environment {
	e := environment{
		Date:       time.Now().UTC().Format(time.RFC3339),
		Kernel:     strings.TrimSpace(readFile("/proc/sys/kernel/osrelease")),
		Cores:      runtime.NumCPU(),
		Go:         runtime.Version(),
		LoadBefore: strings.TrimSpace(readFile("/proc/loadavg")),
	}
	for _, line := range strings.Split(readFile("/proc/cpuinfo"), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			e.CPU = strings.TrimSpace(v)
			break
		}
	}
	git := func(args ...string) string {
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = root
		out, _ := cmd.Output()
		return strings.TrimSpace(string(out))
	}
	e.Commit, e.ShortCommit = git("rev-parse", "HEAD"), git("rev-parse", "--short", "HEAD")
	if e.ShortCommit == "" {
		e.ShortCommit = "nogit"
	}
	if git("status", "--porcelain", "--untracked-files=no") != "" {
		e.Commit += " (with uncommitted changes)"
	}
	return e
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// summary is one configuration's medians over its rounds.
type summary struct {
	Config      string    `json:"config"`
	ConnectRate float64   `json:"connect_records_per_s"`
	DirectRate  float64   `json:"direct_records_per_s"`
	Ratio       float64   `json:"ratio"` // of the medians
	RoundRatios []float64 `json:"round_ratios"`
	// µs of CPU per record, medians over the rounds.
	WorkerUS        float64 `json:"worker_us_per_record"`
	SourceUS        float64 `json:"source_plugin_us_per_record"`
	SinkUS          float64 `json:"sink_plugin_us_per_record"`
	ConnectUS       float64 `json:"connect_total_us_per_record"`
	ConnectBrokerUS float64 `json:"connect_broker_us_per_record"`
	ClientUS        float64 `json:"direct_client_us_per_record"`
	DirectBrokerUS  float64 `json:"direct_broker_us_per_record"`
	ConnectRuns     int     `json:"connect_runs"`
	DirectRuns      int     `json:"direct_runs"`
}

type report struct {
	Env        environment   `json:"env"`
	Command    string        `json:"command"`
	Configs    []benchConfig `json:"configs"`
	Rounds     int           `json:"rounds"`
	Partitions int           `json:"partitions"`
	Warm       float64       `json:"warmup_fraction"`
	WorkerEnv  []string      `json:"worker_env,omitempty"`
	// DirectFactor: direct runs moved this many times the records.
	DirectFactor int         `json:"direct_factor"`
	Runs         []runResult `json:"runs"`
	Summaries    []summary   `json:"summaries"`
	Elapsed      float64     `json:"elapsed_s"`
	Interrupted  bool        `json:"interrupted"`
}

func (r *report) failed() bool {
	for _, run := range r.Runs {
		if run.Err != "" {
			return true
		}
	}
	return r.Interrupted || len(r.Runs) == 0
}

// summarize computes each configuration's medians from its runs.
func (r *report) summarize() {
	r.Env.LoadAfter = strings.TrimSpace(readFile("/proc/loadavg"))
	r.Summaries = nil
	for _, c := range r.Configs {
		s := summary{Config: c.Name}
		var rate [2][]float64
		us := map[string][]float64{}
		byRound := map[int][2]float64{}
		for _, run := range r.Runs {
			if run.Config != c.Name || run.Err != "" {
				continue
			}
			i := 0
			if run.Mode == "direct" {
				i = 1
			}
			rate[i] = append(rate[i], run.Rate)
			pair := byRound[run.Round]
			pair[i] = run.Rate
			byRound[run.Round] = pair
			total := 0.0
			for _, p := range []string{cpuWorker, cpuSource, cpuSink, cpuClient} {
				if x := run.usPerRecord(p); x >= 0 {
					us[run.Mode+p] = append(us[run.Mode+p], x)
					total += x
				}
			}
			us[run.Mode+"total"] = append(us[run.Mode+"total"], total)
			if x := run.usPerRecord(cpuBroker); x >= 0 {
				us[run.Mode+cpuBroker] = append(us[run.Mode+cpuBroker], x)
			}
		}
		s.ConnectRuns, s.DirectRuns = len(rate[0]), len(rate[1])
		s.ConnectRate, s.DirectRate = benchkit.Median(rate[0]), benchkit.Median(rate[1])
		s.Ratio = ratio(s.ConnectRate, s.DirectRate)
		for round := range r.Rounds {
			if p, ok := byRound[round]; ok && p[0] > 0 && p[1] > 0 {
				s.RoundRatios = append(s.RoundRatios, p[0]/p[1])
			}
		}
		s.WorkerUS, s.SourceUS, s.SinkUS = benchkit.Median(us["connect"+cpuWorker]), benchkit.Median(us["connect"+cpuSource]), benchkit.Median(us["connect"+cpuSink])
		s.ConnectUS, s.ConnectBrokerUS = benchkit.Median(us["connecttotal"]), benchkit.Median(us["connect"+cpuBroker])
		s.ClientUS, s.DirectBrokerUS = benchkit.Median(us["direct"+cpuClient]), benchkit.Median(us["direct"+cpuBroker])
		// JSON has no NaN: a figure with no run behind it is 0, shown as –.
		for _, f := range []*float64{&s.ConnectRate, &s.DirectRate, &s.Ratio, &s.WorkerUS, &s.SourceUS, &s.SinkUS,
			&s.ConnectUS, &s.ConnectBrokerUS, &s.ClientUS, &s.DirectBrokerUS} {
			if math.IsNaN(*f) {
				*f = 0
			}
		}
		r.Summaries = append(r.Summaries, s)
	}
}

// markdown renders the report.
func (r *report) markdown() string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Connect throughput, %s (%s)\n\n", strings.SplitN(r.Env.Date, "T", 2)[0], r.Env.ShortCommit)
	w("Records/s through a Sluice Connect worker (distributed mode, one worker, one `sluice broker`) from a source plugin that ")
	w("generates records (`sluice.bench.GeneratorSource`, one task, keyed, fixed-size values) through a topic to a sink plugin ")
	w("that discards them (`sluice.bench.DiscardSink`, one task), against the same records produced and consumed directly with ")
	w("franz-go in one process (a producer with the worker's producer settings, acks=all and 5 ms linger; a group consumer). ")
	w("Issue 19's target: Connect at ≥ %.1f× direct.\n\n", target)
	w("Rates are measured at the sink, over the stretch from %.0f%% of the records received to the moment either side finishes ", r.Warm*100)
	w("(so both ends run throughout). CPU is utime+stime (children included) from /proc/PID/stat over the whole run, first record ")
	w("produced to last received, divided by the records: the worker, each plugin process and the broker for Connect; the client ")
	w("process and the broker for direct. Each configuration ran %d rounds, connect and direct alternating which goes first; ", r.Rounds)
	w("figures are medians. Topics have %d partition(s). ", r.Partitions)
	if r.DirectFactor > 1 {
		w("Direct runs move %d× the records of a connect run (the table's count is connect's), or they would be over too soon to measure. ", r.DirectFactor)
	}
	w("Keys use StringConverter; values ByteArrayConverter, or JsonConverter ")
	w("with schemas.enable=false for the json configuration (the generator makes a schemaless map; the direct baseline writes ")
	w("one pre-encoded JSON text of the same size, so the ratio includes the worker's conversion cost).")
	if len(r.WorkerEnv) > 0 {
		w(" The worker and its plugins ran with %s in their environment.", strings.Join(r.WorkerEnv, " "))
	}
	if r.Interrupted {
		w(" **The run was interrupted.**")
	}
	w("\n\n```\n%s\n```\n\n", r.Command)
	w("| | |\n|---|---|\n")
	w("| machine | %s, %d cores (nproc), kernel %s |\n", r.Env.CPU, r.Env.Cores, r.Env.Kernel)
	w("| Go | %s |\n| sluice commit | %s |\n", r.Env.Go, r.Env.Commit)
	w("| load average | before %s; after %s |\n", r.Env.LoadBefore, r.Env.LoadAfter)
	w("| run took | %.0fs |\n\n", r.Elapsed)

	w("## Results\n\n")
	w("| configuration | records | connect records/s | direct records/s | connect/direct | target ≥ %.1f× | per round |\n|---|---:|---:|---:|---:|---|---|\n", target)
	for i, s := range r.Summaries {
		verdict := "missed"
		if s.Ratio >= target {
			verdict = "met"
		}
		if s.ConnectRuns == 0 || s.DirectRuns == 0 {
			verdict = "no result"
		}
		w("| %s | %d | %s | %s | %s | %s | %s |\n", s.Config, r.Configs[i].Records, num(s.ConnectRate), num(s.DirectRate),
			times(s.Ratio), verdict, ratios(s.RoundRatios))
	}
	w("\n## CPU per record (µs, medians)\n\n")
	w("| configuration | worker | source plugin | sink plugin | connect total | broker (connect) | franz-go client | broker (direct) |\n|---|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.Summaries {
		w("| %s | %s | %s | %s | %s | %s | %s | %s |\n", s.Config, us(s.WorkerUS), us(s.SourceUS), us(s.SinkUS), us(s.ConnectUS),
			us(s.ConnectBrokerUS), us(s.ClientUS), us(s.DirectBrokerUS))
	}
	w("\n## Runs\n\n| configuration | round | mode | records/s | source records/s | stretch | wall | µs CPU/record |\n|---|---:|---|---:|---:|---:|---:|---|\n")
	for _, run := range r.Runs {
		if run.Err != "" {
			w("| %s | %d | %s | failed: %s | | | | |\n", run.Config, run.Round, run.Mode, cell(run.Err))
			continue
		}
		note := ""
		if run.CatchUp {
			note = " (catch-up)"
		}
		if run.Short {
			note = " (short run, warm-up included)"
		}
		w("| %s | %d | %s | %s%s | %s | %.1fs | %.1fs | %s |\n", run.Config, run.Round, run.Mode, num(run.Rate), note,
			num(run.SrcRate), run.Window, run.Wall, strings.TrimPrefix(cpuLine(run), "µs CPU/record: "))
	}
	return b.String()
}

// write puts connect-throughput.md and .json in dir.
func (r *report) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	md := filepath.Join(dir, "connect-throughput.md")
	js := filepath.Join(dir, "connect-throughput.json")
	if err := os.WriteFile(md, []byte(r.markdown()), 0o644); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(js, append(b, '\n'), 0o644); err != nil {
		return nil, err
	}
	return []string{md, js}, nil
}

func num(x float64) string {
	if math.IsNaN(x) || x <= 0 {
		return "–"
	}
	s := fmt.Sprintf("%.0f", x)
	// thousands separators
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ',')
		}
		out = append(out, c)
	}
	return string(out)
}

func times(x float64) string {
	if math.IsNaN(x) || x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f×", x)
}

func us(x float64) string {
	if math.IsNaN(x) || x <= 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f", x)
}

func ratios(xs []float64) string {
	parts := make([]string, len(xs))
	for i, x := range xs {
		parts[i] = fmt.Sprintf("%.2f", x)
	}
	return strings.Join(parts, ", ")
}

func cell(s string) string {
	s = strings.ReplaceAll(s, "|", `\|`)
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}
