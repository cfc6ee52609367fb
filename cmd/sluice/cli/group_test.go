package cli

import (
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/sluice-io/sluice/internal/testkit"
)

// wantRow is an expected offsets-table row; -1 stands for "-".
type wantRow struct {
	partition         int32
	current, end, lag int64
	assigned          bool
}

func checkPartitions(t *testing.T, g jsonGroup, memberID, clientID string, want []wantRow) {
	t.Helper()
	if len(g.Partitions) != len(want) {
		t.Fatalf("group %s: %d partition rows, want %d: %+v", g.GroupID, len(g.Partitions), len(want), g.Partitions)
	}
	opt := func(v int64) *int64 {
		if v < 0 {
			return nil
		}
		return &v
	}
	str := func(p *int64) string {
		if p == nil {
			return "null"
		}
		return fmt.Sprint(*p)
	}
	for i, w := range want {
		p := g.Partitions[i]
		if p.Topic != "orders" || p.Partition != w.partition {
			t.Errorf("row %d is %s/%d, want orders/%d", i, p.Topic, p.Partition, w.partition)
		}
		for _, c := range []struct {
			name      string
			got, want *int64
		}{
			{"current_offset", p.CurrentOffset, opt(w.current)},
			{"log_end_offset", p.LogEndOffset, opt(w.end)},
			{"lag", p.Lag, opt(w.lag)},
		} {
			if str(c.got) != str(c.want) {
				t.Errorf("orders/%d %s = %s, want %s", w.partition, c.name, str(c.got), str(c.want))
			}
		}
		wantMember, wantClient := "", ""
		if w.assigned {
			wantMember, wantClient = memberID, clientID
		}
		if p.MemberID != wantMember || p.ClientID != wantClient {
			t.Errorf("orders/%d member %q client %q, want %q %q", w.partition, p.MemberID, p.ClientID, wantMember, wantClient)
		}
		if w.assigned && !strings.Contains(p.Host, "127.0.0.1") {
			t.Errorf("orders/%d host %q, want the consumer's loopback address", w.partition, p.Host)
		}
		if p.Error != nil {
			t.Errorf("orders/%d error %q", w.partition, *p.Error)
		}
	}
}

// checkTable checks the text offsets table carries the same figures, in
// the kafka-consumer-groups.sh column order.
func checkTable(t *testing.T, out, memberID, clientID string, want []wantRow) {
	t.Helper()
	header := []string{"TOPIC", "PARTITION", "CURRENT-OFFSET", "LOG-END-OFFSET", "LAG", "MEMBER-ID", "CLIENT-ID", "HOST"}
	if h := tableRows(out, "TOPIC"); len(h) != 1 || !slices.Equal(h[0], header) {
		t.Errorf("offsets table header %q, want %q in:\n%s", h, header, out)
	}
	rows := tableRows(out, "orders")
	if len(rows) != len(want) {
		t.Fatalf("%d orders rows, want %d:\n%s", len(rows), len(want), out)
	}
	cell := func(v int64) string {
		if v < 0 {
			return "-"
		}
		return fmt.Sprint(v)
	}
	for i, w := range want {
		wantMember, wantClient := "-", "-"
		if w.assigned {
			wantMember, wantClient = memberID, clientID
		}
		wantCells := []string{"orders", fmt.Sprint(w.partition), cell(w.current), cell(w.end), cell(w.lag), wantMember, wantClient}
		if got := rows[i][:7]; !slices.Equal(got, wantCells) {
			t.Errorf("row %d = %q, want %q", i, got, wantCells)
		}
		if len(rows[i]) != 8 {
			t.Errorf("row %d has %d cells, want 8 (with HOST): %q", i, len(rows[i]), rows[i])
		}
	}
}

