package main

import (
	"encoding/json"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"math"
	"slices"
	"time"
)

// clientResult is the one JSON line `sluice perf ... --json` prints (the
// perf.Result contract), and what the JetStream driver prints too. Decoded
// here rather than imported so the harness depends only on the wire
// contract.
type clientResult struct {
	Tool          string         `json:"tool"`
	Mode          string         `json:"mode"`
	Brokers       []string       `json:"brokers"`
	Topic         string         `json:"topic"`
	Config        map[string]any `json:"config"`
	Records       int64          `json:"records"`
	Bytes         int64          `json:"bytes"`
	Seconds       float64        `json:"seconds"`
	RecordsPerSec float64        `json:"records_per_sec"`
	MBPerSec      float64        `json:"mb_per_sec"`
	Errors        int64          `json:"errors"`
	FirstError    string         `json:"first_error"`
	Latency       latencySummary `json:"latency_ms"`
	CDF           [][2]float64   `json:"latency_cdf_ms"`
	// RTT is rtt mode's round trips by request kind; Latency is then
	// empty.
	RTT map[string]latencySummary `json:"rtt_ms,omitempty"`
}

type latencySummary struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// runRecord is everything measured in one run; latest.json holds them all.
type runRecord struct {
	Workload string        `json:"workload"`
	Lane     string        `json:"peer"`
	Round    int           `json:"round"`
	Argv     []string      `json:"argv"`
	Start    time.Time     `json:"start"`
	Wall     float64       `json:"wall_seconds"`
	Result   *clientResult `json:"result,omitempty"`
	// BrokerCPU is the peer's utime+stime over the client's measured
	// phase (see runSlot); BrokerCPUTotal over the client's whole life.
	BrokerCPU      float64 `json:"broker_cpu_seconds"`
	BrokerCPUTotal float64 `json:"broker_cpu_total_seconds"`
	PeakRSSMB      float64 `json:"peak_rss_mb"`
	ClientCPU      float64 `json:"client_cpu_seconds"`
	Scrapes        int     `json:"scrapes,omitempty"`
	ScrapeErrors   int     `json:"scrape_errors,omitempty"`
	// Cleaner is what the broker's log cleaner did during a keyed
	// workload's run; nil elsewhere or when /metrics could not tell.
	Cleaner *cleanerDelta `json:"cleaner,omitempty"`
	Err     string        `json:"error,omitempty"`
	Notes   []string      `json:"notes,omitempty"`
}

func (r runRecord) ok() bool { return r.Err == "" && r.Result != nil && r.Result.Records > 0 }

// mbPerSec is computed from bytes and seconds, in 10^6 bytes, so every peer
// and the machine limits use one unit whatever the client printed.
func (r runRecord) mbPerSec() float64 {
	if r.Result == nil || r.Result.Seconds <= 0 {
		return 0
	}
	return float64(r.Result.Bytes) / r.Result.Seconds / 1e6
}

func (r runRecord) cpuPerRecordUS() float64 {
	if r.Result == nil || r.Result.Records == 0 {
		return 0
	}
	return r.BrokerCPU * 1e6 / float64(r.Result.Records)
}

func (r runRecord) cpuPerMBUS() float64 {
	if r.Result == nil || r.Result.Bytes == 0 {
		return 0
	}
	return r.BrokerCPU * 1e6 / (float64(r.Result.Bytes) / 1e6)
}

// summary is one (workload, lane) row of the report: medians over the
// successful runs, peak RSS as the maximum.
// Unknown figures are NaN (see ratio); summary.MarshalJSON writes them as
// null.
type summary struct {
	Workload    string
	Lane        string
	Runs, OK    int
	RecordsPerS float64
	MBPerS      float64
	CPUPerRecUS float64
	CPUPerMBUS  float64
	PeakRSSMB   float64
	P50, P99    float64
	P999        float64
	CDF         [][2]float64 // of the run with the median p99
	Ratio       float64      // records/s over the workload's first lane
	// PairedRatio is the median over rounds of this lane's records/s over
	// the first lane's in the same round: adjacent runs share the
	// machine's state, so it resolves smaller differences than Ratio.
	PairedRatio float64
	// Spread is (max−min)/median of records/s over the rounds: how far
	// apart the runs of this row were, to judge which ratios are noise.
	Spread       float64
	FirstErr     string
	ClientErrors int64
	// RTT holds, for rtt workloads, each request kind's percentiles
	// (medians over the rounds); a kind no run answered is absent.
	RTT map[string]rttRow
	// CleanerRuns holds, for keyed workloads, the cleaner passes of each
	// good run whose passes were counted.
	CleanerRuns []float64
}

// rttRow is one request kind's round trip in an rtt summary, ms.
type rttRow struct{ P50, P99, P999 float64 }

// rttFigure returns one percentile of a kind, NaN when it is missing, so
// a kind that never got an answer cannot pass a target.
func (s summary) rttFigure(kind string, f func(rttRow) float64) float64 {
	row, ok := s.RTT[kind]
	if !ok {
		return math.NaN()
	}
	return f(row)
}

