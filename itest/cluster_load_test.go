package itest

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/internal/testkit"
)

// loadProducer writes records with unique increasing sequence numbers as
// values (seq mod partitions picks the partition) from a goroutine, with an
// idempotent acks=all franz-go producer, and keeps the ledger of what was
// acknowledged: the records a cluster must never lose nor duplicate.
type loadProducer struct {
	t      *testing.T
	cl     *kgo.Client
	topic  string
	nparts int32
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	sent   int64
	acked  map[int64]int32 // seq -> partition it was acknowledged on
	nerrs  int
	errs   []string // the first few errors, with their records
	lastOK time.Time
}

// loadPace is the pause between records: a few hundred records a second,
// enough to have requests in flight at every kill without loading a small
// machine running three race-enabled brokers.
const loadPace = 2 * time.Millisecond

// loadVersions are the load producer's API versions: franz-go's stable
// set, so Produce v13 (topics by id) with acks=all is what the tests run.
func loadVersions() *kversion.Versions { return kversion.Stable() }

// startLoad starts producing to topic's nparts partitions through c.
func startLoad(c *cluster, topic string, nparts int32) *loadProducer {
	lp := &loadProducer{t: c.t, topic: topic, nparts: nparts, done: make(chan struct{}), acked: map[int64]int32{}}
	lp.cl = c.client(
		kgo.DefaultProduceTopic(topic),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.RequiredAcks(kgo.AllISRAcks()), // with the default idempotence
		// A request to a stopped or killed leader is given up after
		// ~5 s rather than kgo's default 40 s, then retried elsewhere.
		kgo.ProduceRequestTimeout(3*time.Second),
		kgo.RequestTimeoutOverhead(2*time.Second),
		kgo.MaxBufferedRecords(2000),
		kgo.MaxVersions(loadVersions()),
	)
	ctx, cancel := context.WithCancel(context.Background())
	lp.cancel = cancel
	go lp.run(ctx)
	return lp
}

func (lp *loadProducer) run(ctx context.Context) {
	defer close(lp.done)
	for seq := int64(0); ctx.Err() == nil; seq++ {
		r := &kgo.Record{Partition: int32(seq % int64(lp.nparts)), Value: strconv.AppendInt(nil, seq, 10)}
		lp.mu.Lock()
		lp.sent++
		lp.mu.Unlock()
		// Not ctx: an idempotent record is either acknowledged or failed
		// by the client, never dropped half way by a cancellation.
		lp.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
			seq, _ := seqOf(r.Value)
			lp.mu.Lock()
			defer lp.mu.Unlock()
			if err != nil {
				lp.nerrs++
				if len(lp.errs) < 10 {
					lp.errs = append(lp.errs, fmt.Sprintf("record %d to partition %d: %v", seq, r.Partition, err))
				}
				return
			}
			lp.acked[seq] = r.Partition
			lp.lastOK = time.Now()
		})
		time.Sleep(loadPace)
	}
}

// ackedCount is how many records were acknowledged so far.
func (lp *loadProducer) ackedCount() int {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return len(lp.acked)
}

// progressed reports whether n more records than now are acknowledged
// within the time.
func (lp *loadProducer) progressed(n int, within time.Duration) bool {
	from := lp.ackedCount()
	return testkit.Poll(within, func() bool { return lp.ackedCount()-from >= n })
}

// waitProgress waits until n more records than now are acknowledged: the
// cluster takes acks=all writes.
func (lp *loadProducer) waitProgress(n int, within time.Duration, what string) {
	lp.t.Helper()
	from := lp.ackedCount()
	testkit.EventuallyNil(lp.t, within, func() error {
		if got := lp.ackedCount() - from; got < n {
			return fmt.Errorf("%s: %d records acknowledged of the %d awaited (%s)", what, got, n, lp.summary())
		}
		return nil
	})
}

// stop ends the load and waits until every record produced has been
// acknowledged or failed.
func (lp *loadProducer) stop() {
	lp.t.Helper()
	lp.cancel()
	<-lp.done
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := lp.cl.Flush(ctx); err != nil {
		lp.t.Fatalf("flushing the producer: %v (%s)", err, lp.summary())
	}
	lp.t.Logf("producer: %s", lp.summary())
}

func (lp *loadProducer) summary() string {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	s := fmt.Sprintf("%d sent, %d acknowledged, %d failed", lp.sent, len(lp.acked), lp.nerrs)
	if len(lp.errs) > 0 {
		s += "; first errors: " + strings.Join(lp.errs, "; ")
	}
	return s
}