// describeOne runs "group describe --json" for one group and decodes it.
func describeOne(t *testing.T, brokers, group string) (jsonGroup, result) {
	t.Helper()
	r := runCLI("group", "describe", group, "--brokers", brokers, "--json")
	if r.code != 0 {
		t.Fatalf("describe %s: exit %d, stderr %q", group, r.code, r.stderr)
	}
	var doc jsonDescribed
	decodeStrict(t, r.stdout, &doc)
	if len(doc.Groups) != 1 || doc.Groups[0].GroupID != group || len(doc.NotFound) != 0 {
		t.Fatalf("describe %s: got %+v", group, doc)
	}
	return doc.Groups[0], r
}

// waitStable waits until the group reports Stable with one member owning
// all three partitions; joins and KIP-848 reconciliation settle
// asynchronously.
func waitStable(t *testing.T, brokers, group string) jsonGroup {
	t.Helper()
	var g jsonGroup
	testkit.EventuallyNil(t, settle, func() error {
		g, _ = describeOne(t, brokers, group)
		if g.State != "Stable" || len(g.Members) != 1 || len(g.Members[0].Assignment) != 1 ||
			len(g.Members[0].Assignment[0].Partitions) != 3 {
			return fmt.Errorf("group %s not settled: %+v", group, g)
		}
		return nil
	})
	return g
}

func listJSON(t *testing.T, args ...string) jsonListed {
	t.Helper()
	r := runCLI(append([]string{"group", "list", "--json"}, args...)...)
	if r.code != 0 {
		t.Fatalf("list %v: exit %d, stderr %q", args, r.code, r.stderr)
	}
	var doc jsonListed
	decodeStrict(t, r.stdout, &doc)
	return doc
}

func listedIDs(doc jsonListed) []string {
	var ids []string
	for _, g := range doc.Groups {
		ids = append(ids, g.GroupID)
	}
	return ids
}

