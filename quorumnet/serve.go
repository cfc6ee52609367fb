package quorumnet

import (
	"context"
	"fmt"

	"github.com/sluice-io/sluice/metarepl"
)

// FetchHandler adapts a metarepl fetch server (Replica.HandleFetch) to
// the bytes a receiver hands over for ChannelFetch: it decodes the
// request, checks that it names the node that sent it, serves it and
// encodes the answer. An error (bytes that are not a fetch, a sender that
// fetches in another node's name) is answered CodeHandlerFailed.
func FetchHandler(serve func(ctx context.Context, req metarepl.FetchRequest) metarepl.FetchResponse) func(ctx context.Context, from int32, req []byte) ([]byte, error) {
	return func(ctx context.Context, from int32, raw []byte) ([]byte, error) {
		var req metarepl.FetchRequest
		if err := req.UnmarshalBinary(raw); err != nil {
			return nil, fmt.Errorf("quorumnet: fetch from node %d: %w", from, err)
		}
		if req.Replica.ID != from {
			// A misconfigured node (two with one id, a wrong voter
			// list) must not be counted in the ISR as another.
			return nil, fmt.Errorf("quorumnet: node %d fetches as replica %d", from, req.Replica.ID)
		}
		resp := serve(ctx, req)
		out, err := resp.MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("quorumnet: encoding the answer to node %d: %w", from, err)
		}
		return out, nil
	}
}
