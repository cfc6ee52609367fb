package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

// sourceTask reads its share of the tables (or the custom query) over
// one connection, one query at a time: each table every poll.interval.ms,
// at once again when a query filled its LIMIT.
type sourceTask struct {
	cfg    *config
	assign assignment
	log    sdk.TaskContext

	// committed offsets from Start, by partition: v0 ({"table": name}
	// or {"query": "query"}) and Confluent's v1 ({"protocol": "1",
	// "table": "db.schema.table"}).
	committedV0 map[string]plan.Offset
	committedV1 map[string]plan.Offset

	ctx    context.Context // ends at Stop; queries run under it
	cancel context.CancelFunc

	mu          sync.Mutex // held by Poll; Stop takes it to close conn
	conn        *pgx.Conn
	tables      map[string]*table
	cur         *cursor // an unbounded query being read, holding conn
	sched       plan.Schedule
	nextRefresh time.Time
	failures    int
}

func (t *sourceTask) Start(_ context.Context, tc sdk.TaskContext, cfgMap map[string]string, committed []sdk.Position) error {
	cfg, errs := parseConfig(cfgMap)
	if err := errs.err(); err != nil {
		return err
	}
	a, err := parseAssignment(cfgMap)
	if err != nil {
		return err
	}
	t.cfg, t.assign, t.log = cfg, a, tc
	if t.log.Logger == nil {
		t.log.Logger = sdk.Logger
	}
	t.committedV0, t.committedV1 = map[string]plan.Offset{}, map[string]plan.Offset{}
	for _, p := range committed {
		if p.Offset == nil {
			continue
		}
		off, err := plan.OffsetFromMap(p.Offset)
		if err != nil {
			return fmt.Errorf("committed offset %v of %v: %w", p.Offset, p.Partition, err)
		}
		if q, ok := p.Partition[plan.QueryKey].(string); ok {
			t.committedV0[plan.QueryKey+"\x00"+q] = off
			continue
		}
		name, ok := p.Partition[plan.TableKey].(string)
		if !ok {
			continue
		}
		if p.Partition[plan.ProtocolKey] != nil {
			t.committedV1[name] = off
		} else {
			t.committedV0[name] = off
		}
	}
	t.tables = map[string]*table{}
	t.sched = plan.Schedule{Interval: cfg.poll}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	return nil
}

// committedOffset is the offset a table resumes from: ours (Confluent's
// v0 shape), else one Confluent's v1 protocol wrote for it.
func (t *sourceTask) committedOffset(ref tableRef) plan.Offset {
	if off, ok := t.committedV0[ref.Name]; ok {
		return off
	}
	for fq, off := range t.committedV1 {
		fq = strings.ReplaceAll(fq, `"`, "")
		if fq == ref.Schema+"."+ref.Name || strings.HasSuffix(fq, "."+ref.Schema+"."+ref.Name) {
			return off
		}
	}
	return plan.Offset{}
}

func (t *sourceTask) newTable(key string, ref tableRef) *table {
	c := t.cfg
	quote := pgjdbc.QuoteIdent
	from := pgjdbc.Table{Schema: ref.Schema, Name: ref.Name}.Quoted()
	if !c.quote {
		// quote.sql.identifiers=never: names as written, folded by
		// PostgreSQL.
		quote = func(s string) string { return s }
		from = ref.Schema + "." + ref.Name
	}
	tb := &table{key: key, ref: ref, topic: c.topicPrefix + ref.Name, incName: c.incColumn, tsNames: c.tsColumns, mapping: c.numeric}
	if !c.quote {
		// Result columns carry the folded names.
		tb.incName = strings.ToLower(c.incColumn)
		tb.tsNames = nil
		for _, col := range c.tsColumns {
			tb.tsNames = append(tb.tsNames, strings.ToLower(col))
		}
	}
	tb.spec = plan.Spec{Mode: c.mode, Delay: c.delay, Limit: c.batch, From: from}
	if c.query != "" {
		tb.topic, tb.nameless = c.topicPrefix, true
		tb.spec.From = queryFrom(c.query)
	}
	for _, col := range c.tsColumns {
		tb.spec.TSColumns = append(tb.spec.TSColumns, quote(col))
	}
	if c.incColumn != "" {
		tb.spec.IncColumn = quote(c.incColumn)
	}
	if c.mode != plan.Bulk {
		if c.query != "" {
			tb.partition = map[string]any{plan.QueryKey: plan.QueryPartitionValue}
			tb.off = t.committedV0[plan.QueryKey+"\x00"+plan.QueryPartitionValue]
		} else {
			tb.partition = map[string]any{plan.TableKey: ref.Name}
			tb.off = t.committedOffset(ref)
		}
	}
	return tb
}

