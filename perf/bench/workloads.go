package main

import (
	"fmt"
	"regexp"
	"slices"
	"time"
)

// Peer kinds, also the names --peers accepts.
const (
	kindUring = "sluice-uring"
	kindStd   = "sluice-std"
	kindKfake = "kfake"
	kindJS    = "jetstream"
	// kindCluster is three Sluice brokers on this machine (cluster.go).
	kindCluster = "sluice-cluster"
)

var allKinds = []string{kindUring, kindStd, kindKfake, kindJS, kindCluster}

// Workload modes, as `sluice perf` names them.
const (
	modeProduce = "produce"
	modeConsume = "consume"
	modeE2E     = "e2e"
	modeRTT     = "rtt"
	// modeFailover kills or stops a partition leader of the cluster peer
	// and times how long acks=all produce is unavailable (failover.go).
	modeFailover = "failover"
)

// rttKinds are the request kinds `sluice perf rtt` reports, in its order
// (the keys of its rtt_ms).
var rttKinds = []string{"Produce", "Fetch", "Metadata", "OffsetCommit"}

// workload is one row group of the report: the same client settings run
// against every lane, lanes alternating within each round.
type workload struct {
	Name        string `json:"name"`
	Mode        string `json:"mode"`
	RecordSize  int    `json:"record_size"`
	Partitions  int    `json:"partitions"`
	Acks        string `json:"acks"`
	Compression string `json:"compression"`
	Raw         bool   `json:"raw,omitempty"`
	Rate        int    `json:"rate,omitempty"`
	// Keys and TopicConfig are `sluice perf produce --keys` and
	// --topic-config (compaction.go).
	Keys        int      `json:"keys,omitempty"`
	TopicConfig []string `json:"topic_config,omitempty"`
	// MinRounds raises --rounds for a comparison finer than the machine's
	// run-to-run noise (not with --quick).
	MinRounds int `json:"min_rounds,omitempty"`
	// MinDuration raises --duration where a short run has too few
	// samples for its figure (not with --quick): at a light rate a 4 s
	// run's p99 is its 40th-worst record, which one scheduling hiccup
	// moves.
	MinDuration time.Duration `json:"min_duration,omitempty"`
	// Rounds, when set, replaces --rounds: a failover workload's one run
	// holds all its kills, so its p99 is over all of them.
	Rounds int `json:"rounds,omitempty"`
	// Lanes run in this order in every round; the first is the reference
	// the report's ratios divide by.
	Lanes []lane `json:"lanes"`
}

// lane is one column of a workload: a peer process plus what the harness
// does beside the client (scraping /metrics).
type lane struct {
	Label  string `json:"label"`
	Peer   string `json:"peer"` // peer instance name, see peerSpecs
	Kind   string `json:"kind"`
	Scrape bool   `json:"scrape,omitempty"`
	// RF, when set, creates the run's topic with this replication factor
	// before the client starts (the client would create it with one).
	RF int `json:"rf,omitempty"`
}

func kindLane(kind string) lane { return lane{Label: kind, Peer: kind, Kind: kind} }

const (
	consumeRecordSize = 1024
	e2eRate           = 20000
	// e2eLightRate is a light load: the ring or poller idles between
	// records, so each one pays the broker's wake-up (issue 12).
	e2eLightRate = 1000
	// compressibility is the fraction of each produced value that
	// compresses away (`sluice perf --compressibility`): half, so the lz4
	// workloads measure compression doing something rather than lz4
	// framing random bytes.
	compressibility = "0.5"
)

