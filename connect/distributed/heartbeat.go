package distributed

import (
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// heartbeatWhile runs fn while heartbeating in the background. It returns
// the send time of the last accepted heartbeat (or since, if none was
// needed) and whether the coordinator asked for a rejoin meanwhile.
func (m *Member) heartbeatWhile(ctx context.Context, since time.Time, fn func()) (alive time.Time, rejoin bool) {
	done := make(chan struct{})
	result := make(chan struct{})
	alive = since
	go func() {
		defer close(result)
		tick := time.NewTicker(m.cfg.HeartbeatInterval)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
			}
			switch out, sent := m.beat(ctx); out {
			case beatOK:
				alive = sent
			case beatRebalance:
				alive, rejoin = sent, true
			case beatUnknownMember, beatIllegalGeneration:
				rejoin = true
			}
		}
	}()
	fn()
	close(done)
	<-result
	return alive, rejoin
}

// beatOutcome is what one heartbeat learnt.
type beatOutcome int

const (
	beatOK beatOutcome = iota
	beatRebalance
	beatUnknownMember // evicted; the member ID is cleared
	beatIllegalGeneration
	beatFailed // no answer, or an unexpected error
)

// beat sends one heartbeat and returns its outcome and send time.
func (m *Member) beat(ctx context.Context) (beatOutcome, time.Time) {
	m.mu.Lock()
	req := kmsg.NewPtrHeartbeatRequest()
	req.Group, req.Generation, req.MemberID = m.cfg.GroupID, m.generation, m.memberID
	m.mu.Unlock()
	sent := time.Now()
	hctx, cancel := context.WithTimeout(ctx, m.cfg.SessionTimeout)
	resp, err := req.RequestWith(hctx, m.cfg.Client)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("connect group heartbeat failed", "err", err)
		}
		return beatFailed, sent
	}
	switch err := kerr.ErrorForCode(resp.ErrorCode); {
	case err == nil:
		return beatOK, sent
	case errors.Is(err, kerr.RebalanceInProgress):
		return beatRebalance, sent
	case errors.Is(err, kerr.UnknownMemberID):
		return beatUnknownMember, sent
	case errors.Is(err, kerr.IllegalGeneration):
		return beatIllegalGeneration, sent
	default:
		m.log.Warn("connect group heartbeat error", "err", err)
		return beatFailed, sent
	}
}

// heartbeat keeps the session alive until a rejoin is due: requested,
// scheduled by the assignment's delay, or asked for by the coordinator. It
// returns the send time of the last heartbeat the coordinator accepted.
func (m *Member) heartbeat(ctx context.Context, lastAlive, rejoinAt time.Time) (time.Time, error) {
	tick := time.NewTicker(m.cfg.HeartbeatInterval)
	defer tick.Stop()
	var delayC <-chan time.Time
	if !rejoinAt.IsZero() {
		t := time.NewTimer(time.Until(rejoinAt))
		defer t.Stop()
		delayC = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return lastAlive, ctx.Err()
		case <-m.rejoinCh:
			return lastAlive, nil
		case <-delayC:
			return lastAlive, nil
		case <-tick.C:
		}
		out, sent := m.beat(ctx)
		if ctx.Err() != nil {
			return lastAlive, ctx.Err()
		}
		switch out {
		case beatOK:
			lastAlive = sent
		case beatRebalance:
			return sent, nil
		case beatUnknownMember:
			// Evicted: join afresh, reporting what still runs so the
			// leader can leave it here if nobody took it meanwhile;
			// unless the session has surely expired, then drop it all.
			m.maybeLoseSession(lastAlive)
			m.setMemberID("")
			return lastAlive, nil
		case beatIllegalGeneration:
			return lastAlive, nil
		case beatFailed:
			if m.maybeLoseSession(lastAlive) {
				return lastAlive, nil
			}
		}
	}
}

// maybeLoseSession drops all work once the coordinator has not accepted a
// heartbeat sent within the session timeout: by then the group has evicted
// this member and the leader may hand its work to another worker, and
// nothing may run twice. The clock starts when the last good heartbeat was
// sent, which is before the coordinator's clock starts, so the member
// always gives up no later than the coordinator.
func (m *Member) maybeLoseSession(lastAlive time.Time) bool {
	if time.Since(lastAlive) <= m.cfg.SessionTimeout {
		return false
	}
	m.mu.Lock()
	if len(m.owned) == 0 {
		m.mu.Unlock()
		return false
	}
	ev := Event{Generation: -1, MemberID: m.memberID, Revoked: m.owned.sorted(), SessionLost: true}
	m.owned, m.last, m.owners, m.memberID = idSet{}, nil, nil, ""
	m.mu.Unlock()
	m.log.Warn("connect group session lost; stopping all work", "revoked", len(ev.Revoked))
	m.cfg.OnAssignment(ev)
	return true
}
