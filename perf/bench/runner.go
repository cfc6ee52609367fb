package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// kfakeReleasePause gives kfake's collector time to return a run's memory.
const kfakeReleasePause = 500 * time.Millisecond

// runOpts are the per-run knobs the flags set.
type runOpts struct {
	Rounds      int
	Quick       bool
	Duration    time.Duration
	Warmup      time.Duration
	FillRecords int // records pre-filled for the consume workloads
}

// runner executes workloads against the peers and collects every run.
type runner struct {
	opts  runOpts
	tools tools
	peers *peerSet
	logf  func(string, ...any)

	seq         int
	runs        []runRecord
	fills       map[string]fillState // by peer name and start generation
	unavailable map[string]string    // workload → why it did not run
	commands    []clientCommand      // first run of each workload and lane, in run order
	seen        map[string]bool
}

// clientCommand is a load client's command line as the report lists it.
type clientCommand struct {
	What string   `json:"what"`
	Argv []string `json:"argv"`
}

func (r *runner) noteCommand(what string, argv []string) {
	if !r.seen[what] {
		r.seen[what] = true
		r.commands = append(r.commands, clientCommand{What: what, Argv: argv})
	}
}

type fillState struct {
	topic string
	err   error
}

func newRunner(o runOpts, t tools, ps *peerSet, logf func(string, ...any)) *runner {
	return &runner{opts: o, tools: t, peers: ps, logf: logf,
		fills: map[string]fillState{}, unavailable: map[string]string{}, seen: map[string]bool{}}
}

// runWorkload runs every slot of w in alternation.
func (r *runner) runWorkload(ctx context.Context, w workload) {
	if why := r.precheck(ctx, w); why != "" {
		r.unavailable[w.Name] = why
		r.logf("%s: unavailable: %s", w.Name, why)
		return
	}
	rounds := r.opts.Rounds
	if !r.opts.Quick {
		rounds = max(rounds, w.MinRounds)
	}
	if w.Rounds > 0 {
		rounds = w.Rounds
	}
	for _, s := range schedule(w, rounds) {
		if ctx.Err() != nil {
			return
		}
		rec := r.runSlot(ctx, w, s)
		if ctx.Err() != nil {
			return // interrupted: the run was cut short, not measured
		}
		r.runs = append(r.runs, rec)
		status := fmt.Sprintf("%.0f rec/s, %.1f MB/s, cpu %.2f µs/rec, rss %.0f MB",
			rec.resultOr(func(c *clientResult) float64 { return c.RecordsPerSec }), rec.mbPerSec(), rec.cpuPerRecordUS(), rec.PeakRSSMB)
		if w.Mode == modeE2E && rec.Result != nil {
			status += fmt.Sprintf(", p99 %.2f ms", rec.Result.Latency.P99)
		}
		if w.Mode == modeRTT && rec.Result != nil {
			status = rttStatus(rec.Result)
		}
		if rec.Cleaner != nil {
			status += fmt.Sprintf(", cleaner %.0f passes, %.0f MB read", rec.Cleaner.Runs, rec.Cleaner.ReadMB)
		}
		if rec.Err != "" {
			status = "ERROR " + rec.Err
		}
		r.logf("%s round %d %-22s %s", w.Name, s.Round, s.Lane.Label, status)
	}
}

// rttStatus is an rtt run's log line: p50/p99 of each request kind.
func rttStatus(res *clientResult) string {
	parts := []string{fmt.Sprintf("%.0f req/s", res.RecordsPerSec)}
	for _, k := range rttKinds {
		if l, ok := res.RTT[k]; ok {
			parts = append(parts, fmt.Sprintf("%s %.3f/%.3f", k, l.P50, l.P99))
		}
	}
	return strings.Join(parts, ", ") + " ms p50/p99"
}

func (r runRecord) resultOr(f func(*clientResult) float64) float64 {
	if r.Result == nil {
		return 0
	}
	return f(r.Result)
}

