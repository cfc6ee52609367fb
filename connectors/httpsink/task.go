package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// task sends its partitions' records. Records wait in one buffer per
// partition; a partition's batches are sent one at a time, each retried
// until it is acknowledged or rejected before the next goes, so order
// within a partition is kept; partitions are sent concurrently.
//
// With linger.ms=0 (the default) Put returns only once its records are
// acknowledged or rejected, so rejected records go back to the worker as
// PutErrors and errors.tolerance and the dead letter queue apply to them.
// With a linger, a partial batch may wait past its Put; it is sent by a
// later Put or the linger timer, and if the receiver rejects records of
// an earlier Put they can no longer be named to the worker: with
// errors.tolerance=all they are logged and skipped, otherwise the task
// fails.
type task struct {
	// mu is held by Put, PreCommit, Close and the linger timer for the
	// whole of their sending, which is what keeps one batch per partition
	// in flight.
	mu     sync.Mutex
	cfg    *config
	enc    *encoder
	client *http.Client
	log    *slog.Logger
	name   string
	bufs   map[sdk.TopicPartition]*partBuffer
	putSeq uint64
	fatal  error // a failure found by the linger timer, for the next call

	stopCtx context.Context // ends at Stop, making any sending return
	stop    context.CancelFunc
	timer   sync.WaitGroup
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, m map[string]string) error {
	cfg, errs := parseConfig(m)
	if len(errs) > 0 {
		keys := make([]string, 0, len(errs))
		for k := range errs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		msgs := make([]string, 0, len(keys))
		for _, k := range keys {
			msgs = append(msgs, errs[k])
		}
		return fmt.Errorf("http sink config: %s", strings.Join(msgs, "; "))
	}
	enc, err := newEncoder(cfg.format, cfg.singleJSON)
	if err != nil {
		return err
	}
	t.cfg, t.enc, t.name = cfg, enc, tc.Connector
	t.log = tc.Logger
	if t.log == nil {
		t.log = sdk.Logger
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DialContext = (&net.Dialer{Timeout: cfg.connectTimeout, KeepAlive: 30 * time.Second}).DialContext
	tr.MaxIdleConnsPerHost = 64
	t.client = &http.Client{Transport: tr, Timeout: cfg.requestTimeout}
	t.bufs = map[sdk.TopicPartition]*partBuffer{}
	t.stopCtx, t.stop = context.WithCancel(context.Background())
	if cfg.limits.linger > 0 {
		t.timer.Add(1)
		go t.lingerLoop()
	}
	return nil
}

// lingerLoop sends batches whose linger has passed when no Put comes to
// send them (an idle topic).
func (t *task) lingerLoop() {
	defer t.timer.Done()
	tick := time.NewTicker(min(max(t.cfg.limits.linger/4, time.Millisecond), 100*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.stopCtx.Done():
			return
		case <-tick.C:
		}
		t.mu.Lock()
		if t.fatal == nil {
			if _, err := t.flush(t.stopCtx, false); err != nil && t.stopCtx.Err() == nil {
				t.fatal = err
			}
		}
		t.mu.Unlock()
	}
}

func (t *task) Open(_ context.Context, parts []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range parts {
		t.bufs[tp] = &partBuffer{}
	}
	return nil, nil
}

// origin is where a record was read: the position offsets are committed
// for, before any SMT renamed its topic.
func origin(r *data.Record) (sdk.TopicPartition, int64) {
	if r.OriginalTopic != "" {
		return sdk.TopicPartition{Topic: r.OriginalTopic, Partition: r.OriginalPartition}, r.OriginalOffset
	}
	return sdk.TopicPartition{Topic: r.Topic, Partition: r.Partition}, r.KafkaOffset
}

func (t *task) Put(ctx context.Context, recs []*data.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fatal != nil {
		return t.fatal
	}
	t.putSeq++
	failed := map[int]error{}
	now := time.Now()
	for i, r := range recs {
		el, err := t.enc.element(r)
		if err != nil {
			failed[i] = fmt.Errorf("encoding the value for the request body: %w", err)
			continue
		}
		tp, off := origin(r)
		b := t.bufs[tp]
		if b == nil {
			b = &partBuffer{}
			t.bufs[tp] = b
		}
		b.add(item{offset: off, body: el, arrived: now, put: t.putSeq, index: i})
	}
	rejected, err := t.flush(ctx, t.cfg.limits.linger == 0)
	if err != nil {
		return err
	}
	for i, e := range rejected {
		failed[i] = e
	}
	if len(failed) > 0 {
		return &sdk.PutErrors{Errors: failed}
	}
	return nil
}

// flush sends the batches that are ready (every buffered record when all
// is set), partitions in parallel, and returns the rejected records of the
// current Put by index. Rejected records of earlier Puts are logged and
// skipped under errors.tolerance=all, else they are the error.
func (t *task) flush(ctx context.Context, all bool) (map[int]error, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(t.stopCtx, cancel)()
	type result struct {
		rejected []rejection
		err      error
	}
	var wg sync.WaitGroup
	results := make(chan result, len(t.bufs))
	for tp, b := range t.bufs {
		if len(b.items) == 0 || (!all && !b.ready(time.Now(), t.cfg.limits)) {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			rej, err := t.sendPartition(ctx, tp, b, all)
			results <- result{rej, err}
		}()
	}
	wg.Wait()
	close(results)
	out := map[int]error{}
	var firstErr error
	for r := range results {
		if r.err != nil && firstErr == nil {
			firstErr = r.err
		}
		for _, rj := range r.rejected {
			switch {
			case rj.put == t.putSeq:
				out[rj.index] = rj.err
			case t.cfg.tolerateAll:
				t.log.Warn("http sink: the receiver rejected a record of an earlier put; skipping it (errors.tolerance=all, but a lingering record cannot reach the dead letter queue)",
					"topic", rj.tp.Topic, "partition", rj.tp.Partition, "offset", rj.offset, "err", rj.err)
			case firstErr == nil:
				firstErr = fmt.Errorf("record %s/%d@%d: %w", rj.tp.Topic, rj.tp.Partition, rj.offset, rj.err)
			}
		}
	}
	return out, firstErr
}

// rejection is a record the receiver refused.
type rejection struct {
	tp     sdk.TopicPartition
	offset int64
	put    uint64
	index  int
	err    error
}

// sendPartition sends one partition's ready batches in order, each to the
// end before the next.
func (t *task) sendPartition(ctx context.Context, tp sdk.TopicPartition, b *partBuffer, all bool) ([]rejection, error) {
	var refused []rejection
	for len(b.items) > 0 && (all || b.ready(time.Now(), t.cfg.limits)) {
		batch := b.head(t.cfg.limits)
		out, err := t.sendBatch(ctx, tp, batch)
		switch out {
		case delivered:
		case rejected:
			for _, it := range batch {
				refused = append(refused, rejection{tp: tp, offset: it.offset, put: it.put, index: it.index, err: err})
			}
		default:
			return refused, err
		}
		b.drop(len(batch))
	}
	return refused, nil
}

// sendBatch sends one batch, retrying as the policy says, with the same
// body and idempotency key each time.
func (t *task) sendBatch(ctx context.Context, tp sdk.TopicPartition, batch []item) (outcome, error) {
	first, last := batch[0].offset, batch[len(batch)-1].offset
	key := idempotencyKey(t.name, tp.Topic, tp.Partition, first, last)
	body := t.enc.body(batch)
	for attempt := 0; ; attempt++ {
		status, retryAfter, err := t.do(ctx, body, key)
		if ctx.Err() != nil {
			return giveUp, fmt.Errorf("sending %s: %w", key, ctx.Err())
		}
		out, delay := t.cfg.retry.decide(attempt, status, retryAfter, time.Now(), rand.Float64())
		switch out {
		case delivered:
			return out, nil
		case rejected:
			return out, fmt.Errorf("%s %s answered %w", t.cfg.method, t.cfg.url, err)
		case giveUp:
			return out, fmt.Errorf("giving up on batch %s after %d retries (max.retries): %w", key, attempt, err)
		}
		t.log.Info("http sink: retrying a batch", "key", key, "records", len(batch), "attempt", attempt+1, "backoff", delay, "err", err)
		select {
		case <-ctx.Done():
			return giveUp, fmt.Errorf("sending %s: %w", key, ctx.Err())
		case <-time.After(delay):
		}
	}
}

// statusError is an answer that was not 2xx, with the start of its body.
type statusError struct {
	status int
	body   string
}

func (e *statusError) Error() string {
	if e.body == "" {
		return fmt.Sprintf("HTTP %d", e.status)
	}
	return fmt.Sprintf("HTTP %d: %s", e.status, e.body)
}

// do sends one request: status 0 and the error when it failed on the way,
// else the status, the Retry-After header and (not 2xx) a statusError.
func (t *task) do(ctx context.Context, body []byte, key string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, t.cfg.method, t.cfg.url, bytes.NewReader(body))
	if err != nil {
		return 0, "", err
	}
	req.Header.Set("Content-Type", t.enc.contentType())
	for _, h := range t.cfg.headers {
		req.Header.Set(h[0], h[1])
	}
	if t.cfg.keyHeader != "" {
		req.Header.Set(t.cfg.keyHeader, key)
	}
	switch t.cfg.authType {
	case "basic":
		req.SetBasicAuth(t.cfg.user, t.cfg.password)
	case "bearer":
		req.Header.Set("Authorization", "Bearer "+t.cfg.token)
	}
	resp, err := t.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var snippet []byte
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 512))
	}
	// Drain what is left, so the connection can carry the next request.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return resp.StatusCode, resp.Header.Get("Retry-After"), &statusError{resp.StatusCode, strings.TrimSpace(string(snippet))}
	}
	return resp.StatusCode, "", nil
}

// PreCommit answers, for each partition, the offset before which every
// record was acknowledged by a 2xx (or rejected and reported): records
// still buffered or in flight hold their partition's commit back.
func (t *task) PreCommit(_ context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.fatal != nil {
		return nil, t.fatal
	}
	out := make([]sdk.TopicPartitionOffset, 0, len(offs))
	for _, o := range offs {
		if b := t.bufs[sdk.TopicPartition{Topic: o.Topic, Partition: o.Partition}]; b != nil {
			o.Offset = b.safeOffset(o.Offset)
		}
		out = append(out, o)
	}
	return out, nil
}

// Close drops what the closed partitions still buffer: those records were
// never committed, so whoever takes the partition next reads them again.
func (t *task) Close(_ context.Context, parts []sdk.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, tp := range parts {
		delete(t.bufs, tp)
	}
	return nil
}

// Stop makes any sending return and ends the linger timer.
func (t *task) Stop(context.Context) error {
	if t.stop == nil {
		return nil
	}
	t.stop()
	t.timer.Wait()
	t.mu.Lock()
	defer t.mu.Unlock()
	t.bufs = map[sdk.TopicPartition]*partBuffer{}
	if t.client != nil {
		t.client.CloseIdleConnections()
	}
	return nil
}
