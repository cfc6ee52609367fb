package cli

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

type jsonReset struct {
	Group      string `json:"group"`
	Executed   bool   `json:"executed"`
	Partitions []struct {
		Topic     string `json:"topic"`
		Partition int32  `json:"partition"`
		OldOffset *int64 `json:"old_offset"`
		NewOffset int64  `json:"new_offset"`
	} `json:"partitions"`
}

// resetJSON runs reset-offsets --json, requiring success, and returns the
// rows as "partition:old->new" with "-" for no old offset.
func resetJSON(t *testing.T, brokers string, args ...string) (jsonReset, []string) {
	t.Helper()
	r := runCLI(append([]string{"group", "reset-offsets", "--json", "--brokers", brokers}, args...)...)
	if r.code != 0 {
		t.Fatalf("reset %q: exit %d, stderr %q", args, r.code, r.stderr)
	}
	var doc jsonReset
	decodeStrict(t, r.stdout, &doc)
	var rows []string
	for _, p := range doc.Partitions {
		old := "-"
		if p.OldOffset != nil {
			old = fmt.Sprint(*p.OldOffset)
		}
		rows = append(rows, fmt.Sprintf("%s/%d:%s->%d", p.Topic, p.Partition, old, p.NewOffset))
	}
	return doc, rows
}

func wantCommitted(t *testing.T, brokers, group string, want map[int32]int64) {
	t.Helper()
	if got := committedOffsets(t, brokers, group); !maps.Equal(got, want) {
		t.Errorf("group %s committed %v, want %v", group, got, want)
	}
}

func TestResetOffsets(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 10, 10, 10) // record i is stamped (i+1) seconds
	commitOffsetsOnly(t, brokers, "app", map[int32]int64{0: 4, 1: 9})
	before := map[int32]int64{0: 4, 1: 9}

	// Dry run (the default): the table, and nothing changes.
	r := runCLI("group", "reset-offsets", "app", "--topic", "orders", "--to-earliest", "--brokers", brokers)
	if r.code != 0 || r.stderr != "dry run: nothing was changed; add --execute to commit these offsets\n" {
		t.Fatalf("dry run: exit %d, stderr %q", r.code, r.stderr)
	}
	header := []string{"GROUP", "TOPIC", "PARTITION", "OLD-OFFSET", "NEW-OFFSET"}
	if h := tableRows(r.stdout, "GROUP"); len(h) != 1 || !slices.Equal(h[0], header) {
		t.Errorf("header %q in:\n%s", h, r.stdout)
	}
	rows := tableRows(r.stdout, "app")
	wantRows := [][]string{{"app", "orders", "0", "4", "0"}, {"app", "orders", "1", "9", "0"}, {"app", "orders", "2", "-", "0"}}
	if !slices.EqualFunc(rows, wantRows, slices.Equal) {
		t.Errorf("rows %q, want %q", rows, wantRows)
	}
	doc, got := resetJSON(t, brokers, "app", "--topic", "orders:1", "--to-latest", "--dry-run")
	if doc.Group != "app" || doc.Executed || !slices.Equal(got, []string{"orders/1:9->10"}) {
		t.Errorf("dry run json: %+v %q", doc, got)
	}
	wantCommitted(t, brokers, "app", before)

	for _, tc := range []struct {
		args      []string
		rows      []string
		committed map[int32]int64
	}{
		{[]string{"--topic", "orders:0,1", "--shift-by", "-3"}, []string{"orders/0:4->1", "orders/1:9->6"}, map[int32]int64{0: 1, 1: 6}},
		{[]string{"--all-topics", "--shift-by", "100"}, []string{"orders/0:1->10", "orders/1:6->10"}, map[int32]int64{0: 10, 1: 10}}, // clamped to the end
		{[]string{"--topic", "orders:2", "--to-offset", "7"}, []string{"orders/2:-->7"}, map[int32]int64{0: 10, 1: 10, 2: 7}},
		{[]string{"--topic", "orders:0", "--to-offset", "500"}, []string{"orders/0:10->10"}, map[int32]int64{0: 10, 1: 10, 2: 7}},
		{[]string{"--topic", "orders", "--to-datetime", "1970-01-01T00:00:05Z"}, []string{"orders/0:10->4", "orders/1:10->4", "orders/2:7->4"}, map[int32]int64{0: 4, 1: 4, 2: 4}},
		{[]string{"--topic", "orders:1", "--to-datetime", "@99000"}, []string{"orders/1:4->10"}, map[int32]int64{0: 4, 1: 10, 2: 4}},
		{[]string{"--all-topics", "--to-earliest"}, []string{"orders/0:4->0", "orders/1:10->0", "orders/2:4->0"}, map[int32]int64{0: 0, 1: 0, 2: 0}},
	} {
		doc, got := resetJSON(t, brokers, append([]string{"app", "--execute"}, tc.args...)...)
		if !doc.Executed || !slices.Equal(got, tc.rows) {
			t.Errorf("%q: executed %v, rows %q, want %q", tc.args, doc.Executed, got, tc.rows)
		}
		wantCommitted(t, brokers, "app", tc.committed)
	}

	// Offsets below the log start move up to it.
	if _, err := kadm.NewClient(newClient(t, brokers)).DeleteRecords(testCtx(t), kadm.Offsets{"orders": {2: {Topic: "orders", Partition: 2, At: 3}}}); err != nil {
		t.Fatal(err)
	}
	if _, got := resetJSON(t, brokers, "app", "--topic", "orders:2", "--to-offset", "1", "--execute"); !slices.Equal(got, []string{"orders/2:0->3"}) {
		t.Errorf("below log start: %q", got)
	}

	// Shifting needs a committed offset everywhere; nothing is changed
	// when one is missing.
	commitOffsetsOnly(t, brokers, "partial", map[int32]int64{0: 5})
	checkRuntimeFailure(t, runCLI("group", "reset-offsets", "partial", "--topic", "orders", "--shift-by", "1", "--execute", "--brokers", brokers),
		"cannot shift orders/1: the group has no committed offset there (and 1 more partition); nothing was changed")
	wantCommitted(t, brokers, "partial", map[int32]int64{0: 5})

	// A group that does not exist yet is created by --execute, as Kafka does.
	if _, got := resetJSON(t, brokers, "fresh", "--topic", "orders:1", "--to-offset", "2", "--execute"); !slices.Equal(got, []string{"orders/1:-->2"}) {
		t.Errorf("new group: %q", got)
	}
	wantCommitted(t, brokers, "fresh", map[int32]int64{1: 2})
}

