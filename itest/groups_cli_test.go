package itest

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestGroupCLIAgainstSluice: `sluice group list|describe` read a real
// Sluice broker's groups, committed offsets, end offsets and lag.
func TestGroupCLIAgainstSluice(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), "group.initial.rebalance.delay.ms=0")
	createTopic(t, b.Addr(), "cli-topic", 2, nil)
	cl := newClient(t, b.Addr())
	for i := 0; i < 10; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "cli-topic", Partition: int32(i % 2), Value: []byte("v")})
	}
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "cli-topic", Partition: 0, At: 3, LeaderEpoch: -1})
	offs.Add(kadm.Offset{Topic: "cli-topic", Partition: 1, At: 5, LeaderEpoch: -1})
	if err := admin(t, b.Addr()).CommitAllOffsets(testCtx(t, 10*time.Second), "cli-group", offs); err != nil {
		t.Fatal(err)
	}

	run := func(wantExit int, args ...string) string {
		t.Helper()
		stdout, stderr := runCLI(t, b.Addr(), wantExit, args...)
		return stdout + stderr
	}

	var list struct {
		Groups []struct {
			GroupID string `json:"group_id"`
			State   string `json:"state"`
			Type    string `json:"type"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(run(0, "group", "list", "--json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list.Groups) != 1 || list.Groups[0].GroupID != "cli-group" || list.Groups[0].State != "Empty" || list.Groups[0].Type != "classic" {
		t.Fatalf("group list: %+v", list.Groups)
	}

	var desc struct {
		Groups []struct {
			GroupID    string `json:"group_id"`
			TotalLag   int64  `json:"total_lag"`
			Partitions []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Current   *int64 `json:"current_offset"`
				End       int64  `json:"log_end_offset"`
				Lag       *int64 `json:"lag"`
			} `json:"partitions"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(run(0, "group", "describe", "cli-group", "--json")), &desc); err != nil {
		t.Fatal(err)
	}
	if len(desc.Groups) != 1 || desc.Groups[0].TotalLag != 2 || len(desc.Groups[0].Partitions) != 2 {
		t.Fatalf("group describe: %+v", desc.Groups)
	}
	for _, p := range desc.Groups[0].Partitions {
		want := map[int32]int64{0: 3, 1: 5}[p.Partition]
		if p.Topic != "cli-topic" || p.Current == nil || *p.Current != want || p.End != 5 || p.Lag == nil || *p.Lag != 5-want {
			t.Errorf("partition %d: current %v end %d lag %v", p.Partition, p.Current, p.End, p.Lag)
		}
	}
	table := run(0, "group", "describe", "cli-group")
	if !strings.Contains(table, "LOG-END-OFFSET") || !strings.Contains(table, "cli-topic") {
		t.Fatalf("describe table:\n%s", table)
	}
	if out := run(1, "group", "describe", "no-such-group"); !strings.Contains(out, "no-such-group") {
		t.Fatalf("missing group: %q", out)
	}
}
