package main

// The connectors' benchmarks (issue 20): each connector that has a target
// registers a connectorBench from its own file (conn_<dir>.go); `--connectors
// REGEX` runs the matching ones against one broker and one worker whose
// plugin.path holds every connectors/* plugin, and writes
// connectors.md and .json next to connect-throughput.md.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"
)

// connectorBench is one connector's benchmark.
type connectorBench struct {
	Name string // the connector's directory under connectors/
	// Run measures the connector (and a peer tool doing the same job, where
	// one exists) and returns one row per measurement.
	Run func(ctx context.Context, env *connectorEnv) ([]connectorRow, error)
}

// connectorEnv is what a connector benchmark runs against.
type connectorEnv struct {
	Root, Sluice, Dir string // module root, bin/sluice, a scratch dir of the bench's own
	Bootstrap         string // a running `sluice broker`
	BrokerPID         int
	REST              *restClient // a running distributed `sluice connect` worker
	WorkerPID         int
	Plugins           string // the worker's plugin.path: every connectors/* plugin
	Quick             bool   // make bench-quick: shorter runs
	// Workload, if not nil, picks the workloads to run by their
	// description (--workload); Wants says whether one is picked.
	Workload *regexp.Regexp
	Logf     func(format string, args ...any)
}

// connectorRow is one measurement.
type connectorRow struct {
	Bench    string             `json:"bench"`
	Workload string             `json:"workload"` // e.g. "200-byte lines, 4 files"
	Tool     string             `json:"tool"`     // "sluice connect", or a peer such as "rsyslog omkafka"
	Unit     string             `json:"unit"`     // "lines", "messages", "row changes", "rows"
	Count    int64              `json:"count"`    // units moved in the measured stretch
	Seconds  float64            `json:"seconds"`
	Bytes    int64              `json:"bytes"`           // payload bytes in the stretch, 0 if meaningless
	CPU      map[string]float64 `json:"cpu_us_per_unit"` // µs of CPU per unit, by process
	Target   string             `json:"target,omitempty"`
	Met      string             `json:"met,omitempty"` // "met", "missed" or ""
	Err      string             `json:"error,omitempty"`
}

var connectorBenches []connectorBench

// registerConnectorBench adds a benchmark; called from init.
func registerConnectorBench(b connectorBench) {
	for _, o := range connectorBenches {
		if o.Name == b.Name {
			panic("connectbench: two connector benchmarks named " + b.Name)
		}
	}
	connectorBenches = append(connectorBenches, b)
	sort.Slice(connectorBenches, func(i, j int) bool { return connectorBenches[i].Name < connectorBenches[j].Name })
}

// connectorsReport is connectors.md's content.
type connectorsReport struct {
	Env     environment    `json:"environment"`
	Command string         `json:"command"`
	Elapsed float64        `json:"elapsed_s"`
	Rows    []connectorRow `json:"rows"`
}

// runConnectorBenches runs every registered benchmark whose name matches
// re and writes the report to out.
func runConnectorBenches(ctx context.Context, o options, root, dir string, re *regexp.Regexp, logf func(string, ...any)) (*connectorsReport, error) {
	var chosen []connectorBench
	for _, b := range connectorBenches {
		if re.MatchString(b.Name) {
			chosen = append(chosen, b)
		}
	}
	if len(chosen) == 0 {
		var names []string
		for _, b := range connectorBenches {
			names = append(names, b.Name)
		}
		return nil, fmt.Errorf("--connectors %q matches none of %v", re, names)
	}
	plugins := o.plugins
	if plugins == "" {
		plugins = filepath.Join(dir, "plugins")
		logf("building every connector plugin into %s", plugins)
		if err := buildConnectorPlugins(ctx, root, plugins); err != nil {
			return nil, err
		}
	}
	broker, bootstrap, err := startBroker(ctx, o.sluice, dir)
	if err != nil {
		return nil, err
	}
	defer broker.stop(20 * time.Second)
	wk, err := startWorker(ctx, o.sluice, dir, bootstrap, plugins, o.workerEnv)
	if err != nil {
		return nil, err
	}
	defer wk.stop(30 * time.Second)
	logf("broker pid %d on %s; worker pid %d, REST %s", broker.pid(), bootstrap, wk.pid(), wk.url)
	rep := &connectorsReport{Env: collectEnv(ctx, root)}
	for _, b := range chosen {
		if ctx.Err() != nil {
			break
		}
		scratch := filepath.Join(dir, "bench-"+b.Name)
		if err := os.MkdirAll(scratch, 0o755); err != nil {
			return nil, err
		}
		env := &connectorEnv{Root: root, Sluice: o.sluice, Dir: scratch, Bootstrap: bootstrap, BrokerPID: broker.pid(),
			REST: newRESTClient(wk.url), WorkerPID: wk.pid(), Plugins: plugins, Quick: o.quick, Workload: o.workload,
			Logf: func(format string, a ...any) { logf("%s: %s", b.Name, fmt.Sprintf(format, a...)) }}
		logf("== %s", b.Name)
		rows, err := b.Run(ctx, env)
		if err != nil {
			logf("%s failed: %v", b.Name, err)
			rows = append(rows, connectorRow{Workload: "(the benchmark)", Err: err.Error()})
		}
		for i := range rows {
			rows[i].Bench = b.Name
			r := rows[i]
			if r.Err == "" {
				logf("%s %s %s: %s %s/s over %.1fs %s", b.Name, r.Workload, r.Tool, num(rate(r)), r.Unit, r.Seconds, r.Met)
			}
		}
		rep.Rows = append(rep.Rows, rows...)
		_ = os.RemoveAll(scratch)
	}
	rep.Env.LoadAfter = strings.TrimSpace(readFile("/proc/loadavg"))
	return rep, nil
}

