package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"
)

// report is everything one run measured, rendered to quorum.md.
type report struct {
	Opts       options
	Command    string
	Env        env
	Started    time.Time
	Elapsed    time.Duration
	Latency    *latencyResult
	Failover   *failoverOpts
	Kills      []killResult
	Throughput *throughputResult
	Setup      *setupResult
	Restarts   []restartResult
	Err        error
}

// env is the machine and the build the run measured.
type env struct {
	Cores              int
	CPU, Kernel, Go    string
	Commit             string
	Binary             string
	LoadStart, LoadEnd string
}

func collectEnv(root, sluice string) env {
	e := env{Cores: runtime.NumCPU(), Go: runtime.Version(), LoadStart: loadAvg()}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		e.Kernel = strings.TrimSpace(string(b))
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				e.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	cmd := exec.Command("git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	if out, err := cmd.Output(); err == nil {
		e.Commit = strings.TrimSpace(string(out))
	}
	e.Binary = strings.ReplaceAll(sluice, root+string(os.PathSeparator), "")
	if st, err := os.Stat(sluice); err == nil {
		e.Binary += fmt.Sprintf(" (built %s)", st.ModTime().UTC().Format("2006-01-02 15:04 MST"))
	}
	return e
}

// loadAvg is /proc/loadavg's 1-, 5- and 15-minute averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// write renders the report to dir/quorum.md.
func (r *report) write(dir string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, "quorum.md")
	return path, os.WriteFile(path, r.markdown(), 0o644)
}

func (r *report) markdown() []byte {
	var b bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	p("# Controller quorum: failover, metadata throughput, broker catch-up\n\n")
	p("Issue 17's controller quorum measured with real processes on loopback: three controller-only voters (`process.roles=controller`, node ids 1-3) and three brokers (`process.roles=broker`, ids 4-6), each a `sluice broker` process.\n\n")
	p("```\n%s\n```\n\n", r.Command)
	if r.Err != nil {
		p("**The run failed:** %s\n\n", firstLine(r.Err.Error()))
		p("<details><summary>the error in full, with the nodes' last log lines</summary>\n\n```\n%s\n```\n</details>\n\n", r.Err)
	}
	p("## Machine and settings\n\n")
	p("| | |\n|---|---|\n")
	p("| machine | %d cores (%s), Linux %s |\n", r.Env.Cores, r.Env.CPU, r.Env.Kernel)
	p("| load average (1, 5, 15 min) | %s at the start, %s at the end |\n", r.Env.LoadStart, r.Env.LoadEnd)
	p("| build | %s; the repository was at commit %s; bench built with %s |\n", r.Env.Binary, r.Env.Commit, r.Env.Go)
	p("| date, duration | %s, %.0f s |\n", r.Started.UTC().Format("2006-01-02 15:04 MST"), r.Elapsed.Seconds())
	p("| every node | `%s`, `admin.listener=`, log level info |\n", strings.Join(timerSets, "`, `"))
	p("| quorum timers | the first voter in line (the metadata ISR by voter id) takes over after `controller.quorum.fetch.timeout.ms` (default 2 s) without a lease renewal, plus a random backoff under a quarter of the lease, each next one two backoffs later; lease two thirds of the timeout, renewed every third of the lease; the deposed controller leaves the metadata ISR at the takeover, another dead voter after 1 s |\n")
	p("| topics created | replication factor %d, spread over the three brokers |\n\n", r.Opts.rf)

	r.failoverSection(&b)
	r.throughputSection(&b)
	r.catchupSection(&b)
	return b.Bytes()
}

