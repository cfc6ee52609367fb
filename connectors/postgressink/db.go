package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/postgressink/plan"
)

// db is a task's session: a connection, the columns of the tables it has
// looked at and the staging tables (temporary, so per session) it made.
type db struct {
	conn    *pgx.Conn
	offsets pgjdbc.Table
	columns map[string]map[string]string // quoted table -> column -> type
	stages  map[string]string            // quoted table, kind, columns -> staging table
}

// step is a group ready to run: its table parsed and checked, with the
// column types of the table for FromArrays, or the staging table when
// the columns cannot be unnested.
type step struct {
	g     *plan.Group
	table pgjdbc.Table
	types []string // nil: use stage (or COPY straight into the table for inserts)
	stage string
}

func connect(ctx context.Context, st settings) (*db, error) {
	conn, err := pgx.ConnectConfig(ctx, st.conn.Copy())
	if err != nil {
		return nil, err
	}
	d := &db{conn: conn, offsets: st.offsets, columns: map[string]map[string]string{}, stages: map[string]string{}}
	// Batches commit without waiting for their WAL flush: the offsets
	// commit with the rows, so a server crash loses both together and the
	// batch is read again. PreCommit's barrier makes them durable before
	// the worker's group records the offsets.
	// A statement waits for a lock at most lock_timeout (then the batch
	// is retried), and a session of a frozen plugin that sits in a
	// transaction holding offset rows is ended by the server.
	if _, err := conn.Exec(ctx, "SET synchronous_commit = off; SET lock_timeout = '30s'; SET idle_in_transaction_session_timeout = '60s'"); err != nil {
		d.close()
		return nil, err
	}
	for attempt := 0; ; attempt++ { // tasks starting together race to create it
		_, err = conn.Exec(ctx, plan.CreateOffsetsTable(st.offsets))
		if err == nil || attempt == 2 {
			break
		}
	}
	if err != nil {
		d.close()
		return nil, fmt.Errorf("creating the offsets table %s: %w", st.offsets, err)
	}
	return d, nil
}

func (d *db) close() { _ = d.conn.Close(context.Background()) }

func (d *db) loadOffsets(ctx context.Context, connector string, tps []plan.TP) (map[plan.TP]int64, error) {
	topics := make([]string, len(tps))
	parts := make([]int32, len(tps))
	for i, tp := range tps {
		topics[i], parts[i] = tp.Topic, tp.Partition
	}
	rows, err := d.conn.Query(ctx, plan.LoadOffsets(d.offsets), connector, topics, parts)
	if err != nil {
		return nil, err
	}
	out := map[plan.TP]int64{}
	var tp plan.TP
	var next int64
	_, err = pgx.ForEachRow(rows, []any{&tp.Topic, &tp.Partition, &next}, func() error {
		out[tp] = next
		return nil
	})
	return out, err
}

// barrier waits until every transaction committed so far is on disk: a
// commit with synchronous_commit on waits for the WAL up to it.
func (d *db) barrier(ctx context.Context) error {
	return pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "SET LOCAL synchronous_commit = on"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT txid_current()")
		return err
	})
}

// prepare checks each group's table, creating or evolving it as the
// config allows, and makes the staging tables. A group whose table cannot
// take it is dropped and its records marked bad.
func (d *db) prepare(ctx context.Context, st *settings, groups []*plan.Group, bad map[int]error) ([]step, error) {
	// Writes first, so that a table is created from the columns its
	// writes have, never from a delete's key alone.
	steps := make([]*step, len(groups))
	for pass := range 2 {
		for i, g := range groups {
			if (g.Kind == plan.KindDelete) != (pass == 1) {
				continue
			}
			s, err := d.prepareOne(ctx, st, g)
			var de *dataError
			switch {
			case errors.As(err, &de) || isDataError(err):
				for _, recs := range g.Records {
					for _, i := range recs {
						bad[i] = err
					}
				}
				continue
			case err != nil:
				return nil, err
			}
			steps[i] = s
		}
	}
	out := make([]step, 0, len(groups))
	for _, s := range steps {
		if s != nil {
			out = append(out, *s)
		}
	}
	return out, nil
}

