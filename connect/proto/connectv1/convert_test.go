package connectv1_test

import (
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
	"github.com/sluice-io/sluice/connect/proto/connectv1/connectv1test"
)

func TestSourceRecordRoundTrip(t *testing.T) {
	for _, r := range connectv1test.AllTypes() {
		t.Run(r.Topic, func(t *testing.T) {
			p, err := connectv1.SourceRecordToProto(r)
			if err != nil {
				t.Fatal(err)
			}
			// Through the wire bytes, not just the Go messages.
			b, err := proto.Marshal(p)
			if err != nil {
				t.Fatal(err)
			}
			var q connectv1.SourceRecord
			if err := proto.Unmarshal(b, &q); err != nil {
				t.Fatal(err)
			}
			got, err := connectv1.SourceRecordFromProto(&q)
			if err != nil {
				t.Fatal(err)
			}
			if err := connectv1test.Diff(r, got); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestSinkRecordRoundTrip(t *testing.T) {
	for i, r := range connectv1test.AllTypes() {
		r.KafkaOffset, r.OriginalTopic, r.OriginalPartition, r.OriginalOffset = int64(100+i), "orig", 9, int64(200+i)
		r.SourcePartition, r.SourceOffset = nil, nil
		p, err := connectv1.SinkRecordToProto(r)
		if err != nil {
			t.Fatal(err)
		}
		got, err := connectv1.SinkRecordFromProto(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := connectv1test.Diff(r, got); err != nil {
			t.Fatal(err)
		}
		if got.KafkaOffset != r.KafkaOffset || got.OriginalTopic != "orig" || got.OriginalPartition != 9 || got.OriginalOffset != r.OriginalOffset {
			t.Fatalf("sink positions lost: %+v", got)
		}
	}
}

func TestRawFastPath(t *testing.T) {
	d, err := connectv1.DataToProto(nil, []byte("line"))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Body.(*connectv1.Data_Raw); !ok {
		t.Fatalf("schemaless bytes should take the raw path, got %T", d.Body)
	}
	// A Decimal is bytes on the wire but never raw: its schema gives meaning.
	d, err = connectv1.DataToProto(data.DecimalSchema(2), data.NewDecimal(-1234, 2))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := d.Body.(*connectv1.Data_Value); !ok {
		t.Fatalf("decimal took %T", d.Body)
	}
	_, v, err := connectv1.DataFromProto(d)
	if err != nil || v.(data.Decimal).String() != "-12.34" {
		t.Fatalf("decimal round trip: %v %v", v, err)
	}
}

func TestEncodeRejectsMismatch(t *testing.T) {
	for _, c := range []struct {
		s *data.Schema
		v any
	}{
		{data.DecimalSchema(2), "1.00"},
		{data.TimestampSchema, int64(1)},
		{nil, struct{}{}},
		{data.DecimalSchema(2), data.NewDecimal(1, 3)},
	} {
		if _, err := connectv1.DataToProto(c.s, c.v); err == nil {
			t.Errorf("%v %#v: encoded without error", c.s, c.v)
		}
	}
}

func TestOffsetJSONKeepsInt64(t *testing.T) {
	m, err := connectv1.OffsetFromJSON([]byte(`{"lsn":9223372036854775806,"f":1.5,"a":[1]}`))
	if err != nil {
		t.Fatal(err)
	}
	if m["lsn"] != int64(9223372036854775806) || m["f"] != 1.5 || m["a"].([]any)[0] != int64(1) {
		t.Fatalf("got %#v", m)
	}
}
