package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/jdbcsource/plan"
)

// A Confluent JdbcSourceConnector config parses unchanged, with
// Confluent's defaults for what it leaves out.
func TestConfluentConfigParses(t *testing.T) {
	c, errs := parseConfig(map[string]string{
		"connector.class":             confluentCls,
		"connection.url":              "jdbc:postgresql://db:5432/shop?user=u",
		"connection.password":         "pw",
		"mode":                        "timestamp+incrementing",
		"timestamp.column.name":       "modified, created",
		"incrementing.column.name":    "id",
		"table.whitelist":             "orders,public.users",
		"topic.prefix":                "shop-",
		"timestamp.delay.interval.ms": "2000",
	})
	if err := errs.err(); err != nil {
		t.Fatal(err)
	}
	if c.mode != plan.TimestampIncrementing || len(c.tsColumns) != 2 || c.tsColumns[1] != "created" ||
		c.delay != 2*time.Second || c.poll != 5*time.Second || c.batch != 100 || c.tablePoll != time.Minute ||
		!c.validateNonNull || c.conn.User != "u" || c.conn.Password != "pw" || c.loc != time.UTC {
		t.Fatalf("parsed %+v", c)
	}
	d := connector{}.Describe()
	if d.Aliases[0] != confluentCls || d.Type != sdk.Source {
		t.Fatalf("descriptor %+v", d)
	}
}

func TestBadConfigsAreReportedPerKey(t *testing.T) {
	base := func(kv ...string) map[string]string {
		m := map[string]string{"connection.url": "jdbc:postgresql://h/db", "mode": "bulk", "topic.prefix": "p-"}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tc := range []struct {
		cfg      map[string]string
		key, msg string
	}{
		{base("mode", "sometimes"), "mode", "must be one of"},
		{base("mode", "timestamp"), "timestamp.column.name", "needs timestamp.column.name"},
		{base("mode", "incrementing", "query", "SELECT 1"), "incrementing.column.name", "cannot be detected"},
		{base("table.whitelist", "a", "table.blacklist", "b"), "table.whitelist", "cannot both be set"},
		{base("query", "SELECT 1", "table.whitelist", "a"), "query", "cannot be combined"},
		{base("batch.max.rows", "0"), "batch.max.rows", "must be an integer >= 1"},
		{base("poll.interval.ms", "soon"), "poll.interval.ms", "must be an integer"},
		{base("table.include.list", "a("), "table.include.list", "not a regular expression"},
		{base("connection.url", "jdbc:mysql://h/db"), "connection.url", "postgresql"},
		{base("timestamp.initial", "-5"), "timestamp.initial", "-1 for now"},
		{base("db.timezone", "Mars/Olympus"), "db.timezone", "Invalid time zone"},
		{base("validate.non.null", "maybe"), "validate.non.null", "true or false"},
		{base("table.types", "SYNONYM"), "table.types", "SYNONYM"},
		{map[string]string{"mode": "bulk"}, "topic.prefix", "Missing required"},
	} {
		var got []string
		for _, cv := range validate(tc.cfg) {
			if cv.Name == tc.key {
				got = cv.Errors
			}
		}
		if len(got) == 0 || !strings.Contains(strings.Join(got, "|"), tc.msg) {
			t.Errorf("%v: errors on %s %q, want one containing %q", tc.cfg, tc.key, got, tc.msg)
		}
		task := &sourceTask{}
		if err := task.Start(context.Background(), sdk.TaskContext{}, tc.cfg, nil); err == nil {
			t.Errorf("%v: Start accepted it", tc.cfg)
		}
	}
	for _, cv := range validate(base("connection.password", "secret")) {
		if cv.Name == "connection.password" && (cv.Value == nil || *cv.Value == "secret") {
			t.Errorf("password echoed: %v", cv.Value)
		}
	}
}

func TestSplitAndAssignNewTables(t *testing.T) {
	split := splitTables([]string{"c", "a", "b", "d", "e"}, 2)
	if len(split) != 2 || strings.Join(split[0], ",") != "a,c,e" || strings.Join(split[1], ",") != "b,d" {
		t.Fatalf("split %v", split)
	}
	if s := splitTables(nil, 4); len(s) != 1 {
		t.Fatalf("no tables: %d tasks, want 1 to take new ones", len(s))
	}
	tcs, err := taskConfigs(map[string]string{"mode": "bulk"}, split)
	if err != nil {
		t.Fatal(err)
	}
	var as []assignment
	for _, tc := range tcs {
		a, err := parseAssignment(tc)
		if err != nil {
			t.Fatal(err)
		}
		as = append(as, a)
	}
	for _, name := range []string{"a", "b", "new1", "new2", "new3"} {
		n := 0
		for _, a := range as {
			if a.has(name) {
				n++
			}
		}
		if n != 1 {
			t.Errorf("table %s read by %d tasks", name, n)
		}
	}
	if !as[0].has("a") || as[1].has("a") {
		t.Error("a dealt to task 0 is not read by task 0 alone")
	}
}

// The shipped examples are valid configs.
func TestExamplesParse(t *testing.T) {
	files, _ := filepath.Glob("../../examples/connect/jdbc-source*.json")
	if len(files) == 0 {
		t.Fatal("no examples/connect/jdbc-source*.json")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex struct {
			Name   string            `json:"name"`
			Config map[string]string `json:"config"`
		}
		if err := json.Unmarshal(b, &ex); err != nil || ex.Name == "" {
			t.Fatalf("%s: %v", f, err)
		}
		if _, errs := parseConfig(ex.Config); errs.err() != nil {
			t.Errorf("%s: %v", f, errs.err())
		}
		cls := ex.Config["connector.class"]
		if d := (connector{}).Describe(); cls != d.Class && !slices.Contains(d.Aliases, cls) {
			t.Errorf("%s: connector.class %s is not this connector's", f, cls)
		}
	}
}

// numeric.mapping as Confluent's: integers by precision for scale 0 and
// p < 19, float64 for a positive scale (best_fit: p < 19 only), else
// Decimal.
func TestNumericSchema(t *testing.T) {
	typmod := func(p, s int32) int32 { return p<<16 | s + 4 }
	for _, tc := range []struct {
		m    numericMapping
		p, s int32
		want data.Type // "" = keep Decimal
	}{
		{numericNone, 5, 0, ""},
		{numericPrecisionOnly, 2, 0, data.TypeInt8},
		{numericPrecisionOnly, 3, 0, data.TypeInt16},
		{numericPrecisionOnly, 5, 0, data.TypeInt32},
		{numericPrecisionOnly, 10, 0, data.TypeInt64},
		{numericPrecisionOnly, 19, 0, ""},
		{numericPrecisionOnly, 10, 2, ""},
		{numericBestFit, 10, 2, data.TypeFloat64},
		{numericBestFit, 19, 2, ""},
		{numericBestFitEager, 30, 2, data.TypeFloat64},
		{numericBestFitEager, 30, 0, ""},
	} {
		s := numericSchema(tc.m, typmod(tc.p, tc.s), true)
		if (s == nil) != (tc.want == "") || s != nil && (s.Type != tc.want || !s.Optional) {
			t.Errorf("mapping %d numeric(%d,%d): %v, want %q", tc.m, tc.p, tc.s, s, tc.want)
		}
	}
	if numericSchema(numericBestFit, -1, false) != nil {
		t.Error("numeric without precision mapped")
	}
}
