package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sluice-io/sluice/perf/internal/pace"
)

// jsFlags are the JetStream driver's settings. Names match `sluice perf`,
// so the runner builds one command line for every peer: a topic is a
// stream, partition i is the subject "<topic>.p<i>".
type jsFlags struct {
	brokers    string
	topic      string
	records    int
	duration   time.Duration
	warmup     time.Duration
	recordSize int
	partitions int
	rate       int
	from       string
	create     bool
	window     int
}

// runJetStream is the hidden `js produce|consume|e2e` subcommand: the
// JetStream counterpart of `sluice perf`, printing the same JSON line.
func runJetStream(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, "usage: bench js produce|consume|e2e --brokers HOST:PORT --topic T [flags]")
		return 2
	}
	mode := args[0]
	var f jsFlags
	fs := flag.NewFlagSet("js "+mode, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.brokers, "brokers", "127.0.0.1:4222", "nats-server `host:port`")
	fs.StringVar(&f.topic, "topic", "bench", "stream name; subjects are <topic>.p<partition>")
	fs.IntVar(&f.records, "records", 0, "stop after this many records (0: run for --duration)")
	fs.DurationVar(&f.duration, "duration", 10*time.Second, "measured time when --records is 0")
	fs.DurationVar(&f.warmup, "warmup", time.Second, "unmeasured time first")
	fs.IntVar(&f.recordSize, "record-size", 1024, "payload `bytes` per message")
	fs.IntVar(&f.partitions, "partitions", 1, "subjects to spread messages over")
	fs.IntVar(&f.rate, "rate", 20000, "e2e: messages per second")
	fs.StringVar(&f.from, "from", "earliest", "consume: only earliest is supported")
	fs.BoolVar(&f.create, "create", true, "create the stream (file storage, one replica)")
	fs.IntVar(&f.window, "max-pending", 8192, "async publishes awaiting their ack at most")
	_ = fs.Bool("json", true, "print the result as one JSON line (always on)")
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if f.recordSize < 8 || f.partitions < 1 || f.window < 1 || f.from != "earliest" {
		fmt.Fprintln(stderr, "js: --record-size ≥ 8, --partitions ≥ 1, --max-pending ≥ 1 and --from earliest are required")
		return 2
	}
	ctx := context.Background()
	nc, err := nats.Connect("nats://"+f.brokers, nats.Timeout(5*time.Second))
	if err != nil {
		fmt.Fprintf(stderr, "js: connect %s: %v\n", f.brokers, err)
		return 1
	}
	defer nc.Close()
	// The ack tracker bounds what is in flight to the window; nats.go's own
	// bound sits above it so it never stalls a publish itself.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(2*f.window+16))
	if err != nil {
		fmt.Fprintf(stderr, "js: %v\n", err)
		return 1
	}
	var res *clientResult
	switch mode {
	case modeProduce:
		res, err = jsProduce(ctx, js, f)
	case modeConsume:
		res, err = jsConsume(ctx, js, f)
	case modeE2E:
		res, err = jsE2E(ctx, js, f)
	default:
		err = fmt.Errorf("unknown mode %q", mode)
	}
	if err != nil {
		fmt.Fprintf(stderr, "js %s: %v\n", mode, err)
		return 1
	}
	res.Tool, res.Mode, res.Brokers, res.Topic = "sluice bench js", mode, []string{f.brokers}, f.topic
	res.Config = map[string]any{"record_size": f.recordSize, "partitions": f.partitions, "max_pending": f.window,
		"storage": "file", "replicas": 1}
	if mode == modeE2E {
		res.Config["rate"] = f.rate
	}
	out, _ := json.Marshal(res)
	fmt.Fprintln(stdout, string(out))
	return 0
}

func ensureStream(ctx context.Context, js jetstream.JetStream, f jsFlags) error {
	if !f.create {
		return nil
	}
	_, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{
		Name: f.topic, Subjects: []string{f.topic + ".>"},
		Storage: jetstream.FileStorage, Replicas: 1,
	})
	if err != nil {
		return fmt.Errorf("create stream %s: %w", f.topic, err)
	}
	return nil
}

func subjects(f jsFlags) []string {
	s := make([]string, f.partitions)
	for i := range s {
		s[i] = f.topic + ".p" + strconv.Itoa(i)
	}
	return s
}