func (s summary) MarshalJSON() ([]byte, error) {
	n := func(f float64) any {
		if math.IsNaN(f) || math.IsInf(f, 0) {
			return nil
		}
		return f
	}
	m := map[string]any{
		"workload": s.Workload, "peer": s.Lane, "runs": s.Runs, "ok": s.OK,
		"records_per_sec": n(s.RecordsPerS), "mb_per_sec": n(s.MBPerS),
		"cpu_us_per_record": n(s.CPUPerRecUS), "cpu_us_per_mb": n(s.CPUPerMBUS),
		"peak_rss_mb":    s.PeakRSSMB,
		"latency_ms":     map[string]any{"p50": n(s.P50), "p99": n(s.P99), "p999": n(s.P999)},
		"latency_cdf_ms": s.CDF, "ratio_to_ref": n(s.Ratio), "paired_ratio_to_ref": n(s.PairedRatio), "spread": n(s.Spread),
		"first_error": s.FirstErr, "client_errors": s.ClientErrors,
	}
	if len(s.CleanerRuns) > 0 {
		m["cleaner_runs_per_run"] = s.CleanerRuns
	}
	if len(s.RTT) > 0 {
		rtt := map[string]any{}
		for k, r := range s.RTT {
			rtt[k] = map[string]any{"p50": n(r.P50), "p99": n(r.P99), "p999": n(r.P999)}
		}
		m["rtt_ms"] = rtt
	}
	return json.Marshal(m)
}

// ratio is a/b, NaN when either is unknown or b is zero, so a missing
// figure never passes for a good one.
func ratio(a, b float64) float64 {
	if math.IsNaN(a) || math.IsNaN(b) || b == 0 {
		return math.NaN()
	}
	return a / b
}

// summarize builds the rows of one workload in lane order.
func summarize(w workload, runs []runRecord) []summary {
	var out []summary
	for _, l := range w.Lanes {
		s := summary{Workload: w.Name, Lane: l.Label}
		var rps, mbps, cpuRec, cpuMB, p50, p99, p999 []float64
		var okRuns []runRecord
		for _, r := range runs {
			if r.Workload != w.Name || r.Lane != l.Label {
				continue
			}
			s.Runs++
			s.PeakRSSMB = max(s.PeakRSSMB, r.PeakRSSMB)
			if !r.ok() {
				if s.FirstErr == "" {
					s.FirstErr = r.Err
					if s.FirstErr == "" {
						s.FirstErr = "no records measured"
					}
				}
				continue
			}
			s.OK++
			okRuns = append(okRuns, r)
			s.ClientErrors += r.Result.Errors
			if s.FirstErr == "" && r.Result.FirstError != "" {
				s.FirstErr = "client: " + r.Result.FirstError
			}
			rps = append(rps, r.Result.RecordsPerSec)
			mbps = append(mbps, r.mbPerSec())
			cpuRec = append(cpuRec, r.cpuPerRecordUS())
			cpuMB = append(cpuMB, r.cpuPerMBUS())
			p50 = append(p50, r.Result.Latency.P50)
			p99 = append(p99, r.Result.Latency.P99)
			p999 = append(p999, r.Result.Latency.P999)
			if r.Cleaner != nil {
				s.CleanerRuns = append(s.CleanerRuns, r.Cleaner.Runs)
			}
		}
		s.RecordsPerS, s.MBPerS = benchkit.Median(rps), benchkit.Median(mbps)
		s.Spread = math.NaN()
		if len(rps) > 1 {
			s.Spread = (slices.Max(rps) - slices.Min(rps)) / s.RecordsPerS
		}
		s.CPUPerRecUS, s.CPUPerMBUS = benchkit.Median(cpuRec), benchkit.Median(cpuMB)
		s.P50, s.P99, s.P999 = benchkit.Median(p50), benchkit.Median(p99), benchkit.Median(p999)
		s.RTT = rttMedians(okRuns)
		if len(okRuns) > 0 {
			slices.SortFunc(okRuns, func(a, b runRecord) int {
				return cmpFloat(a.Result.Latency.P99, b.Result.Latency.P99)
			})
			s.CDF = okRuns[(len(okRuns)-1)/2].Result.CDF
		}
		out = append(out, s)
	}
	if len(out) == 0 {
		return out
	}
	refByRound := map[int]float64{}
	for _, r := range runs {
		if r.Workload == w.Name && r.Lane == out[0].Lane && r.ok() {
			refByRound[r.Round] = r.Result.RecordsPerSec
		}
	}
	for i := range out {
		out[i].Ratio = ratio(out[i].RecordsPerS, out[0].RecordsPerS)
		var paired []float64
		for _, r := range runs {
			if ref, ok := refByRound[r.Round]; ok && r.Workload == w.Name && r.Lane == out[i].Lane && r.ok() {
				paired = append(paired, ratio(r.Result.RecordsPerSec, ref))
			}
		}
		out[i].PairedRatio = benchkit.Median(paired)
	}
	return out
}

// rttMedians takes, per request kind, the median of each percentile over
// the runs that got answers of that kind; nil for other modes.
func rttMedians(runs []runRecord) map[string]rttRow {
	var out map[string]rttRow
	for _, kind := range rttKinds {
		var p50, p99, p999 []float64
		for _, r := range runs {
			if l, ok := r.Result.RTT[kind]; ok && l.Count > 0 {
				p50, p99, p999 = append(p50, l.P50), append(p99, l.P99), append(p999, l.P999)
			}
		}
		if len(p50) == 0 {
			continue
		}
		if out == nil {
			out = map[string]rttRow{}
		}
		out[kind] = rttRow{P50: benchkit.Median(p50), P99: benchkit.Median(p99), P999: benchkit.Median(p999)}
	}
	return out
}

func cmpFloat(a, b float64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
