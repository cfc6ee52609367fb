package cli

import (
	"encoding/base64"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The JSON shapes of the topic commands, written out independently of the
// package's types like the group ones in helpers_test.go.
type jsonTopicError struct {
	Topic string `json:"topic"`
	Error string `json:"error"`
}

type jsonCreated struct {
	Topics []struct {
		Topic             string `json:"topic"`
		TopicID           string `json:"topic_id"`
		PartitionCount    *int32 `json:"partition_count"`
		ReplicationFactor *int32 `json:"replication_factor"`
		Status            string `json:"status"`
	} `json:"topics"`
	Errors []jsonTopicError `json:"errors"`
}

type jsonTopicList struct {
	Topics []struct {
		Topic             string `json:"topic"`
		TopicID           string `json:"topic_id"`
		PartitionCount    int    `json:"partition_count"`
		ReplicationFactor int    `json:"replication_factor"`
		Internal          bool   `json:"internal"`
	} `json:"topics"`
}

type jsonTopicConfig struct {
	Name      string  `json:"name"`
	Value     *string `json:"value"`
	Source    string  `json:"source"`
	Sensitive bool    `json:"sensitive"`
}

type jsonTopicPartition struct {
	Partition       int32   `json:"partition"`
	Leader          int32   `json:"leader"`
	LeaderEpoch     int32   `json:"leader_epoch"`
	Replicas        []int32 `json:"replicas"`
	ISR             []int32 `json:"isr"`
	OfflineReplicas []int32 `json:"offline_replicas"`
	ELR             []int32 `json:"eligible_leader_replicas"`
	LastKnownELR    []int32 `json:"last_known_elr"`
	LogStartOffset  *int64  `json:"log_start_offset"`
	HighWatermark   *int64  `json:"high_watermark"`
	Error           *string `json:"error"`
}

type jsonTopic struct {
	Topic             string               `json:"topic"`
	TopicID           string               `json:"topic_id"`
	Internal          bool                 `json:"internal"`
	PartitionCount    int                  `json:"partition_count"`
	ReplicationFactor int                  `json:"replication_factor"`
	MinISR            *int                 `json:"min_insync_replicas"`
	Configs           []jsonTopicConfig    `json:"configs"`
	Partitions        []jsonTopicPartition `json:"partitions"`
}

type jsonTopicDescribed struct {
	Topics   []jsonTopic `json:"topics"`
	NotFound []string    `json:"not_found"`
}

type jsonDeleted struct {
	Topics []struct {
		Topic   string `json:"topic"`
		TopicID string `json:"topic_id"`
	} `json:"topics"`
	NotFound []string         `json:"not_found"`
	Errors   []jsonTopicError `json:"errors"`
}

type jsonAltered struct {
	Topic   string `json:"topic"`
	Changes []struct {
		Name  string  `json:"name"`
		Op    string  `json:"op"`
		Value *string `json:"value"`
	} `json:"changes"`
}

type jsonPartitionsAdded struct {
	Topic          string `json:"topic"`
	PartitionCount int32  `json:"partition_count"`
}

// topicOK runs a topic subcommand with --json against brokers, requires
// exit 0 and a clean stderr, and decodes stdout into v.
func topicOK(t *testing.T, brokers string, v any, args ...string) {
	t.Helper()
	r := runCLI(append(append([]string{"topic"}, args...), "--json", "--brokers", brokers)...)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("topic %q: exit %d, stderr %q, stdout:\n%s", args, r.code, r.stderr, r.stdout)
	}
	decodeStrict(t, r.stdout, v)
}

// kafkaID is a topic ID as Kafka prints it, computed here without the
// package's helper.
func kafkaID(id kadm.TopicID) string { return base64.RawURLEncoding.EncodeToString(id[:]) }

