package plan

import (
	"reflect"
	"testing"
	"time"
)

var (
	t0  = time.Date(2026, 12, 5, 1, 0, 0, 123456000, time.UTC)
	now = time.Date(2026, 12, 5, 2, 0, 0, 0, time.UTC)
)

func at(sec int) time.Time { return t0.Add(time.Duration(sec) * time.Second) }

func spec(m Mode) Spec {
	return Spec{Mode: m, From: `"t"`, TSColumns: []string{`"ts"`}, IncColumn: `"id"`, Delay: 5 * time.Second, Limit: 3}
}

// Each mode's query, with and without an offset: the predicates
// Confluent's JDBC source uses, the delay window's end as the upper bound
// of timestamps, and LIMIT batch.max.rows.
func TestNextQueries(t *testing.T) {
	end := now.Add(-5 * time.Second)
	multi := spec(Timestamp)
	multi.TSColumns = []string{`"modified"`, `"created"`}
	for _, tc := range []struct {
		name string
		s    Spec
		off  Offset
		sql  string
		args []any
	}{
		{"bulk", spec(Bulk), Offset{}, `SELECT * FROM "t"`, nil},
		{"incrementing, nothing read", spec(Incrementing), Offset{},
			`SELECT * FROM "t" WHERE "id" IS NOT NULL ORDER BY "id" ASC LIMIT 3`, nil},
		{"incrementing", spec(Incrementing), Offset{HasInc: true, Inc: 41},
			`SELECT * FROM "t" WHERE "id" > $1 ORDER BY "id" ASC LIMIT 3`, []any{int64(41)}},
		{"timestamp, nothing read", spec(Timestamp), Offset{},
			`SELECT * FROM "t" WHERE "ts" < $1 ORDER BY "ts" ASC LIMIT 3`, []any{end}},
		{"timestamp", spec(Timestamp), Offset{HasTS: true, TS: at(1)},
			`SELECT * FROM "t" WHERE "ts" > $1 AND "ts" < $2 ORDER BY "ts" ASC LIMIT 3`, []any{at(1), end}},
		{"timestamp columns coalesced", multi, Offset{HasTS: true, TS: at(1)},
			`SELECT * FROM "t" WHERE COALESCE("modified", "created") > $1 AND COALESCE("modified", "created") < $2 ORDER BY COALESCE("modified", "created") ASC LIMIT 3`,
			[]any{at(1), end}},
		{"timestamp+incrementing", spec(TimestampIncrementing), Offset{HasTS: true, TS: at(1), HasInc: true, Inc: 7},
			`SELECT * FROM "t" WHERE "ts" < $1 AND (("ts" = $2 AND "id" > $3) OR "ts" > $4) ORDER BY "ts", "id" ASC LIMIT 3`,
			[]any{end, at(1), int64(7), at(1)}},
		{"timestamp+incrementing, nothing read", spec(TimestampIncrementing), Offset{},
			`SELECT * FROM "t" WHERE "ts" < $1 AND "id" IS NOT NULL ORDER BY "ts", "id" ASC LIMIT 3`, []any{end}},
		{"timestamp+incrementing from a timestamp-only offset re-reads its timestamp", spec(TimestampIncrementing), Offset{HasTS: true, TS: at(1)},
			`SELECT * FROM "t" WHERE "ts" < $1 AND "ts" >= $2 AND "id" IS NOT NULL ORDER BY "ts", "id" ASC LIMIT 3`, []any{end, at(1)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := tc.s.Next(tc.off, now)
			if q.SQL != tc.sql {
				t.Errorf("SQL\n got %s\nwant %s", q.SQL, tc.sql)
			}
			if !reflect.DeepEqual(q.Args, tc.args) {
				t.Errorf("args %v, want %v", q.Args, tc.args)
			}
		})
	}
}

// The delay window: a row committed with a timestamp just before now is
// not within the query's bound until the delay has passed, so a
// transaction still open with an earlier timestamp is not skipped.
func TestDelayWindowMovesWithTheDatabaseClock(t *testing.T) {
	s := spec(Timestamp)
	s.Delay = 10 * time.Second
	q := s.Next(Offset{HasTS: true, TS: at(0)}, at(20))
	if end := q.Args[1].(time.Time); !end.Equal(at(10)) {
		t.Fatalf("upper bound %v, want now-10s %v", end, at(10))
	}
	s.Delay = 0
	q = s.Next(Offset{HasTS: true, TS: at(0)}, at(20))
	if end := q.Args[1].(time.Time); !end.Equal(at(20)) {
		t.Fatalf("no delay: upper bound %v, want now %v", end, at(20))
	}
}

func keys(pairs ...any) []RowKey {
	var out []RowKey
	for i := 0; i < len(pairs); i += 2 {
		out = append(out, RowKey{TS: at(pairs[i].(int)), Inc: int64(pairs[i+1].(int))})
	}
	return out
}

