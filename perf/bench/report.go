package main

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// report is everything one harness run produced; latest.json is this
// (see encodeJSON), latest.md renders it.
type report struct {
	Env         environment
	Options     map[string]any
	Limits      limits
	Workloads   []workload
	Summaries   map[string][]summary // by workload name
	Targets     []target
	Unavailable map[string]string // workload name → why it did not run
	Peers       []startedPeer
	Commands    []clientCommand
	Elapsed     float64 // seconds
	Interrupted bool
	Runs        []runRecord

	root string // repository root, stripped from paths in commands
}

// markdown renders the report; svgName is the plot file beside it.
func (r *report) markdown(svgName string) string {
	var b strings.Builder
	w := func(format string, a ...any) { fmt.Fprintf(&b, format, a...) }
	w("# Sluice benchmark, %s (%s)\n\n", strings.SplitN(r.Env.Date, "T", 2)[0], r.Env.ShortCommit)
	w("Sluice against franz-go's in-memory `kfake` and NATS JetStream, every peer a separate process on this one machine, ")
	w("client and broker sharing its cores. Each workload runs every peer in alternation (A B A B …), rounds: %v; ", r.Options["rounds"])
	w("figures are medians over the rounds, ratios come from this one run. ")
	w("Harness run took %s.", fmtDuration(r.Elapsed))
	if r.Interrupted {
		w(" **The run was interrupted; workloads after the interruption are missing.**")
	}
	w("\n\n")

	w("## Environment\n\n| | |\n|---|---|\n")
	for _, kv := range [][2]string{
		{"kernel", r.Env.Kernel}, {"CPU", fmt.Sprintf("%s, %d cores", r.Env.CPU, r.Env.Cores)}, {"memory", r.Env.MemTotal},
		{"Go", r.Env.Go}, {"sluice commit", r.Env.Commit}, {"sluice engines", r.Env.Engines},
		{"franz-go (kgo, client)", r.Env.FranzGo}, {"kfake", r.Env.Kfake},
		{"nats-server", r.Env.NatsServer}, {"nats.go", r.Env.NatsGo}, {"iperf3", orDash(r.Env.Iperf3)},
	} {
		w("| %s | %s |\n", kv[0], cell(orDash(kv[1])))
	}

	w("\n## Targets (issues 5, 6, 12, 16 and 18, Sluice on the uring engine)\n\n%s.\n\n", targetCounts(r.Targets))
	w("| workload | target | measured | verdict |\n|---|---|---|---|\n")
	for _, t := range r.Targets {
		w("| %s | %s | %s | %s |\n", t.Workload, cell(t.What), orDash(t.Got), verdictCell(t))
	}

	w("\n## Results\n\n")
	w("MB = 10^6 bytes. *spread*: (fastest − slowest) / median records/s of the rounds. *× uring*: records/s over the workload's first peer, Sluice on the uring engine ")
	w("(in the fsync workload the flush=1 broker). *CPU*: the broker process's utime+stime ")
	w("over the client's measured phase (produce, e2e: the last `seconds` the client reports before it exits, leaving its ")
	w("warm-up out; consume: the client's whole life, which reads exactly the counted records), per record and per MB moved. *RSS*: the broker's peak VmRSS, sampled every 100 ms, ")
	w("highest of the rounds. Latency: produce = send to acknowledgement; e2e = scheduled send to consumption; ")
	w("consume has none. Produce runs push as fast as the client lets them (`sluice perf` buffers up to 100,000 records ")
	w("per client, the JetStream driver keeps 8192 publishes unacknowledged), so their latency is mostly time queued in ")
	w("the client; e2e is the latency workload. rtt sends one request at a time: its records/s are requests/s, its CPU ")
	w("is per request, and its round trips per request kind are in the next section.\n\n")
	w("| workload | peer | records/s | spread | MB/s | × uring | CPU µs/rec | CPU µs/MB | peak RSS MB | p50 ms | p99 ms | p99.9 ms | runs ok | targets |\n")
	w("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|\n")
	for _, wl := range r.Workloads {
		if why, ok := r.Unavailable[wl.Name]; ok {
			w("| %s | – | unavailable: %s | | | | | | | | | | | |\n", wl.Name, cell(why))
			continue
		}
		for i, s := range r.Summaries[wl.Name] {
			tcell := ""
			if i == 0 {
				tcell = r.targetCell(wl.Name)
			}
			if s.OK == 0 {
				w("| %s | %s | error: %s | | | | | | %s | | | | 0/%d | %s |\n", wl.Name, s.Lane, cell(truncate(s.FirstErr, 160)), fmtNum(nz(s.PeakRSSMB), 0), s.Runs, tcell)
				continue
			}
			if wl.Mode == modeFailover { // its figures are failover times, see the cluster section
				w("| %s | %s | – | – | – | – | – | – | – | %s | %s | – | %d/%d | %s |\n", wl.Name, s.Lane,
					fmtNum(s.P50, 0), fmtNum(s.P99, 0), s.OK, s.Runs, tcell)
				continue
			}
			lat := [3]string{"–", "–", "–"}
			if wl.Mode != modeConsume && wl.Mode != modeRTT {
				lat = [3]string{fmtNum(s.P50, 3), fmtNum(s.P99, 3), fmtNum(s.P999, 3)}
			}
			mbps, cpuMB := fmtNum(s.MBPerS, 1), fmtNum(s.CPUPerMBUS, 0)
			if wl.Mode == modeRTT {
				mbps, cpuMB = "–", "–" // a hundred bytes a request: not a rate
			}
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %d/%d | %s |\n", wl.Name, s.Lane,
				fmtInt(s.RecordsPerS), fmtPct(s.Spread), mbps, fmtRatio(s.Ratio), fmtNum(s.CPUPerRecUS, 2), cpuMB,
				fmtNum(s.PeakRSSMB, 0), lat[0], lat[1], lat[2], s.OK, s.Runs, tcell)
		}
	}
	r.writeRTT(w)
	r.writeEngines(w)
	r.writeScrape(w)
	r.writeCompaction(w)
	r.writeCluster(w)
	r.writeLimits(w)
	if svgName != "" {
		w("\n## Plot\n\nThroughput per workload (bars scaled per workload) and e2e latency CDFs: [%s](%s)\n\n![throughput and latency](%s)\n", svgName, svgName, svgName)
	}
	w("\n## How each peer was run\n\n")
	w("- **sluice-uring / sluice-std**: `bin/sluice broker` with `--engine uring|std`, a fresh log directory, `log.level=warn`; ")
	w("the fsync workload uses separate brokers with `log.flush.interval.messages=1`.\n")
	w("- **kfake**: `perf/bench/kfakepeer`, `kfake.NewCluster` with one broker, records in memory only. After each run's topic is ")
	w("deleted it returns the freed memory to the OS (SIGUSR1, `debug.FreeOSMemory`), outside the measured window, so one run's ")
	w("records do not stay resident into the next; its RSS is that of the records it holds during the run.\n")
	w("- **jetstream**: `nats-server` with JetStream on file storage (one replica); the fsync workload uses a separate server with ")
	w("`sync_interval: always`. Driven by this harness's `js` subcommand with the same record sizes, counts and durations: ")
	w("a Kafka topic is a stream, partition *i* is subject `<topic>.p<i>`, produce is async publish with at most 8192 unacknowledged ")
	w("messages, consume is an ordered pull consumer, e2e publishes at the fixed rate with the scheduled time in each message. ")
	w("JetStream acknowledges a publish once stored and has no producer compression, so it runs only the produce workloads ")
	w("with acks=all and no compression, and not the raw fetch.\n")
	w("- Kafka peers' load client: `bin/sluice perf`, a separate process per run; each run gets a fresh topic, deleted after the run. ")
	w("Produce and e2e values are generated with `--compressibility %v` (that fraction of each value compresses away), ", compressibility)
	w("so lz4 has something to do. ")
	w("Consume workloads read one topic per peer written once before them (%s records of %d B, one partition), so it is page-cached.\n",
		fmtInt(toFloat(r.Options["fill_records"])), consumeRecordSize)

	w("\n## Commands\n\n```sh\n%s\n```\n\nPeers as started:\n\n```sh\n", r.Env.HarnessFlags)
	for _, p := range r.Peers {
		w("%s\n", shellJoin(relArgs(r.root, p.Argv)))
	}
	w("```\n\nLoad clients, first run of each workload and peer (topic names change per run):\n\n```sh\n")
	for _, c := range r.Commands {
		w("# %s\n%s\n", c.What, shellJoin(relArgs(r.root, c.Argv)))
	}
	w("```\n")
	r.writeNotes(w)
	return b.String()
}