func topicDetail(t *testing.T, brokers, topic string) kadm.TopicDetail {
	t.Helper()
	tds, err := kadm.NewClient(newClient(t, brokers)).ListTopicsWithInternal(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	if td := tds[topic]; td.Err != nil {
		t.Fatalf("metadata of %s: %v", topic, td.Err)
	}
	return tds[topic]
}

func topicConfigValue(t *testing.T, brokers, topic, name string) (string, bool) {
	t.Helper()
	rcs, err := kadm.NewClient(newClient(t, brokers)).DescribeTopicConfigs(testCtx(t), topic)
	if err != nil {
		t.Fatal(err)
	}
	rc, err := rcs.On(topic, nil)
	if err != nil || rc.Err != nil {
		t.Fatalf("configs of %s: %v %v", topic, err, rc.Err)
	}
	for _, c := range rc.Configs {
		if c.Key == name && c.Source == kmsg.ConfigSourceDynamicTopicConfig {
			return c.MaybeValue(), true
		}
	}
	return "", false
}

func TestTopicUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"topic"}, "usage: sluice topic"},
		{[]string{"topic", "frobnicate"}, `unknown topic subcommand "frobnicate"`},
		{[]string{"topic", "create"}, "name at least one TOPIC"},
		{[]string{"topic", "create", "t", "--partitions", "0"}, "--partitions must be positive"},
		{[]string{"topic", "create", "t", "--partitions", "-2"}, "--partitions must be positive"},
		{[]string{"topic", "create", "t", "--partitions", "many"}, "partitions"},
		{[]string{"topic", "create", "t", "--replication-factor", "40000"}, "--replication-factor must be positive"},
		{[]string{"topic", "create", "t", "--config", "retention.ms"}, "not KEY=VALUE"},
		{[]string{"topic", "create", "t", "--config", "=1"}, "not KEY=VALUE"},
		{[]string{"topic", "create", "t", "--config", "a=1", "--config", "a=2"}, "a given twice"},
		{[]string{"topic", "create", "t", "--if-not-exists=maybe"}, "if-not-exists"},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:x"}, `"x" is not a broker ID`},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:2,"}, `partition 1: "" is not a broker ID`},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:2:1"}, "partition 0 lists broker 1 twice"},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:2,3"}, "partition 1 has 1 replicas, partition 0 has 2"},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:2", "--partitions", "1"}, "excludes --partitions"},
		{[]string{"topic", "create", "t", "--replica-assignment", "1:2", "--replication-factor", "2"}, "excludes --partitions"},
		{[]string{"topic", "describe", "--json"}, "or give a partition filter"},
		{[]string{"topic", "list", "extra"}, `unexpected argument "extra"`},
		{[]string{"topic", "list", "--bogus"}, "bogus"},
		{[]string{"topic", "describe"}, "name at least one TOPIC"},
		{[]string{"topic", "describe", "t", "--timeout", "0s"}, "--timeout must be positive"},
		{[]string{"topic", "delete"}, "name at least one TOPIC"},
		{[]string{"topic", "delete", "t", "--brokers", "http://x:1"}, "not a host:port"},
		{[]string{"topic", "alter-config", "t"}, "nothing to change"},
		{[]string{"topic", "alter-config", "--set", "a=1"}, "exactly one TOPIC, got 0"},
		{[]string{"topic", "alter-config", "t", "u", "--set", "a=1"}, "exactly one TOPIC, got 2"},
		{[]string{"topic", "alter-config", "t", "--set", "a=1", "--delete", "b,a"}, "a is both set and deleted"},
		{[]string{"topic", "alter-config", "t", "--set", "a"}, "not KEY=VALUE"},
		{[]string{"topic", "add-partitions", "t"}, "--total N is required"},
		{[]string{"topic", "add-partitions", "t", "--total", "-3"}, "--total N is required"},
		{[]string{"topic", "add-partitions", "--total", "3"}, "exactly one TOPIC"},
	} {
		r := runCLI(tc.args...)
		if r.code != exitUsage {
			t.Errorf("%q: exit %d, want 2", tc.args, r.code)
		}
		if !strings.Contains(r.stderr, tc.want) || !strings.Contains(r.stderr, "usage: sluice topic") {
			t.Errorf("%q: stderr %q lacks %q and the topic usage", tc.args, r.stderr, tc.want)
		}
		if r.stdout != "" {
			t.Errorf("%q: stdout %q, want nothing", tc.args, r.stdout)
		}
	}
}

func TestTopicHelp(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string // a flag or word the help must mention
	}{
		{[]string{"topic", "--help"}, "add-partitions"},
		{[]string{"topic", "help"}, "alter-config"},
		{[]string{"help"}, "topic describe"},
		{[]string{"topic", "create", "--help"}, "--if-not-exists"},
		{[]string{"topic", "list", "-h"}, "--internal"},
		{[]string{"topic", "describe", "t", "-help"}, "HIGH-WATERMARK"},
		{[]string{"topic", "delete", "--help"}, "--brokers"},
		{[]string{"topic", "alter-config", "--help"}, "--delete KEY"},
		{[]string{"topic", "add-partitions", "--help"}, "--total N"},
	} {
		r := runCLI(tc.args...)
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: sluice") || !strings.Contains(r.stdout, tc.want) || r.stderr != "" {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", tc.args, r.code, r.stdout, r.stderr)
		}
	}
}

