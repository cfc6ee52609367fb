// Command connectbench is the Kafka Connect benchmark of `make bench`
// (issue 19): records/s through a Sluice Connect worker, from a source
// plugin that generates records to a sink plugin that discards them,
// side by side with the same records produced and consumed directly with
// franz-go, plus the CPU each process spends per record.
//
//	go run ./perf/connectbench [--quick] [--rounds N] [--scale F] [--only REGEX] [--out DIR]
//
// It starts one `sluice broker` and one distributed `sluice connect`
// worker from bin/sluice, builds the two plugins (plugins/gensource,
// plugins/discardsink) into a temporary plugin.path, and for every
// configuration runs connect and direct in alternation, rounds times.
// The report goes to DIR/connect-throughput.md and .json.
//
//	go run ./perf/connectbench --connectors REGEX [--workload REGEX] [--plugins DIR] [--quick] [--out DIR]
//
// runs the connectors' own benchmarks instead (connectors.go), into
// DIR/connectors.md and .json; --workload keeps only the workloads whose
// description matches, and --plugins takes connector plugins already
// built (to compare two builds side by side, say).
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "direct" {
		os.Exit(runDirect(os.Args[2:], os.Stdout, os.Stderr))
	}
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// fullConfigs are what `make bench` measures: ~100-byte and 1 KiB values
// as bytes, and ~100-byte schemaless JSON values. Record counts make each
// connect run last a few seconds on a 2-core machine.
var fullConfigs = []benchConfig{
	{Name: "bytes-100B", Bytes: 100, ValueType: "bytes", Records: 600_000},
	{Name: "bytes-1KiB", Bytes: 1024, ValueType: "bytes", Records: 300_000},
	{Name: "json-100B", Bytes: 100, ValueType: "json", Records: 300_000},
}

// quickNames are the configurations `make bench-quick` runs, with
// quickScale of the records.
var quickNames = []string{"bytes-100B", "json-100B"}

const quickScale = 0.3

type options struct {
	sluice, out, plugins string
	rounds               int
	quick                bool
	scale, warm          float64
	only                 *regexp.Regexp
	partitions           int
	interval, timeout    time.Duration
	directInterval       time.Duration
	directFactor         int
	workerEnv            []string
	connectors           *regexp.Regexp // --connectors: the connector benchmarks instead
	workload             *regexp.Regexp // --workload: only these connector workloads
}

func run(args []string, stdout, stderr io.Writer) int {
	root := moduleRoot()
	o, err := parseFlags(args, root, stderr)
	if err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
	}
	if o.connectors != nil {
		return runConnectorsMode(ctx, o, root, args, started, logf, stdout, stderr)
	}
	cfgs := selectConfigs(o)
	if len(cfgs) == 0 {
		fmt.Fprintln(stderr, "connectbench: no configuration left after --quick/--only")
		return 2
	}
	dir, err := os.MkdirTemp("", "sluice-connectbench-")
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)
	rep, err := measureAll(ctx, o, root, dir, cfgs, logf)
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	rep.Command = command(root, args)
	rep.Elapsed = time.Since(started).Seconds()
	rep.Interrupted = ctx.Err() != nil
	paths, err := rep.write(o.out)
	if err != nil {
		fmt.Fprintf(stderr, "connectbench: %v\n", err)
		return 1
	}
	for _, s := range rep.Summaries {
		fmt.Fprintf(stdout, "  %-12s connect %9.0f rec/s  direct %9.0f rec/s  %.2f×  worker+plugins %.2f µs/rec\n",
			s.Config, s.ConnectRate, s.DirectRate, s.Ratio, s.ConnectUS)
	}
	fmt.Fprintf(stdout, "wrote %s in %.0fs\n", strings.Join(paths, ", "), rep.Elapsed)
	if rep.failed() {
		return 1
	}
	return 0
}

