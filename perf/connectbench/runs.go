package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// benchConfig is one configuration measured through Connect and directly.
type benchConfig struct {
	Name      string `json:"name"`
	Bytes     int    `json:"record_bytes"`
	ValueType string `json:"value_type"` // the generator's value.type: bytes or json
	Records   int64  `json:"records"`
}

const (
	stringConverter    = "org.apache.kafka.connect.storage.StringConverter"
	byteArrayConverter = "org.apache.kafka.connect.converters.ByteArrayConverter"
	jsonConverter      = "org.apache.kafka.connect.json.JsonConverter"
)

// converters are the connector-level converter settings: keys are
// strings (StringConverter), values bytes (ByteArrayConverter) or, for
// value.type=json, schemaless JSON.
func (c benchConfig) converters() map[string]string {
	m := map[string]string{"key.converter": stringConverter, "value.converter": byteArrayConverter}
	if c.ValueType == "json" {
		m["value.converter"] = jsonConverter
		m["value.converter.schemas.enable"] = "false"
	}
	return m
}

// runResult is one measured run.
type runResult struct {
	Config  string             `json:"config"`
	Mode    string             `json:"mode"` // connect or direct
	Round   int                `json:"round"`
	Records int64              `json:"records"`
	Rate    float64            `json:"records_per_s"` // at the sink, steady stretch
	SrcRate float64            `json:"source_records_per_s"`
	Window  float64            `json:"window_s"`
	CatchUp bool               `json:"catch_up,omitempty"`
	Short   bool               `json:"short,omitempty"` // warm-up not left out (see window.Short)
	Wall    float64            `json:"wall_s"`          // first record produced to last received
	CPU     map[string]float64 `json:"cpu_s"`           // per process, over the whole run
	Err     string             `json:"error,omitempty"`
}

// usPerRecord is a process's CPU per record moved, in µs.
func (r runResult) usPerRecord(proc string) float64 {
	cpu, ok := r.CPU[proc]
	if !ok || r.Records == 0 {
		return -1
	}
	return cpu / float64(r.Records) * 1e6
}

// The processes whose CPU a run reports.
const (
	cpuWorker = "worker"
	cpuSource = "source plugin"
	cpuSink   = "sink plugin"
	cpuClient = "franz-go client"
	cpuBroker = "broker"
)

// bench holds what every run shares.
type bench struct {
	self       string // this binary, for the direct subcommand
	bootstrap  string
	broker     *proc
	worker     *worker
	admin      *kadm.Client
	rest       *restClient
	partitions int32
	warm       float64       // fraction of the records before the steady stretch
	interval   time.Duration // worker /metrics scrapes
	// directInterval is the direct client's sampling interval.
	directInterval time.Duration
	// directFactor multiplies the records of a direct run: franz-go
	// alone moves them so much faster that the same count would be over
	// in a fraction of a second, too short to measure steadily.
	directFactor int64
	timeout      time.Duration
	logf         func(string, ...any)
}