func TestTopicUnreachableBroker(t *testing.T) {
	for _, args := range [][]string{
		{"topic", "create", "t"},
		{"topic", "list", "--json"},
		{"topic", "describe", "t", "u"},
		{"topic", "delete", "t"},
		{"topic", "alter-config", "t", "--set", "retention.ms=1"},
		{"topic", "add-partitions", "t", "--total", "4", "--json"},
	} {
		r := runCLI(append(args, "--brokers", "127.0.0.1:1")...)
		checkRuntimeFailure(t, r, "cannot reach brokers 127.0.0.1:1: ")
		if !strings.Contains(r.stderr, "dial tcp") {
			t.Errorf("%q: stderr %q does not say the dial failed", args, r.stderr)
		}
	}
}

// injectError makes the fake cluster answer the next request of key with
// code and a broker message on every topic, standing in for a broker that
// validates what kfake accepts (kfake takes any config value).
func injectError(c *kfake.Cluster, key kmsg.Key, code int16, msg string) {
	c.ControlKey(int16(key), func(kr kmsg.Request) (kmsg.Response, error, bool) {
		switch req := kr.(type) {
		case *kmsg.CreateTopicsRequest:
			resp := req.ResponseKind().(*kmsg.CreateTopicsResponse)
			for _, rt := range req.Topics {
				st := kmsg.NewCreateTopicsResponseTopic()
				st.Topic, st.ErrorCode, st.ErrorMessage = rt.Topic, code, kmsg.StringPtr(msg)
				resp.Topics = append(resp.Topics, st)
			}
			return resp, nil, true
		case *kmsg.IncrementalAlterConfigsRequest:
			resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
			for _, rr := range req.Resources {
				sr := kmsg.NewIncrementalAlterConfigsResponseResource()
				sr.ResourceType, sr.ResourceName = rr.ResourceType, rr.ResourceName
				sr.ErrorCode, sr.ErrorMessage = code, kmsg.StringPtr(msg)
				resp.Resources = append(resp.Resources, sr)
			}
			return resp, nil, true
		}
		return nil, nil, false
	})
}

// TestTopicLifecycle drives one topic through every subcommand, reading
// each step's effect back through the next command's --json output.
func TestTopicLifecycle(t *testing.T) {
	_, brokers := testCluster(t)

	var created jsonCreated
	topicOK(t, brokers, &created, "create", "events", "--partitions", "2", "--config", "retention.ms=3600000")
	if len(created.Topics) != 1 || len(created.Errors) != 0 {
		t.Fatalf("create: %+v", created)
	}
	ev := created.Topics[0]
	id := kafkaID(topicDetail(t, brokers, "events").ID)
	if ev.Topic != "events" || ev.TopicID != id || ev.Status != "created" || ev.PartitionCount == nil || *ev.PartitionCount != 2 {
		t.Fatalf("created %+v, want events with ID %s and 2 partitions", ev, id)
	}

	var altered jsonAltered
	topicOK(t, brokers, &altered, "alter-config", "events", "--set", "cleanup.policy=compact,delete", "--delete", "retention.ms")
	if altered.Topic != "events" || len(altered.Changes) != 2 ||
		altered.Changes[0].Op != "set" || *altered.Changes[0].Value != "compact,delete" ||
		altered.Changes[1].Op != "delete" || altered.Changes[1].Name != "retention.ms" || altered.Changes[1].Value != nil {
		t.Fatalf("alter-config: %+v", altered)
	}

	var grown jsonPartitionsAdded
	topicOK(t, brokers, &grown, "add-partitions", "events", "--total", "5")
	if grown.Topic != "events" || grown.PartitionCount != 5 {
		t.Fatalf("add-partitions: %+v", grown)
	}

	var desc jsonTopicDescribed
	topicOK(t, brokers, &desc, "describe", "events")
	if len(desc.Topics) != 1 || len(desc.NotFound) != 0 {
		t.Fatalf("describe: %+v", desc)
	}
	d := desc.Topics[0]
	if d.TopicID != id || d.PartitionCount != 5 || len(d.Partitions) != 5 || d.Internal {
		t.Errorf("described %+v", d)
	}
	var overrides []string
	for _, c := range d.Configs {
		if c.Source == "DYNAMIC_TOPIC_CONFIG" {
			overrides = append(overrides, c.Name+"="+*c.Value)
		}
	}
	if !slices.Equal(overrides, []string{"cleanup.policy=compact,delete"}) {
		t.Errorf("overrides %q, want only cleanup.policy=compact,delete", overrides)
	}

	var deleted jsonDeleted
	topicOK(t, brokers, &deleted, "delete", "events")
	if len(deleted.Topics) != 1 || deleted.Topics[0].Topic != "events" || deleted.Topics[0].TopicID != id {
		t.Errorf("delete: %+v", deleted)
	}

	var list jsonTopicList
	topicOK(t, brokers, &list, "list")
	var names []string
	for _, lt := range list.Topics {
		names = append(names, lt.Topic)
	}
	if !slices.Equal(names, []string{"orders"}) {
		t.Errorf("list after delete = %q, want only the seeded orders", names)
	}
}

