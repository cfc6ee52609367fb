// Package deploy holds no code, only the deployment files beside this test
// (Grafana dashboard, Prometheus scrape config and alert rules, systemd
// unit). The tests check those files the way Grafana and Prometheus would
// read them, and check every query against the metrics a real broker or
// Connect worker exports, so a renamed metric breaks the build here instead
// of leaving an empty panel or an alert that can never fire.
package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/netio"
)

const (
	dashboardFile = "grafana/sluice.json"
	alertsFile    = "prometheus/alerts.yml"
	scrapeFile    = "prometheus/prometheus.yml"
)

// The subset of Grafana's dashboard JSON model the tests look at.
type dashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Panels        []panel
	Templating    struct{ List []variable }
	Time          struct{ From, To string }
	Refresh       string
}

type panel struct {
	ID          int
	Type        string
	Title       string
	Collapsed   bool
	GridPos     *gridPos
	Datasource  *datasourceRef
	Targets     []target
	Panels      []panel // a collapsed row keeps its panels here
	FieldConfig struct{ Defaults struct{ Unit string } }
}

type gridPos struct{ X, Y, W, H int }

type target struct {
	RefID      string `json:"refId"`
	Expr       string
	Datasource *datasourceRef
}

type datasourceRef struct{ Type, UID string }

type variable struct {
	Name       string
	Type       string
	Query      json.RawMessage // a string, or {"query": "..."} from Grafana 10's editor
	Multi      bool
	IncludeAll bool
	Datasource *datasourceRef
}

// query is the variable's query text, whichever form it is stored in.
func (v variable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var obj struct{ Query string }
	_ = json.Unmarshal(v.Query, &obj)
	return obj.Query
}

// The datasource every panel and target must use: whatever the
// "datasource" variable selects, never a uid of one Grafana instance.
var wantDatasource = datasourceRef{Type: "prometheus", UID: "${datasource}"}

// Panel types of Grafana 10/11 core; a typo here renders as "Panel plugin
// not found".
var panelTypes = map[string]bool{
	"row": true, "timeseries": true, "stat": true, "table": true, "gauge": true, "bargauge": true,
	"text": true, "heatmap": true, "histogram": true, "piechart": true, "state-timeline": true,
	"status-history": true, "barchart": true, "logs": true, "news": true, "dashlist": true,
	"alertlist": true, "annolist": true, "nodeGraph": true, "xychart": true, "trend": true,
	"canvas": true, "geomap": true, "flamegraph": true, "traces": true, "datagrid": true,
}

// Unit ids used here, from Grafana's value format registry; an unknown id
// silently shows raw numbers.
var units = map[string]bool{
	"none": true, "short": true, "percentunit": true, "percent": true, "bytes": true, "decbytes": true,
	"Bps": true, "binBps": true, "s": true, "ms": true, "µs": true, "ns": true,
	"ops": true, "reqps": true, "mps": true, "cps": true, "eps": true, "recps": true,
}

// Variables Grafana defines itself.
var builtinVariables = map[string]bool{
	"__rate_interval": true, "__interval": true, "__interval_ms": true, "__range": true,
	"__range_s": true, "__range_ms": true, "__from": true, "__to": true, "__dashboard": true,
	"__org": true, "__user": true, "__name": true, "__all": true, "timeFilter": true,
}

// The sections the dashboard promises, top to bottom.
var wantRows = []string{"Overview", "Replication", "Throughput", "Latency", "Consumer lag", "Disk", "Log cleaner", "Network & io_uring", "Process", "Connect"}

func loadDashboard(t *testing.T) (dashboard, map[string]json.RawMessage) {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(raw, &top); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d, top
}

// layout is the panels in dashboard order, each with the layout group it
// is placed in: panels of a collapsed row are positioned among themselves.
type placed struct {
	panel
	group int
}

func layout(panels []panel) []placed {
	var out []placed
	group := 0
	for _, p := range panels {
		out = append(out, placed{p, 0})
		if p.Type == "row" && p.Collapsed {
			group++
			for _, c := range p.Panels {
				out = append(out, placed{c, group})
			}
		}
	}
	return out
}

func overlap(a, b gridPos) bool {
	return a.X < b.X+b.W && b.X < a.X+a.W && a.Y < b.Y+b.H && b.Y < a.Y+a.H
}

