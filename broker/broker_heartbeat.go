package broker

import (
	"context"
	"sync"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/netio"
)

// The controller's view of broker liveness: registrations start fenced,
// heartbeats unfence a broker once it has caught up with its own
// registration, and a broker not heard from for broker.session.timeout.ms
// is fenced, which moves its leaderships to other ISR members with a new
// leader epoch (controller.PlanFenceBroker). The decisions are the
// controller package's; this file feeds them requests and time.

// brokerSessions is the controller's heartbeat state (soft: a restarted
// controller gives every broker a full session).
type brokerSessions struct {
	mu sync.Mutex
	hb *controller.Heartbeats
}

// heartbeatsLocked returns the tracker, creating it on first use with
// every registered broker (but this node) given a full session.
func (b *Broker) heartbeatsLocked() *controller.Heartbeats {
	if b.liveness.hb == nil {
		b.liveness.hb = controller.NewHeartbeats(time.Duration(b.cfg.BrokerSessionTimeoutMs) * time.Millisecond)
		now := b.now()
		for _, br := range b.ctrlImage().Brokers() {
			// A quorum voter's own broker heartbeats like any other.
			if br.ID != b.localID() || b.ctrl != nil {
				b.liveness.hb.Register(br.ID, br.Epoch, br.Fenced, now)
			}
		}
	}
	return b.liveness.hb
}

// handleBrokerRegistration registers a broker of the cluster: fenced, with
// the record's offset as its epoch, out of every ISR first unless it shut
// down cleanly (controller.PlanRegisterBroker).
func (b *Broker) handleBrokerRegistration(req *kmsg.BrokerRegistrationRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerRegistrationResponse)
	resp.BrokerEpoch = -1
	store, ok := b.ctrlStore()
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	reg := controller.BrokerRegistration{ID: req.BrokerID, ClusterID: req.ClusterID, Incarnation: req.IncarnationID,
		Rack: req.Rack, PreviousBrokerEpoch: req.PreviousBrokerEpoch}
	for _, l := range req.Listeners {
		reg.Endpoints = append(reg.Endpoints, controller.Endpoint{Name: l.Name, Host: l.Host, Port: int32(l.Port)})
	}
	b.liveness.mu.Lock()
	defer b.liveness.mu.Unlock()
	hb := b.heartbeatsLocked()
	now := b.now()
	img, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanRegisterBroker(reg, hb.HasValidSession(req.BrokerID, now), b.policy())
	})
	if err != nil {
		b.logger.Warn("refused a broker registration", "broker_id", req.BrokerID, "err", err)
		resp.ErrorCode = errorCode(err)
		return resp
	}
	br, _ := img.Broker(req.BrokerID)
	resp.BrokerEpoch = br.Epoch
	hb.Register(req.BrokerID, br.Epoch, br.Fenced, now)
	b.applyControllerImage()
	b.logger.Info("broker registered", "broker_id", req.BrokerID, "broker_epoch", br.Epoch, "fenced", br.Fenced, "endpoints", reg.Endpoints)
	return resp
}

// handleBrokerHeartbeat is the controller's side of a broker's heartbeat.
func (b *Broker) handleBrokerHeartbeat(req *kmsg.BrokerHeartbeatRequest) kmsg.Response {
	resp := req.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
	store, ok := b.ctrlStore()
	if !ok {
		resp.ErrorCode = kerr.NotController.Code
		return resp
	}
	hr := controller.Heartbeat{BrokerID: req.BrokerID, BrokerEpoch: req.BrokerEpoch, MetadataOffset: req.CurrentMetadataOffset,
		WantFence: req.WantFence, WantShutDown: req.WantShutdown}
	b.liveness.mu.Lock()
	defer b.liveness.mu.Unlock()
	hb := b.heartbeatsLocked()
	var reply controller.HeartbeatReply
	img, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		r, rs, err := s.PlanBrokerHeartbeat(hr, hb, b.policy())
		reply = r
		return rs, err
	})
	if err != nil {
		resp.ErrorCode = errorCode(err)
		return resp
	}
	hb.Touch(hr, reply, img.Offset()-1, b.now())
	b.applyControllerImage()
	resp.IsCaughtUp, resp.IsFenced, resp.ShouldShutdown = reply.IsCaughtUp, reply.IsFenced, reply.ShouldShutDown
	return resp
}

