package broker

import (
	"context"
	"fmt"
	"sort"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// api is everything the broker knows about one Kafka API: the versions it
// really implements, its handler and where its response carries error
// codes. Each API's file registers its own in an init func (kfake's
// regKey), so adding an API is one file and one registration; a test
// checks every registration against kmsg.
type api struct {
	key kmsg.Key
	// min and max bound the versions served. ApiVersions advertises
	// exactly these, and dispatch refuses anything outside them, so the two
	// cannot disagree.
	min, max int16
	// handle answers a decoded request; Handle sets the version, counts
	// the error codes and encodes.
	handle func(b *Broker, ctx context.Context, r *netio.Request, req kmsg.Request) kmsg.Response
	// raw, instead of handle, answers with frames it builds itself (or
	// nil: no answer), and counts its own errors (with errorCodes, if set).
	raw func(b *Broker, ctx context.Context, r *netio.Request, req kmsg.Request) *netio.Response
	// errorCodes calls count with every error code in resp, request-level
	// and per topic, partition or group (sluice_request_errors_total).
	// Only a raw handler that counts its codes otherwise leaves it nil.
	errorCodes func(resp kmsg.Response, count func(code int16))
	// forward marks a request only the controller decides: on a broker
	// whose metadata comes from a controller elsewhere it is sent there
	// and answered with the controller's answer (cluster_link.go).
	forward bool
	// quorumOnly marks an API of a controller quorum (AddRaftVoter,
	// RemoveRaftVoter): ApiVersions advertises it only on a node of a
	// cluster whose controller is a quorum.
	quorumOnly bool
}

// apis is indexed by API key; nil for APIs the broker does not serve.
// Filled by init funcs, read-only afterwards.
var apis [128]*api

// register adds a to the table. A duplicate or malformed registration is a
// programming error found at start.
func register(a api) {
	k := a.key.Int16()
	switch {
	case k < 0 || int(k) >= len(apis):
		panic(fmt.Sprintf("register API key %d: out of range", k))
	case apis[k] != nil:
		panic(fmt.Sprintf("register API key %d (%s): registered twice", k, a.key.Name()))
	case (a.handle == nil) == (a.raw == nil):
		panic(fmt.Sprintf("register %s: exactly one of handle and raw", a.key.Name()))
	case a.handle != nil && a.errorCodes == nil:
		panic(fmt.Sprintf("register %s: no error-code extraction", a.key.Name()))
	case a.min < 0 || a.min > a.max:
		panic(fmt.Sprintf("register %s: versions %d..%d", a.key.Name(), a.min, a.max))
	}
	apis[k] = &a
}

// lookup returns the API of key if version is within what it serves.
func lookup(key, version int16) *api {
	if key < 0 || int(key) >= len(apis) {
		return nil
	}
	a := apis[key]
	if a == nil || version < a.min || version > a.max {
		return nil
	}
	return a
}

// registered returns every registered API in key order.
func registered() []*api {
	var out []*api
	for _, a := range apis {
		if a != nil {
			out = append(out, a)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].key < out[j].key })
	return out
}

// handler adapts a typed handler to api.handle.
func handler[Req kmsg.Request, Resp kmsg.Response](f func(b *Broker, r *netio.Request, req Req) Resp) func(*Broker, context.Context, *netio.Request, kmsg.Request) kmsg.Response {
	return func(b *Broker, _ context.Context, r *netio.Request, req kmsg.Request) kmsg.Response {
		return f(b, r, req.(Req))
	}
}

// codes adapts a typed error-code extraction to api.errorCodes.
func codes[Resp kmsg.Response](f func(resp Resp, count func(int16))) func(kmsg.Response, func(int16)) {
	return func(resp kmsg.Response, count func(int16)) { f(resp.(Resp), count) }
}

// method adapts a handler method that needs only the request, such as
// (*Broker).handleMetadata, to api.handle.
func method[Req kmsg.Request, Resp kmsg.Response](f func(b *Broker, req Req) Resp) func(*Broker, context.Context, *netio.Request, kmsg.Request) kmsg.Response {
	return func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
		return f(b, req.(Req))
	}
}
