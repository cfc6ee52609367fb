package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Issue 18 says the log cleaner is paced and never blocks appends. These
// two workloads show it: the same keyed load on a topic with
// cleanup.policy=delete, and on a compacted one whose small segments and
// low dirty ratio keep the cleaner busy for the whole run. Both topics
// roll 16 MiB segments, so the cleaner is the only difference.
const (
	keyedWorkload     = "produce-1KiB-keyed"
	compactedWorkload = "produce-1KiB-compacted"
	// compactionKeys: 1000 keys of 1 KiB make the cleaned log about 1 MB,
	// so every 16 MiB segment rolled is almost all dirty.
	compactionKeys = 1000
	// compactionDuration: the cleaner sleeps log.cleaner.backoff.ms (15 s
	// by default) when no log is due, and its first pass after the sleep
	// takes all that was written meanwhile (seconds of work at a few
	// hundred MB/s), so a run must last several back-offs for several
	// passes to land inside the measured window.
	compactionDuration = 60 * time.Second
	// compactedFloor is issue 18's target: produce on a partition while
	// its cleaner runs ≥ 0.9× without the cleaner.
	compactedFloor = 0.9
)

const compactionSegmentBytes = "segment.bytes=16777216"

func compactionWorkloads() []workload {
	pair := func(name string, topicConfig ...string) workload {
		return workload{Name: name, Mode: modeProduce, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none",
			Keys: compactionKeys, TopicConfig: topicConfig, MinDuration: compactionDuration,
			Lanes: []lane{kindLane(kindUring), kindLane(kindStd)}}
	}
	return []workload{
		pair(keyedWorkload, "cleanup.policy=delete", compactionSegmentBytes),
		pair(compactedWorkload, "cleanup.policy=compact", compactionSegmentBytes, "min.cleanable.dirty.ratio=0.1"),
	}
}

// cleanerDelta is what the broker's cleaner did during one run: the
// change of its sluice_log_cleaner_* counters on the admin listener's
// /metrics, broker-wide.
type cleanerDelta struct {
	Runs      float64 `json:"runs"`
	Failures  float64 `json:"failures"`
	ReadMB    float64 `json:"read_mb"`
	WrittenMB float64 `json:"written_mb"`
	Dropped   float64 `json:"dropped_records"`
}

// cleanerCounterNames are the counters cleanerDelta is made of.
var cleanerCounterNames = []string{
	"sluice_log_cleaner_runs_total", "sluice_log_cleaner_failures_total",
	"sluice_log_cleaner_read_bytes_total", "sluice_log_cleaner_written_bytes_total",
	"sluice_log_cleaner_dropped_records_total",
}

func cleanerDeltaOf(before, after map[string]float64) *cleanerDelta {
	d := func(name string) float64 { return after[name] - before[name] }
	return &cleanerDelta{
		Runs:      d("sluice_log_cleaner_runs_total"),
		Failures:  d("sluice_log_cleaner_failures_total"),
		ReadMB:    d("sluice_log_cleaner_read_bytes_total") / 1e6,
		WrittenMB: d("sluice_log_cleaner_written_bytes_total") / 1e6,
		Dropped:   d("sluice_log_cleaner_dropped_records_total"),
	}
}

// cleanerCounters reads the cleaner's counters from a broker's /metrics.
// A broker without them (built before the cleaner) is an error, so the
// report says the passes were not counted rather than that none ran.
func cleanerCounters(ctx context.Context, adminAddr string) (map[string]float64, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+adminAddr+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /metrics: status %s", resp.Status)
	}
	m, err := parseCounters(resp.Body, cleanerCounterNames)
	if err != nil {
		return nil, fmt.Errorf("GET /metrics: %w", err)
	}
	return m, nil
}

// cleanerCountersSoon is cleanerCounters retried for a few seconds: a
// peer just started answers Kafka requests a moment before its admin
// listener is up.
func cleanerCountersSoon(ctx context.Context, adminAddr string) (map[string]float64, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, err := cleanerCounters(ctx, adminAddr)
		if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
			return m, err
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// parseCounters takes the unlabelled samples of the named metrics from a
// Prometheus text exposition; every name must be there.
func parseCounters(r io.Reader, names []string) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || !slices.Contains(names, f[0]) {
			continue
		}
		v, err := strconv.ParseFloat(f[1], 64)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", f[0], err)
		}
		out[f[0]] = v
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	for _, n := range names {
		if _, ok := out[n]; !ok {
			return nil, fmt.Errorf("no %s (a broker without the log cleaner?)", n)
		}
	}
	return out, nil
}

