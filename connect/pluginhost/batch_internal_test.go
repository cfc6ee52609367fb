package pluginhost

import (
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

func TestPutRequestPacksWhatItCan(t *testing.T) {
	raw := []*data.Record{{Topic: "t", KafkaOffset: 1, Value: []byte("v")}, {Topic: "t", KafkaOffset: 2, Key: "k"}}
	structured := append(raw[:1:1], &data.Record{Topic: "t", Value: int64(3)})
	schemaless := append(raw[:1:1], &data.Record{Topic: "t", Value: map[string]any{"n": int64(3)}})
	for _, c := range []struct {
		name          string
		packed, trees bool
		recs          []*data.Record
		want          bool
	}{
		{"raw to a packing task", true, false, raw, true},
		{"raw to an older task", false, false, raw, false},
		{"structured to a packing task", true, false, structured, false},
		{"structured to a task reading trees", true, true, structured, true},
		{"a schemaless map to a task reading trees", true, true, schemaless, true},
		{"a schemaless map to a task reading version 1", true, false, schemaless, false},
	} {
		st := &SinkTask{packed: c.packed, trees: c.trees}
		req, err := st.putRequest(c.recs)
		if err != nil {
			t.Fatal(err)
		}
		if got := len(req.GetPacked()) > 0; got != c.want || got == (len(req.GetRecords()) == len(c.recs)) {
			t.Errorf("%s: packed %v with %d messages", c.name, got, len(req.GetRecords()))
		}
	}
}

func TestBatchFromProto(t *testing.T) {
	rec := func(pj, oj string) *connectv1.SourceRecord {
		return &connectv1.SourceRecord{Topic: "t", Partition: -1,
			Position: &connectv1.SourceOffset{PartitionJson: []byte(pj), OffsetJson: []byte(oj)}}
	}
	// Positions derived from the records: newest per partition, keyed
	// canonically even when the plugin's JSON is not.
	b, err := batchFromProto(&connectv1.PollResponse{BatchSeq: 1, Records: []*connectv1.SourceRecord{
		rec(`{"f":"a", "n":1}`, `{"o":1}`), rec(`{"f":"b"}`, `{"o":2}`), rec(`{"f":"a", "n":1}`, `{"o":3}`), rec("", ""),
	}})
	if err != nil {
		t.Fatal(err)
	}
	want := []BatchPosition{
		{Key: `{"f":"a","n":1}`, Position: connectv1.Position{Partition: map[string]any{"f": "a", "n": int64(1)}, Offset: map[string]any{"o": int64(3)}}},
		{Key: `{"f":"b"}`, Position: connectv1.Position{Partition: map[string]any{"f": "b"}, Offset: map[string]any{"o": int64(2)}}},
	}
	if len(b.Records) != 4 || !reflect.DeepEqual(b.Positions, want) {
		t.Fatalf("derived positions %+v", b.Positions)
	}
	// Positions as sent win, re-keyed canonically.
	packed, _ := connectv1.AppendPacked(nil, []*data.Record{{Topic: "t", Value: []byte("v")}})
	b, err = batchFromProto(&connectv1.PollResponse{BatchSeq: 2, Packed: packed, Positions: []*connectv1.SourceOffset{
		{PartitionJson: []byte(`{ "n":1,"f":"a"}`), OffsetJson: []byte(`{"o":9}`)}}})
	if err != nil || len(b.Records) != 1 || b.Records[0].KafkaOffset != -1 || len(b.Positions) != 1 || b.Positions[0].Key != `{"f":"a","n":1}` {
		t.Fatalf("packed batch: %+v %v", b, err)
	}
	for name, resp := range map[string]*connectv1.PollResponse{
		"packed and messages": {Packed: packed, Records: []*connectv1.SourceRecord{rec("", "")}},
		"malformed packed":    {Packed: packed[:len(packed)-1]},
		"position, no part":   {Positions: []*connectv1.SourceOffset{{OffsetJson: []byte(`{}`)}}},
		"bad position JSON":   {Positions: []*connectv1.SourceOffset{{PartitionJson: []byte(`{`)}}},
	} {
		if _, err := batchFromProto(resp); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

func TestPluginEnvGOGC(t *testing.T) {
	for _, c := range []struct {
		worker, extra []string
		want          string
	}{
		{[]string{"PATH=/bin"}, nil, "PATH=/bin GOGC=400"},
		{[]string{"GOGC=off"}, nil, "GOGC=off"},
		{nil, []string{"GOGC=50", "GOMEMLIMIT=1GiB"}, "GOGC=50 GOMEMLIMIT=1GiB"},
	} {
		got := pluginEnv(c.worker, c.extra)
		if s := strings.Join(got, " "); s != c.want {
			t.Errorf("pluginEnv(%v, %v) = %s, want %s", c.worker, c.extra, s, c.want)
		}
	}
}
