package main

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

// table is one table (or the custom query) a task reads: its plan, its
// offset, and the Connect schema of its rows.
type table struct {
	key       string // table name, or "query"
	ref       tableRef
	topic     string
	partition map[string]any // nil in bulk mode: no offsets
	spec      plan.Spec
	off       plan.Offset
	follow    *plan.Query
	prepared  bool

	// Columns of the last result, and what was made of them.
	fields   []pgconn.FieldDescription
	notNull  map[string]bool // table mode: pg_attribute.attnotnull by column
	schema   *data.Schema
	colSch   []*data.Schema
	incIdx   int
	tsIdx    []int
	tzNaive  []bool // per column: timestamp without time zone (or date)
	numeric  []bool // per column: mapped by numeric.mapping
	mapping  numericMapping
	incName  string
	tsNames  []string
	nameless bool // custom query: the value schema has no name
}

// fatalError is an error retrying cannot fix: the task fails at once.
type fatalError struct{ error }

func (e fatalError) Unwrap() error { return e.error }

// prepare loads what a table's queries need before its first one: the
// column nullability, the identity column when incrementing.column.name
// is empty, and the validate.non.null check.
func (tb *table) prepare(ctx context.Context, conn *pgx.Conn, c *config) error {
	if tb.ref.OID != 0 {
		if err := tb.loadColumns(ctx, conn); err != nil {
			return err
		}
		if c.mode.UsesInc() && tb.incName == "" {
			col, err := identityColumn(ctx, conn, tb.ref.OID)
			if err != nil {
				return err
			}
			if col == "" {
				return fatalError{fmt.Errorf("table %s.%s: no identity or serial column to use as the incrementing column; set incrementing.column.name", tb.ref.Schema, tb.ref.Name)}
			}
			tb.incName = col
			tb.spec.IncColumn = pgjdbc.QuoteIdent(col) // as PostgreSQL spells it
		}
		if c.validateNonNull {
			if err := tb.checkNonNull(c); err != nil {
				return fatalError{err}
			}
		}
	}
	tb.prepared = true
	return nil
}

// checkNonNull is Confluent's validate.non.null: a nullable incrementing
// column, or timestamp columns that may all be null, would let rows slip
// past the predicates unseen.
func (tb *table) checkNonNull(c *config) error {
	name := tb.ref.Schema + "." + tb.ref.Name
	if c.mode.UsesInc() {
		nn, ok := tb.notNull[tb.incName]
		if !ok {
			return fmt.Errorf("table %s has no column %q (incrementing.column.name)", name, tb.incName)
		}
		if !nn {
			return fmt.Errorf("cannot make incremental queries using incrementing column %s on %s because this column is nullable", tb.incName, name)
		}
	}
	if c.mode.UsesTS() {
		anyNotNull := false
		for _, col := range tb.tsNames {
			nn, ok := tb.notNull[col]
			if !ok {
				return fmt.Errorf("table %s has no column %q (timestamp.column.name)", name, col)
			}
			anyNotNull = anyNotNull || nn
		}
		if !anyNotNull {
			return fmt.Errorf("cannot make incremental queries using timestamp columns %v on %s because all of these columns are nullable", tb.tsNames, name)
		}
	}
	return nil
}

func (tb *table) loadColumns(ctx context.Context, conn *pgx.Conn) error {
	rows, err := conn.Query(ctx, `SELECT attname, attnotnull FROM pg_catalog.pg_attribute
		WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped`, tb.ref.OID)
	if err != nil {
		return fmt.Errorf("reading the columns of %s.%s: %w", tb.ref.Schema, tb.ref.Name, err)
	}
	nn := map[string]bool{}
	for rows.Next() {
		var name string
		var notNull bool
		if err := rows.Scan(&name, &notNull); err != nil {
			return err
		}
		nn[name] = notNull
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the columns of %s.%s: %w", tb.ref.Schema, tb.ref.Name, err)
	}
	tb.notNull = nn
	return nil
}

// identityColumn finds a table's single identity or serial column.
func identityColumn(ctx context.Context, conn *pgx.Conn, oid uint32) (string, error) {
	rows, err := conn.Query(ctx, `SELECT a.attname FROM pg_catalog.pg_attribute a
		LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
		WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped
		  AND (a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%')
		ORDER BY a.attnum`, oid)
	if err != nil {
		return "", fmt.Errorf("looking for an identity column: %w", err)
	}
	cols, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "", fmt.Errorf("looking for an identity column: %w", err)
	}
	if len(cols) != 1 {
		return "", nil
	}
	return cols[0], nil
}

// sameFields reports whether a result has the columns of the last one.
func sameFields(a, b []pgconn.FieldDescription) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || a[i].DataTypeOID != b[i].DataTypeOID || a[i].TypeModifier != b[i].TypeModifier {
			return false
		}
	}
	return true
}

