package perf

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is what one run measured: the line --json prints, and what a
// benchmark harness unmarshals. Rates use MB = 10^6 bytes. Bytes are record
// keys plus values, except for a raw consume, where they are the record
// batches as fetched.
type Result struct {
	Tool          string   `json:"tool"` // always "sluice perf"
	Mode          string   `json:"mode"` // produce, consume, e2e or rtt
	Brokers       []string `json:"brokers"`
	Topic         string   `json:"topic"`
	Config        Config   `json:"config"`
	Records       int64    `json:"records"`
	Bytes         int64    `json:"bytes"`
	Seconds       float64  `json:"seconds"`
	RecordsPerSec float64  `json:"records_per_sec"`
	MBPerSec      float64  `json:"mb_per_sec"`
	// Errors counts failed records (produce, e2e: including records
	// acknowledged but never consumed) or failed fetches (consume).
	Errors     int64  `json:"errors"`
	FirstError string `json:"first_error"`
	// Latency is absent in consume and rtt mode. Produce measures send
	// call to acknowledgement, e2e scheduled send time to receipt.
	Latency *Latency `json:"latency_ms,omitempty"`
	// LatencyCDF holds [percentile, ms] points from p50 to p100 on a log
	// scale of 1/(1-p); absent in consume and rtt mode and when nothing
	// was measured.
	LatencyCDF [][2]float64 `json:"latency_cdf_ms,omitempty"`
	// RTT is rtt mode's figure: the round trip of each request kind
	// (Produce, Fetch, Metadata, OffsetCommit) sent with nothing else in
	// flight. There Records counts the requests answered, Bytes the
	// values produced.
	RTT map[string]*RequestLatency `json:"rtt_ms,omitempty"`
}

// RequestLatency is one request kind of an rtt run: its round trips in
// milliseconds, the requests that failed and how long its phase ran.
type RequestLatency struct {
	Latency
	Errors  int64   `json:"errors"`
	Seconds float64 `json:"seconds"`
}

// Config echoes the settings a run used. Fields that do not apply to the
// mode are zero.
type Config struct {
	RecordSize      int     `json:"record_size"`
	Compressibility float64 `json:"compressibility"`
	Partitions      int     `json:"partitions"` // the topic's partition count
	Acks            string  `json:"acks"`
	Compression     string  `json:"compression"`
	Idempotent      bool    `json:"idempotent"`
	LingerMS        float64 `json:"linger_ms"`
	BatchBytes      int     `json:"batch_bytes"`
	MaxInflight     int     `json:"max_inflight"` // produce requests in flight per broker
	Clients         int     `json:"clients"`      // consume: those with partitions to read
	Rate            float64 `json:"rate"`         // e2e schedule, records per second
	Keys            int     `json:"keys"`         // distinct record keys (produce); 0: records have none
	// TopicConfig is --topic-config as given, "k=v,k=v" ("" when none),
	// applied if the run created the topic.
	TopicConfig string  `json:"topic_config"`
	Raw         bool    `json:"raw"`
	WarmupS     float64 `json:"warmup_s"`
}

// Latency summarizes the latency histogram, in milliseconds.
type Latency struct {
	Count int64   `json:"count"`
	Mean  float64 `json:"mean"`
	P50   float64 `json:"p50"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p999"`
	Max   float64 `json:"max"`
}

// outcome is the raw material of a Result, gathered by a run.
type outcome struct {
	partitions int
	records    int64
	bytes      int64
	errors     int64
	firstErr   string
	seconds    float64
	lat        *hist // nil in consume and rtt mode
	rtt        []kindOutcome
}

func (m *meter) outcome(partitions int, stop time.Time) outcome {
	out := outcome{
		partitions: partitions,
		records:    m.records.Load(),
		bytes:      m.bytes.Load(),
		errors:     m.errors.Load(),
		firstErr:   m.firstError(),
		seconds:    m.seconds(stop),
	}
	if m.lat != nil {
		out.lat = m.lat.snapshot()
	}
	return out
}

func newResult(o *options, out outcome) Result {
	r := Result{
		Tool:       "sluice perf",
		Mode:       o.mode,
		Brokers:    o.brokers,
		Topic:      o.topic,
		Config:     configOf(o, out.partitions),
		Records:    out.records,
		Bytes:      out.bytes,
		Seconds:    roundTo(out.seconds, 6),
		Errors:     out.errors,
		FirstError: out.firstErr,
	}
	if out.seconds > 0 {
		r.RecordsPerSec = roundTo(float64(out.records)/out.seconds, 1)
		r.MBPerSec = roundTo(float64(out.bytes)/1e6/out.seconds, 3)
	}
	if out.lat != nil {
		l := latencyOf(out.lat)
		r.Latency = &l
		r.LatencyCDF = out.lat.CDF()
	}
	if out.rtt != nil {
		r.RTT = map[string]*RequestLatency{}
		for _, k := range out.rtt {
			r.RTT[k.kind] = &RequestLatency{Latency: latencyOf(k.lat), Errors: k.errors, Seconds: roundTo(k.seconds, 6)}
		}
	}
	return r
}

