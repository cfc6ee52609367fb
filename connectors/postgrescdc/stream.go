package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/jackc/pglogrepl"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/postgrescdc/lsnbook"
)

func pglsn(l uint64) string { return pglogrepl.LSN(l).String() }

// relation is a table as the stream announced it.
type relation struct {
	tbl      *table
	skip     bool  // not captured by the config
	identity uint8 // REPLICA IDENTITY: 'd'efault, 'f'ull, 'n'othing, 'i'ndex
}

// txState is the transaction being read.
type txState struct {
	commit     uint64 // its commit LSN (Begin's final LSN)
	xid        int64
	commitTime time.Time
	prev       lsnbook.Pos // position of the last change emitted
	held       []*data.Record
	heldPos    lsnbook.Pos
}

// streamer is the state of one replication stream.
type streamer struct {
	t    *task
	rels map[uint32]*relation
	tx   *txState
	// lastStatus is the flush LSN last reported.
	lastStatus uint64
}

// stream runs START_REPLICATION at the task's position and turns pgoutput
// messages into records until ctx ends. It reports the book's flush point
// to PostgreSQL every status interval (and whenever it moved, at most
// once a second), sends heartbeats and logs the slot's lag.
func (t *task) stream(ctx context.Context) error {
	c := t.cfg
	args := []string{"proto_version '1'", "publication_names " + quoteLiteral(c.publication)}
	if err := pglogrepl.StartReplication(ctx, t.repl, c.slot, pglogrepl.LSN(t.from.Resume),
		pglogrepl.StartReplicationOptions{Mode: pglogrepl.LogicalReplication, PluginArgs: args}); err != nil {
		return fmt.Errorf("START_REPLICATION at %s: %w", pglsn(t.from.Resume), err)
	}
	t.log.Info("streaming", "slot", c.slot, "from", pglsn(t.from.Resume), "skip_through", pglsn(t.from.Change))
	s := &streamer{t: t, rels: map[uint32]*relation{}}
	now := time.Now()
	nextStatus, nextWake := now, now
	nextHeartbeat, nextLag := now.Add(c.heartbeat), now.Add(c.lagLogInterval)
	if c.lagLogInterval > 0 {
		t.logSlotLag(ctx)
	}
	for ctx.Err() == nil {
		now = time.Now()
		if !now.Before(nextWake) {
			t.mu.Lock()
			flush, through := t.book.Flush(), t.book.Through()
			t.mu.Unlock()
			if !now.Before(nextStatus) || flush != s.lastStatus {
				if err := s.sendStatus(flush, through); err != nil {
					return err
				}
				nextStatus = now.Add(c.statusInterval)
			}
			if c.heartbeat > 0 && !now.Before(nextHeartbeat) {
				t.heartbeat(ctx, now)
				nextHeartbeat = now.Add(c.heartbeat)
			}
			if c.lagLogInterval > 0 && !now.Before(nextLag) {
				t.logSlotLag(ctx)
				nextLag = now.Add(c.lagLogInterval)
			}
			nextWake = now.Add(min(time.Second, c.statusInterval))
			if err := t.repl.Conn().SetReadDeadline(nextWake); err != nil {
				return fmt.Errorf("replication connection: %w", err)
			}
		}
		if t.full() {
			t.waitSpace(ctx, nextWake)
			continue
		}
		msg, err := t.repl.ReceiveMessage(context.Background())
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				nextWake = time.Time{}
				continue
			}
			return fmt.Errorf("receiving from the replication stream: %w", err)
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if err := s.copyData(ctx, m.Data, &nextWake); err != nil {
				return err
			}
		case *pgproto3.ErrorResponse:
			return fmt.Errorf("replication stream: %s (SQLSTATE %s)", m.Message, m.Code)
		}
	}
	return nil
}

func (s *streamer) sendStatus(flush, through uint64) error {
	if flush == 0 {
		return nil
	}
	err := pglogrepl.SendStandbyStatusUpdate(context.Background(), s.t.repl, pglogrepl.StandbyStatusUpdate{
		WALWritePosition: pglogrepl.LSN(max(through, flush)), WALFlushPosition: pglogrepl.LSN(flush), WALApplyPosition: pglogrepl.LSN(flush)})
	if err != nil {
		return fmt.Errorf("sending the standby status update: %w", err)
	}
	s.lastStatus = flush
	return nil
}

func (s *streamer) copyData(ctx context.Context, b []byte, nextWake *time.Time) error {
	if len(b) == 0 {
		return nil
	}
	switch b[0] {
	case pglogrepl.PrimaryKeepaliveMessageByteID:
		ka, err := pglogrepl.ParsePrimaryKeepaliveMessage(b[1:])
		if err != nil {
			return fmt.Errorf("keepalive: %w", err)
		}
		s.t.mu.Lock()
		s.t.book.Keepalive(uint64(ka.ServerWALEnd))
		s.t.mu.Unlock()
		if ka.ReplyRequested {
			*nextWake = time.Time{}
			s.lastStatus = 0 // answer now even if nothing moved
		}
	case pglogrepl.XLogDataByteID:
		xld, err := pglogrepl.ParseXLogData(b[1:])
		if err != nil {
			return fmt.Errorf("xlog data: %w", err)
		}
		return s.message(ctx, uint64(xld.WALStart), xld.WALData)
	}
	return nil
}

