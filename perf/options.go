package perf

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

const (
	brokersEnv     = "SLUICE_BROKERS"
	defaultBrokers = "127.0.0.1:9092"

	modeProduce = "produce"
	modeConsume = "consume"
	modeE2E     = "e2e"
	modeRTT     = "rtt"

	// clientID names the tool's connections in brokers' logs.
	clientID = "sluice-perf"

	// idempotentInflight is what kgo allows in flight per broker for an
	// idempotent producer; it cannot be configured there.
	idempotentInflight = 5

	// stampSize is the prefix of an e2e record's value that carries its
	// scheduled send time.
	stampSize = 8
)

// options is one parsed and validated command line.
type options struct {
	mode     string
	brokers  []string
	topic    string
	json     bool
	records  int64
	duration time.Duration
	clients  int
	warmup   time.Duration
	timeout  time.Duration

	// produce and e2e
	recordSize      int
	compressibility float64
	partitions      int
	create          bool
	acks            string
	compression     string
	idempotent      bool
	linger          time.Duration
	batchBytes      int
	maxInflight     int
	maxBuffered     int
	rate            float64
	trace           string // e2e: file for the per-record trace; "": none

	// produce: keyed records and the created topic's configs
	keys        int        // distinct keys records cycle through; 0: no key
	topicConfig []configKV // --topic-config, in the order given

	// consume
	raw               bool
	fetchMaxBytes     int
	partitionMaxBytes int
	from              string

	// rtt
	kinds []string // request kinds, in the order they run
	group string   // consumer group of the OffsetCommit requests
}

// usageError is a bad command line: Run answers it with exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// parseOptions parses the flags of one mode. flag.ErrHelp comes back
// unwrapped so that the caller can print the help on stdout.
func parseOptions(mode string, args []string) (*options, error) {
	o := &options{mode: mode, clients: 1}
	fs := flag.NewFlagSet("sluice perf "+mode, flag.ContinueOnError)
	fs.SetOutput(io.Discard) // Run decides where help and errors go
	var brokers, kinds string
	fs.StringVar(&brokers, "brokers", "", "")
	fs.StringVar(&o.topic, "topic", "", "")
	fs.BoolVar(&o.json, "json", false, "")
	fs.Int64Var(&o.records, "records", 0, "")
	fs.DurationVar(&o.duration, "duration", 0, "")
	if mode != modeRTT {
		// rtt is one client by definition: one request in flight.
		fs.IntVar(&o.clients, "clients", 1, "")
	}
	fs.DurationVar(&o.warmup, "warmup", 0, "")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Second, "")
	if mode == modeProduce || mode == modeE2E {
		fs.IntVar(&o.recordSize, "record-size", 1024, "")
		fs.Float64Var(&o.compressibility, "compressibility", 0, "")
		fs.IntVar(&o.partitions, "partitions", 1, "")
		fs.BoolVar(&o.create, "create", true, "")
		fs.StringVar(&o.acks, "acks", "all", "")
		fs.StringVar(&o.compression, "compression", "none", "")
		fs.BoolVar(&o.idempotent, "idempotent", false, "")
		fs.DurationVar(&o.linger, "linger", 0, "")
		fs.IntVar(&o.batchBytes, "batch-bytes", 1<<20, "")
		fs.IntVar(&o.maxInflight, "max-inflight", idempotentInflight, "")
		fs.IntVar(&o.maxBuffered, "max-buffered", 100000, "")
	}
	if mode == modeProduce {
		fs.IntVar(&o.keys, "keys", 0, "")
		fs.Func("topic-config", "", func(v string) error {
			kv, err := parseConfigKV(v, o.topicConfig)
			if err == nil {
				o.topicConfig = append(o.topicConfig, kv)
			}
			return err
		})
	}
	if mode == modeE2E {
		fs.Float64Var(&o.rate, "rate", 0, "")
		fs.StringVar(&o.trace, "trace", "", "")
	}
	if mode == modeRTT {
		fs.IntVar(&o.recordSize, "record-size", rttRecordSize, "")
		fs.BoolVar(&o.create, "create", true, "")
		fs.StringVar(&kinds, "kinds", strings.Join(rttKinds, ","), "")
		fs.StringVar(&o.group, "group", rttGroup, "")
	}
	if mode == modeConsume {
		fs.BoolVar(&o.raw, "raw", false, "")
		fs.IntVar(&o.fetchMaxBytes, "fetch-max-bytes", 50<<20, "")
		fs.IntVar(&o.partitionMaxBytes, "partition-max-bytes", 1<<20, "")
		fs.StringVar(&o.from, "from", "earliest", "")
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, err
		}
		return nil, usagef("%v", err)
	}
	if fs.NArg() > 0 {
		return nil, usagef("unexpected argument %q", fs.Arg(0))
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })

	var err error
	if o.brokers, err = resolveBrokers(brokers); err != nil {
		return nil, err
	}
	if mode == modeRTT {
		o.rttDefaults()
		if o.kinds, err = parseKinds(kinds); err != nil {
			return nil, err
		}
	}
	if o.acks == "-1" {
		o.acks = "all" // Kafka's spelling of the same setting
	}
	if mode != modeConsume && !set["idempotent"] {
		// kgo's own default: idempotent exactly when acks=all allows it.
		o.idempotent = o.acks == "all"
	}
	if err := o.validate(set); err != nil {
		return nil, err
	}
	return o, nil
}