func parseFlags(args []string, root string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("connectbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sluice, "sluice", filepath.Join(root, "bin", "sluice"), "`path` of the sluice binary (broker and worker)")
	fs.StringVar(&o.out, "out", filepath.Join(root, "perf", "results"), "`dir` for connect-throughput.md and .json")
	fs.StringVar(&o.plugins, "plugins", "", "`dir` holding the plugins already built: gensource and discardsink, or with --connectors the connectors/* plugins (default: build them into a temporary dir)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per configuration, each one connect and one direct run (the order alternates)")
	fs.BoolVar(&o.quick, "quick", false, "fewer configurations and records (make bench-quick)")
	fs.Float64Var(&o.scale, "scale", 0, "multiply every configuration's record count (default 1, 0.3 with --quick)")
	fs.Float64Var(&o.warm, "warmup", 0.2, "fraction of the records received before the steady stretch starts")
	only := fs.String("only", "", "run only configurations whose name matches this `regexp`")
	connectors := fs.String("connectors", "", "run the connector benchmarks (issue 20) whose name matches this `regexp` instead, into DIR/connectors.md")
	workload := fs.String("workload", "", "with --connectors: run only the workloads whose description matches this `regexp` (e.g. '1 file\\(s\\)$')")
	fs.IntVar(&o.partitions, "partitions", 1, "partitions of each run's topic")
	fs.DurationVar(&o.interval, "interval", 200*time.Millisecond, "how often the worker's /metrics is scraped for progress (the scrapes cost the worker CPU)")
	fs.IntVar(&o.directFactor, "direct-factor", 4, "direct runs move this many times a configuration's records, so that they last long enough to measure")
	fs.DurationVar(&o.directInterval, "direct-interval", 20*time.Millisecond, "how often the direct client samples its progress (in process, free)")
	fs.Func("worker-env", "`KEY=VALUE` in the environment of the worker and its plugins (repeatable), e.g. GOGC=400 to try a GC setting", func(v string) error {
		if !strings.Contains(v, "=") {
			return fmt.Errorf("want KEY=VALUE")
		}
		o.workerEnv = append(o.workerEnv, v)
		return nil
	})
	fs.DurationVar(&o.timeout, "timeout", 2*time.Minute, "give up on a run after this long")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if *only != "" {
		re, err := regexp.Compile(*only)
		if err != nil {
			return o, fmt.Errorf("--only: %w", err)
		}
		o.only = re
	}
	if *connectors != "" {
		re, err := regexp.Compile(*connectors)
		if err != nil {
			return o, fmt.Errorf("--connectors: %w", err)
		}
		o.connectors = re
	}
	if *workload != "" {
		re, err := regexp.Compile(*workload)
		if err != nil {
			return o, fmt.Errorf("--workload: %w", err)
		}
		o.workload = re
	}
	if o.scale == 0 {
		o.scale = 1
		if o.quick {
			o.scale = quickScale
		}
	}
	if o.rounds < 1 || o.scale <= 0 || o.warm < 0 || o.warm >= 1 || o.partitions < 1 || o.directFactor < 1 {
		return o, fmt.Errorf("want --rounds ≥ 1, --scale > 0, 0 ≤ --warmup < 1, --partitions ≥ 1, --direct-factor ≥ 1")
	}
	return o, nil
}

func selectConfigs(o options) []benchConfig {
	var out []benchConfig
	for _, c := range fullConfigs {
		if o.quick && !contains(quickNames, c.Name) {
			continue
		}
		if o.only != nil && !o.only.MatchString(c.Name) {
			continue
		}
		c.Records = max(int64(float64(c.Records)*o.scale), 1000)
		out = append(out, c)
	}
	return out
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// measureAll starts the broker and the worker and runs every
// configuration's rounds.
func measureAll(ctx context.Context, o options, root, dir string, cfgs []benchConfig, logf func(string, ...any)) (*report, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	plugins := o.plugins
	if plugins == "" {
		plugins = filepath.Join(dir, "plugins")
		logf("building the benchmark plugins into %s", plugins)
		if err := buildPlugins(ctx, root, plugins); err != nil {
			return nil, err
		}
	}
	broker, bootstrap, err := startBroker(ctx, o.sluice, dir)
	if err != nil {
		return nil, err
	}
	defer broker.stop(20 * time.Second)
	logf("broker pid %d on %s", broker.pid(), bootstrap)
	wk, err := startWorker(ctx, o.sluice, dir, bootstrap, plugins, o.workerEnv)
	if err != nil {
		return nil, err
	}
	defer wk.stop(30 * time.Second)
	logf("worker pid %d, REST %s, metrics %s", wk.pid(), wk.url, wk.metrics)
	admin, cl, err := newAdmin(bootstrap)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	b := &bench{self: self, bootstrap: bootstrap, broker: broker, worker: wk, admin: admin, rest: newRESTClient(wk.url),
		partitions: int32(o.partitions), warm: o.warm, interval: o.interval, directInterval: o.directInterval,
		directFactor: int64(o.directFactor), timeout: o.timeout, logf: logf}
	rep := &report{Env: collectEnv(ctx, root), Configs: cfgs, Rounds: o.rounds, Partitions: o.partitions, Warm: o.warm, WorkerEnv: o.workerEnv, DirectFactor: o.directFactor}
	for _, c := range cfgs {
		for round := range o.rounds {
			// Alternate which goes first, so neither always runs on a
			// machine the other has just warmed (or heated).
			modes := []string{"connect", "direct"}
			if round%2 == 1 {
				modes[0], modes[1] = modes[1], modes[0]
			}
			for _, m := range modes {
				if ctx.Err() != nil {
					return rep, nil
				}
				var r runResult
				if m == "connect" {
					r = b.connectRun(ctx, c, round)
				} else {
					r = b.directRun(ctx, c, round)
				}
				if r.Err == "" {
					logf("%-12s round %d %-7s %9.0f records/s (source %9.0f) over %.1fs; %s", c.Name, round, m, r.Rate, r.SrcRate, r.Window, cpuLine(r))
				}
				rep.Runs = append(rep.Runs, r)
			}
		}
	}
	rep.summarize()
	return rep, nil
}

func cpuLine(r runResult) string {
	var parts []string
	for _, p := range []string{cpuWorker, cpuSource, cpuSink, cpuClient, cpuBroker} {
		if us := r.usPerRecord(p); us >= 0 {
			parts = append(parts, fmt.Sprintf("%s %.2f", p, us))
		}
	}
	return "µs CPU/record: " + strings.Join(parts, ", ")
}

// buildPlugins builds the two benchmark plugins into dir.
func buildPlugins(ctx context.Context, root, dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	goBin := os.Getenv("GO")
	if goBin == "" {
		goBin = "go"
	}
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", dir+string(os.PathSeparator),
		"./perf/connectbench/plugins/gensource", "./perf/connectbench/plugins/discardsink")
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("building the plugins: %w\n%s", err, out)
	}
	return nil
}

// moduleRoot walks up from the working directory to the one holding
// Sluice's go.mod.
func moduleRoot() string {
	wd, _ := os.Getwd()
	for d := wd; ; d = filepath.Dir(d) {
		if b, err := os.ReadFile(filepath.Join(d, "go.mod")); err == nil && strings.Contains(string(b), "module github.com/sluice-io/sluice\n") {
			return d
		}
		if filepath.Dir(d) == d {
			return wd
		}
	}
}

// command is how this run was started, for the report: `make bench` when
// perf/bench.sh says so (SLUICE_BENCH_VIA), with the driver's own
// arguments, paths inside the repository made relative.
func command(root string, args []string) string {
	line := "go run ./perf/connectbench"
	for _, a := range args {
		a = strings.ReplaceAll(a, root+string(os.PathSeparator), "")
		if strings.ContainsAny(a, " \t'\"$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		line += " " + a
	}
	if via := os.Getenv("SLUICE_BENCH_VIA"); via != "" {
		line = via + "   # runs: " + line
	}
	return line
}