func (r *report) writeScrape(w func(string, ...any)) {
	const name = "metrics-scrape-1KiB"
	if !slices.ContainsFunc(r.Workloads, func(wl workload) bool { return wl.Name == name }) {
		return
	}
	w("\n## /metrics scrape overhead (issue 6)\n\n")
	if why, ok := r.Unavailable[name]; ok {
		w("Unavailable: %s.\n", why)
		return
	}
	var ok, failed int
	for _, run := range r.Runs {
		if run.Workload == name {
			ok += run.Scrapes
			failed += run.ScrapeErrors
		}
	}
	paired, medians := "–", "–"
	for _, s := range r.Summaries[name] {
		if s.Lane == labelScrape {
			paired, medians = fmtNum(s.PairedRatio, 3)+"×", fmtRatio(s.Ratio)
		}
	}
	w("sluice-uring, produce 1 KiB, one partition, acks=1, alternating runs with and without an HTTP GET of `/metrics` every second: ")
	w("throughput with/without, median of the per-round ratios = **%s** (ratio of the medians: %s; %d scrapes answered, %d failed).\n",
		paired, medians, ok, failed)
	ratios := roundRatios(r.Runs, name, labelScrape, kindUring)
	if len(ratios) == 0 {
		return
	}
	parts := make([]string, len(ratios))
	for i, x := range ratios {
		parts[i] = fmtNum(x, 2)
	}
	w("\nPer round: %s.", strings.Join(parts, ", "))
	if lo, hi := slices.Min(ratios), slices.Max(ratios); hi-lo > 0.02 {
		w(" Rounds disagree by %.0f%%, far more than the 1%% the target asks about: on this machine the run-to-run noise of one "+
			"broker hides a 1%% cost, so the verdict above says more about the noise than about the scrape.", 100*(hi-lo))
	}
	w("\n")
}