// message handles one pgoutput message at LSN lsn.
func (s *streamer) message(ctx context.Context, lsn uint64, walData []byte) error {
	msg, err := pglogrepl.Parse(walData)
	if err != nil {
		return fmt.Errorf("decoding pgoutput message at %s: %w", pglsn(lsn), err)
	}
	t := s.t
	switch m := msg.(type) {
	case *pglogrepl.RelationMessage:
		return s.relation(ctx, m)
	case *pglogrepl.BeginMessage:
		s.tx = &txState{commit: uint64(m.FinalLSN), xid: int64(m.Xid), commitTime: m.CommitTime,
			prev: lsnbook.MidTxn(uint64(m.FinalLSN), 0)}
		t.mu.Lock()
		t.book.Begin(uint64(m.FinalLSN))
		t.mu.Unlock()
	case *pglogrepl.CommitMessage:
		if s.tx == nil {
			return fmt.Errorf("commit at %s without a begin", pglsn(lsn))
		}
		end := uint64(m.TransactionEndLSN)
		if s.tx.held != nil {
			// The transaction's last records carry its end: once they
			// are durable, the whole transaction is.
			s.release(lsnbook.Complete(end))
		}
		t.mu.Lock()
		t.book.Commit(uint64(m.CommitLSN), end)
		t.mu.Unlock()
		s.tx = nil
	case *pglogrepl.InsertMessage:
		return s.change(lsn, m.RelationID, func(rel *relation) ([]*data.Record, error) {
			after, err := rel.tbl.row(cellsOf(m.Tuple, nil))
			if err != nil {
				return nil, err
			}
			return []*data.Record{t.event(rel.tbl, "c", nil, after, s.src(lsn))}, nil
		})
	case *pglogrepl.UpdateMessage:
		return s.change(lsn, m.RelationID, func(rel *relation) ([]*data.Record, error) { return s.update(rel, lsn, m) })
	case *pglogrepl.DeleteMessage:
		return s.change(lsn, m.RelationID, func(rel *relation) ([]*data.Record, error) {
			before, err := s.beforeImage(rel, m.OldTuple, nil)
			if err != nil {
				return nil, err
			}
			return s.deleteEvents(rel, before, lsn), nil
		})
	}
	// Truncate is skipped, as Debezium's skipped.operations=t default does;
	// Origin, Type and logical decoding messages carry nothing to emit.
	return nil
}

func (s *streamer) src(lsn uint64) srcInfo {
	return srcInfo{commitTime: s.tx.commitTime, snapshot: "false", txID: s.tx.xid, lsn: lsn}
}

// change emits the records of one change unless the config does not
// capture its table or a restart's stored position already covers it.
// The newest change's records are held until the next message, so the
// transaction's last records can carry its commit end as their position.
func (s *streamer) change(lsn uint64, relID uint32, build func(*relation) ([]*data.Record, error)) error {
	if s.tx == nil {
		return fmt.Errorf("change at %s outside a transaction", pglsn(lsn))
	}
	rel, ok := s.rels[relID]
	if !ok {
		return fmt.Errorf("change at %s for relation %d before its Relation message", pglsn(lsn), relID)
	}
	if rel.skip || s.t.from.Covers(s.tx.commit, lsn) {
		return nil
	}
	recs, err := build(rel)
	if err != nil {
		return err
	}
	if len(recs) == 0 {
		return nil
	}
	if s.tx.held != nil {
		s.release(s.tx.heldPos)
	}
	s.tx.held, s.tx.heldPos = recs, lsnbook.MidTxn(s.tx.commit, lsn)
	return nil
}

// release queues the held records: the last at position last, the others
// at the previous change's position (a record's position says everything
// up to it is durable, which for a delete is not yet its tombstone).
func (s *streamer) release(last lsnbook.Pos) {
	tx := s.tx
	pos := make([]lsnbook.Pos, len(tx.held))
	for i, r := range tx.held {
		p := tx.prev
		if i == len(tx.held)-1 {
			p = last
		}
		pos[i] = p
		r.SourceOffset = offsetOf(p, tx.xid, tx.commitTime)
	}
	s.t.push(tx.held, pos)
	tx.prev, tx.held = last, nil
}