// precheck tells why a workload cannot run at all, or "".
func (r *runner) precheck(ctx context.Context, w workload) string {
	for _, l := range w.Lanes {
		if !l.Scrape {
			continue
		}
		p, _, err := r.peers.get(ctx, l.Peer)
		if err != nil {
			return "peer " + l.Peer + ": " + err.Error()
		}
		if p.adminAddr == "" {
			return "the broker has no admin.listener (" + strings.Join(p.notes, "; ") + ")"
		}
		if err := scrapeOnce(ctx, p.adminAddr); err != nil {
			return "GET /metrics: " + err.Error()
		}
	}
	return ""
}

func (r *runner) runSlot(ctx context.Context, w workload, s slot) runRecord {
	rec := runRecord{Workload: w.Name, Lane: s.Lane.Label, Round: s.Round, Start: time.Now()}
	p, note, err := r.peers.get(ctx, s.Lane.Peer)
	if note != "" {
		rec.Notes = append(rec.Notes, note)
	}
	if err != nil {
		rec.Err = "peer: " + err.Error()
		return rec
	}
	if w.Mode == modeFailover {
		return r.runFailover(ctx, w, p, rec)
	}
	r.seq++
	topic := fmt.Sprintf("%s-r%d-%d", w.Name, s.Round, r.seq)
	if s.Lane.RF > 0 {
		if err := createReplicated(ctx, p, topic, w.Partitions, s.Lane.RF); err != nil {
			rec.Err = "create topic: " + err.Error()
			return rec
		}
	}
	if w.Mode == modeConsume {
		if topic, err = r.fill(ctx, p); err != nil {
			rec.Err = "pre-fill: " + err.Error()
			return rec
		}
	}
	rec.Argv = r.clientArgv(w, p, topic)
	r.noteCommand(w.Name+", "+s.Lane.Label, rec.Argv)

	var scr *scraper
	if s.Lane.Scrape {
		scr = startScraper(p.adminAddr, time.Second)
	}
	var cleanerBefore map[string]float64
	if w.Keys > 0 && p.adminAddr != "" {
		// Keyed workloads count the cleaner's passes over the run
		// (compaction.go); the keyed control should show none.
		if cleanerBefore, err = cleanerCountersSoon(ctx, p.adminAddr); err != nil {
			rec.Notes = append(rec.Notes, "cleaner passes not counted: "+err.Error())
		}
	}
	smp := startSampler(p.pids(), 100*time.Millisecond)
	timeout := r.opts.Warmup + r.duration(w) + 90*time.Second
	switch w.Mode {
	case modeConsume:
		timeout = 5 * time.Minute
	case modeRTT:
		timeout += time.Duration(len(rttKinds)-1) * r.duration(w) // --duration is per kind
	}
	res, clientCPU, start, end, err := runClient(ctx, rec.Argv, timeout)
	samples := smp.stop()
	if scr != nil {
		rec.Scrapes, rec.ScrapeErrors = scr.stop()
	}
	rec.Wall = end.Sub(start).Seconds()
	rec.ClientCPU = clientCPU
	rec.PeakRSSMB = float64(peakRSS(samples)) / 1e6
	rec.BrokerCPUTotal = cpuBetween(samples, start, end)
	rec.Result = res
	switch {
	case w.Mode == modeConsume:
		// A consume run reads exactly the counted records and nothing
		// else, but may idle in a long-poll fetch after the last one, past
		// its measured seconds: its whole life is the right window.
		rec.BrokerCPU = rec.BrokerCPUTotal
	case res != nil && res.Seconds > 0:
		// Produce and e2e warm up first; their measured phase ends when
		// the client stops sending, shortly before it exits.
		rec.BrokerCPU = cpuBetween(samples, end.Add(-time.Duration(res.Seconds*float64(time.Second))), end)
	}
	if err != nil {
		rec.Err = err.Error()
	}
	if !p.alive() {
		rec.Err = strings.TrimSpace(rec.Err + fmt.Sprintf(" (peer %s died during the run: %v; log: %q)", p.spec.Name, p.waitErr, logTail(p.logPath, 2)))
	}
	if cleanerBefore != nil && p.alive() {
		if after, err := cleanerCounters(ctx, p.adminAddr); err != nil {
			rec.Notes = append(rec.Notes, "cleaner passes not counted: "+err.Error())
		} else {
			rec.Cleaner = cleanerDeltaOf(cleanerBefore, after)
		}
	}
	if w.Mode != modeConsume && p.alive() {
		if err := deleteTopic(ctx, p, topic); err != nil {
			rec.Notes = append(rec.Notes, "delete "+topic+": "+err.Error())
		}
		if p.spec.Kind == kindKfake {
			// See kfakepeer: hand the deleted records' memory back before
			// the next run, outside any measured window.
			_ = syscall.Kill(p.pid(), syscall.SIGUSR1)
			time.Sleep(kfakeReleasePause)
		}
	}
	return rec
}