func (r *report) failoverSection(b *bytes.Buffer) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## 1. Controller failover (kill -9 of the active controller)\n\n")
	if r.Failover == nil {
		p("Not measured.\n\n")
		return
	}
	f := r.Failover
	p("%d of %d kills done. Each kill: the active controller, as broker 4's DescribeQuorum names it, gets SIGKILL by its pid; from that moment every broker is asked DescribeQuorum every %v (each request with a %v timeout) until it names another leader, and a CreateTopics (1 partition, RF %d, a %v timeout) goes to one broker (4, 5, 6 in turn) every %v after the previous attempt ended, until one succeeds. Then the killed voter is started again with its data, and the next kill waits until DescribeQuorum shows its log end at the leader's high watermark, plus %v.\n\n",
		len(r.Kills), r.Opts.kills, f.pollInterval, f.reqTimeout, f.replicas, f.reqTimeout, f.retryEvery, f.settle)
	if len(r.Kills) == 0 {
		return
	}
	var leader, all, create, rejoin []time.Duration
	for _, k := range r.Kills {
		leader, all, create, rejoin = append(leader, k.Leader), append(all, k.AllLeader), append(create, k.Create), append(rejoin, k.Rejoin)
	}
	p("| from the kill to | n | p50 | p99 | max |\n|---|---:|---:|---:|---:|\n")
	row := func(name string, ds []time.Duration) {
		d := summarize(ds)
		p("| %s | %d | %s | %s | %s |\n", name, d.N, fmtDur(d.P50), fmtDur(d.P99), fmtDur(d.Max))
	}
	row("(a) a broker's DescribeQuorum names the new leader", leader)
	row("(a′) all three brokers' do", all)
	row("(b) the first successful CreateTopics", create)
	row("the restarted voter caught up (from its start)", rejoin)
	if len(r.Kills) < 100 {
		p("\np50 and p99 are nearest-rank: with fewer than 100 kills p99 is the largest sample, the same as max.\n\n")
	}
	p("<details><summary>every kill</summary>\n\n")
	p("| # | killed (epoch) | new leader (epoch) | (a) | (a′) | (b) | attempts | failed attempts got | voter back | brokers fenced | last broker to name it |\n|---:|---|---|---:|---:|---:|---:|---|---:|---:|---|\n")
	fenced := 0
	for _, k := range r.Kills {
		p("| %d | %d (%d) | %d (%d) | %s | %s | %s | %d | %s | %s | %d | %s |\n", k.Index, k.Killed, k.Epoch, k.NewLeader, k.NewEpoch,
			fmtDur(k.Leader), fmtDur(k.AllLeader), fmtDur(k.Create), k.Attempts, k.Failures, fmtDur(k.Rejoin), k.Fencings, k.Slowest)
		fenced += k.Fencings
	}
	p("\n</details>\n\n")
	p("\"failed attempts got\" counts what the CreateTopics attempts before the successful one got (`timeout`: no answer within the attempt's timeout); \"brokers fenced\" counts the sessions the controllers expired between the kill and the voter's return (%d over all kills), from their logs; \"last broker to name it\" is the broker whose DescribeQuorum named the new leader last and what its earlier answers were (`timeout`: none within 500 ms; `leader N`: still the killed one).\n\n", fenced)
}

func (r *report) throughputSection(b *bytes.Buffer) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## 2. Metadata throughput and CreateTopics latency\n\n")
	if l := r.Latency; l != nil {
		p("**One request in flight** (what an idle user feels): %d CreateTopics of 1 partition, RF %d, one after the other through broker 4 (which forwards to the active controller), after 5 unmeasured; measured on the fresh cluster, first.\n\n", l.Calls, r.Opts.rf)
		p("| calls | failed | p50 | p99 | max |\n|---:|---:|---:|---:|---:|\n| %d | %d | %s | %s | %s |\n\n", l.Calls, l.Errors, fmtDur(l.Dist.P50), fmtDur(l.Dist.P99), fmtDur(l.Dist.Max))
	}
	t := r.Throughput
	if t == nil {
		p("Throughput not measured.\n\n")
		return
	}
	p("**Throughput**: %d clients, each on its own connection to one broker (4, 5, 6, 4, …), create topics of %d partitions, RF %d, back to back for %v (same cluster, after the measurements above). Records are counted by the metadata log's high watermark (DescribeQuorum) from before the first call to after the last answer; \"records/call\" is that count over the successful calls, what one topic of that many partitions commits.\n\n",
		t.Clients, t.PartsPerTopic, t.RF, r.Opts.window)
	perCall := 0.0
	if ok := t.Calls - t.Errors; ok > 0 {
		perCall = float64(t.Records) / float64(ok)
	}
	p("| wall | CreateTopics | failed | partitions | records committed | records/call | **records/s** | CreateTopics/s | partitions/s | idle records/s | brokers applied all | brokers fenced |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	p("| %.1f s | %d | %d | %d | %d | %.1f | **%.0f** | %.1f | %.0f | %.1f | %s after the last answer | %d |\n\n",
		t.Wall.Seconds(), t.Calls, t.Errors, t.Partitions, t.Records, perCall, t.recsPerSec(), t.callsPerSec(), t.partsPerSec(), t.IdleRecordsSec, fmtDur(t.BrokersCaught), t.Fencings)
	if t.Errors > 0 {
		p("Failed calls (retried with the same name): %s.\n\n", t.Failures)
	}
	if t.WarmFailures != "-" && t.WarmFailures != "" {
		p("Before the window each client's connection made one CreateTopics of 1 partition, retried until it succeeded; the failed tries got %s (a broker whose link to the controller still held a connection from before a failover answers that forward with REQUEST_TIMED_OUT; clients retry).\n\n", t.WarmFailures)
	}
	if t.BudgetHit {
		p("The window ended early: the clients had created the %d partitions of `--budget`.\n\n", r.Opts.budget)
	}
	p("\"idle records/s\" is the high watermark's growth over 2 s with no client (none expected: heartbeats change nothing); \"brokers applied all\" is how long after the last answer every broker's heartbeat reported a metadata offset at the final high watermark.\n\n")
}