// templateRef matches $var, ${var}, ${var:format} and the old [[var]].
var templateRef = regexp.MustCompile(`\$\{(\w+)(?:[:.][^}]*)?\}|\$(\w+)|\[\[(\w+)(?::\w+)?\]\]`)

func templateRefs(s string) []string {
	var refs []string
	for _, m := range templateRef.FindAllStringSubmatch(s, -1) {
		refs = append(refs, m[1]+m[2]+m[3])
	}
	return refs
}

func TestDashboardSchema(t *testing.T) {
	d, top := loadDashboard(t)
	for _, f := range []string{"title", "uid", "schemaVersion", "panels", "templating", "time", "refresh"} {
		if _, ok := top[f]; !ok {
			t.Errorf("dashboard lacks top-level field %q", f)
		}
	}
	if _, ok := top["id"]; ok && string(top["id"]) != "null" {
		t.Errorf(`"id" is %s; an exported dashboard has id null so importing never overwrites another one`, top["id"])
	}
	if d.Title == "" || d.UID == "" || len(d.UID) > 40 {
		t.Errorf("title %q, uid %q: both needed, uid at most 40 characters", d.Title, d.UID)
	}
	if d.SchemaVersion != 39 {
		t.Errorf("schemaVersion = %d, want 39", d.SchemaVersion)
	}
	if d.Time.From == "" || d.Time.To == "" {
		t.Errorf("time range %+v incomplete", d.Time)
	}
	if !regexp.MustCompile(`^(\d+[smhd])?$`).MatchString(d.Refresh) {
		t.Errorf("refresh %q is not an interval", d.Refresh)
	}

	vars := map[string]variable{}
	for _, v := range d.Templating.List {
		if _, dup := vars[v.Name]; dup || v.Name == "" {
			t.Errorf("template variable name %q empty or repeated", v.Name)
		}
		vars[v.Name] = v
	}
	if v := vars["datasource"]; v.Type != "datasource" || v.query() != "prometheus" {
		t.Errorf("variable datasource: type %q query %q, want a prometheus datasource variable", v.Type, v.query())
	}
	// Filter variables and the label each lists. worker lists the
	// instances of Connect workers, which the broker's instance variable
	// (from sluice_build_info) does not.
	for name, wantLabel := range map[string]string{"topic": "topic", "group": "group", "worker": "instance", "connector": "connector"} {
		v, ok := vars[name]
		if !ok {
			t.Errorf("no %q template variable", name)
			continue
		}
		if v.Type != "query" || !v.Multi || !v.IncludeAll || !strings.HasPrefix(v.query(), "label_values(") {
			t.Errorf("variable %s: type %q multi %v includeAll %v query %q; want a multi-value label_values query with All",
				name, v.Type, v.Multi, v.IncludeAll, v.query())
		}
		if _, label := labelValuesSelector(v.query()); label != wantLabel {
			t.Errorf("variable %s lists label %q, want %q", name, label, wantLabel)
		}
	}
	// checkRefs reports template variables that the dashboard does not define.
	checkRefs := func(where, s string) {
		for _, r := range templateRefs(s) {
			if _, ok := vars[r]; !ok && !builtinVariables[r] {
				t.Errorf("%s: $%s is not a template variable: %s", where, r, s)
			}
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if v.Datasource == nil || *v.Datasource != wantDatasource {
			t.Errorf("variable %s: datasource %+v, want %+v", v.Name, v.Datasource, wantDatasource)
		}
		checkRefs("variable "+v.Name, v.query())
	}

	all := layout(d.Panels)
	if len(all) == 0 || all[0].Type != "row" {
		t.Fatal("the dashboard must start with a row")
	}
	ids := map[int]string{}
	var rows []string
	for i, p := range all {
		where := fmt.Sprintf("panel %d %q", p.ID, p.Title)
		if p.ID <= 0 {
			t.Errorf("%s: id must be positive", where)
		} else if other, dup := ids[p.ID]; dup {
			t.Errorf("%s: id also used by %q", where, other)
		}
		ids[p.ID] = p.Title
		if !panelTypes[p.Type] {
			t.Errorf("%s: unknown panel type %q", where, p.Type)
		}
		if p.Title == "" {
			t.Errorf("panel %d has no title", p.ID)
		}
		g := p.GridPos
		if g == nil {
			t.Errorf("%s: no gridPos", where)
			continue
		}
		if g.W < 1 || g.W > 24 || g.X < 0 || g.X+g.W > 24 || g.H <= 0 || g.Y < 0 {
			t.Errorf("%s: gridPos %+v outside the 24-column grid", where, *g)
		}
		for _, q := range all[:i] {
			if q.group == p.group && q.GridPos != nil && overlap(*q.GridPos, *g) {
				t.Errorf("%s at %+v overlaps panel %d %q at %+v", where, *g, q.ID, q.Title, *q.GridPos)
			}
		}
		if p.Type == "row" {
			rows = append(rows, p.Title)
			if g.W != 24 || g.H != 1 || g.X != 0 {
				t.Errorf("%s: a row spans the width with height 1, got %+v", where, *g)
			}
			continue
		}
		if p.Datasource == nil || *p.Datasource != wantDatasource {
			t.Errorf("%s: datasource %+v, want %+v", where, p.Datasource, wantDatasource)
		}
		if u := p.FieldConfig.Defaults.Unit; u != "" && !units[u] {
			t.Errorf("%s: unknown unit %q", where, u)
		}
		if len(p.Targets) == 0 {
			t.Errorf("%s: no queries", where)
		}
		refIDs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.RefID == "" || refIDs[tg.RefID] {
				t.Errorf("%s: refId %q empty or repeated", where, tg.RefID)
			}
			refIDs[tg.RefID] = true
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("%s target %s: empty expr", where, tg.RefID)
			}
			if tg.Datasource != nil && *tg.Datasource != wantDatasource {
				t.Errorf("%s target %s: datasource %+v, want %+v", where, tg.RefID, tg.Datasource, wantDatasource)
			}
			checkRefs(where+" target "+tg.RefID, tg.Expr)
		}
	}
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows %q, want %q", rows, wantRows)
	}
}

