package perf

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The request kinds of rtt mode, spelled as Kafka names the APIs so that
// reports read like the protocol.
const (
	rttProduce      = "Produce"
	rttFetch        = "Fetch"
	rttMetadata     = "Metadata"
	rttOffsetCommit = "OffsetCommit"
)

var rttKinds = []string{rttProduce, rttFetch, rttMetadata, rttOffsetCommit}

const (
	// rttRecordSize is small: at low load a request/reply service or an
	// admin tool sends little, and the round trip is what is measured.
	rttRecordSize = 100
	rttGroup      = "sluice-perf-rtt"
	// rttMaxWait bounds a Fetch that finds nothing. Every Fetch of rtt asks
	// for a record that exists, so a broker answers it at once; one that
	// waits for MaxWait anyway shows as latencies of this size.
	rttMaxWait = 100 * time.Millisecond
	// rttBatchSlack is what a batch of one record adds to its value (a
	// 61-byte batch header and the record's framing), with room to spare:
	// Fetch asks for about one batch so that it does not measure bulk
	// transfer once the Produce phase has grown the log.
	rttBatchSlack = 256
	// rttMaxFailures in a row end a kind's phase: a broker that fails
	// every request would otherwise be asked --records times, each time
	// waiting up to --timeout.
	rttMaxFailures = 20
)

// parseKinds reads --kinds: API names, any case, comma-separated.
func parseKinds(s string) ([]string, error) {
	var out []string
	for _, name := range strings.Split(s, ",") {
		name = strings.TrimSpace(name)
		if name == "" {
			continue
		}
		i := slices.IndexFunc(rttKinds, func(k string) bool { return strings.EqualFold(k, name) })
		if i < 0 {
			return nil, usagef("--kinds: unknown request kind %q (have %s)", name, strings.Join(rttKinds, ", "))
		}
		if !slices.Contains(out, rttKinds[i]) {
			out = append(out, rttKinds[i])
		}
	}
	if len(out) == 0 {
		return nil, usagef("--kinds: no request kind given (have %s)", strings.Join(rttKinds, ", "))
	}
	return out, nil
}

// rttDefaults fixes the producer settings rtt does not let the user
// change: acks=all and linger 0 are the latency a careful producer sees.
func (o *options) rttDefaults() {
	o.acks = "all"
	o.compression = "none"
	o.partitions = 1
	o.batchBytes = 1 << 20
	o.maxInflight = idempotentInflight
	o.maxBuffered = 1000
}

func (o *options) validateRTT() error {
	switch {
	case o.recordSize < 1 || o.recordSize > o.batchBytes:
		return usagef("--record-size must be between 1 and %d, got %d", o.batchBytes, o.recordSize)
	case o.group == "":
		return usagef("--group must not be empty")
	}
	return nil
}

// kindOutcome is what one request kind's phase measured.
type kindOutcome struct {
	kind    string
	lat     *hist
	errors  int64
	seconds float64
}

// runRTT measures round trips with one request in flight: after the
// warmup, each kind in turn for --records requests or --duration. One
// client sends everything, one request after the other, so every sample
// is a request arriving at an idle broker.
func runRTT(ctx context.Context, o *options, rn *run) (outcome, error) {
	p, partitions, err := newRTTProber(ctx, o)
	if err != nil {
		return outcome{}, err
	}
	defer p.cl.Close()

	m := rn.begin(o, false)
	// The warmup cycles through the kinds, one request at a time, so it
	// ends at most one request after --warmup.
	for i := 0; ctx.Err() == nil && !m.measuring(time.Now()); i++ {
		_, _ = p.do(ctx, o.kinds[i%len(o.kinds)])
	}
	var kinds []kindOutcome
	for _, k := range o.kinds {
		if ctx.Err() != nil {
			break
		}
		kinds = append(kinds, p.measure(ctx, k, m))
	}
	out := m.outcome(partitions, rn.end())
	out.rtt = kinds
	return out, nil
}

// measure runs one kind's phase.
func (p *rttProber) measure(ctx context.Context, kind string, m *meter) kindOutcome {
	ko := kindOutcome{kind: kind, lat: newHist()}
	start := time.Now()
	failures := 0
	for sent := int64(0); ctx.Err() == nil; sent++ {
		if (p.o.records > 0 && sent >= p.o.records) || (p.o.duration > 0 && time.Since(start) >= p.o.duration) {
			break
		}
		begun := time.Now()
		bytes, err := p.do(ctx, kind)
		now := time.Now()
		if err != nil {
			if ctx.Err() != nil {
				break // interrupted, not failed
			}
			ko.errors++
			m.fail(1, fmt.Errorf("%s: %w", kind, err))
			if failures++; failures >= rttMaxFailures {
				m.fail(0, fmt.Errorf("%s: gave up after %d failures in a row", kind, failures))
				break
			}
			continue
		}
		failures = 0
		ko.lat.Record(now.Sub(begun))
		m.add(now, 1, bytes)
	}
	ko.seconds = time.Since(start).Seconds()
	return ko
}

// rttProber sends the requests of rtt mode over one client. Fetch reads,
// and OffsetCommit commits, a seed record produced during setup.
type rttProber struct {
	o         *options
	cl        *kgo.Client
	leader    *kgo.Broker // of the seed record's partition
	topicID   [16]byte
	partition int32
	offset    int64
	value     []byte
}

