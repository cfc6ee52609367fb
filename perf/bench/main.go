// Command bench is the side-by-side benchmark behind `make bench`: it
// starts Sluice (uring and std engines), franz-go's in-memory kfake and
// NATS JetStream as separate processes, measures the machine's limits, runs
// every workload against every peer in alternation, and writes a Markdown
// report, the raw results as JSON and an SVG plot.
//
//	go run ./perf/bench [--quick] [--rounds N] [--duration D] [--only REGEX] [--peers LIST] [--out DIR]
//
// `bench js produce|consume|e2e` is the JetStream load client the harness
// runs as a separate process; its flags mirror `sluice perf`.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// options are the harness's flags after defaults are filled in.
type options struct {
	quick          bool
	run            runOpts
	only           *regexp.Regexp
	kinds          []string
	out            string
	limitsDuration time.Duration
	tools          tools
	render         string
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "js" {
		return runJetStream(args[1:], stdout, stderr)
	}
	wd, _ := os.Getwd()
	root := moduleRoot(wd)
	opts, err := parseFlags(args, root, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 2
	}
	if opts.render != "" {
		return rerender(opts.render, opts.out, root, stdout, stderr)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		stop() // a second Ctrl-C kills the harness; its children die with it (Pdeathsig)
	}()
	started := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%s] %s\n", fmtDuration(time.Since(started).Seconds()), fmt.Sprintf(format, a...))
	}
	base, err := os.MkdirTemp("", "sluice-bench-")
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	defer os.RemoveAll(base)
	if err := resolveTools(ctx, &opts.tools, root, base, logf); err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}

	ws := selectWorkloads(allWorkloads(), opts.quick, opts.only, opts.kinds)
	if len(ws) == 0 {
		fmt.Fprintln(stderr, "bench: no workload left after --quick/--only/--peers")
		return 2
	}
	env := collectEnv(ctx, root, opts.tools)
	env.HarnessFlags = harnessCommand(root, args)
	logf("sluice %s, %d workloads, %d rounds, %s per run", env.ShortCommit, len(ws), opts.run.Rounds, opts.run.Duration)

	lim := measureLimits(ctx, base, opts.tools.Iperf3, opts.limitsDuration, logf)

	ps := newPeerSet(opts.tools, base, logf)
	defer ps.stopAll()
	rn := newRunner(opts.run, opts.tools, ps, logf)
	lastUse := map[string]int{}
	for i, w := range ws {
		for _, l := range w.Lanes {
			lastUse[l.Peer] = i
		}
	}
	for i, w := range ws {
		if ctx.Err() != nil {
			break
		}
		rn.runWorkload(ctx, w)
		// Peers no later workload needs stop now, so their memory and
		// background work do not weigh on the rest.
		for name, last := range lastUse {
			if last == i {
				ps.stop(name)
			}
		}
	}
	ps.stopAll()

	rep := &report{
		Env: env, Limits: lim, Workloads: ws, Summaries: map[string][]summary{},
		Unavailable: rn.unavailable, Peers: ps.started(), Commands: rn.commands, Runs: rn.runs,
		Elapsed: time.Since(started).Seconds(), Interrupted: ctx.Err() != nil,
		Options: map[string]any{"quick": opts.quick, "rounds": opts.run.Rounds, "duration": opts.run.Duration.String(),
			"warmup": opts.run.Warmup.String(), "fill_records": opts.run.FillRecords, "peers": opts.kinds,
			"limits_duration": opts.limitsDuration.String()},
	}
	finish(rep, root)
	paths, err := writeReport(rep, opts.out)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "targets: %s\n", targetCounts(rep.Targets))
	for _, t := range rep.Targets {
		fmt.Fprintf(stdout, "  %-5s %-28s %-60s %s\n", t.verdict(), t.Workload, t.What, t.Got)
	}
	for _, x := range engineRatios(rep) {
		if x.Ratio < 1 {
			fmt.Fprintf(stdout, "  uring < std  %-28s %-20s %.3f× (explain in the report)\n", x.Workload, x.Figure, x.Ratio)
		}
	}
	fmt.Fprintf(stdout, "wrote %s in %s\n", strings.Join(paths, ", "), fmtDuration(rep.Elapsed))
	if rep.Interrupted {
		return 130
	}
	return 0
}

