package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
)

// ensurePublication applies publication.autocreate.mode: all_tables
// creates a FOR ALL TABLES publication when missing; filtered creates or
// updates one listing exactly the captured tables; disabled requires the
// publication to exist.
func ensurePublication(ctx context.Context, conn *pgx.Conn, c *config, log *slog.Logger) error {
	var allTables bool
	err := conn.QueryRow(ctx, "SELECT puballtables FROM pg_publication WHERE pubname = $1", c.publication).Scan(&allTables)
	exists := err == nil
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("reading publication %q: %w", c.publication, err)
	}
	switch c.pubMode {
	case pubDisabled:
		if !exists {
			return fmt.Errorf("publication %q does not exist and publication.autocreate.mode is disabled: create it (CREATE PUBLICATION %s FOR TABLE ...)", c.publication, quoteIdent(c.publication))
		}
		return nil
	case pubAllTables:
		if exists {
			return nil
		}
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION "+quoteIdent(c.publication)+" FOR ALL TABLES"); err != nil {
			return fmt.Errorf("creating publication %q FOR ALL TABLES (needs superuser; or create it yourself and set publication.autocreate.mode=disabled): %w", c.publication, err)
		}
		log.Info("created publication for all tables", "publication", c.publication)
		return nil
	}
	tables, err := listTables(ctx, conn, c)
	if err != nil {
		return err
	}
	if len(tables) == 0 {
		return fmt.Errorf("publication.autocreate.mode=filtered: no table matches table.include.list/schema.include.list")
	}
	names := make([]string, len(tables))
	for i, tb := range tables {
		names[i] = quoteIdent(tb[0]) + "." + quoteIdent(tb[1])
	}
	list := strings.Join(names, ", ")
	var stmt string
	switch {
	case !exists:
		stmt = "CREATE PUBLICATION " + quoteIdent(c.publication) + " FOR TABLE " + list
	case allTables:
		return fmt.Errorf("publication %q is FOR ALL TABLES; publication.autocreate.mode=filtered needs a table list publication (drop it or use all_tables)", c.publication)
	default:
		stmt = "ALTER PUBLICATION " + quoteIdent(c.publication) + " SET TABLE " + list
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("publication %q: %s: %w", c.publication, stmt, err)
	}
	log.Info("publication set to the captured tables", "publication", c.publication, "tables", list)
	return nil
}

// slotState reads the slot: whether it exists, is in use, and its
// confirmed flush LSN. A slot of another plugin or database is an error.
func slotState(ctx context.Context, conn *pgx.Conn, c *config) (exists, active bool, confirmed uint64, err error) {
	var plugin, db, lsn *string
	err = conn.QueryRow(ctx, `SELECT plugin, database, active, confirmed_flush_lsn::text FROM pg_replication_slots WHERE slot_name = $1`, c.slot).
		Scan(&plugin, &db, &active, &lsn)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, 0, nil
	}
	if err != nil {
		return false, false, 0, fmt.Errorf("reading slot %q: %w", c.slot, err)
	}
	if plugin == nil || *plugin != "pgoutput" || db == nil || *db != c.db {
		return false, false, 0, fmt.Errorf("replication slot %q exists and is not a pgoutput slot of database %q: choose another slot.name", c.slot, c.db)
	}
	if lsn != nil {
		l, perr := pglogrepl.ParseLSN(*lsn)
		if perr != nil {
			return false, false, 0, fmt.Errorf("slot %q confirmed_flush_lsn %q: %w", c.slot, *lsn, perr)
		}
		confirmed = uint64(l)
	}
	return true, active, confirmed, nil
}

// logSlotLag logs how much WAL the slot holds back: the bytes between
// the server's current WAL position and the slot's confirmed flush LSN.
// That is the metric to alert on, since a stalled slot keeps WAL forever.
func (t *task) logSlotLag(ctx context.Context) {
	var lag *int64
	var confirmed, current *string
	err := t.meta.QueryRow(ctx, `SELECT (pg_current_wal_lsn() - confirmed_flush_lsn)::int8, confirmed_flush_lsn::text, pg_current_wal_lsn()::text
FROM pg_replication_slots WHERE slot_name = $1`, t.cfg.slot).Scan(&lag, &confirmed, &current)
	if err != nil {
		t.log.Warn("reading slot lag", "slot", t.cfg.slot, "err", err)
		return
	}
	if lag != nil && confirmed != nil && current != nil {
		t.log.Info("slot lag", "slot", t.cfg.slot, "lag_bytes", *lag, "confirmed_flush_lsn", *confirmed, "current_wal_lsn", *current)
	}
}
