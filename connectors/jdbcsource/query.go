package main

import (
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

// cursor is a query without a LIMIT (bulk, or all the rows at one
// timestamp) read batch.max.rows at a time across polls, so a big table
// is never held in memory whole. It holds the task's connection until
// its last row is read.
type cursor struct {
	tb   *table
	q    plan.Query
	rows pgx.Rows
	next []any // the row read ahead: is the batch the query's last?
}

func (t *sourceTask) dropCursor() {
	if t.cur != nil {
		t.cur.rows.Close()
		t.cur = nil
	}
}

// pollTable runs the next query of a table. Records come back with
// done when the query is over (more: the table may hold more rows now);
// an unbounded query is left open as the task's cursor instead.
func (t *sourceTask) pollTable(tb *table) (recs []*data.Record, done, more bool, err error) {
	ctx, c := t.ctx, t.cfg
	if !tb.prepared {
		if err := tb.prepare(ctx, t.conn, c); err != nil {
			return nil, false, false, err
		}
	}
	var dbNow time.Time
	if c.mode.UsesTS() {
		if err := t.conn.QueryRow(ctx, "SELECT now()").Scan(&dbNow); err != nil {
			return nil, false, false, fmt.Errorf("reading the database clock: %w", err)
		}
		if tb.off.IsZero() && c.tsInitial != nil {
			tb.off.HasTS, tb.off.TS = true, dbNow
			if *c.tsInitial >= 0 {
				tb.off.TS = time.UnixMilli(*c.tsInitial)
			}
		}
	}
	q := tb.spec.Next(tb.off, dbNow)
	if tb.follow != nil {
		q = *tb.follow
	}
	rows, err := t.conn.Query(ctx, q.SQL, args(q, c.loc)...)
	if err != nil {
		return nil, false, false, fmt.Errorf("querying %s: %w", tb.key, err)
	}
	if fields := rows.FieldDescriptions(); tb.schema == nil || !sameFields(tb.fields, fields) {
		if tb.ref.OID != 0 && tb.schema != nil {
			// The columns changed: learn their nullability again, which
			// needs the connection, then run the query again.
			rows.Close()
			if err := tb.loadColumns(ctx, t.conn); err != nil {
				return nil, false, false, err
			}
			if rows, err = t.conn.Query(ctx, q.SQL, args(q, c.loc)...); err != nil {
				return nil, false, false, fmt.Errorf("querying %s: %w", tb.key, err)
			}
			fields = rows.FieldDescriptions()
		}
		if err := tb.describe(append([]pgconn.FieldDescription(nil), fields...)); err != nil {
			rows.Close()
			return nil, false, false, err
		}
	}
	t.cur = &cursor{tb: tb, q: q, rows: rows}
	return t.readCursor()
}

// readCursor reads the next batch of the open query: all of a query with
// a LIMIT, batch.max.rows of one without.
func (t *sourceTask) readCursor() (recs []*data.Record, done, more bool, err error) {
	cur, c := t.cur, t.cfg
	tb := cur.tb
	var raws [][]any
	if cur.next != nil {
		raws, cur.next = append(raws, cur.next), nil
	}
	bounded := cur.q.Limit > 0
	for (bounded || len(raws) < c.batch) && cur.rows.Next() {
		v, err := cur.rows.Values()
		if err != nil {
			t.dropCursor()
			return nil, false, false, fmt.Errorf("reading %s: %w", tb.key, err)
		}
		raws = append(raws, v)
	}
	last := true
	if !bounded && len(raws) == c.batch && cur.rows.Next() {
		v, err := cur.rows.Values()
		if err != nil {
			t.dropCursor()
			return nil, false, false, fmt.Errorf("reading %s: %w", tb.key, err)
		}
		cur.next, last = v, false
	}
	if last {
		cur.rows.Close()
		t.cur = nil
		if err := cur.rows.Err(); err != nil {
			return nil, false, false, fmt.Errorf("reading %s: %w", tb.key, err)
		}
	}
	keys := make([]plan.RowKey, len(raws))
	if c.mode != plan.Bulk {
		for i, raw := range raws {
			if keys[i], err = tb.rowKey(raw, c.loc); err != nil {
				t.dropCursor()
				return nil, false, false, err
			}
		}
	}
	var step plan.Step
	if last {
		step = tb.spec.Advance(cur.q, tb.off, keys)
	} else {
		step = tb.spec.AdvancePart(tb.off, keys)
	}
	recs = make([]*data.Record, 0, step.Emit)
	for i := 0; i < step.Emit; i++ {
		v, err := tb.value(raws[i], c.loc)
		if err != nil {
			t.dropCursor()
			return nil, false, false, fatalError{err}
		}
		r := &data.Record{Topic: tb.topic, Partition: -1, Timestamp: -1, ValueSchema: tb.schema, Value: v}
		if tb.partition != nil {
			r.SourcePartition, r.SourceOffset = tb.partition, step.Rows[i].Map()
		}
		recs = append(recs, r)
	}
	if !last {
		return recs, false, false, nil
	}
	tb.off, tb.follow = step.Offset, step.FollowUp
	return recs, true, step.More || step.FollowUp != nil, nil
}
