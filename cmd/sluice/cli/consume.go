package cli

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
)

const consumeUsage = `usage: sluice consume TOPIC... [flags]

Prints the records of each TOPIC as they arrive, until --count records are
printed, the end is reached (--exit-at-end), or Ctrl-C or SIGTERM; each of
these exits with code 0.

Without --group, the partitions are read directly (all of them, or the one
--partition names) and nothing is committed. With --group G the command
joins consumer group G, reads the partitions the group assigns it, starts
where G committed (--from applies only where G has no committed offset) and
commits the offsets of the records written to the output (every few seconds
and when it stops), so "consume --group G | head -3" leaves the rest for the
next run; a closed output (EPIPE) stops the command with code 0.

flags:
  --group G                consume as a member of group G, committing offsets
  --from POSITION          where to start: earliest (default), latest, an
                           offset N, -N (N records before the end), or a time:
                           @UNIX_MILLIS or RFC 3339 (2024-05-01T12:00:00Z)
  --partition N            only partition N (one TOPIC, without --group)
  --count N                stop after N records
  -e, --exit-at-end        stop once every partition read has reached the end
                           offset it had when the command started
  --format FMT             how to print each record (default "%s\n"):
                             %t topic  %p partition  %o offset
                             %T timestamp (Unix ms)  %h headers (k=v,k=v)
                             %k key  %K key length  %s value  %S value length
                             %% a percent sign; \n \t \r \\ escapes
                           a null key or value prints as nothing, length -1
  --json                   print each record as one JSON object per line:
                           topic, partition, offset, timestamp, key, value
                           and headers ([{"key":..., "value":...}])
  --brokers HOST:PORT,...  brokers to bootstrap from
                           (default: $SLUICE_BROKERS, else 127.0.0.1:9092)
  --timeout DURATION       time limit for connecting and for each request
                           (default 10s)
`

// endPollInterval is how long a poll waits before --exit-at-end checks
// again whether every partition is done: a partition that has nothing
// left to read delivers no record that would wake the loop.
const endPollInterval = 200 * time.Millisecond

// startSpec is a parsed --from.
type startSpec struct {
	kind string // "earliest", "latest", "offset", "relative" or "time"
	n    int64  // the offset, the (negative) distance from the end, or Unix ms
}

func parseFrom(s string) (startSpec, error) {
	switch s {
	case "earliest", "beginning":
		return startSpec{kind: "earliest"}, nil
	case "latest", "end":
		return startSpec{kind: "latest"}, nil
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n < 0 {
			return startSpec{kind: "relative", n: n}, nil
		}
		return startSpec{kind: "offset", n: n}, nil
	}
	ms, err := parseTime(s)
	if err != nil {
		return startSpec{}, fmt.Errorf("%q: want earliest, latest, an offset, -N, @UNIX_MILLIS or an RFC 3339 time", s)
	}
	return startSpec{kind: "time", n: ms}, nil
}

// position is where a partition with bounds b starts; byTime is its
// offset for a "time" spec.
func (s startSpec) position(b bounds, byTime int64) int64 {
	switch s.kind {
	case "earliest":
		return b.start
	case "latest":
		return b.end
	case "offset":
		return b.clamp(s.n)
	case "relative":
		return b.clamp(b.end + s.n)
	default:
		return b.clamp(byTime)
	}
}

// resetOffset is the same position for the group consumer, which applies
// it itself to partitions without a committed offset.
func (s startSpec) resetOffset() kgo.Offset {
	switch s.kind {
	case "earliest":
		return kgo.NewOffset().AtStart()
	case "latest":
		return kgo.NewOffset().AtEnd()
	case "offset":
		return kgo.NewOffset().At(s.n)
	case "relative":
		return kgo.NewOffset().AtEnd().Relative(s.n)
	default:
		return kgo.NewOffset().AfterMilli(s.n)
	}
}

// consumeOpts is a validated consume command line.
type consumeOpts struct {
	topics    []string
	group     string
	from      startSpec
	partition int // -1: every partition
	count     int
	exitAtEnd bool
	out       *recordWriter
}