// connectRun moves cfg.Records records from the generator through a topic
// to the discarding sink, both on the worker, and measures the rate at
// the sink and the CPU of the worker, its plugins and the broker.
func (b *bench) connectRun(ctx context.Context, cfg benchConfig, round int) runResult {
	res := runResult{Config: cfg.Name, Mode: "connect", Round: round, Records: cfg.Records}
	topic := fmt.Sprintf("cb-%s-connect-%d", cfg.Name, round)
	src, sink := topic+"-src", topic+"-sink"
	fail := func(err error) runResult {
		res.Err = err.Error()
		b.logf("  connect %s round %d: %v", cfg.Name, round, err)
		return res
	}
	if err := b.createTopic(ctx, topic); err != nil {
		return fail(err)
	}
	defer b.cleanup(topic, src, sink)

	sinkCfg := cfg.converters()
	sinkCfg["connector.class"], sinkCfg["tasks.max"], sinkCfg["topics"] = "sluice.bench.DiscardSink", "1", topic
	if err := b.rest.create(ctx, sink, sinkCfg); err != nil {
		return fail(err)
	}
	if err := b.rest.waitRunning(ctx, sink, 60*time.Second); err != nil {
		return fail(err)
	}
	if err := b.waitAssigned(ctx, "connect-"+sink); err != nil {
		return fail(err)
	}
	kids := children(b.worker.pid())
	if len(kids) != 1 {
		return fail(fmt.Errorf("want the sink plugin as the worker's only child, found %v", kids))
	}
	sinkPid := kids[0].pid
	before, err := cpus(map[string]int{cpuWorker: b.worker.pid(), cpuSink: sinkPid, cpuBroker: b.broker.pid()})
	if err != nil {
		return fail(err)
	}

	srcCfg := cfg.converters()
	srcCfg["connector.class"], srcCfg["tasks.max"], srcCfg["topic"] = "sluice.bench.GeneratorSource", "1", topic
	srcCfg["record.bytes"], srcCfg["records"], srcCfg["value.type"] = strconv.Itoa(cfg.Bytes), strconv.FormatInt(cfg.Records, 10), cfg.ValueType
	startAt := time.Now()
	if err := b.rest.create(ctx, src, srcCfg); err != nil {
		return fail(err)
	}
	samples, err := b.sampleWorker(ctx, src, sink, cfg.Records)
	if err != nil {
		return fail(err)
	}
	pids := map[string]int{cpuWorker: b.worker.pid(), cpuSink: sinkPid, cpuBroker: b.broker.pid()}
	for _, k := range children(b.worker.pid()) {
		if k.pid != sinkPid {
			pids[cpuSource] = k.pid
		}
	}
	after, err := cpus(pids)
	if err != nil {
		return fail(err)
	}
	res.Wall = last(samples).At.Sub(startAt).Seconds()
	res.CPU = map[string]float64{}
	for name, c := range after {
		res.CPU[name] = c - before[name] // the source plugin started after before: 0 there
	}
	w, err := steadyWindow(samples, int64(b.warm*float64(cfg.Records)), cfg.Records)
	if err != nil {
		return fail(err)
	}
	res.Rate, res.SrcRate, res.Window, res.CatchUp, res.Short = w.Rate, w.SrcRate, w.Seconds, w.CatchUp, w.Short
	return res
}

// sampleWorker scrapes the worker's /metrics every interval until the sink
// has put total records: source records acknowledged by the cluster and
// sink records put. A run that stops moving for 20 s fails.
func (b *bench) sampleWorker(ctx context.Context, src, sink string, total int64) ([]sample, error) {
	cl := &http.Client{Timeout: 5 * time.Second}
	var out []sample
	deadline := time.Now().Add(b.timeout)
	lastMove, lastSink := time.Now(), int64(-1)
	for {
		text, err := scrape(ctx, cl, b.worker.metrics)
		if err != nil {
			return out, err
		}
		s := sample{At: time.Now()}
		w, _, err1 := metricSum(text, "sluice_connect_source_records_written_total", src)
		p, _, err2 := metricSum(text, "sluice_connect_sink_records_put_total", sink)
		if err := errors.Join(err1, err2); err != nil {
			return out, err
		}
		s.Src, s.Sink = int64(w), int64(p)
		out = append(out, s)
		if s.Sink >= total {
			return out, nil
		}
		if s.Sink != lastSink {
			lastMove, lastSink = s.At, s.Sink
		}
		switch {
		case !b.worker.running():
			return out, fmt.Errorf("the worker exited: %v\n%s", b.worker.waitErr, b.worker.logTail(10))
		case time.Since(lastMove) > 20*time.Second:
			return out, fmt.Errorf("no record put for 20s at %d of %d (source at %d)%s", s.Sink, total, s.Src, b.statusHint(ctx, src, sink))
		case time.Now().After(deadline):
			return out, fmt.Errorf("not done after %s: %d of %d put", b.timeout, s.Sink, total)
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(b.interval):
		}
	}
}

// statusHint is the connectors' status, to explain a stalled run.
func (b *bench) statusHint(ctx context.Context, names ...string) string {
	var sb strings.Builder
	for _, n := range names {
		var st any
		if _, err := b.rest.do(ctx, "GET", "/connectors/"+n+"/status", nil, &st); err == nil {
			j, _ := json.Marshal(st)
			fmt.Fprintf(&sb, "\n  %s: %s", n, j)
		}
	}
	return sb.String()
}

