package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
	"github.com/twmb/franz-go/pkg/kgo"
)

// The PostgreSQL CDC source end to end under load: a Debezium
// PostgresConnector config (class and keys unchanged) POSTed to a worker
// snapshots a table and streams its changes while one connection commits
// transactions as fast as it can. The plugin is killed with SIGKILL, then
// the worker; a new worker resumes. Every committed change is in the
// topic (repeats only from the unacknowledged window), and the slot's
// confirmed_flush_lsn never passes what Sluice holds: at no sample did a
// transaction the stored offset does not cover commit below the slot's
// position.
func TestConnectPostgresCDCKill9UnderLoad(t *testing.T) {
	pg := pgtest.Start(t, pgtest.Options{NoFsync: true})
	pg.CreateDB("shop")
	pg.Psql("shop", `CREATE TABLE items (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO items SELECT g, 0 FROM generate_series(1, 200) g`)
	b := startBroker(t, "std", t.TempDir())
	const topic = "shop.public.items"
	createTopic(t, b.Addr(), topic, 1, nil)
	plugins := connectPlugins(t)
	w := startWorker(t, b.Addr(), plugins)
	cfg := map[string]string{
		"connector.class":                "io.debezium.connector.postgresql.PostgresConnector",
		"plugin.name":                    "pgoutput",
		"database.hostname":              "127.0.0.1",
		"database.port":                  strconv.Itoa(pg.Port),
		"database.user":                  "postgres",
		"database.password":              "",
		"database.dbname":                "shop",
		"database.sslmode":               "disable",
		"topic.prefix":                   "shop",
		"table.include.list":             "public.items",
		"slot.name":                      "sluice_itest",
		"publication.autocreate.mode":    "filtered",
		"tasks.max":                      "1",
		"status.update.interval.ms":      "200",
		"key.converter":                  "org.apache.kafka.connect.json.JsonConverter",
		"value.converter":                "org.apache.kafka.connect.json.JsonConverter",
		"value.converter.schemas.enable": "true",
	}
	var answer map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "cdc", "config": cfg}, &answer); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, answer)
	}
	feed := cdcConsume(t, b.Addr(), topic)
	waitFor(t, 60*time.Second, "the snapshot in the topic", func() bool { return len(feed.events()) >= 200 })

	// Load: one connection, serial transactions, each inserting row i and
	// updating row i-1, about 1000 a second. Serial commits keep each
	// transaction's changes after the previous commit in the WAL, which
	// the slot check uses.
	ctx, stopLoad := context.WithCancel(context.Background())
	var committed sync.Map // id -> true once its transaction committed
	loadDone := make(chan int)
	go func() {
		conn, err := pgx.Connect(context.Background(), pg.DSN("shop"))
		if err != nil {
			t.Error(err)
			loadDone <- 0
			return
		}
		defer conn.Close(context.Background())
		i := 201
		began := time.Now()
		for ; ctx.Err() == nil; i++ {
			if ahead := time.Duration(i-200)*time.Millisecond - time.Since(began); ahead > 0 {
				time.Sleep(ahead)
			}
			_, err := conn.Exec(context.Background(), fmt.Sprintf("BEGIN; INSERT INTO items VALUES (%d, 0); UPDATE items SET n = n + 1 WHERE id = %d; COMMIT", i, i-1))
			if err != nil {
				t.Errorf("load transaction %d: %v", i, err)
				break
			}
			committed.Store(i, true)
		}
		loadDone <- i - 1
	}()

	// Sample the slot's confirmed_flush_lsn, then the stored offset.
	type sample struct{ flushed, stored, storedChange uint64 }
	var samples []sample
	var smu sync.Mutex
	sampleStop := make(chan struct{})
	sampleDone := make(chan struct{})
	var wmu sync.Mutex
	cur := w
	go func() {
		defer close(sampleDone)
		for {
			select {
			case <-sampleStop:
				return
			case <-time.After(150 * time.Millisecond):
			}
			f, ok := cdcSlotFlushed(pg)
			if !ok {
				continue
			}
			wmu.Lock()
			ww := cur
			wmu.Unlock()
			if ww == nil {
				continue
			}
			if o, c, ok := cdcStoredLSN(ww); ok {
				smu.Lock()
				samples = append(samples, sample{f, o, c})
				smu.Unlock()
			}
		}
	}()

	time.Sleep(2 * time.Second)
	pids := pluginPids(plugins)
	if len(pids) == 0 {
		t.Fatal("no plugin process")
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	waitFor(t, 40*time.Second, "the task RUNNING in a new plugin process", func() bool {
		s := w.taskStates("cdc")
		np := pluginPids(plugins)
		return len(s) == 1 && s[0] == "RUNNING" && len(np) > 0 && np[0] != pids[0]
	})
	time.Sleep(2 * time.Second)
	wmu.Lock()
	cur = nil
	wmu.Unlock()
	w.kill9()
	w2 := startWorker(t, b.Addr(), plugins)
	wmu.Lock()
	cur = w2
	wmu.Unlock()
	waitFor(t, 40*time.Second, "the task RUNNING on the new worker", func() bool {
		s := w2.taskStates("cdc")
		return len(s) == 1 && s[0] == "RUNNING"
	})
	time.Sleep(2 * time.Second)
	stopLoad()
	last := <-loadDone
	if last < 500 {
		t.Fatalf("only %d load transactions", last-200)
	}

	// Every committed change arrives.
	var evs []cdcEvent
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(200 * time.Millisecond) {
		evs = feed.events()
		missing := cdcMissing(evs, last, &committed)
		if missing == "" {
			break
		}
		if err := feed.failed(); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 60s the topic has %d events for %d load transactions; missing %s", len(evs), last-200, missing)
		}
	}
	close(sampleStop)
	<-sampleDone
	counts := map[string]int{}
	for _, e := range evs {
		counts[e.key()]++
	}
	dups := 0
	for _, n := range counts {
		dups += n - 1
	}
	t.Logf("%d load transactions, %d events, %d repeated after the kills", last-200, len(evs), dups)
	if dups > 4*(last-200)/5 {
		t.Errorf("%d events repeated: more than the unacknowledged windows can explain", dups)
	}

	// The slot never passed what Sluice held. PostgreSQL's confirmed flush
	// LSN speaks of commits: on a restart it skips every transaction that
	// committed before it. So at each sample no transaction Sluice did not
	// yet hold may have committed below the slot's position. The slot may
	// pass changes of a transaction still open (a keepalive's WAL end is
	// where decoding got to, and PostgreSQL sends that transaction again).
	smu.Lock()
	defer smu.Unlock()
	if len(samples) < 10 {
		t.Fatalf("only %d slot samples", len(samples))
	}
	txns := cdcLoadTxns(evs)
	for _, s := range samples {
		if msg := cdcSlotPassed(s.flushed, s.stored, s.storedChange, txns); msg != "" {
			t.Fatal(msg)
		}
	}
	t.Logf("%d samples of the slot against the stored offset", len(samples))
	w2.stop()
}