var labelValuesQuery = regexp.MustCompile(`^label_values\((?:(.*),)?\s*(\w+)\s*\)$`)

// labelValuesSelector splits Grafana's label_values(selector, label) into
// its parts; other variable queries come back whole as the selector.
func labelValuesSelector(q string) (selector, label string) {
	m := labelValuesQuery.FindStringSubmatch(strings.TrimSpace(q))
	if m == nil {
		return q, ""
	}
	return m[1], m[2]
}

// exportedMetrics starts a broker in-process, drives the traffic that makes
// its per-topic, per-group and per-API series appear (a produce, a group
// consume with a commit, a request that fails), scrapes /metrics and
// returns the metric family names. The io_uring engine is used where the
// kernel allows it, since only it exports sluice_uring_*.
func exportedMetrics(t *testing.T) map[string]bool {
	t.Helper()
	engine := netio.EngineUring
	if err := netio.UringSupported(); err != nil {
		engine = netio.EngineStd
	}
	cfg, err := config.Load("", []string{
		"listeners=PLAINTEXT://127.0.0.1:0", "log.dirs=" + t.TempDir(), "admin.listener=127.0.0.1:0",
		"netio.engine=" + engine, "group.initial.rebalance.delay.ms=0",
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := broker.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	defer func() {
		if err := b.Shutdown(ctx); err != nil {
			t.Errorf("broker shutdown: %v", err)
		}
	}()
	if err := b.Listen(); err != nil {
		t.Fatal(err)
	}
	admin := b.AdminAddr()
	if admin == nil {
		t.Fatal("broker has no admin listener")
	}

	const topic, group, n = "deploy-metrics", "deploy-metrics-group", 10
	newClient := func(opts ...kgo.Opt) *kgo.Client {
		cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(b.Addr().String()), kgo.RetryTimeout(10 * time.Second)}, opts...)...)
		if err != nil {
			t.Fatal(err)
		}
		return cl
	}
	prod := newClient(kgo.DefaultProduceTopic(topic), kgo.AllowAutoTopicCreation())
	defer prod.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, kgo.StringRecord(fmt.Sprintf("record %d", i)))
	}
	if err := prod.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}

	cons := newClient(kgo.ConsumerGroup(group), kgo.ConsumeTopics(topic), kgo.DisableAutoCommit(),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	defer cons.Close()
	for got := 0; got < n; {
		fs := cons.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("consume after %d records: %v", got, err)
		}
		got += fs.NumRecords()
	}
	if err := cons.CommitUncommittedOffsets(ctx); err != nil {
		t.Fatalf("commit: %v", err)
	}

	// A Kafka error answered to a client, for sluice_request_errors_total.
	resp, err := kadm.NewClient(prod).DeleteTopics(ctx, "deploy-no-such-topic")
	if err != nil {
		t.Fatal(err)
	}
	if r := resp["deploy-no-such-topic"]; r.Err != kerr.UnknownTopicOrPartition {
		t.Fatalf("deleting a missing topic: %v, want %v", r.Err, kerr.UnknownTopicOrPartition)
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+admin.String()+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	hr, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape: %v", err)
	}
	defer hr.Body.Close()
	if hr.StatusCode != http.StatusOK {
		t.Fatalf("scrape: %s", hr.Status)
	}
	parser := expfmt.NewTextParser(model.LegacyValidation)
	families, err := parser.TextToMetricFamilies(hr.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	names := map[string]bool{}
	for name := range families {
		names[name] = true
	}
	return names
}