func TestClassicGroup(t *testing.T) {
	_, brokers := testCluster(t)
	produce(t, brokers, "orders", 5, 3, 2)
	cl := consumeAll(t, brokers, "classic-app", 10, kgo.ClientID("classic-client"), kgo.InstanceID("inst-1"))
	commit(t, cl, map[int32]int64{0: 3, 1: 3}) // partition 2: nothing committed
	coord := coordinatorOf(t, brokers, "classic-app")

	g := waitStable(t, brokers, "classic-app")
	if g.Type != "classic" || g.ProtocolType != "consumer" || g.Assignor != "cooperative-sticky" {
		t.Errorf("type %q protocol type %q assignor %q, want classic consumer cooperative-sticky", g.Type, g.ProtocolType, g.Assignor)
	}
	if g.Coordinator.NodeID == nil || *g.Coordinator.NodeID != coord || g.Coordinator.Host != "127.0.0.1" || g.Coordinator.Port == 0 {
		t.Errorf("coordinator %+v, want node %d on 127.0.0.1", g.Coordinator, coord)
	}
	if g.Epoch != nil || g.AssignmentEpoch != nil {
		t.Errorf("classic group has epoch %v/%v, want null", g.Epoch, g.AssignmentEpoch)
	}
	m := g.Members[0]
	if m.ClientID != "classic-client" || m.InstanceID == nil || *m.InstanceID != "inst-1" || m.MemberID == "" ||
		!strings.Contains(m.Host, "127.0.0.1") || m.MemberEpoch != nil || m.TargetAssignment != nil {
		t.Errorf("member %+v", m)
	}
	if a := m.Assignment[0]; a.Topic != "orders" || !slices.Equal(a.Partitions, []int32{0, 1, 2}) {
		t.Errorf("assignment %+v, want orders [0 1 2]", a)
	}
	want := []wantRow{
		{0, 3, 5, 2, true},
		{1, 3, 3, 0, true},
		{2, -1, 2, -1, true}, // no commit: end offset still shown, lag unknown
	}
	checkPartitions(t, g, m.MemberID, "classic-client", want)
	if g.TotalLag != 2 {
		t.Errorf("total_lag %d, want 2", g.TotalLag)
	}

	r := runCLI("group", "describe", "classic-app", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("describe: exit %d, stderr %q", r.code, r.stderr)
	}
	checkTable(t, r.stdout, m.MemberID, "classic-client", want)
	for _, line := range []string{"Group:", "State:", "Type:", "Coordinator:", "Members:", "Total lag:"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("describe output lacks %q:\n%s", line, r.stdout)
		}
	}
	if rows := tableRows(r.stdout, m.MemberID); len(rows) < 1 || !slices.Contains(rows[0], "orders:0,1,2") || !slices.Contains(rows[0], "inst-1") {
		t.Errorf("member row %q lacks instance id or assignment:\n%s", rows, r.stdout)
	}

	// Listing: the group, its columns, and the server-side filters.
	doc := listJSON(t, "--brokers", brokers)
	if len(doc.Groups) != 1 {
		t.Fatalf("list: %+v", doc)
	}
	lg := doc.Groups[0]
	if lg.GroupID != "classic-app" || lg.State != "Stable" || lg.Type != "classic" || lg.ProtocolType != "consumer" ||
		lg.Coordinator.NodeID == nil || *lg.Coordinator.NodeID != coord {
		t.Errorf("listed %+v, want classic-app Stable classic consumer on node %d", lg, coord)
	}
	for _, f := range []struct {
		args []string
		want []string
	}{
		{[]string{"--type", "classic"}, []string{"classic-app"}},
		{[]string{"--type", "consumer"}, nil},
		{[]string{"--state", "stable"}, []string{"classic-app"}}, // case-insensitive
		{[]string{"--state", "Empty,Dead"}, nil},
		{[]string{"--state", "Empty", "--state", "Stable", "--type", "CLASSIC"}, []string{"classic-app"}},
	} {
		if got := listedIDs(listJSON(t, append(f.args, "--brokers", brokers)...)); !slices.Equal(got, f.want) {
			t.Errorf("list %v = %v, want %v", f.args, got, f.want)
		}
	}
	r = runCLI("group", "list", "--brokers", brokers)
	if r.code != 0 {
		t.Fatalf("list: exit %d, stderr %q", r.code, r.stderr)
	}
	rows := tableRows(r.stdout, "classic-app")
	wantCells := []string{"classic-app", "Stable", "classic", "consumer", fmt.Sprintf("(%d)", coord)}
	if len(rows) != 1 || len(rows[0]) != 6 || !slices.Equal(append(rows[0][:4:4], rows[0][5]), wantCells) {
		t.Errorf("list rows %q, want %q:\n%s", rows, wantCells, r.stdout)
	}
	if !strings.HasPrefix(r.stdout, "GROUP") {
		t.Errorf("list output has no header:\n%s", r.stdout)
	}
}

