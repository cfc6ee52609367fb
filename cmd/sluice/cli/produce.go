package cli

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const produceUsage = `usage: sluice produce TOPIC [--file FILE] [flags]

Produces one record per input line (without its newline) to TOPIC, reading
FILE, or standard input when there is no --file. Records are sent in
batches as the input is read, without waiting for one to be acknowledged
before the next. At the end the number of records produced is printed on
stderr; if any was not acknowledged, the exit code is 1 and that line says
how many and why the first failed. A TOPIC that does not exist is created
if the broker allows it (auto.create.topics.enable); otherwise the error
says how to create it.

The first Ctrl-C (or SIGTERM) stops reading input and waits up to --timeout
for the records read so far; the counts of delivered and failed records are
printed and the exit code is 130 (143 for SIGTERM). A second Ctrl-C stops
waiting. When stderr is a terminal, a progress line is updated once a
second.

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
  --timeout DURATION       time limit for connecting, for each record to be
                           acknowledged, for room in a full send buffer and
                           for the final flush (default 10s)
  --json                   print the final counts as a JSON document on stdout
`

// progressInterval is how often the progress line may change; a variable
// so tests need not wait seconds.
var progressInterval = time.Second

// produceMaxBuffered is how many records the client may hold unacknowledged;
// reading input pauses beyond it. A variable so tests can fill it quickly.
var produceMaxBuffered int64 = 10000

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

	opts = append(opts, kgo.MaxBufferedRecords(int(produceMaxBuffered)))

	return runStreaming(ctx, cf, produceUsage, stderr, opts, func(ctx context.Context, c *client) error {
		sctx, cancel := context.WithTimeout(ctx, cf.timeout)
		n, err := produceTarget(sctx, c, topic)
		cancel()
		if err != nil {
			return err
		}
		if *partition >= n {
			return fmt.Errorf("topic %q has no partition %d (it has %d)", topic, *partition, n)
		}
		p := &producer{
			cl:          c.kgo,
			topic:       topic,
			sep:         []byte(*sep),
			headers:     headers,
			partition:   int32(*partition),
			timeout:     delivery,
			maxBuffered: produceMaxBuffered,
			room:        make(chan struct{}, 1),
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
