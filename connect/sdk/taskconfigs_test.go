package sdk

import "testing"

func TestSameTaskConfigs(t *testing.T) {
	cfg := map[string]string{"topics": "t", "file": "/x"}
	out := SameTaskConfigs(cfg, 3)
	if len(out) != 3 {
		t.Fatalf("%d configs, want 3", len(out))
	}
	out[0]["file"] = "/changed"
	if cfg["file"] != "/x" || out[1]["file"] != "/x" || out[2]["topics"] != "t" {
		t.Fatalf("copies share a map with each other or the input: cfg %v, out %v", cfg, out)
	}
	if got := SameTaskConfigs(nil, 0); len(got) != 1 || got[0] == nil {
		t.Fatalf("SameTaskConfigs(nil, 0) = %#v, want one empty config", got)
	}
}
