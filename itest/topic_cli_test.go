package itest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestTopicCLIAgainstSluice: `sluice topic` drives a topic through its
// whole life on a real Sluice broker, and the broker's own rejections
// (existing topic, bad config value, shrinking) reach the user as exit 1
// with the broker's message on one line.
func TestTopicCLIAgainstSluice(t *testing.T) {
	// num.partitions differs from Kafka's default of 1 so that "broker
	// default" is visible in what create reports.
	b := startBroker(t, "std", t.TempDir(), "num.partitions=3")

	run := func(wantExit int, args ...string) (stdout, stderr string) {
		t.Helper()
		return runCLI(t, b.Addr(), wantExit, args...)
	}
	decode := func(doc string, v any) {
		t.Helper()
		if err := json.Unmarshal([]byte(doc), v); err != nil {
			t.Fatalf("%v in:\n%s", err, doc)
		}
	}
	metadataID := func(topic string) string {
		t.Helper()
		tds, err := admin(t, b.Addr()).ListTopics(testCtx(t, 10*time.Second), topic)
		if err != nil || tds[topic].Err != nil {
			t.Fatalf("metadata of %s: %v %v", topic, err, tds[topic].Err)
		}
		id := tds[topic].ID
		return base64.RawURLEncoding.EncodeToString(id[:])
	}

	type created struct {
		Topics []struct {
			Topic             string `json:"topic"`
			TopicID           string `json:"topic_id"`
			PartitionCount    *int32 `json:"partition_count"`
			ReplicationFactor *int32 `json:"replication_factor"`
			Status            string `json:"status"`
		} `json:"topics"`
	}
	var c created
	out, _ := run(0, "topic", "create", "events", "defaults", "--config", "retention.ms=3600000", "--json")
	decode(out, &c)
	if len(c.Topics) != 2 {
		t.Fatalf("create: %+v", c)
	}
	for _, ct := range c.Topics {
		if ct.Status != "created" || ct.PartitionCount == nil || *ct.PartitionCount != 3 ||
			ct.ReplicationFactor == nil || *ct.ReplicationFactor != 1 || ct.TopicID != metadataID(ct.Topic) {
			t.Errorf("created %+v, want num.partitions=3, replication factor 1, ID %s", ct, metadataID(ct.Topic))
		}
	}
	eventsID := c.Topics[0].TopicID

	if _, stderr := run(1, "topic", "create", "events"); !strings.Contains(stderr, `topic "events": already exists`) {
		t.Errorf("existing topic: %q", stderr)
	}
	c = created{}
	out, _ = run(0, "topic", "create", "events", "--if-not-exists", "--json")
	decode(out, &c)
	if len(c.Topics) != 1 || c.Topics[0].Status != "exists" || c.Topics[0].TopicID != eventsID || *c.Topics[0].PartitionCount != 3 {
		t.Errorf("create --if-not-exists: %+v", c)
	}
	// Kafka answers both with INVALID_CONFIG and a message naming the
	// setting; nothing is created.
	for _, bad := range []string{"retention.ms=abc", "no.such.setting=1"} {
		_, stderr := run(1, "topic", "create", "bad", "--config", bad)
		if name, _, _ := strings.Cut(bad, "="); !strings.Contains(stderr, "INVALID_CONFIG") || !strings.Contains(stderr, name) {
			t.Errorf("--config %s: %q", bad, stderr)
		}
	}
	run(0, "topic", "delete", "defaults")

	type altered struct {
		Topic   string `json:"topic"`
		Changes []struct {
			Name string `json:"name"`
			Op   string `json:"op"`
		} `json:"changes"`
	}
	var a altered
	out, _ = run(0, "topic", "alter-config", "events", "--set", "cleanup.policy=compact,delete", "--delete", "retention.ms", "--json")
	decode(out, &a)
	if a.Topic != "events" || len(a.Changes) != 2 {
		t.Errorf("alter-config: %+v", a)
	}
	if _, stderr := run(1, "topic", "alter-config", "events", "--set", "retention.ms=abc"); !strings.Contains(stderr, "INVALID_CONFIG") || !strings.Contains(stderr, "retention.ms") {
		t.Errorf("bad alter-config: %q", stderr)
	}

	var grown struct {
		Topic          string `json:"topic"`
		PartitionCount int32  `json:"partition_count"`
	}
	out, _ = run(0, "topic", "add-partitions", "events", "--total", "5", "--json")
	decode(out, &grown)
	if grown.PartitionCount != 5 {
		t.Errorf("add-partitions: %+v", grown)
	}
	// Kafka refuses a count that is not larger (INVALID_PARTITIONS).
	if _, stderr := run(1, "topic", "add-partitions", "events", "--total", "5"); !strings.Contains(stderr, "INVALID_PARTITIONS") {
		t.Errorf("same count: %q", stderr)
	}

	cl := newClient(t, b.Addr())
	for p := int32(0); p < 5; p++ {
		for i := range p + 1 {
			// Keyed: the topic is compact,delete now, and a compacted
			// topic refuses keyless records (INVALID_RECORD), as Kafka's.
			produceSync(t, cl, &kgo.Record{Topic: "events", Partition: p, Key: fmt.Appendf(nil, "k%d", i), Value: []byte("v")})
		}
	}
	type described struct {
		Topics []struct {
			Topic             string `json:"topic"`
			TopicID           string `json:"topic_id"`
			PartitionCount    int    `json:"partition_count"`
			ReplicationFactor int    `json:"replication_factor"`
			Configs           []struct {
				Name   string  `json:"name"`
				Value  *string `json:"value"`
				Source string  `json:"source"`
			} `json:"configs"`
			Partitions []struct {
				Partition      int32   `json:"partition"`
				Leader         int32   `json:"leader"`
				LeaderEpoch    int32   `json:"leader_epoch"`
				Replicas       []int32 `json:"replicas"`
				ISR            []int32 `json:"isr"`
				LogStartOffset *int64  `json:"log_start_offset"`
				HighWatermark  *int64  `json:"high_watermark"`
				Error          *string `json:"error"`
			} `json:"partitions"`
		} `json:"topics"`
		NotFound []string `json:"not_found"`
	}
	var d described
	out, stderr := run(1, "topic", "describe", "events", "ghost", "--json")
	decode(out, &d)
	if stderr != "sluice: topic \"ghost\" not found\n" || !slices.Equal(d.NotFound, []string{"ghost"}) || len(d.Topics) != 1 {
		t.Fatalf("describe events ghost: %+v, stderr %q", d, stderr)
	}
	ev := d.Topics[0]
	if ev.TopicID != eventsID || ev.PartitionCount != 5 || ev.ReplicationFactor != 1 || len(ev.Partitions) != 5 {
		t.Errorf("described %+v", ev)
	}
	var overrides []string
	for _, cfg := range ev.Configs {
		if cfg.Source == "DYNAMIC_TOPIC_CONFIG" {
			overrides = append(overrides, cfg.Name+"="+*cfg.Value)
		}
	}
	if !slices.Equal(overrides, []string{"cleanup.policy=compact,delete"}) {
		t.Errorf("overrides %q, want only cleanup.policy=compact,delete", overrides)
	}
	for i, p := range ev.Partitions {
		if p.Partition != int32(i) || p.Leader < 0 || !slices.Equal(p.Replicas, []int32{p.Leader}) || !slices.Equal(p.ISR, p.Replicas) ||
			p.Error != nil || p.LogStartOffset == nil || *p.LogStartOffset != 0 || p.HighWatermark == nil || *p.HighWatermark != int64(i+1) {
			t.Errorf("partition %d: %+v", i, p)
		}
	}
	table, _ := run(0, "topic", "describe", "events")
	if !strings.Contains(table, "HIGH-WATERMARK") || !strings.Contains(table, "cleanup.policy") {
		t.Errorf("describe table:\n%s", table)
	}

	// A committed offset creates __consumer_offsets: hidden from list
	// unless --internal.
	offs := kadm.Offsets{}
	offs.Add(kadm.Offset{Topic: "events", Partition: 0, At: 1, LeaderEpoch: -1})
	if err := admin(t, b.Addr()).CommitAllOffsets(testCtx(t, 10*time.Second), "cli-group", offs); err != nil {
		t.Fatal(err)
	}
	type listed struct {
		Topics []struct {
			Topic          string `json:"topic"`
			TopicID        string `json:"topic_id"`
			PartitionCount int    `json:"partition_count"`
			Internal       bool   `json:"internal"`
		} `json:"topics"`
	}
	names := func(l listed) (ns []string) {
		for _, lt := range l.Topics {
			ns = append(ns, lt.Topic)
		}
		return ns
	}
	var l listed
	out, _ = run(0, "topic", "list", "--json")
	decode(out, &l)
	if !slices.Equal(names(l), []string{"events"}) || l.Topics[0].PartitionCount != 5 || l.Topics[0].TopicID != eventsID {
		t.Errorf("list: %+v (ghost must not have been auto-created by describe)", l)
	}
	l = listed{}
	out, _ = run(0, "topic", "list", "--internal", "--json")
	decode(out, &l)
	if !slices.Equal(names(l), []string{"__consumer_offsets", "events"}) || !l.Topics[0].Internal {
		t.Errorf("list --internal: %+v", l)
	}

	var del struct {
		Topics []struct {
			Topic   string `json:"topic"`
			TopicID string `json:"topic_id"`
		} `json:"topics"`
	}
	out, _ = run(0, "topic", "delete", "events", "--json")
	decode(out, &del)
	if len(del.Topics) != 1 || del.Topics[0].TopicID != eventsID {
		t.Errorf("delete: %+v", del)
	}
	if _, stderr := run(1, "topic", "delete", "events"); stderr != "sluice: topic \"events\" not found\n" {
		t.Errorf("second delete: %q", stderr)
	}
	l = listed{}
	out, _ = run(0, "topic", "list", "--json")
	decode(out, &l)
	if len(l.Topics) != 0 {
		t.Errorf("list after delete: %+v", l)
	}

	cmd := exec.Command(sluiceBin, "topic", "list", "--brokers", "127.0.0.1:1")
	var errb bytes.Buffer
	cmd.Stderr = &errb
	if err := cmd.Run(); err == nil || cmd.ProcessState.ExitCode() != 1 ||
		!strings.HasPrefix(errb.String(), "sluice: cannot reach brokers 127.0.0.1:1") || strings.Count(errb.String(), "\n") != 1 {
		t.Errorf("unreachable: %v, stderr %q", err, errb.String())
	}
}
