package plan

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Mode is how a table is read, Confluent's `mode`.
type Mode int

// The modes.
const (
	// Bulk reads the whole table on every poll.
	Bulk Mode = iota + 1
	// Incrementing reads rows whose incrementing column is above the
	// last one read: new rows only, never updates.
	Incrementing
	// Timestamp reads rows whose timestamp is after the last one read:
	// new and updated rows.
	Timestamp
	// TimestampIncrementing orders rows by (timestamp, incrementing), so
	// rows sharing a timestamp are neither skipped nor repeated.
	TimestampIncrementing
)

// ParseMode parses Confluent's mode names.
func ParseMode(s string) (Mode, error) {
	switch s {
	case "bulk":
		return Bulk, nil
	case "incrementing":
		return Incrementing, nil
	case "timestamp":
		return Timestamp, nil
	case "timestamp+incrementing":
		return TimestampIncrementing, nil
	}
	return 0, fmt.Errorf("mode %q: want bulk, incrementing, timestamp or timestamp+incrementing", s)
}

func (m Mode) String() string {
	switch m {
	case Bulk:
		return "bulk"
	case Incrementing:
		return "incrementing"
	case Timestamp:
		return "timestamp"
	case TimestampIncrementing:
		return "timestamp+incrementing"
	}
	return "mode(" + strconv.Itoa(int(m)) + ")"
}

// UsesInc and UsesTS say which columns the mode reads by.
func (m Mode) UsesInc() bool { return m == Incrementing || m == TimestampIncrementing }

// UsesTS reports whether the mode tracks a timestamp.
func (m Mode) UsesTS() bool { return m == Timestamp || m == TimestampIncrementing }

// Spec is how one table (or custom query) is read. Identifiers are
// already quoted: the planner only assembles SQL.
type Spec struct {
	Mode Mode
	// From is what follows FROM: a quoted table name, or a custom query
	// as a parenthesised subquery with an alias.
	From string
	// TSColumns are the timestamp columns; several are read as
	// COALESCE(a, b, ...), the first non-null one in each row.
	TSColumns []string
	// IncColumn is the incrementing column.
	IncColumn string
	// Delay is timestamp.delay.interval.ms: rows whose timestamp is
	// within Delay of the database's clock are left for a later poll,
	// so transactions still in flight with earlier timestamps commit
	// before the offset moves past them.
	Delay time.Duration
	// Limit is batch.max.rows, the LIMIT of incremental queries.
	Limit int
}

// Query is one SQL statement to run, with its arguments (time.Time for
// timestamps, int64 for the incrementing column).
type Query struct {
	SQL  string
	Args []any
	// Limit is the LIMIT the statement carries (0: none).
	Limit int
	// Tie, in timestamp mode, is a query for every row at one timestamp
	// (the rows a full batch cut through); TieTS is that timestamp.
	Tie   bool
	TieTS time.Time
}

// TSExpr is the timestamp expression rows are compared and ordered by.
func (s *Spec) TSExpr() string {
	if len(s.TSColumns) == 1 {
		return s.TSColumns[0]
	}
	return "COALESCE(" + strings.Join(s.TSColumns, ", ") + ")"
}

// Next is the query for the next batch after off, with now the
// database's current time (the delay window ends at now - Delay).
func (s *Spec) Next(off Offset, now time.Time) Query {
	base := "SELECT * FROM " + s.From
	end := now.Add(-s.Delay)
	limit := " LIMIT " + strconv.Itoa(s.Limit)
	switch s.Mode {
	case Incrementing:
		inc := s.IncColumn
		order := " ORDER BY " + inc + " ASC" + limit
		if !off.HasInc {
			return Query{SQL: base + " WHERE " + inc + " IS NOT NULL" + order, Limit: s.Limit}
		}
		return Query{SQL: base + " WHERE " + inc + " > $1" + order, Args: []any{off.Inc}, Limit: s.Limit}
	case Timestamp:
		ts := s.TSExpr()
		order := " ORDER BY " + ts + " ASC" + limit
		if !off.HasTS {
			return Query{SQL: base + " WHERE " + ts + " < $1" + order, Args: []any{end}, Limit: s.Limit}
		}
		return Query{SQL: base + " WHERE " + ts + " > $1 AND " + ts + " < $2" + order,
			Args: []any{off.TS, end}, Limit: s.Limit}
	case TimestampIncrementing:
		ts, inc := s.TSExpr(), s.IncColumn
		order := " ORDER BY " + ts + ", " + inc + " ASC" + limit
		switch {
		case off.HasTS && off.HasInc:
			return Query{SQL: base + " WHERE " + ts + " < $1 AND ((" + ts + " = $2 AND " + inc + " > $3) OR " + ts + " > $4)" + order,
				Args: []any{end, off.TS, off.Inc, off.TS}, Limit: s.Limit}
		case off.HasTS:
			// An offset from timestamp mode: the rows at its timestamp
			// may not all have been read, so read them again.
			return Query{SQL: base + " WHERE " + ts + " < $1 AND " + ts + " >= $2 AND " + inc + " IS NOT NULL" + order,
				Args: []any{end, off.TS}, Limit: s.Limit}
		default:
			return Query{SQL: base + " WHERE " + ts + " < $1 AND " + inc + " IS NOT NULL" + order,
				Args: []any{end}, Limit: s.Limit}
		}
	}
	return Query{SQL: base}
}

