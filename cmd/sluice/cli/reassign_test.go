package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// reassignRecorder watches what a reassign command asks of the cluster.
// kfake rejects the throttle configs (it knows no such keys), so config
// changes are recorded and answered here; reassignment requests are
// recorded and left to kfake, which accepts them.
type reassignRecorder struct {
	mu      sync.Mutex
	order   []string                     // "topic-config", "broker-config", "alter", in request order
	configs map[string]map[string]string // "topic:orders" or "broker:1" -> key -> "set=V" or "delete"
	alters  []*kmsg.AlterPartitionAssignmentsRequest
}

func recordReassign(c *kfake.Cluster) *reassignRecorder {
	rec := &reassignRecorder{configs: map[string]map[string]string{}}
	c.ControlKey(int16(kmsg.IncrementalAlterConfigs), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		req := kr.(*kmsg.IncrementalAlterConfigsRequest)
		resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
		rec.mu.Lock()
		defer rec.mu.Unlock()
		for _, r := range req.Resources {
			kind := "topic"
			if r.ResourceType == kmsg.ConfigResourceTypeBroker {
				kind = "broker"
			}
			rec.order = append(rec.order, kind+"-config")
			m := map[string]string{}
			for _, cfg := range r.Configs {
				switch cfg.Op {
				case kmsg.IncrementalAlterConfigOpSet:
					m[cfg.Name] = "set=" + *cfg.Value
				case kmsg.IncrementalAlterConfigOpDelete:
					m[cfg.Name] = "delete"
				}
			}
			rec.configs[kind+":"+r.ResourceName] = m
			sr := kmsg.NewIncrementalAlterConfigsResponseResource()
			sr.ResourceType, sr.ResourceName = r.ResourceType, r.ResourceName
			resp.Resources = append(resp.Resources, sr)
		}
		return resp, nil, true
	})
	c.ControlKey(int16(kmsg.AlterPartitionAssignments), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		rec.mu.Lock()
		defer rec.mu.Unlock()
		rec.order = append(rec.order, "alter")
		rec.alters = append(rec.alters, kr.(*kmsg.AlterPartitionAssignmentsRequest))
		return nil, nil, false
	})
	return rec
}

func (r *reassignRecorder) reset() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.order, r.configs, r.alters = nil, map[string]map[string]string{}, nil
}

// answerOngoing makes the next ListPartitionReassignments report
// partition p of orders as moving.
func answerOngoing(c *kfake.Cluster, p int32) {
	c.ControlKey(int16(kmsg.ListPartitionReassignments), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		resp := kr.ResponseKind().(*kmsg.ListPartitionReassignmentsResponse)
		st := kmsg.NewListPartitionReassignmentsResponseTopic()
		st.Topic = "orders"
		sp := kmsg.NewListPartitionReassignmentsResponseTopicPartition()
		sp.Partition, sp.Replicas, sp.AddingReplicas = p, []int32{0, 1, 2}, []int32{2}
		st.Partitions = append(st.Partitions, sp)
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
}

func writeFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// currentReplicas reads orders' replicas from the cluster, by partition.
func currentReplicas(t *testing.T, brokers string) [][]int32 {
	t.Helper()
	td := topicDetail(t, brokers, "orders")
	out := make([][]int32, len(td.Partitions))
	for p, pd := range td.Partitions {
		out[p] = pd.Replicas
	}
	return out
}

func TestReassignGenerate(t *testing.T) {
	_, brokers := testCluster(t) // orders: 3 partitions, 3 replicas on brokers 0..2
	topics := writeFile(t, `{"version":1,"topics":[{"topic":"orders"}]}`)
	r := runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "2,0,1", "--json", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var doc struct {
		Current, Proposed reassignmentPlan
	}
	decodeStrict(t, r.stdout, &doc)
	cur := currentReplicas(t, brokers)
	for p, pp := range doc.Current.Partitions {
		if pp.Topic != "orders" || pp.Partition != int32(p) || !slices.Equal(pp.Replicas, cur[p]) {
			t.Errorf("current %+v, cluster has %v", pp, cur[p])
		}
	}
	want := [][]int32{{0, 1, 2}, {1, 2, 0}, {2, 0, 1}}
	for p, pp := range doc.Proposed.Partitions {
		if !slices.Equal(pp.Replicas, want[p]) || !slices.Equal(pp.LogDirs, []string{"any", "any", "any"}) {
			t.Errorf("proposed %+v, want replicas %v", pp, want[p])
		}
	}
	if doc.Current.Version != 1 || doc.Proposed.Version != 1 || len(doc.Current.Partitions) != 3 || len(doc.Proposed.Partitions) != 3 {
		t.Errorf("plans %+v", doc)
	}

	// The text is Kafka's: headings, then each plan on one line, ready
	// to be saved as a --reassignment-json-file.
	r = runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "0,1,2", "--brokers", brokers)
	lines := strings.Split(r.stdout, "\n")
	if r.code != 0 || len(lines) != 6 || lines[0] != "Current partition replica assignment" || lines[3] != "Proposed partition reassignment configuration" {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	if p, err := parsePlan([]byte(lines[4])); err != nil || !slices.Equal(p.Partitions[1].Replicas, want[1]) {
		t.Errorf("proposed line %q: %v", lines[4], err)
	}
	if lines[4] != doc.Proposed.compact() {
		t.Errorf("text and --json disagree: %s vs %s", lines[4], doc.Proposed.compact())
	}

	r = runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "0,7", "--brokers", brokers)
	checkRuntimeFailure(t, r, "--broker-list names brokers the cluster does not have: 7")
	r = runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", topics, "--broker-list", "0,1", "--brokers", brokers)
	checkRuntimeFailure(t, r, "replication factor 3, more than the 2 brokers")
	ghost := writeFile(t, `{"topics":[{"topic":"ghost"}]}`)
	r = runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", ghost, "--broker-list", "0,1", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "ghost" not found`)
	// A bad file fails before any connection is tried.
	bad := writeFile(t, `{"topics":`)
	r = runCLI("partitions", "reassign", "--generate", "--topics-to-move-json-file", bad, "--broker-list", "0", "--brokers", "127.0.0.1:1")
	checkRuntimeFailure(t, r, "not a topics-to-move file")
}

