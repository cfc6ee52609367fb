package storage_test

import (
	"context"
	"io"
	"log/slog"
	"reflect"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/broker"
	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/connect/storage"
)

// The stores against a real Sluice broker started in this process: topic
// creation with configs, the compacted-topic checks, idempotent produce,
// following, and the group admin calls all go through Sluice's handlers.
func TestStoresAgainstSluice(t *testing.T) {
	cfg, err := config.Load("", []string{"listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=127.0.0.1:0", "log.dirs=" + t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	br, err := broker.New(cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	if err := br.Listen(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = br.Shutdown(context.Background()) })
	opts := []kgo.Opt{kgo.SeedBrokers(br.Addr().String())}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()

	a, err := storage.OpenConfigStore(ctx, storage.ConfigStoreOptions{Client: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := storage.OpenConfigStore(ctx, storage.ConfigStoreOptions{Client: opts})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	check(a.PutConnectorConfig(ctx, "src", map[string]string{"connector.class": "FileStreamSource"}, storage.TargetStarted))
	check(a.PutTaskConfigs(ctx, "src", []map[string]string{{"file": "/tmp/x"}}))
	check(a.PutTargetState(ctx, "src", storage.TargetStopped))
	check(b.ReadToEnd(ctx))
	if !reflect.DeepEqual(a.Snapshot(), b.Snapshot()) || b.Snapshot().TargetStates["src"] != storage.TargetStopped ||
		b.Snapshot().TaskConfig(storage.TaskID{Connector: "src"})["file"] != "/tmp/x" {
		t.Fatalf("stores disagree:\n%+v\n%+v", a.Snapshot(), b.Snapshot())
	}

	offs, err := storage.OpenKafkaOffsetStore(ctx, storage.KafkaOffsetStoreOptions{Client: opts})
	check(err)
	defer offs.Close()
	part := map[string]any{"filename": "/tmp/x"}
	check(offs.Write(ctx, "src", []storage.ConnectorOffset{{Partition: part, Offset: map[string]any{"position": int64(10)}}}))
	got, err := offs.Offsets(ctx, "src")
	check(err)
	if len(got) != 1 || got[0].Offset["position"] != int64(10) {
		t.Fatalf("offsets %v", got)
	}

	st, err := storage.OpenKafkaStatusStore(ctx, storage.KafkaStatusStoreOptions{Client: opts})
	check(err)
	defer st.Close()
	check(st.PutConnector(ctx, "src", storage.Status{State: storage.StateRunning, WorkerID: "127.0.0.1:8083", Generation: 1}))
	if s, ok := st.Connector("src"); !ok || s.State != storage.StateRunning {
		t.Fatalf("status %+v %v", s, ok)
	}

	cl, err := kgo.NewClient(opts...)
	check(err)
	defer cl.Close()
	adm := kadm.NewClient(cl)
	_, err = adm.CreateTopic(ctx, 1, 1, nil, "in")
	check(err)
	at := int64(3)
	check(storage.AlterSinkOffsets(ctx, adm, "sink", map[storage.TopicPartition]*int64{{Topic: "in", Partition: 0}: &at}))
	sink, err := storage.SinkOffsets(ctx, adm, "sink")
	check(err)
	if len(sink) != 1 || sink[0].Offset[storage.SinkOffsetKey] != int64(3) {
		t.Fatalf("sink offsets %v", sink)
	}
	check(storage.ResetSinkOffsets(ctx, adm, "sink"))
	sink, err = storage.SinkOffsets(ctx, adm, "sink")
	check(err)
	if len(sink) != 0 {
		t.Fatalf("sink offsets after reset %v", sink)
	}

	// The config topic Sluice created is one compacted partition.
	td, err := adm.ListTopics(ctx, storage.DefaultConfigTopic)
	check(err)
	if n := len(td[storage.DefaultConfigTopic].Partitions); n != 1 {
		t.Fatalf("config topic has %d partitions", n)
	}
	rc, err := adm.DescribeTopicConfigs(ctx, storage.DefaultConfigTopic)
	check(err)
	for _, c := range rc[0].Configs {
		if c.Key == "cleanup.policy" && (c.Value == nil || *c.Value != "compact") {
			t.Fatalf("cleanup.policy %v", c.Value)
		}
	}
}
