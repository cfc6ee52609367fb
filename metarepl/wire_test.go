package metarepl

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/isr"
	"github.com/sluice-io/sluice/metalog"
)

func TestWireRequestRoundTrip(t *testing.T) {
	in := FetchRequest{Replica: metalog.Voter{ID: 3, Incarnation: caspaxos.Incarnation{1, 2, 3}}, CurrentEpoch: 7,
		FetchOffset: 1234, LastFetchedEpoch: 6, LogStartOffset: 0, MaxBytes: 1 << 20, MaxWaitMs: 500}
	b, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out FetchRequest
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if out != in {
		t.Fatalf("decoded %+v, want %+v", out, in)
	}
	for _, bad := range [][]byte{b[:len(b)-1], append(b, 0), nil} {
		if err := out.UnmarshalBinary(bad); !errors.Is(err, ErrBadMessage) {
			t.Fatalf("bad request %x decoded: %v", bad, err)
		}
	}
	next := append([]byte(nil), b...)
	next[5] = wireVersion + 1
	if err := out.UnmarshalBinary(next); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("unknown version decoded: %v", err)
	}
	if err := new(FetchResponse).UnmarshalBinary(b); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("request decoded as a response: %v", err)
	}
}

func TestWireResponseRoundTrip(t *testing.T) {
	in := FetchResponse{Epoch: 4, HighWatermark: 10, LogEndOffset: 12,
		Batches: []Batch{batchOf(10, 4, "x", "yy"), batchOf(12, 4, "")}}
	b, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out FetchResponse
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(describe(out.Batches), describe(in.Batches)) || out.HighWatermark != 10 || out.LogEndOffset != 12 ||
		out.Epoch != 4 || out.Err != nil || out.Diverging != nil {
		t.Fatalf("decoded %+v, want %+v", out, in)
	}
	// A flipped record byte fails the batch checksum.
	bad := append([]byte(nil), b...)
	bad[len(bad)-10] ^= 1
	if err := out.UnmarshalBinary(bad); !errors.Is(err, ErrBadMessage) {
		t.Fatalf("corrupt batch decoded: %v", err)
	}
	// Errors keep their Kafka code; a DivergingEpoch travels.
	in = FetchResponse{Epoch: 5, Err: metalog.ErrDeposed, Diverging: &isr.EpochEndOffset{Epoch: 3, EndOffset: 7}}
	if b, err = in.MarshalBinary(); err != nil {
		t.Fatal(err)
	}
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !errors.Is(out.Err, kerr.NotController) || *out.Diverging != *in.Diverging {
		t.Fatalf("decoded %+v", out)
	}
	in = FetchResponse{Err: errors.New("plain")}
	b, _ = in.MarshalBinary()
	if err := out.UnmarshalBinary(b); err != nil || !errors.Is(out.Err, kerr.UnknownServerError) {
		t.Fatalf("plain error decoded as %v (%v)", out.Err, err)
	}
}

func TestWireResponseCarriesCheckpointAndStartEpoch(t *testing.T) {
	in := FetchResponse{Epoch: 4, HighWatermark: 11, LogStartOffset: 10, LogEndOffset: 12, LogStartEpoch: 3,
		Batches: []Batch{checkpointOf(10, 3, "state"), batchOf(11, 4, "x")}}
	b, err := in.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	var out FetchResponse
	if err := out.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if out.LogStartEpoch != 3 || out.LogStartOffset != 10 || len(out.Batches) != 2 || !out.Batches[0].Checkpoint || out.Batches[1].Checkpoint {
		t.Fatalf("decoded %+v", out)
	}
	// A version 1 response (frames without attributes, no start epoch) is
	// still decoded.
	v1 := append([]byte(nil), wireMagic...)
	v1 = append(v1, kindResponse, 1)
	v1 = binary.BigEndian.AppendUint32(v1, 4) // epoch
	v1 = binary.BigEndian.AppendUint16(v1, 0) // error code
	v1 = binary.BigEndian.AppendUint16(v1, 0) // message
	v1 = append(v1, 0)                        // no diverging
	v1 = binary.BigEndian.AppendUint64(v1, 1) // high watermark
	v1 = binary.BigEndian.AppendUint64(v1, 0) // log start
	v1 = binary.BigEndian.AppendUint64(v1, 1) // log end
	v1 = binary.BigEndian.AppendUint32(v1, 1) // one batch
	v1 = appendFrameV1(v1, batchOf(0, 4, "old"))
	if err := out.UnmarshalBinary(v1); err != nil {
		t.Fatal(err)
	}
	if out.LogStartEpoch != isr.UndefinedEpoch || len(out.Batches) != 1 || string(out.Batches[0].Records[0]) != "old" {
		t.Fatalf("version 1 decoded as %+v", out)
	}
}