// fenceExpiredBrokers fences the brokers whose sessions expired (run
// periodically on the controller).
func (b *Broker) fenceExpiredBrokers() {
	store, ok := b.ctrlStore()
	if !ok {
		return
	}
	b.liveness.mu.Lock()
	defer b.liveness.mu.Unlock()
	hb := b.heartbeatsLocked()
	for _, id := range hb.Expired(b.now()) {
		_, err := store.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanFenceBroker(id, b.policy()) })
		if err != nil {
			b.logger.Error("fencing a broker whose session expired", "broker_id", id, "err", err)
			continue
		}
		hb.Fenced(id)
		b.logger.Warn("broker fenced: no heartbeat within broker.session.timeout.ms; its leaderships move to other in-sync replicas",
			"broker_id", id, "session_timeout_ms", b.cfg.BrokerSessionTimeoutMs)
		b.applyControllerImage()
	}
}

// rebalanceLeaders moves leadership back to preferred replicas where a
// broker leads more than leader.imbalance.per.broker.percentage of
// partitions it is not preferred for (auto.leader.rebalance.enable, run on
// the controller every leader.imbalance.check.interval.seconds).
func (b *Broker) rebalanceLeaders() {
	store, ok := b.ctrlStore()
	if !ok {
		return
	}
	var results []controller.ElectionResult
	_, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
		parts := s.PlanLeaderRebalance(int(b.cfg.LeaderImbalancePerBrokerPercentage))
		if len(parts) == 0 {
			return nil, nil
		}
		var rs []controller.Record
		results, rs = s.PlanElectLeaders(controller.PreferredElection, parts, b.policy())
		return rs, nil
	})
	if err != nil {
		b.logger.Error("preferred leader rebalance", "err", err)
		return
	}
	moved := 0
	for _, r := range results {
		if r.Err == nil {
			moved++
		}
	}
	if moved > 0 {
		b.applyControllerImage()
		b.logger.Info("preferred leader rebalance moved leaderships back to preferred replicas", "partitions", moved)
	}
}

// controlledShutdownSelf is the controlled shutdown of the node that holds
// the controller (process.roles=broker,controller): the same heartbeat
// decisions as for any broker, committed locally, until the controller
// says this broker may stop (it leads nothing, it left the ISRs it could
// leave, and every active broker has applied that) or ctx ends.
func (b *Broker) controlledShutdownSelf(ctx context.Context, store *controller.Store) error {
	for {
		img := b.metaImage()
		self, ok := img.Broker(b.localID())
		if !ok {
			return nil
		}
		hr := controller.Heartbeat{BrokerID: self.ID, BrokerEpoch: self.Epoch, MetadataOffset: img.Offset() - 1, WantShutDown: true}
		b.liveness.mu.Lock()
		hb := b.heartbeatsLocked()
		var reply controller.HeartbeatReply
		after, err := store.Commit(func(s *controller.State) ([]controller.Record, error) {
			r, rs, err := s.PlanBrokerHeartbeat(hr, hb, b.policy())
			reply = r
			return rs, err
		})
		if err == nil {
			hb.Touch(hr, reply, after.Offset()-1, b.now())
		}
		b.liveness.mu.Unlock()
		if err != nil {
			return err
		}
		b.applyControllerImage()
		if reply.ShouldShutDown {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// fenceCheckInterval is how often the controller looks for expired
// sessions.
const fenceCheckInterval = 250 * time.Millisecond

func init() {
	register(api{key: kmsg.BrokerRegistration, min: 0, max: 4,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleBrokerRegistration(req.(*kmsg.BrokerRegistrationRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			count(resp.(*kmsg.BrokerRegistrationResponse).ErrorCode)
		},
	})
	register(api{key: kmsg.BrokerHeartbeat, min: 0, max: 1,
		handle: func(b *Broker, _ context.Context, _ *netio.Request, req kmsg.Request) kmsg.Response {
			return b.handleBrokerHeartbeat(req.(*kmsg.BrokerHeartbeatRequest))
		},
		errorCodes: func(resp kmsg.Response, count func(int16)) {
			count(resp.(*kmsg.BrokerHeartbeatResponse).ErrorCode)
		},
	})
}
