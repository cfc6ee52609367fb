// Package lsnbook is the PostgreSQL CDC source's LSN bookkeeping: which
// position a record's offset names, which changes a restart must skip, and
// which LSN may be acknowledged to PostgreSQL as flushed given what Sluice
// has made durable. It does no I/O, so the rules that keep the connector
// from losing data are tested deterministically.
//
// Two facts about logical decoding shape it. A replication started at LSN
// S (or at the slot's confirmed_flush_lsn when that is higher) skips every
// transaction whose commit record starts before S and sends every other one
// whole, in commit order. And acknowledging LSN F as flushed moves the
// slot's confirmed_flush_lsn to F, after which the server never sends a
// transaction whose commit starts before F again. So F must be the end of
// a commit whose changes are all durable (or, while nothing is pending, the
// position the server has streamed through).
package lsnbook

// Pos is a position in the change stream, the LSN part of a source offset.
// Replication resumes at Resume; within the transaction whose commit LSN
// equals Resume, changes at LSNs up to Change are already durable and are
// skipped. A complete position (Change == Resume) skips nothing: it is the
// end of a transaction, a snapshot's consistent point, or a heartbeat.
type Pos struct {
	Resume uint64 // offset key "lsn_commit"
	Change uint64 // offset key "lsn"
}

// Complete returns the position just after a whole transaction (or any
// point between transactions) at LSN end.
func Complete(end uint64) Pos { return Pos{Resume: end, Change: end} }

// MidTxn returns the position after the change at LSN change of the
// transaction committing at commit (change 0: before its first change).
func MidTxn(commit, change uint64) Pos { return Pos{Resume: commit, Change: change} }

// IsMidTxn reports whether p lies inside a transaction: a change's LSN is
// always below its commit's.
func (p Pos) IsMidTxn() bool { return p.Change < p.Resume }

// Covers reports whether the change at LSN change of the transaction
// committing at commit is already durable at p, so a restart from p must
// not emit it again.
func (p Pos) Covers(commit, change uint64) bool {
	return p.IsMidTxn() && commit == p.Resume && change <= p.Change
}

type txn struct{ commit, end uint64 }

// Book tracks the stream for one replication connection: the reader
// reports transactions and queued records, the task reports what Sluice
// committed, and Flush says what may be acknowledged. Not safe for
// concurrent use; the caller locks.
type Book struct {
	flush   uint64 // highest LSN known safe to acknowledge
	through uint64 // position the stream has been read through, between transactions
	inTxn   bool
	cur     txn   // the transaction being read, when inTxn
	emitted []txn // transactions with queued records not yet known durable
	curRecs bool  // the current transaction has queued records

	lastQueued  Pos
	queued      bool // a record has been queued since the book started
	lastDurable Pos
}

// New starts a book for a replication resumed at from: the stored
// position, or the consistent point of a slot just created. A complete
// position may be acknowledged at once; a mid-transaction one may not
// (that transaction is not yet whole in Sluice).
func New(from Pos) *Book {
	b := &Book{lastDurable: from}
	if !from.IsMidTxn() {
		b.flush, b.through = from.Resume, from.Resume
	}
	return b
}

// Begin records that the transaction committing at commit starts.
func (b *Book) Begin(commit uint64) {
	b.inTxn, b.cur, b.curRecs = true, txn{commit: commit}, false
}

// Queued records that a record with offset position p was handed to the
// worker (positions arrive in stream order).
func (b *Book) Queued(p Pos) {
	b.lastQueued, b.queued = p, true
	if b.inTxn && !b.curRecs {
		b.curRecs = true
		b.emitted = append(b.emitted, txn{commit: b.cur.commit})
	}
}

// Commit records the end of the current transaction: its commit record
// starts at commit and ends at end.
func (b *Book) Commit(commit, end uint64) {
	if b.curRecs {
		b.emitted[len(b.emitted)-1] = txn{commit: commit, end: end}
	}
	b.inTxn, b.curRecs = false, false
	b.through = max(b.through, end)
	b.advanceIdle()
}

// Keepalive records the server's WAL end from a keepalive: every
// transaction committed before it has been sent, so when nothing is
// pending the slot may move up to it. The WAL end is where decoding got
// to, which may lie among the changes of a transaction still open; that
// is safe because a slot's confirmed position speaks of commits: after a
// restart PostgreSQL sends again every transaction committing after it.
func (b *Book) Keepalive(walEnd uint64) {
	if !b.inTxn {
		b.through = max(b.through, walEnd)
		b.advanceIdle()
	}
}

// Durable records that Sluice holds every record up to the one whose
// offset position is p (SourceTask.Commit's latest position).
func (b *Book) Durable(p Pos) {
	b.lastDurable = p
	if !p.IsMidTxn() {
		b.flush = max(b.flush, p.Resume)
		b.dropEmitted(func(t txn) bool { return t.end != 0 && t.end <= p.Resume })
	} else {
		// Everything committed before p's transaction is durable; that
		// transaction itself is not yet whole.
		b.dropEmitted(func(t txn) bool {
			if t.commit < p.Resume && t.end != 0 {
				b.flush = max(b.flush, t.end)
				return true
			}
			return false
		})
	}
	b.advanceIdle()
}

func (b *Book) dropEmitted(done func(txn) bool) {
	i := 0
	for i < len(b.emitted) && done(b.emitted[i]) {
		i++
	}
	b.emitted = b.emitted[i:]
}

// advanceIdle moves the flush point to where the stream has been read
// through when every queued record is durable and no transaction is open:
// what lies between is transactions without records for the connector
// (other tables, other databases) that nothing needs to be kept for.
func (b *Book) advanceIdle() {
	if b.inTxn || (b.queued && b.lastQueued != b.lastDurable) {
		return
	}
	b.emitted = b.emitted[:0]
	b.flush = max(b.flush, b.through)
}

// Flush is the LSN that may be sent as the flushed (and applied) position
// in a standby status update; 0 means none yet.
func (b *Book) Flush() uint64 { return b.flush }

// Through is the position the stream has been read through between
// transactions (the write position of a status update).
func (b *Book) Through() uint64 { return b.through }

// InTxn reports whether a transaction is being read.
func (b *Book) InTxn() bool { return b.inTxn }

// Idle reports whether every queued record is durable and no transaction
// is open: a heartbeat may then carry Complete(Through()).
func (b *Book) Idle() bool {
	return !b.inTxn && (!b.queued || b.lastQueued == b.lastDurable)
}
