package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A registered broker heartbeats its controller every
// broker.heartbeat.interval.ms; the controller unfences it once it has
// caught up with its own registration and fences it when the heartbeats
// stop for broker.session.timeout.ms. A controlled shutdown is heartbeats
// that want to shut down, until the controller has moved the broker's
// leaderships away and says it may (ShouldShutdown).

// BrokerEpoch is the epoch the controller gave this broker's registration,
// -1 before it registered.
func (l *Link) BrokerEpoch() int64 { return l.epoch.Load() }

// Fenced reports whether the controller holds this broker fenced, as its
// last heartbeat answer said: true from the registration until a
// heartbeat unfences it, and again once the controller fences it (its
// session expired, or it shut down) or no longer knows its epoch
// (STALE_BROKER_EPOCH: another registration of this id replaced it).
func (l *Link) Fenced() bool { return l.fenced.Load() }

// StartHeartbeats heartbeats every interval until Close or a granted
// controlled shutdown. The first goes out at once, so a broker that
// registered is unfenced without waiting an interval.
func (l *Link) StartHeartbeats(interval time.Duration) {
	if !l.beating.CompareAndSwap(false, true) {
		return
	}
	l.beatDone = make(chan struct{})
	go func() {
		defer close(l.beatDone)
		failures := 0
		for {
			_, err := l.heartbeat(l.ctx, false)
			switch {
			case err == nil:
				if failures > 0 {
					l.logger.Info("heartbeating the controller again", "controller_id", l.q.voter(l.q.current()).ID)
				}
				failures = 0
			case l.ctx.Err() != nil:
				return
			default:
				if failures%10 == 0 {
					l.logger.Warn("heartbeat to the controller failed", "voters", l.q.String(), "err", err)
				}
				failures++
			}
			if !l.sleep(l.ctx, l.stopBeats, interval) {
				return
			}
		}
	}()
}

// heartbeat sends one heartbeat: to the voter the link takes for the
// active controller, then to the others in turn while they are not it
// (see sendRound), so that a move of the controller costs no interval.
func (l *Link) heartbeat(ctx context.Context, wantShutdown bool) (*kmsg.BrokerHeartbeatResponse, error) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch = l.cfg.NodeID, l.epoch.Load()
	req.CurrentMetadataOffset = l.obs.Next() - 1
	req.WantShutdown = wantShutdown
	kresp, _, err := l.sendRound(ctx, req)
	if err != nil {
		return nil, err
	}
	resp := kresp.(*kmsg.BrokerHeartbeatResponse)
	if err := kerr.ErrorForCode(resp.ErrorCode); err != nil {
		if errors.Is(err, kerr.StaleBrokerEpoch) {
			l.noteFenced(true, req.BrokerEpoch)
		}
		return nil, err
	}
	l.noteFenced(resp.IsFenced, req.BrokerEpoch)
	return resp, nil
}

// noteFenced records what the controller said of this broker's fencing,
// logging a change.
func (l *Link) noteFenced(fenced bool, epoch int64) {
	if l.fenced.Swap(fenced) == fenced {
		return
	}
	if fenced {
		l.logger.Warn("the controller fenced this broker", "broker_id", l.cfg.NodeID, "broker_epoch", epoch)
	} else {
		l.logger.Info("the controller unfenced this broker", "broker_id", l.cfg.NodeID, "broker_epoch", epoch)
	}
}

// ControlledShutdown asks the controller to move this broker's leaderships
// away and returns once it says the broker may stop (or ctx ends: the
// broker then stops anyway and its session expires). Heartbeats stop.
func (l *Link) ControlledShutdown(ctx context.Context, interval time.Duration) error {
	if l.beating.Load() {
		close(l.stopBeats)
		<-l.beatDone
	}
	unreachable := 0
	for {
		resp, err := l.heartbeat(ctx, true)
		if err == nil && resp.ShouldShutdown {
			return nil
		}
		if errors.Is(err, kerr.StaleBrokerEpoch) {
			return fmt.Errorf("controllerlink: controlled shutdown: %w", err)
		}
		var ke *kerr.Error
		if err != nil && !errors.As(err, &ke) {
			// Not an answer: the controller is down or cut off.
			// Nobody can move the leaderships; stop without them.
			if unreachable++; unreachable >= 5 {
				return fmt.Errorf("controllerlink: controlled shutdown: controller quorum %s unreachable: %w", l.q, err)
			}
		} else {
			unreachable = 0
		}
		if !l.sleep(ctx, nil, min(interval, 200*time.Millisecond)) {
			return fmt.Errorf("controllerlink: controlled shutdown not granted: %w (last error: %v)", ctx.Err(), err)
		}
	}
}
