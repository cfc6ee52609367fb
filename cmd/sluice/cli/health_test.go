package cli

import (
	"encoding/json"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

func TestClassifyPartition(t *testing.T) {
	live := map[int32]bool{1: true, 2: true, 3: true}
	for _, tc := range []struct {
		name             string
		leader           int32
		replicas, isr    []int32
		minISR           int
		want             partitionHealth
		wantLabels       string
		minISRUnknownToo bool
	}{
		{"healthy", 1, []int32{1, 2, 3}, []int32{1, 2, 3}, 2, partitionHealth{}, "", false},
		{"one follower out", 1, []int32{1, 2, 3}, []int32{1, 2}, 2, partitionHealth{UnderReplicated: true}, "under-replicated", false},
		{"below min ISR", 1, []int32{1, 2, 3}, []int32{1}, 2, partitionHealth{UnderReplicated: true, UnderMinISR: true}, "under-min-isr,under-replicated", false},
		{"at min ISR is not under", 1, []int32{1, 2}, []int32{1}, 1, partitionHealth{UnderReplicated: true}, "under-replicated", false},
		{"min ISR unknown", 1, []int32{1, 2, 3}, []int32{1}, 0, partitionHealth{UnderReplicated: true}, "under-replicated", false},
		{"no leader", -1, []int32{1, 2, 3}, []int32{1, 2, 3}, 2, partitionHealth{UnderMinISR: true, Unavailable: true}, "offline,under-min-isr", false},
		{"leader on a dead broker", 7, []int32{7, 2, 3}, []int32{7, 2, 3}, 2, partitionHealth{Unavailable: true}, "offline", false},
	} {
		got := classifyPartition(tc.leader, tc.replicas, tc.isr, tc.minISR, live)
		if got != tc.want || strings.Join(got.labels(), ",") != tc.wantLabels {
			t.Errorf("%s: %+v %q, want %+v %q", tc.name, got, got.labels(), tc.want, tc.wantLabels)
		}
	}
}

// fakePart is a partition state kfake cannot produce by itself (kfake keeps
// every replica in sync), served by fakeStates.
type fakePart struct {
	leader        int32
	replicas, isr []int32
	elr, lastELR  []int32
}

// fakeStates makes the cluster answer Metadata and DescribeTopicPartitions
// from states instead of its own data, for the topics of states (which
// must exist in kfake too, so the other requests of a command work). The
// brokers, cluster ID and controller stay kfake's.
func fakeStates(t *testing.T, c *kfake.Cluster, brokers string, states map[string][]fakePart) {
	t.Helper()
	ids := map[string]kadm.TopicID{}
	for name, ps := range states {
		ids[name] = topicDetail(t, brokers, name).ID
		// kfake's own leaders must agree, or it refuses ListOffsets.
		for i, fp := range ps {
			if fp.leader >= 0 {
				if err := c.MoveTopicPartition(name, int32(i), fp.leader); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	var mdBrokers []kmsg.MetadataResponseBroker
	for i, addr := range c.ListenAddrs() { // kfake numbers its brokers 0.. in this order
		host, port, _ := net.SplitHostPort(addr)
		p, _ := strconv.Atoi(port)
		b := kmsg.NewMetadataResponseBroker()
		b.NodeID, b.Host, b.Port = int32(i), host, int32(p)
		mdBrokers = append(mdBrokers, b)
	}
	requested := func(all bool, names []string) []string {
		if all {
			return slices.Sorted(func(yield func(string) bool) {
				for n := range states {
					if !yield(n) {
						return
					}
				}
			})
		}
		return names
	}
	c.ControlKey(int16(kmsg.Metadata), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.MetadataRequest)
		resp := req.ResponseKind().(*kmsg.MetadataResponse)
		resp.Brokers, resp.ClusterID, resp.ControllerID = mdBrokers, kmsg.StringPtr("fake"), 0
		var names []string
		for _, rt := range req.Topics {
			if rt.Topic != nil {
				names = append(names, *rt.Topic)
			}
		}
		for _, n := range requested(req.Topics == nil, names) {
			st := kmsg.NewMetadataResponseTopic()
			st.Topic, st.TopicID = kmsg.StringPtr(n), ids[n]
			ps, ok := states[n]
			if !ok {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			for i, fp := range ps {
				sp := kmsg.NewMetadataResponseTopicPartition()
				sp.Partition, sp.Leader, sp.Replicas, sp.ISR = int32(i), fp.leader, fp.replicas, fp.isr
				sp.LeaderEpoch = 0
				if fp.leader < 0 {
					sp.ErrorCode = kerr.LeaderNotAvailable.Code
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.DescribeTopicPartitions), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.DescribeTopicPartitionsRequest)
		resp := req.ResponseKind().(*kmsg.DescribeTopicPartitionsResponse)
		var names []string
		for _, rt := range req.Topics {
			names = append(names, rt.Topic)
		}
		for _, n := range requested(len(names) == 0, names) {
			st := kmsg.NewDescribeTopicPartitionsResponseTopic()
			st.Topic, st.TopicID = kmsg.StringPtr(n), ids[n]
			ps, ok := states[n]
			if !ok {
				st.ErrorCode = kerr.UnknownTopicOrPartition.Code
			}
			for i, fp := range ps {
				sp := kmsg.NewDescribeTopicPartitionsResponseTopicPartition()
				sp.Partition, sp.LeaderID, sp.Replicas, sp.ISR = int32(i), fp.leader, fp.replicas, fp.isr
				sp.LeaderEpoch = 0
				sp.EligibleLeaderReplicas, sp.LastKnownELR = fp.elr, fp.lastELR
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
}

// troubled is a topic of three partitions with min.insync.replicas=2:
// 0 has lost one follower (under-replicated), 1 has lost both (also under
// min ISR), 2 has no leader (offline and under min ISR) but a full ISR.
var troubled = []fakePart{
	{leader: 0, replicas: []int32{0, 1, 2}, isr: []int32{0, 1}},
	{leader: 1, replicas: []int32{1, 2, 0}, isr: []int32{1}, elr: []int32{2}, lastELR: []int32{0}},
	{leader: -1, replicas: []int32{2, 0, 1}, isr: []int32{2, 0, 1}},
}

var calm = []fakePart{{leader: 0, replicas: []int32{0, 1}, isr: []int32{0, 1}}}

// troubledCluster seeds kfake with "orders" (min.insync.replicas=2) and
// "calm", and answers their metadata from troubled and calm.
func troubledCluster(t *testing.T, opts ...kfake.Opt) (*kfake.Cluster, string) {
	t.Helper()
	// The fake metadata names the cluster "fake": brokers check that a
	// client connecting to them believes in the same cluster ID.
	c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(3), kfake.SeedTopics(3, "orders"), kfake.ClusterID("fake")}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	adm := kadm.NewClient(newClient(t, brokers))
	if _, err := adm.CreateTopic(testCtx(t), 1, 2, nil, "calm"); err != nil {
		t.Fatal(err)
	}
	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "min.insync.replicas", Value: kadm.StringPtr("2")}}
	if _, err := adm.AlterTopicConfigs(testCtx(t), set, "orders"); err != nil {
		t.Fatal(err)
	}
	fakeStates(t, c, brokers, map[string][]fakePart{"orders": troubled, "calm": calm})
	return c, brokers
}

type jsonPartitionState struct {
	Topic       string  `json:"topic"`
	Partition   int32   `json:"partition"`
	Leader      int32   `json:"leader"`
	LeaderEpoch int32   `json:"leader_epoch"`
	Replicas    []int32 `json:"replicas"`
	ISR         []int32 `json:"isr"`
	MinISR      *int    `json:"min_insync_replicas"`
}

type jsonClusterDescription struct {
	jsonClusterInfo
	UnderReplicated []jsonPartitionState `json:"under_replicated_partitions"`
	UnderMinISR     []jsonPartitionState `json:"under_min_isr_partitions"`
	Offline         []jsonPartitionState `json:"offline_partitions"`
	Quorum          *json.RawMessage     `json:"quorum"`
}

func partitionNames(ps []jsonPartitionState) string {
	var out []string
	for _, p := range ps {
		out = append(out, p.Topic+"-"+strconv.Itoa(int(p.Partition)))
	}
	return strings.Join(out, " ")
}

func TestClusterDescribe(t *testing.T) {
	_, brokers := troubledCluster(t)

	r := runCLI("cluster", "describe", "--json", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var d jsonClusterDescription
	decodeStrict(t, r.stdout, &d)
	if d.ClusterID == nil || *d.ClusterID != "fake" || d.Controller == nil || *d.Controller != 0 || len(d.Brokers) != 3 ||
		d.TopicCount != 2 || d.PartitionCount != 4 {
		t.Errorf("summary %+v", d.jsonClusterInfo)
	}
	for _, tc := range []struct {
		list []jsonPartitionState
		want string
	}{
		{d.UnderReplicated, "orders-0 orders-1"},
		{d.UnderMinISR, "orders-1 orders-2"},
		{d.Offline, "orders-2"},
	} {
		if got := partitionNames(tc.list); got != tc.want {
			t.Errorf("list %q, want %q", got, tc.want)
		}
	}
	if d.Quorum != nil {
		t.Errorf("quorum %s from a cluster that serves no DescribeQuorum, want null", *d.Quorum)
	}
	if p := d.UnderMinISR[0]; p.Leader != 1 || !slices.Equal(p.Replicas, []int32{1, 2, 0}) || !slices.Equal(p.ISR, []int32{1}) ||
		p.MinISR == nil || *p.MinISR != 2 {
		t.Errorf("orders-1 as %+v", p)
	}

	r = runCLI("cluster", "describe", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("text: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"Under-replicated partitions:  2", "Under-min-ISR partitions:     2", "Offline partitions:           1", "NODE-ID"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text lacks %q:\n%s", want, r.stdout)
		}
	}
	wantRows := [][]string{
		{"orders", "0", "0", "0,1,2", "0,1", "2", "under-replicated"},
		{"orders", "1", "1", "1,2,0", "1", "2", "under-min-isr,under-replicated"},
		{"orders", "2", "-", "2,0,1", "2,0,1", "2", "offline,under-min-isr"},
	}
	if rows := tableRows(r.stdout, "orders"); !slices.EqualFunc(rows, wantRows, slices.Equal) {
		t.Errorf("rows %q, want %q:\n%s", rows, wantRows, r.stdout)
	}
	if len(tableRows(r.stdout, "calm")) != 0 {
		t.Errorf("healthy topic listed:\n%s", r.stdout)
	}
}

func TestClusterDescribeHealthy(t *testing.T) {
	_, brokers := testCluster(t)
	r := runCLI("cluster", "describe", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" || !strings.Contains(r.stdout, "Offline partitions:           0") ||
		len(tableRows(r.stdout, "TOPIC")) != 0 {
		t.Errorf("exit %d, stderr %q, stdout:\n%s", r.code, r.stderr, r.stdout)
	}
	checkRuntimeFailure(t, runCLI("cluster", "describe", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1")
	if r := runCLI("cluster", "describe", "extra"); r.code != exitUsage || !strings.Contains(r.stderr, "usage: sluice cluster describe") {
		t.Errorf("extra argument: exit %d, stderr %q", r.code, r.stderr)
	}
}

func describedPartitions(doc jsonTopicDescribed) string {
	var out []string
	for _, tp := range doc.Topics {
		for _, p := range tp.Partitions {
			out = append(out, tp.Topic+"-"+strconv.Itoa(int(p.Partition)))
		}
	}
	return strings.Join(out, " ")
}

func TestTopicDescribeFilters(t *testing.T) {
	_, brokers := troubledCluster(t)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--under-replicated-partitions"}, "orders-0 orders-1"},
		{[]string{"--under-min-isr-partitions"}, "orders-1 orders-2"},
		{[]string{"--unavailable-partitions"}, "orders-2"},
		{[]string{"--unavailable-partitions", "--under-replicated-partitions"}, "orders-0 orders-1 orders-2"},
		{[]string{"calm", "--under-replicated-partitions"}, ""},
		{[]string{"orders", "calm", "--unavailable-partitions"}, "orders-2"},
	} {
		var doc jsonTopicDescribed
		topicOK(t, brokers, &doc, append([]string{"describe"}, tc.args...)...)
		if got := describedPartitions(doc); got != tc.want {
			t.Errorf("%q: %q, want %q", tc.args, got, tc.want)
		}
	}

	r := runCLI("topic", "describe", "--under-min-isr-partitions", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("text: exit %d, stderr %q", r.code, r.stderr)
	}
	header := []string{"TOPIC", "PARTITION", "LEADER", "LEADER-EPOCH", "REPLICAS", "ISR", "ELR", "LAST-KNOWN-ELR", "OFFLINE", "MIN-ISR"}
	if h := tableRows(r.stdout, "TOPIC"); len(h) != 1 || !slices.Equal(h[0], header) {
		t.Errorf("header %q:\n%s", h, r.stdout)
	}
	wantRows := [][]string{
		{"orders", "1", "1", "0", "1,2,0", "1", "2", "0", "-", "2"},
		{"orders", "2", "-", "0", "2,0,1", "2,0,1", "-", "-", "-", "2"},
	}
	if rows := tableRows(r.stdout, "orders"); !slices.EqualFunc(rows, wantRows, slices.Equal) {
		t.Errorf("rows %q, want %q:\n%s", rows, wantRows, r.stdout)
	}
	// Nothing selected: nothing printed, success.
	if r := runCLI("topic", "describe", "calm", "--unavailable-partitions", "--brokers", brokers); r.code != 0 || r.stdout != "" || r.stderr != "" {
		t.Errorf("no match: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
}

// TestTopicDescribeELR checks that the ELR fields come from
// DescribeTopicPartitions, and that a broker without it (Kafka before 3.8)
// gets a Metadata-only describe with null ELR rather than an error.
func TestTopicDescribeELR(t *testing.T) {
	_, brokers := troubledCluster(t)
	var doc jsonTopicDescribed
	topicOK(t, brokers, &doc, "describe", "orders")
	p1 := doc.Topics[0].Partitions[1]
	if !slices.Equal(p1.ELR, []int32{2}) || !slices.Equal(p1.LastKnownELR, []int32{0}) || !slices.Equal(p1.ISR, []int32{1}) {
		t.Errorf("orders-1: %+v", p1)
	}
	if p2 := doc.Topics[0].Partitions[2]; p2.Leader != -1 || p2.Error != nil || p2.HighWatermark != nil {
		t.Errorf("leaderless orders-2: %+v, want no leader, no error, no offsets", p2)
	}
	r := runCLI("topic", "describe", "orders", "--brokers", brokers)
	want := []string{"1", "1", "0", "1,2,0", "1", "2", "0", "-", "0", "0"}
	if rows := tableRows(r.stdout, "1"); r.code != 0 || len(rows) != 1 || !slices.Equal(rows[0], want) {
		t.Errorf("exit %d, row %q, want %q:\n%s", r.code, rows, want, r.stdout)
	}

	var dtp atomic.Int32
	c, old := troubledCluster(t, kfake.MaxVersions(kversion.V3_7_0()))
	c.ControlKey(int16(kmsg.DescribeTopicPartitions), func(kmsg.Request) (kmsg.Response, error, bool) {
		dtp.Add(1)
		return nil, nil, false
	})
	doc = jsonTopicDescribed{}
	topicOK(t, old, &doc, "describe", "orders")
	p1 = doc.Topics[0].Partitions[1]
	if p1.ELR != nil || p1.LastKnownELR != nil || !slices.Equal(p1.ISR, []int32{1}) || p1.Leader != 1 {
		t.Errorf("orders-1 from Metadata: %+v, want ISR [1] and null ELR", p1)
	}
	doc = jsonTopicDescribed{}
	topicOK(t, old, &doc, "describe", "--under-replicated-partitions")
	if got := describedPartitions(doc); got != "orders-0 orders-1" {
		t.Errorf("filter from Metadata: %q", got)
	}
	if n := dtp.Load(); n != 0 {
		t.Errorf("%d DescribeTopicPartitions requests to a broker that does not list the API", n)
	}
}