// refresh lists the tables again (table.poll.interval.ms) and schedules
// this task's share of them.
func (t *sourceTask) refresh(now time.Time) error {
	t.nextRefresh = now.Add(t.cfg.tablePoll)
	if t.cfg.query != "" {
		if _, ok := t.tables[plan.QueryKey]; !ok {
			t.tables[plan.QueryKey] = t.newTable(plan.QueryKey, tableRef{})
		}
		t.sched.Set([]string{plan.QueryKey}, now)
		return nil
	}
	refs, err := listTables(t.ctx, t.conn, t.cfg)
	if err != nil {
		return err
	}
	var keys []string
	live := map[string]bool{}
	for _, r := range refs {
		if !t.assign.has(r.Name) {
			continue
		}
		keys = append(keys, r.Name)
		live[r.Name] = true
		if old, ok := t.tables[r.Name]; !ok || old.ref.OID != r.OID {
			if ok {
				// Dropped and created again: keep the offset read so far.
				nt := t.newTable(r.Name, r)
				nt.off = old.off
				t.tables[r.Name] = nt
			} else {
				t.tables[r.Name] = t.newTable(r.Name, r)
			}
		}
	}
	for k, tb := range t.tables {
		if !live[k] {
			// Gone (or no longer selected): should it come back, it
			// resumes where this task left it, not at Start's offset.
			if !tb.off.IsZero() {
				t.committedV0[k] = tb.off
			}
			delete(t.tables, k)
		}
	}
	t.sched.Set(keys, now)
	return nil
}

func (t *sourceTask) Poll(ctx context.Context, _ sdk.PollLimits) ([]*data.Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for {
		if t.ctx.Err() != nil || ctx.Err() != nil {
			return nil, nil
		}
		if t.conn == nil {
			conn, err := pgx.ConnectConfig(t.ctx, t.cfg.conn)
			if err != nil {
				return t.failed(ctx, fmt.Errorf("connecting to %s: %w", t.cfg.conn.Host, err))
			}
			t.conn = conn
		}
		if t.cur != nil {
			// An unbounded query is being read: it has the connection.
			key := t.cur.tb.key
			recs, done, more, err := t.readCursor()
			if err != nil {
				return t.failed(ctx, err)
			}
			t.failures = 0
			if done {
				t.sched.Done(key, time.Now(), more)
			}
			if len(recs) > 0 {
				return recs, nil
			}
			continue
		}
		now := time.Now()
		if !now.Before(t.nextRefresh) {
			if err := t.refresh(now); err != nil {
				return t.failed(ctx, err)
			}
		}
		key, wait, ok := t.sched.Next(now)
		if untilRefresh := t.nextRefresh.Sub(now); !ok || wait > untilRefresh {
			wait = untilRefresh
		}
		if wait > 0 {
			if !sleep(ctx, t.ctx, wait) {
				return nil, nil
			}
			continue
		}
		if !ok {
			continue
		}
		recs, done, more, err := t.pollTable(t.tables[key])
		if err != nil {
			return t.failed(ctx, err)
		}
		t.failures = 0
		if done {
			t.sched.Done(key, time.Now(), more)
		}
		if len(recs) > 0 {
			return recs, nil
		}
	}
}

// failed handles an error of a poll: one retrying cannot fix fails the
// task; others (a lost connection) are retried connection.attempts times
// in a row, connection.backoff.ms apart, on a new connection.
func (t *sourceTask) failed(ctx context.Context, err error) ([]*data.Record, error) {
	if t.ctx.Err() != nil {
		return nil, nil
	}
	t.dropCursor()
	var fe fatalError
	if errors.As(err, &fe) || !retriable(err) {
		return nil, err
	}
	t.failures++
	if t.conn != nil {
		_ = t.conn.Close(context.Background())
		t.conn = nil
	}
	if t.failures >= t.cfg.attempts {
		return nil, fmt.Errorf("giving up after %d attempts: %w", t.failures, err)
	}
	t.log.Logger.Warn("query failed; retrying on a new connection", "error", err.Error(), "attempt", t.failures, "backoff", t.cfg.backoff)
	sleep(ctx, t.ctx, t.cfg.backoff)
	return nil, nil
}

// retriable: connection trouble is, SQL the server refused is not
// (except the server shutting down or running out of connections).
func retriable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return strings.HasPrefix(pe.Code, "08") || strings.HasPrefix(pe.Code, "57P") || pe.Code == "53300" || pe.Code == "40001" || pe.Code == "40P01"
	}
	return true
}

// sleep waits d unless a context ends first; it reports whether d passed.
func sleep(a, b context.Context, d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-a.Done():
		return false
	case <-b.Done():
		return false
	case <-timer.C:
		return true
	}
}

// Commit needs nothing: offsets live in the worker's offset store, and
// the database keeps no position of ours.
func (t *sourceTask) Commit(context.Context, sdk.Commit) error { return nil }

func (t *sourceTask) Stop(context.Context) error {
	if t.cancel != nil {
		t.cancel()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.dropCursor()
	if t.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = t.conn.Close(ctx)
		cancel()
		t.conn = nil
	}
	return nil
}