// compactionTarget is issue 18's line: sluice-uring's records/s on the
// compacted topic over the keyed one, and whether the cleaner really ran
// in every compacted run (a ratio measured without it proves nothing).
func compactionTarget(find func(w, label string) (summary, bool)) target {
	t := target{Workload: compactedWorkload, Short: "vs keyed",
		What: fmt.Sprintf("produce while the cleaner runs ≥ %.1f× the same keyed load on a delete-policy topic (records/s), cleaner passes in every run", compactedFloor)}
	c, okC := find(compactedWorkload, kindUring)
	k, okK := find(keyedWorkload, kindUring)
	if !okC || !okK {
		return t
	}
	r := ratio(c.RecordsPerS, k.RecordsPerS)
	if math.IsNaN(r) {
		return t
	}
	passes := "cleaner passes not counted"
	ran := false
	if len(c.CleanerRuns) > 0 {
		lo := slices.Min(c.CleanerRuns)
		passes, ran = fmt.Sprintf("≥ %.0f cleaner passes per run", lo), lo > 0 && len(c.CleanerRuns) == c.OK
	}
	t.Got, t.Pass = fmt.Sprintf("%.3f× (%s)", r, passes), r >= compactedFloor && ran
	return t
}

// writeCompaction is the report's section on the pair: per engine, the
// compacted run's figures beside the keyed one's and what the cleaner did.
func (r *report) writeCompaction(w func(string, ...any)) {
	if !slices.ContainsFunc(r.Workloads, func(wl workload) bool { return wl.Name == compactedWorkload }) {
		return
	}
	w("\n## Produce while the cleaner runs (issue 18)\n\n")
	w("The same load twice: 1 KiB records with %d keys in turn, one partition, acks=all, %s runs; first on a topic with ", compactionKeys, compactionDuration)
	w("`cleanup.policy=delete`, then on one with `cleanup.policy=compact`, `min.cleanable.dirty.ratio=0.1`, both with `%s`, ", compactionSegmentBytes)
	w("so on the compacted topic every rolled segment is due for cleaning and the cleaner (broker defaults: one thread, ")
	w("no I/O limit, 15 s back-off when idle) runs through the run. Broker CPU includes the cleaner's. The keyed rounds all run ")
	w("before the compacted ones, so machine drift between them lands in the ratio; compare it with each row's spread. ")
	w("Cleaner passes and bytes are the change of the broker's `sluice_log_cleaner_*` counters on `/metrics` over each run.\n\n")
	w("| peer | keyed rec/s | compacted rec/s | compacted / keyed | p50 ms keyed → compacted | p99 ms keyed → compacted | CPU µs/rec keyed → compacted | cleaner passes per run | cleaner read MB per run | keyed runs' passes |\n")
	w("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, lane := range []string{kindUring, kindStd} {
		k, okK := r.summaryOf(keyedWorkload, lane)
		c, okC := r.summaryOf(compactedWorkload, lane)
		if !okK && !okC {
			continue
		}
		arrow := func(a, b float64, prec int) string { return fmtNum(a, prec) + " → " + fmtNum(b, prec) }
		w("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", lane, fmtInt(k.RecordsPerS), fmtInt(c.RecordsPerS),
			fmtTimes(ratio(c.RecordsPerS, k.RecordsPerS)), arrow(k.P50, c.P50, 2), arrow(k.P99, c.P99, 2),
			arrow(k.CPUPerRecUS, c.CPUPerRecUS, 2),
			r.cleanerCell(compactedWorkload, lane, func(d *cleanerDelta) float64 { return d.Runs }, 0),
			r.cleanerCell(compactedWorkload, lane, func(d *cleanerDelta) float64 { return d.ReadMB }, 0),
			r.cleanerCell(keyedWorkload, lane, func(d *cleanerDelta) float64 { return d.Runs }, 0))
	}
}

// summaryOf finds a lane's summary with at least one good run; otherwise
// one whose figures are NaN, which the fmt helpers print as "–".
func (r *report) summaryOf(workload, lane string) (summary, bool) {
	for _, s := range r.Summaries[workload] {
		if s.Lane == lane && s.OK > 0 {
			return s, true
		}
	}
	nan := math.NaN()
	return summary{RecordsPerS: nan, P50: nan, P99: nan, CPUPerRecUS: nan}, false
}

// fmtTimes is a ratio with three decimals, so 0.899 does not print as a
// passing 0.90.
func fmtTimes(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return strconv.FormatFloat(f, 'f', 3, 64) + "×"
}

// cleanerCell lists one cleaner figure of each good run, in round order,
// e.g. "4, 5, 4"; "–" when no run was counted.
func (r *report) cleanerCell(workload, lane string, f func(*cleanerDelta) float64, prec int) string {
	var parts []string
	for _, run := range r.Runs {
		if run.Workload == workload && run.Lane == lane && run.ok() && run.Cleaner != nil {
			parts = append(parts, fmtNum(f(run.Cleaner), prec))
		}
	}
	if len(parts) == 0 {
		return "–"
	}
	return strings.Join(parts, ", ")
}