// ackTracker waits for publish acks in publish order (one stream acks in
// order), bounding the publishes in flight to its channel's capacity.
type ackTracker struct {
	ch           chan sentMsg
	done         chan struct{}
	measureFrom  time.Time
	acked        int64
	lastAck      time.Time
	lats         []float64 // ms, of acks for messages sent after measureFrom
	errs         int64
	firstErr     string
	recordLatOff bool
}

type sentMsg struct {
	f    jetstream.PubAckFuture
	sent time.Time
}

func newAckTracker(window int, measureFrom time.Time) *ackTracker {
	t := &ackTracker{ch: make(chan sentMsg, window), done: make(chan struct{}), measureFrom: measureFrom}
	go func() {
		defer close(t.done)
		for m := range t.ch {
			select {
			case <-m.f.Ok():
				now := time.Now()
				if !m.sent.Before(t.measureFrom) {
					t.acked++
					t.lastAck = now
					if !t.recordLatOff {
						t.lats = append(t.lats, float64(now.Sub(m.sent))/1e6)
					}
				}
			case err := <-m.f.Err():
				t.errs++
				if t.firstErr == "" {
					t.firstErr = err.Error()
				}
			}
		}
	}()
	return t
}

func (t *ackTracker) close() { close(t.ch); <-t.done }

func jsProduce(ctx context.Context, js jetstream.JetStream, f jsFlags) (*clientResult, error) {
	if err := ensureStream(ctx, js, f); err != nil {
		return nil, err
	}
	subj := subjects(f)
	payload := make([]byte, f.recordSize)
	_, _ = rand.Read(payload)
	start := time.Now()
	measureFrom := start.Add(f.warmup)
	if f.records > 0 {
		measureFrom = start
	}
	deadline := measureFrom.Add(f.duration)
	t := newAckTracker(f.window, measureFrom)
	var pubErrs int64
	var firstPubErr error
	for i := 0; ; i++ {
		if f.records > 0 && i >= f.records || f.records == 0 && i%64 == 0 && time.Now().After(deadline) {
			break
		}
		fut, err := js.PublishAsync(subj[i%len(subj)], payload)
		if err != nil {
			pubErrs++
			if firstPubErr == nil {
				firstPubErr = err
			}
			if pubErrs > 1000 {
				break
			}
			continue
		}
		t.ch <- sentMsg{f: fut, sent: time.Now()}
	}
	t.close()
	res := tally(t.acked, f.recordSize, measureFrom, t.lastAck, t.lats)
	res.Errors = t.errs + pubErrs
	res.FirstError = t.firstErr
	if firstPubErr != nil {
		res.FirstError = firstPubErr.Error()
	}
	if res.Records == 0 {
		return nil, fmt.Errorf("no publish acknowledged (%d errors, first %q)", res.Errors, res.FirstError)
	}
	return res, nil
}

func jsConsume(ctx context.Context, js jetstream.JetStream, f jsFlags) (*clientResult, error) {
	if f.records <= 0 {
		return nil, errors.New("consume needs --records")
	}
	cons, err := js.OrderedConsumer(ctx, f.topic, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %s: %w", f.topic, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, err
	}
	defer it.Stop()
	start := time.Now()
	var n, bytes int64
	for n < int64(f.records) {
		msg, err := it.Next()
		if err != nil {
			return nil, fmt.Errorf("after %d messages: %w", n, err)
		}
		n++
		bytes += int64(len(msg.Data()))
	}
	secs := time.Since(start).Seconds()
	return &clientResult{Records: n, Bytes: bytes, Seconds: secs, RecordsPerSec: float64(n) / secs, MBPerSec: float64(bytes) / secs / 1e6}, nil
}