// tieQuery reads every row at timestamp ts.
func (s *Spec) tieQuery(ts time.Time) Query {
	e := s.TSExpr()
	return Query{SQL: "SELECT * FROM " + s.From + " WHERE " + e + " = $1 ORDER BY " + e + " ASC",
		Args: []any{ts}, Tie: true, TieTS: ts}
}

// RowKey is what a returned row contributes to the offset: its
// incrementing value and its timestamp (the first non-null timestamp
// column), as the mode uses them.
type RowKey struct {
	Inc int64
	TS  time.Time
}

// Step is what to do with a query's result.
type Step struct {
	// Emit is how many of the rows, from the first, become records.
	Emit int
	// Offset is the offset after the emitted rows.
	Offset Offset
	// Rows is the offset each emitted row's record carries: where to
	// resume if that is the last record known durable. In timestamp
	// mode a row inside a run of rows sharing its timestamp carries the
	// offset before the run, so a restart reads the whole run again
	// rather than skip its rest.
	Rows []Offset
	// More: the table may hold more rows now; query again without
	// waiting for the poll interval.
	More bool
	// FollowUp, when not nil, is the query to run next instead of Next
	// (a timestamp-mode batch that was all one timestamp).
	FollowUp *Query
}

// Advance decides, for the rows q returned (in its order), how many to
// emit and the offset after them.
//
// Incrementing and timestamp+incrementing order rows strictly, so every
// row is emitted and the offset is the last row's. Timestamp mode orders
// only by timestamp: a LIMIT may cut through rows sharing one, and the
// next query (ts > offset) would skip the rest. So a full batch leaves
// out its trailing rows at the last timestamp (the next query reads them
// all); a full batch that is all one timestamp is followed by a query for
// every row at it.
func (s *Spec) Advance(q Query, off Offset, rows []RowKey) Step {
	st := s.advance(q, off, rows)
	if s.Mode == Bulk || st.Emit == 0 {
		return st
	}
	st.Rows = make([]Offset, st.Emit)
	prev := off
	for i := 0; i < st.Emit; i++ {
		r := rows[i]
		switch s.Mode {
		case Incrementing:
			prev.HasInc, prev.Inc = true, r.Inc
			st.Rows[i] = prev
		case TimestampIncrementing:
			prev.HasInc, prev.Inc, prev.HasTS, prev.TS = true, r.Inc, true, r.TS
			st.Rows[i] = prev
		case Timestamp:
			if i+1 == st.Emit {
				st.Rows[i] = st.Offset
			} else if !rows[i+1].TS.Equal(r.TS) {
				prev.HasTS, prev.TS = true, r.TS
				st.Rows[i] = prev
			} else {
				st.Rows[i] = prev
			}
		}
	}
	return st
}

func (s *Spec) advance(q Query, off Offset, rows []RowKey) Step {
	n := len(rows)
	full := q.Limit > 0 && n >= q.Limit
	switch s.Mode {
	case Incrementing:
		if n > 0 {
			off.HasInc, off.Inc = true, rows[n-1].Inc
		}
		return Step{Emit: n, Offset: off, More: full}
	case TimestampIncrementing:
		if n > 0 {
			off.HasInc, off.Inc = true, rows[n-1].Inc
			off.HasTS, off.TS = true, rows[n-1].TS
		}
		return Step{Emit: n, Offset: off, More: full}
	case Timestamp:
		if q.Tie {
			off.HasTS, off.TS = true, q.TieTS
			return Step{Emit: n, Offset: off, More: true}
		}
		if n == 0 {
			return Step{Offset: off}
		}
		if !full {
			off.HasTS, off.TS = true, rows[n-1].TS
			return Step{Emit: n, Offset: off}
		}
		last := rows[n-1].TS
		keep := n
		for keep > 0 && rows[keep-1].TS.Equal(last) {
			keep--
		}
		if keep == 0 {
			tie := s.tieQuery(last)
			return Step{Offset: off, More: true, FollowUp: &tie}
		}
		off.HasTS, off.TS = true, rows[keep-1].TS
		return Step{Emit: keep, Offset: off, More: true}
	}
	return Step{Emit: n, Offset: off}
}

// AdvancePart is Advance for a piece of the rows of a query without a
// LIMIT (bulk, or a timestamp-mode query for one timestamp's rows) that
// is read a batch at a time, when more of its rows follow: every row is
// emitted and carries the offset before the query, since the query's
// offset is reached only with its last row (which Advance then handles).
func (s *Spec) AdvancePart(off Offset, rows []RowKey) Step {
	st := Step{Emit: len(rows), Offset: off, More: true}
	if s.Mode != Bulk {
		st.Rows = make([]Offset, len(rows))
		for i := range st.Rows {
			st.Rows[i] = off
		}
	}
	return st
}
