package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/data"
)

// Converter turns Connect data into record bytes and back (the convert
// package's converters satisfy it).
type Converter interface {
	FromConnect(topic string, s *data.Schema, v any) ([]byte, error)
	ToConnect(topic string, b []byte) (*data.Schema, any, error)
}

// Transformer is a connector's chain of single message transforms; a nil
// record means the record was filtered out.
type Transformer interface {
	Apply(r *data.Record) (*data.Record, error)
}

// OffsetStore keeps source offsets: the offsets topic in distributed mode,
// a file in standalone mode.
type OffsetStore interface {
	Read(ctx context.Context, connector string) ([]SourceOffset, error)
	Write(ctx context.Context, connector string, offsets []SourceOffset) error
}

// taskPipeline is what a task needs around its plugin: converters,
// transforms, the error policy, and where it reports.
type taskPipeline struct {
	id        TaskID
	keyConv   Converter
	valueConv Converter
	// keyClass, valueClass and connClass name the converters and the
	// connector in errors and dead letter queue headers.
	keyClass, valueClass, connClass string
	chain                           Transformer
	errs                            errorPolicy
	logger                          *slog.Logger
	metrics                         *taskMetrics
}

// sourceTask runs one source task: poll the plugin, transform and convert,
// produce, and every offset.flush.interval.ms store the offsets of
// everything produced and acknowledged, then tell the plugin (Commit).
// One goroutine converts, produces and flushes; another polls one batch
// ahead (run).
type sourceTask struct {
	taskPipeline
	client   SourceTaskClient
	producer *kgo.Client
	offsets  OffsetStore
	config   map[string]string
	flushInt time.Duration
	flushTO  time.Duration

	// pending holds, per source partition, the newest offset polled and
	// not yet stored; lastSeq the newest batch polled.
	pending      map[string]SourceOffset
	lastSeq      uint64
	committedSeq uint64

	// topics records the topics the task writes to (KIP-558).
	topics     StatusBackend
	seenTopics map[string]bool

	gate *pauseGate

	// headers converts record headers for the producer (headers.go).
	headers headerCache
	// slab holds the next kgo.Records toKafka hands out, recordSlab at a
	// time rather than one allocation per record.
	slab []kgo.Record

	mu         sync.Mutex
	produceErr error // the first record the cluster refused for good
}

// A Poll asks for at most pollMaxRecords records (and the plugin's byte
// bound, 4 MiB by default) and waits at most pollMaxWait for the first.
// Each Poll is a gRPC round trip and wakes three processes; 8000 rather
// than 2000 short lines a Poll took the file tail from 34 to 48 MB/s (1.75×
// without the path header) on a 2-core machine, side by side.
const (
	pollMaxRecords = 8000
	pollMaxWait    = 500 * time.Millisecond
)

// run is the task's life: it returns nil when ctx ends (stopped) and an
// error when the task failed, after flushing what it safely can.
//
// Polling runs one batch ahead on its own goroutine (pollAhead), so the
// plugin reads and encodes the next batch while this loop converts and
// produces the last one: a plain loop added the two per-record costs, and
// a file tail ran at 1/(plugin + worker) records per second instead of
// 1/max(plugin, worker). It stays safe because the plugin numbers its
// batches and Commit(seq) covers only batches up to seq: a batch polled
// but not yet sent is never committed, and after a stop it is read again
// from the stored offsets.
func (t *sourceTask) run(ctx context.Context) error {
	committed, err := t.offsets.Read(ctx, t.id.Connector)
	if err != nil {
		return fmt.Errorf("reading committed offsets: %w", err)
	}
	if err := t.client.Start(ctx, t.config, committed); err != nil {
		return fmt.Errorf("starting the task: %w", err)
	}
	pollCtx, stopPolling := context.WithCancel(ctx)
	batches := make(chan polledBatch, 1)
	pollerDone := make(chan struct{})
	go func() {
		defer close(pollerDone)
		t.pollAhead(pollCtx, batches)
	}()
	defer func() {
		// The poller must be out of the plugin before Stop.
		stopPolling()
		<-pollerDone
		stopCtx, cancel := context.WithTimeout(context.Background(), t.flushTO)
		defer cancel()
		_ = t.client.Stop(stopCtx)
	}()
	nextFlush := time.Now().Add(t.flushInt)
	timer := time.NewTimer(t.flushInt)
	defer timer.Stop()
	for {
		if ctx.Err() != nil {
			t.flush(context.Background())
			return nil
		}
		if !time.Now().Before(nextFlush) {
			if err := t.flush(ctx); err != nil {
				return err
			}
			nextFlush = time.Now().Add(t.flushInt)
		}
		timer.Reset(time.Until(nextFlush))
		var pb polledBatch
		select {
		case <-ctx.Done():
			continue
		case <-timer.C:
			continue
		case pb = <-batches:
		}
		if pb.err != nil {
			if ctx.Err() != nil {
				continue
			}
			return fmt.Errorf("polling the task: %w", pb.err)
		}
		b := pb.batch
		for _, p := range b.Positions {
			t.pending[p.Key] = p.SourceOffset
		}
		if err := t.send(ctx, b.Records); err != nil {
			return err
		}
		if len(b.Records) > 0 {
			t.lastSeq = b.Seq
		}
	}
}