func TestConsumerProtocolGroup(t *testing.T) {
	_, brokers := testCluster(t)
	produce(t, brokers, "orders", 5, 3, 2)
	cl := consumeAll(t, brokers, "next-app", 10,
		kgo.ClientID("next-client"), kgo.ServerSideBalancer(), kgo.Balancers(kgo.RangeBalancer()))
	commit(t, cl, map[int32]int64{0: 5, 1: 1})

	g := waitStable(t, brokers, "next-app")
	if g.Type != "consumer" || g.ProtocolType != "consumer" || g.Assignor != "range" {
		t.Fatalf("type %q protocol type %q assignor %q: the group did not run KIP-848 with the range assignor", g.Type, g.ProtocolType, g.Assignor)
	}
	if g.Epoch == nil || *g.Epoch < 1 || g.AssignmentEpoch == nil || *g.AssignmentEpoch < 1 {
		t.Errorf("epochs %v/%v, want positive", g.Epoch, g.AssignmentEpoch)
	}
	if g.Coordinator.NodeID == nil || *g.Coordinator.NodeID != coordinatorOf(t, brokers, "next-app") {
		t.Errorf("coordinator %+v", g.Coordinator)
	}
	m := g.Members[0]
	if m.ClientID != "next-client" || m.MemberID == "" || m.InstanceID != nil || m.MemberEpoch == nil || *m.MemberEpoch < 1 {
		t.Errorf("member %+v", m)
	}
	if a := m.Assignment[0]; a.Topic != "orders" || !slices.Equal(a.Partitions, []int32{0, 1, 2}) {
		t.Errorf("assignment %+v, want orders [0 1 2] (topic IDs resolved to names)", a)
	}
	if len(m.TargetAssignment) != 1 || !slices.Equal(m.TargetAssignment[0].Partitions, []int32{0, 1, 2}) {
		t.Errorf("target assignment %+v", m.TargetAssignment)
	}
	want := []wantRow{
		{0, 5, 5, 0, true},
		{1, 1, 3, 2, true},
		{2, -1, 2, -1, true},
	}
	checkPartitions(t, g, m.MemberID, "next-client", want)
	if g.TotalLag != 2 {
		t.Errorf("total_lag %d, want 2", g.TotalLag)
	}

	r := runCLI("group", "describe", "--brokers", brokers, "next-app")
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("describe: exit %d, stderr %q", r.code, r.stderr)
	}
	checkTable(t, r.stdout, m.MemberID, "next-client", want)
	if !strings.Contains(r.stdout, fmt.Sprintf("%d (assignment epoch %d)", *g.Epoch, *g.AssignmentEpoch)) {
		t.Errorf("no epoch line in:\n%s", r.stdout)
	}

	if got := listedIDs(listJSON(t, "--brokers", brokers, "--type", "consumer")); !slices.Equal(got, []string{"next-app"}) {
		t.Errorf("list --type consumer = %v", got)
	}
	if got := listedIDs(listJSON(t, "--brokers", brokers, "--type", "classic")); len(got) != 0 {
		t.Errorf("list --type classic = %v", got)
	}
	lg := listJSON(t, "--brokers", brokers).Groups
	if len(lg) != 1 || lg[0].Type != "consumer" || lg[0].State != "Stable" {
		t.Errorf("list = %+v", lg)
	}

	// One call describing both kinds routes each to its own API.
	commitOffsetsOnly(t, brokers, "offsets-only", map[int32]int64{1: 2})
	r = runCLI("group", "describe", "offsets-only", "next-app", "--json", "--brokers", brokers)
	if r.code != 0 {
		t.Fatalf("describe both: exit %d, stderr %q", r.code, r.stderr)
	}
	var doc jsonDescribed
	decodeStrict(t, r.stdout, &doc)
	if len(doc.Groups) != 2 || doc.Groups[0].GroupID != "offsets-only" || doc.Groups[0].Type != "classic" ||
		doc.Groups[1].GroupID != "next-app" || doc.Groups[1].Type != "consumer" || len(doc.NotFound) != 0 {
		t.Errorf("describe both: %+v", doc)
	}
}

// commitOffsetsOnly commits offsets of topic "orders" for group without
// joining it, as admin tools do; the group then exists, Empty.
func commitOffsetsOnly(t *testing.T, brokers, group string, at map[int32]int64) {
	t.Helper()
	var offsets kadm.Offsets
	for p, o := range at {
		offsets.Add(kadm.Offset{Topic: "orders", Partition: p, At: o, LeaderEpoch: -1})
	}
	if err := kadm.NewClient(newClient(t, brokers)).CommitAllOffsets(testCtx(t), group, offsets); err != nil {
		t.Fatal(err)
	}
}

