package sdk

import (
	"bytes"
	"testing"
	"unsafe"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// A Poll answer marshals to bytes protobuf reads back as the same
// message, with a large packed batch handed to the transport uncopied;
// small batches and other messages are proto's own bytes.
func TestPollCodecMarshal(t *testing.T) {
	pos := []*connectv1.SourceOffset{{PartitionJson: []byte(`{"f":"a"}`), OffsetJson: []byte(`{"o":9}`)}}
	big := bytes.Repeat([]byte("x"), packedInline+1)
	for name, m := range map[string]proto.Message{
		"large packed": &connectv1.PollResponse{BatchSeq: 3, Positions: pos, Packed: big},
		"small packed": &connectv1.PollResponse{BatchSeq: 4, Positions: pos, Packed: []byte("tiny")},
		"messages":     &connectv1.PollResponse{BatchSeq: 5, Records: []*connectv1.SourceRecord{{Topic: "t", Partition: -1}}},
		"empty":        &connectv1.PollResponse{},
		"other":        &connectv1.CommitRequest{BatchSeq: 7},
	} {
		out, err := (pollCodec{}).Marshal(m)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		back := m.ProtoReflect().New().Interface()
		if err := proto.Unmarshal(out.Materialize(), back); err != nil || !proto.Equal(back, m) {
			t.Fatalf("%s: read back %v (%v), want %v", name, back, err, m)
		}
		if name == "large packed" {
			if len(out) != 2 || unsafe.SliceData(out[1].ReadOnlyData()) != unsafe.SliceData(big) {
				t.Errorf("the packed batch was copied")
			}
		} else if want, _ := proto.Marshal(m); !bytes.Equal(out.Materialize(), want) {
			t.Errorf("%s: not proto's bytes", name)
		}
		var viaCodec connectv1.CommitRequest
		if name == "other" {
			if err := (pollCodec{}).Unmarshal(out, &viaCodec); err != nil || viaCodec.BatchSeq != 7 {
				t.Errorf("unmarshal through the codec: %v %v", &viaCodec, err)
			}
		}
	}
	if (pollCodec{}).Name() != "proto" {
		t.Error("the content-subtype must stay proto's")
	}
}

// The codec rebuilds a Poll answer without its packed field by naming the
// other fields: a field added to PollResponse must be added there too, or
// large batches would silently drop it. This fails when one is added.
func TestPollCodecKnowsEveryPollResponseField(t *testing.T) {
	copied := map[string]bool{"batch_seq": true, "records": true, "positions": true, "packed": true}
	fields := (&connectv1.PollResponse{}).ProtoReflect().Descriptor().Fields()
	for i := range fields.Len() {
		f := fields.Get(i)
		if !copied[string(f.Name())] {
			t.Errorf("PollResponse field %q (number %d) is not carried by pollCodec.Marshal", f.Name(), f.Number())
		}
		if f.Name() == "packed" && f.Number() != connectv1.PollPackedField {
			t.Errorf("packed is field %d, pollCodec writes %d", f.Number(), connectv1.PollPackedField)
		}
	}
}