// cpus reads the CPU seconds of each named process.
func cpus(pids map[string]int) (map[string]float64, error) {
	out := make(map[string]float64, len(pids))
	for name, pid := range pids {
		c, err := cpuOf(pid)
		if err != nil {
			return nil, fmt.Errorf("reading the CPU time of the %s (pid %d): %w", name, pid, err)
		}
		out[name] = c
	}
	return out, nil
}

// directRun moves the same records with franz-go alone: a producer with
// the worker's producer settings and a group consumer, in a child process
// (the direct subcommand) so its CPU time is its own.
func (b *bench) directRun(ctx context.Context, cfg benchConfig, round int) runResult {
	res := runResult{Config: cfg.Name, Mode: "direct", Round: round, Records: cfg.Records * max(b.directFactor, 1)}
	topic := fmt.Sprintf("cb-%s-direct-%d", cfg.Name, round)
	fail := func(err error) runResult {
		res.Err = err.Error()
		b.logf("  direct %s round %d: %v", cfg.Name, round, err)
		return res
	}
	if err := b.createTopic(ctx, topic); err != nil {
		return fail(err)
	}
	defer b.cleanup(topic)
	cctx, cancel := context.WithTimeout(ctx, b.timeout+30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, b.self, "direct",
		"--bootstrap", b.bootstrap, "--topic", topic, "--records", strconv.FormatInt(res.Records, 10),
		"--bytes", strconv.Itoa(cfg.Bytes), "--value-type", cfg.ValueType,
		"--broker-pid", strconv.Itoa(b.broker.pid()), "--interval", b.directInterval.String(), "--timeout", b.timeout.String())
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return fail(fmt.Errorf("the direct client: %w", err))
	}
	var dr directResult
	if err := json.Unmarshal(out, &dr); err != nil {
		return fail(fmt.Errorf("the direct client's answer %q: %w", out, err))
	}
	if dr.Err != "" {
		return fail(errors.New(dr.Err))
	}
	res.Wall = dr.Wall
	res.CPU = map[string]float64{cpuClient: dr.ClientCPU, cpuBroker: dr.BrokerCPU}
	w, err := steadyWindow(dr.Samples, int64(b.warm*float64(res.Records)), res.Records)
	if err != nil {
		return fail(err)
	}
	res.Rate, res.SrcRate, res.Window, res.CatchUp, res.Short = w.Rate, w.SrcRate, w.Seconds, w.CatchUp, w.Short
	return res
}

func (b *bench) createTopic(ctx context.Context, topic string) error {
	resp, err := b.admin.CreateTopic(ctx, b.partitions, 1, nil, topic)
	if err == nil {
		err = resp.Err
	}
	if err != nil {
		return fmt.Errorf("creating topic %s: %w", topic, err)
	}
	return nil
}

// waitAssigned waits until a consumer group is stable with partitions
// assigned, so the source starts only once the sink can read.
func (b *bench) waitAssigned(ctx context.Context, group string) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		gs, err := b.admin.DescribeGroups(ctx, group)
		if err == nil {
			if g, ok := gs[group]; ok && g.Err == nil && g.State == "Stable" && len(g.AssignedPartitions()) > 0 {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("group %s has no stable assignment after 60s (%v)", group, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// cleanup deletes the run's connectors, waits for their plugin processes
// to be gone (their CPU then sits in the worker's cutime, before the next
// run's first reading) and deletes the topic, so runs do not weigh on each
// other.
func (b *bench) cleanup(topic string, connectors ...string) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for _, c := range connectors {
		if err := b.rest.delete(ctx, c); err != nil {
			b.logf("  deleting connector %s: %v", c, err)
		}
	}
	if len(connectors) > 0 {
		for len(children(b.worker.pid())) > 0 && ctx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
		}
	}
	if _, err := b.admin.DeleteTopics(ctx, topic); err != nil {
		b.logf("  deleting topic %s: %v", topic, err)
	}
}

// newAdmin is a kadm client on the broker.
func newAdmin(bootstrap string) (*kadm.Client, *kgo.Client, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(bootstrap))
	if err != nil {
		return nil, nil, err
	}
	return kadm.NewClient(cl), cl, nil
}
