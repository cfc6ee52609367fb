package pgjdbc

import (
	"fmt"
	"strings"
)

// QuoteIdent quotes one identifier for PostgreSQL, keeping its case:
// "a""b" for a"b. Identifiers cannot contain NUL, which PostgreSQL
// refuses; QuoteIdent drops it rather than build an invalid statement.
func QuoteIdent(name string) string {
	name = strings.ReplaceAll(name, "\x00", "")
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// Table is a table name, qualified by a schema or not.
type Table struct {
	Schema string // "" = the connection's search_path
	Name   string
}

// ParseTable parses a table name as table.name.format produces it:
// table, schema.table or database.schema.table (the database part is
// ignored: a connection reaches one database), each part either bare,
// kept as written (the JDBC connectors quote identifiers by default), or
// double-quoted with "" for a quote, so a part may hold dots. So a
// Debezium topic name such as server.public.orders names table orders in
// schema public.
func ParseTable(s string) (Table, error) {
	var parts []string
	var cur strings.Builder
	quoted, inQuote := false, false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case inQuote && c == '"' && i+1 < len(s) && s[i+1] == '"':
			cur.WriteByte('"')
			i++
		case c == '"' && (inQuote || cur.Len() == 0 && !quoted):
			inQuote = !inQuote
			quoted = true
		case c == '.' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
			quoted = false
		default:
			if quoted && !inQuote {
				return Table{}, fmt.Errorf("table name %q: text after a closing quote", s)
			}
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return Table{}, fmt.Errorf("table name %q: unclosed quote", s)
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if p == "" {
			return Table{}, fmt.Errorf("table name %q: empty part", s)
		}
	}
	switch len(parts) {
	case 1:
		return Table{Name: parts[0]}, nil
	case 2:
		return Table{Schema: parts[0], Name: parts[1]}, nil
	case 3:
		return Table{Schema: parts[1], Name: parts[2]}, nil
	}
	return Table{}, fmt.Errorf("table name %q: more than database.schema.table", s)
}

// Quoted is the table's name for SQL: "schema"."name" or "name".
func (t Table) Quoted() string {
	if t.Schema == "" {
		return QuoteIdent(t.Name)
	}
	return QuoteIdent(t.Schema) + "." + QuoteIdent(t.Name)
}

// String is Quoted.
func (t Table) String() string { return t.Quoted() }
