package itest

import (
	"encoding/json"
	"testing"
)

// A consumer group that emptied keeps its protocol type across a broker
// restart: group list said "-" instead of "consumer" after one.
func TestCLIGroupListAfterRestart(t *testing.T) {
	dir := t.TempDir()
	b := startBroker(t, "std", dir)
	createTopic(t, b.Addr(), "restarted", 1, nil)
	runCLI(t, b.Addr(), 0, "consume", "restarted", "--group", "g", "-e")
	listed := func(addr string) string {
		out, _ := runCLI(t, addr, 0, "group", "list", "--json")
		var doc struct {
			Groups []struct {
				GroupID      string `json:"group_id"`
				ProtocolType string `json:"protocol_type"`
			} `json:"groups"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil {
			t.Fatalf("group list --json: %v\n%s", err, out)
		}
		for _, g := range doc.Groups {
			if g.GroupID == "g" {
				return g.ProtocolType
			}
		}
		t.Fatalf("group g not listed:\n%s", out)
		return ""
	}
	if pt := listed(b.Addr()); pt != "consumer" {
		t.Fatalf("before the restart: protocol type %q", pt)
	}
	b.Stop()
	b = startBroker(t, "std", dir)
	if pt := listed(b.Addr()); pt != "consumer" {
		t.Errorf("after the restart: protocol type %q, want consumer", pt)
	}
}