func TestTopicList(t *testing.T) {
	_, brokers := testCluster(t)
	adm := kadm.NewClient(newClient(t, brokers))
	// kfake marks a topic internal through this config; Kafka's are
	// __consumer_offsets and __transaction_state.
	if _, err := adm.CreateTopic(testCtx(t), 1, 1, map[string]*string{"kfake.is_internal": kadm.StringPtr("true")}, "__internal"); err != nil {
		t.Fatal(err)
	}
	if _, err := adm.CreateTopic(testCtx(t), 7, 2, nil, "audit"); err != nil {
		t.Fatal(err)
	}
	want := func(topics ...string) string { return strings.Join(topics, " ") }

	var list jsonTopicList
	topicOK(t, brokers, &list, "list")
	var got []string
	for _, lt := range list.Topics {
		got = append(got, lt.Topic)
		if lt.Topic == "audit" && (lt.PartitionCount != 7 || lt.ReplicationFactor != 2 || lt.Internal ||
			lt.TopicID != kafkaID(topicDetail(t, brokers, "audit").ID)) {
			t.Errorf("audit listed as %+v", lt)
		}
	}
	if strings.Join(got, " ") != want("audit", "orders") {
		t.Errorf("list = %q, want audit orders (sorted, no internal topics)", got)
	}

	list = jsonTopicList{}
	topicOK(t, brokers, &list, "list", "--internal")
	if len(list.Topics) != 3 || list.Topics[0].Topic != "__internal" || !list.Topics[0].Internal {
		t.Errorf("list --internal = %+v", list.Topics)
	}

	r := runCLI("topic", "list", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("list: exit %d, stderr %q", r.code, r.stderr)
	}
	if h := tableRows(r.stdout, "TOPIC"); len(h) != 1 || !slices.Equal(h[0], []string{"TOPIC", "PARTITIONS", "REPLICATION-FACTOR", "TOPIC-ID"}) {
		t.Errorf("header %q in:\n%s", h, r.stdout)
	}
	wantRow := []string{"audit", "7", "2", kafkaID(topicDetail(t, brokers, "audit").ID)}
	if rows := tableRows(r.stdout, "audit"); len(rows) != 1 || !slices.Equal(rows[0], wantRow) {
		t.Errorf("audit row %q, want %q", rows, wantRow)
	}
	if strings.Contains(r.stdout, "__internal") {
		t.Errorf("internal topic listed without --internal:\n%s", r.stdout)
	}
}