// How the offset advances over a query's rows, in each mode, including
// rows sharing a timestamp.
func TestAdvance(t *testing.T) {
	tsOff := func(sec int) Offset { return Offset{HasTS: true, TS: at(sec)} }
	both := func(sec, inc int) Offset { return Offset{HasTS: true, TS: at(sec), HasInc: true, Inc: int64(inc)} }
	for _, tc := range []struct {
		name     string
		mode     Mode
		off      Offset
		rows     []RowKey
		emit     int
		next     Offset
		more     bool
		followUp bool
	}{
		{"incrementing: last id", Incrementing, Offset{}, keys(0, 4, 0, 5), 2, Offset{HasInc: true, Inc: 5}, false, false},
		{"incrementing: full batch means more", Incrementing, Offset{}, keys(0, 1, 0, 2, 0, 3), 3, Offset{HasInc: true, Inc: 3}, true, false},
		{"incrementing: nothing new keeps the offset", Incrementing, Offset{HasInc: true, Inc: 9}, nil, 0, Offset{HasInc: true, Inc: 9}, false, false},
		{"timestamp: last timestamp", Timestamp, tsOff(0), keys(1, 0, 2, 0), 2, tsOff(2), false, false},
		{"timestamp: ties in a partial batch are all read", Timestamp, tsOff(0), keys(1, 0, 1, 0), 2, tsOff(1), false, false},
		{"timestamp: a full batch leaves out its last timestamp's rows", Timestamp, tsOff(0), keys(1, 0, 2, 0, 2, 0), 1, tsOff(1), true, false},
		{"timestamp: a full batch of one timestamp reads all its rows next", Timestamp, tsOff(0), keys(2, 0, 2, 0, 2, 0), 0, tsOff(0), true, true},
		{"timestamp: nothing new keeps the offset", Timestamp, tsOff(3), nil, 0, tsOff(3), false, false},
		{"timestamp+incrementing: ties ordered by id", TimestampIncrementing, both(0, 0), keys(1, 5, 1, 6, 1, 7), 3, both(1, 7), true, false},
		{"timestamp+incrementing: last row's pair", TimestampIncrementing, both(1, 7), keys(1, 8, 2, 3), 2, both(2, 3), false, false},
		{"bulk: every row, no offset", Bulk, Offset{}, keys(0, 1, 0, 2, 0, 3, 0, 4), 4, Offset{}, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := spec(tc.mode)
			q := s.Next(tc.off, now)
			st := s.Advance(q, tc.off, tc.rows)
			if st.Emit != tc.emit || st.More != tc.more || (st.FollowUp != nil) != tc.followUp {
				t.Errorf("emit %d more %v follow-up %v, want %d %v %v", st.Emit, st.More, st.FollowUp != nil, tc.emit, tc.more, tc.followUp)
			}
			if !reflect.DeepEqual(st.Offset, tc.next) {
				t.Errorf("offset %+v, want %+v", st.Offset, tc.next)
			}
		})
	}
}

// A timestamp-mode table with more rows at one timestamp than a batch
// holds: every row is read exactly once across the queries the planner
// asks for, simulated over an in-memory table.
func TestTimestampTiesLargerThanABatchAreReadOnce(t *testing.T) {
	s := spec(Timestamp)
	s.Delay = 0
	table := keys(1, 1, 2, 2, 2, 3, 2, 4, 2, 5, 2, 6, 3, 7, 3, 8, 4, 9)
	run := func(q Query) []RowKey {
		var out []RowKey
		for _, r := range table {
			switch {
			case q.Tie:
				if r.TS.Equal(q.TieTS) {
					out = append(out, r)
				}
			case len(q.Args) == 2:
				if r.TS.After(q.Args[0].(time.Time)) && r.TS.Before(q.Args[1].(time.Time)) {
					out = append(out, r)
				}
			default:
				if r.TS.Before(q.Args[0].(time.Time)) {
					out = append(out, r)
				}
			}
			if q.Limit > 0 && len(out) == q.Limit {
				break
			}
		}
		return out
	}
	seen := map[int64]int{}
	var off Offset
	var follow *Query
	for i := 0; i < 20; i++ {
		q := s.Next(off, at(100))
		if follow != nil {
			q = *follow
		}
		rows := run(q)
		st := s.Advance(q, off, rows)
		for _, r := range rows[:st.Emit] {
			seen[r.Inc]++
		}
		off, follow = st.Offset, st.FollowUp
		if !st.More && follow == nil {
			break
		}
	}
	for _, r := range table {
		if seen[r.Inc] != 1 {
			t.Errorf("row %d read %d times", r.Inc, seen[r.Inc])
		}
	}
	if !off.TS.Equal(at(4)) {
		t.Errorf("final offset %v, want %v", off.TS, at(4))
	}
}

