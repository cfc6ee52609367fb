package main

import (
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

func TestPostgresCDC(t *testing.T) {
	s := startPG(t)

	t.Run("SnapshotHandsOverToStreamingExactlyOnce", func(t *testing.T) {
		p := newDB(t, s, "handover")
		p.sql(t, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, 'x' FROM generate_series(1, 3000) g")
		// A small queue and a slow first reader keep the snapshot running
		// while rows are inserted and updated.
		var next atomic.Int64
		next.Store(3001)
		stop := make(chan struct{})
		writerDone := make(chan struct{})
		go func() {
			defer close(writerDone)
			for {
				select {
				case <-stop:
					return
				default:
				}
				n := next.Add(1) - 1
				p.sql(t, fmt.Sprintf("INSERT INTO t VALUES (%d, 'y')", n))
			}
		}()
		time.Sleep(100 * time.Millisecond)
		r := startTask(t, p.config("max.queue.size", "50"), nil, true)
		time.Sleep(time.Second)
		close(stop)
		<-writerDone
		total := int(next.Load() - 1)
		seen := map[int32]int{}
		ops := map[string]int{}
		r.waitRecords("every row", 60*time.Second, func(recs []*data.Record) bool {
			clear(seen)
			clear(ops)
			for _, rec := range recs {
				e := evOf(rec)
				seen[e.after.Get("id").(int32)]++
				ops[e.op]++
			}
			return len(seen) >= total
		})
		time.Sleep(300 * time.Millisecond)
		recs := r.records()
		if len(recs) != total {
			t.Fatalf("%d records for %d rows: %v", len(recs), total, ops)
		}
		for id := int32(1); id <= int32(total); id++ {
			if seen[id] != 1 {
				t.Fatalf("row %d seen %d times (ops %v)", id, seen[id], ops)
			}
		}
		if ops["r"] < 3000 || ops["c"] == 0 {
			t.Fatalf("ops %v: want the snapshot and streamed inserts both", ops)
		}
		// Streaming follows the snapshot, and the snapshot's last record
		// says so.
		lastSnap := -1
		for i, rec := range recs {
			if evOf(rec).op == "r" {
				lastSnap = i
			}
		}
		if got := evOf(recs[lastSnap]).source.Get("snapshot"); got != "last" || recs[lastSnap].SourceOffset[offLastSnapshot] != true {
			t.Fatalf("last snapshot record: snapshot=%v offset=%v", got, recs[lastSnap].SourceOffset)
		}
		for _, rec := range recs[lastSnap+1:] {
			if evOf(rec).op != "c" {
				t.Fatalf("after the snapshot: %s", describe([]*data.Record{rec}))
			}
		}
	})

	t.Run("ReplicaIdentity", func(t *testing.T) {
		p := newDB(t, s, "identity")
		p.sql(t, `CREATE TABLE d (id int PRIMARY KEY, a text NOT NULL, b int);
CREATE TABLE f (id int PRIMARY KEY, a text NOT NULL, b int); ALTER TABLE f REPLICA IDENTITY FULL;
CREATE TABLE n (id int PRIMARY KEY, a text); ALTER TABLE n REPLICA IDENTITY NOTHING;`)
		r := startTask(t, p.config("snapshot.mode", "no_data", "tombstones.on.delete", "false"), nil, true)
		p.sql(t, `INSERT INTO d VALUES (1, 'one', 10); UPDATE d SET b = 11 WHERE id = 1; UPDATE d SET id = 2 WHERE id = 1; DELETE FROM d WHERE id = 2;
INSERT INTO f VALUES (1, 'one', 10); UPDATE f SET b = 11 WHERE id = 1; DELETE FROM f WHERE id = 1;
INSERT INTO n VALUES (1, 'one');`)
		recs := r.waitRecords("all changes", 20*time.Second, waitN(9))
		got := []string{}
		for _, rec := range recs {
			e := evOf(rec)
			got = append(got, fmt.Sprintf("%s %s before=%v after=%v key=%v", strings.TrimPrefix(e.topic, "srv.public."), e.op, e.before, e.after, e.key))
		}
		want := []string{
			"d c before=<nil> after=Struct{id=1,a=one,b=10} key=Struct{id=1}",
			// DEFAULT: before holds the key only (required columns get their zero value).
			"d u before=Struct{id=1,a=} after=Struct{id=1,a=one,b=11} key=Struct{id=1}",
			// A changed key is a delete of the old key and a create of the new.
			"d d before=Struct{id=1,a=} after=<nil> key=Struct{id=1}",
			"d c before=<nil> after=Struct{id=2,a=one,b=11} key=Struct{id=2}",
			"d d before=Struct{id=2,a=} after=<nil> key=Struct{id=2}",
			"f c before=<nil> after=Struct{id=1,a=one,b=10} key=Struct{id=1}",
			// FULL: the whole old row.
			"f u before=Struct{id=1,a=one,b=10} after=Struct{id=1,a=one,b=11} key=Struct{id=1}",
			"f d before=Struct{id=1,a=one,b=11} after=<nil> key=Struct{id=1}",
			"n c before=<nil> after=Struct{id=1,a=one} key=Struct{id=1}",
		}
		if strings.Join(got[:len(want)], "\n") != strings.Join(want, "\n") {
			t.Fatalf("events:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		// NOTHING: PostgreSQL refuses updates of a published table, so no
		// before image can ever be missing from the stream.
		if err := p.exec("UPDATE n SET a = 'two' WHERE id = 1"); err == nil || !strings.Contains(err.Error(), "replica identity") {
			t.Fatalf("update under REPLICA IDENTITY NOTHING: %v", err)
		}
	})

	t.Run("Types", func(t *testing.T) { testTypes(t, newDB(t, s, "types")) })
	t.Run("ToastUnchanged", func(t *testing.T) { testToast(t, newDB(t, s, "toast")) })
	t.Run("Tombstones", func(t *testing.T) { testTombstones(t, newDB(t, s, "tomb")) })
	t.Run("Publications", func(t *testing.T) { testPublications(t, newDB(t, s, "pubs")) })
	t.Run("AcknowledgesOnlyDurableAndResumesFromOffset", func(t *testing.T) { testAckResume(t, newDB(t, s, "ack")) })
	t.Run("IdleSlotAdvances", func(t *testing.T) { testIdle(t, newDB(t, s, "idle")) })
}
