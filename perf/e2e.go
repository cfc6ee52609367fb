package perf

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// yieldGap is how long the producer must have until its next record for
// it to yield after a send; see e2eProduce.
const yieldGap = 250 * time.Microsecond

// runE2E produces on a fixed schedule and consumes in the same process.
// Each value starts with its record's scheduled send time, big-endian unix
// nanoseconds; the consumer's latency is receipt minus that time. Both ends
// read the same wall clock, so no clock skew enters the measurement.
func runE2E(ctx context.Context, o *options, rn *run) (outcome, error) {
	info, ends, err := e2eSetup(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	// The consumer starts at the offsets listed before anything is
	// produced: resetting to "the end" when it first fetches could skip
	// the first records and count them as lost.
	offsets := map[int32]kgo.Offset{}
	for _, p := range info.partitions {
		offsets[p] = kgo.NewOffset().At(ends[p])
	}
	var tr *e2eTrace
	consumerOpts := []kgo.Opt{kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{o.topic: offsets})}
	producerOpts := o.producerOpts()
	if o.trace != "" {
		tr = newE2ETrace(time.Now())
		consumerOpts = append(consumerOpts, kgo.WithHooks(tr))
		producerOpts = append(producerOpts, kgo.WithHooks(tr))
	}
	consumer, err := newClient(ctx, o, consumerOpts...)
	if err != nil {
		return outcome{}, err
	}
	defer consumer.Close()
	producers, err := newClients(ctx, o, producerOpts...)
	if err != nil {
		return outcome{}, err
	}
	payloads := newPayloads(o.recordSize, o.compressibility, o.batchBytes)

	m := rn.begin(o, true)
	p := newPacer(realClock{}, m.start, o.rate, o.warmup, o.duration, o.records, o.timeout)
	// Even after Ctrl-C the consumer goes on until it has what was
	// acknowledged (within --timeout): stopping it at once would report
	// the records on their way as lost.
	cctx, stopConsumer := context.WithCancel(context.WithoutCancel(ctx))
	defer stopConsumer()
	consumed := make(chan struct{})
	go func() {
		defer close(consumed)
		e2eConsume(cctx, consumer, m, p, tr)
	}()

	// Producers blocked on a full buffer when the schedule is abandoned
	// must stop too.
	pctx := ctx
	if !p.giveUp.IsZero() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, p.giveUp)
		defer cancel()
	}
	var acked atomic.Int64 // measured records the broker acknowledged
	var wg sync.WaitGroup
	for _, cl := range producers {
		wg.Go(func() { e2eProduce(pctx, o, cl, p, m, payloads, &acked, tr) })
	}
	wg.Wait()
	closeAll(producers)
	m.settle(o.timeout)
	if n := p.abandonedRecords(); n > 0 {
		m.fail(n, fmt.Errorf("%d scheduled records never sent: the producer fell more than %s behind the schedule", n, o.timeout))
	}

	// Give the consumer --timeout to receive what was acknowledged.
	deadline := time.Now().Add(o.timeout)
	for m.records.Load() < acked.Load() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	stopConsumer()
	<-consumed
	stop := rn.end()
	if lost := acked.Load() - m.records.Load(); lost > 0 {
		m.fail(lost, fmt.Errorf("%d acknowledged records not consumed within %s of the end", lost, o.timeout))
	}
	if tr != nil {
		if err := tr.write(o.trace); err != nil {
			return outcome{}, err
		}
		// Only a Fetch response that carried at least a whole record
		// can have delivered one.
		tr.printBreakdown(rn.progressTo, m.measureStart.Sub(tr.origin), o.recordSize)
	}
	return m.outcome(len(info.partitions), stop), nil
}

// e2eSetup creates the topic if asked to and lists the end of every
// partition.
func e2eSetup(ctx context.Context, o *options) (topicInfo, map[int32]int64, error) {
	cl, err := newClient(ctx, o)
	if err != nil {
		return topicInfo{}, nil, err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if o.create {
		if err := createTopic(ctx, adm, o); err != nil {
			return topicInfo{}, nil, err
		}
	}
	info, err := describeTopic(ctx, adm, o, o.create)
	if err != nil {
		return topicInfo{}, nil, err
	}
	ends, err := listOffsets(ctx, adm, o, true)
	return info, ends, err
}

// e2eProduce sends the records of the shared schedule as they fall due.
func e2eProduce(ctx context.Context, o *options, cl *kgo.Client, p *pacer, m *meter, payloads [][]byte, acked *atomic.Int64, tr *e2eTrace) {
	d := newDrain(ctx, o.timeout)
	defer d.close()
	for {
		s, ok := p.take()
		if !ok || p.wait(ctx, s) != nil {
			break
		}
		value := make([]byte, o.recordSize) // the stamp makes every value unique
		copy(value, payloads[s.index%int64(len(payloads))])
		binary.BigEndian.PutUint64(value, uint64(s.at.UnixNano()))
		if s.measured {
			m.pending.Add(1)
		}
		if tr != nil {
			tr.sent(s.index, s.at, time.Now())
		}
		cl.Produce(d.ctx, &kgo.Record{Topic: o.topic, Value: value}, func(_ *kgo.Record, err error) {
			if tr != nil && err == nil {
				tr.acked(s.index, time.Now())
			}
			if !s.measured {
				return
			}
			defer m.pending.Add(-1)
			if err != nil {
				m.fail(1, d.explain(err))
				return
			}
			acked.Add(1)
		})
		// kgo hands the record to a goroutine it starts for the write.
		// On a light schedule this goroutine is about to sleep until the
		// next record; yielding first runs the writer on this thread now,
		// where otherwise the runtime wakes a second thread to take it,
		// and that wake-up is time the client, not the broker, adds to
		// every latency (measured with --trace against a Sluice broker at
		// 1,000 records/s: the send-to-write median went from about 75 to
		// 55 µs). A dense schedule has no sleep to save and lets kgo batch.
		if time.Until(p.nextDue()) > yieldGap {
			runtime.Gosched()
		}
	}
	d.start()
	_ = cl.Flush(d.ctx)
}

// e2eConsume records the latency of every measured record it receives.
// Fetch errors are reported but not counted: what they cost shows up as
// records lost or late.
func e2eConsume(ctx context.Context, cl *kgo.Client, m *meter, p *pacer, tr *e2eTrace) {
	cutoff := m.measureStart.UnixNano()
	for ctx.Err() == nil {
		fetches := cl.PollFetches(ctx)
		now := time.Now()
		received := now.UnixNano()
		fetches.EachError(func(topic string, partition int32, err error) {
			if ctx.Err() == nil {
				m.fail(0, fmt.Errorf("fetching %s partition %d: %w", topic, partition, err))
			}
		})
		var records, bytes int64
		fetches.EachRecord(func(r *kgo.Record) {
			if len(r.Value) < stampSize {
				return // not ours
			}
			due := int64(binary.BigEndian.Uint64(r.Value))
			if tr != nil {
				tr.received(p.index(time.Unix(0, due)), now)
			}
			if due < cutoff {
				return // scheduled during the warmup
			}
			m.lat.Record(time.Duration(received - due))
			records++
			bytes += int64(len(r.Key) + len(r.Value))
		})
		if records > 0 {
			m.add(now, records, bytes)
		}
	}
}