func (r *report) catchupSection(b *bytes.Buffer) {
	p := func(format string, a ...any) { fmt.Fprintf(b, format, a...) }
	p("## 3. Broker catch-up with %d partitions\n\n", r.Opts.partitions)
	s := r.Setup
	if s == nil {
		p("Not measured.\n\n")
		return
	}
	p("A fresh cluster. %d topics totalling %d partitions, RF %d (every broker holds a replica of each: %d replicas per broker), created by 4 concurrent clients in %s; every broker's Metadata listed them all %s after the first call, every ISR was full after %s; the metadata log's high watermark was then %d; %d broker sessions expired meanwhile.\n\n",
		s.Topics, s.Partitions, s.RF, s.Partitions*int(s.RF)/numBrokers, fmtDur(s.Create), fmtDur(s.Listed), fmtDur(s.FullISR), s.HW, s.Fencings)
	p("Each round stops one broker (SIGTERM: a clean shutdown, timed to its exit; or kill -9), waits until another broker's Metadata no longer lists it (fenced: after a kill -9 that is the %s session), then starts it again with its data. Times are from the new process's start:\n\n", "3 s")
	p("- **listening**: its `broker listening` log line;\n- **unfenced**: another broker's Metadata lists it;\n- **caught up**: DescribeQuorum (through another broker) lists it as an observer whose heartbeat, sent after the restart, reports a metadata offset at least the leader's high watermark at the restart;\n- **ready** = the later of the two, (b) of the brief;\n- **lists all**: its own Metadata lists all %d partitions;\n- **ISRs full**: another broker's Metadata shows every partition's ISR with all its replicas (\"full before\" says how many were when it restarted: a clean shutdown may keep it in the ISRs);\n- **others fenced**: sessions of the other brokers the controllers expired from the stop to the end of the round, from their logs (a broker whose heartbeats are not answered for 3 s is fenced and its leaderships move).\n\n", s.Partitions)
	if len(r.Restarts) == 0 {
		return
	}
	p("| broker | stop | shutdown | full before | listening | unfenced | caught up | **ready** | lists all | ISRs full | others fenced |\n|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, x := range r.Restarts {
		shut := "-"
		if x.Shutdown > 0 {
			shut = fmtDur(x.Shutdown)
		}
		p("| %d | %s | %s | %d | %s | %s | %s | **%s** | %s | %s | %d |\n", x.Broker, x.Mode, shut, x.ISRBefore,
			fmtDur(x.Listening), fmtDur(x.Unfenced), fmtDur(x.CaughtUp), fmtDur(x.Ready), fmtDur(x.AllParts), fmtDur(x.FullISR), x.Fencings)
	}
	p("\n")
}

// summary is the short version for the terminal.
func (r *report) summary() string {
	var b strings.Builder
	if len(r.Kills) > 0 {
		var leader, create []time.Duration
		for _, k := range r.Kills {
			leader, create = append(leader, k.Leader), append(create, k.Create)
		}
		l, c := summarize(leader), summarize(create)
		fmt.Fprintf(&b, "  failover (%d kills): new leader p50 %s p99 %s max %s; CreateTopics p50 %s p99 %s max %s\n",
			l.N, fmtDur(l.P50), fmtDur(l.P99), fmtDur(l.Max), fmtDur(c.P50), fmtDur(c.P99), fmtDur(c.Max))
	}
	if r.Latency != nil {
		fmt.Fprintf(&b, "  CreateTopics latency: p50 %s p99 %s\n", fmtDur(r.Latency.Dist.P50), fmtDur(r.Latency.Dist.P99))
	}
	if t := r.Throughput; t != nil && t.Wall > 0 {
		fmt.Fprintf(&b, "  throughput: %.0f records/s, %.1f CreateTopics/s, %.0f partitions/s\n", t.recsPerSec(), t.callsPerSec(), t.partsPerSec())
	}
	for _, x := range r.Restarts {
		fmt.Fprintf(&b, "  broker %d after %s: listening %s, ready %s, lists all %s, ISRs full %s\n",
			x.Broker, x.Mode, fmtDur(x.Listening), fmtDur(x.Ready), fmtDur(x.AllParts), fmtDur(x.FullISR))
	}
	return b.String()
}

// fmtDur prints a duration in ms below 10 s, else in seconds; zero is "-"
// (not reached).
func fmtDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond))
	case d < 10*time.Second:
		return fmt.Sprintf("%d ms", d.Round(time.Millisecond).Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}