// Wants reports whether the workload described so is to run.
func (e *connectorEnv) Wants(workload string) bool {
	return e.Workload == nil || e.Workload.MatchString(workload)
}

func rate(r connectorRow) float64 {
	if r.Seconds <= 0 {
		return 0
	}
	return float64(r.Count) / r.Seconds
}

// buildConnectorPlugins builds every connectors/*/main.go into dir, as make
// build does into bin/plugins.
func buildConnectorPlugins(ctx context.Context, root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	mains, _ := filepath.Glob(filepath.Join(root, "connectors", "*", "main.go"))
	if len(mains) == 0 {
		return fmt.Errorf("no connectors/*/main.go under %s", root)
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	args := []string{"build", "-o", dir + string(os.PathSeparator)}
	for _, m := range mains {
		rel, err := filepath.Rel(root, filepath.Dir(m))
		if err != nil {
			return err
		}
		args = append(args, "./"+filepath.ToSlash(rel))
	}
	cmd := exec.CommandContext(ctx, goBin, args...)
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("building the connector plugins: %w\n%s", err, out)
	}
	return nil
}

// write puts connectors.md and connectors.json in dir.
func (r *connectorsReport) write(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	md, js := filepath.Join(dir, "connectors.md"), filepath.Join(dir, "connectors.json")
	if err := os.WriteFile(md, []byte(r.markdown()), 0o644); err != nil {
		return nil, err
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	return []string{md, js}, os.WriteFile(js, append(b, '\n'), 0o644)
}

// failed reports whether a benchmark could not run (a missed target is
// reported, not failed).
func (r *connectorsReport) failed() bool {
	for _, row := range r.Rows {
		if row.Err != "" {
			return true
		}
	}
	return false
}

func (r *connectorsReport) markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# Connectors, %s (%s)\n\n", r.Env.Date[:10], r.Env.ShortCommit)
	b.WriteString("Issue 20's connector benchmarks: each connector plugin run by one distributed `sluice connect` worker against one `sluice broker` on this machine, with a peer tool doing the same job side by side where one exists. CPU is utime+stime from /proc over the measured stretch, per unit moved.\n\n")
	fmt.Fprintf(&b, "```\n%s\n```\n\n", r.Command)
	fmt.Fprintf(&b, "| | |\n|---|---|\n| machine | %s, %d cores, kernel %s |\n| Go | %s |\n| sluice commit | %s |\n| load average | before %s; after %s |\n| run took | %.0fs |\n\n",
		r.Env.CPU, r.Env.Cores, r.Env.Kernel, r.Env.Go, r.Env.Commit, r.Env.LoadBefore, r.Env.LoadAfter, r.Elapsed)
	b.WriteString("| connector | workload | tool | units/s | MB/s | CPU µs/unit | target | verdict |\n|---|---|---|---:|---:|---|---|---|\n")
	for _, row := range r.Rows {
		if row.Err != "" {
			fmt.Fprintf(&b, "| %s | %s | – | – | – | – | %s | failed: %s |\n", row.Bench, row.Workload, row.Target, oneLine(row.Err))
			continue
		}
		mbs := "–"
		if row.Bytes > 0 && row.Seconds > 0 {
			mbs = fmt.Sprintf("%.1f", float64(row.Bytes)/row.Seconds/1e6)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s %s/s | %s | %s | %s | %s |\n",
			row.Bench, row.Workload, row.Tool, num(rate(row)), row.Unit, mbs, cpuCell(row.CPU), row.Target, row.Met)
	}
	return b.String()
}

func cpuCell(cpu map[string]float64) string {
	var keys []string
	for k := range cpu {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %.2f", k, cpu[k]))
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}

func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	return strings.ReplaceAll(s, "|", "/")
}

// runConnectorsMode is run for --connectors.
func runConnectorsMode(ctx context.Context, o options, root string, args []string, started time.Time,
	logf func(string, ...any), stdout, stderr io.Writer) int {
	dir, err := os.MkdirTemp("", "sluice-connectorbench-")
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rep, err := runConnectorBenches(ctx, o, root, dir, o.connectors, logf)
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	rep.Command = command(root, args)
	rep.Elapsed = time.Since(started).Seconds()
	paths, err := rep.write(o.out)
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "wrote %s in %.0fs\n", strings.Join(paths, ", "), rep.Elapsed)
	if rep.failed() {
		return 1
	}
	return 0
}
