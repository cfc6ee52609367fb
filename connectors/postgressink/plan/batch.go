package plan

import (
	"slices"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// Kind is what one statement does.
type Kind int

// The statement kinds.
const (
	KindInsert Kind = iota + 1
	KindUpsert
	KindUpdate
	KindDelete
)

func (k Kind) String() string {
	return [...]string{"", "insert", "upsert", "update", "delete"}[k]
}

// Group is one set-based statement: rows of one table, one kind and one
// set of columns, loaded with COPY and applied together.
type Group struct {
	Table string
	Kind  Kind
	Key   []Column
	Cols  []Column // without the key columns; empty for a delete
	// Rows are key values then column values, in Key then Cols order.
	Rows [][]any
	// Records are the batch indexes of the records behind each row (more
	// than one when upserts of one key were merged).
	Records [][]int
}

// Columns are the key columns then the others.
func (g *Group) Columns() []Column {
	return append(append([]Column(nil), g.Key...), g.Cols...)
}

// Group turns a batch's rows into statements whose effect is the rows'
// applied in order. With insert.mode=insert, the rows of each table go in
// runs of consecutive rows of one kind and column set, so an insert and a
// later delete of one key keep their order and duplicates fail as plain
// inserts do. With upsert and update, the rows of one key collapse into
// at most one delete followed by one write whose columns merge the writes
// after the last delete (later values win): PostgreSQL refuses to touch
// one row twice in one INSERT … ON CONFLICT, and the end state is the
// same. Deletes of a table go before its writes. Tables keep the order in
// which they first appear.
func (c *Config) Group(rows []Row) []*Group {
	if c.InsertMode == Insert {
		return runs(rows)
	}
	return collapse(rows, map[InsertMode]Kind{Upsert: KindUpsert, Update: KindUpdate}[c.InsertMode])
}

func runs(rows []Row) []*Group {
	var out []*Group
	cur := map[string]*Group{} // table -> its open run
	for _, r := range rows {
		kind, cols, vals := KindInsert, r.Cols, r.Vals
		if r.Delete {
			kind, cols, vals = KindDelete, nil, nil
		}
		g := cur[r.Table]
		if g == nil || g.Kind != kind || !sameNames(g.Key, r.Key) || !sameNames(g.Cols, cols) {
			g = &Group{Table: r.Table, Kind: kind, Key: r.Key, Cols: cols}
			cur[r.Table] = g
			out = append(out, g)
		}
		g.Rows = append(g.Rows, append(append([]any(nil), r.KeyVals...), vals...))
		g.Records = append(g.Records, []int{r.Index})
	}
	return out
}

// keyState is what a batch does to one key.
type keyState struct {
	key     []Column
	keyVals []any
	deleted bool // a delete of the key is in the batch
	delRecs []int
	written bool // a write follows the last delete
	owned   bool // cols and vals are the state's own, not a row's
	cols    []Column
	vals    []any
	recs    []int
}

func collapse(rows []Row, write Kind) []*Group {
	type table struct {
		keys  map[keyRef]*keyState
		order []*keyState
	}
	tables := map[string]*table{}
	var tableOrder []string
	for _, r := range rows {
		t := tables[r.Table]
		if t == nil {
			t = &table{keys: map[keyRef]*keyState{}}
			tables[r.Table] = t
			tableOrder = append(tableOrder, r.Table)
		}
		id := keyOf(r.Key, r.KeyVals)
		ks := t.keys[id]
		if ks == nil {
			ks = &keyState{key: r.Key, keyVals: r.KeyVals}
			t.keys[id] = ks
			t.order = append(t.order, ks)
		}
		if r.Delete {
			ks.deleted, ks.written, ks.owned, ks.cols, ks.vals = true, false, false, nil, nil
			ks.delRecs = append(ks.delRecs, append(ks.recs, r.Index)...)
			ks.recs = nil
			continue
		}
		ks.recs = append(ks.recs, r.Index)
		ks.key, ks.keyVals = r.Key, r.KeyVals
		if !ks.written { // the common case: one write per key, kept as is
			ks.written, ks.owned, ks.cols, ks.vals = true, false, r.Cols, r.Vals
			continue
		}
		if !ks.owned {
			ks.cols, ks.vals, ks.owned = slices.Clone(ks.cols), slices.Clone(ks.vals), true
		}
		for i, col := range r.Cols {
			j := indexOf(ks.cols, col.Name)
			if j < 0 {
				ks.cols = append(ks.cols, col)
				ks.vals = append(ks.vals, r.Vals[i])
			} else {
				ks.cols[j], ks.vals[j] = col, r.Vals[i]
			}
		}
	}
	var out []*Group
	for _, name := range tableOrder {
		t := tables[name]
		var del *Group
		writes := map[string]*Group{}
		var writeOrder []*Group
		var last *Group // most keys share the previous key's columns
		for _, ks := range t.order {
			if ks.deleted {
				if del == nil || !sameNames(del.Key, ks.key) {
					del = &Group{Table: name, Kind: KindDelete, Key: ks.key}
					out = append(out, del)
				}
				del.Rows = append(del.Rows, ks.keyVals)
				del.Records = append(del.Records, ks.delRecs)
			}
			if !ks.written {
				continue
			}
			g := last
			if g == nil || !sameNames(g.Key, ks.key) || !sameNames(g.Cols, ks.cols) {
				sig := names(ks.key) + "\x00" + names(ks.cols)
				if g = writes[sig]; g == nil {
					g = &Group{Table: name, Kind: write, Key: ks.key, Cols: ks.cols}
					writes[sig] = g
					writeOrder = append(writeOrder, g)
				}
				last = g
			}
			g.Rows = append(g.Rows, append(append([]any(nil), ks.keyVals...), ks.vals...))
			g.Records = append(g.Records, ks.recs)
		}
		out = append(out, writeOrder...)
	}
	return out
}

// keyRef identifies a key's values: PostgreSQL compares them as the
// column type does, which for the types a key uses is value equality.
// A one-column key of a comparable type is itself (no allocation); others
// are rendered as text.
type keyRef struct {
	name string
	v    any
}

func keyOf(cols []Column, vals []any) keyRef {
	if len(vals) == 1 {
		switch v := vals[0].(type) {
		case int8:
			return keyRef{cols[0].Name, int64(v)}
		case int16:
			return keyRef{cols[0].Name, int64(v)}
		case int32:
			return keyRef{cols[0].Name, int64(v)}
		case int64, string, bool:
			return keyRef{cols[0].Name, v}
		case []byte:
			return keyRef{cols[0].Name, string(v)}
		}
	}
	var b strings.Builder
	for i, v := range vals {
		if i > 0 {
			b.WriteByte(0)
		}
		b.WriteString(cols[i].Name)
		b.WriteByte('=')
		b.WriteString(data.ToString(v))
	}
	return keyRef{"\x00", b.String()}
}

func indexOf(cols []Column, name string) int {
	for i, c := range cols {
		if c.Name == name {
			return i
		}
	}
	return -1
}

func names(cols []Column) string {
	var b strings.Builder
	for _, c := range cols {
		b.WriteString(c.Name)
		b.WriteByte(0)
	}
	return b.String()
}

func sameNames(a, b []Column) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name {
			return false
		}
	}
	return true
}

// Sequential groups rows as runs (see Group) with the write kind of the
// insert mode and no merging: the order in which the one-by-one fallback
// writes them.
func (c *Config) Sequential(rows []Row) []*Group {
	gs := runs(rows)
	kind := map[InsertMode]Kind{Insert: KindInsert, Upsert: KindUpsert, Update: KindUpdate}[c.InsertMode]
	for _, g := range gs {
		if g.Kind != KindDelete {
			g.Kind = kind
		}
	}
	return gs
}
