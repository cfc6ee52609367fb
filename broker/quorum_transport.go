package broker

import (
	"context"
	"fmt"
	"net"

	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/quorumnet"
)

// The controller quorum's traffic between voters (issue 17; the wiring's
// step 1 in docs/architecture.md, The cluster) is one internal request,
// quorumnet.APIKey, with Kafka's framing and request header so the netio
// engines carry it like any other. Its body is the sender's node id, a
// channel and opaque bytes: a package voter envelope (fire-and-forget,
// answered with an empty acknowledgement) or an encoded metarepl fetch
// (answered with the encoded response). quorumnet defines the body and
// sends it; the broker only routes it to what this node runs.
//
// Handle routes the key before its API table, which holds Kafka's keys
// only, so it is never listed in ApiVersions. It is served only on the
// CONTROLLER listener of a node with the controller role: elsewhere, or
// with nothing registered for the channel, the answer is an error code,
// since a misdirected peer (a wrong controller.quorum.voters) must learn
// it without losing its connection. A body that cannot be parsed closes
// the connection, as any other malformed request.

// quorumHandlers are what this node runs for the quorum's channels; a nil
// one answers quorumnet.CodeNoHandler.
type quorumHandlers struct {
	// deliver takes a voter envelope (voter.Voter.Deliver): it must not
	// block.
	deliver func(from int32, payload []byte) error
	// fetch serves a metadata-log fetch from its bytes
	// (quorumnet.FetchHandler over metarepl.Replica.HandleFetch); it may
	// hold the request for its long poll and must return soon after ctx
	// ends (the connection died or the broker is stopping).
	fetch func(ctx context.Context, from int32, req []byte) ([]byte, error)
	// identity answers quorumnet.ChannelIdentity (quorum_identity.go).
	identity func() []byte
}

// setQuorumHandlers makes h serve the quorum's requests from now on,
// replacing what was set before (the zero value stops serving them). The
// payloads handed over are the request's own bytes, not reused by the
// engine.
func (b *Broker) setQuorumHandlers(h quorumHandlers) { b.quorum.Store(&h) }

// handleQuorum answers one quorumnet.APIKey request.
func (b *Broker) handleQuorum(ctx context.Context, r *netio.Request) *netio.Response {
	if r.Version != quorumnet.APIVersion {
		return quorumAnswer(quorumnet.Response{ErrorCode: quorumnet.CodeUnsupportedVersion,
			ErrorMessage: fmt.Sprintf("version %d; this node speaks version %d", r.Version, quorumnet.APIVersion)})
	}
	if !b.onControllerListener(r.Conn) {
		// Debug only: a misconfigured voter sends several a second,
		// and its own log says why they fail.
		b.logger.Debug("quorum request outside the CONTROLLER listener refused", "remote", addr(r.Conn), "client_id", strOrEmpty(r.ClientID))
		return quorumAnswer(quorumnet.Response{ErrorCode: quorumnet.CodeWrongListener,
			ErrorMessage: "quorum requests are served only on the CONTROLLER listener of a controller"})
	}
	req, err := quorumnet.ParseRequest(r.Body)
	if err != nil {
		b.logger.Warn("malformed quorum request; closing connection", "client_id", strOrEmpty(r.ClientID), "remote", addr(r.Conn), "err", err)
		return &netio.Response{CloseAfter: true}
	}
	h := b.quorum.Load()
	if h == nil {
		h = &quorumHandlers{}
	}
	switch req.Channel {
	case quorumnet.ChannelEnvelope:
		if h.deliver == nil {
			return quorumNoHandler(req.Channel)
		}
		if err := h.deliver(req.From, req.Payload); err != nil {
			return quorumAnswer(quorumnet.Response{ErrorCode: quorumnet.CodeHandlerFailed, ErrorMessage: err.Error()})
		}
		return quorumAnswer(quorumnet.Response{})
	case quorumnet.ChannelIdentity:
		if h.identity == nil {
			return quorumNoHandler(req.Channel)
		}
		return quorumAnswer(quorumnet.Response{Payload: h.identity()})
	default: // quorumnet.ChannelFetch: ParseRequest knows no other
		if h.fetch == nil {
			return quorumNoHandler(req.Channel)
		}
		out, err := h.fetch(ctx, req.From, req.Payload)
		if err != nil {
			return quorumAnswer(quorumnet.Response{ErrorCode: quorumnet.CodeHandlerFailed, ErrorMessage: err.Error()})
		}
		return quorumAnswer(quorumnet.Response{Payload: out})
	}
}

func quorumNoHandler(ch quorumnet.Channel) *netio.Response {
	return quorumAnswer(quorumnet.Response{ErrorCode: quorumnet.CodeNoHandler,
		ErrorMessage: fmt.Sprintf("this node serves no quorum %s requests (yet)", ch)})
}

func quorumAnswer(resp quorumnet.Response) *netio.Response {
	out := &netio.Response{}
	out.AppendBytes(resp.AppendTo(nil))
	return out
}

// onControllerListener reports whether a connection came in on this
// node's CONTROLLER listener, which only a controller in a cluster binds.
// Both engines record a connection's local address (the accepted socket's
// own), and the listeners are bound by this process, so no other listener
// can share the CONTROLLER listener's port on an address it covers: a
// wildcard listener matches by port, a specific one by address and port.
func (b *Broker) onControllerListener(c netio.ConnInfo) bool {
	if b.ctrlListener == nil {
		return false
	}
	ln, ok := b.ctrlListener.Addr().(*net.TCPAddr)
	local, ok2 := c.Local.(*net.TCPAddr)
	if !ok || !ok2 || local.Port != ln.Port {
		return false
	}
	return ln.IP.IsUnspecified() || ln.IP.Equal(local.IP)
}
