package pgjdbc

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/internal/testkit/pgtest"
)

func TestParseURL(t *testing.T) {
	for _, tc := range []struct {
		url, user, pw string
		host          string
		port          uint16
		db, wantUser  string
		wantPw        string
		param         [2]string // a runtime parameter expected
		err           string
	}{
		{url: "jdbc:postgresql://db.example:6543/shop", user: "app", pw: "s3cr'et", host: "db.example", port: 6543, db: "shop", wantUser: "app", wantPw: "s3cr'et"},
		{url: "jdbc:postgresql://localhost/shop?user=u&password=p", host: "localhost", port: 5432, db: "shop", wantUser: "u", wantPw: "p"},
		{url: "jdbc:postgresql://localhost/shop?user=u&password=p", user: "override", host: "localhost", port: 5432, db: "shop", wantUser: "override", wantPw: "p"},
		{url: "jdbc:postgresql://[::1]:5433/x?currentSchema=sales&ApplicationName=sluice", host: "::1", port: 5433, db: "x",
			param: [2]string{"search_path", "sales"}},
		{url: "jdbc:postgresql://h1:5432,h2:5433/x", host: "h1", port: 5432, db: "x"},
		{url: "jdbc:postgresql:shop", host: "localhost", port: 5432, db: "shop"},
		{url: "postgres://u:p%40ss@127.0.0.1:5999/d?sslmode=disable", host: "127.0.0.1", port: 5999, db: "d", wantUser: "u", wantPw: "p@ss"},
		{url: "jdbc:mysql://h/x", err: "postgresql subprotocol"},
		{url: "http://h/x", err: "not a JDBC URL"},
		{url: "jdbc:postgresql://h:notaport/x", err: "bad port"},
		{url: "jdbc:postgresql://h:1/x?password=hunter2&sslmode=bogus", err: "password=xxxxx"},
	} {
		cfg, err := ParseURL(tc.url, tc.user, tc.pw)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) || strings.Contains(err.Error(), "hunter2") {
				t.Errorf("%s: err %v, want one containing %q and no password", tc.url, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.url, err)
			continue
		}
		if cfg.Host != tc.host || cfg.Port != tc.port || cfg.Database != tc.db {
			t.Errorf("%s: got %s:%d/%s, want %s:%d/%s", tc.url, cfg.Host, cfg.Port, cfg.Database, tc.host, tc.port, tc.db)
		}
		if tc.wantUser != "" && cfg.User != tc.wantUser || tc.wantPw != "" && cfg.Password != tc.wantPw {
			t.Errorf("%s: user %q password %q, want %q %q", tc.url, cfg.User, cfg.Password, tc.wantUser, tc.wantPw)
		}
		if tc.param[0] != "" && cfg.RuntimeParams[tc.param[0]] != tc.param[1] {
			t.Errorf("%s: %s = %q, want %q", tc.url, tc.param[0], cfg.RuntimeParams[tc.param[0]], tc.param[1])
		}
	}
	cfg, err := ParseURL("jdbc:postgresql://h1:5432,h2:5433/x", "", "")
	found := false
	for _, fb := range cfg.Fallbacks {
		found = found || fb.Host == "h2" && fb.Port == 5433
	}
	if err != nil || !found {
		t.Errorf("second host missing: %v %+v", err, cfg.Fallbacks)
	}
}

func TestParseTable(t *testing.T) {
	for in, want := range map[string]string{
		"orders":                 `"orders"`,
		"Orders":                 `"Orders"`,
		"public.orders":          `"public"."orders"`,
		"cdc.public.orders":      `"public"."orders"`,
		`"my.schema"."Or""ders"`: `"my.schema"."Or""ders"`,
		`x"y`:                    `"x""y"`,
	} {
		tb, err := ParseTable(in)
		if err != nil || tb.Quoted() != want {
			t.Errorf("ParseTable(%q) = %s, %v; want %s", in, tb.Quoted(), err, want)
		}
	}
	for _, bad := range []string{"", "a..b", `"open`, "a.b.c.d", `"a"b`} {
		if _, err := ParseTable(bad); err == nil {
			t.Errorf("ParseTable(%q) accepted", bad)
		}
	}
	if QuoteIdent(`a"; drop table x; --`) != `"a""; drop table x; --"` {
		t.Error("QuoteIdent does not escape quotes")
	}
}

