package cli

import (
	"strings"
	"testing"
	"time"
)

// The quorum section reads like kafka-metadata-quorum describe
// --replication: roles, log ends, lag, and ages relative to now.
func TestPrintQuorum(t *testing.T) {
	now := time.UnixMilli(1_700_000_010_000)
	q := &quorumState{LeaderID: 1, LeaderEpoch: 3, HighWatermark: 120, Replicas: []quorumMember{
		{NodeID: 1, Role: "leader", LogEndOffset: 120, Lag: 0, LastFetchMs: now.UnixMilli(), LastCaughtUpMs: now.UnixMilli()},
		{NodeID: 2, Role: "observer", LogEndOffset: 100, Lag: 20, LastFetchMs: now.UnixMilli() - 1500, LastCaughtUpMs: -1},
		{NodeID: 3, Role: "observer", LogEndOffset: -1, Lag: -1, LastFetchMs: -1, LastCaughtUpMs: -1},
	}}
	var b strings.Builder
	if err := printQuorum(&b, q, now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if !strings.Contains(out, "Metadata quorum: leader 1, epoch 3, high watermark 120") {
		t.Fatalf("no summary line:\n%s", out)
	}
	var rows [][]string
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "NODE-ID") {
			for _, r := range lines[i+1:] {
				rows = append(rows, strings.Fields(r))
			}
		}
	}
	want := [][]string{
		{"1", "leader", "120", "0", "0s", "ago", "0s", "ago"},
		{"2", "observer", "100", "20", "1.5s", "ago", "-"},
		{"3", "observer", "-", "-", "-", "-"},
	}
	if len(rows) != len(want) {
		t.Fatalf("rows %q, want %d", rows, len(want))
	}
	for i := range want {
		if strings.Join(rows[i], " ") != strings.Join(want[i], " ") {
			t.Errorf("row %d: %q, want %q", i, rows[i], want[i])
		}
	}
}