// allWorkloads lists every workload of the issue in the order they run:
// limits come first (elsewhere), then produce, consume, e2e, the /metrics
// overhead pair and last the fsync peers, which are extra processes that
// only that workload needs.
func allWorkloads() []workload {
	var ws []workload
	for _, size := range []int{100, 1024} {
		for _, parts := range []int{1, 8} {
			for _, acks := range []string{"1", "all"} {
				for _, comp := range []string{"none", "lz4"} {
					lanes := []lane{kindLane(kindUring), kindLane(kindStd), kindLane(kindKfake)}
					// JetStream acknowledges a publish once stored and has
					// no producer-side compression, so it is compared only
					// where the Kafka settings mean the same thing.
					if acks == "all" && comp == "none" {
						lanes = append(lanes, kindLane(kindJS))
					}
					ws = append(ws, workload{
						Name:       fmt.Sprintf("produce-%s-p%d-acks%s-%s", sizeName(size), parts, acks, comp),
						Mode:       modeProduce,
						RecordSize: size, Partitions: parts, Acks: acks, Compression: comp,
						Lanes: lanes,
					})
				}
			}
		}
	}
	all4 := []lane{kindLane(kindUring), kindLane(kindStd), kindLane(kindKfake), kindLane(kindJS)}
	ws = append(ws,
		workload{Name: "consume-decoded", Mode: modeConsume, RecordSize: consumeRecordSize, Partitions: 1, Acks: "1", Compression: "none", Lanes: all4},
		workload{Name: "consume-raw", Mode: modeConsume, RecordSize: consumeRecordSize, Partitions: 1, Acks: "1", Compression: "none", Raw: true,
			Lanes: []lane{kindLane(kindUring), kindLane(kindStd), kindLane(kindKfake)}},
		workload{Name: "e2e-20k-1KiB", Mode: modeE2E, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none", Rate: e2eRate, Lanes: all4},
		workload{Name: "e2e-1k-1KiB", Mode: modeE2E, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none", Rate: e2eLightRate, Lanes: all4,
			MinDuration: 15 * time.Second},
		// One request in flight: the latency of an idle broker, which the
		// workloads above keep busy. JetStream has no such requests.
		workload{Name: "rtt-sequential", Mode: modeRTT, Partitions: 1, Acks: "all", Compression: "none",
			Lanes: []lane{kindLane(kindUring), kindLane(kindStd), kindLane(kindKfake)}},
		// The target is a 1% difference, so more rounds than the rest.
		workload{Name: "metrics-scrape-1KiB", Mode: modeProduce, RecordSize: 1024, Partitions: 1, Acks: "1", Compression: "none",
			MinRounds: 6,
			Lanes: []lane{
				{Label: "sluice-uring", Peer: kindUring, Kind: kindUring},
				{Label: "sluice-uring+scrape", Peer: kindUring, Kind: kindUring, Scrape: true},
			}},
		workload{Name: "produce-fsync-1KiB", Mode: modeProduce, RecordSize: 1024, Partitions: 1, Acks: "all", Compression: "none",
			Lanes: []lane{
				{Label: "sluice-uring flush=1", Peer: kindUring + "-fsync", Kind: kindUring},
				{Label: labelStdFsync, Peer: kindStd + "-fsync", Kind: kindStd},
				{Label: "jetstream sync=always", Peer: kindJS + "-sync", Kind: kindJS},
			}},
	)
	ws = append(ws, compactionWorkloads()...)
	return append(ws, clusterWorkloads()...)
}

// quickNames are the workloads of --quick: one produce shape JetStream
// shares, one with every Kafka-only knob, and one of each other kind.
var quickNames = []string{
	"produce-1KiB-p1-acksall-none",
	"produce-100B-p8-acks1-lz4",
	"consume-decoded", "consume-raw", "e2e-20k-1KiB", "e2e-1k-1KiB", "rtt-sequential",
	"metrics-scrape-1KiB", "produce-fsync-1KiB",
	clusterProduce, clusterKill9, clusterSigterm,
}

func sizeName(n int) string {
	if n%1024 == 0 {
		return fmt.Sprintf("%dKiB", n/1024)
	}
	return fmt.Sprintf("%dB", n)
}

// selectWorkloads applies --quick, --only and --peers. A workload left
// without lanes is dropped; one whose reference lane was filtered out keeps
// its other lanes and the first remaining becomes the reference.
func selectWorkloads(ws []workload, quick bool, only *regexp.Regexp, kinds []string) []workload {
	var out []workload
	for _, w := range ws {
		if quick && !slices.Contains(quickNames, w.Name) {
			continue
		}
		if only != nil && !only.MatchString(w.Name) {
			continue
		}
		var lanes []lane
		for _, l := range w.Lanes {
			if slices.Contains(kinds, l.Kind) {
				lanes = append(lanes, l)
			}
		}
		if len(lanes) == 0 {
			continue
		}
		w.Lanes = lanes
		out = append(out, w)
	}
	return out
}

// slot is one run: a lane in a round.
type slot struct {
	Round int
	Lane  lane
}

// schedule alternates lanes within each round (A B A B …), so slow drift of
// the machine (page cache, thermal, background work) spreads over every
// lane instead of landing on whichever ran last.
func schedule(w workload, rounds int) []slot {
	var s []slot
	for r := 1; r <= rounds; r++ {
		for _, l := range w.Lanes {
			s = append(s, slot{Round: r, Lane: l})
		}
	}
	return s
}