func latencyOf(h *hist) Latency {
	return Latency{
		Count: h.Count(),
		Mean:  millis(h.Mean()),
		P50:   millis(h.Percentile(50)),
		P99:   millis(h.Percentile(99)),
		P999:  millis(h.Percentile(99.9)),
		Max:   millis(h.Max()),
	}
}

func configOf(o *options, partitions int) Config {
	c := Config{
		Partitions: partitions,
		Clients:    o.clients,
		Raw:        o.raw,
		WarmupS:    o.warmup.Seconds(),
	}
	if o.mode == modeConsume {
		// Clients beyond the partition count get no partition and sit idle.
		c.Clients = min(o.clients, partitions)
		return c
	}
	c.RecordSize = o.recordSize
	c.Compressibility = o.compressibility
	c.Acks = o.acks
	c.Compression = o.compression
	c.Idempotent = o.idempotent
	c.LingerMS = float64(o.linger) / float64(time.Millisecond)
	c.BatchBytes = o.batchBytes
	c.MaxInflight = o.effectiveInflight()
	c.Rate = o.rate
	c.Keys = o.keys
	kvs := make([]string, len(o.topicConfig))
	for i, kv := range o.topicConfig {
		kvs[i] = kv.key + "=" + kv.value
	}
	c.TopicConfig = strings.Join(kvs, ",")
	return c
}

// writeJSON prints the result as exactly one line.
func writeJSON(w io.Writer, r Result) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encoding result: %w", err)
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// writeSummary prints the result for a human. rtt counts requests rather
// than records, and has a row of round trips per request kind instead of
// one latency line.
func writeSummary(w io.Writer, r Result) error {
	rtt := r.Mode == modeRTT
	unit := "records"
	if rtt {
		unit = "requests"
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "mode\t%s (%s)\n", r.Mode, modeDetail(r))
	fmt.Fprintf(tw, "%s\t%d\n", unit, r.Records)
	if !rtt {
		fmt.Fprintf(tw, "bytes\t%d\n", r.Bytes)
	}
	fmt.Fprintf(tw, "seconds\t%.3f\n", r.Seconds)
	fmt.Fprintf(tw, "%s/s\t%.1f\n", unit, r.RecordsPerSec)
	if !rtt {
		fmt.Fprintf(tw, "MB/s\t%.3f\n", r.MBPerSec)
	}
	fmt.Fprintf(tw, "errors\t%d\n", r.Errors)
	if r.FirstError != "" {
		fmt.Fprintf(tw, "first error\t%s\n", r.FirstError)
	}
	if l := r.Latency; l != nil {
		fmt.Fprintf(tw, "latency ms\tp50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f  (%d samples)\n",
			l.P50, l.P99, l.P999, l.Max, l.Count)
	}
	if rtt {
		// In the order the tool lists the kinds, not the map's.
		fmt.Fprintf(tw, "\nround trip ms\tp50\tp99\tp99.9\tmax\trequests\terrors\n")
		for _, k := range rttKinds {
			if l := r.RTT[k]; l != nil {
				fmt.Fprintf(tw, "%s\t%.3f\t%.3f\t%.3f\t%.3f\t%d\t%d\n", k, l.P50, l.P99, l.P999, l.Max, l.Count, l.Errors)
			}
		}
	}
	return tw.Flush()
}

func modeDetail(r Result) string {
	c := r.Config
	parts := []string{"topic " + r.Topic, fmt.Sprintf("%d partitions", c.Partitions), fmt.Sprintf("%d clients", c.Clients)}
	switch r.Mode {
	case modeConsume:
		if c.Raw {
			parts = append(parts, "raw fetch")
		}
	case modeRTT:
		parts = []string{"topic " + r.Topic, "one request in flight", fmt.Sprintf("%d-byte records", c.RecordSize), "acks " + c.Acks}
	case modeE2E:
		parts = append(parts, fmt.Sprintf("%g records/s", c.Rate))
		fallthrough
	default:
		parts = append(parts, fmt.Sprintf("%d-byte records", c.RecordSize), "acks "+c.Acks, "compression "+c.Compression)
		if c.Keys > 0 {
			parts = append(parts, fmt.Sprintf("%d keys", c.Keys))
		}
		if c.TopicConfig != "" {
			parts = append(parts, "topic config "+c.TopicConfig)
		}
	}
	return strings.Join(parts, ", ")
}

// oneLine keeps messages on a single line, so stderr stays greppable and
// nothing looks like a stack trace.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
