package broker

import (
	"context"
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// Envelope (API 58) carries a request a broker forwards to the controller
// on its own behalf, as KRaft brokers do. Only brokers send it, so what
// it carries may do what a client's request may not: a broker that is not
// the controller creates __consumer_offsets this way. Only the APIs the
// controller decides (api.forward) are accepted inside.

// fromBroker marks a context of a request that came in an Envelope.
type fromBroker struct{}

// isFromBroker reports a request a broker forwarded in an Envelope.
func isFromBroker(ctx context.Context) bool { return ctx.Value(fromBroker{}) != nil }

func (b *Broker) handleEnvelope(ctx context.Context, r *netio.Request, req *kmsg.EnvelopeRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.EnvelopeResponse)
	if _, ok := b.ctrlStore(); !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	h, body, err := netio.ReadRequestHeader(req.RequestData)
	if err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	a := lookup(h.Key, h.Version)
	if a == nil || !a.forward || a.handle == nil {
		b.logger.Warn("refused an Envelope: it carries an API the controller does not decide", "api_key", h.Key, "api_version", h.Version)
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	inner := kmsg.RequestForKey(h.Key)
	inner.SetVersion(h.Version)
	if err := inner.ReadFrom(body); err != nil {
		resp.ErrorCode = kerr.InvalidRequest.Code
		return resp
	}
	innerReq := &netio.Request{Key: h.Key, Version: h.Version, ClientID: h.ClientID, Conn: r.Conn}
	out := a.handle(b, context.WithValue(ctx, fromBroker{}, true), innerReq, inner)
	out.SetVersion(h.Version)
	data := binary.BigEndian.AppendUint32(nil, uint32(h.CorrelationID))
	if netio.FlexibleResponse(h.Key, h.Version) {
		data = append(data, 0) // no tagged fields
	}
	resp.ResponseData = out.AppendTo(data)
	return resp
}

func init() {
	register(api{key: kmsg.Envelope, min: 0, max: 0,
		handle: func(b *Broker, ctx context.Context, r *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleEnvelope(ctx, r, req.(*kmsg.EnvelopeRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			count(resp.(*kmsg.EnvelopeResponse).ErrorCode)
		},
	})
}
