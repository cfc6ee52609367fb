package cli

import (
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// adminCluster is a three-broker fake cluster whose default partition
// count (4) differs from every count the tests ask for, so "broker default"
// is visible.
func adminCluster(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.DefaultNumPartitions(4))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

func TestTopicCreate(t *testing.T) {
	c, brokers := adminCluster(t)

	// No flags: the broker's defaults (kfake: 4 partitions, 3 replicas).
	var doc jsonCreated
	topicOK(t, brokers, &doc, "create", "alpha", "beta")
	if len(doc.Topics) != 2 || doc.Errors == nil || len(doc.Errors) != 0 {
		t.Fatalf("create: %+v", doc)
	}
	for i, name := range []string{"alpha", "beta"} {
		ct := doc.Topics[i]
		if ct.Topic != name || ct.Status != "created" || ct.PartitionCount == nil || *ct.PartitionCount != 4 ||
			ct.ReplicationFactor == nil || *ct.ReplicationFactor != 3 {
			t.Errorf("created %+v, want %s with 4 partitions and 3 replicas", ct, name)
		}
		if id := kafkaID(topicDetail(t, brokers, name).ID); ct.TopicID != id || len(id) != 22 {
			t.Errorf("%s: topic_id %q, want Kafka's form %q", name, ct.TopicID, id)
		}
	}
	alphaID := doc.Topics[0].TopicID

	// Explicit settings, a config value with a comma, table output.
	r := runCLI("topic", "create", "gamma", "--partitions", "2", "--replication-factor", "1",
		"--config", "retention.ms=1000", "--config", "cleanup.policy=compact,delete", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("create gamma: exit %d, stderr %q", r.code, r.stderr)
	}
	if h := tableRows(r.stdout, "TOPIC"); len(h) != 1 || !slices.Equal(h[0], []string{"TOPIC", "TOPIC-ID", "PARTITIONS", "REPLICATION-FACTOR", "STATUS"}) {
		t.Errorf("header %q:\n%s", h, r.stdout)
	}
	want := []string{"gamma", kafkaID(topicDetail(t, brokers, "gamma").ID), "2", "1", "created"}
	if rows := tableRows(r.stdout, "gamma"); len(rows) != 1 || !slices.Equal(rows[0], want) {
		t.Errorf("rows %q, want %q", rows, want)
	}
	for k, v := range map[string]string{"retention.ms": "1000", "cleanup.policy": "compact,delete"} {
		if got, ok := topicConfigValue(t, brokers, "gamma", k); !ok || got != v {
			t.Errorf("gamma %s = %q (set %v), want %q", k, got, ok, v)
		}
	}

	// An existing topic is an error...
	r = runCLI("topic", "create", "alpha", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "alpha": already exists`)

	// ...that does not stop the other topics of the same command.
	r = runCLI("topic", "create", "alpha", "delta", "--brokers", brokers)
	if r.code != 1 || len(tableRows(r.stdout, "delta")) != 1 || len(tableRows(r.stdout, "alpha")) != 0 ||
		strings.Count(r.stderr, "\n") != 1 || !strings.Contains(r.stderr, `topic "alpha": already exists`) {
		t.Errorf("create alpha delta: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	r = runCLI("topic", "create", "alpha", "epsilon", "--json", "--brokers", brokers)
	doc = jsonCreated{}
	decodeStrict(t, r.stdout, &doc)
	if r.code != 1 || len(doc.Topics) != 1 || doc.Topics[0].Topic != "epsilon" ||
		len(doc.Errors) != 1 || doc.Errors[0].Topic != "alpha" || !strings.Contains(doc.Errors[0].Error, "already exists") {
		t.Errorf("create alpha epsilon --json: exit %d, %+v", r.code, doc)
	}

	// --if-not-exists accepts it and reports it as it is.
	doc = jsonCreated{}
	topicOK(t, brokers, &doc, "create", "alpha", "zeta", "--if-not-exists", "--partitions", "1")
	if len(doc.Topics) != 2 || doc.Topics[0].Status != "exists" || doc.Topics[0].TopicID != alphaID ||
		*doc.Topics[0].PartitionCount != 4 || *doc.Topics[0].ReplicationFactor != 3 ||
		doc.Topics[1].Topic != "zeta" || doc.Topics[1].Status != "created" || *doc.Topics[1].PartitionCount != 1 {
		t.Errorf("create --if-not-exists: %+v", doc)
	}

	// A config the broker rejects: its message reaches the user. kfake
	// accepts any value, so the rejection is Kafka's answer, injected.
	injectError(c, kmsg.CreateTopics, kerr.InvalidConfig.Code, "Invalid value abc for configuration retention.ms: Not a number of type LONG")
	r = runCLI("topic", "create", "eta", "--config", "retention.ms=abc", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "eta": INVALID_CONFIG`)
	if !strings.Contains(r.stderr, "Invalid value abc for configuration retention.ms") {
		t.Errorf("stderr %q lacks the broker's message", r.stderr)
	}
}

func TestTopicDelete(t *testing.T) {
	_, brokers := adminCluster(t)
	var created jsonCreated
	topicOK(t, brokers, &created, "create", "one", "two", "three")

	r := runCLI("topic", "delete", "one", "ghost", "two", "--brokers", brokers)
	if r.code != 1 || r.stderr != "sluice: topic \"ghost\" not found\n" {
		t.Errorf("delete one ghost two: exit %d, stderr %q", r.code, r.stderr)
	}
	for i, name := range []string{"one", "two"} {
		want := []string{name, created.Topics[i].TopicID, "deleted"}
		if rows := tableRows(r.stdout, name); len(rows) != 1 || !slices.Equal(rows[0], want) {
			t.Errorf("row %q, want %q:\n%s", rows, want, r.stdout)
		}
	}

	r = runCLI("topic", "delete", "three", "one", "--json", "--brokers", brokers)
	var doc jsonDeleted
	decodeStrict(t, r.stdout, &doc)
	if r.code != 1 || len(doc.Topics) != 1 || doc.Topics[0].Topic != "three" || doc.Topics[0].TopicID != created.Topics[2].TopicID ||
		!slices.Equal(doc.NotFound, []string{"one"}) || doc.Errors == nil || len(doc.Errors) != 0 {
		t.Errorf("delete three one --json: exit %d, %+v", r.code, doc)
	}

	checkRuntimeFailure(t, runCLI("topic", "delete", "one", "--brokers", brokers), `topic "one" not found`)

	var list jsonTopicList
	topicOK(t, brokers, &list, "list")
	if len(list.Topics) != 0 {
		t.Errorf("topics left: %+v", list.Topics)
	}
}

func TestTopicAlterConfig(t *testing.T) {
	c, brokers := adminCluster(t)
	var created jsonCreated
	topicOK(t, brokers, &created, "create", "logs", "--config", "retention.ms=1000", "--config", "segment.bytes=1048576")

	r := runCLI("topic", "alter-config", "logs", "--set", "retention.ms=5000", "--set", "max.message.bytes=2048",
		"--delete", "segment.bytes", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("alter-config: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range [][]string{
		{"logs", "retention.ms", "set", "5000"},
		{"logs", "max.message.bytes", "set", "2048"},
		{"logs", "segment.bytes", "delete", "-"},
	} {
		if !slices.ContainsFunc(tableRows(r.stdout, "logs"), func(row []string) bool { return slices.Equal(row, want) }) {
			t.Errorf("no row %q in:\n%s", want, r.stdout)
		}
	}
	for k, want := range map[string]string{"retention.ms": "5000", "max.message.bytes": "2048", "segment.bytes": ""} {
		if got, _ := topicConfigValue(t, brokers, "logs", k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	checkRuntimeFailure(t, runCLI("topic", "alter-config", "ghost", "--set", "retention.ms=1", "--brokers", brokers), `topic "ghost" not found`)

	injectError(c, kmsg.IncrementalAlterConfigs, kerr.InvalidConfig.Code, "Invalid value -5 for configuration retention.ms")
	r = runCLI("topic", "alter-config", "logs", "--set", "retention.ms=-5", "--json", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "logs": INVALID_CONFIG`)
	if !strings.Contains(r.stderr, "Invalid value -5 for configuration retention.ms") {
		t.Errorf("stderr %q lacks the broker's message", r.stderr)
	}
	if got, _ := topicConfigValue(t, brokers, "logs", "retention.ms"); got != "5000" {
		t.Errorf("retention.ms = %q after a rejected change, want 5000", got)
	}
}

func TestTopicAddPartitions(t *testing.T) {
	_, brokers := testCluster(t) // orders: 3 partitions

	r := runCLI("topic", "add-partitions", "orders", "--total", "5", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("add-partitions: exit %d, stderr %q", r.code, r.stderr)
	}
	if rows := tableRows(r.stdout, "orders"); len(rows) != 1 || !slices.Equal(rows[0], []string{"orders", "5"}) {
		t.Errorf("rows %q:\n%s", rows, r.stdout)
	}
	if n := len(topicDetail(t, brokers, "orders").Partitions); n != 5 {
		t.Errorf("orders has %d partitions, want 5", n)
	}

	r = runCLI("topic", "add-partitions", "orders", "--total", "2", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "orders": INVALID_PARTITIONS`)
	checkRuntimeFailure(t, runCLI("topic", "add-partitions", "ghost", "--total", "2", "--brokers", brokers), `topic "ghost" not found`)
}

func TestTopicCreateReplicaAssignment(t *testing.T) {
	c, brokers := adminCluster(t)
	var sent []kmsg.CreateTopicsRequestTopic
	c.ControlKey(int16(kmsg.CreateTopics), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		sent = append(sent, kr.(*kmsg.CreateTopicsRequest).Topics...)
		return nil, nil, false // kfake creates the topics
	})

	var doc jsonCreated
	topicOK(t, brokers, &doc, "create", "placed", "--replica-assignment", "2:0, 0:1,1:2", "--config", "retention.ms=1000")
	if len(sent) != 1 {
		t.Fatalf("sent %d topics, want 1", len(sent))
	}
	rt := sent[0]
	var got [][]int32
	for i, ra := range rt.ReplicaAssignment {
		if ra.Partition != int32(i) {
			t.Errorf("assignment %d names partition %d", i, ra.Partition)
		}
		got = append(got, ra.Replicas)
	}
	want := [][]int32{{2, 0}, {0, 1}, {1, 2}}
	if rt.Topic != "placed" || rt.NumPartitions != -1 || rt.ReplicationFactor != -1 || !slices.EqualFunc(got, want, slices.Equal[[]int32]) ||
		len(rt.Configs) != 1 || rt.Configs[0].Name != "retention.ms" || *rt.Configs[0].Value != "1000" {
		t.Errorf("sent %+v, want placed with assignment %v, counts -1 and the config", rt, want)
	}
	if len(doc.Topics) != 1 || doc.Topics[0].Status != "created" || *doc.Topics[0].PartitionCount != 3 || *doc.Topics[0].ReplicationFactor != 2 ||
		doc.Topics[0].TopicID != kafkaID(topicDetail(t, brokers, "placed").ID) {
		t.Errorf("created %+v", doc.Topics)
	}

	// The broker's rejection is reported like any other (kfake accepts
	// any broker ID, so Kafka's answer is injected).
	injectError(c, kmsg.CreateTopics, kerr.InvalidReplicaAssignment.Code, "Unknown broker 7 in the replica assignment")
	r := runCLI("topic", "create", "bad", "--replica-assignment", "7", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "bad": INVALID_REPLICA_ASSIGNMENT`)
}