func TestResetOffsetsRefusals(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 2, 2, 2)
	consumeAll(t, brokers, "live", 6) // stays a member until the test ends
	commitOffsetsOnly(t, brokers, "empty-group", map[int32]int64{0: 1})

	reset := func(args ...string) result {
		return runCLI(append([]string{"group", "reset-offsets", "--brokers", brokers}, args...)...)
	}
	r := reset("live", "--topic", "orders", "--to-earliest", "--execute")
	checkRuntimeFailure(t, r, `sluice: group "live" is `)
	if !strings.Contains(r.stderr, "with 1 active member(s): offsets can only be reset while the group is empty") {
		t.Errorf("stderr %q does not explain the refusal", r.stderr)
	}
	// Refused in a dry run too: the answer would be wrong by the time the
	// consumers commit.
	checkRuntimeFailure(t, reset("live", "--all-topics", "--to-latest"), "active member(s)")
	checkRuntimeFailure(t, reset("ghost", "--all-topics", "--to-latest"), `sluice: group "ghost" not found`)
	checkRuntimeFailure(t, reset("empty-group", "--topic", "nope", "--to-latest"), `sluice: topic "nope" not found`)
	checkRuntimeFailure(t, reset("empty-group", "--topic", "orders:3", "--to-latest"), `topic "orders" has no partition 3 (it has 3)`)
	checkRuntimeFailure(t, reset("empty-group", "--topic", "orders", "--to-latest", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1")
	wantCommitted(t, brokers, "empty-group", map[int32]int64{0: 1})

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"g", "--topic", "t"}, "say where to: one of --to-earliest"},
		{[]string{"g", "--topic", "t", "--to-earliest", "--shift-by", "2"}, "--shift-by and --to-earliest cannot be combined"},
		{[]string{"g", "--to-earliest"}, "say which partitions"},
		{[]string{"g", "--topic", "t", "--all-topics", "--to-earliest"}, "--topic and --all-topics cannot be combined"},
		{[]string{"g", "--topic", "t", "--to-earliest", "--dry-run", "--execute"}, "--dry-run and --execute cannot be combined"},
		{[]string{"g", "--topic", "t", "--to-offset", "-1"}, "--to-offset must not be negative"},
		{[]string{"g", "--topic", "t", "--to-datetime", "May 1st"}, "--to-datetime:"},
		{[]string{"g", "h", "--topic", "t", "--to-latest"}, "name exactly one GROUP, got 2"},
		{[]string{"g", "--topic", "t:x", "--to-latest"}, "not a partition number"},
	} {
		r := runCLI(append([]string{"group", "reset-offsets"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage: sluice group reset-offsets") {
			t.Errorf("%q: exit %d, stderr %q; want 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}