// followerOnly are the metrics a single broker cannot export: their series
// are per followed partition, and a broker alone follows none. The broker
// test TestReplicationMetricsCluster checks them on three brokers.
var followerOnly = map[string]bool{"sluice_replica_fetcher_lag": true}

// afterCleaning are the log cleaner's metrics that have no series until it
// has measured a compacted partition (at its first choice after the
// partition exists, log.cleaner.backoff.ms after the last) or finished a
// pass on one. The broker started here lives too short for the first and
// writes too little for the second (its __consumer_offsets is one active
// segment, never cleaned). The broker test TestCompactedTopicEndToEnd
// scrapes the cleaner's metrics after passes.
var afterCleaning = map[string]bool{
	"sluice_log_cleaner_dirty_ratio":              true,
	"sluice_log_cleaner_seconds_since_last_clean": true,
	"sluice_log_cleaner_seconds_since_last_run":   true,
}

// known reports whether a query's metric is exported; histograms and
// summaries are queried through their _bucket, _sum and _count series.
func known(exported map[string]bool, name string) bool {
	if exported[name] {
		return true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok && exported[base] {
			return true
		}
	}
	return false
}

func TestDashboardQueriesUseKnownMetrics(t *testing.T) {
	d, _ := loadDashboard(t)
	type query struct{ where, expr string }
	var queries []query
	for _, p := range layout(d.Panels) {
		for _, tg := range p.Targets {
			queries = append(queries, query{fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Expr})
		}
	}
	for _, v := range d.Templating.List {
		// label_values(label) alone names no metric and is skipped.
		if sel, _ := labelValuesSelector(v.query()); v.Type == "query" && sel != "" {
			queries = append(queries, query{"variable " + v.Name, sel})
		}
	}
	for _, r := range loadAlerts(t) {
		queries = append(queries, query{"alert " + r.Alert, r.Expr})
	}
	if len(queries) < 20 {
		t.Fatalf("only %d queries found; the files did not load as expected", len(queries))
	}

	exported, worker := exportedMetrics(t), connectMetrics(t)
	uringErr := netio.UringSupported()
	used := map[string]bool{}
	for _, q := range queries {
		names := metricNames(q.expr)
		if len(names) == 0 {
			t.Errorf("%s names no metric: %s", q.where, q.expr)
		}
		for _, name := range names {
			used[name] = true
			switch {
			case strings.HasPrefix(name, connectPrefix):
				if !known(worker, name) {
					t.Errorf("%s: a Connect worker exports no metric %s", q.where, name)
				}
			case known(exported, name):
			case followerOnly[name], afterCleaning[name]:
			case uringErr != nil && strings.HasPrefix(name, "sluice_uring_"):
				t.Logf("%s: %s not checked, io_uring unavailable here: %v", q.where, name, uringErr)
			default:
				t.Errorf("%s: the broker exports no metric %s", q.where, name)
			}
		}
	}
	// The other direction: a Sluice metric nobody charts or alerts on is
	// probably a dashboard that fell behind the broker or the worker.
	for who, names := range map[string]map[string]bool{"the broker": exported, "a Connect worker": worker} {
		for name := range names {
			if !strings.HasPrefix(name, "sluice_") {
				continue
			}
			if !used[name] && !used[name+"_bucket"] && !used[name+"_count"] && !used[name+"_sum"] {
				t.Errorf("%s exports %s but no dashboard panel or alert uses it", who, name)
			}
		}
	}
}