func runConsume(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs, cf := newFlagSet("consume")
	group := fs.String("group", "", "")
	from := fs.String("from", "earliest", "")
	partition := fs.Int("partition", -1, "")
	count := fs.Int("count", 0, "")
	var exitAtEnd bool
	fs.BoolVar(&exitAtEnd, "exit-at-end", false, "")
	fs.BoolVar(&exitAtEnd, "e", false, "")
	format := fs.String("format", defaultFormat, "")
	topics, err := parseArgs(fs, args)
	if err != nil {
		return handleParseError(err, consumeUsage, stdout, stderr)
	}
	formatSet := false
	fs.Visit(func(f *flag.Flag) { formatSet = formatSet || f.Name == "format" })
	o := consumeOpts{topics: dedupe(topics), group: *group, partition: *partition, count: *count, exitAtEnd: exitAtEnd}
	var rf recordFormat
	switch {
	case len(topics) == 0:
		err = usagef("name at least one TOPIC to consume")
	case *partition < -1 || *partition > 1<<31-1:
		err = usagef("--partition must be a partition number (0 or more), got %d", *partition)
	case *partition >= 0 && *group != "":
		err = usagef("--partition and --group cannot be combined: the group assigns the partitions")
	case *partition >= 0 && len(o.topics) > 1:
		err = usagef("--partition needs exactly one TOPIC")
	case *count < 0:
		err = usagef("--count must not be negative, got %d", *count)
	case formatSet && cf.json:
		err = usagef("--format and --json cannot be combined")
	}
	if err == nil {
		if o.from, err = parseFrom(*from); err != nil {
			err = usagef("--from: %v", err)
		}
	}
	if err == nil && !cf.json {
		if rf, err = compileFormat(*format); err != nil {
			err = usagef("--format: %v", err)
		}
	}
	if err != nil {
		return reportUsage(stderr, consumeUsage, err)
	}

	bw := bufio.NewWriter(stdout)
	o.out = newRecordWriter(bw, rf, cf.json)
	return runStreaming(ctx, cf, consumeUsage, stderr, nil, func(ctx context.Context, c *client) error {
		err := consume(ctx, c, cf.timeout, o, bw)
		if ferr := bw.Flush(); ferr != nil && err == nil && !errors.Is(ferr, syscall.EPIPE) {
			err = fmt.Errorf("writing output: %w", ferr)
		}
		return err
	})
}

// endTracker decides --exit-at-end: it knows each partition's end offset
// as of the start and the next offset to read, and which partitions this
// consumer reads (all of them when consuming directly; those the group
// assigned otherwise). Group callbacks run on the client's goroutines.
//
// Positions advance with the records printed, so a partition whose log
// ends in a transaction marker (an offset no record has) would never count
// as done; Sluice has no transactions, Kafka topics written
// transactionally can make -e wait for the next record.
type endTracker struct {
	mu       sync.Mutex
	end, pos map[topicPart]int64
	assigned map[topicPart]bool // nil when consuming directly
}

func (t *endTracker) advance(tp topicPart, next int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.pos[tp] = max(t.pos[tp], next)
}

func (t *endTracker) assign(m map[string][]int32, on bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for topic, ps := range m {
		for _, p := range ps {
			if on {
				t.assigned[topicPart{topic, p}] = true
			} else {
				delete(t.assigned, topicPart{topic, p})
			}
		}
	}
}

func (t *endTracker) done() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.assigned == nil {
		for tp, end := range t.end {
			if t.pos[tp] < end {
				return false
			}
		}
		return true
	}
	for tp := range t.assigned {
		if t.pos[tp] < t.end[tp] {
			return false
		}
	}
	return len(t.assigned) > 0 // before the first assignment nothing is done
}