// errors is the failed records' errors, the first few of them.
func (lp *loadProducer) errors() (int, []string) {
	lp.mu.Lock()
	defer lp.mu.Unlock()
	return lp.nerrs, slices.Clone(lp.errs)
}

// readPartitions reads every partition of topic from its start to its end
// offset (the high watermark now) with a fresh consumer, checking that the
// offsets are contiguous.
func (c *cluster) readPartitions(topic string, nparts int32) map[int32][]*kgo.Record {
	c.t.Helper()
	adm := c.admin()
	ends := map[int32]int64{}
	testkit.EventuallyNil(c.t, 30*time.Second, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		lo, err := adm.ListEndOffsets(ctx, topic)
		if err == nil {
			err = lo.Error()
		}
		if err != nil {
			return fmt.Errorf("ListEndOffsets %s: %w", topic, err)
		}
		lo.Each(func(o kadm.ListedOffset) { ends[o.Partition] = o.Offset })
		if len(ends) != int(nparts) {
			return fmt.Errorf("end offsets of %d partitions, want %d", len(ends), nparts)
		}
		return nil
	})
	start := map[int32]kgo.Offset{}
	for p := range nparts {
		start[p] = kgo.NewOffset().AtStart()
	}
	cl := c.client(kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: start}), kgo.FetchMaxWait(500*time.Millisecond))
	out := map[int32][]*kgo.Record{}
	short := func() []string {
		var s []string
		for p := range nparts {
			if n := int64(len(out[p])); n < ends[p] {
				s = append(s, fmt.Sprintf("partition %d: %d of %d", p, n, ends[p]))
			}
		}
		return s
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	for len(short()) > 0 {
		fs := cl.PollFetches(ctx)
		if ctx.Err() != nil {
			c.t.Fatalf("reading %s back: timed out with %v", topic, short())
		}
		fs.EachError(func(_ string, p int32, err error) { c.t.Logf("reading %s[%d]: %v (retrying)", topic, p, err) })
		fs.EachRecord(func(r *kgo.Record) {
			if want := int64(len(out[r.Partition])); r.Offset != want {
				c.t.Fatalf("%s[%d]: read offset %d, want %d: the log has a gap or repeats", topic, r.Partition, r.Offset, want)
			}
			if r.Offset < ends[r.Partition] {
				out[r.Partition] = append(out[r.Partition], r)
			}
		})
	}
	return out
}

// checkLedger asserts the records read back hold every acknowledged record
// exactly once, on the partition it was acknowledged on, and no record
// twice, each partition in the order produced (idempotence keeps it).
func (lp *loadProducer) checkLedger(read map[int32][]*kgo.Record) {
	lp.t.Helper()
	lp.mu.Lock()
	defer lp.mu.Unlock()
	seen := map[int64]int32{}
	var dups, strays []string
	total := 0
	for p, recs := range read {
		last := int64(-1)
		for _, r := range recs {
			total++
			seq, ok := seqOf(r.Value)
			if !ok {
				strays = append(strays, fmt.Sprintf("%q at %d/%d", r.Value, p, r.Offset))
				continue
			}
			if first, ok := seen[seq]; ok {
				dups = append(dups, fmt.Sprintf("record %d at %d/%d (first on partition %d)", seq, p, r.Offset, first))
			}
			seen[seq] = p
			if seq <= last {
				lp.t.Errorf("partition %d: record %d at offset %d after record %d: out of the order produced", p, seq, r.Offset, last)
			}
			last = seq
		}
	}
	var lost []int64
	for seq, p := range lp.acked {
		if got, ok := seen[seq]; !ok || got != p {
			lost = append(lost, seq)
		}
	}
	slices.Sort(lost)
	if len(dups) > 0 {
		lp.t.Errorf("%d duplicated records, first ones: %v", len(dups), dups[:min(len(dups), 10)])
	}
	if len(strays) > 0 {
		lp.t.Errorf("%d records the producer never wrote: %v", len(strays), strays[:min(len(strays), 10)])
	}
	if len(lost) > 0 {
		lp.t.Errorf("%d acknowledged records lost, first ones: %v", len(lost), lost[:min(len(lost), 20)])
	}
	lp.t.Logf("read back %d records; %d were acknowledged", total, len(lp.acked))
}
