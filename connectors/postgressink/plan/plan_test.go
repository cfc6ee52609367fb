package plan

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
)

var (
	vs = data.StructOf("v", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
	ks = data.StructOf("k", data.F("id", data.Int64Schema))
)

func rec(off int64, key, val any) *data.Record {
	r := &data.Record{Topic: "t", OriginalTopic: "t", OriginalOffset: off, KafkaOffset: off, Key: key, Value: val}
	if key != nil {
		r.KeySchema = ks
	}
	return r
}

func val(id int64, name string) *data.Struct {
	return data.NewStruct(vs).MustPut("id", id).MustPut("name", name)
}

func key(id int64) *data.Struct { return data.NewStruct(ks).MustPut("id", id) }

func cfg(t *testing.T, kv ...string) Config {
	m := map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	c, errs := ParseConfig(m)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	return c
}

func TestParseConfigErrors(t *testing.T) {
	for _, tc := range []struct {
		kv  map[string]string
		key string
	}{
		{map[string]string{"insert.mode": "merge"}, "insert.mode"},
		{map[string]string{"insert.mode": "upsert"}, "pk.mode"},
		{map[string]string{"pk.mode": "record_value", "delete.enabled": "true"}, "delete.enabled"},
		{map[string]string{"pk.mode": "kafka", "pk.fields": "a,b"}, "pk.fields"},
		{map[string]string{"batch.size": "0"}, "batch.size"},
		{map[string]string{"auto.create": "yes"}, "auto.create"},
	} {
		_, errs := ParseConfig(tc.kv)
		if len(errs) == 0 || errs[0].Key != tc.key {
			t.Errorf("%v: errors %v, want one for %s", tc.kv, errs, tc.key)
		}
	}
}

func TestRowOf(t *testing.T) {
	c := cfg(t, "pk.mode", "record_key", "delete.enabled", "true", "insert.mode", "upsert", "table.name.format", "db_${topic}")
	row, skip, err := c.RowOf(3, rec(0, key(1), val(1, "a")))
	if err != nil || skip || row.Table != "db_t" || row.Index != 3 || len(row.Key) != 1 || row.Key[0].Name != "id" ||
		len(row.Cols) != 1 || row.Cols[0].Name != "name" || row.Vals[0] != "a" {
		t.Fatalf("record_key row: %+v %v %v", row, skip, err)
	}
	if row, _, err := c.RowOf(0, rec(0, key(1), nil)); err != nil || !row.Delete || row.KeyVals[0] != int64(1) {
		t.Fatalf("tombstone: %+v %v", row, err)
	}
	noDel := cfg(t, "pk.mode", "record_key")
	if _, skip, err := noDel.RowOf(0, rec(0, key(1), nil)); !skip || err != nil {
		t.Fatalf("tombstone without delete.enabled must be skipped: %v %v", skip, err)
	}
	if _, _, err := c.RowOf(0, rec(0, nil, val(1, "a"))); err == nil {
		t.Fatal("record_key without a key accepted")
	}
	prim := rec(0, "k1", val(1, "a"))
	prim.KeySchema = data.StringSchema
	if row, _, err := c.RowOf(0, prim); err != nil || row.Key[0].Name != DefaultKeyColumn || len(row.Cols) != 2 {
		t.Fatalf("primitive key: %+v %v", row, err)
	}
	inc := cfg(t, "fields.whitelist", "name")
	if row, _, _ := inc.RowOf(0, rec(0, nil, val(1, "a"))); len(row.Cols) != 1 || row.Cols[0].Name != "name" {
		t.Fatalf("fields.whitelist: %+v", row)
	}
	// A schemaless Debezium delete with pk.mode=record_value takes its key from before.
	rv := cfg(t, "pk.mode", "record_value", "pk.fields", "id", "insert.mode", "upsert")
	env := map[string]any{"op": "d", "before": map[string]any{"id": int64(7), "name": "x"}, "after": nil}
	if row, _, err := rv.RowOf(0, rec(0, nil, env)); err != nil || !row.Delete || row.KeyVals[0] != int64(7) {
		t.Fatalf("debezium delete: %+v %v", row, err)
	}
	if _, skip, _ := rv.RowOf(0, rec(0, nil, map[string]any{"op": "t", "before": nil, "after": nil})); !skip {
		t.Fatal("a truncate event must be skipped")
	}
}

// TestGroupCollapse: an upsert batch's statements have the effect of its
// rows in order, one statement touching each key at most once.
func TestGroupCollapse(t *testing.T) {
	c := cfg(t, "pk.mode", "record_key", "delete.enabled", "true", "insert.mode", "upsert")
	var rows []Row
	for i, r := range []*data.Record{
		rec(0, key(1), val(1, "a")),
		rec(1, key(2), val(2, "b")),
		rec(2, key(1), val(1, "a2")),
		rec(3, key(2), nil),
		rec(4, key(3), nil),
		rec(5, key(2), val(2, "b2")),
	} {
		row, _, err := c.RowOf(i, r)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, row)
	}
	gs := c.Group(rows)
	type out struct {
		Kind Kind
		Rows [][]any
		Recs [][]int
	}
	var got []out
	for _, g := range gs {
		got = append(got, out{g.Kind, g.Rows, g.Records})
	}
	want := []out{
		{KindDelete, [][]any{{int64(2)}, {int64(3)}}, [][]int{{1, 3}, {4}}},
		{KindUpsert, [][]any{{int64(1), "a2"}, {int64(2), "b2"}}, [][]int{{0, 2}, {5}}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("groups\n got %+v\nwant %+v", got, want)
	}
	// insert.mode=insert keeps order in runs.
	ins := cfg(t, "pk.mode", "record_key", "delete.enabled", "true")
	var kinds []string
	for _, g := range ins.Group(rows) {
		kinds = append(kinds, g.Kind.String())
	}
	if strings.Join(kinds, ",") != "insert,delete,insert" {
		t.Fatalf("insert runs %v", kinds)
	}
}

func TestSQL(t *testing.T) {
	tb := pgjdbc.Table{Schema: "s", Name: "t"}
	g := &Group{Kind: KindUpsert, Key: []Column{{"id", data.Int64Schema}}, Cols: []Column{{"name", data.OptionalStringSchema}}}
	for got, want := range map[string]string{
		FromStage(g, tb, "st"):             `INSERT INTO "s"."t" ("id", "name") SELECT "id", "name" FROM "st" ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name"`,
		RowStatement(g, tb):                `INSERT INTO "s"."t" ("id", "name") VALUES ($1, $2) ON CONFLICT ("id") DO UPDATE SET "name" = EXCLUDED."name"`,
		CreateStage("st", tb, g.Columns()): `CREATE TEMP TABLE IF NOT EXISTS "st" ON COMMIT DELETE ROWS AS SELECT "id", "name" FROM "s"."t" WITH NO DATA`,
	} {
		if got != want {
			t.Errorf("got  %s\nwant %s", got, want)
		}
	}
	ddl, err := CreateTable(tb, g.Key, []Column{{"name", data.StringSchema}, {"n", data.OptionalInt32Schema}})
	if err != nil || ddl != `CREATE TABLE IF NOT EXISTS "s"."t" ("id" bigint NOT NULL, "name" text NOT NULL, "n" integer, PRIMARY KEY ("id"))` {
		t.Errorf("create: %s %v", ddl, err)
	}
	g.Cols = nil
	if got := FromStage(g, tb, "st"); !strings.HasSuffix(got, `ON CONFLICT ("id") DO NOTHING`) {
		t.Errorf("key-only upsert: %s", got)
	}
}

func TestOffsets(t *testing.T) {
	o := NewOffsets()
	recs := []*data.Record{rec(5, nil, nil), rec(6, nil, nil), rec(7, nil, nil)}
	if u := o.Unknown(recs); len(u) != 1 || u[0] != (TP{"t", 0}) {
		t.Fatalf("unknown %v", u)
	}
	o.Set(TP{"t", 0}, 6) // the database has everything before 6
	if f := o.Fresh(recs); !reflect.DeepEqual(f, []int{1, 2}) {
		t.Fatalf("fresh %v", f)
	}
	adv := o.Advances([]*data.Record{recs[1], recs[2]})
	if !reflect.DeepEqual(adv, []Advance{{TP{"t", 0}, 6, 8}}) {
		t.Fatalf("advances %v", adv)
	}
	o.Applied(adv)
	if n, _ := o.Get(TP{"t", 0}); n != 8 {
		t.Fatalf("after apply %d", n)
	}
	if adv := o.Advances(recs); len(adv) != 0 {
		t.Fatalf("a replayed batch must not move offsets: %v", adv)
	}
	sql, args := AdvanceSQL(pgjdbc.Table{Name: OffsetsTable}, Advance{TP{"t", 0}, 6, 8})
	if !strings.Contains(sql, "next_offset = $5") || args[3] != int64(6) {
		t.Fatalf("advance must check the expected offset: %s %v", sql, args)
	}
}