// TestCDCSlotPassed checks the slot check itself: it must flag a slot
// past a commit the stored offset does not cover, and only that.
func TestCDCSlotPassed(t *testing.T) {
	// Transactions 201..203: changes at 100..110, 200..210, 300..310;
	// each commit lies between its last change and the next one's first.
	txns := map[int]cdcTxn{201: {100, 110}, 202: {200, 210}, 203: {300, 310}}
	for _, c := range []struct {
		name                       string
		flushed, storedCommit, chg uint64
		bad                        bool
	}{
		{"slot at the stored end", 150, 150, 150, false},
		{"slot inside the next open transaction", 205, 150, 150, false},
		{"slot past the next transaction's commit", 300, 150, 150, true},
		{"slot far ahead", 400, 150, 150, true},
		{"stored inside a transaction, slot below its commit", 215, 220, 205, false},
		{"stored inside a transaction, slot past its commit", 221, 220, 205, true},
	} {
		if got := cdcSlotPassed(c.flushed, c.storedCommit, c.chg, txns) != ""; got != c.bad {
			t.Errorf("%s: flagged %v, want %v", c.name, got, c.bad)
		}
	}
}

// cdcEvent is one Debezium JSON event from the topic (schemas enabled).
type cdcEvent struct {
	Op    string
	ID, N int
	LSN   uint64
}

func (e cdcEvent) key() string { return fmt.Sprintf("%s/%d/%d", e.Op, e.ID, e.N) }

// cdcFeed consumes the topic in the background, keeping its events.
type cdcFeed struct {
	mu  sync.Mutex
	evs []cdcEvent
	err error
}

func (f *cdcFeed) events() []cdcEvent {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]cdcEvent(nil), f.evs...)
}

func (f *cdcFeed) failed() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func cdcConsume(t *testing.T, addr, topic string) *cdcFeed {
	f := &cdcFeed{}
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			var batch []cdcEvent
			fs.EachRecord(func(r *kgo.Record) {
				if r.Value == nil {
					return
				}
				var v struct {
					Schema  json.RawMessage `json:"schema"`
					Payload struct {
						Op    string `json:"op"`
						After *struct {
							ID int `json:"id"`
							N  int `json:"n"`
						} `json:"after"`
						Source struct {
							LSN uint64 `json:"lsn"`
						} `json:"source"`
					} `json:"payload"`
				}
				if err := json.Unmarshal(r.Value, &v); err != nil || len(v.Schema) == 0 || v.Payload.After == nil {
					f.mu.Lock()
					f.err = fmt.Errorf("not a Debezium JSON event with schema: %.200s (%v)", r.Value, err)
					f.mu.Unlock()
					return
				}
				batch = append(batch, cdcEvent{Op: v.Payload.Op, ID: v.Payload.After.ID, N: v.Payload.After.N, LSN: v.Payload.Source.LSN})
			})
			f.mu.Lock()
			f.evs = append(f.evs, batch...)
			f.mu.Unlock()
		}
	}()
	return f
}