// roundRatios returns lane a's records/s over lane b's for each round both
// completed, in round order.
func roundRatios(runs []runRecord, workload, a, b string) []float64 {
	byRound := map[int][2]float64{}
	var rounds []int
	for _, run := range runs {
		if run.Workload != workload || !run.ok() || (run.Lane != a && run.Lane != b) {
			continue
		}
		v, seen := byRound[run.Round]
		if !seen {
			rounds = append(rounds, run.Round)
		}
		if run.Lane == a {
			v[0] = run.Result.RecordsPerSec
		} else {
			v[1] = run.Result.RecordsPerSec
		}
		byRound[run.Round] = v
	}
	slices.Sort(rounds)
	var out []float64
	for _, rd := range rounds {
		if v := byRound[rd]; v[0] > 0 && v[1] > 0 {
			out = append(out, v[0]/v[1])
		}
	}
	return out
}

func (r *report) writeLimits(w func(string, ...any)) {
	l := r.Limits
	w("\n## Machine limits (same run)\n\n| probe | result |\n|---|--:|\n")
	w("| loopback TCP (%s) | %s MB/s |\n", orDash(l.LoopbackTool), fmtNum(nz(l.LoopbackMBs), 0))
	w("| sendfile of a page-cached file to a loopback socket | %s MB/s |\n", fmtNum(nz(l.SendfileMBs), 0))
	w("| read + write of the same file to a loopback socket | %s MB/s |\n", fmtNum(nz(l.ReadWriteMBs), 0))
	w("| sequential 1 MiB writes, no fsync | %s MB/s |\n", fmtNum(nz(l.SeqWriteMBs), 0))
	w("| 4 KiB writes, fdatasync after each | %s syncs/s (%s MB/s) |\n", fmtInt(nz(l.FdatasyncPerS)), fmtNum(nz(l.FdatasyncMBs), 1))
	for _, e := range l.Errors {
		w("\nProbe error: %s\n", e)
	}
}

func (r *report) writeNotes(w func(string, ...any)) {
	var notes []string
	for _, p := range r.Peers {
		for _, n := range p.Notes {
			notes = append(notes, fmt.Sprintf("peer %s: %s", p.Name, n))
		}
	}
	for _, run := range r.Runs {
		for _, n := range run.Notes {
			notes = append(notes, fmt.Sprintf("%s round %d %s: %s", run.Workload, run.Round, run.Lane, n))
		}
		if run.Err != "" {
			notes = append(notes, fmt.Sprintf("%s round %d %s: error: %s", run.Workload, run.Round, run.Lane, run.Err))
		} else if run.Result != nil && run.Result.Errors > 0 {
			notes = append(notes, fmt.Sprintf("%s round %d %s: client counted %d errors (first: %s)",
				run.Workload, run.Round, run.Lane, run.Result.Errors, run.Result.FirstError))
		}
	}
	if len(notes) == 0 {
		return
	}
	w("\n## Notes and errors\n\n")
	for _, n := range notes {
		w("- %s\n", cell(truncate(n, 400)))
	}
}