func parseFlags(args []string, root string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.BoolVar(&o.quick, "quick", false, "a few workloads with short runs (under 5 minutes)")
	o.run.Quick = o.quick // set again after Parse
	fs.StringVar(&o.render, "render", "", "re-render the report of an earlier run from its latest.json `file` into --out, running nothing")
	fs.IntVar(&o.run.Rounds, "rounds", 3, "rounds per workload; each round runs every peer once, in alternation (the /metrics pair: at least 6)")
	dur := fs.String("duration", "", "measured `time` per run (default 4s, 1.5s with --quick)")
	warm := fs.String("warmup", "", "unmeasured `time` at the start of each run (default 1s, 500ms with --quick)")
	only := fs.String("only", "", "run only workloads whose name matches this `regexp`")
	peers := fs.String("peers", strings.Join(allKinds, ","), "comma-separated peers to run")
	fs.StringVar(&o.out, "out", filepath.Join(root, "perf", "results"), "`dir` for latest.md, latest.json, latest.svg and the dated copy")
	fs.IntVar(&o.run.FillRecords, "fill-records", 0, "records of 1 KiB pre-filled per peer for the consume workloads (default 2000000, 500000 with --quick)")
	limDur := fs.String("limits-duration", "", "`time` per machine-limit probe (default 3s, 1s with --quick)")
	fs.StringVar(&o.tools.Sluice, "sluice", filepath.Join(root, "bin", "sluice"), "`path` of the sluice binary (make build)")
	fs.StringVar(&o.tools.Kfake, "kfake", filepath.Join(root, "perf", ".tools", "kfakepeer"), "kfake peer binary; built from perf/bench/kfakepeer when missing")
	fs.StringVar(&o.tools.NatsServer, "nats-server", filepath.Join(root, "perf", ".tools", "nats-server"), "nats-server binary; looked up in PATH when missing")
	fs.StringVar(&o.tools.Iperf3, "iperf3", "iperf3", "iperf3 binary for the loopback limit; \"none\" or missing uses the built-in probe")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: go run ./perf/bench [flags]\n\nRuns Sluice, kfake and JetStream side by side and writes a report (see perf/bench.sh, make bench).\n\nflags:\n")
		fs.PrintDefaults()
		fmt.Fprintf(stderr, "\nworkloads (--quick runs those marked *):\n")
		for _, w := range allWorkloads() {
			mark := " "
			if slices.Contains(quickNames, w.Name) {
				mark = "*"
			}
			fmt.Fprintf(stderr, "  %s %s\n", mark, w.Name)
		}
	}
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o.run.Quick = o.quick
	pick := func(s string, full, quick time.Duration) (time.Duration, error) {
		if s == "" {
			if o.quick {
				return quick, nil
			}
			return full, nil
		}
		return time.ParseDuration(s)
	}
	var err error
	if o.run.Duration, err = pick(*dur, 4*time.Second, 1500*time.Millisecond); err != nil || o.run.Duration <= 0 {
		return o, fmt.Errorf("--duration %q: want a positive duration", *dur)
	}
	if o.run.Warmup, err = pick(*warm, time.Second, 500*time.Millisecond); err != nil || o.run.Warmup < 0 {
		return o, fmt.Errorf("--warmup %q: want a duration ≥ 0", *warm)
	}
	if o.limitsDuration, err = pick(*limDur, 3*time.Second, time.Second); err != nil || o.limitsDuration <= 0 {
		return o, fmt.Errorf("--limits-duration %q: want a positive duration", *limDur)
	}
	if o.run.FillRecords == 0 {
		o.run.FillRecords = 2_000_000
		if o.quick {
			o.run.FillRecords = 500_000
		}
	}
	if o.run.Rounds < 1 {
		return o, fmt.Errorf("--rounds %d: want ≥ 1", o.run.Rounds)
	}
	if *only != "" {
		if o.only, err = regexp.Compile(*only); err != nil {
			return o, fmt.Errorf("--only: %w", err)
		}
	}
	for _, k := range strings.Split(*peers, ",") {
		k = strings.TrimSpace(k)
		if k == "" {
			continue
		}
		if !slices.Contains(allKinds, k) {
			return o, fmt.Errorf("--peers: unknown peer %q (have %s)", k, strings.Join(allKinds, ", "))
		}
		o.kinds = append(o.kinds, k)
	}
	return o, nil
}