// prepareOne prepares one group; nil for a delete from a table that does
// not exist, which has nothing to do.
func (d *db) prepareOne(ctx context.Context, st *settings, g *plan.Group) (*step, error) {
	t, err := pgjdbc.ParseTable(g.Table)
	if err != nil {
		return nil, &dataError{err}
	}
	cols, err := d.tableColumns(ctx, t)
	if err != nil {
		return nil, err
	}
	if cols == nil && g.Kind == plan.KindDelete {
		return nil, nil
	}
	if cols == nil {
		if !st.plan.AutoCreate {
			return nil, &dataError{fmt.Errorf("table %s does not exist and auto.create is false", t)}
		}
		sql, err := plan.CreateTable(t, g.Key, g.Cols)
		if err != nil {
			return nil, &dataError{err}
		}
		if err := d.ddl(ctx, t, sql); err != nil {
			return nil, err
		}
		if cols, err = d.tableColumns(ctx, t); err != nil {
			return nil, err
		}
	}
	if missing := plan.Missing(cols, g.Columns()); len(missing) > 0 {
		if !st.plan.AutoEvolve {
			return nil, &dataError{fmt.Errorf("table %s has no column %s and auto.evolve is false", t, missing[0].Name)}
		}
		sql, err := plan.AddColumns(t, missing)
		if err != nil {
			return nil, &dataError{err}
		}
		if err := d.ddl(ctx, t, sql); err != nil {
			return nil, err
		}
		if cols, err = d.tableColumns(ctx, t); err != nil {
			return nil, err
		}
	}
	s := &step{g: g, table: t}
	if g.Kind == plan.KindInsert {
		return s, nil // COPY straight into the table
	}
	all := g.Columns()
	types := make([]string, len(all))
	for i, c := range all {
		types[i] = cols[c.Name]
	}
	if plan.Unnestable(types) {
		s.types = types
		return s, nil
	}
	if s.stage, err = d.stage(ctx, t, g); err != nil {
		return nil, err
	}
	return s, nil
}

// ddl runs a DDL statement and forgets the table's cached columns.
//
// Tasks creating or evolving one table at once race in the catalog: the
// loser's CREATE TABLE IF NOT EXISTS can fail on a unique index of
// pg_type, its ADD COLUMN IF NOT EXISTS on pg_attribute. Such an error is
// not the data's: ddl retries the statement, which then finds the
// winner's table or column and does nothing.
func (d *db) ddl(ctx context.Context, t pgjdbc.Table, sql string) error {
	delete(d.columns, t.Quoted())
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		if _, err = d.conn.Exec(ctx, sql); err == nil {
			return nil
		}
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "23505" && pe.Code != "42P07" && pe.Code != "42701" && pe.Code != "40P01" {
			break
		}
	}
	return fmt.Errorf("%s: %w", sql, err)
}

// tableColumns returns a table's columns and types, nil if it does not
// exist.
func (d *db) tableColumns(ctx context.Context, t pgjdbc.Table) (map[string]string, error) {
	if c, ok := d.columns[t.Quoted()]; ok {
		return c, nil
	}
	rows, err := d.conn.Query(ctx, `SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
  WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped`, t.Quoted())
	if err != nil {
		return nil, err
	}
	var cols map[string]string
	var name, typ string
	if _, err := pgx.ForEachRow(rows, []any{&name, &typ}, func() error {
		if cols == nil {
			cols = map[string]string{}
		}
		cols[name] = typ
		return nil
	}); err != nil {
		return nil, err
	}
	if cols != nil {
		d.columns[t.Quoted()] = cols
	}
	return cols, nil
}

// stage returns the session's staging table for a group's table, kind
// and columns, creating it on first use.
func (d *db) stage(ctx context.Context, t pgjdbc.Table, g *plan.Group) (string, error) {
	var key strings.Builder
	key.WriteString(t.Quoted() + "\x00" + g.Kind.String())
	for _, c := range g.Columns() {
		key.WriteString("\x00" + c.Name)
	}
	if s, ok := d.stages[key.String()]; ok {
		return s, nil
	}
	name := "sluice_stage_" + strconv.Itoa(len(d.stages)+1)
	if _, err := d.conn.Exec(ctx, plan.CreateStage(name, t, g.Columns())); err != nil {
		return "", err
	}
	d.stages[key.String()] = name
	return name, nil
}

// dataError is a record that does not fit its table, found before
// PostgreSQL saw it.
type dataError struct{ err error }

func (e *dataError) Error() string { return e.err.Error() }
func (e *dataError) Unwrap() error { return e.err }

// isDataError tells errors caused by the data from those of the
// connection or the server: data exceptions (22), integrity violations
// (23) and statement errors (42, but for a table or column gone since it
// was cached), and values pgx could not encode for their column.
func isDataError(err error) bool {
	if err == nil {
		return false
	}
	var de *dataError
	if errors.As(err, &de) {
		return true
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "42P01", pe.Code == "42703":
			return false
		case strings.HasPrefix(pe.Code, "22"), strings.HasPrefix(pe.Code, "23"), strings.HasPrefix(pe.Code, "42"):
			return true
		}
		return false
	}
	msg := err.Error()
	return strings.Contains(msg, "unable to encode") || strings.Contains(msg, "failed to encode")
}

// offsetConflict is an offset row that was not where this task left it.
type offsetConflict struct {
	tp  plan.TP
	all []plan.TP
}

func (e *offsetConflict) Error() string {
	return fmt.Sprintf("the stored offset of %s/%d moved: another task wrote it", e.tp.Topic, e.tp.Partition)
}