// consume reads records until o says to stop or ctx ends; timeout bounds
// the setup requests and the final commit.
func consume(ctx context.Context, c *client, timeout time.Duration, o consumeOpts, out *bufio.Writer) error {
	sctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	known, err := lookupTopics(sctx, c, o.topics)
	if err != nil {
		return err
	}
	var tps []topicPart
	for _, t := range o.topics {
		for _, p := range known[t] {
			if o.partition < 0 || int(p) == o.partition {
				tps = append(tps, topicPart{t, p})
			}
		}
	}
	if o.partition >= 0 && len(tps) == 0 {
		return fmt.Errorf("topic %q has no partition %d (it has %d)", o.topics[0], o.partition, len(known[o.topics[0]]))
	}
	bs, err := listBounds(sctx, c, o.topics)
	if err != nil {
		return err
	}
	var byTime map[topicPart]int64
	if o.from.kind == "time" {
		if byTime, err = listAfterMilli(sctx, c, o.from.n, o.topics); err != nil {
			return err
		}
	}
	committed := make(map[topicPart]int64)
	if o.group != "" {
		resps, err := c.adm.FetchOffsets(sctx, o.group)
		// Newer brokers answer that for a group that does not exist yet.
		if errors.Is(err, kerr.GroupIDNotFound) {
			resps, err = nil, nil
		}
		if err != nil {
			return fmt.Errorf("fetching committed offsets of group %q: %w", o.group, err)
		}
		for _, ps := range resps {
			for p, r := range ps {
				if r.Err == nil && r.At >= 0 {
					committed[topicPart{r.Topic, p}] = r.At
				}
			}
		}
	}
	cancel()

	tr := &endTracker{end: make(map[topicPart]int64), pos: make(map[topicPart]int64)}
	direct := make(map[string]map[int32]kgo.Offset)
	for _, tp := range tps {
		start, ok := committed[tp]
		if !ok {
			start = o.from.position(bs[tp], byTime[tp])
		}
		tr.end[tp], tr.pos[tp] = bs[tp].end, start
		if o.exitAtEnd && start >= bs[tp].end {
			continue // nothing to read before the end: no need to fetch
		}
		if direct[tp.topic] == nil {
			direct[tp.topic] = make(map[int32]kgo.Offset)
		}
		direct[tp.topic][tp.partition] = kgo.NewOffset().At(start)
	}

	var opts []kgo.Opt
	if o.group == "" {
		if o.exitAtEnd && len(direct) == 0 {
			return nil // everything is already at its end
		}
		opts = append(opts, kgo.ConsumePartitions(direct))
	} else {
		tr.assigned = make(map[topicPart]bool)
		opts = append(opts,
			kgo.ConsumerGroup(o.group),
			kgo.ConsumeTopics(o.topics...),
			kgo.ConsumeResetOffset(o.from.resetOffset()),
			// Only records written to the output are marked, and only
			// marked offsets are committed (periodically and at the end):
			// "consume --group G | head -3" must not commit what head
			// never saw.
			kgo.AutoCommitMarks(),
			// Rebalances wait until the records of a poll are printed,
			// so a commit on revocation covers exactly what was printed.
			kgo.BlockRebalanceOnPoll(),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { tr.assign(m, true) }),
			kgo.OnPartitionsRevoked(func(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
				// Replacing the default callback drops its commit; keep it
				// so the next owner starts after what was printed.
				_ = cl.CommitMarkedOffsets(ctx)
				tr.assign(m, false)
			}),
			kgo.OnPartitionsLost(func(_ context.Context, _ *kgo.Client, m map[string][]int32) { tr.assign(m, false) }),
		)
	}
	cl, err := kgo.NewClient(append(c.opts[:len(c.opts):len(c.opts)], opts...)...)
	if err != nil {
		return fmt.Errorf("creating the consumer: %w", err)
	}
	defer cl.CloseAllowingRebalance()

	err = pollLoop(ctx, cl, o, tr, out)
	if errors.Is(err, syscall.EPIPE) {
		// The reader went away (consume | head): a normal way to stop.
		err = nil
	}
	if o.group != "" {
		// Commit even after an error: what was printed stays consumed.
		cctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		if cerr := cl.CommitMarkedOffsets(cctx); cerr != nil && err == nil {
			err = fmt.Errorf("committing offsets of group %q: %w", o.group, cerr)
		}
	}
	return err
}

// pollLoop prints records until the count is reached, every partition is
// at its end (with --exit-at-end), a fetch fails, or ctx is cancelled.
func pollLoop(ctx context.Context, cl *kgo.Client, o consumeOpts, tr *endTracker, out *bufio.Writer) error {
	printed := 0
	for {
		if o.exitAtEnd && tr.done() {
			return nil
		}
		pctx, cancel := ctx, context.CancelFunc(func() {})
		if o.exitAtEnd {
			pctx, cancel = context.WithTimeout(ctx, endPollInterval)
		}
		limit := -1
		if o.count > 0 {
			limit = o.count - printed
		}
		fetches := cl.PollRecords(pctx, limit)
		cancel()

		var werr error
		fetches.EachRecord(func(r *kgo.Record) {
			if werr != nil {
				return
			}
			werr = o.out.write(r)
			if werr == nil && o.group != "" {
				// A record counts as written once its bytes have left
				// for the output, so each is flushed before it is marked
				// for commit.
				if werr = out.Flush(); werr == nil {
					cl.MarkCommitRecords(r)
				}
			}
			tr.advance(topicPart{r.Topic, r.Partition}, r.Offset+1)
			printed++
		})
		if werr == nil {
			werr = out.Flush()
		}
		cl.AllowRebalance()
		if werr != nil {
			return fmt.Errorf("writing output: %w", werr)
		}
		var ferr error
		fetches.EachError(func(topic string, p int32, err error) {
			// The poll's own deadline and Ctrl-C arrive as errors too.
			if ferr == nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				ferr = fmt.Errorf("consuming %s/%d: %w", topic, p, err)
			}
		})
		switch {
		case ferr != nil:
			return ferr
		case o.count > 0 && printed >= o.count, ctx.Err() != nil:
			return nil
		}
	}
}