// clientArgv is the load client's command line: `sluice perf` for Kafka
// peers, this binary's JetStream driver (same flags) for JetStream.
func (r *runner) clientArgv(w workload, p *peer, topic string) []string {
	var argv []string
	if p.spec.Kind == kindJS {
		argv = []string{r.tools.Self, "js", w.Mode}
	} else {
		argv = []string{r.tools.Sluice, "perf", w.Mode}
	}
	argv = append(argv, "--brokers", p.addr, "--topic", topic, "--json")
	switch w.Mode {
	case modeConsume:
		argv = append(argv, "--records", strconv.Itoa(r.opts.FillRecords), "--from", "earliest", "--warmup", "0s")
		if w.Raw {
			argv = append(argv, "--raw")
		}
		return argv
	case modeRTT:
		// Its own small records, one partition, acks=all: rtt fixes them.
		return append(argv, "--duration", r.duration(w).String(), "--warmup", r.opts.Warmup.String())
	case modeE2E:
		argv = append(argv, "--rate", strconv.Itoa(w.Rate))
	}
	argv = append(argv, "--duration", r.duration(w).String(), "--warmup", r.opts.Warmup.String(),
		"--record-size", strconv.Itoa(w.RecordSize), "--partitions", strconv.Itoa(w.Partitions))
	if p.spec.Kind != kindJS {
		argv = append(argv, "--acks", w.Acks, "--compression", w.Compression, "--compressibility", compressibility)
	}
	if w.Keys > 0 {
		argv = append(argv, "--keys", strconv.Itoa(w.Keys))
	}
	for _, kv := range w.TopicConfig {
		argv = append(argv, "--topic-config", kv)
	}
	return argv
}

// duration is how long a run of w measures: --duration, or the workload's
// minimum in a full run.
func (r *runner) duration(w workload) time.Duration {
	if r.opts.Quick {
		return r.opts.Duration
	}
	return max(r.opts.Duration, w.MinDuration)
}

// fill writes the consume workloads' topic once per peer start, so every
// consume run reads the same page-cached data.
func (r *runner) fill(ctx context.Context, p *peer) (string, error) {
	key := fmt.Sprintf("%s#%d", p.spec.Name, p.gen)
	if f, ok := r.fills[key]; ok {
		return f.topic, f.err
	}
	topic := fmt.Sprintf("consume-fill-%d", p.gen)
	var argv []string
	if p.spec.Kind == kindJS {
		argv = []string{r.tools.Self, "js", modeProduce}
	} else {
		argv = []string{r.tools.Sluice, "perf", modeProduce, "--acks", "1", "--compression", "none"}
	}
	argv = append(argv, "--brokers", p.addr, "--topic", topic, "--json", "--records", strconv.Itoa(r.opts.FillRecords),
		"--warmup", "0s", "--record-size", strconv.Itoa(consumeRecordSize), "--partitions", "1")
	r.noteCommand("pre-fill, "+p.spec.Name, argv)
	start := time.Now()
	res, _, _, _, err := runClient(ctx, argv, 10*time.Minute)
	if err == nil && res.Records < int64(r.opts.FillRecords)/2 {
		err = fmt.Errorf("pre-fill wrote %d records, want %d", res.Records, r.opts.FillRecords)
	}
	r.fills[key] = fillState{topic: topic, err: err}
	r.logf("pre-fill %s: %d records of %d B in %.1fs (err %v)", p.spec.Name, r.opts.FillRecords, consumeRecordSize, time.Since(start).Seconds(), err)
	return topic, err
}