// describe builds the value schema for a result's columns (a struct named
// after the table, as Confluent's, fields optional unless NOT NULL) and
// finds the offset columns in it.
func (tb *table) describe(fields []pgconn.FieldDescription) error {
	name := tb.ref.Name
	if tb.nameless {
		name = ""
	}
	fs := make([]data.Field, len(fields))
	tb.colSch = make([]*data.Schema, len(fields))
	tb.tzNaive = make([]bool, len(fields))
	tb.numeric = make([]bool, len(fields))
	tb.incIdx, tb.tsIdx = -1, tb.tsIdx[:0]
	for i, f := range fields {
		optional := true
		if tb.notNull != nil && f.TableOID == tb.ref.OID {
			optional = !tb.notNull[f.Name]
		}
		s := pgjdbc.SchemaFor(f.DataTypeOID, f.TypeModifier, optional)
		if f.DataTypeOID == pgtype.NumericOID {
			if ns := numericSchema(tb.mapping, f.TypeModifier, optional); ns != nil {
				s, tb.numeric[i] = ns, true
			}
		}
		fs[i] = data.F(f.Name, s)
		tb.colSch[i] = s
		tb.tzNaive[i] = f.DataTypeOID == pgtype.TimestampOID || f.DataTypeOID == pgtype.DateOID
		if f.Name == tb.incName {
			tb.incIdx = i
		}
	}
	for _, n := range tb.tsNames {
		idx := -1
		for i, f := range fields {
			if f.Name == n {
				idx = i
			}
		}
		if idx < 0 {
			return fatalError{fmt.Errorf("%s: the result has no timestamp column %q", tb.key, n)}
		}
		tb.tsIdx = append(tb.tsIdx, idx)
	}
	if tb.spec.Mode.UsesInc() && tb.incIdx < 0 {
		return fatalError{fmt.Errorf("%s: the result has no incrementing column %q", tb.key, tb.incName)}
	}
	tb.schema = data.StructOf(name, fs...)
	tb.schema.Optional = false
	tb.fields = fields
	return nil
}

// instant is a timestamp column's value as an instant: timestamp
// without time zone holds wall-clock time in db.timezone.
func instant(v any, naive bool, loc *time.Location) (time.Time, bool) {
	t, ok := v.(time.Time)
	if !ok {
		return time.Time{}, false
	}
	if naive {
		return time.Date(t.Year(), t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), t.Nanosecond(), loc), true
	}
	return t, true
}

// rowKey is what a row contributes to the offset.
func (tb *table) rowKey(raw []any, loc *time.Location) (plan.RowKey, error) {
	var k plan.RowKey
	if tb.spec.Mode.UsesInc() {
		n, err := incValue(raw[tb.incIdx])
		if err != nil {
			return k, fmt.Errorf("%s: incrementing column %q: %w", tb.key, tb.incName, err)
		}
		k.Inc = n
	}
	if tb.spec.Mode.UsesTS() {
		found := false
		for _, i := range tb.tsIdx {
			if raw[i] == nil {
				continue
			}
			t, ok := instant(raw[i], tb.tzNaive[i], loc)
			if !ok {
				return k, fatalError{fmt.Errorf("%s: timestamp column %q holds %T, not a timestamp", tb.key, tb.fields[i].Name, raw[i])}
			}
			k.TS, found = t, true
			break
		}
		if !found {
			return k, errors.New(tb.key + ": a row has no timestamp")
		}
	}
	return k, nil
}

func incValue(v any) (int64, error) {
	switch x := v.(type) {
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case pgtype.Numeric:
		if x.Valid && !x.NaN && x.InfinityModifier == pgtype.Finite && x.Exp >= 0 {
			n := new(big.Int).Mul(x.Int, new(big.Int).Exp(big.NewInt(10), big.NewInt(int64(x.Exp)), nil))
			if n.IsInt64() {
				return n.Int64(), nil
			}
		}
	case nil:
		return 0, fatalError{errors.New("a row's value is null")}
	}
	return 0, fatalError{fmt.Errorf("%v (%T) is not an integer", v, v)}
}

// value builds a row's record value.
func (tb *table) value(raw []any, loc *time.Location) (*data.Struct, error) {
	st := data.NewStruct(tb.schema)
	for i, v := range raw {
		if tb.tzNaive[i] && v != nil && tb.colSch[i].Name == data.TimestampName {
			v, _ = instant(v, true, loc)
		}
		var cv any
		var err error
		if tb.numeric[i] && v != nil {
			cv, err = numericValue(tb.colSch[i], v)
		} else {
			cv, err = pgjdbc.FromPG(tb.colSch[i], v)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: column %q: %w", tb.key, tb.fields[i].Name, err)
		}
		if err := st.Put(tb.fields[i].Name, cv); err != nil {
			return nil, fmt.Errorf("%s: column %q: %w", tb.key, tb.fields[i].Name, err)
		}
	}
	return st, nil
}

// args puts a query's times in db.timezone, so pgx writes the wall clock
// of timestamp-without-time-zone parameters in that zone (instants of
// timestamptz parameters do not depend on it).
func args(q plan.Query, loc *time.Location) []any {
	out := make([]any, len(q.Args))
	for i, a := range q.Args {
		if t, ok := a.(time.Time); ok {
			a = t.In(loc)
		}
		out[i] = a
	}
	return out
}

// queryFrom is what follows FROM for a custom query: the query as a
// subquery, so the incremental predicates apply to its result (and it
// may have a WHERE clause of its own).
func queryFrom(q string) string {
	return "(" + strings.TrimRight(strings.TrimSpace(q), ";") + ") AS sluice_query"
}
