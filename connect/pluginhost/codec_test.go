package pluginhost

import (
	"testing"
	"unsafe"

	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// pollCodec decodes every Poll answer exactly as protobuf does, with the
// packed field a slice of the one buffer it copied the frames into.
func TestPollCodecDecodesAsProto(t *testing.T) {
	packed, err := connectv1.AppendPacked(nil, []*data.Record{{Topic: "t", Value: "line one"}, {Topic: "t", Value: "line two"}})
	if err != nil {
		t.Fatal(err)
	}
	pos := []*connectv1.SourceOffset{{PartitionJson: []byte(`{"f":"a"}`), OffsetJson: []byte(`{"o":9}`)}}
	msgs := map[string]*connectv1.PollResponse{
		"empty":    {},
		"packed":   {BatchSeq: 7, Positions: pos, Packed: packed},
		"messages": {BatchSeq: 8, Positions: pos, Records: []*connectv1.SourceRecord{{Topic: "t", Partition: -1}}},
	}
	for name, m := range msgs {
		buf, err := proto.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		// Split the wire bytes over several buffers, as frames arrive.
		var frames mem.BufferSlice
		for i := 0; i < len(buf); i += 5 {
			frames = append(frames, mem.SliceBuffer(append([]byte(nil), buf[i:min(i+5, len(buf))]...)))
		}
		var got connectv1.PollResponse
		if err := (pollCodec{}).Unmarshal(frames, &got); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !proto.Equal(&got, m) {
			t.Errorf("%s: decoded %v, want %v", name, &got, m)
		}
	}

	// Fields in any order, and a repeated packed field (the last wins):
	// still what proto.Unmarshal says, and the packed bytes are not copied.
	var buf []byte
	buf = protowire.AppendTag(buf, connectv1.PollPackedField, protowire.BytesType)
	buf = protowire.AppendBytes(buf, []byte("old"))
	buf = protowire.AppendTag(buf, 3, protowire.BytesType)
	posBytes, _ := proto.Marshal(pos[0])
	buf = protowire.AppendBytes(buf, posBytes)
	buf = protowire.AppendTag(buf, connectv1.PollPackedField, protowire.BytesType)
	buf = protowire.AppendBytes(buf, packed)
	buf = protowire.AppendTag(buf, 1, protowire.VarintType)
	buf = protowire.AppendVarint(buf, 42)
	var want, got connectv1.PollResponse
	if err := proto.Unmarshal(buf, &want); err != nil {
		t.Fatal(err)
	}
	if err := decodePollResponse(buf, &got); err != nil {
		t.Fatal(err)
	}
	if !proto.Equal(&got, &want) || got.BatchSeq != 42 || string(got.Packed) != string(packed) {
		t.Fatalf("reordered fields: decoded %v, want %v", &got, &want)
	}
	start := uintptr(unsafe.Pointer(&buf[0]))
	if p := uintptr(unsafe.Pointer(&got.Packed[0])); p < start || p >= start+uintptr(len(buf)) {
		t.Error("the packed field was copied, not sliced from the buffer")
	}
	if cap(got.Packed) != len(got.Packed) {
		t.Error("the packed field's capacity runs into the bytes after it")
	}

	// A truncated message fails, as proto.Unmarshal does.
	for _, cut := range []int{1, len(buf) - 1} {
		if err := decodePollResponse(buf[:cut], &got); err == nil {
			t.Errorf("truncated to %d bytes: no error", cut)
		}
	}
}

// Other messages go through the proto codec unchanged.
func TestPollCodecOtherMessages(t *testing.T) {
	m := &connectv1.PollRequest{MaxRecords: 8000, MaxWaitMs: 500, BatchPositions: true}
	out, err := (pollCodec{}).Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	var got connectv1.PollRequest
	if err := (pollCodec{}).Unmarshal(out, &got); err != nil || !proto.Equal(&got, m) {
		t.Fatalf("round trip: %v %v", &got, err)
	}
	if (pollCodec{}).Name() != "proto" {
		t.Errorf("name %q: the content-subtype must stay proto's", (pollCodec{}).Name())
	}
}
