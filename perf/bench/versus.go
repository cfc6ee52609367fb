package main

import (
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"math"
	"strings"
)

// labelStdFsync is the std engine's lane of the fsync workload, paired
// with labelUringFsync.
const labelStdFsync = "sluice-std flush=1"

// engineRatio is one figure of one workload on both of Sluice's engines,
// expressed so that ≥ 1 means io_uring is at least as good as std: records/s
// uring over std, a latency std over uring. Issue 12 wants every one of
// them ≥ 1.0 or explained.
type engineRatio struct {
	Workload string
	Figure   string
	Uring    string // the figures, formatted
	Std      string
	Ratio    float64 // NaN when either side is missing
}

// engineRatios lists, for every workload run on both engines, its figure
// of merit: throughput (the median over rounds of uring/std within one
// round, which adjacent runs make less noisy than a ratio of medians), the
// e2e p99, and each rtt request kind's p50 and p99.
func engineRatios(r *report) []engineRatio {
	var out []engineRatio
	for _, wl := range r.Workloads {
		u, s, ok := enginePair(r.Summaries[wl.Name])
		if !ok {
			continue
		}
		latency := func(figure string, uring, std float64) {
			out = append(out, engineRatio{Workload: wl.Name, Figure: figure,
				Uring: fmtMS(uring), Std: fmtMS(std), Ratio: ratio(std, uring)})
		}
		switch wl.Mode {
		case modeE2E:
			latency("p99", u.P99, s.P99)
		case modeRTT:
			for _, kind := range rttKinds {
				p50 := func(x rttRow) float64 { return x.P50 }
				p99 := func(x rttRow) float64 { return x.P99 }
				latency(kind+" p50", u.rttFigure(kind, p50), s.rttFigure(kind, p50))
				latency(kind+" p99", u.rttFigure(kind, p99), s.rttFigure(kind, p99))
			}
		default:
			out = append(out, engineRatio{Workload: wl.Name, Figure: "records/s",
				Uring: fmtInt(u.RecordsPerS), Std: fmtInt(s.RecordsPerS), Ratio: benchkit.Median(roundRatios(r.Runs, wl.Name, u.Lane, s.Lane))})
		}
	}
	return out
}

// enginePair finds a workload's uring and std rows, plain or flushing
// each message.
func enginePair(sums []summary) (uring, std summary, ok bool) {
	var hasU, hasS bool
	for _, s := range sums {
		switch s.Lane {
		case kindUring, labelUringFsync:
			uring, hasU = s, true
		case kindStd, labelStdFsync:
			std, hasS = s, true
		}
	}
	return uring, std, hasU && hasS
}

// writeEngines renders engineRatios, naming the ratios below 1.0 that the
// report must explain.
func (r *report) writeEngines(w func(string, ...any)) {
	ratios := engineRatios(r)
	if len(ratios) == 0 {
		return
	}
	var below []string
	for _, x := range ratios {
		if x.Ratio < 1 {
			below = append(below, fmt.Sprintf("%s %s (%.3f×)", x.Workload, x.Figure, x.Ratio))
		}
	}
	w("\n## io_uring against std (issue 12)\n\n")
	w("Each workload's figure on both engines, as a ratio where ≥ 1.00× means io_uring is at least as good: ")
	w("records/s uring/std (median of the rounds' ratios), latencies std/uring. ")
	if len(below) == 0 {
		w("All %d ratios are ≥ 1.00×.\n\n", len(ratios))
	} else {
		w("%d of %d are below 1.00× and need an explanation: %s.\n\n", len(below), len(ratios), strings.Join(below, "; "))
	}
	w("| workload | figure | uring | std | uring vs std |\n|---|---|--:|--:|--:|\n")
	for _, x := range ratios {
		// Three decimals, so 0.996 cannot print as an unexplained "1.00×".
		v := fmtNum(x.Ratio, 3)
		if !math.IsNaN(x.Ratio) {
			v += "×"
		}
		if x.Ratio < 1 {
			v = "**" + v + "**"
		}
		w("| %s | %s | %s | %s | %s |\n", x.Workload, x.Figure, x.Uring, x.Std, v)
	}
}

func fmtMS(ms float64) string {
	if math.IsNaN(ms) {
		return "–"
	}
	return fmtNum(ms, 3) + " ms"
}