func (o *options) validate(set map[string]bool) error {
	switch {
	case o.topic == "":
		return usagef("--topic is required")
	case o.records < 0:
		return usagef("--records must not be negative, got %d", o.records)
	case o.duration < 0:
		return usagef("--duration must not be negative, got %s", o.duration)
	case o.records == 0 && o.duration == 0:
		return usagef("give --records N or --duration D (or both: whichever comes first)")
	case o.clients < 1:
		return usagef("--clients must be at least 1, got %d", o.clients)
	case o.warmup < 0:
		return usagef("--warmup must not be negative, got %s", o.warmup)
	case o.timeout <= 0:
		return usagef("--timeout must be positive, got %s", o.timeout)
	}
	switch o.mode {
	case modeConsume:
		return o.validateConsume()
	case modeRTT:
		return o.validateRTT()
	}
	return o.validateProduce(set)
}

func (o *options) validateProduce(set map[string]bool) error {
	minSize := 1
	if o.mode == modeE2E {
		minSize = stampSize
	}
	switch {
	case o.recordSize < minSize:
		return usagef("--record-size must be at least %d, got %d", minSize, o.recordSize)
	case o.batchBytes < 1 || o.batchBytes > 1<<30:
		return usagef("--batch-bytes must be between 1 and %d, got %d", 1<<30, o.batchBytes)
	case o.recordSize > o.batchBytes:
		return usagef("--record-size %d does not fit in --batch-bytes %d", o.recordSize, o.batchBytes)
	case o.compressibility < 0 || o.compressibility > 1:
		return usagef("--compressibility must be between 0 and 1, got %g", o.compressibility)
	case o.partitions < 1:
		return usagef("--partitions must be at least 1, got %d", o.partitions)
	case o.linger < 0:
		return usagef("--linger must not be negative, got %s", o.linger)
	case o.maxInflight < 1:
		return usagef("--max-inflight must be at least 1, got %d", o.maxInflight)
	case o.maxBuffered < 1:
		return usagef("--max-buffered must be at least 1, got %d", o.maxBuffered)
	case o.keys < 0:
		return usagef("--keys must not be negative, got %d", o.keys)
	case len(o.topicConfig) > 0 && !o.create:
		return usagef("--topic-config applies to a topic the tool creates: drop --create=false")
	}
	if _, err := acksOpt(o.acks); err != nil {
		return err
	}
	if _, err := codecOpt(o.compression); err != nil {
		return err
	}
	if o.idempotent && o.acks != "all" {
		return usagef("--idempotent needs --acks all, got --acks %s", o.acks)
	}
	if o.idempotent && set["max-inflight"] && o.maxInflight != idempotentInflight {
		return usagef("--max-inflight %d needs --idempotent=false: an idempotent producer always keeps %d requests in flight",
			o.maxInflight, idempotentInflight)
	}
	if o.mode == modeE2E {
		if !set["rate"] || o.rate <= 0 {
			return usagef("--rate R (records per second, > 0) is required")
		}
	}
	return nil
}

func (o *options) validateConsume() error {
	switch {
	case o.fetchMaxBytes < 1:
		return usagef("--fetch-max-bytes must be at least 1, got %d", o.fetchMaxBytes)
	case o.partitionMaxBytes < 1:
		return usagef("--partition-max-bytes must be at least 1, got %d", o.partitionMaxBytes)
	case o.from != "earliest" && o.from != "latest":
		return usagef("--from must be earliest or latest, got %q", o.from)
	}
	return nil
}