// runClient runs a load client and decodes its JSON line. It returns the
// client's own CPU time and when it started and exited: the measured phase
// ends at exit, give or take the client's tear-down.
func runClient(ctx context.Context, argv []string, timeout time.Duration) (*clientResult, float64, time.Time, time.Time, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.SysProcAttr = childAttr()
	cmd.Cancel = func() error { return cmd.Process.Kill() }
	var stdout bytes.Buffer
	stderr := &tailBuffer{max: 2048}
	cmd.Stdout, cmd.Stderr = &stdout, stderr
	start := time.Now()
	err := cmd.Run()
	end := time.Now()
	var cpu float64
	if cmd.ProcessState != nil {
		cpu = (cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()).Seconds()
	}
	res, perr := parseClientOutput(stdout.Bytes())
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		return res, cpu, start, end, fmt.Errorf("client timed out after %s", timeout)
	case err != nil:
		msg := strings.TrimSpace(stderr.String())
		return res, cpu, start, end, fmt.Errorf("client: %v: %s", err, truncate(lastLine(msg), 300))
	case perr != nil:
		return nil, cpu, start, end, perr
	}
	return res, cpu, start, end, nil
}

// parseClientOutput takes the last line that holds a JSON object; clients
// may print progress before it.
func parseClientOutput(out []byte) (*clientResult, error) {
	var last []byte
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		if line := bytes.TrimSpace(sc.Bytes()); len(line) > 0 && line[0] == '{' {
			last = append(last[:0], line...)
		}
	}
	if last == nil {
		return nil, fmt.Errorf("client printed no JSON result (%q)", truncate(string(out), 200))
	}
	var r clientResult
	if err := json.Unmarshal(last, &r); err != nil {
		return nil, fmt.Errorf("decode client result: %w", err)
	}
	return &r, nil
}

func lastLine(s string) string {
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = t.buf[len(t.buf)-t.max:]
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// deleteTopic drops a run's topic (stream) so disk and memory use stay flat
// over hundreds of runs.
func deleteTopic(ctx context.Context, p *peer, topic string) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if p.spec.Kind == kindJS {
		nc, err := nats.Connect("nats://"+p.addr, nats.Timeout(5*time.Second))
		if err != nil {
			return err
		}
		defer nc.Close()
		js, err := jetstream.New(nc)
		if err != nil {
			return err
		}
		return js.DeleteStream(ctx, topic)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(p.addr))
	if err != nil {
		return err
	}
	defer cl.Close()
	resp, err := kadm.NewClient(cl).DeleteTopics(ctx, topic)
	if err != nil {
		return err
	}
	return resp.Error()
}

// scraper GETs /metrics at a fixed interval, as a Prometheus server would.
type scraper struct {
	cancel   context.CancelFunc
	done     chan struct{}
	mu       sync.Mutex
	ok, fail int
}

func startScraper(addr string, every time.Duration) *scraper {
	ctx, cancel := context.WithCancel(context.Background())
	s := &scraper{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(s.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			err := scrapeOnce(ctx, addr)
			if ctx.Err() != nil {
				return
			}
			s.mu.Lock()
			if err != nil {
				s.fail++
			} else {
				s.ok++
			}
			s.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return s
}

func (s *scraper) stop() (ok, fail int) {
	s.cancel()
	<-s.done
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.ok, s.fail
}

func scrapeOnce(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("status %s", resp.Status)
	}
	if n == 0 {
		return errors.New("empty body")
	}
	return nil
}
