package storage

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func openConfig(t *testing.T, opts []kgo.Opt, u *updates) *ConfigStore {
	t.Helper()
	o := ConfigStoreOptions{Client: opts}
	if u != nil {
		o.OnUpdate = u.add
	}
	s, err := OpenConfigStore(testCtx(t), o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// The records are byte for byte what KafkaConfigBackingStore writes, so a
// Kafka Connect worker reading the same topic understands them.
func TestConfigStoreWritesKafkaRecords(t *testing.T) {
	opts := newCluster(t)
	s := openConfig(t, opts, nil)
	ctx := testCtx(t)
	must(t, s.PutConnectorConfig(ctx, "file-src", map[string]string{"connector.class": "FileStreamSource", "file": "/tmp/a<b>&c"}, TargetStopped))
	must(t, s.PutTaskConfigs(ctx, "file-src", []map[string]string{{"task": "0"}, {"task": "1"}}))
	must(t, s.PutTargetState(ctx, "file-src", TargetPaused))
	must(t, s.PutRestartRequest(ctx, RestartRequest{Connector: "file-src", IncludeTasks: true}))
	must(t, s.PutSessionKey(ctx, SessionKey{Key: []byte{1, 2, 3}, Algorithm: "HmacSHA256", CreationTimestamp: 1700000000000}))
	must(t, s.PutLoggerLevel(ctx, "org.apache.kafka", "DEBUG"))
	must(t, s.RemoveConnectorConfig(ctx, "file-src"))

	want := []string{
		`target-state-file-src = {"state":"PAUSED","state.v2":"STOPPED"}`,
		`connector-file-src = {"properties":{"connector.class":"FileStreamSource","file":"/tmp/a<b>&c"}}`,
		`task-file-src-0 = {"properties":{"task":"0"}}`,
		`task-file-src-1 = {"properties":{"task":"1"}}`,
		`commit-file-src = {"tasks":2}`,
		`target-state-file-src = {"state":"PAUSED","state.v2":"PAUSED"}`,
		`restart-connector-file-src = {"include-tasks":true,"only-failed":false}`,
		`session-key = {"key":"AQID","algorithm":"HmacSHA256","creation-timestamp":1700000000000}`,
		`logger-cluster-org.apache.kafka = {"level":"DEBUG"}`,
		`connector-file-src = <tombstone>`,
		`target-state-file-src = <tombstone>`,
	}
	var got []string
	for _, r := range rawRecords(t, opts, DefaultConfigTopic) {
		v := string(r.Value)
		if r.Value == nil {
			v = "<tombstone>"
		}
		got = append(got, string(r.Key)+" = "+v)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("records:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}

	// The topic was created as Kafka creates it: one compacted partition.
	adm := kadm.NewClient(mustClient(t, opts))
	td, err := adm.ListTopics(ctx, DefaultConfigTopic)
	must(t, err)
	if n := len(td[DefaultConfigTopic].Partitions); n != 1 {
		t.Fatalf("config topic has %d partitions, want 1", n)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, DefaultConfigTopic)
	must(t, err)
	for _, c := range rc[0].Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || *c.Value != "compact") {
			t.Fatalf("cleanup.policy = %v, want compact", c.Value)
		}
	}
}

// Two workers on one topic see each other's writes; a write returns only
// once the writer's own snapshot has it; the other worker hears of it.
func TestConfigStoresShareTopic(t *testing.T) {
	opts := newCluster(t)
	u := newUpdates()
	a := openConfig(t, opts, nil)
	b := openConfig(t, opts, u)
	ctx := testCtx(t)

	must(t, a.PutConnectorConfig(ctx, "c1", map[string]string{"k": "v"}, TargetStarted))
	if snap := a.Snapshot(); snap.Connectors["c1"]["k"] != "v" || snap.TargetStates["c1"] != TargetStarted {
		t.Fatalf("writer's snapshot lacks its own write: %+v", snap)
	}
	must(t, b.ReadToEnd(ctx))
	if snap := b.Snapshot(); snap.Connectors["c1"]["k"] != "v" {
		t.Fatalf("other store does not see the write: %+v", snap)
	}
	if a.Snapshot().Offset != b.Snapshot().Offset || a.Snapshot().Offset != 2 {
		t.Fatalf("config offsets %d and %d, want both 2", a.Snapshot().Offset, b.Snapshot().Offset)
	}
	got := u.take()
	want := []ConfigUpdate{{Kind: ConnectorConfigUpdated, Connector: "c1"}}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("updates %+v, want %+v", got, want)
	}

	must(t, b.PutTaskConfigs(ctx, "c1", []map[string]string{{"t": "0"}}))
	must(t, a.PutTargetState(ctx, "c1", TargetPaused))
	must(t, a.PutRestartRequest(ctx, RestartRequest{Connector: "c1", OnlyFailed: true}))
	must(t, b.ReadToEnd(ctx))
	got = u.take()
	want = []ConfigUpdate{
		{Kind: TaskConfigsCommitted, Connector: "c1", Tasks: []TaskID{{"c1", 0}}},
		{Kind: TargetStateChanged, Connector: "c1"},
		{Kind: RestartRequested, Connector: "c1", Restart: RestartRequest{Connector: "c1", OnlyFailed: true}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("updates %+v, want %+v", got, want)
	}
	must(t, a.ReadToEnd(ctx))
	if !reflect.DeepEqual(a.Snapshot(), b.Snapshot()) {
		t.Fatalf("stores disagree:\n%+v\n%+v", a.Snapshot(), b.Snapshot())
	}
	if cfg := a.Snapshot().TaskConfig(TaskID{"c1", 0}); cfg["t"] != "0" {
		t.Fatalf("task config %v", cfg)
	}
}

// Task configs written without their commit (a leader that died midway)
// are not visible; the commit makes them visible all at once.
func TestConfigStoreTasksInvisibleUntilCommit(t *testing.T) {
	opts := newCluster(t)
	s := openConfig(t, opts, nil)
	ctx := testCtx(t)
	must(t, s.PutConnectorConfig(ctx, "c", map[string]string{}, ""))
	must(t, s.PutTaskConfigs(ctx, "c", []map[string]string{{"gen": "1"}}))

	cl := mustClient(t, opts)
	produce := func(key, value string) {
		t.Helper()
		must(t, cl.ProduceSync(ctx, &kgo.Record{Topic: DefaultConfigTopic, Key: []byte(key), Value: []byte(value)}).FirstErr())
		must(t, s.ReadToEnd(ctx))
	}
	produce("task-c-0", `{"properties":{"gen":"2"}}`)
	produce("task-c-1", `{"properties":{"gen":"2"}}`)
	snap := s.Snapshot()
	if len(snap.Tasks("c")) != 1 || snap.TaskConfig(TaskID{"c", 0})["gen"] != "1" || snap.TaskConfig(TaskID{"c", 1}) != nil {
		t.Fatalf("uncommitted task configs visible: %+v", snap.TaskConfigs)
	}
	produce("commit-c", `{"tasks":2}`)
	snap = s.Snapshot()
	if len(snap.Tasks("c")) != 2 || snap.TaskConfig(TaskID{"c", 0})["gen"] != "2" || snap.TaskConfig(TaskID{"c", 1})["gen"] != "2" {
		t.Fatalf("committed task configs not applied: %+v", snap.TaskConfigs)
	}
	if snap.Generations["c"] != 1 {
		t.Fatalf("generation %d, want 1", snap.Generations["c"])
	}
}

// Deleting a connector removes its config, tasks and target state, and the
// deletion survives a restart (a new store replaying the topic).
func TestConfigStoreTombstonesAndRestart(t *testing.T) {
	opts := newCluster(t)
	s := openConfig(t, opts, nil)
	ctx := testCtx(t)
	must(t, s.PutConnectorConfig(ctx, "keep", map[string]string{"a": "1"}, TargetStopped))
	must(t, s.PutTaskConfigs(ctx, "keep", []map[string]string{{"x": "1"}, {"x": "2"}}))
	must(t, s.PutConnectorConfig(ctx, "gone", map[string]string{"a": "2"}, ""))
	must(t, s.PutTaskConfigs(ctx, "gone", []map[string]string{{"y": "1"}}))
	must(t, s.RemoveConnectorConfig(ctx, "gone"))
	must(t, s.PutSessionKey(ctx, SessionKey{Key: []byte("k"), Algorithm: "HmacSHA256", CreationTimestamp: 5}))

	snap := s.Snapshot()
	if snap.Contains("gone") || snap.TaskConfigs["gone"] != nil || snap.TaskCounts["gone"] != 0 {
		t.Fatalf("deleted connector still there: %+v", snap)
	}
	if _, ok := snap.TargetStates["gone"]; ok {
		t.Fatalf("deleted connector keeps a target state")
	}
	if got := snap.ConnectorNames(); !reflect.DeepEqual(got, []string{"keep"}) {
		t.Fatalf("connectors %v", got)
	}
	s.Close()

	u := newUpdates()
	again := openConfig(t, opts, u)
	if !reflect.DeepEqual(again.Snapshot(), snap) {
		t.Fatalf("replayed state differs:\n%+v\nwant\n%+v", again.Snapshot(), snap)
	}
	// Replaying history is not news: no updates for it.
	if got := u.take(); len(got) != 0 {
		t.Fatalf("updates for replayed records: %+v", got)
	}
}

// A config topic with more than one partition cannot order writes: refused
// with Kafka's message. A deleting cleanup policy is refused too.
func TestConfigStoreRefusesBadTopic(t *testing.T) {
	opts := newCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(mustClient(t, opts))
	_, err := adm.CreateTopic(ctx, 3, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("compact")}, "wide-configs")
	must(t, err)
	_, err = OpenConfigStore(ctx, ConfigStoreOptions{Client: opts, Topic: TopicSettings{Topic: "wide-configs"}})
	want := "Topic 'wide-configs' supplied via the 'config.storage.topic' property is required to have a single partition in order to guarantee consistency of connector configurations, but found 3 partitions."
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v, want %q", err, want)
	}

	_, err = OpenConfigStore(ctx, ConfigStoreOptions{Client: opts, Topic: TopicSettings{Topic: "rf", ReplicationFactor: 3}})
	if err == nil || !strings.Contains(err.Error(), "(config.storage.replication.factor)") {
		t.Fatalf("err = %v, want one naming config.storage.replication.factor", err)
	}

	_, err = adm.CreateTopic(ctx, 1, 1, map[string]*string{"cleanup.policy": kadm.StringPtr("delete")}, "deleting-configs")
	must(t, err)
	_, err = OpenConfigStore(ctx, ConfigStoreOptions{Client: opts, Topic: TopicSettings{Topic: "deleting-configs"}})
	if err == nil || !strings.Contains(err.Error(), "is required to have 'cleanup.policy=compact'") || !strings.Contains(err.Error(), "'cleanup.policy=delete'") {
		t.Fatalf("err = %v, want the cleanup policy refusal", err)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func mustClient(t *testing.T, opts []kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.RequestTimeoutOverhead(5*time.Second))...)
	must(t, err)
	t.Cleanup(cl.Close)
	return cl
}
