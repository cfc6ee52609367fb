package perf

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"time"
)

// Exit codes, as for the admin commands: scripts can tell a typo in the
// command line (2) from a cluster that failed the run (1).
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

const usage = `usage: sluice perf produce|consume|e2e|rtt [flags]

Load generator for any Kafka-compatible broker.

  produce  send records as fast as the producer settings allow; latency is
           send call to acknowledgement
  consume  read a topic and count records and bytes (--raw: the broker's
           fetch path alone, records not decoded)
  e2e      produce at a fixed --rate and consume in the same process;
           latency is scheduled send time to receipt
  rtt      one request in flight, one after the other: the round trip of
           Produce, Fetch, Metadata and OffsetCommit at low load

Run "sluice perf MODE --help" for the flags of a mode.
`

const brokersUsage = `  --brokers HOST:PORT,...   brokers to bootstrap from
                            (default: $SLUICE_BROKERS, else 127.0.0.1:9092)
  --topic NAME              topic to use (required)
`

const jsonUsage = `  --json                    print one JSON line (perf.Result) and nothing
                            else on stdout
`

const commonUsage = brokersUsage + `  --records N               stop after N measured records
  --duration D              stop after D of measurement (e.g. 30s); give
                            --records, --duration or both (first one wins)
  --warmup D                run D before measuring; --records and --duration
                            count from its end (default 0)
  --clients N               independent clients sharing the work (default 1)
  --timeout D               bound for connecting and setup, for delivering
                            each record, and for the final drain of records
                            in flight (default 10s)
` + jsonUsage

const produceFlagsUsage = `  --record-size BYTES       value size (default 1024)
  --compressibility F       fraction of each value that compresses away,
                            0 (random bytes) to 1 (default 0)
  --create                  create the topic if missing, replication factor 1
                            (default true; --create=false to skip)
  --partitions N            partitions of a created topic (default 1)
  --acks all|1|0            required acknowledgements (default all)
  --compression CODEC       none, gzip, snappy, lz4 or zstd (default none)
  --idempotent              idempotent producer (default: on with --acks all)
  --linger D                producer linger (default 0)
  --batch-bytes N           maximum batch size (default 1048576)
  --max-inflight N          produce requests in flight per broker without
                            idempotence (default 5; idempotent: always 5)
  --max-buffered N          records buffered per client (default 100000)
`

const keyedFlagsUsage = `  --keys N                  give each record a key, "k0" to "k<N-1>" in turn
                            (default 0: no key; compacted topics refuse
                            records without one)
  --topic-config K=V        config of a created topic, e.g.
                            cleanup.policy=compact; repeat for more
`

var modeUsage = map[string]string{
	modeProduce: "usage: sluice perf produce --topic T (--records N | --duration D) [flags]\n\n" +
		"Produce as fast as possible and measure throughput and send-to-ack latency.\n\n" +
		commonUsage + produceFlagsUsage + keyedFlagsUsage,
	modeConsume: "usage: sluice perf consume --topic T (--records N | --duration D) [flags]\n\n" +
		"Consume a topic (assigned partitions, no group) and measure throughput.\n\n" +
		commonUsage + `  --from earliest|latest    where to start in every partition (default earliest)
  --fetch-max-bytes N       bytes per fetch response (default 52428800)
  --partition-max-bytes N   bytes per partition in a fetch (default 1048576)
  --raw                     issue Fetch requests directly, one in flight per
                            leader, and count record batches without
                            decoding them: measures the broker, not the client
`,
	modeE2E: "usage: sluice perf e2e --topic T --rate R (--records N | --duration D) [flags]\n\n" +
		"Produce on a fixed schedule (record i due at start + i/R) and consume in the\n" +
		"same process, from the end of every partition. Latency runs from a record's\n" +
		"scheduled send time, carried as big-endian unix nanoseconds in the first 8\n" +
		"bytes of its value, to its receipt, so a producer that falls behind shows up\n" +
		"in the latencies. --clients producers share the schedule; one consumer\n" +
		"measures. Records acknowledged but not received within --timeout after the\n" +
		"end count as errors, and so do records still unsent --timeout after the end\n" +
		"of a --duration (the schedule is then abandoned).\n\n" +
		commonUsage + "  --rate R                  records per second (required)\n" +
		"  --trace FILE              write when each record was due, sent,\n" +
		"                            acknowledged and received, each Produce and\n" +
		"                            Fetch round trip and the client's garbage\n" +
		"                            collections to FILE (format: perf/e2e_trace.go)\n" +
		produceFlagsUsage,
	modeRTT: "usage: sluice perf rtt --topic T (--records N | --duration D) [flags]\n\n" +
		"Send one request at a time on one client and time each round trip: what a\n" +
		"user feels when the broker is otherwise idle. Each kind runs in turn for\n" +
		"--records requests or --duration: Produce (one record, acks=all, linger 0),\n" +
		"Fetch (one record that exists, from the partition's leader), Metadata (the\n" +
		"topic) and OffsetCommit (one partition, for --group, generation -1).\n\n" +
		brokersUsage + `  --records N               requests of each kind
  --duration D              time per kind; give --records, --duration or
                            both (first one wins)
  --warmup D                cycle through the kinds for D before measuring
                            (default 0; the first request of each kind is
                            always sent unmeasured)
  --kinds LIST              request kinds in the order they run (default
                            Produce,Fetch,Metadata,OffsetCommit)
  --record-size BYTES       value size of produced records (default 100)
  --create                  create the topic if missing, one partition
                            (default true)
  --group NAME              group OffsetCommit commits for
                            (default sluice-perf-rtt)
  --timeout D               bound for connecting, setup and each request
                            (default 10s)
` + jsonUsage,
}

