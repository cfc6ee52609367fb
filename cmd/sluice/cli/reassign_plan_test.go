package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

func TestProposePlan(t *testing.T) {
	// Pinned: the first replicas walk the brokers, the followers' shift
	// grows by one when the walk wraps (partition 3).
	plan, err := proposePlan(map[string][][]int32{"t": {{9}, {9}, {9}, {9}}, "u": {{9, 9}}}, []string{"t", "u"}, []int32{1, 2, 3}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if plan.compact() != `{"version":1,"partitions":[`+
		`{"topic":"t","partition":0,"replicas":[1],"log_dirs":["any"]},`+
		`{"topic":"t","partition":1,"replicas":[2],"log_dirs":["any"]},`+
		`{"topic":"t","partition":2,"replicas":[3],"log_dirs":["any"]},`+
		`{"topic":"t","partition":3,"replicas":[1],"log_dirs":["any"]},`+
		// u starts where t left off (4 partitions on: broker index 1),
		// its shift too.
		`{"topic":"u","partition":0,"replicas":[2,1],"log_dirs":["any","any"]}]}` {
		t.Errorf("plan %s", plan.compact())
	}

	if _, err = proposePlan(map[string][][]int32{"t": make([][]int32, 8)}, []string{"t"}, []int32{1, 2, 3}, nil); err == nil {
		t.Errorf("a topic without replicas was placed")
	}

	// Properties on a bigger case: distinct replicas from the list, and
	// leaders and replicas spread evenly.
	current := map[string][][]int32{"big": make([][]int32, 12)}
	for i := range current["big"] {
		current["big"][i] = []int32{0, 0, 0}
	}
	brokers := []int32{10, 20, 30, 40}
	plan, err = proposePlan(current, []string{"big"}, brokers, nil)
	if err != nil {
		t.Fatal(err)
	}
	leaders, replicas := map[int32]int{}, map[int32]int{}
	for _, pp := range plan.Partitions {
		if len(pp.Replicas) != 3 || len(slices.Compact(slices.Sorted(slices.Values(pp.Replicas)))) != 3 {
			t.Errorf("%s: replicas %v", pp.name(), pp.Replicas)
		}
		leaders[pp.Replicas[0]]++
		for _, r := range pp.Replicas {
			if !slices.Contains(brokers, r) {
				t.Errorf("%s: broker %d not in the list", pp.name(), r)
			}
			replicas[r]++
		}
	}
	for _, b := range brokers {
		if leaders[b] != 3 || replicas[b] != 9 {
			t.Errorf("broker %d leads %d and holds %d replicas, want 3 and 9", b, leaders[b], replicas[b])
		}
	}

	if _, err := proposePlan(map[string][][]int32{"t": {{1, 2, 3}}}, []string{"t"}, []int32{1, 2}, nil); err == nil ||
		!strings.Contains(err.Error(), `topic "t" has replication factor 3, more than the 2 brokers`) {
		t.Errorf("rf above the broker count: %v", err)
	}
}

func TestProposePlanRacks(t *testing.T) {
	racks := map[int32]string{1: "a", 2: "a", 3: "a", 4: "b", 5: "b", 6: "c"}
	brokers := []int32{1, 2, 3, 4, 5, 6}
	if got, n := rackAlternated(brokers, racks); !slices.Equal(got, []int32{1, 4, 6, 2, 5, 3}) || n != 3 {
		t.Errorf("rack-alternated %v (%d racks)", got, n)
	}
	current := map[string][][]int32{"t": make([][]int32, 12)}
	for i := range current["t"] {
		current["t"][i] = []int32{0, 0, 0}
	}
	plan, err := proposePlan(current, []string{"t"}, brokers, racks)
	if err != nil {
		t.Fatal(err)
	}
	leaders := map[int32]int{}
	for _, pp := range plan.Partitions {
		seen := map[string]bool{}
		for _, r := range pp.Replicas {
			seen[racks[r]] = true
		}
		// Three replicas, three racks: one replica in each.
		if len(seen) != 3 || len(slices.Compact(slices.Sorted(slices.Values(pp.Replicas)))) != 3 {
			t.Errorf("%s: replicas %v span racks %v", pp.name(), pp.Replicas, seen)
		}
		leaders[pp.Replicas[0]]++
	}
	for _, b := range brokers {
		if leaders[b] != 2 {
			t.Errorf("broker %d leads %d partitions, want 2: %v", b, leaders[b], leaders)
		}
	}
	// Pinned, two rounds over three racks of two: in the second round the
	// followers' shift moves by whole rack cycles, as Kafka's does.
	current = map[string][][]int32{"t": make([][]int32, 12)}
	for i := range current["t"] {
		current["t"][i] = []int32{0, 0}
	}
	plan, err = proposePlan(current, []string{"t"}, brokers, map[int32]string{1: "a", 2: "a", 3: "b", 4: "b", 5: "c", 6: "c"})
	want := [][]int32{{1, 3}, {3, 5}, {5, 2}, {2, 4}, {4, 6}, {6, 1}, {1, 4}, {3, 6}, {5, 1}, {2, 3}, {4, 5}, {6, 2}}
	for i, pp := range plan.Partitions {
		if err != nil || !slices.Equal(pp.Replicas, want[i]) {
			t.Errorf("partition %d: %v, want %v (%v)", i, pp.Replicas, want[i], err)
		}
	}
	// Fewer racks than replicas: every rack first, then any broker.
	plan, err = proposePlan(map[string][][]int32{"t": {{0, 0, 0}}}, []string{"t"}, []int32{1, 2, 4}, map[int32]string{1: "a", 2: "a", 4: "b"})
	if err != nil || !slices.Equal(plan.Partitions[0].Replicas, []int32{1, 4, 2}) {
		t.Errorf("two racks, three replicas: %v %v", plan.Partitions, err)
	}
}

func TestBrokerRacks(t *testing.T) {
	md := kadm.Metadata{Brokers: kadm.BrokerDetails{
		{NodeID: 1, Rack: kadm.StringPtr("a")}, {NodeID: 2, Rack: kadm.StringPtr("b")}, {NodeID: 3}, {NodeID: 4, Rack: kadm.StringPtr("")},
	}}
	if r, err := brokerRacks(md, []int32{1, 2}, false); err != nil || len(r) != 2 || r[1] != "a" || r[2] != "b" {
		t.Errorf("all with racks: %v %v", r, err)
	}
	if r, err := brokerRacks(md, []int32{3, 4}, false); err != nil || r != nil {
		t.Errorf("none with racks: %v %v", r, err)
	}
	if _, err := brokerRacks(md, []int32{1, 3}, false); err == nil || !strings.Contains(err.Error(), "only 1 of the 2 brokers have a rack") {
		t.Errorf("mixed: %v", err)
	}
	if r, err := brokerRacks(md, []int32{1, 3}, true); err != nil || r != nil {
		t.Errorf("mixed, disabled: %v %v", r, err)
	}
}

func TestParsePlan(t *testing.T) {
	p, err := parsePlan([]byte(`{"version":1,"partitions":[{"topic":"t","partition":1,"replicas":[3,1]}]}`))
	if err != nil || len(p.Partitions) != 1 || !slices.Equal(p.Partitions[0].LogDirs, []string{"any", "any"}) {
		t.Errorf("plan without log_dirs: %+v %v", p, err)
	}
	for _, tc := range []struct{ doc, want string }{
		{`nope`, "not a reassignment file"},
		{`{"version":2,"partitions":[]}`, "unsupported version 2"},
		{`{"version":1,"partitions":[]}`, "no partitions"},
		{`{"partitions":[{"partition":0,"replicas":[1]}]}`, "entry 0 has no topic"},
		{`{"partitions":[{"topic":"t","partition":-1,"replicas":[1]}]}`, "negative partition"},
		{`{"partitions":[{"topic":"t","partition":0,"replicas":[1]},{"topic":"t","partition":0,"replicas":[2]}]}`, "t-0 is listed twice"},
		{`{"partitions":[{"topic":"t","partition":0,"replicas":[]}]}`, "t-0: no replicas"},
		{`{"partitions":[{"topic":"t","partition":0,"replicas":[1,1]}]}`, "must be distinct"},
		{`{"partitions":[{"topic":"t","partition":0,"replicas":[1,2],"log_dirs":["any"]}]}`, "1 log_dirs for 2 replicas"},
		{`{"partitions":[{"topic":"t","partition":0,"replicas":[1],"log_dirs":["/data"]}]}`, "between log directories is not supported"},
	} {
		if _, err := parsePlan([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.doc, err, tc.want)
		}
	}

	topics, err := parseTopicsToMove([]byte(`{"version":1,"topics":[{"topic":"b"},{"topic":"a"},{"topic":"b"}]}`))
	if err != nil || !slices.Equal(topics, []string{"a", "b"}) {
		t.Errorf("topics %v %v", topics, err)
	}
	for _, doc := range []string{`{"topics":[]}`, `{"topics":[{"name":"a"}]}`, `[`} {
		if _, err := parseTopicsToMove([]byte(doc)); err == nil {
			t.Errorf("%s accepted", doc)
		}
	}
}

func TestComputeThrottles(t *testing.T) {
	plan := reassignmentPlan{Version: 1, Partitions: []plannedPartition{
		newPlannedPartition("t", 0, []int32{2, 3}),     // 1 leaves, 3 joins
		newPlannedPartition("t", 1, []int32{1, 2}),     // no move: its replicas still lead-throttled, as Kafka does
		newPlannedPartition("u", 10, []int32{4, 5, 1}), // grows
	}}
	th := computeThrottles(plan, map[string][]int32{"t-0": {1, 2}, "t-1": {2, 1}, "u-10": {1}})
	if th.leader["t"] != "0:1,0:2,1:1,1:2" || th.follower["t"] != "0:3" ||
		th.leader["u"] != "10:1" || th.follower["u"] != "10:4,10:5" || !slices.Equal(th.brokers, []int32{1, 2, 3, 4, 5}) {
		t.Errorf("throttles %+v", th)
	}
}

func TestMoveState(t *testing.T) {
	for _, tc := range []struct {
		moving          bool
		current, target []int32
		want            string
	}{
		{true, []int32{1, 2, 3}, []int32{1, 2}, moveInProgress},
		{false, []int32{1, 2}, []int32{1, 2}, moveCompleted},
		{false, []int32{2, 1}, []int32{1, 2}, moveDiffers}, // order is the preferred leader: it matters
		{false, []int32{1}, []int32{1, 2}, moveDiffers},
	} {
		if got := moveState(tc.moving, tc.current, tc.target); got != tc.want {
			t.Errorf("moveState(%v, %v, %v) = %s, want %s", tc.moving, tc.current, tc.target, got, tc.want)
		}
	}
}
