package broker

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// A membership change takes seconds at the active controller (every voter
// acknowledges each step), up to membershipTimeout when a voter does not
// answer. Forwarded on the controller link's connection, it would hold
// this broker's heartbeats behind it (a connection's requests are
// answered one at a time, in order) until the session expired and the
// broker were fenced. So, as Kafka keeps forwarding and heartbeats on
// separate channels, a membership request is forwarded on a connection
// of its own to the active controller's CONTROLLER listener.

// membershipForwardTimeout bounds a forwarded change: the controller's own
// bound and some slack for the round trip.
const membershipForwardTimeout = membershipTimeout + 5*time.Second

// errNoController: this node knows of no active controller now.
var errNoController = errors.New("no active controller known")

// serveMembership answers a membership request: at the active controller
// with local, at another voter's CONTROLLER listener NOT_CONTROLLER (the
// sender looks for the active one), elsewhere with the active
// controller's answer. failed builds the answer carrying only a code.
func (b *Broker) serveMembership(ctx context.Context, r *netio.Request, req kmsg.Request,
	local func(context.Context) kmsg.Response, failed func(code int16, msg string) kmsg.Response) kmsg.Response {
	switch {
	case !b.runsQuorum() || b.isActiveQuorumController():
		return local(ctx)
	case b.ctrl != nil && b.onControllerListener(r.Conn):
		return failed(kerr.NotController.Code, fmt.Sprintf("node %d is not the active controller", b.localID()))
	}
	resp, err := b.forwardMembership(ctx, req)
	if err != nil {
		b.logger.Warn("forwarding to the active controller", "api", kmsg.NameForKey(req.Key()), "err", err)
		code := kerr.RequestTimedOut.Code
		if errors.Is(err, errNoController) {
			code = kerr.NotController.Code
		}
		return failed(code, err.Error())
	}
	return resp
}

// forwardMembership sends req to the active controller on a connection of
// its own and returns its answer.
func (b *Broker) forwardMembership(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	id, addr, ok := b.activeControllerAddr()
	if !ok {
		return nil, errNoController
	}
	ctx, cancel := context.WithTimeout(ctx, membershipForwardTimeout)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr), kgo.ClientID(fmt.Sprintf("sluice-forward-%d", b.localID())),
		kgo.RequestTimeoutOverhead(membershipForwardTimeout), kgo.RequestRetries(0))
	if err != nil {
		return nil, fmt.Errorf("controller %d at %s: %w", id, addr, err)
	}
	defer cl.Close()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("controller %d at %s: %w", id, addr, err)
	}
	return resp, nil
}

// activeControllerAddr is the active controller as this node knows it
// and its CONTROLLER endpoint: a voter's register (which names voters a
// change added), else controller.quorum.voters.
func (b *Broker) activeControllerAddr() (int32, string, bool) {
	id := b.newestController(-1)
	if id < 0 || id == b.localID() {
		return 0, "", false // this node is not active (else it answers itself)
	}
	if b.ctrl != nil && b.ctrl.v != nil {
		if m, ok := b.ctrl.v.Register().Member(id); ok && len(m.Endpoints) > 0 {
			return id, net.JoinHostPort(m.Endpoints[0].Host, strconv.Itoa(int(m.Endpoints[0].Port))), true
		}
	}
	if v, ok := b.cfg.Voter(id); ok {
		return id, v.Addr(), true
	}
	return 0, "", false
}