// newRTTProber creates the topic if asked to, produces the seed record and
// sends one request of every kind unmeasured: the first of each also
// dials, looks up the group coordinator or initializes the idempotent
// producer, so only later ones are exactly one request. A kind the broker
// cannot serve fails here, before any measurement.
func newRTTProber(ctx context.Context, o *options) (*rttProber, int, error) {
	cl, err := newClient(ctx, o, o.producerOpts()...)
	if err != nil {
		return nil, 0, err
	}
	p := &rttProber{o: o, cl: cl, value: newPayloads(o.recordSize, 0, o.batchBytes)[0]}
	partitions, err := p.setup(ctx)
	if err != nil {
		cl.Close()
		return nil, 0, err
	}
	return p, partitions, nil
}

func (p *rttProber) setup(ctx context.Context) (int, error) {
	adm := kadm.NewClient(p.cl)
	if p.o.create {
		if err := createTopic(ctx, adm, p.o); err != nil {
			return 0, err
		}
	}
	info, err := describeTopic(ctx, adm, p.o, p.o.create)
	if err != nil {
		return 0, err
	}
	sctx, cancel := context.WithTimeout(ctx, p.o.timeout)
	defer cancel()
	seed, err := p.cl.ProduceSync(sctx, &kgo.Record{Topic: p.o.topic, Value: p.value}).First()
	if err != nil {
		return 0, fmt.Errorf("producing the seed record to %s: %w", p.o.topic, err)
	}
	p.topicID, p.partition, p.offset = info.id, seed.Partition, seed.Offset
	p.leader = p.cl.Broker(int(info.leaders[seed.Partition]))
	for _, k := range p.o.kinds {
		if _, err := p.do(ctx, k); err != nil {
			return 0, fmt.Errorf("first %s request: %w", k, err)
		}
	}
	return len(info.partitions), nil
}

// do sends one request of a kind and waits for its answer; bytes are the
// record bytes it produced.
func (p *rttProber) do(ctx context.Context, kind string) (bytes int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, p.o.timeout)
	defer cancel()
	switch kind {
	case rttProduce:
		return int64(len(p.value)), p.cl.ProduceSync(ctx, &kgo.Record{Topic: p.o.topic, Value: p.value}).FirstErr()
	case rttFetch:
		return 0, p.fetch(ctx)
	case rttMetadata:
		return 0, p.metadata(ctx)
	case rttOffsetCommit:
		return 0, p.commit(ctx)
	}
	return 0, fmt.Errorf("unknown request kind %q", kind)
}

// fetch reads the seed record from its leader. Broker.Request sends
// exactly one request and never retries, where Client.Request would pick
// any broker.
func (p *rttProber) fetch(ctx context.Context) error {
	req := kmsg.NewPtrFetchRequest()
	req.MaxWaitMillis = int32(rttMaxWait / time.Millisecond)
	req.MinBytes = 1
	req.MaxBytes = int32(p.o.recordSize + rttBatchSlack)
	t := kmsg.NewFetchRequestTopic()
	t.Topic, t.TopicID = p.o.topic, p.topicID // by name up to v12, by ID from v13
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.Partition, rp.FetchOffset, rp.PartitionMaxBytes = p.partition, p.offset, req.MaxBytes
	t.Partitions = []kmsg.FetchRequestTopicPartition{rp}
	req.Topics = []kmsg.FetchRequestTopic{t}
	kresp, err := p.leader.Request(ctx, req)
	if err != nil {
		return err
	}
	resp := kresp.(*kmsg.FetchResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		return err
	}
	for _, rt := range resp.Topics {
		for _, rp := range rt.Partitions {
			if rp.Partition != p.partition {
				continue
			}
			if err := kerr.ErrorForCode(rp.ErrorCode); err != nil {
				return err
			}
			n, _, _, err := walkBatches(rp.RecordBatches)
			if err == nil && n == 0 {
				err = fmt.Errorf("no complete record batch at offset %d in %d bytes", p.offset, len(rp.RecordBatches))
			}
			return err
		}
	}
	return fmt.Errorf("partition %d missing from the response", p.partition)
}

// metadata asks for the one topic. kgo routes a MetadataRequest to one
// broker and learns from the answer, as a client refreshing would.
func (p *rttProber) metadata(ctx context.Context) error {
	req := kmsg.NewPtrMetadataRequest()
	t := kmsg.NewMetadataRequestTopic()
	t.Topic = kmsg.StringPtr(p.o.topic)
	req.Topics = []kmsg.MetadataRequestTopic{t}
	kresp, err := p.cl.Request(ctx, req)
	if err != nil {
		return err
	}
	for _, rt := range kresp.(*kmsg.MetadataResponse).Topics {
		if rt.Topic != nil && *rt.Topic == p.o.topic {
			return kerr.ErrorForCode(rt.ErrorCode)
		}
	}
	return fmt.Errorf("topic %s missing from the response", p.o.topic)
}

// commit commits the offset after the seed record for --group, as a
// consumer outside any group generation (generation -1) does; kgo sends
// it to the group's coordinator, found once during setup.
func (p *rttProber) commit(ctx context.Context) error {
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = p.o.group
	t := kmsg.NewOffsetCommitRequestTopic()
	t.Topic, t.TopicID = p.o.topic, p.topicID // by name up to v9, by ID from v10
	cp := kmsg.NewOffsetCommitRequestTopicPartition()
	cp.Partition, cp.Offset = p.partition, p.offset+1
	t.Partitions = []kmsg.OffsetCommitRequestTopicPartition{cp}
	req.Topics = []kmsg.OffsetCommitRequestTopic{t}
	kresp, err := p.cl.Request(ctx, req)
	if err != nil {
		return err
	}
	for _, rt := range kresp.(*kmsg.OffsetCommitResponse).Topics {
		for _, rp := range rt.Partitions {
			if rp.Partition == p.partition {
				return kerr.ErrorForCode(rp.ErrorCode)
			}
		}
	}
	return errors.New("committed partition missing from the response")
}