// Run executes "sluice perf": args[0] is the mode (produce, consume, e2e
// or rtt), the rest its flags. The result goes to stdout, progress (on a
// terminal) and errors to stderr. It returns the exit code: 0 when the run
// completed, 1 when it could not run or no record at all got through, 2
// for a bad command line.
func Run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	mode := args[0]
	switch mode {
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	case modeProduce, modeConsume, modeE2E, modeRTT:
	default:
		fmt.Fprintf(stderr, "sluice perf: unknown mode %q\n\n%s", mode, usage)
		return exitUsage
	}
	o, err := parseOptions(mode, args[1:])
	if errors.Is(err, flag.ErrHelp) {
		fmt.Fprint(stdout, modeUsage[mode])
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf %s: %s\n\n%s", mode, oneLine(err.Error()), modeUsage[mode])
		return exitUsage
	}

	// Ctrl-C ends the measurement early but still reports it.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	res, err := execute(ctx, o, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf %s: %s\n", mode, oneLine(err.Error()))
		return exitError
	}
	if o.json {
		err = writeJSON(stdout, res)
	} else {
		err = writeSummary(stdout, res)
	}
	if err != nil {
		fmt.Fprintf(stderr, "sluice perf %s: writing result: %s\n", mode, oneLine(err.Error()))
		return exitError
	}
	if res.Records == 0 && res.Errors > 0 {
		fmt.Fprintf(stderr, "sluice perf %s: every record failed: %s\n", mode, res.FirstError)
		return exitError
	}
	return exitOK
}

func execute(ctx context.Context, o *options, progressTo io.Writer) (Result, error) {
	var (
		out outcome
		err error
	)
	rn := &run{progressTo: progressTo}
	switch {
	case o.mode == modeProduce:
		out, err = runProduce(ctx, o, rn)
	case o.mode == modeE2E:
		out, err = runE2E(ctx, o, rn)
	case o.mode == modeRTT:
		out, err = runRTT(ctx, o, rn)
	case o.raw:
		out, err = runRaw(ctx, o, rn)
	default:
		out, err = runConsume(ctx, o, rn)
	}
	if err != nil {
		return Result{}, err
	}
	return newResult(o, out), nil
}

// run is the frame shared by the modes: once setup is done, begin starts
// the clock, the meter and the progress line.
type run struct {
	progressTo   io.Writer
	stopProgress func()
}

func (rn *run) begin(o *options, withLatency bool) *meter {
	m := newMeter(time.Now(), o, withLatency)
	rn.stopProgress = startProgress(rn.progressTo, m)
	return m
}

// end stops the progress line and returns the stop time of the run.
func (rn *run) end() time.Time {
	stop := time.Now()
	if rn.stopProgress != nil {
		rn.stopProgress()
	}
	return stop
}

// window returns the context of the measured run: done at the end of
// --duration (counted after the warmup), once --records are counted, or
// when ctx ends.
func window(ctx context.Context, o *options, m *meter) (context.Context, context.CancelFunc) {
	var cancel context.CancelFunc
	if o.duration > 0 {
		ctx, cancel = context.WithDeadline(ctx, m.measureStart.Add(o.duration))
	} else {
		ctx, cancel = context.WithCancel(ctx)
	}
	go func() {
		select {
		case <-m.reached:
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, cancel
}