// update builds an update's events. A changed primary key becomes a
// delete (and tombstone) of the old key and a create of the new, as
// Debezium does.
func (s *streamer) update(rel *relation, lsn uint64, m *pglogrepl.UpdateMessage) ([]*data.Record, error) {
	t := s.t
	newCells := cellsOf(m.NewTuple, nil)
	var oldCells []cell
	if m.OldTuple != nil {
		oldCells = cellsOf(m.OldTuple, nil)
		// An unchanged TOASTed value is absent from the new tuple; a FULL
		// old image has it.
		if m.OldTupleType == pglogrepl.UpdateMessageTupleTypeOld {
			for i := range newCells {
				if newCells[i].toasted && i < len(oldCells) && !oldCells[i].toasted {
					newCells[i] = oldCells[i]
				}
			}
		}
	}
	after, err := rel.tbl.row(newCells)
	if err != nil {
		return nil, err
	}
	before, err := s.beforeImage(rel, m.OldTuple, after)
	if err != nil {
		return nil, err
	}
	if before != nil && rel.tbl.keySchema != nil && !data.ValueEqual(rel.tbl.key(before), rel.tbl.key(after)) {
		recs := s.deleteEvents(rel, before, lsn)
		return append(recs, t.event(rel.tbl, "c", nil, after, s.src(lsn))), nil
	}
	return []*data.Record{t.event(rel.tbl, "u", before, after, s.src(lsn))}, nil
}

// beforeImage is the before of an update or delete under the table's
// REPLICA IDENTITY: FULL sends the whole old row; DEFAULT (and USING
// INDEX) the key columns, and only when the key changed for an update,
// in which case the key comes from the new row; NOTHING sends nothing.
func (s *streamer) beforeImage(rel *relation, old *pglogrepl.TupleData, after *data.Struct) (*data.Struct, error) {
	if old != nil {
		return rel.tbl.row(cellsOf(old, nil))
	}
	if after == nil || rel.identity == 'n' || rel.tbl.keySchema == nil {
		return nil, nil
	}
	before := data.NewStruct(rel.tbl.rowSchema)
	for _, i := range rel.tbl.keyCols {
		name := rel.tbl.cols[i].name
		if v := after.GetWithoutDefault(name); v != nil {
			_ = before.Put(name, v)
		}
	}
	return before, nil
}

func (s *streamer) deleteEvents(rel *relation, before *data.Struct, lsn uint64) []*data.Record {
	del := s.t.event(rel.tbl, "d", before, nil, s.src(lsn))
	if !s.t.cfg.tombstones {
		return []*data.Record{del}
	}
	return []*data.Record{del, tombstone(del)}
}

// cellsOf turns a pgoutput tuple into cells.
func cellsOf(td *pglogrepl.TupleData, buf []cell) []cell {
	if td == nil {
		return nil
	}
	out := buf[:0]
	for _, c := range td.Columns {
		switch c.DataType {
		case pglogrepl.TupleDataTypeNull:
			out = append(out, cell{null: true})
		case pglogrepl.TupleDataTypeToast:
			out = append(out, cell{toasted: true})
		default:
			out = append(out, cell{text: string(c.Data)})
		}
	}
	return out
}

// relation caches a Relation message: the table's columns as the stream
// sends them, with NOT NULL and the primary key from the catalog.
func (s *streamer) relation(ctx context.Context, m *pglogrepl.RelationMessage) error {
	c := s.t.cfg
	rel := &relation{identity: m.ReplicaIdentity}
	s.rels[m.RelationID] = rel
	if !c.captured(m.Namespace, m.RelationName) {
		rel.skip = true
		return nil
	}
	catalog, err := loadColumns(ctx, s.t.meta, m.Namespace, m.RelationName)
	if err != nil {
		return err
	}
	byName := map[string]colInfo{}
	for _, ci := range catalog {
		byName[ci.name] = ci
	}
	cols := make([]colInfo, len(m.Columns))
	for i, mc := range m.Columns {
		ci, ok := byName[mc.Name]
		if !ok {
			ci = colInfo{name: mc.Name, oid: mc.DataType, typmod: mc.TypeModifier}
		}
		cols[i] = ci
	}
	rel.tbl = newTable(c, m.Namespace, m.RelationName, cols)
	return nil
}

// heartbeat runs heartbeat.action.query and, when every queued record is
// durable and no transaction is open, queues a heartbeat record at the
// position the stream has been read through, so the stored offset keeps
// up with the slot while the captured tables are idle.
func (t *task) heartbeat(ctx context.Context, now time.Time) {
	if q := t.cfg.heartbeatAction; q != "" {
		if _, err := t.meta.Exec(ctx, q); err != nil {
			t.log.Warn("heartbeat.action.query failed", "err", err)
		}
	}
	t.mu.Lock()
	idle, through := t.book.Idle(), t.book.Through()
	t.mu.Unlock()
	if !idle || through == 0 {
		return
	}
	r := t.heartbeatRecord(now)
	pos := lsnbook.Complete(through)
	r.SourceOffset = offsetOf(pos, 0, now)
	t.push([]*data.Record{r}, []lsnbook.Pos{pos})
}
