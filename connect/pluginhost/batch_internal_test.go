package pluginhost

import (
	"encoding/binary"
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
	row := data.StructOf("row", data.F("id", data.Int64Schema))
	schemas := append(raw[:1:1], &data.Record{Topic: "t", ValueSchema: row, Value: data.NewStruct(row).MustPut("id", int64(3))})
	misfit := append(raw[:1:1], &data.Record{Topic: "t", ValueSchema: data.Int32Schema, Value: int64(3)})
	for _, c := range []struct {
		name   string
		packed uint32 // the version the task negotiated at Start
		recs   []*data.Record
		want   uint64 // the packed version sent, 0 for messages
	}{
		{"raw to a packing task", 1, raw, 1},
		{"raw to an older task", 0, raw, 0},
		{"structured to a packing task", 1, structured, 0},
		{"structured to a task reading trees", 2, structured, 2},
		{"a schemaless map to a task reading trees", 2, schemaless, 2},
		{"a schemaless map to a task reading version 1", 1, schemaless, 0},
		{"a struct to a task reading version 2", 2, schemas, 0},
		{"a struct to a task reading version 3", 3, schemas, 3},
		{"a value not fitting its schema", 3, misfit, 0},
	} {
		st := &SinkTask{packed: c.packed}
		req, err := st.putRequest(c.recs)
		if err != nil {
			t.Fatal(err)
		}
		got := uint64(0)
		if p := req.GetPacked(); len(p) > 0 {
			got, _ = binary.Uvarint(p)
		}
		if got != c.want || (got > 0) == (len(req.GetRecords()) == len(c.recs)) {
			t.Errorf("%s: packed version %d with %d messages, want version %d", c.name, got, len(req.GetRecords()), c.want)
		}
		if got > 0 {
			back, err := connectv1.Unpack(req.GetPacked())
			if err != nil || len(back) != len(c.recs) || !data.ValueEqual(back[1].Value, c.recs[1].Value) {
				t.Errorf("%s: unpacked %v, %v", c.name, back, err)
			}
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
	// Whichever version the plugin wrote, up to the newest the host asks
	// for: an older plugin answering version 2 still decodes.
	row := data.StructOf("row", data.F("id", data.Int64Schema))
	for _, c := range []struct {
		version uint32
		rec     *data.Record
	}{
		{1, &data.Record{Topic: "t", Value: []byte("v")}},
		{2, &data.Record{Topic: "t", Value: map[string]any{"n": int64(1)}}},
		{3, &data.Record{Topic: "t", ValueSchema: row, Value: data.NewStruct(row).MustPut("id", int64(1))}},
	} {
		buf, err := connectv1.AppendPackedVersion(nil, []*data.Record{c.rec}, c.version)
		if err != nil {
			t.Fatal(err)
		}
		b, err := batchFromProto(&connectv1.PollResponse{BatchSeq: 3, Packed: buf, Positions: []*connectv1.SourceOffset{
			{PartitionJson: []byte(`{"f":"a"}`), OffsetJson: []byte(`{"o":1}`)}}})
		if err != nil || len(b.Records) != 1 || !c.rec.ValueSchema.Equal(b.Records[0].ValueSchema) ||
			!data.ValueEqual(c.rec.Value, b.Records[0].Value) || b.Records[0].KafkaOffset != -1 {
			t.Fatalf("packed version %d: %+v %v", c.version, b, err)
		}
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
