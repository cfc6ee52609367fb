package main

import (
	"math"
	"strings"
	"testing"
)

func TestEngineRatios(t *testing.T) {
	r := rttReport()
	// A produce workload where uring wins one round of two, and the
	// fsync pair, whose lanes have their own labels.
	fsync := workload{Name: "produce-fsync-1KiB", Mode: modeProduce, Lanes: []lane{
		{Label: labelUringFsync, Peer: kindUring + "-fsync", Kind: kindUring}, {Label: labelStdFsync, Peer: kindStd + "-fsync", Kind: kindStd}}}
	prod := workload{Name: "produce-x", Mode: modeProduce, Lanes: []lane{kindLane(kindUring), kindLane(kindStd)}}
	r.Workloads = append(r.Workloads, prod, fsync)
	res := func(rps float64) *clientResult { return &clientResult{Records: 1, Seconds: 1, RecordsPerSec: rps} }
	r.Runs = append(r.Runs,
		runRecord{Workload: prod.Name, Lane: kindUring, Round: 1, Result: res(90)}, runRecord{Workload: prod.Name, Lane: kindStd, Round: 1, Result: res(100)},
		runRecord{Workload: prod.Name, Lane: kindUring, Round: 2, Result: res(300)}, runRecord{Workload: prod.Name, Lane: kindStd, Round: 2, Result: res(200)},
		runRecord{Workload: fsync.Name, Lane: labelUringFsync, Round: 1, Result: res(50)}, runRecord{Workload: fsync.Name, Lane: labelStdFsync, Round: 1, Result: res(40)},
	)
	finish(r, "/repo")

	got := map[string]float64{}
	for _, x := range engineRatios(r) {
		got[x.Workload+" "+x.Figure] = x.Ratio
	}
	// 8 rtt figures, the light e2e (std never ran it: no ratio), 2 produce.
	if len(got) != 11 {
		t.Errorf("%d ratios: %v", len(got), got)
	}
	for k, want := range map[string]float64{
		"rtt-sequential Produce p50":   1,   // uring median 0.2, std 0.2
		"rtt-sequential Fetch p99":     1,   // 1.2 both
		"produce-x records/s":          1.2, // rounds 0.9 and 1.5
		"produce-fsync-1KiB records/s": 1.25,
	} {
		if !near(got[k], want) {
			t.Errorf("%s = %v, want %v", k, got[k], want)
		}
	}
	if !math.IsNaN(got["e2e-1k-1KiB p99"]) || !math.IsNaN(got["rtt-sequential OffsetCommit p50"]) {
		t.Errorf("ratios without a std figure must be NaN: %v", got)
	}

	// uring slower at the p50 of every rtt kind in every round.
	for i := range r.Runs {
		if x := &r.Runs[i]; x.Workload == "rtt-sequential" && x.Lane == kindUring {
			for k, l := range x.Result.RTT {
				l.P50 *= 4
				x.Result.RTT[k] = l
			}
		}
	}
	finish(r, "/repo")
	mustContain(t, r.markdown(""),
		"## io_uring against std (issue 12)",
		"3 of 11 are below 1.00× and need an explanation: rtt-sequential Produce p50 (0.250×); rtt-sequential Fetch p50 (0.250×); rtt-sequential Metadata p50 (0.250×).",
		"| rtt-sequential | Produce p50 | 0.800 ms | 0.200 ms | **0.250×** |",
		"| rtt-sequential | OffsetCommit p50 | 3.200 ms | – | – |",
		"| produce-fsync-1KiB | records/s | 50 | 40 | 1.250× |",
	)
	if s := r.markdown(""); strings.Count(s, "## io_uring against std") != 1 {
		t.Error("section repeated")
	}
}
