package main

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"regexp"
	"sort"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/sluice-io/sluice/connectors/internal/pgjdbc"
)

// tableRef is a table the source may read.
type tableRef struct {
	OID    uint32
	Schema string
	Name   string
}

// listTables lists the tables of table.types in schema.pattern that the
// user may read, as Confluent lists them through JDBC metadata.
func listTables(ctx context.Context, conn *pgx.Conn, c *config) ([]tableRef, error) {
	rows, err := conn.Query(ctx, `SELECT c.oid, n.nspname, c.relname
		FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind::text = ANY($1::text[])
		  AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		  AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		  AND ($2 = '' OR n.nspname LIKE $2)
		  AND has_table_privilege(c.oid, 'SELECT')
		ORDER BY n.nspname, c.relname`, c.relkinds, c.schemaPattern)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	var out []tableRef
	for rows.Next() {
		var t tableRef
		if err := rows.Scan(&t.OID, &t.Schema, &t.Name); err != nil {
			return nil, fmt.Errorf("listing tables: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}
	return selectTables(c, out)
}

// selectTables keeps the tables the white/black and include/exclude
// lists select. A table's topic and source partition use its name alone,
// as Confluent's do, so two selected tables of one name in different
// schemas are refused rather than mixed into one topic and offset.
func selectTables(c *config, all []tableRef) ([]tableRef, error) {
	var out []tableRef
	seen := map[string]tableRef{}
	for _, t := range all {
		if !c.selects(t) {
			continue
		}
		if o, dup := seen[t.Name]; dup {
			return nil, fmt.Errorf("tables %s.%s and %s.%s share a name, which names their topic and offsets: narrow schema.pattern or the table lists",
				o.Schema, o.Name, t.Schema, t.Name)
		}
		seen[t.Name] = t
		out = append(out, t)
	}
	return out, nil
}

// matchesName reports whether a whitelist entry (table or schema.table,
// quoted or not) names t.
func matchesName(entry string, t tableRef) bool {
	p, err := pgjdbc.ParseTable(entry)
	if err != nil {
		return false
	}
	return p.Name == t.Name && (p.Schema == "" || p.Schema == t.Schema)
}

func (c *config) selects(t tableRef) bool {
	anyName := func(list []string) bool {
		for _, e := range list {
			if matchesName(e, t) {
				return true
			}
		}
		return false
	}
	if len(c.whitelist) > 0 && !anyName(c.whitelist) {
		return false
	}
	if anyName(c.blacklist) {
		return false
	}
	full := t.Schema + "." + t.Name
	anyRE := func(res []*regexp.Regexp) bool {
		for _, re := range res {
			if re.MatchString(t.Name) || re.MatchString(full) {
				return true
			}
		}
		return false
	}
	if len(c.include) > 0 && !anyRE(c.include) {
		return false
	}
	return !anyRE(c.exclude)
}

// splitTables deals sorted table names round-robin over at most maxTasks
// tasks (one task when there is no table yet: it takes tables that
// appear later).
func splitTables(names []string, maxTasks int) [][]string {
	sorted := append([]string(nil), names...)
	sort.Strings(sorted)
	n := min(maxTasks, len(sorted))
	if n < 1 {
		n = 1
	}
	out := make([][]string, n)
	for i, name := range sorted {
		out[i%n] = append(out[i%n], name)
	}
	return out
}

// assignment is which tables one task reads: those the connector dealt
// it, plus tables created since that hash to it. No SDK call asks the
// worker to split the tables again, so tasks share new tables out among
// themselves by name, each table to exactly one task.
type assignment struct {
	mine  map[string]bool
	known map[string]bool
	index uint32
	count uint32
}

func (a assignment) has(name string) bool {
	if a.known[name] {
		return a.mine[name]
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(name))
	return h.Sum32()%a.count == a.index
}

// taskConfigs builds the task configs for a table split.
func taskConfigs(cfg map[string]string, split [][]string) ([]map[string]string, error) {
	var known []string
	for _, s := range split {
		known = append(known, s...)
	}
	kj, err := json.Marshal(known)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]string, len(split))
	for i, s := range split {
		mj, err := json.Marshal(s)
		if err != nil {
			return nil, err
		}
		tc := make(map[string]string, len(cfg)+4)
		for k, v := range cfg {
			tc[k] = v
		}
		tc[keyTaskTables], tc[keyTaskKnown] = string(mj), string(kj)
		tc[keyTaskIndex], tc[keyTaskCount] = strconv.Itoa(i), strconv.Itoa(len(split))
		out[i] = tc
	}
	return out, nil
}

// parseAssignment reads a task's share back; a config without one (a
// task config written by hand) reads every table.
func parseAssignment(cfg map[string]string) (assignment, error) {
	a := assignment{mine: map[string]bool{}, known: map[string]bool{}, count: 1}
	if cfg[keyTaskCount] == "" {
		return a, nil
	}
	var mine, known []string
	if err := json.Unmarshal([]byte(cfg[keyTaskTables]), &mine); err != nil {
		return a, fmt.Errorf("%s: %w", keyTaskTables, err)
	}
	if err := json.Unmarshal([]byte(cfg[keyTaskKnown]), &known); err != nil {
		return a, fmt.Errorf("%s: %w", keyTaskKnown, err)
	}
	idx, err1 := strconv.ParseUint(cfg[keyTaskIndex], 10, 32)
	cnt, err2 := strconv.ParseUint(cfg[keyTaskCount], 10, 32)
	if err1 != nil || err2 != nil || cnt == 0 || idx >= cnt {
		return a, fmt.Errorf("task index %q of %q", cfg[keyTaskIndex], cfg[keyTaskCount])
	}
	for _, n := range mine {
		a.mine[n] = true
	}
	for _, n := range known {
		a.known[n] = true
	}
	a.index, a.count = uint32(idx), uint32(cnt)
	return a, nil
}
