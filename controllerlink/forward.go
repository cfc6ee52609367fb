package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// forwardTimeout bounds a forwarded request and the wait for its change to
// reach the copy.
const forwardTimeout = 30 * time.Second

// Forward sends a request only the controller decides (CreateTopics,
// DeleteTopics, CreatePartitions, AlterConfigs, IncrementalAlterConfigs)
// to the controller and returns its answer once this node's copy holds
// the change, so that a client's next request here sees it. The answer is
// the controller's own: its error codes are the client's. It goes to the
// voter the link takes for the active controller, once (see sendOnce): a
// voter that is not answers NOT_CONTROLLER in its items, and the client
// retries.
func (l *Link) Forward(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	start := time.Now()
	resp, id, err := l.sendOnce(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("controllerlink: forward %s to controller %d: %w", kmsg.NameForKey(req.Key()), id, err)
	}
	answered := time.Since(start)
	if err := l.WaitCaughtUp(ctx); err != nil {
		return nil, err
	}
	if took := time.Since(start); took > slowForward {
		// The client waited all along: say where the time went.
		l.logger.Warn("slow forward to the controller", "api", kmsg.NameForKey(req.Key()), "controller", id,
			"answered_after", answered, "caught_up_after", took)
	}
	return resp, nil
}

// slowForward is how long a forwarded request may take before it is
// logged: a failover takes about the takeover timeout (2 s by default).
const slowForward = 5 * time.Second

// SetPreviousBrokerEpoch gives the broker epoch this node had when it last
// shut down cleanly (read from its clean-shutdown markers), for Register
// to send as PreviousBrokerEpoch; -1, the default, says the last stop was
// not clean (KIP-966). Call before Register.
func (l *Link) SetPreviousBrokerEpoch(epoch int64) { l.previous.Store(max(epoch, -1)) }

// Register registers this broker with the controller (BrokerRegistration)
// and waits until its own copy of the metadata holds the registration; it
// returns the broker epoch the controller gave. It goes through the voters
// until the active one answers or ctx ends.
func (l *Link) Register(ctx context.Context, reg controller.Broker, incarnation [16]byte) (int64, error) {
	req := kmsg.NewPtrBrokerRegistrationRequest()
	req.BrokerID, req.ClusterID, req.IncarnationID, req.Rack = reg.ID, l.ClusterID(), incarnation, reg.Rack
	for _, e := range reg.Endpoints {
		ln := kmsg.NewBrokerRegistrationRequestListener()
		ln.Name, ln.Host, ln.Port, ln.SecurityProtocol = e.Name, e.Host, uint16(e.Port), 0 // PLAINTEXT
		req.Listeners = append(req.Listeners, ln)
	}
	// KIP-966: the epoch this broker had when it last shut down cleanly
	// (-1 if it did not), so that the controller keeps its replicas in
	// their ISRs and ELRs instead of treating the restart as a crash.
	req.PreviousBrokerEpoch = l.previous.Load()
	var resp *kmsg.BrokerRegistrationResponse
	for failures := 1; ; failures++ {
		v := l.q.current()
		kresp, err := l.send(ctx, v, req, l.cfg.RequestTimeout)
		if err == nil {
			resp = kresp.(*kmsg.BrokerRegistrationResponse)
			err = codeErr(resp.ErrorCode)
			if err == nil {
				break
			}
			if !errors.Is(err, kerr.DuplicateBrokerRegistration) && !notController(err) {
				return 0, fmt.Errorf("controllerlink: controller %d refused broker %d's registration: %w", l.q.voter(v).ID, reg.ID, err)
			}
			// DUPLICATE_BROKER_REGISTRATION: this id's previous
			// process (killed, or restarted quickly) still holds a
			// session: it ends at the session timeout, then this
			// registration goes through.
		}
		if warnAt(l.q.size(), failures) || (!movesOn(err) && failures%10 == 1) {
			l.logger.Warn("registering with the controller; retrying", "broker_id", reg.ID, "voters", l.q.String(), "err", err)
		}
		if !l.pause(ctx, failures, err) {
			return 0, fmt.Errorf("controllerlink: register broker %d: %w (last error: %v)", reg.ID, ctx.Err(), err)
		}
	}
	l.epoch.Store(resp.BrokerEpoch)
	l.fenced.Store(true) // a new registration is fenced until a heartbeat says otherwise
	if err := l.WaitCaughtUp(ctx); err != nil {
		return 0, err
	}
	return resp.BrokerEpoch, nil
}

