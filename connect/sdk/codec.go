package sdk

import (
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// pollCodec is the server's gRPC codec: protobuf for every message, but a
// Poll answer's packed batch goes to the transport as it is rather than
// copied into the marshalled message first. A file tail's batch is ~2 MB;
// the copy was ~4% of the plugin's CPU. The bytes on the wire are what
// proto.Marshal gives with the packed field last, which any protobuf
// reader takes (fields may come in any order).
type pollCodec struct{}

// packedInline is the packed batch below which copying it is cheaper than
// a second buffer for the transport.
const packedInline = 32 << 10

func (pollCodec) Name() string { return protoenc.Name }

func (pollCodec) Marshal(v any) (mem.BufferSlice, error) {
	resp, ok := v.(*connectv1.PollResponse)
	if !ok || len(resp.GetPacked()) < packedInline {
		return encoding.GetCodecV2(protoenc.Name).Marshal(v)
	}
	rest := &connectv1.PollResponse{BatchSeq: resp.GetBatchSeq(), Records: resp.GetRecords(), Positions: resp.GetPositions()}
	head, err := proto.Marshal(rest)
	if err != nil {
		return nil, err
	}
	head = protowire.AppendTag(head, connectv1.PollPackedField, protowire.BytesType)
	head = protowire.AppendVarint(head, uint64(len(resp.Packed)))
	// The packed buffer is this batch's own (encodeBatch makes a new one
	// per batch), so the transport may hold it until it is written.
	return mem.BufferSlice{mem.SliceBuffer(head), mem.SliceBuffer(resp.Packed)}, nil
}

func (pollCodec) Unmarshal(data mem.BufferSlice, v any) error {
	return encoding.GetCodecV2(protoenc.Name).Unmarshal(data, v)
}
