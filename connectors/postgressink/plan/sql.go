package plan

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
)

// CreateTable is auto.create's statement for a group's table: its
// columns typed by pgjdbc.ColumnType, NOT NULL where the schema is
// required, and the key as primary key.
func CreateTable(t pgjdbc.Table, key, cols []Column) (string, error) {
	var b strings.Builder
	b.WriteString("CREATE TABLE IF NOT EXISTS ")
	b.WriteString(t.Quoted())
	b.WriteString(" (")
	for i, c := range append(append([]Column(nil), key...), cols...) {
		typ, err := pgjdbc.ColumnType(c.Schema)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", c.Name, err)
		}
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(pgjdbc.QuoteIdent(c.Name) + " " + typ)
		if i < len(key) || !c.Schema.Optional && c.Schema.Default == nil {
			b.WriteString(" NOT NULL")
		}
	}
	if len(key) > 0 {
		b.WriteString(", PRIMARY KEY (" + identList(key, "") + ")")
	}
	b.WriteString(")")
	return b.String(), nil
}

// Missing lists the columns of cols a table with the existing columns
// lacks.
func Missing(existing map[string]string, cols []Column) []Column {
	var out []Column
	for _, c := range cols {
		if _, ok := existing[c.Name]; !ok {
			out = append(out, c)
		}
	}
	return out
}

// AddColumns is auto.evolve's statement: the missing columns, nullable
// (rows already in the table have no value for them).
func AddColumns(t pgjdbc.Table, cols []Column) (string, error) {
	parts := make([]string, len(cols))
	for i, c := range cols {
		typ, err := pgjdbc.ColumnType(c.Schema)
		if err != nil {
			return "", fmt.Errorf("column %s: %w", c.Name, err)
		}
		parts[i] = "ADD COLUMN IF NOT EXISTS " + pgjdbc.QuoteIdent(c.Name) + " " + typ
	}
	return "ALTER TABLE " + t.Quoted() + " " + strings.Join(parts, ", "), nil
}

// CreateStage is the statement making a session's staging table for a
// group: the target's columns and types, emptied at every commit.
func CreateStage(stage string, t pgjdbc.Table, cols []Column) string {
	return "CREATE TEMP TABLE IF NOT EXISTS " + pgjdbc.QuoteIdent(stage) + " ON COMMIT DELETE ROWS AS SELECT " +
		identList(cols, "") + " FROM " + t.Quoted() + " WITH NO DATA"
}

// FromStage is the statement applying a group COPYed into stage to the
// table: INSERT … SELECT … ON CONFLICT for upserts (DO NOTHING when all
// columns are the key), UPDATE … FROM and DELETE … USING.
func FromStage(g *Group, t pgjdbc.Table, stage string) string {
	st := pgjdbc.QuoteIdent(stage)
	all := g.Columns()
	switch g.Kind {
	case KindInsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") SELECT " + identList(all, "") + " FROM " + st
	case KindUpsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") SELECT " + identList(all, "") + " FROM " + st +
			onConflict(g)
	case KindUpdate:
		return "UPDATE " + t.Quoted() + " AS t SET " + assignments(g.Cols, "s.") + " FROM " + st + " AS s WHERE " + keyMatch(g.Key)
	case KindDelete:
		return "DELETE FROM " + t.Quoted() + " AS t USING " + st + " AS s WHERE " + keyMatch(g.Key)
	}
	panic("plan: unknown kind")
}

// RowStatement is the single-row statement for one row of a group, with
// its values as $1… in Columns order: the fallback that finds which
// records of a failed batch are bad.
func RowStatement(g *Group, t pgjdbc.Table) string {
	all := g.Columns()
	switch g.Kind {
	case KindInsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") VALUES (" + params(1, len(all)) + ")"
	case KindUpsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") VALUES (" + params(1, len(all)) + ")" + onConflict(g)
	case KindUpdate:
		sets := make([]string, len(g.Cols))
		for i, c := range g.Cols {
			sets[i] = pgjdbc.QuoteIdent(c.Name) + " = $" + strconv.Itoa(len(g.Key)+i+1)
		}
		return "UPDATE " + t.Quoted() + " SET " + strings.Join(sets, ", ") + " WHERE " + keyParams(g.Key)
	case KindDelete:
		return "DELETE FROM " + t.Quoted() + " WHERE " + keyParams(g.Key)
	}
	panic("plan: unknown kind")
}

func onConflict(g *Group) string {
	if len(g.Cols) == 0 {
		return " ON CONFLICT (" + identList(g.Key, "") + ") DO NOTHING"
	}
	sets := make([]string, len(g.Cols))
	for i, c := range g.Cols {
		q := pgjdbc.QuoteIdent(c.Name)
		sets[i] = q + " = EXCLUDED." + q
	}
	return " ON CONFLICT (" + identList(g.Key, "") + ") DO UPDATE SET " + strings.Join(sets, ", ")
}

func assignments(cols []Column, prefix string) string {
	sets := make([]string, len(cols))
	for i, c := range cols {
		q := pgjdbc.QuoteIdent(c.Name)
		sets[i] = q + " = " + prefix + q
	}
	return strings.Join(sets, ", ")
}

func keyMatch(key []Column) string {
	parts := make([]string, len(key))
	for i, c := range key {
		q := pgjdbc.QuoteIdent(c.Name)
		parts[i] = "t." + q + " = s." + q
	}
	return strings.Join(parts, " AND ")
}

func keyParams(key []Column) string {
	parts := make([]string, len(key))
	for i, c := range key {
		parts[i] = pgjdbc.QuoteIdent(c.Name) + " = $" + strconv.Itoa(i+1)
	}
	return strings.Join(parts, " AND ")
}

func identList(cols []Column, prefix string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = prefix + pgjdbc.QuoteIdent(c.Name)
	}
	return strings.Join(parts, ", ")
}

func params(from, n int) string {
	parts := make([]string, n)
	for i := range parts {
		parts[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(parts, ", ")
}

// FromArrays is the statement applying a group in one round trip: each
// column's values are one array parameter ($1 … in Columns order, each of
// types[i]'s array type), unnested into rows, with the same effect as
// FromStage. It needs scalar column types (unnest flattens arrays of
// arrays); types are the table's column types as format_type names them.
func FromArrays(g *Group, t pgjdbc.Table, types []string) string {
	all := g.Columns()
	args := make([]string, len(all))
	for i := range all {
		args[i] = "$" + strconv.Itoa(i+1) + "::" + types[i] + "[]"
	}
	src := "unnest(" + strings.Join(args, ", ") + ") AS s (" + identList(all, "") + ")"
	switch g.Kind {
	case KindInsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") SELECT " + identList(all, "") + " FROM " + src
	case KindUpsert:
		return "INSERT INTO " + t.Quoted() + " (" + identList(all, "") + ") SELECT " + identList(all, "") + " FROM " + src +
			onConflict(g)
	case KindUpdate:
		return "UPDATE " + t.Quoted() + " AS t SET " + assignments(g.Cols, "s.") + " FROM " + src + " WHERE " + keyMatch(g.Key)
	case KindDelete:
		return "DELETE FROM " + t.Quoted() + " AS t USING " + src + " WHERE " + keyMatch(g.Key)
	}
	panic("plan: unknown kind")
}

// Unnestable reports whether columns of these types can go through
// FromArrays: none may be an array type.
func Unnestable(types []string) bool {
	for _, t := range types {
		if strings.HasSuffix(t, "]") {
			return false
		}
	}
	return true
}
