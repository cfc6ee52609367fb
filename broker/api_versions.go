package broker

import (
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func (b *Broker) handleApiVersions(req *kmsg.ApiVersionsRequest) *kmsg.ApiVersionsResponse {
	resp := req.ResponseKind().(*kmsg.ApiVersionsResponse)
	resp.ApiKeys = apiKeys(b.runsQuorum())
	return resp
}

// apiVersionsUnsupported is the v0 answer to an ApiVersions version newer
// than ours: the error plus our table, which the client uses to pick again.
func (b *Broker) apiVersionsUnsupported() *kmsg.ApiVersionsResponse {
	resp := kmsg.NewPtrApiVersionsResponse()
	resp.Version = 0
	resp.ErrorCode = kerr.UnsupportedVersion.Code
	resp.ApiKeys = apiKeys(b.runsQuorum())
	return resp
}

// apiKeys is the table ApiVersions advertises; quorum says the cluster's
// controller is a quorum (else its membership APIs are left out).
func apiKeys(quorum bool) []kmsg.ApiVersionsResponseApiKey {
	var keys []kmsg.ApiVersionsResponseApiKey
	for _, a := range registered() {
		if a.quorumOnly && !quorum {
			continue
		}
		keys = append(keys, kmsg.ApiVersionsResponseApiKey{ApiKey: a.key.Int16(), MinVersion: a.min, MaxVersion: a.max})
	}
	return keys
}

// runsQuorum reports whether this node's cluster has a controller quorum
// (controller.quorum.voters lists two or more voters): a voter, or a
// broker whose controller is one.
func (b *Broker) runsQuorum() bool { return len(b.cfg.Voters) > 1 }

func init() {
	register(api{key: kmsg.ApiVersions, min: 0, max: 4,
		handle: method((*Broker).handleApiVersions),
		errorCodes: codes(func(r *kmsg.ApiVersionsResponse, count func(int16)) {
			count(r.ErrorCode)
		}),
	})
}
