package cli

import (
	"slices"
	"strings"
	"testing"
)

func TestGroupDelete(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 2, 2, 2)
	commitOffsetsOnly(t, brokers, "a", map[int32]int64{0: 1})
	commitOffsetsOnly(t, brokers, "b", map[int32]int64{1: 1})
	commitOffsetsOnly(t, brokers, "c", map[int32]int64{2: 1})
	consumeAll(t, brokers, "live", 6)

	// The deletable groups go; each other one gets its own stderr line.
	r := runCLI("group", "delete", "a", "live", "ghost", "b", "a", "--brokers", brokers)
	if r.code != exitError {
		t.Errorf("exit %d, want 1", r.code)
	}
	if rows := tableRows(r.stdout, "a"); len(rows) != 1 || !slices.Equal(rows[0], []string{"a", "deleted"}) {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	if rows := tableRows(r.stdout, "b"); len(rows) != 1 || !strings.HasPrefix(r.stdout, "GROUP") {
		t.Errorf("stdout:\n%s", r.stdout)
	}
	wantErr := "sluice: group \"ghost\" not found\nsluice: group \"live\": not empty: it has running consumers; stop them first\n"
	if r.stderr != wantErr {
		t.Errorf("stderr %q, want %q", r.stderr, wantErr)
	}
	if got := listedIDs(listJSON(t, "--brokers", brokers)); !slices.Equal(got, []string{"c", "live"}) {
		t.Errorf("groups left: %v, want c live", got)
	}

	r = runCLI("group", "delete", "c", "a", "--json", "--brokers", brokers)
	var doc struct {
		Groups   []string `json:"groups"`
		NotFound []string `json:"not_found"`
		Errors   []struct {
			Group string `json:"group"`
			Error string `json:"error"`
		} `json:"errors"`
	}
	decodeStrict(t, r.stdout, &doc)
	if r.code != exitError || !slices.Equal(doc.Groups, []string{"c"}) || !slices.Equal(doc.NotFound, []string{"a"}) || doc.Errors == nil || len(doc.Errors) != 0 {
		t.Errorf("json: exit %d, %+v", r.code, doc)
	}
	if r := runCLI("group", "delete", "--brokers", brokers, "--json"); r.code != exitUsage || !strings.Contains(r.stderr, "name at least one GROUP") {
		t.Errorf("no group: exit %d, stderr %q", r.code, r.stderr)
	}
	checkRuntimeFailure(t, runCLI("group", "delete", "x", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1")
}

func TestGroupDeleteOffsets(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 3, 3, 3)
	commitOffsetsOnly(t, brokers, "app", map[int32]int64{0: 1, 1: 2, 2: 3})

	r := runCLI("group", "delete-offsets", "app", "--topic", "orders:0,2", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	rows := tableRows(r.stdout, "app")
	if want := [][]string{{"app", "orders", "0", "deleted"}, {"app", "orders", "2", "deleted"}}; !slices.EqualFunc(rows, want, slices.Equal) {
		t.Errorf("rows %q, want %q", rows, want)
	}
	wantCommitted(t, brokers, "app", map[int32]int64{1: 2})

	r = runCLI("group", "delete-offsets", "app", "--topic", "orders", "--json", "--brokers", brokers)
	var doc struct {
		Group      string `json:"group"`
		Partitions []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
		} `json:"partitions"`
		Errors []struct {
			Topic     string `json:"topic"`
			Partition int32  `json:"partition"`
			Error     string `json:"error"`
		} `json:"errors"`
	}
	decodeStrict(t, r.stdout, &doc)
	if r.code != 0 || doc.Group != "app" || len(doc.Partitions) != 3 || len(doc.Errors) != 0 {
		t.Errorf("whole topic: exit %d, %+v", r.code, doc)
	}
	wantCommitted(t, brokers, "app", map[int32]int64{})

	// Running consumers subscribed to the topic keep their offsets.
	consumeAll(t, brokers, "live", 9)
	r = runCLI("group", "delete-offsets", "live", "--topic", "orders:1", "--brokers", brokers)
	checkRuntimeFailure(t, r, `sluice: group "live", orders/1: the group's consumers are subscribed to the topic; stop them first`)

	checkRuntimeFailure(t, runCLI("group", "delete-offsets", "ghost", "--topic", "orders", "--brokers", brokers), `sluice: group "ghost" not found`)
	checkRuntimeFailure(t, runCLI("group", "delete-offsets", "app", "--topic", "nope", "--brokers", brokers), `sluice: topic "nope" not found`)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"app"}, "say which offsets: --topic"},
		{[]string{"--topic", "orders"}, "name exactly one GROUP, got 0"},
	} {
		r := runCLI(append([]string{"group", "delete-offsets"}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%q: exit %d, stderr %q", tc.args, r.code, r.stderr)
		}
	}
}
