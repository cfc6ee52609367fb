package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/postgressink/plan"
)

// task is one sink task: one connection, its stored-offset bookkeeping
// and caches of table columns and staging tables. Put writes each batch
// in one transaction with its offsets; nothing is buffered between calls.
type task struct {
	mu    sync.Mutex
	name  string
	log   *slog.Logger
	st    settings
	offs  *plan.Offsets
	db    *db  // nil until connected; dropped on a connection error
	dirty bool // batches committed since the last durability barrier
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string) error {
	st, problems := parse(cfg)
	if len(problems) > 0 {
		return fmt.Errorf("bad config: %v", problems)
	}
	t.name, t.log, t.st, t.offs = tc.Connector, tc.Logger, st, plan.NewOffsets()
	if t.log == nil {
		t.log = sdk.Logger
	}
	return nil
}

// conn returns the task's connection, connecting when needed.
func (t *task) conn(ctx context.Context) (*db, error) {
	if t.db != nil {
		return t.db, nil
	}
	d, err := connect(ctx, t.st)
	if err != nil {
		return nil, err
	}
	t.db = d
	return d, nil
}

// drop forgets a connection after an error that may have broken it.
func (t *task) drop() {
	if t.db != nil {
		t.db.close()
		t.db = nil
	}
}

// Open reads the assigned partitions' stored offsets and returns them,
// so consumption resumes exactly after the last committed batch.
func (t *task) Open(ctx context.Context, parts []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	tps := make([]plan.TP, len(parts))
	for i, p := range parts {
		tps[i] = plan.TP{Topic: p.Topic, Partition: p.Partition}
		t.offs.Forget(tps[i])
	}
	if err := t.load(ctx, tps); err != nil {
		return nil, fmt.Errorf("reading the stored offsets: %w", err)
	}
	return toSDK(t.offs.Stored(tps)), nil
}

// load reads stored offsets into the bookkeeping.
func (t *task) load(ctx context.Context, tps []plan.TP) error {
	if len(tps) == 0 {
		return nil
	}
	d, err := t.conn(ctx)
	if err != nil {
		return err
	}
	stored, err := d.loadOffsets(ctx, t.name, tps)
	if err != nil {
		t.drop()
		return err
	}
	for _, tp := range tps {
		n, ok := stored[tp]
		if !ok {
			n = -1
		}
		t.offs.Set(tp, n)
	}
	return nil
}

// Put writes the records not yet in the database, with their partitions'
// next offsets, in one transaction. Records that do not fit are reported
// in a PutErrors (and their offsets still advance); connection and
// transient errors ask the worker to redeliver the batch.
func (t *task) Put(ctx context.Context, recs []*data.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.load(ctx, t.offs.Unknown(recs)); err != nil {
		return t.retry("reading the stored offsets", err)
	}
	fresh := t.offs.Fresh(recs)
	if len(fresh) == 0 {
		return nil
	}
	batch := make([]*data.Record, len(fresh))
	bad := map[int]error{}
	var rows []plan.Row
	for j, i := range fresh {
		batch[j] = recs[i]
		row, skip, err := t.st.plan.RowOf(i, recs[i])
		switch {
		case err != nil:
			bad[i] = err
		case !skip:
			rows = append(rows, row)
		}
	}
	adv := t.offs.Advances(batch)
	d, err := t.conn(ctx)
	if err != nil {
		return t.retry("connecting", err)
	}
	groups := t.st.plan.Group(rows)
	steps, err := d.prepare(ctx, &t.st, groups, bad)
	if err != nil {
		return t.fail("preparing tables", err)
	}
	if len(bad) > 0 && !t.st.tolerate {
		return &sdk.PutErrors{Errors: bad} // nothing written, no offset stored
	}
	err = d.write(ctx, t.name, adv, steps, t.st.plan.BatchSize)
	if isDataError(err) {
		t.log.Warn("postgres sink: a batch failed; writing its rows one by one to find the bad ones", "err", err)
		err = d.writeEach(ctx, t.name, adv, t.st.plan.Sequential(rows), bad, t.st.tolerate)
		if errors.Is(err, errBadRows) {
			return &sdk.PutErrors{Errors: bad}
		}
	}
	if err != nil {
		return t.fail("writing a batch", err)
	}
	t.offs.Applied(adv)
	t.dirty = true
	if len(bad) > 0 {
		return &sdk.PutErrors{Errors: bad}
	}
	return nil
}

// fail turns a write error into the answer Put gives: an offsets
// conflict (another writer moved them) re-reads them and has the batch
// redelivered, to be filtered again; other errors are retried.
func (t *task) fail(what string, err error) error {
	var conflict *offsetConflict
	if errors.As(err, &conflict) {
		t.log.Warn("postgres sink: stored offsets moved under this task; re-reading them", "partition", conflict.tp)
		for _, tp := range conflict.all {
			t.offs.Forget(tp)
		}
		return sdk.Retriable(0, err)
	}
	return t.retry(what, err)
}

func (t *task) retry(what string, err error) error {
	t.log.Warn("postgres sink: "+what+" failed; the batch will be retried", "err", err, "backoff", t.st.backoff)
	t.drop()
	return sdk.Retriable(t.st.backoff, fmt.Errorf("%s: %w", what, err))
}

// PreCommit makes the committed batches durable (they commit without
// waiting for the WAL flush) and returns the offsets stored in the
// database, so the worker's group shows the same position.
func (t *task) PreCommit(ctx context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.dirty {
		d, err := t.conn(ctx)
		if err != nil {
			return nil, err
		}
		if err := d.barrier(ctx); err != nil {
			t.drop()
			return nil, err
		}
		t.dirty = false
	}
	tps := make([]plan.TP, len(offs))
	for i, o := range offs {
		tps[i] = plan.TP{Topic: o.Topic, Partition: o.Partition}
	}
	return toSDK(t.offs.Stored(tps)), nil
}

// Close forgets partitions another task may write next.
func (t *task) Close(_ context.Context, parts []sdk.TopicPartition) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, p := range parts {
		t.offs.Forget(plan.TP{Topic: p.Topic, Partition: p.Partition})
	}
	return nil
}

func (t *task) Stop(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.drop()
	return nil
}

func toSDK(adv []plan.Advance) []sdk.TopicPartitionOffset {
	if len(adv) == 0 {
		return nil
	}
	out := make([]sdk.TopicPartitionOffset, len(adv))
	for i, a := range adv {
		out[i] = sdk.TopicPartitionOffset{Topic: a.Topic, Partition: a.Partition, Offset: a.Next}
	}
	return out
}
