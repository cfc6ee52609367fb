// Command quorumbench measures the controller quorum of issue 17 with real
// processes on loopback: three controller-only voters (process.roles=
// controller) and three brokers (process.roles=broker), each a `sluice
// broker` from --sluice, with the quorum tests' short timers.
//
//	go run ./perf/quorumbench --sluice bin/sluice [--quick] [--kills N] [--partitions N] [--out DIR]
//
// On one cluster it measures the one-request-in-flight CreateTopics
// latency, then the controller failover (kill -9 of the active controller,
// --kills times: kill → a broker's DescribeQuorum names a new leader, kill
// → the first CreateTopics that succeeds; the killed voter is restarted and
// caught up before the next kill), then the metadata throughput (clients
// creating topics of many partitions for a fixed time: records committed
// per second by the metadata log's high watermark). On a second, fresh
// cluster it creates --partitions partitions of three replicas and stops
// and restarts brokers (SIGTERM and kill -9), timing their return. The
// report goes to DIR/quorum.md. Every process it started is stopped on
// exit, on failure and on SIGINT/SIGTERM; its temporary directory is
// removed.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

type options struct {
	sluice, out   string
	quick         bool
	kills         int
	settle        time.Duration
	latencyCalls  int
	clients       int
	topicParts    int
	window        time.Duration
	budget        int
	partitions    int
	restarts      int
	rf            int
	failoverLimit time.Duration
	catchupLimit  time.Duration
	keep          bool
	phases        map[string]bool
}

// allPhases are the measurements --phases chooses from, in run order.
var allPhases = []string{"latency", "failover", "throughput", "catchup"}

