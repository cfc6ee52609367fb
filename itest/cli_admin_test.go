package itest

import (
	"bytes"
	"encoding/json"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// describedOffsets runs `group describe --json` and returns the committed
// offset per partition of topic (-1 when none).
func describedOffsets(t *testing.T, addr, group, topic string) map[int32]int64 {
	t.Helper()
	out, _ := runCLI(t, addr, 0, "group", "describe", group, "--json")
	var doc struct {
		Groups []struct {
			Partitions []struct {
				Topic     string `json:"topic"`
				Partition int32  `json:"partition"`
				Current   *int64 `json:"current_offset"`
			} `json:"partitions"`
		} `json:"groups"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || len(doc.Groups) != 1 {
		t.Fatalf("describe %s: %v\n%s", group, err, out)
	}
	got := map[int32]int64{}
	for _, p := range doc.Groups[0].Partitions {
		if p.Topic != topic {
			continue
		}
		got[p.Partition] = -1
		if p.Current != nil {
			got[p.Partition] = *p.Current
		}
	}
	return got
}

func sameOffsets(got map[int32]int64, want ...int64) bool {
	if len(got) != len(want) {
		return false
	}
	for p, o := range want {
		if got[int32(p)] != o {
			return false
		}
	}
	return true
}

// TestCLIGroupOffsetsAgainstSluice: `consume --group` commits what it
// printed, `group reset-offsets` moves the offsets (only with --execute,
// and never under running consumers), and `group delete` /
// `delete-offsets` remove them, on a real broker.
func TestCLIGroupOffsetsAgainstSluice(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), "group.initial.rebalance.delay.ms=0")
	run := func(wantExit int, args ...string) (string, string) {
		t.Helper()
		return runCLI(t, b.Addr(), wantExit, args...)
	}
	createTopic(t, b.Addr(), "cli-grp", 2, nil)
	cl := newClient(t, b.Addr())
	for i := range 10 {
		produceSync(t, cl, &kgo.Record{Topic: "cli-grp", Partition: int32(i % 2), Value: []byte(strconv.Itoa(i))})
	}

	out, _ := run(0, "consume", "cli-grp", "--group", "g1", "-e")
	if n := strings.Count(out, "\n"); n != 10 {
		t.Fatalf("group consume printed %d records, want 10:\n%s", n, out)
	}
	if got := describedOffsets(t, b.Addr(), "g1", "cli-grp"); !sameOffsets(got, 5, 5) {
		t.Fatalf("committed after consume: %v, want 5 5", got)
	}

	// Dry run: the plan, and nothing changes.
	out, stderr := run(0, "group", "reset-offsets", "g1", "--topic", "cli-grp", "--to-earliest")
	if !strings.Contains(out, "NEW-OFFSET") || len(strings.Fields(strings.Split(out, "\n")[1])) != 5 || !strings.Contains(stderr, "dry run") {
		t.Errorf("dry run output:\n%s%s", out, stderr)
	}
	if got := describedOffsets(t, b.Addr(), "g1", "cli-grp"); !sameOffsets(got, 5, 5) {
		t.Errorf("a dry run changed the offsets: %v", got)
	}
	out, _ = run(0, "group", "reset-offsets", "g1", "--all-topics", "--to-offset", "3", "--execute", "--json")
	var reset struct {
		Executed   bool `json:"executed"`
		Partitions []struct {
			Old *int64 `json:"old_offset"`
			New int64  `json:"new_offset"`
		} `json:"partitions"`
	}
	if err := json.Unmarshal([]byte(out), &reset); err != nil || !reset.Executed || len(reset.Partitions) != 2 ||
		*reset.Partitions[0].Old != 5 || reset.Partitions[0].New != 3 {
		t.Errorf("reset --execute: %v %s", err, out)
	}
	if got := describedOffsets(t, b.Addr(), "g1", "cli-grp"); !sameOffsets(got, 3, 3) {
		t.Errorf("after reset: %v, want 3 3", got)
	}
	// The group resumes from the new position.
	out, _ = run(0, "consume", "cli-grp", "--group", "g1", "-e", "--format", `%p:%o `)
	if fs := strings.Fields(out); len(fs) != 4 || !strings.Contains(out, "0:3 ") || !strings.Contains(out, "1:4 ") {
		t.Errorf("consume after reset: %q, want offsets 3 and 4 of both partitions", out)
	}

	// A running consumer blocks resets and deletion.
	member := newClient(t, b.Addr(), kgo.ConsumerGroup("g2"), kgo.ConsumeTopics("cli-grp"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	got := 0
	ctx := testCtx(t, 30*time.Second)
	for got < 10 && ctx.Err() == nil {
		got += member.PollFetches(ctx).NumRecords()
	}
	if _, stderr := run(1, "group", "reset-offsets", "g2", "--topic", "cli-grp", "--to-latest", "--execute"); !strings.Contains(stderr, "active member") {
		t.Errorf("reset of an active group: %q", stderr)
	}
	if _, stderr := run(1, "group", "delete", "g2"); stderr != "sluice: group \"g2\": not empty: it has running consumers; stop them first\n" {
		t.Errorf("delete of an active group: %q", stderr)
	}
	member.Close()

	run(0, "group", "reset-offsets", "g3", "--topic", "cli-grp", "--to-latest", "--execute")
	out, _ = run(0, "group", "delete-offsets", "g3", "--topic", "cli-grp:0")
	if !strings.Contains(out, "deleted") {
		t.Errorf("delete-offsets: %q", out)
	}
	if got := describedOffsets(t, b.Addr(), "g3", "cli-grp"); len(got) != 1 || got[1] != 5 {
		t.Errorf("offsets after delete-offsets: %v, want only partition 1 at 5", got)
	}

	out, stderr = run(1, "group", "delete", "g1", "ghost", "g3")
	if !strings.Contains(out, "g1") || !strings.Contains(out, "g3") || stderr != "sluice: group \"ghost\" not found\n" {
		t.Errorf("delete: stdout %q stderr %q", out, stderr)
	}
	var list struct {
		Groups []struct {
			GroupID string `json:"group_id"`
		} `json:"groups"`
	}
	out, _ = run(0, "group", "list", "--json")
	if err := json.Unmarshal([]byte(out), &list); err != nil {
		t.Fatal(err)
	}
	for _, g := range list.Groups {
		if g.GroupID == "g1" || g.GroupID == "g3" {
			t.Errorf("group %s still listed after delete", g.GroupID)
		}
	}
}

// TestCLIClusterInfoAndCompletion: `cluster info` reports the real broker
// and its API versions; the completion script covers every command.
func TestCLIClusterInfoAndCompletion(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "cli-info", 3, nil)
	out, _ := runCLI(t, b.Addr(), 0, "cluster", "info", "--json")
	var info struct {
		Controller *int32 `json:"controller"`
		Brokers    []struct {
			NodeID      int32  `json:"node_id"`
			Host        string `json:"host"`
			Port        int32  `json:"port"`
			APIVersions []struct {
				Key  int16  `json:"key"`
				Name string `json:"name"`
				Max  int16  `json:"max_version"`
			} `json:"api_versions"`
		} `json:"brokers"`
		TopicCount     int `json:"topic_count"`
		PartitionCount int `json:"partition_count"`
	}
	if err := json.Unmarshal([]byte(out), &info); err != nil {
		t.Fatal(err)
	}
	if len(info.Brokers) != 1 || net.JoinHostPort(info.Brokers[0].Host, strconv.Itoa(int(info.Brokers[0].Port))) != b.Addr() ||
		info.TopicCount != 1 || info.PartitionCount != 3 {
		t.Fatalf("cluster info: %s", out)
	}
	names := map[string]bool{}
	for _, v := range info.Brokers[0].APIVersions {
		names[v.Name] = true
	}
	for _, api := range []string{"Produce", "Fetch", "ListOffsets", "Metadata", "ApiVersions", "OffsetCommit", "DeleteGroups", "OffsetDelete"} {
		if !names[api] {
			t.Errorf("API %s missing from %v", api, names)
		}
	}
	table, _ := runCLI(t, b.Addr(), 0, "cluster", "info")
	if !strings.Contains(table, b.Addr()) || !strings.Contains(table, "1 (3 partitions)") {
		t.Errorf("cluster info table:\n%s", table)
	}

	script, err := exec.Command(sluiceBin, "completion", "bash").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"broker", "engines", "topic", "group", "produce", "consume", "cluster", "completion",
		"reset-offsets", "delete-offsets", "add-partitions", "--key-separator", "--exit-at-end", "--to-datetime"} {
		if !bytes.Contains(script, []byte(cmd)) {
			t.Errorf("completion script lacks %q", cmd)
		}
	}
	if out, err := exec.Command("bash", "-n", "-c", string(script)).CombinedOutput(); err != nil {
		t.Errorf("bash rejects the script: %v\n%s", err, out)
	}
}

// TestCLIErrorsAgainstSluice: the errors users will meet come out as one
// clean stderr line with exit 1, or exit 2 and a usage hint for a bad
// command line.
func TestCLIErrorsAgainstSluice(t *testing.T) {
	// Without auto-creation, so that producing to a missing topic fails
	// (cli_produce_test.go covers the default, which creates it).
	b := startBroker(t, "std", t.TempDir(), "auto.create.topics.enable=false")
	createTopic(t, b.Addr(), "cli-err", 1, nil)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"produce", "nope"}, `sluice: topic "nope" not found`},
		{[]string{"consume", "nope", "-e"}, `sluice: topic "nope" not found`},
		{[]string{"group", "reset-offsets", "g", "--topic", "nope", "--to-earliest"}, `sluice: topic "nope" not found`},
		{[]string{"group", "reset-offsets", "ghost", "--all-topics", "--to-earliest"}, `sluice: group "ghost" not found`},
		{[]string{"group", "delete", "ghost"}, `sluice: group "ghost" not found`},
		{[]string{"group", "delete-offsets", "ghost", "--topic", "cli-err"}, `sluice: group "ghost" not found`},
		{[]string{"consume", "cli-err", "--partition", "4"}, `sluice: topic "cli-err" has no partition 4 (it has 1)`},
	} {
		if _, stderr := runCLI(t, b.Addr(), 1, tc.args...); !strings.HasPrefix(stderr, tc.want) {
			t.Errorf("%q: stderr %q, want %q", tc.args, stderr, tc.want)
		}
	}

	// A closed loopback port: nothing listens there.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	for _, args := range [][]string{
		{"produce", "cli-err"},
		{"consume", "cli-err"},
		{"cluster", "info"},
		{"group", "reset-offsets", "g", "--all-topics", "--to-latest"},
		{"group", "delete", "g"},
	} {
		start := time.Now()
		_, stderr := runCLI(t, closed, 1, args...)
		if !strings.HasPrefix(stderr, "sluice: cannot reach brokers "+closed+": ") || !strings.Contains(stderr, "connection refused") {
			t.Errorf("%q against a closed port: %q", args, stderr)
		}
		if d := time.Since(start); d > 8*time.Second {
			t.Errorf("%q took %s to fail", args, d)
		}
	}

	for _, args := range [][]string{
		{"consume", "cli-err", "--partition", "0", "--group", "g"},
		{"group", "reset-offsets", "g", "--topic", "cli-err", "--to-earliest", "--to-latest"},
		{"produce", "cli-err", "--acks", "2"},
	} {
		if _, stderr := runCLI(t, b.Addr(), 2, args...); !strings.Contains(stderr, "cannot be combined") && !strings.Contains(stderr, "--acks") ||
			!strings.Contains(stderr, "usage: sluice") {
			t.Errorf("%q: stderr %q", args, stderr)
		}
	}
}