// TestRoundTrip writes each Connect type into the column ColumnType
// names and reads it back through SchemaFor and FromPG, on a real server.
func TestRoundTrip(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{NoFsync: true})
	ctx := context.Background()
	cfg, err := ParseURL("jdbc:postgresql://127.0.0.1:"+itoa(s.Port)+"/postgres?sslmode=disable", "postgres", "")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	ts := time.Date(2024, 5, 6, 7, 8, 9, 123e6, time.UTC)
	cases := []struct {
		schema *data.Schema
		value  any
		back   any // what FromPG gives, when not value itself
	}{
		{data.Int8Schema, int8(7), int16(7)},
		{data.Int16Schema, int16(-300), nil},
		{data.Int32Schema, int32(1 << 20), nil},
		{data.Int64Schema, int64(1) << 40, nil},
		{data.Float32Schema, float32(1.5), nil},
		{data.Float64Schema, 2.25, nil},
		{data.BooleanSchema, true, nil},
		{data.StringSchema, "héllo", nil},
		{data.BytesSchema, []byte{0, 1, 2}, nil},
		{data.DateSchema, time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC), nil},
		{data.TimeSchema, time.Date(1970, 1, 1, 7, 8, 9, 123e6, time.UTC), nil},
		{data.TimestampSchema, ts, nil},
		{data.ArrayOf(data.Int64Schema), []any{int64(1), int64(2)}, `[1,2]`},
		{data.StructOf("s", data.F("a", data.Int32Schema)), data.NewStruct(data.StructOf("s", data.F("a", data.Int32Schema))).MustPut("a", int32(5)), `{"a":5}`},
	}
	for i, c := range cases {
		typ, err := ColumnType(c.schema)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "CREATE TEMP TABLE t"+itoa(i)+" (v "+typ+")"); err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		pv, err := ToPG(c.schema, c.value)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO t"+itoa(i)+" VALUES ($1)", pv); err != nil {
			t.Fatalf("%s: insert %v: %v", typ, pv, err)
		}
		rows, _ := conn.Query(ctx, "SELECT v FROM t"+itoa(i))
		if !rows.Next() {
			t.Fatalf("%s: no row: %v", typ, rows.Err())
		}
		vals, err := rows.Values()
		fd := rows.FieldDescriptions()[0]
		rows.Close()
		if err != nil {
			t.Fatal(err)
		}
		back, err := FromPG(SchemaFor(fd.DataTypeOID, fd.TypeModifier, true), vals[0])
		if err != nil {
			t.Fatalf("%s: FromPG(%T %v): %v", typ, vals[0], vals[0], err)
		}
		want := c.back
		if want == nil {
			want = c.value
		}
		if !data.ValueEqual(back, want) {
			t.Errorf("%s: %v came back as %T %v, want %v", typ, c.value, back, back, want)
		}
	}
	// numeric(10,2) comes back as a Decimal of scale 2.
	if _, err := conn.Exec(ctx, "CREATE TEMP TABLE n (v numeric(10,2))"); err != nil {
		t.Fatal(err)
	}
	pv, _ := ToPG(data.DecimalSchema(2), data.NewDecimal(12345, 2))
	if _, err := conn.Exec(ctx, "INSERT INTO n VALUES ($1)", pv); err != nil {
		t.Fatal(err)
	}
	rows, _ := conn.Query(ctx, "SELECT v FROM n")
	rows.Next()
	vals, _ := rows.Values()
	fd := rows.FieldDescriptions()[0]
	rows.Close()
	back, err := FromPG(SchemaFor(fd.DataTypeOID, fd.TypeModifier, true), vals[0])
	if err != nil || !data.ValueEqual(back, data.NewDecimal(12345, 2)) {
		t.Errorf("numeric(10,2): %v %v", back, err)
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestDebeziumTypes writes values in Debezium's encodings into the column
// types ColumnType names for them and reads the server's text back.
func TestDebeziumTypes(t *testing.T) {
	s := pgtest.Start(t, pgtest.Options{NoFsync: true})
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, s.DSN(""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SET TIME ZONE 'UTC'"); err != nil {
		t.Fatal(err)
	}
	named := func(typ data.Type, name string) *data.Schema { return &data.Schema{Type: typ, Name: name} }
	vsd := data.StructOf("io.debezium.data.VariableScaleDecimal", data.F("scale", data.Int32Schema), data.F("value", data.BytesSchema))
	unscaled, _ := data.DecimalToBytes(data.DecimalSchema(3), data.NewDecimal(-12345, 3))
	for i, c := range []struct {
		schema *data.Schema
		value  any
		typ    string
		text   string
	}{
		{named(data.TypeInt32, "io.debezium.time.Date"), int32(19000), "date", "2022-01-08"},
		{named(data.TypeInt64, "io.debezium.time.Timestamp"), int64(1700000000123), "timestamp", "2023-11-14 22:13:20.123"},
		{named(data.TypeInt64, "io.debezium.time.MicroTimestamp"), int64(1700000000123456), "timestamp", "2023-11-14 22:13:20.123456"},
		{named(data.TypeInt64, "io.debezium.time.NanoTimestamp"), int64(1700000000123456000), "timestamp", "2023-11-14 22:13:20.123456"},
		{named(data.TypeString, "io.debezium.time.ZonedTimestamp"), "2023-11-14T22:13:20.5+02:00", "timestamptz", "2023-11-14 20:13:20.5+00"},
		{named(data.TypeInt32, "io.debezium.time.Time"), int32(3723004), "time", "01:02:03.004"},
		{named(data.TypeInt64, "io.debezium.time.MicroTime"), int64(3723000005), "time", "01:02:03.000005"},
		{named(data.TypeInt64, "io.debezium.time.MicroDuration"), int64(3723000000), "interval", "01:02:03"},
		{named(data.TypeString, "io.debezium.data.Json"), `{"a": [1, 2]}`, "jsonb", `{"a": [1, 2]}`},
		{named(data.TypeString, "io.debezium.data.Uuid"), "1b4e28ba-2fa1-11d2-883f-0016d3cca427", "uuid", "1b4e28ba-2fa1-11d2-883f-0016d3cca427"},
		{vsd, data.NewStruct(vsd).MustPut("scale", int32(3)).MustPut("value", unscaled), "numeric", "-12.345"},
	} {
		typ, err := ColumnType(c.schema)
		if err != nil || typ != c.typ {
			t.Fatalf("%s: column type %q %v, want %s", c.schema.Name, typ, err, c.typ)
		}
		tbl := "d" + strconv.Itoa(i)
		if _, err := conn.Exec(ctx, "CREATE TEMP TABLE "+tbl+" (v "+typ+")"); err != nil {
			t.Fatal(err)
		}
		v, err := ToPG(c.schema, c.value)
		if err != nil {
			t.Fatalf("%s: %v", c.schema.Name, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO "+tbl+" VALUES ($1)", v); err != nil {
			t.Fatalf("%s: insert %#v: %v", c.schema.Name, v, err)
		}
		var text string
		if err := conn.QueryRow(ctx, "SELECT v::text FROM "+tbl).Scan(&text); err != nil || text != c.text {
			t.Errorf("%s: %v reads back as %q (%v), want %q", c.schema.Name, c.value, text, err, c.text)
		}
	}
}