// configKV is one --topic-config setting.
type configKV struct{ key, value string }

// parseConfigKV parses one --topic-config k=v. A key given twice is an
// error rather than last-one-wins: the run would otherwise not measure
// what one of the two flags says.
func parseConfigKV(v string, seen []configKV) (configKV, error) {
	k, val, ok := strings.Cut(v, "=")
	k = strings.TrimSpace(k)
	if !ok || k == "" {
		return configKV{}, fmt.Errorf("want key=value, got %q", v)
	}
	for _, s := range seen {
		if s.key == k {
			return configKV{}, fmt.Errorf("%s given twice", k)
		}
	}
	return configKV{key: k, value: val}, nil
}

// topicConfigs is --topic-config as CreateTopics takes it; nil when empty.
func (o *options) topicConfigs() map[string]*string {
	if len(o.topicConfig) == 0 {
		return nil
	}
	m := make(map[string]*string, len(o.topicConfig))
	for _, kv := range o.topicConfig {
		m[kv.key] = &kv.value
	}
	return m
}

// resolveBrokers applies the precedence flag > environment > default, the
// same as the admin commands.
func resolveBrokers(flagValue string) ([]string, error) {
	raw, from := flagValue, "--brokers"
	if raw == "" {
		raw, from = os.Getenv(brokersEnv), "$"+brokersEnv
	}
	if raw == "" {
		raw = defaultBrokers
	}
	var out []string
	for _, b := range strings.Split(raw, ",") {
		if b = strings.TrimSpace(b); b == "" {
			continue
		}
		if strings.ContainsAny(b, " \t/") {
			return nil, usagef("%s: %q is not a host:port address", from, b)
		}
		out = append(out, b)
	}
	if len(out) == 0 {
		return nil, usagef("%s: no broker addresses given", from)
	}
	return out, nil
}

func acksOpt(acks string) (kgo.Acks, error) {
	switch acks {
	case "all":
		return kgo.AllISRAcks(), nil
	case "1":
		return kgo.LeaderAck(), nil
	case "0":
		return kgo.NoAck(), nil
	}
	return kgo.Acks{}, usagef("--acks must be all, 1 or 0, got %q", acks)
}

func codecOpt(name string) (kgo.CompressionCodec, error) {
	switch name {
	case "none":
		return kgo.NoCompression(), nil
	case "gzip":
		return kgo.GzipCompression(), nil
	case "snappy":
		return kgo.SnappyCompression(), nil
	case "lz4":
		return kgo.Lz4Compression(), nil
	case "zstd":
		return kgo.ZstdCompression(), nil
	}
	return kgo.CompressionCodec{}, usagef("--compression must be none, gzip, snappy, lz4 or zstd, got %q", name)
}

// baseOpts are the options of every client a run makes. The timeouts keep a
// dead or silent broker from holding the run past --timeout while
// connecting.
func (o *options) baseOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(o.brokers...),
		kgo.ClientID(clientID),
		kgo.DialTimeout(o.timeout),
		kgo.RequestTimeoutOverhead(o.timeout),
	}
}

// producerOpts turns the produce flags into kgo options; validate has
// already vetted every value.
func (o *options) producerOpts() []kgo.Opt {
	acks, _ := acksOpt(o.acks)
	codec, _ := codecOpt(o.compression)
	opts := []kgo.Opt{
		kgo.RequiredAcks(acks),
		kgo.ProducerBatchCompression(codec),
		kgo.ProducerLinger(o.linger),
		kgo.ProducerBatchMaxBytes(int32(o.batchBytes)),
		kgo.MaxBufferedRecords(o.maxBuffered),
		// kgo retries a record forever by default; a broker that stops
		// answering mid-run must end the run with errors, not hang it.
		kgo.RecordDeliveryTimeout(o.timeout),
	}
	if !o.idempotent {
		// kgo keeps one request in flight without idempotence so that
		// retries cannot reorder; a load generator does not care about
		// order, so --max-inflight (default 5) applies.
		opts = append(opts, kgo.DisableIdempotentWrite(),
			kgo.MaxProduceRequestsInflightPerBroker(o.maxInflight))
	}
	return opts
}

// effectiveInflight is what the producer really keeps in flight, for the
// report.
func (o *options) effectiveInflight() int {
	if o.mode == modeRTT {
		return 1 // ProduceSync, one record at a time
	}
	if o.idempotent {
		return idempotentInflight
	}
	return o.maxInflight
}
