package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/postgressink/plan"
)

// write runs a batch in one transaction: the offsets advance first (so a
// concurrent writer of the same partitions is caught before any row is
// written), then each step writes its rows: inserts by COPY straight into
// the table; upserts, updates and deletes by one statement over the rows
// sent as one array per column (unnest), or, for tables with array
// columns, COPY into a staging table and one statement from it.
func (d *db) write(ctx context.Context, connector string, adv []plan.Advance, steps []step, batchSize int) error {
	return pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		if err := d.advance(ctx, tx, connector, adv); err != nil {
			return err
		}
		used := map[string]bool{}
		for _, s := range steps {
			if s.types != nil {
				if err := execArrays(ctx, tx, s, batchSize); err != nil {
					return fmt.Errorf("%s of %d rows into %s: %w", s.g.Kind, len(s.g.Rows), s.table, err)
				}
				continue
			}
			rows, err := pgRows(s.g)
			if err != nil {
				return err
			}
			cols := columnNames(s.g)
			if s.g.Kind == plan.KindInsert {
				if err := copyChunks(ctx, tx, identifier(s.table), cols, rows, batchSize); err != nil {
					return fmt.Errorf("COPY into %s: %w", s.table, err)
				}
				continue
			}
			if used[s.stage] { // the stage holds an earlier run's rows until commit
				if _, err := tx.Exec(ctx, "DELETE FROM "+pgjdbc.QuoteIdent(s.stage)); err != nil {
					return err
				}
			}
			used[s.stage] = true
			if err := copyChunks(ctx, tx, pgx.Identifier{s.stage}, cols, rows, batchSize); err != nil {
				return fmt.Errorf("COPY into the staging table of %s: %w", s.table, err)
			}
			if _, err := tx.Exec(ctx, plan.FromStage(s.g, s.table, s.stage)); err != nil {
				return fmt.Errorf("%s of %d rows into %s: %w", s.g.Kind, len(rows), s.table, err)
			}
		}
		return nil
	})
}

// errBadRows rolls back a batch with bad records when they are not
// tolerated.
var errBadRows = errors.New("records PostgreSQL refused, not tolerated")

// writeEach is the fallback after a batch failed on its data: the same
// transaction, but row by row in record order, each under a savepoint, so
// that the rows PostgreSQL refuses are reported and, when tolerate, the
// others written; else nothing is (errBadRows).
func (d *db) writeEach(ctx context.Context, connector string, adv []plan.Advance, groups []*plan.Group, bad map[int]error, tolerate bool) error {
	return pgx.BeginFunc(ctx, d.conn, func(tx pgx.Tx) error {
		if err := d.advance(ctx, tx, connector, adv); err != nil {
			return err
		}
		for _, g := range groups {
			t, err := pgjdbc.ParseTable(g.Table)
			if err != nil {
				continue // marked bad by prepare
			}
			sql := plan.RowStatement(g, t)
			for i, row := range g.Rows {
				rec := g.Records[i][0]
				if bad[rec] != nil {
					continue
				}
				args, err := pgRow(g, row)
				if err == nil {
					err = savepoint(ctx, tx, sql, args)
				}
				if err != nil {
					if !isDataError(err) {
						return err
					}
					bad[rec] = fmt.Errorf("%s into %s: %w", g.Kind, t, err)
				}
			}
		}
		if len(bad) > 0 && !tolerate {
			return errBadRows
		}
		return nil
	})
}

func savepoint(ctx context.Context, tx pgx.Tx, sql string, args []any) error {
	if _, err := tx.Exec(ctx, "SAVEPOINT sluice_row"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, sql, args...); err != nil {
		if _, rerr := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT sluice_row"); rerr != nil {
			return rerr
		}
		return err
	}
	_, err := tx.Exec(ctx, "RELEASE SAVEPOINT sluice_row")
	return err
}

// advance moves the stored offsets, failing with an offsetConflict when
// one is not where this task last saw it.
func (d *db) advance(ctx context.Context, tx pgx.Tx, connector string, adv []plan.Advance) error {
	if len(adv) == 0 {
		return nil
	}
	all := make([]plan.TP, len(adv))
	for i, a := range adv {
		all[i] = a.TP
	}
	b := &pgx.Batch{}
	for _, a := range adv {
		sql, args := plan.AdvanceSQL(d.offsets, a)
		b.Queue(sql, append([]any{connector}, args...)...)
	}
	res := tx.SendBatch(ctx, b)
	for _, a := range adv {
		tag, err := res.Exec()
		var pe *pgconn.PgError
		if errors.As(err, &pe) && pe.Code == "23505" || err == nil && tag.RowsAffected() != 1 {
			_ = res.Close()
			return &offsetConflict{tp: a.TP, all: all}
		}
		if err != nil {
			_ = res.Close()
			return err
		}
	}
	return res.Close()
}

// execArrays runs a step's rows through FromArrays, batchSize rows at a
// time.
func execArrays(ctx context.Context, tx pgx.Tx, s step, batchSize int) error {
	sql := plan.FromArrays(s.g, s.table, s.types)
	cols := s.g.Columns()
	for from := 0; from < len(s.g.Rows); from += batchSize {
		rows := s.g.Rows[from:min(from+batchSize, len(s.g.Rows))]
		arrays := make([]any, len(cols))
		for j, c := range cols {
			arr := make([]any, len(rows))
			for i, row := range rows {
				v, err := pgjdbc.ToPG(c.Schema, row[j])
				if err != nil {
					return &dataError{fmt.Errorf("column %s: %w", c.Name, err)}
				}
				arr[i] = v
			}
			arrays[j] = arr
		}
		if _, err := tx.Exec(ctx, sql, arrays...); err != nil {
			return err
		}
	}
	return nil
}

func copyChunks(ctx context.Context, tx pgx.Tx, table pgx.Identifier, cols []string, rows [][]any, size int) error {
	for len(rows) > 0 {
		n := min(size, len(rows))
		if _, err := tx.CopyFrom(ctx, table, cols, pgx.CopyFromRows(rows[:n])); err != nil {
			return err
		}
		rows = rows[n:]
	}
	return nil
}

func identifier(t pgjdbc.Table) pgx.Identifier {
	if t.Schema == "" {
		return pgx.Identifier{t.Name}
	}
	return pgx.Identifier{t.Schema, t.Name}
}

func columnNames(g *plan.Group) []string {
	cols := g.Columns()
	out := make([]string, len(cols))
	for i, c := range cols {
		out[i] = c.Name
	}
	return out
}

// pgRows converts a group's values to what pgx encodes.
func pgRows(g *plan.Group) ([][]any, error) {
	out := make([][]any, len(g.Rows))
	for i, row := range g.Rows {
		r, err := pgRow(g, row)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}

func pgRow(g *plan.Group, row []any) ([]any, error) {
	cols := g.Columns()
	out := make([]any, len(row))
	for j, v := range row {
		var err error
		if out[j], err = pgjdbc.ToPG(cols[j].Schema, v); err != nil {
			return nil, &dataError{fmt.Errorf("column %s: %w", cols[j].Name, err)}
		}
	}
	return out, nil
}