// NextProducerID hands out a producer id from a block the controller
// reserved for this broker, asking for the next block when it runs out:
// of the voter the link takes for the active controller, then of the
// others in turn, each once (the client retries its InitProducerId).
func (l *Link) NextProducerID() (int64, error) {
	l.pidMu.Lock()
	defer l.pidMu.Unlock()
	if l.pidLeft == 0 {
		ctx, cancel := context.WithTimeout(l.ctx, forwardTimeout)
		defer cancel()
		req := kmsg.NewPtrAllocateProducerIDsRequest()
		req.BrokerID, req.BrokerEpoch = l.cfg.NodeID, -1
		kresp, id, err := l.sendRound(ctx, req)
		if err != nil {
			return 0, fmt.Errorf("controllerlink: allocate producer ids from controller %d: %w", id, err)
		}
		resp := kresp.(*kmsg.AllocateProducerIDsResponse)
		if err := codeErr(resp.ErrorCode); err != nil {
			return 0, fmt.Errorf("controllerlink: allocate producer ids from controller %d: %w", id, err)
		}
		if resp.ProducerIDLen <= 0 {
			return 0, fmt.Errorf("controllerlink: controller %d allocated %d producer ids", id, resp.ProducerIDLen)
		}
		l.nextPID, l.pidLeft = resp.ProducerIDStart, int64(resp.ProducerIDLen)
	}
	id := l.nextPID
	l.nextPID++
	l.pidLeft--
	return id, nil
}

// Send sends a request to the controller as it is and returns its answer
// (AlterPartition, BrokerHeartbeat): once (see sendOnce), no wait for the
// metadata. An answer NOT_CONTROLLER is returned as it is; the next
// request goes to another voter.
func (l *Link) Send(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	resp, id, err := l.sendOnce(ctx, req)
	if err != nil {
		return nil, fmt.Errorf("controllerlink: %s to controller %d: %w", kmsg.NameForKey(req.Key()), id, err)
	}
	return resp, nil
}

// ForwardAsBroker sends a request this broker makes on its own behalf
// (creating __consumer_offsets) wrapped in an Envelope, which only brokers
// send, so the controller lets it do what clients may not. The request
// goes at its own version (set it); the answer comes back once this
// node's copy holds the change, as with Forward.
func (l *Link) ForwardAsBroker(ctx context.Context, req kmsg.Request) (kmsg.Response, error) {
	ctx, cancel := context.WithTimeout(ctx, forwardTimeout)
	defer cancel()
	client := fmt.Sprintf("sluice-broker-%d", l.cfg.NodeID)
	env := kmsg.NewPtrEnvelopeRequest()
	env.RequestData = req.AppendTo(netio.AppendRequestHeader(nil, req.Key(), req.GetVersion(), 0, &client))
	env.RequestPrincipal = []byte("User:ANONYMOUS")
	env.ClientHostAddress = []byte{127, 0, 0, 1}
	kresp, id, err := l.sendOnce(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("controllerlink: envelope of %s to controller %d: %w", kmsg.NameForKey(req.Key()), id, err)
	}
	er := kresp.(*kmsg.EnvelopeResponse)
	if err := codeErr(er.ErrorCode); err != nil {
		return nil, fmt.Errorf("controllerlink: envelope of %s refused by controller %d: %w", kmsg.NameForKey(req.Key()), id, err)
	}
	_, body, err := netio.ReadResponseHeader(er.ResponseData, req.Key(), req.GetVersion())
	if err != nil {
		return nil, fmt.Errorf("controllerlink: envelope answer: %w", err)
	}
	resp := req.ResponseKind()
	resp.SetVersion(req.GetVersion())
	if err := resp.ReadFrom(body); err != nil {
		return nil, fmt.Errorf("controllerlink: decode the enveloped %s answer: %w", kmsg.NameForKey(req.Key()), err)
	}
	if err := l.WaitCaughtUp(ctx); err != nil {
		return nil, err
	}
	return resp, nil
}