// targetCell sums up a workload's targets for the results table, e.g.
// "tput 1.17× pass; cpu/rec 1.30× **MISS**". Beyond a few targets (rtt
// has two per request kind) it only counts them: the targets table has
// them in full.
func (r *report) targetCell(workload string) string {
	var parts []string
	var own []target
	for _, t := range r.Targets {
		if t.Workload == workload {
			own = append(own, t)
			parts = append(parts, strings.TrimSpace(t.Short+" "+t.Got+" "+verdictCell(t)))
		}
	}
	if len(own) > maxTargetsInCell {
		return cell(targetCounts(own) + " (targets table)")
	}
	return cell(strings.Join(parts, "; "))
}

const maxTargetsInCell = 3

func verdictCell(t target) string {
	if v := t.verdict(); v != "MISS" {
		return v
	}
	return "**MISS**"
}

// cell makes text safe inside a Markdown table cell.
func cell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(s, "|", `\|`)
}

func orDash(s string) string {
	if s == "" {
		return "–"
	}
	return s
}

// nz maps "not measured" (0) to NaN for the formatters.
func nz(f float64) float64 {
	if f == 0 {
		return math.NaN()
	}
	return f
}

func fmtNum(f float64, prec int) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	if prec == 0 && f >= 1000 {
		return fmtInt(f)
	}
	return strconv.FormatFloat(f, 'f', prec, 64)
}

func fmtPct(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return strconv.FormatFloat(100*f, 'f', 0, 64) + "%"
}

func fmtRatio(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return strconv.FormatFloat(f, 'f', 2, 64) + "×"
}

// fmtInt rounds and groups thousands with commas.
func fmtInt(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	s := strconv.FormatInt(int64(math.Round(f)), 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

func fmtDuration(secs float64) string {
	m := int(secs) / 60
	return fmt.Sprintf("%dm%02ds", m, int(secs)-60*m)
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case int:
		return float64(x)
	case float64:
		return x
	}
	return math.NaN()
}

// shellJoin quotes arguments that need it, so a command can be pasted.
func shellJoin(argv []string) string {
	out := make([]string, len(argv))
	for i, a := range argv {
		if a == "" || strings.ContainsAny(a, " \t\"'$`\\|&;<>()*?[]#~!{}") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		out[i] = a
	}
	return strings.Join(out, " ")
}

// writeRTT renders the rtt workloads: one row per request kind and peer,
// each percentile the median over the rounds, with its ratio to kfake's.
func (r *report) writeRTT(w func(string, ...any)) {
	for _, wl := range r.Workloads {
		if wl.Mode != modeRTT {
			continue
		}
		w("\n## Latency at low load: %s (issue 12)\n\n", wl.Name)
		if why, ok := r.Unavailable[wl.Name]; ok {
			w("Unavailable: %s.\n", why)
			continue
		}
		w("`sluice perf rtt`: one franz-go client with one request in flight, so every request reaches an idle broker; ")
		w("each kind runs for the run's duration in turn, after a warm-up cycling through them. Produce: one 100-byte record, ")
		w("acks=all, linger 0. Fetch: one existing record from the leader, MaxWait 100 ms (never waited: the record is there). ")
		w("Metadata: the one topic. OffsetCommit: one partition, generation −1. Each figure is the median over the rounds of ")
		w("that run's percentile; *× kfake* divides by kfake's.\n\n")
		w("| request | peer | p50 ms | p99 ms | p99.9 ms | p50 × kfake | p99 × kfake |\n|---|---|--:|--:|--:|--:|--:|\n")
		sums := r.Summaries[wl.Name]
		var ref summary
		for _, s := range sums {
			if s.Lane == kindKfake {
				ref = s
			}
		}
		p50 := func(x rttRow) float64 { return x.P50 }
		p99 := func(x rttRow) float64 { return x.P99 }
		for _, kind := range rttKinds {
			for _, s := range sums {
				if _, ok := s.RTT[kind]; !ok {
					w("| %s | %s | error: %s | | | | |\n", kind, s.Lane, cell(truncate(orDash(s.FirstErr), 160)))
					continue
				}
				row := s.RTT[kind]
				w("| %s | %s | %s | %s | %s | %s | %s |\n", kind, s.Lane, fmtNum(row.P50, 3), fmtNum(row.P99, 3), fmtNum(row.P999, 3),
					fmtRatio(ratio(row.P50, ref.rttFigure(kind, p50))), fmtRatio(ratio(row.P99, ref.rttFigure(kind, p99))))
			}
		}
	}
}
