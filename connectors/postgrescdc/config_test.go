package main

import (
	"context"
	"strings"
	"testing"
)

// Bad configs are reported per key by Validate and refused by Start with
// every problem named; none of them crashes the plugin.
func TestConfigValidation(t *testing.T) {
	base := map[string]string{"topic.prefix": "p", "database.hostname": "h", "database.user": "u", "database.dbname": "d"}
	cases := []struct {
		set  map[string]string
		key  string
		want string
	}{
		{map[string]string{"topic.prefix": ""}, "topic.prefix", "Missing required"},
		{map[string]string{"database.port": "x"}, "database.port", "between 1 and 65535"},
		{map[string]string{"snapshot.mode": "sometimes"}, "snapshot.mode", "must be one of"},
		{map[string]string{"plugin.name": "wal2json"}, "plugin.name", "only pgoutput"},
		{map[string]string{"publication.autocreate.mode": "some"}, "publication.autocreate.mode", "all_tables"},
		{map[string]string{"slot.name": "Bad-Slot"}, "slot.name", "lower-case"},
		{map[string]string{"table.include.list": "a(", "table.exclude.list": ""}, "table.include.list", "regular expression"},
		{map[string]string{"table.include.list": "a", "table.exclude.list": "b"}, "table.exclude.list", "cannot both"},
		{map[string]string{"tombstones.on.delete": "yes"}, "tombstones.on.delete", "true or false"},
		{map[string]string{"decimal.handling.mode": "exact"}, "decimal.handling.mode", "precise"},
	}
	for _, c := range cases {
		cfg := map[string]string{}
		for k, v := range base {
			cfg[k] = v
		}
		for k, v := range c.set {
			cfg[k] = v
		}
		vals, err := connector{}.Validate(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		found := false
		for _, v := range vals {
			if v.Name == c.key {
				found = len(v.Errors) > 0 && strings.Contains(strings.Join(v.Errors, ";"), c.want)
				if len(v.Errors) > 1 {
					t.Errorf("%s: reported %d times: %v", c.key, len(v.Errors), v.Errors)
				}
			}
		}
		if !found {
			t.Errorf("%v: no error on %s containing %q: %+v", c.set, c.key, c.want, vals)
		}
		if err := (&task{}).Start(context.Background(), tcNoLog(), cfg, nil); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: Start: %v", c.set, err)
		}
	}
	// The defaults of a minimal config are Debezium's.
	c, err := parseConfig(base)
	if err != nil {
		t.Fatal(err)
	}
	if c.slot != "debezium" || c.publication != "dbz_publication" || c.pubMode != pubAllTables || c.snapshotMode != snapInitial ||
		!c.tombstones || c.port != 5432 || c.heartbeatTopic != "__debezium-heartbeat.p" {
		t.Fatalf("defaults: %+v", c)
	}
	if !c.captured("public", "x") {
		t.Fatal("no lists: every table is captured")
	}
	c, _ = parseConfig(map[string]string{"topic.prefix": "p", "database.hostname": "h", "database.user": "u", "database.dbname": "d",
		"table.include.list": "public\\.orders,inv\\..*"})
	if !c.captured("public", "orders") || !c.captured("inv", "x") || c.captured("public", "orders2") || c.captured("public", "items") {
		t.Fatal("table.include.list matches whole names, case-insensitively, as Debezium's")
	}
}