func parseFlags(args []string, root string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("quorumbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.sluice, "sluice", filepath.Join(root, "bin", "sluice"), "`path` of the sluice binary")
	fs.StringVar(&o.out, "out", filepath.Join(root, "perf", "results"), "`dir` for quorum.md")
	fs.BoolVar(&o.quick, "quick", false, "a smoke run: 3 kills, 1,000 partitions, short windows (flags given explicitly still win)")
	fs.IntVar(&o.kills, "kills", 20, "kill -9s of the active controller")
	fs.DurationVar(&o.settle, "settle", 2*time.Second, "wait after a restarted voter caught up, before the next kill")
	fs.IntVar(&o.latencyCalls, "latency-calls", 200, "CreateTopics calls, one at a time, for the latency")
	fs.IntVar(&o.clients, "clients", 4, "concurrent clients creating topics in the throughput window")
	fs.IntVar(&o.topicParts, "topic-partitions", 50, "partitions of each topic the throughput clients create")
	fs.DurationVar(&o.window, "window", 20*time.Second, "length of the throughput window")
	fs.IntVar(&o.budget, "budget", 100_000, "stop the throughput window early once this many partitions were created")
	fs.IntVar(&o.partitions, "partitions", 10_000, "partitions on the catch-up cluster")
	fs.IntVar(&o.restarts, "restarts", 1, "broker restarts of each kind (SIGTERM, kill -9) on the catch-up cluster")
	fs.IntVar(&o.rf, "rf", 3, "replication factor of every topic created")
	fs.DurationVar(&o.failoverLimit, "failover-limit", 60*time.Second, "a failover or voter rejoin not done by then is a failure")
	fs.DurationVar(&o.catchupLimit, "catchup-limit", 2*time.Minute, "a broker not back by then is a failure")
	fs.BoolVar(&o.keep, "keep", false, "keep the temporary directory (the nodes' data and logs) and print its path")
	phases := fs.String("phases", strings.Join(allPhases, ","), "the measurements to run, a comma-separated subset of "+strings.Join(allPhases, ","))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	o.phases = map[string]bool{}
	for _, ph := range strings.Split(*phases, ",") {
		if !slices.Contains(allPhases, ph) {
			return o, fmt.Errorf("--phases: unknown %q (want some of %s)", ph, strings.Join(allPhases, ","))
		}
		o.phases[ph] = true
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	if o.quick {
		set := map[string]bool{}
		fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
		quick := map[string]func(){
			"kills":         func() { o.kills = 3 },
			"latency-calls": func() { o.latencyCalls = 30 },
			"window":        func() { o.window = 5 * time.Second },
			"budget":        func() { o.budget = 20_000 },
			"partitions":    func() { o.partitions = 1000 },
		}
		for name, apply := range quick {
			if !set[name] {
				apply()
			}
		}
	}
	if o.kills < 1 || o.latencyCalls < 1 || o.clients < 1 || o.topicParts < 1 || o.window <= 0 ||
		o.partitions < 1 || o.restarts < 0 || o.rf < 1 || o.rf > numBrokers {
		return o, fmt.Errorf("want --kills, --latency-calls, --clients, --topic-partitions, --partitions ≥ 1, --window > 0, --restarts ≥ 0, 1 ≤ --rf ≤ %d", numBrokers)
	}
	return o, nil
}

func run(args []string, stdout, stderr io.Writer) int {
	root := moduleRoot()
	o, err := parseFlags(args, root, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "quorumbench: %v\n", err)
		return 2
	}
	if st, err := os.Stat(o.sluice); err != nil || st.IsDir() {
		fmt.Fprintf(stderr, "quorumbench: no sluice binary at %s (make build)\n", o.sluice)
		return 2
	}
	if o.sluice, err = filepath.Abs(o.sluice); err != nil {
		fmt.Fprintf(stderr, "quorumbench: %v\n", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	started := time.Now()
	logf := func(format string, a ...any) {
		fmt.Fprintf(stderr, "[%5.1fs] %s\n", time.Since(started).Seconds(), fmt.Sprintf(format, a...))
	}
	dir, err := os.MkdirTemp("", "sluice-quorumbench-")
	if err != nil {
		fmt.Fprintf(stderr, "quorumbench: %v\n", err)
		return 1
	}
	if o.keep {
		defer fmt.Fprintf(stderr, "quorumbench: kept %s\n", dir)
	} else {
		defer os.RemoveAll(dir)
	}

	rep := &report{Opts: o, Command: command(root, args), Env: collectEnv(root, o.sluice), Started: started}
	measureAll(ctx, o, dir, rep, logf)
	rep.Elapsed = time.Since(started)
	rep.Env.LoadEnd = loadAvg()
	if ctx.Err() != nil && rep.Err == nil {
		rep.Err = errors.New("interrupted")
	}
	path, err := rep.write(o.out)
	if err != nil {
		fmt.Fprintf(stderr, "quorumbench: %v\n", err)
		return 1
	}
	fmt.Fprint(stdout, rep.summary())
	fmt.Fprintf(stdout, "wrote %s in %.0fs\n", path, rep.Elapsed.Seconds())
	if rep.Err != nil {
		fmt.Fprintf(stderr, "quorumbench: %v\n", rep.Err)
		return 1
	}
	return 0
}

// measureAll runs the three measurements into rep, stopping at the first
// failure (rep.Err); every cluster it starts is stopped before it returns.
func measureAll(ctx context.Context, o options, dir string, rep *report, logf func(string, ...any)) {
	if o.phases["latency"] || o.phases["failover"] || o.phases["throughput"] {
		measureClusterA(ctx, o, dir, rep, logf)
	}
	if rep.Err != nil || ctx.Err() != nil || !o.phases["catchup"] {
		return
	}
	measureCatchup(ctx, o, dir, rep, logf)
}

// measureClusterA runs the latency, failover and throughput measurements
// on one cluster.
func measureClusterA(ctx context.Context, o options, dir string, rep *report, logf func(string, ...any)) {
	fail := func(what string, err error) { rep.Err = fmt.Errorf("%s: %w", what, err) }
	rf := int32(o.rf)
	a, err := newCluster(o.sluice, filepath.Join(dir, "a"), logf)
	if err != nil {
		fail("cluster", err)
		return
	}
	func() {
		defer stopCluster(a, rep, logf)
		if err := a.start(ctx); err != nil {
			fail("starting the cluster", err)
			return
		}
		if o.phases["latency"] {
			logf("CreateTopics latency: %d calls, one at a time", o.latencyCalls)
			lat, err := measureLatency(ctx, a, o.latencyCalls, 5, rf)
			rep.Latency = &lat
			if err != nil {
				fail("latency", err)
				return
			}
			logf("latency p50 %v p99 %v", ms(lat.Dist.P50), ms(lat.Dist.P99))
		}
		if o.phases["failover"] {
			fo := failoverOpts{kills: o.kills, retryEvery: 20 * time.Millisecond, reqTimeout: 500 * time.Millisecond,
				giveUp: o.failoverLimit, settle: o.settle, replicas: rf, pollInterval: 20 * time.Millisecond}
			rep.Failover = &fo
			rep.Kills, err = measureFailovers(ctx, a, fo, logf)
			if err != nil {
				fail("controller failover", err)
				return
			}
		}
		if !o.phases["throughput"] {
			return
		}
		to := throughputOpts{clients: o.clients, partitions: int32(o.topicParts), rf: rf, window: o.window, budget: o.budget}
		logf("metadata throughput: %d clients creating topics of %d partitions for %s", to.clients, to.partitions, to.window)
		tp, err := measureThroughput(ctx, a, to, logf)
		rep.Throughput = &tp
		if err != nil {
			fail("metadata throughput", err)
			return
		}
		logf("throughput: %.0f records/s, %.1f CreateTopics/s, %.0f partitions/s; brokers caught up %v after",
			tp.recsPerSec(), tp.callsPerSec(), tp.partsPerSec(), ms(tp.BrokersCaught))
	}()
}

// measureCatchup creates the partitions on a fresh cluster and restarts
// brokers.
func measureCatchup(ctx context.Context, o options, dir string, rep *report, logf func(string, ...any)) {
	fail := func(what string, err error) { rep.Err = fmt.Errorf("%s: %w", what, err) }
	rf := int32(o.rf)
	b, err := newCluster(o.sluice, filepath.Join(dir, "b"), logf)
	if err != nil {
		fail("cluster", err)
		return
	}
	defer stopCluster(b, rep, logf)
	if err := b.start(ctx); err != nil {
		fail("starting the catch-up cluster", err)
		return
	}
	logf("creating %d partitions (RF %d)", o.partitions, rf)
	setup, err := createPartitions(ctx, b, o.partitions, 100, rf, o.catchupLimit)
	rep.Setup = &setup
	if err != nil {
		fail("creating the partitions", err)
		return
	}
	logf("created in %v, listed by every broker after %v, full ISRs after %v; metadata HW %d",
		ms(setup.Create), ms(setup.Listed), ms(setup.FullISR), setup.HW)
	for i := range 2 * o.restarts {
		kill9 := i%2 == 1
		r, err := restartBroker(ctx, b, i%numBrokers, kill9, o.partitions, o.catchupLimit)
		rep.Restarts = append(rep.Restarts, r)
		if err != nil {
			fail("broker catch-up", err)
			return
		}
		logf("broker %d after %s: listening %v, unfenced %v, caught up %v, lists all partitions %v, ISRs full %v",
			r.Broker, r.Mode, ms(r.Listening), ms(r.Unfenced), ms(r.CaughtUp), ms(r.AllParts), ms(r.FullISR))
	}
}

// stopCluster stops every process of c.
func stopCluster(c *cluster, _ *report, logf func(string, ...any)) {
	if killed := c.stop(); len(killed) > 0 {
		logf("stopping the cluster: SIGKILL for %s", strings.Join(killed, ", "))
	}
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

// command is how this run was started, for the report, paths inside the
// repository made relative.
func command(root string, args []string) string {
	line := "go run ./perf/quorumbench"
	for _, a := range args {
		a = strings.ReplaceAll(a, root+string(os.PathSeparator), "")
		if strings.ContainsAny(a, " \t'\"$*?") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		line += " " + a
	}
	return line
}
