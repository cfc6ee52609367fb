package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

type jsonElection struct {
	ElectionType string `json:"election_type"`
	Partitions   []struct {
		Topic     string  `json:"topic"`
		Partition int32   `json:"partition"`
		Status    string  `json:"status"`
		Error     *string `json:"error"`
	} `json:"partitions"`
}

// electAnswer makes the cluster answer the next ElectLeaders with codes per
// partition of "orders", recording the request in *sent.
func electAnswer(c *kfake.Cluster, sent **kmsg.ElectLeadersRequest, codes map[int32]int16) {
	c.ControlKey(int16(kmsg.ElectLeaders), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		req := kr.(*kmsg.ElectLeadersRequest)
		*sent = req
		resp := req.ResponseKind().(*kmsg.ElectLeadersResponse)
		st := kmsg.NewElectLeadersResponseTopic()
		st.Topic = "orders"
		for _, p := range slices.Sorted(func(yield func(int32) bool) {
			for p := range codes {
				if !yield(p) {
					return
				}
			}
		}) {
			sp := kmsg.NewElectLeadersResponseTopicPartition()
			sp.Partition, sp.ErrorCode = p, codes[p]
			if codes[p] != 0 {
				sp.ErrorMessage = kmsg.StringPtr("broker says " + kerr.ErrorForCode(codes[p]).Error())
			}
			st.Partitions = append(st.Partitions, sp)
		}
		resp.Topics = append(resp.Topics, st)
		return resp, nil, true
	})
}

func requestedPartitions(req *kmsg.ElectLeadersRequest) map[string][]int32 {
	if req.Topics == nil {
		return nil
	}
	out := map[string][]int32{}
	for _, t := range req.Topics {
		out[t.Topic] = append(out[t.Topic], t.Partitions...)
	}
	return out
}

func TestElectLeaders(t *testing.T) {
	c, brokers := testCluster(t) // orders: 3 partitions

	// Every outcome at once: elected, not needed (no error), failed.
	var sent *kmsg.ElectLeadersRequest
	electAnswer(c, &sent, map[int32]int16{0: 0, 1: kerr.ElectionNotNeeded.Code, 2: kerr.PreferredLeaderNotAvailable.Code})
	r := runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--topic", "orders", "--brokers", brokers)
	if sent == nil || sent.ElectionType != 0 || !slices.Equal(requestedPartitions(sent)["orders"], []int32{0, 1, 2}) || len(sent.Topics) != 1 {
		t.Fatalf("sent %+v, want a preferred election of orders 0,1,2", sent)
	}
	want := "Successfully completed leader election (PREFERRED) for partitions orders-0\n" +
		"Valid replica already elected for partitions orders-1\n" +
		"Error completing leader election (PREFERRED) for partition: orders-2: PREFERRED_LEADER_NOT_AVAILABLE: "
	if r.code != 1 || !strings.HasPrefix(r.stdout, want) || !strings.Contains(r.stdout, "(broker says PREFERRED_LEADER_NOT_AVAILABLE") ||
		r.stderr != "sluice: 1 partition could not be elected\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// ELECTION_NOT_NEEDED alone is success; unclean and one partition.
	sent = nil
	electAnswer(c, &sent, map[int32]int16{1: kerr.ElectionNotNeeded.Code})
	r = runCLI("partitions", "elect-leaders", "--election-type", "UNCLEAN", "--topic", "orders", "--partition", "1", "--json", "--brokers", brokers)
	if sent == nil || sent.ElectionType != 1 || !slices.Equal(requestedPartitions(sent)["orders"], []int32{1}) {
		t.Fatalf("sent %+v, want an unclean election of orders-1", sent)
	}
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var doc jsonElection
	decodeStrict(t, r.stdout, &doc)
	if doc.ElectionType != "unclean" || len(doc.Partitions) != 1 || doc.Partitions[0].Status != "not-needed" || doc.Partitions[0].Error != nil {
		t.Errorf("json %+v", doc)
	}

	// --all-topic-partitions sends no topic list (null: every partition).
	sent = nil
	electAnswer(c, &sent, map[int32]int16{0: 0, 1: 0, 2: 0})
	r = runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--all-topic-partitions", "--brokers", brokers)
	if sent == nil || sent.Topics != nil {
		t.Fatalf("sent %+v, want a null topic list", sent)
	}
	if r.code != 0 || r.stdout != "Successfully completed leader election (PREFERRED) for partitions orders-0, orders-1, orders-2\n" {
		t.Errorf("exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}

	// Against kfake itself, which moves the leader: the epoch goes up.
	before := topicDetail(t, brokers, "orders").Partitions[0].LeaderEpoch
	r = runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--topic", "orders", "--partition", "0", "--brokers", brokers)
	if r.code != 0 || r.stdout != "Successfully completed leader election (PREFERRED) for partitions orders-0\n" {
		t.Errorf("real election: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if after := topicDetail(t, brokers, "orders").Partitions[0].LeaderEpoch; after <= before {
		t.Errorf("leader epoch %d after the election, was %d", after, before)
	}

	checkRuntimeFailure(t, runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--topic", "ghost", "--brokers", brokers),
		`topic "ghost" not found`)
	injectTopError(c)
	checkRuntimeFailure(t, runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--all-topic-partitions", "--brokers", brokers),
		"electing leaders: CLUSTER_AUTHORIZATION_FAILED")
}

// injectTopError answers the next ElectLeaders with a request-level error.
func injectTopError(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.ElectLeaders), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		resp := kr.ResponseKind().(*kmsg.ElectLeadersResponse)
		resp.ErrorCode = kerr.ClusterAuthorizationFailed.Code
		return resp, nil, true
	})
}

func TestPartitionsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"partitions"}, "usage: sluice partitions"},
		{[]string{"partitions", "shuffle"}, `unknown partitions subcommand "shuffle"`},
		{[]string{"partitions", "elect-leaders", "--topic", "t"}, "--election-type preferred|unclean is required"},
		{[]string{"partitions", "elect-leaders", "--election-type", "random", "--topic", "t"}, `unknown --election-type "random"`},
		{[]string{"partitions", "elect-leaders", "--election-type", "preferred"}, "either --topic or --all-topic-partitions"},
		{[]string{"partitions", "elect-leaders", "--election-type", "preferred", "--topic", "t", "--all-topic-partitions"}, "either --topic or --all-topic-partitions"},
		{[]string{"partitions", "elect-leaders", "--election-type", "preferred", "--all-topic-partitions", "--partition", "1"}, "--partition needs --topic"},
		{[]string{"partitions", "elect-leaders", "--election-type", "preferred", "--topic", "t", "--partition", "-4"}, "must not be negative"},
		{[]string{"partitions", "elect-leaders", "--election-type", "preferred", "--topic", "t", "extra"}, `unexpected argument "extra"`},
		{[]string{"partitions", "reassign"}, "exactly one of --generate, --execute, --verify, --cancel"},
		{[]string{"partitions", "reassign", "--verify", "--cancel", "--reassignment-json-file", "f"}, "exactly one of"},
		{[]string{"partitions", "reassign", "--generate", "--broker-list", "1"}, "--generate needs --topics-to-move-json-file and --broker-list"},
		{[]string{"partitions", "reassign", "--generate", "--topics-to-move-json-file", "f", "--broker-list", "1,x"}, `"x" is not a broker ID`},
		{[]string{"partitions", "reassign", "--execute"}, "--reassignment-json-file is required"},
		{[]string{"partitions", "reassign", "--verify", "--reassignment-json-file", "f", "--throttle", "5"}, "--throttle goes with --execute"},
		{[]string{"partitions", "reassign", "--execute", "--reassignment-json-file", "f", "--throttle", "0"}, "--throttle must be positive"},
		{[]string{"partitions", "reassign", "--verify", "--reassignment-json-file", "f", "--additional"}, "--additional goes with --execute"},
		{[]string{"partitions", "reassign", "--execute", "--reassignment-json-file", "f", "--preserve-throttles"}, "--preserve-throttles goes with"},
		{[]string{"partitions", "reassign", "--execute", "--reassignment-json-file", "f", "--broker-list", "1"}, "go with --generate"},
		{[]string{"partitions", "reassign", "--verify", "--reassignment-json-file", "f", "--disable-rack-aware"}, "--disable-rack-aware goes with --generate"},
	} {
		r := runCLI(tc.args...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage: sluice partitions") || r.stdout != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, r.code, r.stdout, r.stderr, tc.want)
		}
	}
	for _, args := range [][]string{{"partitions", "--help"}, {"partitions", "elect-leaders", "-h"}, {"partitions", "reassign", "--help"}} {
		if r := runCLI(args...); r.code != 0 || !strings.HasPrefix(r.stdout, "usage: sluice partitions") {
			t.Errorf("%q: exit %d, stdout %q", args, r.code, r.stdout)
		}
	}
}

// A cluster without the APIs (Kafka before 2.4) gets a sentence naming
// them, not the client's "broker is too old".
func TestPartitionsUnsupported(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "orders"), kfake.MaxVersions(kversion.V2_1_0()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := c.ListenAddrs()[0]
	checkRuntimeFailure(t, runCLI("partitions", "elect-leaders", "--election-type", "preferred", "--all-topic-partitions", "--brokers", brokers),
		"the brokers do not support ElectLeaders (API key 43)")
	plan := writeFile(t, `{"version":1,"partitions":[{"topic":"orders","partition":0,"replicas":[0]}]}`)
	checkRuntimeFailure(t, runCLI("partitions", "reassign", "--verify", "--reassignment-json-file", plan, "--brokers", brokers),
		"the brokers do not support AlterPartitionAssignments (API key 45) or ListPartitionReassignments (API key 46)")
}