// polledBatch is one Poll's answer handed from pollAhead to run.
type polledBatch struct {
	batch PolledBatch
	err   error
}

// pollAhead polls the plugin while the task is not paused and hands each
// non-empty batch (and the first error, after which it stops) to run,
// holding at most one batch run has not taken. It returns when ctx ends.
func (t *sourceTask) pollAhead(ctx context.Context, out chan<- polledBatch) {
	for ctx.Err() == nil {
		if t.gate.isPaused() {
			t.gate.wait(ctx, time.Now().Add(pollMaxWait))
			continue
		}
		start := time.Now()
		b, err := t.client.Poll(ctx, pollMaxRecords, pollMaxWait)
		if err == nil {
			t.metrics.pollBatch(len(b.Records), time.Since(start))
			if len(b.Records) == 0 && len(b.Positions) == 0 {
				continue
			}
		}
		select {
		case out <- polledBatch{batch: b, err: err}:
		case <-ctx.Done():
			return
		}
		if err != nil {
			return
		}
	}
}

// send transforms, converts and produces one polled batch, and records
// each record's own source offset as pending when it carries one (a
// plugin sending positions per batch does not). A record dropped by a
// transform or skipped under errors.tolerance=all still moves its offset:
// Kafka does the same, so a filtered record is not polled again after a
// restart.
func (t *sourceTask) send(ctx context.Context, recs []*data.Record) error {
	for _, r := range recs {
		if r.SourcePartition != nil {
			key, err := canonicalJSON(r.SourcePartition)
			if err != nil {
				return fmt.Errorf("source partition %v: %w", r.SourcePartition, err)
			}
			t.pending[key] = SourceOffset{Partition: r.SourcePartition, Offset: r.SourceOffset}
		}
		kr, err := t.toKafka(r)
		if err != nil {
			err = t.errs.retry.again(ctx, err, func() (err error) { kr, err = t.toKafka(r); return err })
		}
		if err != nil {
			if terr := t.errs.tolerate(t.logger, "converting or transforming a source record", err, r); terr != nil {
				return terr
			}
			t.metrics.skipped.Inc()
			continue
		}
		if kr == nil {
			continue
		}
		t.producer.Produce(ctx, kr, t.acked)
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.produceErr
}

// acked is the producer's callback: a record the cluster refused after
// the client's retries fails the task (or is skipped when tolerated), and
// its offset must not be committed.
func (t *sourceTask) acked(r *kgo.Record, err error) {
	if err == nil {
		t.metrics.written.Inc()
		return
	}
	if errors.Is(err, context.Canceled) {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.produceErr == nil {
		t.produceErr = fmt.Errorf("producing to %s: %w", r.Topic, err)
	}
}

// toKafka is the host side of a source record: SMTs, then the converters.
func (t *sourceTask) toKafka(r *data.Record) (*kgo.Record, error) {
	if t.chain != nil {
		var err error
		if r, err = t.chain.Apply(r); err != nil {
			return nil, fmt.Errorf("transform: %w", err)
		}
		if r == nil {
			return nil, nil
		}
	}
	if !t.seenTopics[r.Topic] && t.topics != nil {
		t.seenTopics[r.Topic] = true
		t.topics.AddTopic(t.id.Connector, r.Topic)
	}
	key, err := fromConnect(t.keyConv, r.Topic, r.KeySchema, r.Key)
	if err != nil {
		return nil, fmt.Errorf("key converter: %w", err)
	}
	value, err := fromConnect(t.valueConv, r.Topic, r.ValueSchema, r.Value)
	if err != nil {
		return nil, fmt.Errorf("value converter: %w", err)
	}
	kr := t.newRecord()
	kr.Topic, kr.Key, kr.Value = r.Topic, key, value
	if r.Partition >= 0 {
		withPartition(kr, r.Partition)
	}
	if r.Timestamp >= 0 {
		kr.Timestamp = time.UnixMilli(r.Timestamp)
	}
	kr.Headers = t.headers.convert(r.Headers)
	return kr, nil
}

// recordSlab is how many kgo.Records one allocation holds: a slab stays
// alive until its last record is acknowledged, and 1024 are ~0.2 MB.
const recordSlab = 1024

// newRecord returns a zero kgo.Record of its own (each is produced once
// and never reused). A file tail allocated one per line, ~5% of the
// worker's allocations by count.
func (t *sourceTask) newRecord() *kgo.Record {
	if len(t.slab) == 0 {
		t.slab = make([]kgo.Record, recordSlab)
	}
	kr := &t.slab[0]
	t.slab = t.slab[1:]
	return kr
}

// sharedBytesConverter is a converter that can give a value's bytes
// without copying them (StringConverter in UTF-8: a string's own bytes).
type sharedBytesConverter interface {
	SharedBytes(v any) ([]byte, bool)
}

// fromConnect is c.FromConnect, without the copy where c can share the
// value's bytes: the producer only reads a record's key and value, and a
// copy of every line was ~5% of the worker's CPU for a file tail (perf).
func fromConnect(c Converter, topic string, s *data.Schema, v any) ([]byte, error) {
	if sc, ok := c.(sharedBytesConverter); ok {
		if b, ok := sc.SharedBytes(v); ok {
			return b, nil
		}
	}
	return c.FromConnect(topic, s, v)
}

// flush makes everything polled so far durable: wait for the producer's
// acknowledgements, store the pending offsets, then commit the batch in
// the plugin. Offsets are stored only after every record before them is
// acknowledged, so a crash loses nothing and repeats at most what was
// polled since the last flush.
func (t *sourceTask) flush(ctx context.Context) error {
	if len(t.pending) == 0 && t.lastSeq == t.committedSeq {
		return nil
	}
	start := time.Now()
	fctx, cancel := context.WithTimeout(ctx, t.flushTO)
	defer cancel()
	if err := t.producer.Flush(fctx); err != nil {
		t.metrics.commitFailures.Inc()
		t.logger.Warn("offset flush: records not acknowledged in time; will retry", "timeout", t.flushTO, "err", err)
		return nil
	}
	t.mu.Lock()
	perr := t.produceErr
	t.mu.Unlock()
	if perr != nil {
		if terr := t.errs.tolerate(t.logger, "producing a source record", perr, nil); terr != nil {
			return terr
		}
		t.mu.Lock()
		t.produceErr = nil
		t.mu.Unlock()
	}
	batch := make([]SourceOffset, 0, len(t.pending))
	for _, o := range t.pending {
		batch = append(batch, o)
	}
	if len(batch) > 0 {
		if err := t.offsets.Write(fctx, t.id.Connector, batch); err != nil {
			t.metrics.commitFailures.Inc()
			t.logger.Warn("offset flush: storing offsets failed; will retry", "err", err)
			return nil
		}
	}
	clear(t.pending)
	if t.lastSeq != t.committedSeq {
		if err := t.client.Commit(fctx, t.lastSeq); err != nil {
			t.logger.Warn("offset flush: the task's commit failed", "seq", t.lastSeq, "err", err)
		}
		t.committedSeq = t.lastSeq
	}
	t.metrics.commitLatency.Observe(time.Since(start).Seconds())
	return nil
}

// canonicalJSON encodes a map with sorted keys (encoding/json sorts map
// keys), so one source partition always has the same offsets-topic key.
func canonicalJSON(m map[string]any) (string, error) {
	b, err := json.Marshal(m)
	return string(b), err
}
