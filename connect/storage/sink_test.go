package storage

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

func i64(v int64) *int64 { return &v }

func TestSinkOffsets(t *testing.T) {
	opts := newCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(mustClient(t, opts))
	_, err := adm.CreateTopic(ctx, 2, 1, nil, "in")
	must(t, err)

	if got, err := SinkOffsets(ctx, adm, "sink"); err != nil || len(got) != 0 {
		t.Fatalf("offsets of a connector without a group: %v %v", got, err)
	}
	must(t, AlterSinkOffsets(ctx, adm, "sink", map[TopicPartition]*int64{{"in", 0}: i64(5), {"in", 1}: i64(7)}))
	got, err := SinkOffsets(ctx, adm, "sink")
	must(t, err)
	b, _ := json.Marshal(got)
	want := `[{"partition":{"kafka_partition":0,"kafka_topic":"in"},"offset":{"kafka_offset":5}},{"partition":{"kafka_partition":1,"kafka_topic":"in"},"offset":{"kafka_offset":7}}]`
	if string(b) != want {
		t.Fatalf("offsets %s\nwant %s", b, want)
	}
	// They are the group connect-<name>'s.
	fetched, err := adm.FetchOffsets(ctx, "connect-sink")
	must(t, err)
	if o, _ := fetched.Lookup("in", 1); o.At != 7 {
		t.Fatalf("group connect-sink has %+v", o)
	}

	must(t, AlterSinkOffsets(ctx, adm, "sink", map[TopicPartition]*int64{{"in", 1}: nil, {"in", 0}: i64(6)}))
	got, err = SinkOffsets(ctx, adm, "sink")
	must(t, err)
	if len(got) != 1 || got[0].Offset[SinkOffsetKey] != int64(6) {
		t.Fatalf("after altering: %v", got)
	}

	must(t, ResetSinkOffsets(ctx, adm, "sink"))
	if got, err := SinkOffsets(ctx, adm, "sink"); err != nil || len(got) != 0 {
		t.Fatalf("after reset: %v %v", got, err)
	}
	must(t, ResetSinkOffsets(ctx, adm, "sink")) // idempotent
}

// While the connector's tasks are still in the group, its offsets cannot
// be changed: Kafka's message says why.
func TestSinkOffsetsRefusedWhileTasksRun(t *testing.T) {
	opts := newCluster(t)
	ctx := testCtx(t)
	adm := kadm.NewClient(mustClient(t, opts))
	_, err := adm.CreateTopic(ctx, 1, 1, nil, "in")
	must(t, err)
	member, err := kgo.NewClient(append(append([]kgo.Opt{}, opts...), kgo.ConsumerGroup("connect-busy"), kgo.ConsumeTopics("in"))...)
	must(t, err)
	defer member.Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		member.PollFetches(shortCtx(t))
		groups, err := adm.DescribeGroups(ctx, "connect-busy")
		must(t, err)
		if g := groups["connect-busy"]; g.State == "Stable" && len(g.Members) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the member never joined")
		}
	}

	err = ResetSinkOffsets(ctx, adm, "busy")
	if err == nil || !strings.HasPrefix(err.Error(), "Failed to reset consumer group offsets for connector busy either because its tasks haven't stopped completely yet") {
		t.Fatalf("reset of a live group: %v", err)
	}
	err = AlterSinkOffsets(ctx, adm, "busy", map[TopicPartition]*int64{{"in", 0}: i64(1)})
	if err == nil || !strings.HasPrefix(err.Error(), "Failed to alter consumer group offsets for connector busy") {
		t.Fatalf("alter of a live group: %v", err)
	}
}

func TestParseSinkOffsets(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   []ConnectorOffset
		want map[TopicPartition]*int64
		err  string
	}{
		{"numbers and strings", []ConnectorOffset{
			{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": float64(3)}, Offset: map[string]any{"kafka_offset": "1000"}},
			{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": "4"}, Offset: map[string]any{"kafka_offset": int64(9)}},
			{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": json.Number("5")}},
		}, map[TopicPartition]*int64{{"t", 3}: i64(1000), {"t", 4}: i64(9), {"t", 5}: nil}, ""},
		{"no partition", []ConnectorOffset{{Offset: map[string]any{}}}, nil,
			"The partition for a sink connector offset cannot be null or missing"},
		{"missing key", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": "t"}}}, nil,
			"The partition for a sink connector offset must contain the keys 'kafka_topic' and 'kafka_partition'"},
		{"null topic", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": nil, "kafka_partition": 1}}}, nil,
			"Kafka topic names must be valid strings and may not be null"},
		{"null partition", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": nil}}}, nil,
			"Kafka partitions must be valid numbers and may not be null"},
		{"bad partition", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": "x"}}}, nil,
			"Failed to parse the following Kafka partition value in the provided offsets: 'x'. Partition values for sink connectors need to be integers."},
		{"offset without key", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": 1}, Offset: map[string]any{"o": 1}}}, nil,
			"The offset for a sink connector should either be null or contain the key 'kafka_offset'"},
		{"fractional offset", []ConnectorOffset{{Partition: map[string]any{"kafka_topic": "t", "kafka_partition": 1}, Offset: map[string]any{"kafka_offset": 1.5}}}, nil,
			"Failed to parse the following Kafka offset value in the provided offsets: '1.5'. Offset values for sink connectors need to be integers."},
	} {
		got, err := ParseSinkOffsets(tc.in)
		if tc.err != "" {
			if _, ok := err.(*BadOffsetsError); !ok || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: got %v, %v", tc.name, got, err)
		}
	}
}
