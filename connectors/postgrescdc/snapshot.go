package main

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

// openSnapshot opens the snapshot transaction: REPEATABLE READ on the
// snapshot the slot exported when it was created, so the rows read are
// exactly the database as of the slot's consistent point and streaming
// from there repeats and misses nothing. With no exported snapshot
// (initial_only, which streams nothing) it is a plain one.
func (t *task) openSnapshot(ctx context.Context, snapName string) error {
	conn, err := pgx.Connect(ctx, t.cfg.dsn(false))
	if err != nil {
		return fmt.Errorf("opening the snapshot connection: %w", err)
	}
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		_ = conn.Close(ctx)
		return fmt.Errorf("beginning the snapshot transaction: %w", err)
	}
	t.snap = tx
	if snapName != "" {
		if _, err := tx.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(snapName)); err != nil {
			return fmt.Errorf("importing the slot's snapshot %q: %w", snapName, err)
		}
	}
	return nil
}

// snapshotSrc is the source block and offset of snapshot records.
type snapshotSrc struct {
	txID int64
	at   time.Time
}

// readSnapshot emits every captured table's rows as read events (op
// "r"), the last one marked so a restart knows the snapshot finished.
func (t *task) readSnapshot(ctx context.Context) error {
	tx := t.snap
	defer func() {
		_ = tx.Rollback(context.Background())
		_ = tx.Conn().Close(context.Background())
		t.snap = nil
	}()
	src := snapshotSrc{at: time.Now()}
	if err := tx.QueryRow(ctx, "SELECT txid_snapshot_xmax(txid_current_snapshot())").Scan(&src.txID); err != nil {
		return fmt.Errorf("snapshot transaction id: %w", err)
	}
	tables, err := listTables(ctx, tx, t.cfg)
	if err != nil {
		return err
	}
	t.log.Info("snapshot started", "tables", len(tables), "consistent_point", pglsn(t.cp))
	var held *data.Record // the newest row, kept until it is known not to be the last
	rows := 0
	for _, name := range tables {
		cols, err := loadColumns(ctx, tx, name[0], name[1])
		if err != nil {
			return err
		}
		tbl := newTable(t.cfg, name[0], name[1], cols)
		n, err := t.snapshotTable(ctx, tx, tbl, src, &held)
		if err != nil {
			return err
		}
		rows += n
		t.log.Info("snapshot of table done", "table", name[0]+"."+name[1], "rows", n)
	}
	if held != nil {
		held.Value.(*data.Struct).Get("source").(*data.Struct).MustPut("snapshot", "last")
		t.pushSnapshot(held, src, true)
	}
	t.log.Info("snapshot done", "rows", rows)
	return tx.Commit(ctx)
}

func (t *task) snapshotTable(ctx context.Context, tx pgx.Tx, tbl *table, src snapshotSrc, held **data.Record) (int, error) {
	rows, err := tx.Query(ctx, "SELECT * FROM "+quoteIdent(tbl.schema)+"."+quoteIdent(tbl.name), pgx.QueryResultFormats{pgx.TextFormatCode})
	if err != nil {
		return 0, fmt.Errorf("snapshot of %s.%s: %w", tbl.schema, tbl.name, err)
	}
	defer rows.Close()
	cells := make([]cell, len(tbl.cols))
	n := 0
	for rows.Next() {
		raw := rows.RawValues()
		for i := range cells {
			cells[i] = cell{}
			if i < len(raw) {
				if raw[i] == nil {
					cells[i].null = true
				} else {
					cells[i].text = string(raw[i])
				}
			}
		}
		after, err := tbl.row(cells)
		if err != nil {
			return n, err
		}
		r := t.event(tbl, "r", nil, after, srcInfo{commitTime: src.at, snapshot: "true", txID: src.txID, lsn: t.cp})
		if *held != nil {
			t.pushSnapshot(*held, src, false)
			for t.full() && ctx.Err() == nil {
				t.waitSpace(ctx, time.Now().Add(time.Second))
			}
		}
		*held = r
		n++
		if ctx.Err() != nil {
			return n, ctx.Err()
		}
	}
	if err := rows.Err(); err != nil {
		return n, fmt.Errorf("snapshot of %s.%s: %w", tbl.schema, tbl.name, err)
	}
	return n, nil
}

// pushSnapshot queues one snapshot record. Its offset is the consistent
// point with Debezium's snapshot markers; until the last record is
// durable a restart takes the snapshot again.
func (t *task) pushSnapshot(r *data.Record, src snapshotSrc, last bool) {
	pos := lsnbook.Complete(t.cp)
	r.SourceOffset = offsetOf(pos, src.txID, src.at)
	r.SourceOffset[offSnapshot] = true
	r.SourceOffset[offLastSnapshot] = last
	t.push([]*data.Record{r}, []lsnbook.Pos{pos})
}