// cdcMissing names a committed change absent from evs, or "".
func cdcMissing(evs []cdcEvent, last int, committed *sync.Map) string {
	have := map[string]bool{}
	for _, e := range evs {
		op := e.Op
		if op == "r" {
			op = "c"
		}
		have[fmt.Sprintf("%s/%d/%d", op, e.ID, e.N)] = true
	}
	for i := 1; i <= 200; i++ {
		if !have[fmt.Sprintf("c/%d/0", i)] {
			return fmt.Sprintf("snapshot row %d", i)
		}
	}
	for i := 201; i <= last; i++ {
		if _, ok := committed.Load(i); !ok {
			continue
		}
		if !have[fmt.Sprintf("c/%d/0", i)] {
			return fmt.Sprintf("insert %d", i)
		}
		if !have[fmt.Sprintf("u/%d/1", i-1)] {
			return fmt.Sprintf("update of %d", i-1)
		}
	}
	return ""
}

func cdcSlotFlushed(pg *pgtest.Server) (uint64, bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pg.DSN("shop"))
	if err != nil {
		return 0, false
	}
	defer conn.Close(ctx)
	var n *string
	if err := conn.QueryRow(ctx, "SELECT (confirmed_flush_lsn - '0/0')::text FROM pg_replication_slots WHERE slot_name = 'sluice_itest'").Scan(&n); err != nil || n == nil {
		return 0, false
	}
	v, err := strconv.ParseUint(strings.TrimSpace(*n), 10, 64)
	return v, err == nil
}

// cdcStoredLSN is the connector's stored offset: its resume LSN
// ("lsn_commit") and the LSN of its last change ("lsn", below lsn_commit
// when the offset lies inside a transaction), read with a plain request
// (the worker may be gone: no t.Fatal here).
func cdcStoredLSN(w *workerProc) (commit, change uint64, ok bool) {
	resp, err := http.Get(w.url + "/connectors/cdc/offsets")
	if err != nil {
		return 0, 0, false
	}
	defer resp.Body.Close()
	var offs struct {
		Offsets []struct {
			Offset map[string]any `json:"offset"`
		} `json:"offsets"`
	}
	if resp.StatusCode != 200 || json.NewDecoder(resp.Body).Decode(&offs) != nil || len(offs.Offsets) != 1 {
		return 0, 0, false
	}
	c, ok1 := offs.Offsets[0].Offset["lsn_commit"].(float64)
	l, ok2 := offs.Offsets[0].Offset["lsn"].(float64)
	return uint64(c), uint64(l), ok1 && ok2
}

// cdcTxn is the LSN range of one load transaction's changes, by its
// number i (it inserts row i and updates row i-1).
type cdcTxn struct{ first, last uint64 }

// cdcLoadTxns groups the load's change events by transaction.
func cdcLoadTxns(evs []cdcEvent) map[int]cdcTxn {
	txns := map[int]cdcTxn{}
	for _, e := range evs {
		var i int
		switch {
		case e.Op == "c" && e.ID > 200:
			i = e.ID
		case e.Op == "u" && e.N == 1:
			i = e.ID + 1
		default:
			continue
		}
		tx, ok := txns[i]
		if !ok || e.LSN < tx.first {
			tx.first = e.LSN
		}
		tx.last = max(tx.last, e.LSN)
		txns[i] = tx
	}
	return txns
}

// cdcSlotPassed says how the slot's confirmed flush LSN passed a commit
// the stored offset did not cover, or "". The load commits serially on
// one connection, so transaction i's commit record lies after its last
// change and before transaction i+1's first: a commit is known to lie
// below the slot when the next transaction's first change does.
//
// A stored offset inside a transaction (change < commit) holds only part
// of it: the slot must not pass that transaction's commit. A complete one
// (change == commit, the transaction's end) holds every transaction
// ending by it: the slot must not pass the commit of any later one.
func cdcSlotPassed(flushed, storedCommit, storedChange uint64, txns map[int]cdcTxn) string {
	if storedChange < storedCommit {
		if flushed > storedCommit {
			return fmt.Sprintf("slot confirmed_flush_lsn %d passed the commit %d of the transaction the stored offset is inside (at change %d)", flushed, storedCommit, storedChange)
		}
		return ""
	}
	for i, tx := range txns {
		next, ok := txns[i+1]
		if ok && tx.last > storedCommit && next.first <= flushed {
			return fmt.Sprintf("slot confirmed_flush_lsn %d passed the stored offset %d: load transaction %d (changes %d..%d) committed before transaction %d began at %d", flushed, storedCommit, i, tx.first, tx.last, i+1, next.first)
		}
	}
	return ""
}