func TestOffsetMapRoundTripsConfluentShape(t *testing.T) {
	ts := time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)
	o := Offset{HasTS: true, TS: ts, HasInc: true, Inc: 1 << 60}
	m := o.Map()
	want := map[string]any{"incrementing": int64(1 << 60), "timestamp": ts.UnixMilli(), "timestamp_nanos": int64(678901234)}
	if !reflect.DeepEqual(m, want) {
		t.Fatalf("map %v, want %v", m, want)
	}
	back, err := OffsetFromMap(m)
	if err != nil || !back.TS.Equal(ts) || back.Inc != 1<<60 || !back.HasInc || !back.HasTS {
		t.Fatalf("round trip: %+v %v", back, err)
	}
	// Millis only (older Confluent), and a pre-epoch timestamp.
	back, _ = OffsetFromMap(map[string]any{"timestamp": int64(1500)})
	if !back.TS.Equal(time.UnixMilli(1500)) || back.HasInc {
		t.Fatalf("millis only: %+v", back)
	}
	pre := time.Unix(-2, 250_000_000).UTC()
	back, _ = OffsetFromMap(Offset{HasTS: true, TS: pre}.Map())
	if !back.TS.Equal(pre) {
		t.Fatalf("pre-epoch: %v, want %v", back.TS, pre)
	}
	if (Offset{}).Map() != nil {
		t.Fatal("zero offset should be nil")
	}
	for _, bad := range []map[string]any{{"incrementing": "x"}, {"timestamp": 1.5}, {"timestamp": int64(1), "timestamp_nanos": int64(2e9)}} {
		if _, err := OffsetFromMap(bad); err == nil {
			t.Errorf("%v: no error", bad)
		}
	}
}

func TestScheduleIsFairAndWaitsTheInterval(t *testing.T) {
	s := Schedule{Interval: 5 * time.Second}
	s.Set([]string{"a", "b"}, at(0))
	k, wait, _ := s.Next(at(0))
	if k != "a" || wait != 0 {
		t.Fatalf("first: %s %v", k, wait)
	}
	// a had a full batch: due again at once, but after b.
	s.Done("a", at(0), true)
	if k, _, _ = s.Next(at(0)); k != "b" {
		t.Fatalf("after a's full batch: %s, want b", k)
	}
	s.Done("b", at(0), false)
	if k, _, _ = s.Next(at(0)); k != "a" {
		t.Fatalf("then %s, want a", k)
	}
	s.Done("a", at(1), false)
	k, wait, _ = s.Next(at(1))
	if k != "b" || wait != 4*time.Second {
		t.Fatalf("idle: %s due in %v, want b in 4s", k, wait)
	}
	s.Set([]string{"b", "c"}, at(2))
	if k, _, _ = s.Next(at(2)); k != "c" {
		t.Fatalf("a new table is due at once: %s", k)
	}
	if got := s.Keys(); !reflect.DeepEqual(got, []string{"b", "c"}) {
		t.Fatalf("keys %v", got)
	}
}

// Each record's offset is where a restart after it resumes: in timestamp
// mode a row followed by another at the same timestamp carries the offset
// before their run, so a crash between them re-reads the run instead of
// skipping its rest (Confluent's per-row offset would skip it).
func TestRowOffsetsNeverSkipTheRestOfATimestampRun(t *testing.T) {
	ts := func(sec int) Offset { return Offset{HasTS: true, TS: at(sec)} }
	s := spec(Timestamp)
	s.Limit = 10
	q := s.Next(ts(0), now)
	st := s.Advance(q, ts(0), keys(1, 0, 2, 0, 2, 0, 3, 0))
	want := []Offset{ts(1), ts(1), ts(2), ts(3)}
	if !reflect.DeepEqual(st.Rows, want) {
		t.Fatalf("row offsets %+v, want %+v", st.Rows, want)
	}
	// A tie query's rows: all but the last carry the offset before.
	tie := s.tieQuery(at(5))
	st = s.Advance(tie, ts(4), keys(5, 0, 5, 0, 5, 0))
	if want := []Offset{ts(4), ts(4), ts(5)}; !reflect.DeepEqual(st.Rows, want) {
		t.Fatalf("tie row offsets %+v, want %+v", st.Rows, want)
	}
	// Strictly ordered modes: each row's own key.
	s = spec(TimestampIncrementing)
	st = s.Advance(s.Next(Offset{}, now), Offset{}, keys(1, 1, 1, 2))
	if st.Rows[0].Inc != 1 || !st.Rows[0].TS.Equal(at(1)) || st.Rows[1].Inc != 2 {
		t.Fatalf("timestamp+incrementing row offsets %+v", st.Rows)
	}
}

// A tie query read in pieces: no piece but the last moves the offset, so
// a restart in the middle reads the timestamp's rows again.
func TestAdvancePartKeepsTheOffsetUntilTheLastPiece(t *testing.T) {
	s := spec(Timestamp)
	before := Offset{HasTS: true, TS: at(4)}
	tie := s.tieQuery(at(5))
	part := s.AdvancePart(before, keys(5, 0, 5, 0))
	if part.Emit != 2 || !part.More || part.Offset != before || part.Rows[0] != before || part.Rows[1] != before {
		t.Fatalf("part: %+v", part)
	}
	last := s.Advance(tie, part.Offset, keys(5, 0))
	if want := (Offset{HasTS: true, TS: at(5)}); last.Offset != want || last.Rows[0] != want {
		t.Fatalf("last piece: %+v", last)
	}
	if b := spec(Bulk); b.AdvancePart(Offset{}, keys(0, 1)).Rows != nil {
		t.Fatal("bulk rows carry offsets")
	}
}
