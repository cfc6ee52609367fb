package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

// pg is one PostgreSQL server shared by the subtests of a test function;
// each subtest works in its own database.
type pg struct {
	s  *pgtest.Server
	db string
}

func startPG(t *testing.T) *pgtest.Server {
	return pgtest.Start(t, pgtest.Options{NoFsync: true})
}

func newDB(t *testing.T, s *pgtest.Server, name string) pg {
	s.CreateDB(name)
	return pg{s: s, db: name}
}

func (p pg) sql(t *testing.T, q string) string {
	t.Helper()
	return p.s.Psql(p.db, q)
}

// config is a connector config for the database, with fast status updates.
func (p pg) config(extra ...string) map[string]string {
	u, _ := url.Parse(p.s.DSN(p.db))
	cfg := map[string]string{
		"connector.class": debeziumClass, "topic.prefix": "srv", "database.hostname": u.Hostname(),
		"database.port": strconv.Itoa(p.s.Port), "database.user": u.User.Username(), "database.dbname": p.db,
		"database.sslmode": "disable", "slot.name": "slot_" + p.db, "status.update.interval.ms": "200",
		"slot.lag.log.interval.ms": "0",
	}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	return cfg
}

// runner runs a task as the worker would: Poll, and (when autoCommit)
// Commit with the newest position after each batch.
type runner struct {
	t          *testing.T
	task       *task
	mu         sync.Mutex
	recs       []*data.Record
	last       *sdk.Position
	autoCommit bool
	cancel     context.CancelFunc
	done       chan struct{}
	err        error
}

func startTask(t *testing.T, cfg map[string]string, committed []sdk.Position, autoCommit bool) *runner {
	t.Helper()
	tk := &task{}
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "cdc", Logger: sdk.Logger}, cfg, committed); err != nil {
		t.Fatalf("Start: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &runner{t: t, task: tk, autoCommit: autoCommit, cancel: cancel, done: make(chan struct{})}
	go r.loop(ctx)
	t.Cleanup(r.stop)
	return r
}

func (r *runner) loop(ctx context.Context) {
	defer close(r.done)
	for ctx.Err() == nil {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		recs, err := r.task.Poll(pctx, sdk.PollLimits{MaxRecords: 500, MaxWait: 200 * time.Millisecond})
		cancel()
		if err != nil {
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
			return
		}
		if len(recs) == 0 {
			continue
		}
		last := recs[len(recs)-1]
		pos := sdk.Position{Partition: last.SourcePartition, Offset: last.SourceOffset}
		r.mu.Lock()
		r.recs = append(r.recs, recs...)
		r.last = &pos
		r.mu.Unlock()
		if r.autoCommit {
			_ = r.task.Commit(ctx, sdk.Commit{Positions: []sdk.Position{pos}})
		}
	}
}

func (r *runner) stop() {
	r.cancel()
	<-r.done
	_ = r.task.Stop(context.Background())
}

func (r *runner) records() []*data.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.err != nil {
		r.t.Fatalf("task failed: %v", r.err)
	}
	return append([]*data.Record(nil), r.recs...)
}

// waitRecords waits until cond holds for the records received.
func (r *runner) waitRecords(what string, within time.Duration, cond func([]*data.Record) bool) []*data.Record {
	r.t.Helper()
	deadline := time.Now().Add(within)
	for {
		recs := r.records()
		if cond(recs) {
			return recs
		}
		if time.Now().After(deadline) {
			r.t.Fatalf("timed out waiting for %s; have %d records: %s", what, len(recs), describe(recs))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func waitN(n int) func([]*data.Record) bool {
	return func(r []*data.Record) bool { return len(r) >= n }
}

// ev is a record's envelope fields, for assertions.
type ev struct {
	topic, op     string
	before, after *data.Struct
	source        *data.Struct
	key           *data.Struct
	tombstone     bool
}

func evOf(r *data.Record) ev {
	e := ev{topic: r.Topic}
	if k, ok := r.Key.(*data.Struct); ok {
		e.key = k
	}
	env, ok := r.Value.(*data.Struct)
	if !ok {
		e.tombstone = true
		return e
	}
	e.op, _ = env.Get("op").(string)
	e.before, _ = env.Get("before").(*data.Struct)
	e.after, _ = env.Get("after").(*data.Struct)
	e.source, _ = env.Get("source").(*data.Struct)
	return e
}

func describe(recs []*data.Record) string {
	s := ""
	for i, r := range recs {
		if i > 20 {
			return s + " ..."
		}
		e := evOf(r)
		if e.tombstone {
			s += fmt.Sprintf("\n  %s tombstone key=%v", r.Topic, e.key)
			continue
		}
		s += fmt.Sprintf("\n  %s %s before=%v after=%v off=%v", r.Topic, e.op, e.before, e.after, r.SourceOffset)
	}
	return s
}

// slotFlushed is the slot's confirmed_flush_lsn.
func (p pg) slotFlushed(t *testing.T, slot string) uint64 {
	t.Helper()
	out := p.sql(t, "SELECT confirmed_flush_lsn - '0/0' FROM pg_replication_slots WHERE slot_name = '"+slot+"'")
	n, err := strconv.ParseUint(trim(out), 10, 64)
	if err != nil {
		t.Fatalf("slot %s: %q: %v", slot, out, err)
	}
	return n
}

func trim(s string) string {
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == ' ') {
		s = s[:len(s)-1]
	}
	return s
}

// exec runs sql over a connection of its own and returns its error.
func (p pg) exec(sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, p.s.DSN(p.db))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func tcNoLog() sdk.TaskContext { return sdk.TaskContext{Connector: "cdc", Logger: sdk.Logger} }
