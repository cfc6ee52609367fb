package deploy

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"text/template"

	"gopkg.in/yaml.v3"

	"github.com/sluice-io/sluice/connect/runtime"
)

// ruleFile is Prometheus's rule file format.
type ruleFile struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []rule `yaml:"rules"`
	} `yaml:"groups"`
}

type rule struct {
	Alert         string            `yaml:"alert"`
	Record        string            `yaml:"record"`
	Expr          string            `yaml:"expr"`
	For           string            `yaml:"for"`
	KeepFiringFor string            `yaml:"keep_firing_for"`
	Labels        map[string]string `yaml:"labels"`
	Annotations   map[string]string `yaml:"annotations"`
}

func loadYAML(t *testing.T, path string, into any) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true) // a misspelt key is silently ignored by Prometheus
	if err := dec.Decode(into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func loadAlerts(t *testing.T) []rule {
	t.Helper()
	var f ruleFile
	loadYAML(t, alertsFile, &f)
	var rules []rule
	for _, g := range f.Groups {
		rules = append(rules, g.Rules...)
	}
	return rules
}

var promDuration = regexp.MustCompile(`^(\d+(ms|s|m|h|d|w|y))+$`)

func TestAlertRules(t *testing.T) {
	var f ruleFile
	loadYAML(t, alertsFile, &f)
	if len(f.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	// Prometheus renders annotations as Go templates with these
	// definitions in front and its own functions; stubs stand in for them.
	const prelude = `{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}`
	stub := func(any) string { return "" }
	funcs := template.FuncMap{"humanize": stub, "humanize1024": stub, "humanizeDuration": stub,
		"humanizePercentage": stub, "humanizeTimestamp": stub, "title": stub, "toUpper": stub, "toLower": stub}
	seen := map[string]bool{}
	for _, g := range f.Groups {
		if g.Name == "" || len(g.Rules) == 0 {
			t.Errorf("group %q: needs a name and rules", g.Name)
		}
		for _, r := range g.Rules {
			where := "rule " + r.Alert
			if r.Alert == "" || r.Record != "" || seen[r.Alert] {
				t.Errorf("%s: every rule is an alert with a unique name (record %q)", where, r.Record)
			}
			seen[r.Alert] = true
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("%s: empty expr", where)
			}
			if refs := templateRefs(r.Expr); len(refs) > 0 {
				t.Errorf("%s: expr uses Grafana variables %q", where, refs)
			}
			if !promDuration.MatchString(r.For) {
				t.Errorf("%s: for %q is not a Prometheus duration", where, r.For)
			}
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q, want critical, warning or info", where, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary annotation", where)
			}
			for k, text := range r.Annotations {
				if _, err := template.New(k).Funcs(funcs).Parse(prelude + text); err != nil {
					t.Errorf("%s: annotation %s: %v", where, k, err)
				}
			}
		}
	}
	for _, name := range []string{"SluiceBrokerDown", "SluiceNotReady", "SluiceConsumerLagGrowing", "SluiceProduceLatencyHigh", "SluiceDiskGrowingFast",
		"SluiceUnderReplicatedPartitions", "SluiceUnderMinISR", "SluiceOfflinePartitions", "SluiceNoActiveController", "SluiceFencedBrokers",
		"SluiceLogCleanerUncleanablePartitions", "SluiceLogCleanerStalled", "SluiceCompactedPartitionNotCleaned",
		"SluiceConnectTaskFailed", "SluiceConnectTaskRestarting", "SluiceConnectOffsetCommitsFailing", "SluiceConnectDeadLetterQueue"} {
		if !seen[name] {
			t.Errorf("no alert %s", name)
		}
	}
}

func TestScrapeConfig(t *testing.T) {
	var cfg struct {
		Global struct {
			ScrapeInterval     string `yaml:"scrape_interval"`
			EvaluationInterval string `yaml:"evaluation_interval"`
		} `yaml:"global"`
		RuleFiles     []string `yaml:"rule_files"`
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	loadYAML(t, scrapeFile, &cfg)
	if cfg.Global.ScrapeInterval != "15s" {
		t.Errorf("scrape_interval %q, want 15s", cfg.Global.ScrapeInterval)
	}
	for _, rf := range cfg.RuleFiles {
		if _, err := os.Stat(filepath.Join(filepath.Dir(scrapeFile), rf)); err != nil {
			t.Errorf("rule file %s: %v", rf, err)
		}
	}
	if !slices.Contains(cfg.RuleFiles, filepath.Base(alertsFile)) {
		t.Errorf("rule_files %q does not load %s", cfg.RuleFiles, alertsFile)
	}
	// The example scrapes each kind of process at its default admin
	// listener, so it works as shipped against a broker and a worker
	// started without configuration.
	worker, err := runtime.LoadWorkerConfig("", nil)
	if err != nil {
		t.Fatal(err)
	}
	wantTargets := map[string]string{"sluice": "127.0.0.1:9644", "sluice-connect": worker.Raw["admin.listener"]}
	targets := map[string][]string{}
	for _, sc := range cfg.ScrapeConfigs {
		if _, ok := wantTargets[sc.JobName]; !ok {
			t.Errorf("unexpected job %q", sc.JobName)
			continue
		}
		if _, dup := targets[sc.JobName]; dup {
			t.Errorf("job %q defined twice", sc.JobName)
		}
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s: metrics_path %q; the admin listener serves /metrics", sc.JobName, sc.MetricsPath)
		}
		targets[sc.JobName] = []string{}
		for _, s := range sc.StaticConfigs {
			targets[sc.JobName] = append(targets[sc.JobName], s.Targets...)
		}
	}
	for job, want := range wantTargets {
		if !slices.Equal(targets[job], []string{want}) {
			t.Errorf("job %s targets %q, want the default admin listener %s", job, targets[job], want)
		}
	}
}
