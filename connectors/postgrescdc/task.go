package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

// task is the one task of a connector: it owns the slot's replication
// connection. A goroutine (run) snapshots and streams into a bounded
// queue that Poll drains; Commit feeds what Sluice made durable into the
// LSN book, whose flush point the stream reports to PostgreSQL.
type task struct {
	cfg *config
	log *slog.Logger

	meta *pgx.Conn      // catalog reads, heartbeat action, slot lag
	repl *pgconn.PgConn // the replication connection
	snap pgx.Tx         // the snapshot transaction, while one is to be read
	plan startPlan
	from lsnbook.Pos // where streaming starts, and what a restart skips
	cp   uint64      // consistent point of a slot created now

	mu      sync.Mutex
	queue   []*data.Record
	book    *lsnbook.Book
	err     error // the run goroutine's failure
	notify  chan struct{}
	space   chan struct{}
	cancel  context.CancelFunc
	done    chan struct{}
	stopped bool
}

func (t *task) Start(ctx context.Context, tc sdk.TaskContext, cfgMap map[string]string, committed []sdk.Position) error {
	cfg, err := parseConfig(cfgMap)
	if err != nil {
		return fmt.Errorf("invalid config: %w", err)
	}
	t.cfg, t.log = cfg, tc.Logger
	if t.log == nil {
		t.log = sdk.Logger
	}
	t.notify, t.space, t.done = make(chan struct{}, 1), make(chan struct{}, 1), make(chan struct{})
	var stored *storedOffset
	for _, p := range committed {
		if p.Partition[partitionKey] == cfg.prefix && p.Offset != nil {
			so, err := parseOffset(p.Offset)
			if err != nil {
				return fmt.Errorf("stored offset: %w", err)
			}
			stored = &so
		}
	}
	if err := t.setup(ctx, stored); err != nil {
		t.closeConns()
		return err
	}
	t.book = lsnbook.New(t.from)
	runCtx, cancel := context.WithCancel(context.Background())
	t.cancel = cancel
	go t.run(runCtx)
	return nil
}

// setup connects, manages the publication and the slot, and opens the
// snapshot transaction when one is to be taken.
func (t *task) setup(ctx context.Context, stored *storedOffset) error {
	c := t.cfg
	var err error
	if t.meta, err = pgx.Connect(ctx, c.dsn(false)); err != nil {
		return fmt.Errorf("connecting to %s:%d/%s: %w", c.host, c.port, c.db, err)
	}
	var walLevel string
	if err := t.meta.QueryRow(ctx, "SHOW wal_level").Scan(&walLevel); err != nil {
		return fmt.Errorf("reading wal_level: %w", err)
	}
	if walLevel != "logical" {
		return fmt.Errorf("wal_level is %q: logical decoding needs wal_level = logical in postgresql.conf (and a restart)", walLevel)
	}
	if c.snapshotMode != snapInitialOnly {
		if err := ensurePublication(ctx, t.meta, c, t.log); err != nil {
			return err
		}
	}
	slotExists, active, confirmed, err := slotState(ctx, t.meta, c)
	// A slot still active is most often the connection of this task's
	// previous process (killed, or restarted by the worker): PostgreSQL
	// lets go of it once it sees the connection gone. Wait a while.
	for deadline := time.Now().Add(slotBusyWait); err == nil && active && time.Now().Before(deadline); {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
		slotExists, active, confirmed, err = slotState(ctx, t.meta, c)
	}
	if err != nil {
		return err
	}
	if t.plan, err = planStart(c.snapshotMode, stored, slotExists, c.slot); err != nil {
		return err
	}
	if active && (t.plan.dropSlot || t.plan.stream) {
		return fmt.Errorf("replication slot %q is in use by another connection (another task or connector with the same slot.name?)", c.slot)
	}
	t.log.Info("starting", "slot", c.slot, "publication", c.publication, "snapshot", t.plan.snapshot,
		"create_slot", t.plan.createSlot, "drop_slot", t.plan.dropSlot, "stored_offset", stored != nil)
	if t.plan.stream || t.plan.createSlot {
		if t.repl, err = pgconn.Connect(ctx, c.dsn(true)); err != nil {
			return fmt.Errorf("opening the replication connection: %w", err)
		}
	}
	if t.plan.dropSlot {
		if err := pglogrepl.DropReplicationSlot(ctx, t.repl, c.slot, pglogrepl.DropReplicationSlotOptions{}); err != nil {
			return fmt.Errorf("dropping slot %q to take a new snapshot: %w", c.slot, err)
		}
	}
	snapName := ""
	if t.plan.createSlot {
		action := "NOEXPORT_SNAPSHOT"
		if t.plan.snapshot {
			action = "EXPORT_SNAPSHOT"
		}
		res, err := pglogrepl.CreateReplicationSlot(ctx, t.repl, c.slot, "pgoutput",
			pglogrepl.CreateReplicationSlotOptions{SnapshotAction: action, Mode: pglogrepl.LogicalReplication})
		if err != nil {
			return fmt.Errorf("creating replication slot %q: %w", c.slot, err)
		}
		lsn, err := pglogrepl.ParseLSN(res.ConsistentPoint)
		if err != nil {
			return fmt.Errorf("slot %q consistent point %q: %w", c.slot, res.ConsistentPoint, err)
		}
		t.cp, snapName = uint64(lsn), res.SnapshotName
		t.log.Info("created replication slot", "slot", c.slot, "consistent_point", res.ConsistentPoint, "snapshot", res.SnapshotName)
	}
	switch {
	case t.plan.createSlot:
		t.from = lsnbook.Complete(t.cp)
	case stored != nil:
		t.from = stored.pos
	default:
		// An existing slot and no offsets (snapshot.mode=no_data): the
		// slot's own confirmed position, never the server's current one.
		t.from = lsnbook.Complete(confirmed)
	}
	if t.plan.snapshot {
		return t.openSnapshot(ctx, snapName)
	}
	return nil
}