func TestTopicDescribe(t *testing.T) {
	_, brokers := testCluster(t)
	produce(t, brokers, "orders", 5, 3, 2)
	adm := kadm.NewClient(newClient(t, brokers))
	var trim kadm.Offsets
	trim.Add(kadm.Offset{Topic: "orders", Partition: 0, At: 2})
	if _, err := adm.DeleteRecords(testCtx(t), trim); err != nil {
		t.Fatal(err)
	}
	set := []kadm.AlterConfig{{Op: kadm.SetConfig, Name: "retention.ms", Value: kadm.StringPtr("60000")}}
	if _, err := adm.AlterTopicConfigs(testCtx(t), set, "orders"); err != nil {
		t.Fatal(err)
	}
	md := topicDetail(t, brokers, "orders")

	var doc jsonTopicDescribed
	topicOK(t, brokers, &doc, "describe", "orders")
	if len(doc.Topics) != 1 || doc.NotFound == nil || len(doc.NotFound) != 0 {
		t.Fatalf("describe: %+v", doc)
	}
	d := doc.Topics[0]
	if d.Topic != "orders" || d.TopicID != kafkaID(md.ID) || d.PartitionCount != 3 ||
		d.ReplicationFactor != len(md.Partitions[0].Replicas) || d.Internal {
		t.Errorf("described %+v", d)
	}
	if d.MinISR == nil || *d.MinISR != 1 { // kfake's default
		t.Errorf("min_insync_replicas %v, want 1", d.MinISR)
	}
	if len(d.Configs) != 1 || d.Configs[0].Name != "retention.ms" || *d.Configs[0].Value != "60000" ||
		d.Configs[0].Source != "DYNAMIC_TOPIC_CONFIG" || d.Configs[0].Sensitive {
		t.Errorf("configs %+v, want only the retention.ms override (defaults left out)", d.Configs)
	}
	starts, ends := []int64{2, 0, 0}, []int64{5, 3, 2}
	for i, p := range d.Partitions {
		m := md.Partitions[int32(i)]
		if p.Partition != int32(i) || p.Leader != m.Leader || p.LeaderEpoch != m.LeaderEpoch ||
			!slices.Equal(p.Replicas, m.Replicas) || !slices.Equal(p.ISR, m.ISR) || p.OfflineReplicas == nil || p.Error != nil ||
			p.ELR == nil || len(p.ELR) != 0 || p.LastKnownELR == nil || len(p.LastKnownELR) != 0 {
			t.Errorf("partition %d: %+v, metadata %+v", i, p, m)
		}
		if p.LogStartOffset == nil || *p.LogStartOffset != starts[i] || p.HighWatermark == nil || *p.HighWatermark != ends[i] {
			t.Errorf("partition %d offsets %v..%v, want %d..%d", i, p.LogStartOffset, p.HighWatermark, starts[i], ends[i])
		}
	}

	// The table carries the same figures.
	r := runCLI("topic", "describe", "orders", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("describe: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, line := range []string{"Topic:", "Topic ID:", "Partitions:", "Replication factor:", "Min in-sync replicas:  1"} {
		if !strings.Contains(r.stdout, line) {
			t.Errorf("describe output lacks %q:\n%s", line, r.stdout)
		}
	}
	if rows := tableRows(r.stdout, "retention.ms"); len(rows) != 1 || !slices.Equal(rows[0], []string{"retention.ms", "60000", "DYNAMIC_TOPIC_CONFIG"}) {
		t.Errorf("config rows %q:\n%s", rows, r.stdout)
	}
	header := []string{"PARTITION", "LEADER", "LEADER-EPOCH", "REPLICAS", "ISR", "ELR", "LAST-KNOWN-ELR", "OFFLINE", "LOG-START-OFFSET", "HIGH-WATERMARK"}
	if h := tableRows(r.stdout, "PARTITION"); len(h) != 1 || !slices.Equal(h[0], header) {
		t.Errorf("partition header %q:\n%s", h, r.stdout)
	}
	for i, p := range d.Partitions {
		want := []string{fmt.Sprint(i), fmt.Sprint(p.Leader), fmt.Sprint(p.LeaderEpoch),
			formatNodes(p.Replicas), formatNodes(p.ISR), "-", "-", "-", fmt.Sprint(starts[i]), fmt.Sprint(ends[i])}
		if rows := tableRows(r.stdout, fmt.Sprint(i)); len(rows) != 1 || !slices.Equal(rows[0], want) {
			t.Errorf("partition row %q, want %q:\n%s", rows, want, r.stdout)
		}
	}

	// Missing topics are named on stderr; the found ones still described.
	r = runCLI("topic", "describe", "ghost", "orders", "phantom", "--json", "--brokers", brokers)
	if r.code != 1 || r.stderr != "sluice: topic \"ghost\" not found\nsluice: topic \"phantom\" not found\n" {
		t.Errorf("describe with missing: exit %d, stderr %q", r.code, r.stderr)
	}
	doc = jsonTopicDescribed{}
	decodeStrict(t, r.stdout, &doc)
	if len(doc.Topics) != 1 || doc.Topics[0].Topic != "orders" || !slices.Equal(doc.NotFound, []string{"ghost", "phantom"}) {
		t.Errorf("describe with missing: %+v", doc)
	}
	r = runCLI("topic", "describe", "ghost", "--brokers", brokers)
	checkRuntimeFailure(t, r, `topic "ghost" not found`)
}
