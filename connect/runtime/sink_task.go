package runtime

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/connect/data"
)

// sinkTask runs one sink task: a consumer in group connect-<name> reads
// the connector's topics, records are converted and transformed and handed
// to the plugin's Put, and every offset.flush.interval.ms the offsets the
// plugin calls safe (PreCommit) are committed to the group. Offsets are
// committed only after Put returned for every record before them, so a
// crash repeats at most the records put since the last commit.
type sinkTask struct {
	taskPipeline
	client   SinkTaskClient
	consumer *kgo.Client // created by newSinkConsumer with this task's callbacks
	dlq      *kgo.Client // producer for the dead letter queue, nil without one
	config   map[string]string
	flushInt time.Duration
	flushTO  time.Duration

	// mu orders the plugin calls of the poll loop against those of the
	// rebalance callbacks, which franz-go runs on its own goroutine.
	mu       sync.Mutex
	current  map[TopicPartition]int64 // next offset to commit, per partition put
	gate     *pauseGate
	maxBatch int
}

// sinkConsumerOpts are the consumer options of a sink task: Kafka's
// defaults for a sink (group connect-<name>, earliest, no auto commit),
// with rebalances held while a batch is in Put so that a revoked
// partition's records are never put after its Close.
func (t *sinkTask) sinkConsumerOpts(topics []string, regex bool) []kgo.Opt {
	opts := []kgo.Opt{
		kgo.ConsumerGroup("connect-" + t.id.Connector),
		kgo.ConsumeTopics(topics...),
		kgo.DisableAutoCommit(),
		kgo.BlockRebalanceOnPoll(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.Balancers(kgo.CooperativeStickyBalancer()),
		kgo.OnPartitionsAssigned(t.onAssigned),
		kgo.OnPartitionsRevoked(t.onRevoked),
		kgo.OnPartitionsLost(t.onLost),
	}
	if regex {
		opts = append(opts, kgo.ConsumeRegex())
	}
	return opts
}

func toParts(m map[string][]int32) []TopicPartition {
	var out []TopicPartition
	for topic, ps := range m {
		for _, p := range ps {
			out = append(out, TopicPartition{topic, p})
		}
	}
	return out
}

func (t *sinkTask) onAssigned(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	rewind, err := t.client.Open(ctx, toParts(m))
	if err != nil {
		t.logger.Error("sink task: open failed", "err", err)
		return
	}
	if len(rewind) == 0 {
		return
	}
	set := map[string]map[int32]kgo.EpochOffset{}
	for tp, off := range rewind {
		if set[tp.Topic] == nil {
			set[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		set[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: off}
	}
	cl.SetOffsets(set)
}

func (t *sinkTask) onRevoked(ctx context.Context, cl *kgo.Client, m map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := toParts(m)
	if err := t.commitLocked(ctx, cl, parts); err != nil {
		t.logger.Warn("sink task: committing revoked partitions failed", "err", err)
	}
	if err := t.client.Close(ctx, parts); err != nil {
		t.logger.Warn("sink task: close failed", "err", err)
	}
	for _, tp := range parts {
		delete(t.current, tp)
	}
}

// onLost closes partitions another member may already own: nothing is
// committed for them, as Kafka's WorkerSinkTask does.
func (t *sinkTask) onLost(ctx context.Context, _ *kgo.Client, m map[string][]int32) {
	t.mu.Lock()
	defer t.mu.Unlock()
	parts := toParts(m)
	if err := t.client.Close(ctx, parts); err != nil {
		t.logger.Warn("sink task: close of lost partitions failed", "err", err)
	}
	for _, tp := range parts {
		delete(t.current, tp)
	}
}

// run is the task's life; it returns nil when ctx ends and an error when
// the task failed.
func (t *sinkTask) run(ctx context.Context) error {
	if err := t.client.Start(ctx, t.config); err != nil {
		return fmt.Errorf("starting the task: %w", err)
	}
	defer func() {
		stopCtx, cancel := context.WithTimeout(context.Background(), t.flushTO)
		defer cancel()
		t.mu.Lock()
		if err := t.commitLocked(stopCtx, t.consumer, nil); err != nil {
			t.logger.Warn("sink task: final commit failed", "err", err)
		}
		t.mu.Unlock()
		t.consumer.CloseAllowingRebalance()
		_ = t.client.Stop(stopCtx)
	}()
	nextFlush := time.Now().Add(t.flushInt)
	for ctx.Err() == nil {
		if time.Now().After(nextFlush) {
			t.mu.Lock()
			err := t.commitLocked(ctx, t.consumer, nil)
			t.mu.Unlock()
			if err != nil {
				t.metrics.commitFailures.Inc()
				t.logger.Warn("sink task: offset commit failed; will retry", "err", err)
			}
			nextFlush = time.Now().Add(t.flushInt)
		}
		if t.gate.isPaused() {
			t.gate.wait(ctx, nextFlush)
			continue
		}
		pctx, cancel := context.WithTimeout(ctx, max(time.Until(nextFlush), time.Millisecond))
		fetches := t.consumer.PollRecords(pctx, t.maxBatch)
		cancel()
		err := t.deliver(ctx, fetches)
		t.consumer.AllowRebalance()
		if err != nil {
			return err
		}
	}
	return nil
}

// deliver converts, transforms and puts one fetched batch, retrying it
// while the plugin answers retriable.
func (t *sinkTask) deliver(ctx context.Context, fetches kgo.Fetches) error {
	for _, fe := range fetches.Errors() {
		if fe.Err == context.DeadlineExceeded || fe.Err == context.Canceled {
			continue
		}
		t.logger.Warn("sink task: fetch error", "topic", fe.Topic, "partition", fe.Partition, "err", fe.Err)
	}
	var batch []*data.Record
	var origin []*kgo.Record
	var last []*kgo.Record
	var batchErr error // the first intolerable error of the batch
	fetches.EachRecord(func(kr *kgo.Record) {
		last = append(last, kr)
		t.metrics.read.Inc()
		r, err := t.toConnect(kr)
		if err != nil {
			err = t.errs.retry.again(ctx, err, func() (err error) { r, err = t.toConnect(kr); return err })
		}
		if err == nil && t.chain != nil {
			in := r
			r, err = t.chain.Apply(in)
			if err != nil {
				err = t.errs.retry.again(ctx, err, func() (err error) { r, err = t.chain.Apply(in); return err })
			}
			if err != nil {
				err = &stageError{stage: "TRANSFORMATION", class: "org.apache.kafka.connect.transforms.Transformation", excClass: connectException, err: err}
			}
		}
		if err != nil {
			if terr := t.reportBad(ctx, kr, "converting or transforming a sink record", err); terr != nil && batchErr == nil {
				batchErr = terr
			}
			return
		}
		if r == nil {
			return // filtered by a transform: not an error
		}
		batch = append(batch, r)
		origin = append(origin, kr)
	})
	if batchErr != nil {
		return batchErr
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(batch) > 0 {
		if err := t.putLocked(ctx, batch, origin); err != nil {
			return err
		}
	}
	for _, kr := range last {
		t.current[TopicPartition{kr.Topic, kr.Partition}] = kr.Offset + 1
	}
	return nil
}

func (t *sinkTask) putLocked(ctx context.Context, batch []*data.Record, origin []*kgo.Record) error {
	for {
		start := time.Now()
		res, err := t.client.Put(ctx, batch)
		if err != nil {
			return fmt.Errorf("put: %w", err)
		}
		if res.Retriable {
			t.logger.Info("sink task: put asked for a retry", "backoff", res.Backoff, "records", len(batch))
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(max(res.Backoff, 10*time.Millisecond)):
			}
			continue
		}
		t.metrics.batch.Observe(time.Since(start).Seconds())
		t.metrics.put.Add(float64(len(batch) - len(res.Failed)))
		for i, msg := range res.Failed {
			if i < 0 || i >= len(origin) {
				return fmt.Errorf("put: the task reported a failed record at index %d of a batch of %d", i, len(origin))
			}
			putErr := &stageError{stage: "TASK_PUT", class: t.connClass, excClass: connectException, err: errors.New(msg)}
			if err := t.reportBad(ctx, origin[i], "sink task put", putErr); err != nil {
				return err
			}
		}
		return nil
	}
}

// reportBad handles one record that could not be delivered: the dead
// letter queue when one is configured and errors are tolerated, a log
// line, or the error that fails the task.
func (t *sinkTask) reportBad(ctx context.Context, kr *kgo.Record, stage string, err error) error {
	if terr := t.errs.tolerate(t.logger, stage, err, nil); terr != nil {
		return terr
	}
	t.metrics.skipped.Inc()
	if t.dlq == nil || t.errs.dlqTopic == "" {
		return nil
	}
	// The original record as it was read, timestamp included, as
	// Kafka's DeadLetterQueueReporter writes it.
	out := &kgo.Record{Topic: t.errs.dlqTopic, Key: kr.Key, Value: kr.Value, Timestamp: kr.Timestamp,
		Headers: append([]kgo.RecordHeader(nil), kr.Headers...)}
	if t.errs.dlqHeaders {
		stageName, class, excClass, msg := stageOf(err)
		h := func(k, v string) {
			out.Headers = append(out.Headers, kgo.RecordHeader{Key: "__connect.errors." + k, Value: []byte(v)})
		}
		h("topic", kr.Topic)
		h("partition", strconv.Itoa(int(kr.Partition)))
		h("offset", strconv.FormatInt(kr.Offset, 10))
		h("connector.name", t.id.Connector)
		h("task.id", strconv.Itoa(t.id.Task))
		h("stage", stageName)
		h("class.name", class)
		h("exception.class.name", excClass)
		h("exception.message", msg)
		h("exception.stacktrace", excClass+": "+msg)
	}
	if perr := t.dlq.ProduceSync(ctx, out).FirstErr(); perr != nil {
		return fmt.Errorf("writing to the dead letter queue %s: %w", t.errs.dlqTopic, perr)
	}
	t.metrics.dlq.Inc()
	return nil
}

// toConnect is the host side of a sink record: the converters, keeping the
// original topic, partition and offset (before SMTs) for commits.
func (t *sinkTask) toConnect(kr *kgo.Record) (*data.Record, error) {
	ks, k, err := t.keyConv.ToConnect(kr.Topic, kr.Key)
	if err != nil {
		return nil, &stageError{stage: "KEY_CONVERTER", class: t.keyClass, excClass: dataException, err: err}
	}
	vs, v, err := t.valueConv.ToConnect(kr.Topic, kr.Value)
	if err != nil {
		return nil, &stageError{stage: "VALUE_CONVERTER", class: t.valueClass, excClass: dataException, err: err}
	}
	r := &data.Record{
		Topic: kr.Topic, Partition: kr.Partition,
		KeySchema: ks, Key: k, ValueSchema: vs, Value: v,
		Timestamp:   kr.Timestamp.UnixMilli(),
		KafkaOffset: kr.Offset, OriginalTopic: kr.Topic, OriginalPartition: kr.Partition, OriginalOffset: kr.Offset,
	}
	for _, h := range kr.Headers {
		r.Headers = append(r.Headers, data.Header{Key: h.Key, Value: string(h.Value)})
	}
	return r, nil
}

// commitLocked asks the plugin which of the offsets put so far are safe
// and commits those to the group. parts limits it to some partitions (nil
// = every partition put). An empty answer means the plugin keeps its own
// offsets (an exactly-once sink), and nothing is committed.
func (t *sinkTask) commitLocked(ctx context.Context, cl *kgo.Client, parts []TopicPartition) error {
	cur := map[TopicPartition]int64{}
	if parts == nil {
		for tp, o := range t.current {
			cur[tp] = o
		}
	} else {
		for _, tp := range parts {
			if o, ok := t.current[tp]; ok {
				cur[tp] = o
			}
		}
	}
	if len(cur) == 0 {
		return nil
	}
	start := time.Now()
	safe, err := t.client.PreCommit(ctx, cur)
	if err != nil {
		return fmt.Errorf("pre-commit: %w", err)
	}
	if len(safe) == 0 {
		return nil
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for tp, o := range safe {
		if offsets[tp.Topic] == nil {
			offsets[tp.Topic] = map[int32]kgo.EpochOffset{}
		}
		offsets[tp.Topic][tp.Partition] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var commitErr error
	cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		commitErr = commitError(resp, err)
	})
	if commitErr == nil {
		t.metrics.commitLatency.Observe(time.Since(start).Seconds())
	}
	return commitErr
}

// commitError is the first error of an offset commit: the request's own,
// or the first partition the coordinator refused.
func commitError(resp *kmsg.OffsetCommitResponse, err error) error {
	if err != nil {
		return err
	}
	for _, t := range resp.Topics {
		for _, p := range t.Partitions {
			if err := kerr.ErrorForCode(p.ErrorCode); err != nil {
				return fmt.Errorf("committing %s/%d: %w", t.Topic, p.Partition, err)
			}
		}
	}
	return nil
}
