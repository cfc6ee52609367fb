package runtime

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/api"
)

// produce writes values to partition 0 of topic through the fixture's cluster.
func (f *standaloneFixture) produce(topic string, values ...string) {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.seeds...), kgo.AllowAutoTopicCreation(), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	for _, v := range values {
		if err := cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Value: []byte(v)}).FirstErr(); err != nil {
			f.t.Fatal(err)
		}
	}
}

// consumeAll reads every record of topic.
func (f *standaloneFixture) consumeAll(topic string, want int) []*kgo.Record {
	f.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(f.seeds...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		f.t.Fatal(err)
	}
	defer cl.Close()
	var out []*kgo.Record
	f.eventually("records in "+topic, func() bool {
		ctx, cancel := context.WithTimeout(context.Background(), 200e6)
		defer cancel()
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, r) })
		return len(out) >= want
	})
	return out
}

func TestSinkRetriablePutIsRedeliveredAndFailedRecordsGoToTheDeadLetterQueue(t *testing.T) {
	f := newStandaloneFixture(t)
	f.plugins.retryPuts = 2
	f.produce("in", "a", "bad", "b")
	ctx := context.Background()
	if _, err := f.herder.CreateConnector(ctx, "collect", map[string]string{
		"name": "collect", "connector.class": "Collect", "topics": "in",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "dlq",
		"errors.deadletterqueue.context.headers.enable": "true",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("a and b in the sink", func() bool { return strings.Join(f.plugins.values("collect"), ",") == "a,b" })
	f.plugins.mu.Lock()
	puts := f.plugins.puts
	f.plugins.mu.Unlock()
	if puts < 3 {
		t.Fatalf("%d Put calls: the retriable answers were not followed by redeliveries", puts)
	}
	dlq := f.consumeAll("dlq", 1)
	if len(dlq) != 1 || string(dlq[0].Value) != "bad" {
		t.Fatalf("dead letter queue: %v", dlq)
	}
	headers := map[string]string{}
	for _, h := range dlq[0].Headers {
		headers[h.Key] = string(h.Value)
	}
	for k, want := range map[string]string{
		"__connect.errors.topic": "in", "__connect.errors.partition": "0", "__connect.errors.offset": "1",
		"__connect.errors.connector.name": "collect", "__connect.errors.task.id": "0",
		"__connect.errors.exception.message": "cannot write bad",
	} {
		if headers[k] != want {
			t.Errorf("header %s = %q, want %q (all: %v)", k, headers[k], want, headers)
		}
	}
}

func TestSinkFailsWithoutToleranceAndSaysWhy(t *testing.T) {
	f := newStandaloneFixture(t)
	f.produce("in", "a", "bad")
	ctx := context.Background()
	if _, err := f.herder.CreateConnector(ctx, "collect", map[string]string{
		"name": "collect", "connector.class": "Collect", "topics": "in", "restart.policy": "never",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("the task FAILED naming the put", func() bool {
		st, err := f.herder.TaskStatus(ctx, api.ConnectorTaskID{Connector: "collect", Task: 0})
		return err == nil && st.State == api.StateFailed && strings.Contains(st.Trace, "cannot write bad") &&
			strings.Contains(st.Trace, "errors.tolerance=none")
	})
}

// A stopped sink connector's offsets change in the connector first (Kafka's
// SinkConnector.alterOffsets: an exactly-once sink keeping its own offsets
// rewinds from them), then in the group; a reset passes every partition
// the group has with -1.
func TestSinkOffsetsChangeInTheConnectorToo(t *testing.T) {
	f := newStandaloneFixture(t)
	f.produce("in", "a", "b", "c")
	ctx := context.Background()
	if _, err := f.herder.CreateConnector(ctx, "collect", map[string]string{
		"name": "collect", "connector.class": "Collect", "topics": "in",
	}, ""); err != nil {
		t.Fatal(err)
	}
	f.eventually("a, b and c in the sink", func() bool { return strings.Join(f.plugins.values("collect"), ",") == "a,b,c" })
	if err := f.herder.StopConnector(ctx, "collect"); err != nil {
		t.Fatal(err)
	}
	f.eventually("STOPPED", func() bool { c, _ := f.state("collect"); return c == api.StateStopped })
	alter := []api.ConnectorOffset{{Partition: map[string]any{"kafka_topic": "in", "kafka_partition": json.Number("0")},
		Offset: map[string]any{"kafka_offset": json.Number("1")}}}
	if msg, err := f.herder.AlterConnectorOffsets(ctx, "collect", alter); err != nil || msg != api.MsgOffsetsAltered {
		t.Fatalf("alter: %q %v", msg, err)
	}
	if msg, err := f.herder.ResetConnectorOffsets(ctx, "collect"); err != nil || msg != api.MsgOffsetsReset {
		t.Fatalf("reset: %q %v", msg, err)
	}
	f.plugins.mu.Lock()
	got := strings.Join(f.plugins.altered, " | ")
	f.plugins.mu.Unlock()
	if want := "collect: in-0=1 | collect: in-0=-1"; got != want {
		t.Fatalf("the connector was told %q, want %q", got, want)
	}
}
