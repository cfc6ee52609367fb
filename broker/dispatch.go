package broker

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/coordinator"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/quorumnet"
)

// Handle implements netio.Handler: decode, route to the API's handler,
// encode. A request that cannot be decoded closes the connection, as Kafka
// does: after a framing or schema error nothing later on the wire can be
// trusted.
func (b *Broker) Handle(ctx context.Context, r *netio.Request) *netio.Response {
	if r.Key == quorumnet.APIKey {
		// The controller quorum's internal request: not a Kafka key, so
		// not in the API table (quorum_transport.go).
		return b.handleQuorum(ctx, r)
	}
	a := lookup(r.Key, r.Version)
	if a == nil {
		if r.Key == kmsg.ApiVersions.Int16() {
			// KIP-511: answer a too-new ApiVersions with v0 and our
			// table, so the client can retry with a version we know.
			return encode(b.apiVersionsUnsupported())
		}
		b.logger.Warn("unsupported request; closing connection", "api_key", r.Key, "api_version", r.Version, "client_id", strOrEmpty(r.ClientID), "remote", addr(r.Conn))
		return &netio.Response{CloseAfter: true}
	}
	b.metrics.inFlight.Add(1)
	defer b.metrics.inFlight.Add(-1)
	req := kmsg.RequestForKey(r.Key)
	req.SetVersion(r.Version)
	if err := req.ReadFrom(r.Body); err != nil {
		b.logger.Warn("malformed request; closing connection", "api_key", r.Key, "api_version", r.Version, "client_id", strOrEmpty(r.ClientID), "remote", addr(r.Conn), "err", err)
		return &netio.Response{CloseAfter: true}
	}
	if b.ctrl != nil && (!b.loaded.Load() && !servedBeforeLoad(req) || !b.ctrl.ready.Load() && r.Key != kmsg.ApiVersions.Int16()) {
		// A quorum voter serves its CONTROLLER listener while its
		// broker side still starts; what needs the broker waits, and
		// so does everything that needs the voter until its role is
		// started (it answers the other voters' identity requests,
		// not Kafka's, meanwhile: quorumRole.start sets its fields).
		if a.forward {
			resp := forwardFailed(req, kerr.NotController.Code)
			resp.SetVersion(r.Version)
			return encode(resp)
		}
		return &netio.Response{CloseAfter: true}
	}
	if a.raw != nil {
		return a.raw(b, ctx, r, req)
	}
	var resp kmsg.Response
	switch {
	case a.forward && b.ctrl != nil && b.onControllerListener(r.Conn) && !b.isActiveQuorumController():
		// Sent to this voter's controller, which is not the active
		// one (any more): the sender finds the active controller and
		// retries, as with Kafka's NOT_CONTROLLER.
		resp = forwardFailed(req, kerr.NotController.Code)
	case a.forward && b.ctrl != nil && b.onControllerListener(r.Conn):
		resp = a.handle(b, ctx, r, req)
	default:
		// b.meta is read only here, past the controller listener's
		// cases: a quorum voter serves those before NewWith sets it.
		fw, forwarding := forwarder(nil), false
		if a.forward {
			fw, forwarding = b.metaForwarder()
		}
		if forwarding {
			resp = b.forward(ctx, fw, req)
		} else {
			resp = a.handle(b, ctx, r, req)
		}
	}
	resp.SetVersion(r.Version)
	b.metrics.countErrors(a, resp)
	return encode(resp)
}

func encode(resp kmsg.Response) *netio.Response {
	out := &netio.Response{}
	out.AppendBytes(resp.AppendTo(nil))
	return out
}

// client identifies a request's sender to the group coordinator.
func client(r *netio.Request) coordinator.Client {
	return coordinator.Client{ID: strOrEmpty(r.ClientID), Host: clientHost(addr(r.Conn))}
}

func strOrEmpty(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func addr(c netio.ConnInfo) string {
	if c.Remote == nil {
		return ""
	}
	return c.Remote.String()
}

// codeUnknownTopicID is the code handlers use directly when a topic id is
// unknown: the protocol's own condition, not an error from a layer below.
var codeUnknownTopicID = kerr.UnknownTopicID.Code

// servedBeforeLoad reports the requests a quorum voter's controller
// answers while its broker side is still starting: the ones other
// brokers (and this node's own link) need to start.
func servedBeforeLoad(req kmsg.Request) bool {
	switch r := req.(type) {
	case *kmsg.FetchRequest:
		return isMetadataFetch(r)
	case *kmsg.ApiVersionsRequest, *kmsg.BrokerRegistrationRequest, *kmsg.BrokerHeartbeatRequest,
		*kmsg.FetchSnapshotRequest, *kmsg.AllocateProducerIDsRequest, *kmsg.AlterPartitionRequest:
		return true
	}
	return false
}