// Brokers older than ListGroups v5 (Kafka < 3.8), or without ListGroups at
// all, still get groups described; only the type filter is refused rather
// than silently ignored.
func TestOlderBrokers(t *testing.T) {
	old := kversion.V3_7_0()
	noList := kversion.V3_8_0()
	noList.SetMaxKeyVersion(int16(kmsg.ListGroups), -1)
	for _, tc := range []struct {
		name     string
		versions *kversion.Versions
		listErr  string // expected "group list" failure, or "" if it works
	}{
		{"ListGroups v4", old, ""},
		{"no ListGroups", noList, "listing groups failed on broker"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(kfake.NumBrokers(2), kfake.SeedTopics(3, "orders"), kfake.MaxVersions(tc.versions))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(c.Close)
			brokers := strings.Join(c.ListenAddrs(), ",")
			produce(t, brokers, "orders", 5, 3, 2)
			commitOffsetsOnly(t, brokers, "legacy", map[int32]int64{0: 1})

			g, _ := describeOne(t, brokers, "legacy")
			if g.Type != "classic" || g.State != "Empty" {
				t.Errorf("described %+v", g)
			}
			checkPartitions(t, g, "", "", []wantRow{{0, 1, 5, 4, false}})
			if r := runCLI("group", "describe", "gone", "--brokers", brokers); r.code != 1 || r.stderr != "sluice: group \"gone\" not found\n" {
				t.Errorf("missing group: exit %d, stderr %q", r.code, r.stderr)
			}

			if tc.listErr != "" {
				checkRuntimeFailure(t, runCLI("group", "list", "--brokers", brokers), tc.listErr)
				return
			}
			lg := listJSON(t, "--brokers", brokers).Groups
			if len(lg) != 1 || lg[0].GroupID != "legacy" || lg[0].Type != "" || lg[0].State != "Empty" {
				t.Errorf("list = %+v", lg)
			}
			checkRuntimeFailure(t, runCLI("group", "list", "--type", "consumer", "--brokers", brokers), "cannot filter by group type")
		})
	}
}

// A group that only ever committed offsets (no member, as tools that
// commit for a group do) is Empty; its committed partitions still show,
// with no member.
func TestEmptyGroupAndMissingGroups(t *testing.T) {
	_, brokers := testCluster(t)
	produce(t, brokers, "orders", 5, 3, 2)
	commitOffsetsOnly(t, brokers, "offsets-only", map[int32]int64{0: 4, 2: 2})

	g, _ := describeOne(t, brokers, "offsets-only")
	if g.State != "Empty" || g.Type != "classic" || len(g.Members) != 0 {
		t.Errorf("group %+v, want Empty classic without members", g)
	}
	if g.Members == nil || g.Partitions == nil {
		t.Errorf("members/partitions are null, want []")
	}
	want := []wantRow{{0, 4, 5, 1, false}, {2, 2, 2, 0, false}}
	checkPartitions(t, g, "", "", want)

	// Several groups, one missing: the found one is described, the missing
	// one is named on stderr, and the exit code says something was wrong.
	r := runCLI("group", "describe", "offsets-only", "no-such-group", "--brokers", brokers)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	checkTable(t, r.stdout, "", "", want)
	if r.stderr != "sluice: group \"no-such-group\" not found\n" {
		t.Errorf("stderr %q", r.stderr)
	}

	r = runCLI("group", "describe", "no-such-group", "offsets-only", "ghost", "--json", "--brokers", brokers)
	if r.code != 1 {
		t.Errorf("exit %d, want 1", r.code)
	}
	var doc jsonDescribed
	decodeStrict(t, r.stdout, &doc)
	if len(doc.Groups) != 1 || doc.Groups[0].GroupID != "offsets-only" || !slices.Equal(doc.NotFound, []string{"no-such-group", "ghost"}) {
		t.Errorf("json %+v", doc)
	}
	if !strings.Contains(r.stderr, `"no-such-group" not found`) || !strings.Contains(r.stderr, `"ghost" not found`) {
		t.Errorf("stderr %q", r.stderr)
	}

	r = runCLI("group", "describe", "no-such-group", "--brokers", brokers)
	if r.code != 1 || r.stdout != "" || r.stderr != "sluice: group \"no-such-group\" not found\n" {
		t.Errorf("lone missing group: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	if got := listedIDs(listJSON(t, "--brokers", brokers, "--state", "Empty")); !slices.Equal(got, []string{"offsets-only"}) {
		t.Errorf("list --state Empty = %v", got)
	}
}
