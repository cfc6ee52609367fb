package cli

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const produceUsage = `usage: sluice produce TOPIC [--file FILE] [flags]

Produces one record per input line (without its newline) to TOPIC, reading
FILE, or standard input when there is no --file. Records are sent in
batches as the input is read, without waiting for one to be acknowledged
before the next. At the end the number of records produced is printed on
stderr; if any failed, the exit code is 1 and that line says how many and
why the first did. Ctrl-C (or SIGTERM) stops reading: the lines read so far
are still produced. When stderr is a terminal, a progress line is updated
once a second.

flags:
  --file FILE              read the records from FILE ("-" for standard input)
  --key-separator SEP      split each line at the first SEP into key and value;
                           a line without SEP is a value with a null key
  --header KEY=VALUE       add a header to every record (repeatable, in order)
  --partition N            produce every record to partition N (default: by
                           key hash, or spread over partitions without keys)
  --acks all|1|0           wait for all in-sync replicas (default), the leader
                           only, or nothing
  --compression CODEC      none (default), gzip, snappy, lz4 or zstd
  --brokers HOST:PORT,...  brokers to bootstrap from
                           (default: $SLUICE_BROKERS, else 127.0.0.1:9092)
  --timeout DURATION       time limit for connecting, and for each record to be
                           acknowledged (default 10s)
  --json                   print the final counts as a JSON document on stdout
`

// progressInterval is how often the progress line may change; a variable
// so tests need not wait seconds.
var progressInterval = time.Second

// headerFlag collects repeatable KEY=VALUE record headers. Kafka headers
// are an ordered list in which keys may repeat, so unlike kvFlag nothing
// is merged.
type headerFlag []kgo.RecordHeader

func (h *headerFlag) String() string { return fmt.Sprint(len(*h), " headers") }

func (h *headerFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q is not KEY=VALUE", v)
	}
	*h = append(*h, kgo.RecordHeader{Key: k, Value: []byte(val)})
	return nil
}

var compressionCodecs = map[string]kgo.CompressionCodec{
	"none":   kgo.NoCompression(),
	"gzip":   kgo.GzipCompression(),
	"snappy": kgo.SnappyCompression(),
	"lz4":    kgo.Lz4Compression(),
	"zstd":   kgo.ZstdCompression(),
}

// produceOptions turns --acks and --compression into client options.
func produceOptions(acks, compression string) ([]kgo.Opt, error) {
	codec, ok := compressionCodecs[compression]
	if !ok {
		return nil, usagef("--compression: unknown codec %q (want none, gzip, snappy, lz4 or zstd)", compression)
	}
	opts := []kgo.Opt{kgo.ProducerBatchCompression(codec)}
	switch acks {
	case "all", "-1":
		opts = append(opts, kgo.RequiredAcks(kgo.AllISRAcks()))
	case "1":
		// Idempotent writes require acks=all.
		opts = append(opts, kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite())
	case "0":
		opts = append(opts, kgo.RequiredAcks(kgo.NoAck()), kgo.DisableIdempotentWrite())
	default:
		return nil, usagef("--acks: want all, 1 or 0, got %q", acks)
	}
	return opts, nil
}

// produceResult is what "produce --json" prints.
type produceResult struct {
	Topic       string  `json:"topic"`
	Produced    int64   `json:"produced"`
	Failed      int64   `json:"failed"`
	FirstError  *string `json:"first_error"`
	Interrupted bool    `json:"interrupted"`
}

func runProduce(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("produce")
	var headers headerFlag
	file := fs.String("file", "", "")
	sep := fs.String("key-separator", "", "")
	fs.Var(&headers, "header", "")
	partition := fs.Int("partition", -1, "")
	acks := fs.String("acks", "all", "")
	compression := fs.String("compression", "none", "")
	names, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, produceUsage, stdout, stderr)
	}
	var opts []kgo.Opt
	switch {
	case len(names) != 1:
		err = usagef("name exactly one TOPIC, got %d", len(names))
	case *partition < -1 || *partition > 1<<31-1:
		err = usagef("--partition must be a partition number (0 or more), got %d", *partition)
	default:
		opts, err = produceOptions(*acks, *compression)
	}
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "key-separator" && *sep == "" && err == nil {
			err = usagef("--key-separator must not be empty")
		}
	})
	if err != nil {
		return reportUsage(stderr, produceUsage, err)
	}
	topic := names[0]
	if *partition >= 0 {
		opts = append(opts, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	}
	// A record still unacknowledged after --timeout fails rather than
	// holding the command forever when the broker goes away (the client
	// accepts no less than a second).
	delivery := max(cf.timeout, time.Second)
	opts = append(opts, kgo.RecordDeliveryTimeout(delivery))

	in := stdin
	if *file != "" && *file != "-" {
		f, err := os.Open(*file)
		if err != nil {
			return report(stderr, produceUsage, cf.timeout, fmt.Errorf("opening input: %w", err))
		}
		defer f.Close()
		in = f
	}

	return runStreaming(ctx, cf, produceUsage, stderr, opts, func(ctx context.Context, c *client) error {
		sctx, cancel := context.WithTimeout(ctx, cf.timeout)
		parts, err := lookupTopics(sctx, c, []string{topic})
		cancel()
		if err != nil {
			return err
		}
		if n := len(parts[topic]); *partition >= n {
			return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, *partition, n)
		}
		p := &producer{
			cl:        c.kgo,
			topic:     topic,
			sep:       []byte(*sep),
			headers:   headers,
			partition: int32(*partition),
			timeout:   delivery,
		}
		res, err := p.run(ctx, in, stderr)
		if cf.json {
			if werr := writeJSON(stdout, res); werr != nil && err == nil {
				err = werr
			}
		}
		return err
	})
}

