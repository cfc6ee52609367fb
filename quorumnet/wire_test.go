package quorumnet

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
)

func TestRequestRoundTrip(t *testing.T) {
	for _, r := range []Request{
		{From: 3, Channel: ChannelEnvelope, Payload: []byte("env")},
		{From: 0, Channel: ChannelFetch, Payload: []byte{}},
	} {
		got, err := ParseRequest(r.AppendTo(nil))
		if err != nil || got.From != r.From || got.Channel != r.Channel || !bytes.Equal(got.Payload, r.Payload) {
			t.Fatalf("%+v came back %+v, %v", r, got, err)
		}
	}
}

func TestParseRequestRefusesMalformedBodies(t *testing.T) {
	good := Request{From: 1, Channel: ChannelFetch, Payload: []byte("abc")}.AppendTo(nil)
	for name, body := range map[string][]byte{
		"empty":         nil,
		"short":         good[:8],
		"cut payload":   good[:len(good)-1],
		"trailing":      append(append([]byte(nil), good...), 0),
		"channel 0":     Request{From: 1, Channel: 0}.AppendTo(nil),
		"channel 9":     Request{From: 1, Channel: 9}.AppendTo(nil),
		"negative from": Request{From: -1, Channel: ChannelEnvelope}.AppendTo(nil),
	} {
		if _, err := ParseRequest(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

func TestResponseRoundTripAndErr(t *testing.T) {
	for _, r := range []Response{
		{},
		{Payload: []byte("answer")},
		{ErrorCode: CodeNoHandler, ErrorMessage: "no voter"},
	} {
		got, err := ParseResponse(r.AppendTo(nil))
		if err != nil || got.ErrorCode != r.ErrorCode || got.ErrorMessage != r.ErrorMessage || !bytes.Equal(got.Payload, r.Payload) {
			t.Fatalf("%+v came back %+v, %v", r, got, err)
		}
	}
	if err := (Response{}).Err(); err != nil {
		t.Fatalf("code 0: %v", err)
	}
	err := Response{ErrorCode: CodeWrongListener, ErrorMessage: "not here"}.Err()
	if !errors.Is(err, kerr.InvalidRequest) || !strings.Contains(err.Error(), "not here") {
		t.Fatalf("error %v", err)
	}
	good := Response{ErrorMessage: "m", Payload: []byte("p")}.AppendTo(nil)
	for _, body := range [][]byte{good[:3], good[:len(good)-1], append(append([]byte(nil), good...), 1), {0, 0, 0x7f, 0}} {
		if _, err := ParseResponse(body); !errors.Is(err, ErrMalformed) {
			t.Errorf("% x: err %v, want ErrMalformed", body, err)
		}
	}
}

// FetchHandler decodes, checks the sender against the fetch's replica id,
// serves and encodes.
func TestFetchHandler(t *testing.T) {
	h := FetchHandler(func(_ context.Context, req metarepl.FetchRequest) metarepl.FetchResponse {
		return metarepl.FetchResponse{Epoch: req.CurrentEpoch, HighWatermark: req.FetchOffset}
	})
	raw, _ := metarepl.FetchRequest{Replica: metalog.Voter{ID: 2}, CurrentEpoch: 4, FetchOffset: 17}.MarshalBinary()
	out, err := h(context.Background(), 2, raw)
	if err != nil {
		t.Fatal(err)
	}
	var resp metarepl.FetchResponse
	if err := resp.UnmarshalBinary(out); err != nil || resp.Epoch != 4 || resp.HighWatermark != 17 {
		t.Fatalf("answer %+v, %v", resp, err)
	}
	if _, err := h(context.Background(), 3, raw); err == nil {
		t.Fatal("node 3 fetched as replica 2")
	}
	if _, err := h(context.Background(), 2, []byte("junk")); !errors.Is(err, metarepl.ErrBadMessage) {
		t.Fatalf("junk: %v", err)
	}
}