// resolveTools checks the binaries, builds the kfake peer when it is
// missing and finds the JetStream driver (this binary).
func resolveTools(ctx context.Context, t *tools, root, base string, logf func(string, ...any)) error {
	if _, err := os.Stat(t.Sluice); err != nil {
		return fmt.Errorf("sluice binary: %w (run make build, or pass --sluice)", err)
	}
	if _, err := os.Stat(t.Kfake); err != nil {
		out := filepath.Join(base, "kfakepeer")
		logf("building the kfake peer (%s missing)", t.Kfake)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "./perf/bench/kfakepeer")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			return fmt.Errorf("build kfake peer: %v: %s", err, b)
		}
		t.Kfake = out
	}
	if _, err := os.Stat(t.NatsServer); err != nil {
		if p, lerr := exec.LookPath("nats-server"); lerr == nil {
			t.NatsServer = p
		} else {
			logf("nats-server not found at %s nor in PATH: JetStream peers will fail (perf/bench.sh installs it)", t.NatsServer)
			t.NatsServer = ""
		}
	}
	if t.Iperf3 == "none" {
		t.Iperf3 = ""
	} else if p, err := exec.LookPath(t.Iperf3); err == nil {
		t.Iperf3 = p
	} else {
		t.Iperf3 = ""
	}
	self, err := os.Executable()
	if err != nil {
		return fmt.Errorf("find own binary for the JetStream driver: %w", err)
	}
	t.Self = self
	return nil
}

// finish derives the summaries and targets from the runs.
func finish(rep *report, root string) {
	rep.Summaries = map[string][]summary{}
	for _, w := range rep.Workloads {
		rep.Summaries[w.Name] = summarize(w, rep.Runs)
	}
	rep.Targets = evalTargets(rep.Workloads, rep.Summaries, rep.Limits)
	rep.root = root
}