// producer feeds input lines to the client and counts the outcomes, which
// arrive on the client's goroutines.
type producer struct {
	cl        *kgo.Client
	topic     string
	sep       []byte
	headers   []kgo.RecordHeader
	partition int32         // -1: the client's partitioner decides
	timeout   time.Duration // the record delivery timeout

	sent, ok, failed atomic.Int64
	errOnce          sync.Once
	firstErr         error
}

func (p *producer) record(line []byte) *kgo.Record {
	r := &kgo.Record{Topic: p.topic, Value: line, Headers: p.headers}
	if p.partition >= 0 {
		r.Partition = p.partition
	}
	if len(p.sep) > 0 {
		if k, v, found := bytes.Cut(line, p.sep); found {
			r.Key, r.Value = k[:len(k):len(k)], v
		}
	}
	return r
}

func (p *producer) promise(_ *kgo.Record, err error) {
	if err == nil {
		p.ok.Add(1)
		return
	}
	// firstErr is set before the count moves, so whoever sees a failure
	// counted also sees an error to report.
	p.errOnce.Do(func() { p.firstErr = err })
	p.failed.Add(1)
}

// run produces every line of in until the input ends or ctx is cancelled,
// waits for the outcome of every record sent, and reports on stderr.
func (p *producer) run(ctx context.Context, in io.Reader, stderr io.Writer) (produceResult, error) {
	lines, readErr, stop := readLines(in)
	defer stop()

	var tick <-chan time.Time
	showProgress := isTerminal(stderr)
	if showProgress {
		t := time.NewTicker(progressInterval)
		defer t.Stop()
		tick = t.C
	}
	interrupted := false
read:
	for {
		select {
		case <-ctx.Done():
			interrupted = true
			break read
		case line, more := <-lines:
			if !more {
				break read
			}
			p.sent.Add(1)
			// Not ctx: records already read must still go out after
			// Ctrl-C; RecordDeliveryTimeout bounds them instead.
			p.cl.Produce(context.Background(), p.record(line), p.promise)
		case <-tick:
			fmt.Fprintf(stderr, "\r%d records read, %d acknowledged, %d failed\x1b[K", p.sent.Load(), p.ok.Load(), p.failed.Load())
		}
	}
	// Flush returns once every record has succeeded or failed. The
	// delivery timeout normally keeps that short, but the client re-sends
	// a batch the broker answered without that partition regardless of it,
	// so a bound of our own keeps a misbehaving broker from holding the
	// command forever.
	fctx, cancel := context.WithTimeout(context.Background(), 2*p.timeout)
	_ = p.cl.Flush(fctx)
	cancel()
	if showProgress {
		fmt.Fprint(stderr, "\r\x1b[K")
	}

	res := produceResult{Topic: p.topic, Produced: p.ok.Load(), Failed: p.failed.Load(), Interrupted: interrupted}
	var errs []string
	if res.Failed > 0 {
		msg := p.firstErr.Error()
		res.FirstError = &msg
		errs = append(errs, fmt.Sprintf("%d failed, the first with: %s", res.Failed, msg))
	}
	if pending := p.sent.Load() - res.Produced - res.Failed; pending > 0 {
		msg := fmt.Sprintf("%d not acknowledged within %s", pending, 2*p.timeout)
		if res.FirstError == nil {
			res.FirstError = &msg
		}
		res.Failed += pending
		errs = append(errs, msg)
	}
	if !interrupted {
		if err := readErr(); err != nil {
			errs = append(errs, fmt.Sprintf("reading input: %v", err))
		}
	}
	if len(errs) > 0 {
		return res, fmt.Errorf("produced %d of %d records to %q; %s", res.Produced, p.sent.Load(), p.topic, strings.Join(errs, "; "))
	}
	note := ""
	if interrupted {
		note = " (interrupted: the rest of the input was not read)"
	}
	fmt.Fprintf(stderr, "produced %d records to %q%s\n", res.Produced, p.topic, note)
	return res, nil
}

// readLines reads in on its own goroutine, so that the producer can notice
// Ctrl-C even while a read from a terminal blocks. Each line is a fresh
// slice (the client keeps it until the record is acknowledged). readErr is
// valid once lines is closed; stop releases the goroutine if the caller
// quits early (a read already blocked stays blocked until the process
// exits, which is harmless).
func readLines(in io.Reader) (lines <-chan []byte, readErr func() error, stop func()) {
	ch := make(chan []byte, 256)
	done := make(chan struct{})
	var err error
	go func() {
		defer close(ch)
		br := bufio.NewReaderSize(in, 64<<10)
		for {
			line, rerr := br.ReadBytes('\n')
			if n := len(line); n > 0 {
				if line[n-1] == '\n' {
					line = line[:n-1]
				}
				select {
				case ch <- line:
				case <-done:
					return
				}
			}
			if rerr != nil {
				if !errors.Is(rerr, io.EOF) {
					err = rerr
				}
				return
			}
		}
	}()
	var once sync.Once
	return ch, func() error { return err }, func() { once.Do(func() { close(done) }) }
}
