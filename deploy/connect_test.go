package deploy

import (
	"regexp"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sluice-io/sluice/connect/runtime"
)

// connectPrefix names the metrics a Connect worker (sluice connect)
// exports; the dashboard's Connect row and the sluice-connect alerts query
// them, and they are checked against the worker's registry, not the
// broker's scrape.
const connectPrefix = "sluice_connect_"

// collecting is a Registerer that remembers what it registers, so the test
// can reach the worker's metric vectors without the runtime exporting
// them.
type collecting struct {
	prometheus.Registerer
	collectors []prometheus.Collector
}

func (c *collecting) Register(col prometheus.Collector) error {
	if err := c.Registerer.Register(col); err != nil {
		return err
	}
	c.collectors = append(c.collectors, col)
	return nil
}

func (c *collecting) MustRegister(cols ...prometheus.Collector) {
	for _, col := range cols {
		if err := c.Register(col); err != nil {
			panic(err)
		}
	}
}

// connectMetrics returns the metric family names a Connect worker exports
// once it runs a task: runtime.NewMetrics registered with a registry, as
// the worker registers them with the one its admin listener serves, and
// one child of each vector created (a vector without children exports
// nothing). Each child is created with the labels connector and task, so a
// vector labelled otherwise fails here: the dashboard and the alerts
// aggregate by those two.
// workerInfoLabels are the labels of sluice_connect_worker_info, the one
// worker metric not per task.
var workerInfoLabels = prometheus.Labels{"version": "v", "group_id": "g", "mode": "distributed"}

func connectMetrics(t *testing.T) map[string]bool {
	t.Helper()
	reg := prometheus.NewRegistry()
	rec := &collecting{Registerer: reg}
	runtime.NewMetrics(rec)
	if len(rec.collectors) == 0 {
		t.Fatal("runtime.NewMetrics registered nothing")
	}
	labels := prometheus.Labels{"connector": "c", "task": "0"}
	for _, col := range rec.collectors {
		var err error
		switch v := col.(type) {
		case *prometheus.CounterVec:
			_, err = v.GetMetricWith(labels)
		case *prometheus.GaugeVec:
			if _, ierr := v.GetMetricWith(workerInfoLabels); ierr == nil {
				continue // sluice_connect_worker_info, one per worker
			}
			_, err = v.GetMetricWith(labels)
		case *prometheus.HistogramVec:
			_, err = v.GetMetricWith(labels)
		default:
			t.Errorf("connect/runtime registers a %T; teach connectMetrics to create its series", col)
			continue
		}
		if err != nil {
			t.Errorf("a connect metric is not labelled by connector and task alone: %v", err)
		}
	}
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range families {
		if !strings.HasPrefix(f.GetName(), connectPrefix) {
			t.Errorf("the worker's metric %s lacks the prefix %s the deploy files filter on", f.GetName(), connectPrefix)
		}
		names[f.GetName()] = true
	}
	if len(names) != len(rec.collectors) {
		t.Errorf("%d metric families from %d registered vectors", len(names), len(rec.collectors))
	}
	return names
}

// connectSelector matches a connect metric and its label matchers.
var connectSelector = regexp.MustCompile(connectPrefix + `\w+(\{[^}]*\})?`)

// Every Connect panel follows the dashboard's Connect worker and Connector
// variables. The broker's instance variable lists brokers only (from
// sluice_build_info, which a worker does not export), so a connect query
// filtered by it would go empty as soon as one broker is picked.
func TestConnectPanelsFollowVariables(t *testing.T) {
	d, _ := loadDashboard(t)
	n := 0
	for _, p := range layout(d.Panels) {
		for _, tg := range p.Targets {
			for _, m := range connectSelector.FindAllStringSubmatch(tg.Expr, -1) {
				n++
				for _, want := range []string{`instance=~"$worker"`, `connector=~"$connector"`} {
					if !strings.Contains(m[1], want) {
						t.Errorf("panel %q target %s: %s lacks the matcher %s", p.Title, tg.RefID, m[0], want)
					}
				}
			}
		}
	}
	if n == 0 {
		t.Error("no dashboard query selects a connect metric")
	}
}
