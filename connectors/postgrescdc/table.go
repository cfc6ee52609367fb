package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/sluice-io/sluice/connect/data"
)

// colInfo is one column as the catalog (and a pgoutput Relation message)
// describes it.
type colInfo struct {
	name    string
	oid     uint32 // base type (domains resolved)
	typmod  int32
	notNull bool
	pkPos   int // position in the primary key, 0 = not in it
}

// table is a captured table with the Connect schemas of its events.
type table struct {
	schema, name string
	topic        string
	cols         []colInfo
	types        []colType
	keyCols      []int // indexes into cols, in primary key order
	keySchema    *data.Schema
	rowSchema    *data.Schema
	envSchema    *data.Schema
}

// sourceSchema is Debezium's PostgreSQL source block.
var sourceSchema = func() *data.Schema {
	snap := &data.Schema{Type: data.TypeString, Optional: true, Name: "io.debezium.data.Enum", Version: 1,
		Parameters: map[string]string{"allowed": "true,first,first_in_data_collection,last_in_data_collection,last,false,incremental"},
		Default:    "false"}
	return data.StructOf("io.debezium.connector.postgresql.Source",
		data.F("version", data.StringSchema), data.F("connector", data.StringSchema), data.F("name", data.StringSchema),
		data.F("ts_ms", data.Int64Schema), data.F("snapshot", snap), data.F("db", data.StringSchema),
		data.F("sequence", data.OptionalStringSchema), data.F("ts_us", data.OptionalInt64Schema),
		data.F("ts_ns", data.OptionalInt64Schema), data.F("schema", data.StringSchema), data.F("table", data.StringSchema),
		data.F("txId", data.OptionalInt64Schema), data.F("lsn", data.OptionalInt64Schema), data.F("xmin", data.OptionalInt64Schema))
}()

// blockSchema is Debezium's transaction block (always null here: the
// transaction metadata topic is not implemented).
var blockSchema = func() *data.Schema {
	s := data.StructOf("event.block", data.F("id", data.StringSchema),
		data.F("total_order", data.Int64Schema), data.F("data_collection_order", data.Int64Schema))
	s.Optional, s.Version = true, 1
	return s
}()

func newTable(c *config, schema, name string, cols []colInfo) *table {
	t := &table{schema: schema, name: name, cols: cols, topic: c.prefix + "." + schema + "." + name}
	base := t.topic
	var rowFields, keyFields []data.Field
	keyOrder := map[int]int{}
	for i, col := range cols {
		ct := typeFor(col.oid, col.typmod, c.decimalMode)
		t.types = append(t.types, ct)
		fs := ct.schema
		if !col.notNull && col.pkPos == 0 {
			fs = fs.AsOptional()
		}
		rowFields = append(rowFields, data.F(col.name, fs))
		if col.pkPos > 0 {
			keyOrder[col.pkPos] = i
		}
	}
	for p := 1; p <= len(keyOrder); p++ {
		if i, ok := keyOrder[p]; ok {
			t.keyCols = append(t.keyCols, i)
			keyFields = append(keyFields, data.F(cols[i].name, rowFields[i].Schema))
		}
	}
	t.rowSchema = data.StructOf(base+".Value", rowFields...)
	t.rowSchema.Optional = true
	if len(keyFields) > 0 {
		t.keySchema = data.StructOf(base+".Key", keyFields...)
	}
	t.envSchema = data.StructOf(base+".Envelope",
		data.F("before", t.rowSchema), data.F("after", t.rowSchema), data.F("source", sourceSchema),
		data.F("transaction", blockSchema), data.F("op", data.StringSchema),
		data.F("ts_ms", data.OptionalInt64Schema), data.F("ts_us", data.OptionalInt64Schema), data.F("ts_ns", data.OptionalInt64Schema))
	t.envSchema.Version = 2
	return t
}

// cell is one column value of a row as PostgreSQL sent it.
type cell struct {
	text    string
	null    bool
	toasted bool // unchanged TOAST value: not sent
}

// row builds the row struct from cells; missing says a cell is absent
// (a key-only old tuple), which leaves the field null.
func (t *table) row(cells []cell) (*data.Struct, error) {
	st := data.NewStruct(t.rowSchema)
	for i, c := range cells {
		if i >= len(t.cols) {
			break
		}
		var v any
		switch {
		case c.null:
		case c.toasted:
			v = t.types[i].toast
		default:
			var err error
			if v, err = t.types[i].decode(c.text); err != nil {
				return nil, fmt.Errorf("%s.%s column %s: %w", t.schema, t.name, t.cols[i].name, err)
			}
		}
		if v == nil {
			continue
		}
		if sv, ok := v.(*data.Struct); ok {
			v = restruct(sv, t.rowSchema.Fields[i].Schema)
		}
		if err := st.Put(t.cols[i].name, v); err != nil {
			return nil, fmt.Errorf("%s.%s column %s: %w", t.schema, t.name, t.cols[i].name, err)
		}
	}
	return st, nil
}

// key builds the key struct from a row struct; nil without a primary key.
func (t *table) key(row *data.Struct) *data.Struct {
	if t.keySchema == nil || row == nil {
		return nil
	}
	k := data.NewStruct(t.keySchema)
	for _, i := range t.keyCols {
		if v := row.GetWithoutDefault(t.cols[i].name); v != nil {
			_ = k.Put(t.cols[i].name, v)
		}
	}
	return k
}

// loadColumns reads a table's columns from the catalog: base types of
// domains, NOT NULL and primary key positions.
func loadColumns(ctx context.Context, q querier, schema, name string) ([]colInfo, error) {
	rows, err := q.Query(ctx, `
SELECT a.attname,
       CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE a.atttypid END,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       a.attnotnull,
       COALESCE((SELECT k.n FROM unnest(i.indkey) WITH ORDINALITY AS k(attnum, n) WHERE k.attnum = a.attnum), 0)::int4
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_index i ON i.indrelid = c.oid AND i.indisprimary
WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum`, schema, name)
	if err != nil {
		return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, name, err)
	}
	var out []colInfo
	for rows.Next() {
		var c colInfo
		var pk int32
		if err := rows.Scan(&c.name, &c.oid, &c.typmod, &c.notNull, &pk); err != nil {
			rows.Close()
			return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, name, err)
		}
		c.pkPos = int(pk)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading columns of %s.%s: %w", schema, name, err)
	}
	return out, nil
}

// querier is what catalog reads need: a connection or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// listTables lists the database's ordinary and partitioned tables that
// the config captures, sorted by name.
func listTables(ctx context.Context, q querier, c *config) ([][2]string, error) {
	rows, err := q.Query(ctx, `
SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%'
ORDER BY 1, 2`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	defer rows.Close()
	var out [][2]string
	for rows.Next() {
		var s, n string
		if err := rows.Scan(&s, &n); err != nil {
			return nil, fmt.Errorf("listing tables: %w", err)
		}
		if c.captured(s, n) {
			out = append(out, [2]string{s, n})
		}
	}
	return out, rows.Err()
}

// quoteIdent quotes a PostgreSQL identifier.
func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }

// restruct gives a struct value the field's schema (its optional variant).
func restruct(v *data.Struct, s *data.Schema) *data.Struct {
	if v.Schema() == s {
		return v
	}
	out := data.NewStruct(s)
	for _, f := range s.Fields {
		if x := v.GetWithoutDefault(f.Name); x != nil {
			_ = out.Put(f.Name, x)
		}
	}
	return out
}
