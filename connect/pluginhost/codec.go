package pluginhost

import (
	"fmt"
	"strings"
	"unsafe"

	"google.golang.org/grpc"
	"google.golang.org/grpc/encoding"
	protoenc "google.golang.org/grpc/encoding/proto"
	"google.golang.org/grpc/mem"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// pollCodec decodes a Poll answer with one copy of its bytes instead of
// three. gRPC's proto codec copies the received frames into a pooled
// buffer, protobuf copies the packed field out of it into a fresh slice,
// and Unpack copied that again into one string for the text values: for
// a file tail's ~2 MB batches the two extra copies and allocations were
// ~12% of the worker's CPU. Here the frames are copied once into a buffer
// this batch owns (not zeroed first), the packed field is a slice of it,
// and Unpack shares it (UnpackShared). Everything else, and every other
// message, goes through the proto codec unchanged.
type pollCodec struct{}

// pollCallOption makes a Poll use pollCodec.
var pollCallOption = grpc.ForceCodecV2(pollCodec{})

func (pollCodec) Name() string { return protoenc.Name }

func (pollCodec) Marshal(v any) (mem.BufferSlice, error) {
	return encoding.GetCodecV2(protoenc.Name).Marshal(v)
}

func (pollCodec) Unmarshal(data mem.BufferSlice, v any) error {
	resp, ok := v.(*connectv1.PollResponse)
	if !ok {
		return encoding.GetCodecV2(protoenc.Name).Unmarshal(data, v)
	}
	return decodePollResponse(ownedCopy(data), resp)
}

// ownedCopy is data's bytes in one new buffer that nothing else holds.
// strings.Builder allocates without zeroing what is about to be
// overwritten; the buffer is never written to after this, as a string's
// memory must not be.
func ownedCopy(data mem.BufferSlice) []byte {
	n := data.Len()
	if n == 0 {
		return nil
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range data {
		sb.Write(b.ReadOnlyData())
	}
	s := sb.String()
	return unsafe.Slice(unsafe.StringData(s), len(s))
}

// decodePollResponse is proto.Unmarshal of buf into resp, with the packed
// field a slice of buf rather than a copy.
func decodePollResponse(buf []byte, resp *connectv1.PollResponse) error {
	var packed []byte
	var rest []byte // buf without its packed fields, when it has one
	hasPacked := false
	for off := 0; off < len(buf); {
		num, typ, n := protowire.ConsumeTag(buf[off:])
		if n < 0 {
			return fmt.Errorf("poll response: %w", protowire.ParseError(n))
		}
		m := protowire.ConsumeFieldValue(num, typ, buf[off+n:])
		if m < 0 {
			return fmt.Errorf("poll response: field %d: %w", num, protowire.ParseError(m))
		}
		if num == connectv1.PollPackedField && typ == protowire.BytesType {
			if !hasPacked {
				rest = append(make([]byte, 0, off+64), buf[:off]...)
				hasPacked = true
			}
			v, _ := protowire.ConsumeBytes(buf[off+n:])
			packed = v[:len(v):len(v)] // the last one wins, as in proto
		} else if hasPacked {
			rest = append(rest, buf[off:off+n+m]...)
		}
		off += n + m
	}
	if !hasPacked {
		return proto.Unmarshal(buf, resp)
	}
	if err := proto.Unmarshal(rest, resp); err != nil {
		return err
	}
	resp.Packed = packed
	return nil
}