// jsE2E publishes at a fixed rate, each message stamped with the time it
// was scheduled for, and consumes the stream at once; latency runs from the
// scheduled time, so a publisher that falls behind is charged for it.
func jsE2E(ctx context.Context, js jetstream.JetStream, f jsFlags) (*clientResult, error) {
	if err := ensureStream(ctx, js, f); err != nil {
		return nil, err
	}
	cons, err := js.OrderedConsumer(ctx, f.topic, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return nil, fmt.Errorf("ordered consumer on %s: %w", f.topic, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(4096))
	if err != nil {
		return nil, err
	}
	start := time.Now().Add(50 * time.Millisecond)
	measureFrom := start.Add(f.warmup)
	deadline := measureFrom.Add(f.duration)
	var (
		mu       sync.Mutex
		received int64
		lats     []float64
		lastRecv time.Time
	)
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		for {
			msg, err := it.Next()
			if err != nil {
				return // the iterator was stopped
			}
			now := time.Now()
			sched := time.Unix(0, int64(binary.BigEndian.Uint64(msg.Data())))
			mu.Lock()
			received++
			if !sched.Before(measureFrom) {
				lats = append(lats, float64(now.Sub(sched))/1e6)
				lastRecv = now
			}
			mu.Unlock()
		}
	}()
	subj := subjects(f)
	t := newAckTracker(f.window, start)
	t.recordLatOff = true
	interval := time.Second / time.Duration(f.rate)
	sent := 0
	for {
		now := time.Now()
		if !now.Before(deadline) {
			break
		}
		due := int(now.Sub(start)/interval) + 1
		for ; sent < due; sent++ {
			sched := start.Add(time.Duration(sent) * interval)
			payload := make([]byte, f.recordSize)
			binary.BigEndian.PutUint64(payload, uint64(sched.UnixNano()))
			fut, err := js.PublishAsync(subj[sent%len(subj)], payload)
			if err != nil {
				it.Stop()
				return nil, fmt.Errorf("publish: %w", err)
			}
			t.ch <- sentMsg{f: fut, sent: now}
		}
		// As precise as sluice perf's pacer, so the two clients' e2e
		// latencies compare.
		_ = pace.Until(context.Background(), start.Add(time.Duration(sent)*interval))
	}
	t.close()
	wait := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		r := received
		mu.Unlock()
		if r >= int64(sent) || time.Now().After(wait) {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	it.Stop()
	<-consumed
	mu.Lock()
	defer mu.Unlock()
	res := tally(int64(len(lats)), f.recordSize, measureFrom, lastRecv, lats)
	res.Errors = t.errs + int64(sent) - received
	res.FirstError = t.firstErr
	if received < int64(sent) && res.FirstError == "" {
		res.FirstError = fmt.Sprintf("%d of %d messages not consumed within 10s", int64(sent)-received, sent)
	}
	if res.Records == 0 {
		return nil, fmt.Errorf("no message consumed (%s)", res.FirstError)
	}
	return res, nil
}

// tally turns counts and latencies (ms) into a result.
func tally(records int64, size int, from, to time.Time, lats []float64) *clientResult {
	secs := to.Sub(from).Seconds()
	if secs <= 0 {
		secs = math.SmallestNonzeroFloat64
	}
	bytes := records * int64(size)
	r := &clientResult{Records: records, Bytes: bytes, Seconds: secs,
		RecordsPerSec: float64(records) / secs, MBPerSec: float64(bytes) / secs / 1e6}
	r.Latency, r.CDF = latencyStats(lats)
	return r
}

// cdfPercentiles are the points of every latency CDF this driver prints.
var cdfPercentiles = []float64{50, 75, 90, 95, 99, 99.5, 99.9, 99.99, 100}

// latencyStats sorts lats (ms) in place and summarizes them.
func latencyStats(lats []float64) (latencySummary, [][2]float64) {
	if len(lats) == 0 {
		return latencySummary{}, nil
	}
	slices.Sort(lats)
	var sum float64
	for _, l := range lats {
		sum += l
	}
	s := latencySummary{Count: int64(len(lats)), Mean: sum / float64(len(lats)),
		P50: percentile(lats, 50), P99: percentile(lats, 99), P999: percentile(lats, 99.9), Max: lats[len(lats)-1]}
	cdf := make([][2]float64, len(cdfPercentiles))
	for i, p := range cdfPercentiles {
		cdf[i] = [2]float64{p, percentile(lats, p)}
	}
	return s, cdf
}

// percentile is the nearest-rank percentile of sorted values.
func percentile(sorted []float64, p float64) float64 {
	if len(sorted) == 0 {
		return math.NaN()
	}
	// The epsilon keeps 99.9% of 1000 at rank 999: p/100 is not exact in
	// binary and would round the rank up.
	rank := int(math.Ceil(p/100*float64(len(sorted)) - 1e-9))
	return sorted[min(max(rank, 1), len(sorted))-1]
}