// rerender rebuilds a report from the raw runs of an earlier latest.json,
// so a change to the report's layout needs no new measurement.
func rerender(path, out, root string, stdout, stderr io.Writer) int {
	b, err := os.ReadFile(path)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	var in struct {
		Env         environment       `json:"environment"`
		Options     map[string]any    `json:"options"`
		Limits      limits            `json:"limits"`
		Elapsed     float64           `json:"elapsed_seconds"`
		Interrupted bool              `json:"interrupted"`
		Unavailable map[string]string `json:"unavailable"`
		Workloads   []workload        `json:"workloads"`
		Peers       []startedPeer     `json:"peers"`
		Commands    []clientCommand   `json:"client_commands"`
		Runs        []runRecord       `json:"runs"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		fmt.Fprintf(stderr, "bench: decode %s: %v\n", path, err)
		return 1
	}
	rep := &report{Env: in.Env, Options: in.Options, Limits: in.Limits, Elapsed: in.Elapsed, Interrupted: in.Interrupted,
		Unavailable: in.Unavailable, Workloads: in.Workloads, Peers: in.Peers, Commands: in.Commands, Runs: in.Runs}
	finish(rep, root)
	paths, err := writeReport(rep, out)
	if err != nil {
		fmt.Fprintf(stderr, "bench: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "targets: %s\nwrote %s\n", targetCounts(rep.Targets), strings.Join(paths, ", "))
	return 0
}

// harnessCommand is how this run was started, for the report.
func harnessCommand(root string, args []string) string {
	cmd := "go run ./perf/bench"
	if exe, err := os.Executable(); err == nil && strings.HasPrefix(exe, root+string(os.PathSeparator)) {
		cmd = strings.TrimPrefix(exe, root+string(os.PathSeparator))
	}
	line := cmd
	if len(args) > 0 {
		line += " " + shellJoin(relArgs(root, args))
	}
	if via := os.Getenv("SLUICE_BENCH_VIA"); via != "" {
		line = via + "   # runs: " + line
	}
	return line
}

// relArgs shortens paths inside the repository to repository-relative.
func relArgs(root string, argv []string) []string {
	if root == "" {
		return argv
	}
	out := make([]string, len(argv))
	for i, a := range argv {
		out[i] = strings.ReplaceAll(a, root+string(os.PathSeparator), "")
	}
	return out
}

// encodeJSON writes one top-level field per line, and lists one element
// per line: fully indented, the latency CDFs would make the file several
// times longer and no easier to read or diff.
func encodeJSON(r *report) ([]byte, error) {
	var sums []summary
	for _, w := range r.Workloads {
		sums = append(sums, r.Summaries[w.Name]...)
	}
	var b bytes.Buffer
	b.WriteString("{")
	first := true
	field := func(key string, v any) error {
		enc, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "\n  %q: %s", key, enc)
		return nil
	}
	list := func(key string, items []json.RawMessage) {
		if !first {
			b.WriteByte(',')
		}
		first = false
		fmt.Fprintf(&b, "\n  %q: [", key)
		for i, it := range items {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString("\n    ")
			b.Write(it)
		}
		b.WriteString("\n  ]")
	}
	for _, f := range []struct {
		key string
		v   any
	}{{"environment", r.Env}, {"options", r.Options}, {"limits", r.Limits}, {"elapsed_seconds", r.Elapsed},
		{"interrupted", r.Interrupted}, {"unavailable", r.Unavailable}} {
		if err := field(f.key, f.v); err != nil {
			return nil, err
		}
	}
	for _, f := range []struct {
		key   string
		items func() ([]json.RawMessage, error)
	}{
		{"targets", func() ([]json.RawMessage, error) { return rawItems(r.Targets) }},
		{"summaries", func() ([]json.RawMessage, error) { return rawItems(sums) }},
		{"workloads", func() ([]json.RawMessage, error) { return rawItems(r.Workloads) }},
		{"peers", func() ([]json.RawMessage, error) { return rawItems(r.Peers) }},
		{"client_commands", func() ([]json.RawMessage, error) { return rawItems(r.Commands) }},
		{"runs", func() ([]json.RawMessage, error) { return rawItems(r.Runs) }},
	} {
		items, err := f.items()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f.key, err)
		}
		list(f.key, items)
	}
	b.WriteString("\n}\n")
	return b.Bytes(), nil
}

func rawItems[T any](xs []T) ([]json.RawMessage, error) {
	out := make([]json.RawMessage, len(xs))
	for i, x := range xs {
		b, err := json.Marshal(x)
		if err != nil {
			return nil, err
		}
		out[i] = b
	}
	return out, nil
}

// writeReport writes latest.{md,json,svg} and a dated copy of the
// Markdown and the plot; an interrupted run writes interrupted.* instead.
func writeReport(r *report, dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results dir: %w", err)
	}
	js, err := encodeJSON(r)
	if err != nil {
		return nil, fmt.Errorf("encode results: %w", err)
	}
	svg := svgPlot(r)
	dated := fmt.Sprintf("%s-%s", strings.SplitN(r.Env.Date, "T", 2)[0], r.Env.ShortCommit)
	files := []struct {
		name string
		data []byte
	}{
		{"latest.json", js},
		{"latest.svg", svg},
		{"latest.md", []byte(r.markdown("latest.svg"))},
		{dated + ".svg", svg},
		{dated + ".md", []byte(r.markdown(dated + ".svg"))},
	}
	if r.Interrupted {
		// A cut-short run must not replace the last complete report.
		files = files[:3]
		for i, n := range []string{"interrupted.json", "interrupted.svg", "interrupted.md"} {
			files[i].name = n
		}
		files[2].data = []byte(r.markdown("interrupted.svg"))
	}
	var paths []string
	for _, f := range files {
		p := filepath.Join(dir, f.name)
		if err := os.WriteFile(p, f.data, 0o644); err != nil {
			return paths, fmt.Errorf("write %s: %w", p, err)
		}
		paths = append(paths, p)
	}
	return paths, nil
}
