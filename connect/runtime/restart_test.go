package runtime

import (
	"testing"
	"time"
)

func TestRestartBackoffDoublesToTheCapAndResetsAfterAHealthyRun(t *testing.T) {
	p, err := parseRestartPolicy(map[string]string{"restart.backoff.ms": "100", "restart.backoff.max.ms": "500"})
	if err != nil {
		t.Fatal(err)
	}
	b := restartBackoff{policy: p}
	want := []time.Duration{100, 200, 400, 500, 500}
	for i, w := range want {
		d, ok := b.failed(time.Second)
		if !ok || d != w*time.Millisecond {
			t.Fatalf("failure %d: got %v %v, want %v", i, d, ok, w*time.Millisecond)
		}
	}
	// A run longer than the healthy period starts the backoff over.
	if d, _ := b.failed(2 * time.Minute); d != 100*time.Millisecond {
		t.Fatalf("after a healthy run: got %v, want 100ms", d)
	}
}

func TestRestartPolicyNeverAndBadValues(t *testing.T) {
	p, err := parseRestartPolicy(map[string]string{"restart.policy": "never"})
	if err != nil {
		t.Fatal(err)
	}
	b := restartBackoff{policy: p}
	if _, ok := b.failed(0); ok {
		t.Fatal("restart.policy=never restarted")
	}
	for _, cfg := range []map[string]string{
		{"restart.policy": "sometimes"},
		{"restart.backoff.ms": "-1"},
		{"restart.backoff.max.ms": "x"},
	} {
		if _, err := parseRestartPolicy(cfg); err == nil {
			t.Errorf("%v: accepted", cfg)
		}
	}
}

func TestFrameworkValidationReportsSluiceSettings(t *testing.T) {
	infos := frameworkValidation(map[string]string{
		"name": "x", "connector.class": "C", "plugin.memory.limit.bytes": "lots", "restart.policy": "maybe",
		"tasks.max": "0",
	}, "source")
	bad := map[string]bool{}
	for _, c := range infos.Configs {
		if len(c.Value.Errors) > 0 {
			bad[c.Definition.Name] = true
		}
	}
	for _, k := range []string{"plugin.memory.limit.bytes", "restart.policy", "tasks.max"} {
		if !bad[k] {
			t.Errorf("%s: no error reported (errors on %v)", k, bad)
		}
	}
	if infos.ErrorCount != len(bad) {
		t.Errorf("error_count %d, keys with errors %v", infos.ErrorCount, bad)
	}
}