func TestReassignExecute(t *testing.T) {
	c, brokers := testCluster(t)
	cur := currentReplicas(t, brokers)
	rec := recordReassign(c)
	var listed atomic.Int32
	c.ControlKey(int16(kmsg.ListPartitionReassignments), func(kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		listed.Add(1)
		return nil, nil, false
	})
	// orders-0 keeps cur[0][0], swaps the rest for one replica; orders-1
	// is a no-op move.
	target0 := []int32{cur[0][0], cur[0][2]}
	plan := reassignmentPlan{Version: 1, Partitions: []plannedPartition{
		newPlannedPartition("orders", 0, target0),
		newPlannedPartition("orders", 1, cur[1]),
	}}
	file := writeFile(t, plan.compact())

	r := runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", file, "--throttle", "1000", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q, stdout %q", r.code, r.stderr, r.stdout)
	}
	rollback := reassignmentPlan{Version: 1, Partitions: []plannedPartition{
		newPlannedPartition("orders", 0, cur[0]), newPlannedPartition("orders", 1, cur[1])}}
	for _, want := range []string{
		"Current partition replica assignment\n\n" + rollback.compact() + "\n\nSave this to use as the --reassignment-json-file option during rollback\n",
		"The inter-broker throttle limit was set to 1000 B/s\n",
		"Successfully started partition reassignments for orders-0,orders-1\n",
	} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("stdout lacks %q:\n%s", want, r.stdout)
		}
	}
	// Topics first, then brokers, then the move, as Kafka's tool does.
	if !slices.Equal(rec.order, []string{"topic-config", "broker-config", "broker-config", "broker-config", "alter"}) {
		t.Errorf("request order %q", rec.order)
	}
	leader := strings.Join([]string{"0:" + itoa(cur[0][0]), "0:" + itoa(cur[0][1]), "0:" + itoa(cur[0][2]),
		"1:" + itoa(cur[1][0]), "1:" + itoa(cur[1][1]), "1:" + itoa(cur[1][2])}, ",")
	wantConfigs := map[string]map[string]string{
		// The plan adds no replica (target0 is a subset of cur[0]), so
		// no follower is throttled.
		"topic:orders": {leaderThrottledReplicas: "set=" + sortedThrottle(leader)},
		"broker:0":     {leaderThrottledRate: "set=1000", followerThrottledRate: "set=1000"},
		"broker:1":     {leaderThrottledRate: "set=1000", followerThrottledRate: "set=1000"},
		"broker:2":     {leaderThrottledRate: "set=1000", followerThrottledRate: "set=1000"},
	}
	if got, _ := json.Marshal(rec.configs); string(got) != mustJSON(wantConfigs) {
		t.Errorf("configs %s\nwant    %s", got, mustJSON(wantConfigs))
	}
	if len(rec.alters) != 1 {
		t.Fatalf("%d AlterPartitionAssignments, want 1", len(rec.alters))
	}
	targets := map[int32][]int32{}
	for _, rt := range rec.alters[0].Topics {
		for _, rp := range rt.Partitions {
			if rt.Topic == "orders" {
				targets[rp.Partition] = rp.Replicas
			}
		}
	}
	if len(targets) != 2 || !slices.Equal(targets[0], target0) || !slices.Equal(targets[1], cur[1]) {
		t.Errorf("targets %v, want 0:%v 1:%v", targets, target0, cur[1])
	}

	// A move already under way stops the plan, unless --additional.
	rec.reset()
	answerOngoing(c, 2)
	r = runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", file, "--brokers", brokers)
	checkRuntimeFailure(t, r, "1 partition is already being reassigned")
	if !strings.Contains(r.stderr, "--additional") || len(rec.order) != 0 {
		t.Errorf("stderr %q, requests %q", r.stderr, rec.order)
	}
	before := listed.Load()
	r = runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", file, "--additional", "--json", "--brokers", brokers)
	var doc struct {
		Current  reassignmentPlan
		Throttle *int64
		Started  []partitionRef
		Errors   []partitionError
	}
	decodeStrict(t, r.stdout, &doc)
	if r.code != 0 || doc.Throttle != nil || len(doc.Started) != 2 || len(doc.Errors) != 0 || doc.Current.compact() != rollback.compact() ||
		!slices.Equal(rec.order, []string{"alter"}) || listed.Load() != before {
		t.Errorf("--additional: exit %d, %+v, requests %q, %d listings", r.code, doc, rec.order, listed.Load()-before)
	}

	// A partition the cluster rejects is named on stderr; the rest start.
	c.ControlKey(int16(kmsg.AlterPartitionAssignments), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.AlterPartitionAssignmentsRequest)
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		for _, rt := range req.Topics {
			st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
			st.Topic = rt.Topic
			for _, rp := range rt.Partitions {
				sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
				sp.Partition = rp.Partition
				if rp.Partition == 1 {
					sp.ErrorCode, sp.ErrorMessage = kerr.InvalidReplicaAssignment.Code, kmsg.StringPtr("broker 9 is fenced")
				}
				st.Partitions = append(st.Partitions, sp)
			}
			resp.Topics = append(resp.Topics, st)
		}
		return resp, nil, true
	})
	r = runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", file, "--brokers", brokers)
	if r.code != 1 || !strings.Contains(r.stdout, "Successfully started partition reassignments for orders-0\n") ||
		r.stderr != "sluice: partition orders-1: INVALID_REPLICA_ASSIGNMENT: "+kerr.InvalidReplicaAssignment.Description+" (broker 9 is fenced)\n" {
		t.Errorf("partial: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	missing := writeFile(t, `{"version":1,"partitions":[{"topic":"orders","partition":9,"replicas":[0]}]}`)
	checkRuntimeFailure(t, runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", missing, "--brokers", brokers),
		"partition orders-9 does not exist")
	unknown := writeFile(t, `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[0,8]}]}`)
	checkRuntimeFailure(t, runCLI("partitions", "reassign", "--execute", "--reassignment-json-file", unknown, "--brokers", brokers),
		"the plan names brokers the cluster does not have: 8")
}

func itoa(n int32) string { return formatNodes([]int32{n}) }

// sortedThrottle orders "p:b" entries by partition, then broker.
func sortedThrottle(s string) string {
	parts := strings.Split(s, ",")
	slices.SortFunc(parts, func(a, b string) int {
		if len(a) != len(b) {
			return len(a) - len(b)
		}
		return strings.Compare(a, b)
	})
	return strings.Join(parts, ",")
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestReassignVerify(t *testing.T) {
	c, brokers := testCluster(t)
	cur := currentReplicas(t, brokers)
	rec := recordReassign(c)
	plan := reassignmentPlan{Version: 1, Partitions: []plannedPartition{
		newPlannedPartition("orders", 0, cur[0]),             // done
		newPlannedPartition("orders", 1, cur[1][:2]),         // differs, nothing moving
		newPlannedPartition("orders", 2, []int32{cur[2][0]}), // moving
	}}
	file := writeFile(t, plan.compact())

	answerOngoing(c, 2)
	r := runCLI("partitions", "reassign", "--verify", "--reassignment-json-file", file, "--brokers", brokers)
	want := "Status of partition reassignment:\n" +
		"Reassignment of partition orders-0 is completed.\n" +
		"There is no active reassignment of partition orders-1, but replica set is " + formatNodes(cur[1]) + " rather than " + formatNodes(cur[1][:2]) + ".\n" +
		"Reassignment of partition orders-2 is still in progress.\n"
	if r.code != 0 || r.stdout != want || r.stderr != "" {
		t.Errorf("in progress: exit %d, stdout %q, want %q, stderr %q", r.code, r.stdout, want, r.stderr)
	}
	if len(rec.order) != 0 {
		t.Errorf("throttles touched while a move runs: %q", rec.order)
	}

	// Nothing moves any more: the throttles go, everywhere.
	r = runCLI("partitions", "reassign", "--verify", "--reassignment-json-file", file, "--json", "--brokers", brokers)
	var doc struct {
		Partitions []struct {
			Topic     string
			Partition int32
			Status    string
			Replicas  []int32
			Target    []int32
		}
		Complete         bool `json:"complete"`
		ThrottlesCleared bool `json:"throttles_cleared"`
	}
	decodeStrict(t, r.stdout, &doc)
	if r.code != 0 || !doc.Complete || !doc.ThrottlesCleared || len(doc.Partitions) != 3 ||
		doc.Partitions[0].Status != "completed" || doc.Partitions[1].Status != "differs" || doc.Partitions[2].Status != "differs" ||
		!slices.Equal(doc.Partitions[1].Replicas, cur[1]) || !slices.Equal(doc.Partitions[1].Target, cur[1][:2]) {
		t.Errorf("complete: exit %d, %+v", r.code, doc)
	}
	cleared := map[string]map[string]string{
		"topic:orders": {leaderThrottledReplicas: "delete", followerThrottledReplica: "delete"},
		"broker:0":     {leaderThrottledRate: "delete", followerThrottledRate: "delete"},
		"broker:1":     {leaderThrottledRate: "delete", followerThrottledRate: "delete"},
		"broker:2":     {leaderThrottledRate: "delete", followerThrottledRate: "delete"},
	}
	if got := mustJSON(rec.configs); got != mustJSON(cleared) {
		t.Errorf("configs %s\nwant    %s", got, mustJSON(cleared))
	}

	rec.reset()
	r = runCLI("partitions", "reassign", "--verify", "--reassignment-json-file", file, "--brokers", brokers)
	if !strings.HasSuffix(r.stdout, "Clearing broker-level throttles on brokers 0,1,2\nClearing topic-level throttles on topic orders\n") {
		t.Errorf("text: %q", r.stdout)
	}
	rec.reset()
	r = runCLI("partitions", "reassign", "--verify", "--reassignment-json-file", file, "--preserve-throttles", "--brokers", brokers)
	if r.code != 0 || strings.Contains(r.stdout, "Clearing") || len(rec.order) != 0 {
		t.Errorf("--preserve-throttles: exit %d, stdout %q, requests %q", r.code, r.stdout, rec.order)
	}
}

func TestReassignCancel(t *testing.T) {
	c, brokers := testCluster(t)
	rec := recordReassign(c)
	file := writeFile(t, `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[0]},{"topic":"orders","partition":1,"replicas":[1]}]}`)

	// kfake has no move under way: it answers NO_REASSIGNMENT_IN_PROGRESS.
	r := runCLI("partitions", "reassign", "--cancel", "--reassignment-json-file", file, "--brokers", brokers)
	if r.code != 0 || !strings.HasPrefix(r.stdout, "None of the specified partition moves are active.\nClearing broker-level throttles") || r.stderr != "" {
		t.Errorf("nothing active: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if len(rec.alters) != 1 {
		t.Fatalf("%d AlterPartitionAssignments", len(rec.alters))
	}
	for _, rt := range rec.alters[0].Topics {
		for _, rp := range rt.Partitions {
			if rp.Replicas != nil {
				t.Errorf("cancel of %s-%d sent replicas %v, want null", rt.Topic, rp.Partition, rp.Replicas)
			}
		}
	}

	rec.reset()
	c.ControlKey(int16(kmsg.AlterPartitionAssignments), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.AlterPartitionAssignmentsRequest)
		resp := req.ResponseKind().(*kmsg.AlterPartitionAssignmentsResponse)
		st := kmsg.NewAlterPartitionAssignmentsResponseTopic()
		st.Topic = "orders"
		for _, p := range []int32{0, 1} {
			sp := kmsg.NewAlterPartitionAssignmentsResponseTopicPartition()
			sp.Partition = p
			if p == 1 {
				sp.ErrorCode = kerr.NoReassignmentInProgress.Code
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
	r = runCLI("partitions", "reassign", "--cancel", "--reassignment-json-file", file, "--preserve-throttles", "--json", "--brokers", brokers)
	var doc struct {
		Cancelled        []partitionRef   `json:"cancelled"`
		NotActive        []partitionRef   `json:"not_active"`
		Errors           []partitionError `json:"errors"`
		ThrottlesCleared bool             `json:"throttles_cleared"`
	}
	decodeStrict(t, r.stdout, &doc)
	if r.code != 0 || len(doc.Cancelled) != 1 || doc.Cancelled[0].Partition != 0 || len(doc.NotActive) != 1 || doc.NotActive[0].Partition != 1 ||
		doc.ThrottlesCleared || len(rec.configs) != 0 {
		t.Errorf("cancel: exit %d, %+v, configs %v", r.code, doc, rec.configs)
	}
}