// slotBusyWait is how long Start waits for an active slot to be released.
const slotBusyWait = 20 * time.Second

func (t *task) closeConns() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if t.snap != nil {
		_ = t.snap.Rollback(ctx)
		_ = t.snap.Conn().Close(ctx)
		t.snap = nil
	}
	if t.repl != nil {
		_ = t.repl.Close(ctx)
	}
	if t.cfg != nil && t.cfg.dropSlotOnStop && t.meta != nil && t.plan.stream {
		// slot.drop.on.stop: once the stream's connection is closed the
		// slot is inactive and can go.
		if _, err := t.meta.Exec(ctx, "SELECT pg_drop_replication_slot($1)", t.cfg.slot); err != nil && !isUndefinedObject(err) {
			t.log.Warn("dropping the slot on stop", "slot", t.cfg.slot, "err", err)
		}
	}
	if t.meta != nil {
		_ = t.meta.Close(ctx)
	}
}

// run snapshots and streams until stopped; its error fails the task
// through Poll.
func (t *task) run(ctx context.Context) {
	defer close(t.done)
	err := func() error {
		if t.plan.snapshot {
			if err := t.readSnapshot(ctx); err != nil {
				return err
			}
		}
		if !t.plan.stream {
			t.log.Info("snapshot.mode=initial_only: the snapshot is done; nothing is streamed")
			<-ctx.Done()
			return nil
		}
		return t.stream(ctx)
	}()
	if err != nil && ctx.Err() == nil {
		t.log.Error("change capture stopped", "err", err)
		t.mu.Lock()
		t.err = err
		t.mu.Unlock()
		wake(t.notify)
	}
}

func wake(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// push queues records with their positions, in stream order.
func (t *task) push(recs []*data.Record, pos []lsnbook.Pos) {
	t.mu.Lock()
	t.queue = append(t.queue, recs...)
	for _, p := range pos {
		t.book.Queued(p)
	}
	t.mu.Unlock()
	wake(t.notify)
}

// full reports whether the queue is at max.queue.size.
func (t *task) full() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.queue) >= t.cfg.queueSize
}

// waitSpace waits until the queue has room, ctx ends, or until passes.
func (t *task) waitSpace(ctx context.Context, until time.Time) {
	if !t.full() {
		return
	}
	tm := time.NewTimer(time.Until(until))
	defer tm.Stop()
	select {
	case <-ctx.Done():
	case <-t.space:
	case <-tm.C:
	}
}

func (t *task) Poll(ctx context.Context, limits sdk.PollLimits) ([]*data.Record, error) {
	for {
		t.mu.Lock()
		if n := len(t.queue); n > 0 {
			if limits.MaxRecords > 0 && n > limits.MaxRecords {
				n = limits.MaxRecords
			}
			out := make([]*data.Record, n)
			copy(out, t.queue)
			rest := copy(t.queue, t.queue[n:])
			clear(t.queue[rest:])
			t.queue = t.queue[:rest]
			t.mu.Unlock()
			wake(t.space)
			return out, nil
		}
		err, stopped := t.err, t.stopped
		t.mu.Unlock()
		if err != nil {
			return nil, err
		}
		if stopped {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.done:
			t.mu.Lock()
			err := t.err
			t.mu.Unlock()
			return nil, err
		case <-t.notify:
		}
	}
}

// Commit takes the newest durable position: the stream may acknowledge
// up to what the LSN book then allows.
func (t *task) Commit(_ context.Context, c sdk.Commit) error {
	for _, p := range c.Positions {
		if p.Partition[partitionKey] != t.cfg.prefix || p.Offset == nil {
			continue
		}
		so, err := parseOffset(p.Offset)
		if err != nil {
			return fmt.Errorf("committed offset: %w", err)
		}
		t.mu.Lock()
		t.book.Durable(so.pos)
		t.mu.Unlock()
	}
	return nil
}

func (t *task) Stop(context.Context) error {
	t.mu.Lock()
	already := t.stopped
	t.stopped = true
	t.mu.Unlock()
	wake(t.notify)
	if already || t.cancel == nil {
		return nil
	}
	t.cancel()
	select {
	case <-t.done:
	case <-time.After(5 * time.Second):
		t.log.Warn("the replication reader did not stop in time")
	}
	t.closeConns()
	return nil
}

func isUndefinedObject(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "42704"
}
