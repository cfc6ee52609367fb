package broker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/metalog"
	"github.com/sluice-io/sluice/metarepl"
	"github.com/sluice-io/sluice/quorumnet"
	"github.com/sluice-io/sluice/voter"
)

// Membership changes of the controller quorum (Kafka's AddRaftVoter and
// RemoveRaftVoter, KIP-853), run by the active controller on its voter
// (voter.ChangeVoters, the CASPaxos membership change):
//
//   - AddRaftVoter(id, directory id = incarnation, CONTROLLER endpoint):
//     the joining voter must run already (a wiped voter restarted, which
//     runs as a non-member; see quorum_identity.go) and answer its
//     identity at that endpoint, so a change never opens for a voter that
//     cannot acknowledge its steps. It is then added as a quorumnet peer,
//     and the change runs. An id that is a voter under another incarnation is
//     replaced by the new one in the same change (a wiped voter's
//     re-admission in one step; Kafka would answer DUPLICATE_VOTER and
//     want RemoveRaftVoter of the old incarnation first, which works too).
//   - RemoveRaftVoter(id, incarnation): the voter leaves the metadata ISR
//     (a register compare-and-set) before the quorum. Every voter of the
//     new membership must answer first (checkReachable). A leaving voter
//     that does not answer is removed as Kafka does (KIP-853): the change
//     is planned without it (voter.ChangeVotersWithout), as long as the
//     voters left can carry it (one dead voter of three, two of five);
//     otherwise the request is refused with REQUEST_TIMED_OUT. The active
//     controller does not remove itself: it is in the ISR by rule, so it
//     answers INVALID_REQUEST (Kafka's leader would resign after the
//     change; here stop it, let another voter take over, and send the
//     request again).
//
// After the change the metadata log's leader is handed the register, so
// it tracks the new voter set (the new voter enters the ISR once caught
// up), and every voter persists the register's voters in
// quorum-voters.json (syncMembership), so a restart keeps them.

// membershipTimeout bounds a change at the active controller: under
// controllerlink's forward timeout (30 s), so a forwarded request gets
// this answer rather than the forwarder's.
const membershipTimeout = 25 * time.Second

// membershipError is a refused change with its Kafka error.
type membershipError struct {
	code *kerr.Error
	msg  string
}

func (e *membershipError) Error() string { return e.msg }
func (e *membershipError) Unwrap() error { return e.code }

func refuseChange(code *kerr.Error, format string, args ...any) error {
	return &membershipError{code: code, msg: fmt.Sprintf(format, args...)}
}

// membershipCode maps a change's error to the Kafka code and message the
// handlers answer.
func membershipCode(err error) (int16, *string) {
	if err == nil {
		return 0, nil
	}
	msg := err.Error()
	var me *membershipError
	switch {
	case errors.As(err, &me):
		return me.code.Code, &msg
	case errors.Is(err, ctrlquorum.ErrNotActive), errors.Is(err, voter.ErrClosed), errors.Is(err, metarepl.ErrClosed):
		return kerr.NotController.Code, &msg
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return kerr.RequestTimedOut.Code, &msg
	case errors.Is(err, voter.ErrNotMember):
		return kerr.InvalidRequest.Code, &msg
	}
	return kerr.UnknownServerError.Code, &msg
}

// activeRegister is the register at the active controller, read by a
// full round (no stale read decides a change), after checking the
// request's cluster id.
func (q *quorumRole) activeRegister(ctx context.Context, clusterID *string) (caspaxos.Register, error) {
	if _, ok := q.v.Active(); !ok {
		return caspaxos.Register{}, refuseChange(kerr.NotController, "node %d is not the active controller", q.self.ID)
	}
	reg, err := q.v.ReadRegister(ctx)
	if err != nil {
		return reg, err
	}
	if clusterID != nil && *clusterID != reg.ClusterID {
		return reg, refuseChange(kerr.InconsistentClusterID, "cluster id %q, this cluster is %q", *clusterID, reg.ClusterID)
	}
	return reg, nil
}

// addVoter adds m (or replaces the incarnation its id has) to the quorum.
func (q *quorumRole) addVoter(ctx context.Context, clusterID *string, m caspaxos.Member) error {
	reg, err := q.activeRegister(ctx, clusterID)
	if err != nil {
		return err
	}
	if reg.IsVoter(m.Voter) {
		return refuseChange(kerr.DuplicateVoter, "voter %s is a voter already", m.Voter)
	}
	if len(m.Endpoints) == 0 {
		return refuseChange(kerr.InvalidRequest, "voter %s: no endpoint on the controller listener %q", m.Voter, q.cfg.ControllerListenerName())
	}
	addr := net.JoinHostPort(m.Endpoints[0].Host, strconv.Itoa(int(m.Endpoints[0].Port)))
	// The identity first: a peer, once added, is dialled for good.
	if err := q.awaitIdentity(ctx, m.Voter, addr); err != nil {
		return err
	}
	if err := q.net.AddPeer(m.Voter.ID, addr); err != nil {
		return refuseChange(kerr.InvalidRequest, "voter %s at %s: %v", m.Voter, addr, err)
	}
	return q.changeVoters(ctx, func(reg caspaxos.Register) ([]caspaxos.Member, []caspaxos.Voter, error) {
		if reg.IsVoter(m.Voter) {
			return reg.Voters, nil, nil
		}
		var target []caspaxos.Member
		var leave []caspaxos.Voter
		for _, o := range reg.Voters {
			if o.Voter.ID == m.Voter.ID {
				leave = append(leave, o.Voter) // its old incarnation
				continue
			}
			target = append(target, o)
		}
		return append(target, m), leave, nil
	})
}

// removeVoter removes v, this exact incarnation, from the quorum.
func (q *quorumRole) removeVoter(ctx context.Context, clusterID *string, v caspaxos.Voter) error {
	reg, err := q.activeRegister(ctx, clusterID)
	if err != nil {
		return err
	}
	if !reg.IsVoter(v) {
		return refuseChange(kerr.VoterNotFound, "%s is not a voter (voters: %v)", v, memberVoters(reg.Voters))
	}
	if v == q.self {
		return refuseChange(kerr.InvalidRequest, "%s is the active controller, which cannot remove itself: stop it, and send the request again once another voter is active", v)
	}
	return q.changeVoters(ctx, func(reg caspaxos.Register) ([]caspaxos.Member, []caspaxos.Voter, error) {
		if !reg.IsVoter(v) {
			return reg.Voters, nil, nil // done already
		}
		target := slices.DeleteFunc(slices.Clone(reg.Voters), func(m caspaxos.Member) bool { return m.Voter == v })
		return target, []caspaxos.Voter{v}, nil
	})
}

// changeVoters runs a change planned from the register: plan returns the
// target membership and the voters leaving it, which leave the metadata
// ISR first. The metadata log's leader may propose a live leaving voter
// back into the ISR between the shrink and the change's first step, which
// the register then refuses: the whole is retried until ctx ends.
func (q *quorumRole) changeVoters(ctx context.Context, plan func(caspaxos.Register) ([]caspaxos.Member, []caspaxos.Voter, error)) error {
	q.changing.Lock() // plan and change as one, against this node's other requests
	defer q.changing.Unlock()
	for {
		reg, err := q.v.ReadRegister(ctx)
		if err != nil {
			return err
		}
		if ch := reg.Change; ch != nil {
			// A change left open (a timeout, a failover) is finished
			// first: planning from its old voters could undo it.
			if err := q.v.ChangeVoters(ctx, ch.Target); err != nil {
				return err
			}
			continue
		}
		target, leave, err := plan(reg)
		if err != nil {
			return err
		}
		absent, err := q.checkReachable(ctx, reg.Voters, target)
		if err != nil {
			return err
		}
		for _, v := range leave {
			if err := q.leaveISR(ctx, v); err != nil {
				return err
			}
		}
		err = q.v.ChangeVotersWithout(ctx, target, absent)
		if len(absent) > 0 && errors.Is(err, voter.ErrNotMember) {
			return refuseChange(kerr.RequestTimedOut, "voters %v do not answer, and the voters left cannot carry the change without them (%v): start them again and send the request then", absent, err)
		}
		if err == nil {
			q.logger.Info("controller quorum membership changed", "voters", fmt.Sprint(memberVoters(target)))
			return q.awaitMembership(ctx, target)
		}
		if errors.Is(err, voter.ErrNotMember) || !errors.Is(err, caspaxos.ErrBadConfig) || ctx.Err() != nil {
			return err
		}
		q.logger.Info("membership change refused by the register; retrying", "err", err)
		if err := sleepCtx(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
}

// checkReachable refuses a change while a voter of the new membership does
// not answer: each step of voter.ChangeVoters waits for every one of them.
// A leaving voter (of from, its id not in to) that does not answer is
// returned as absent: the change is then planned without it
// (voter.ChangeVotersWithout), which refuses when the voters left cannot
// carry it. A voter may still fail during the change, which then waits
// for it if it stays (an absent one only for a while).
func (q *quorumRole) checkReachable(ctx context.Context, from, to []caspaxos.Member) ([]caspaxos.Voter, error) {
	seen := map[int32]bool{q.self.ID: true}
	var absent []caspaxos.Voter
	for _, m := range append(slices.Clone(to), from...) {
		if seen[m.Voter.ID] {
			continue
		}
		seen[m.Voter.ID] = true
		leaving := !slices.ContainsFunc(to, func(o caspaxos.Member) bool { return o.Voter.ID == m.Voter.ID })
		if len(m.Endpoints) == 0 {
			if leaving {
				absent = append(absent, m.Voter)
				continue
			}
			return nil, refuseChange(kerr.InvalidRequest, "voter %s has no endpoint in the register", m.Voter)
		}
		addr := net.JoinHostPort(m.Endpoints[0].Host, strconv.Itoa(int(m.Endpoints[0].Port)))
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := quorumnet.Ask(actx, addr, q.self.ID, quorumnet.ChannelIdentity, nil)
		cancel()
		switch {
		case err == nil:
		case leaving:
			q.logger.Warn("a leaving voter does not answer: removing it without it", "voter", m.Voter.String(), "addr", addr, "err", err)
			absent = append(absent, m.Voter)
		default:
			return nil, refuseChange(kerr.RequestTimedOut, "voter %d at %s does not answer (%v): every voter of the new membership must be up for a change", m.Voter.ID, addr, err)
		}
	}
	return absent, nil
}

// leaveISR proposes v out of the metadata ISR, if it is in it.
func (q *quorumRole) leaveISR(ctx context.Context, v caspaxos.Voter) error {
	for {
		reg := q.v.Register()
		if !reg.InISR(v) {
			return nil
		}
		isr := slices.DeleteFunc(slices.Clone(reg.ISR), func(o caspaxos.Voter) bool { return o == v })
		ch, err := q.v.RequestISR(ctrlquorum.ISRRequest{Epoch: reg.Epoch, ConfigVersion: reg.ConfigVersion, ISR: isr})
		switch {
		case errors.Is(err, ctrlquorum.ErrBusy):
			// The metadata log's own ISR change is in flight.
		case err != nil:
			return err
		default:
			var res ctrlquorum.ISRResult
			select {
			case res = <-ch:
			case <-ctx.Done():
				return ctx.Err()
			}
			var cv *caspaxos.ConfigVersionError
			switch {
			case res.Err == nil:
				// The metadata log's leader learns the ISR now rather
				// than by its next change failing on the version.
				_ = q.rep.ApplyRegister(ctx, metalog.ConfigOf(res.Register))
				return nil
			case errors.Is(res.Err, caspaxos.ErrBelowMinISR):
				return refuseChange(kerr.InvalidRequest, "%s cannot leave the metadata ISR %v: %v", v, reg.ISR, res.Err)
			case errors.As(res.Err, &cv), errors.Is(res.Err, caspaxos.ErrIndeterminate):
				// Planned from a stale register: the next renewal
				// brings it up to date.
			default:
				return fmt.Errorf("%s leaving the metadata ISR: %w", v, res.Err)
			}
		}
		if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// awaitIdentity waits until the voter at addr answers as exactly v: the
// change must not open for a voter that cannot take part in its steps.
func (q *quorumRole) awaitIdentity(ctx context.Context, v caspaxos.Voter, addr string) error {
	var last error
	for {
		actx, cancel := context.WithTimeout(ctx, 2*time.Second)
		raw, err := quorumnet.Ask(actx, addr, q.self.ID, quorumnet.ChannelIdentity, nil)
		cancel()
		if err == nil {
			var id quorumIdentity
			if err := json.Unmarshal(raw, &id); err != nil {
				return refuseChange(kerr.InvalidRequest, "the controller at %s answered a malformed identity: %v", addr, err)
			}
			got, err := quorumVoterJSON{ID: id.NodeID, Incarnation: id.Incarnation}.voter()
			if err != nil || got != v {
				return refuseChange(kerr.InvalidRequest, "the controller at %s is %s, not %s", addr, got, v)
			}
			return nil
		}
		last = err
		select {
		case <-ctx.Done():
			return refuseChange(kerr.RequestTimedOut, "voter %s at %s did not answer: %v", v, addr, last)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// awaitMembership waits for the voter's own register to show target (its
// next lease renewal reads it), then syncs this node with it at once.
func (q *quorumRole) awaitMembership(ctx context.Context, target []caspaxos.Member) error {
	want := memberVoters(target)
	for {
		reg := q.v.Register()
		if reg.Change == nil && sameVoterSet(memberVoters(reg.Voters), want) {
			q.syncMembership()
			return nil
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return err
		}
	}
}

// syncMembership brings this node in line with the register's voters
// once no change is open: peers for voters it did not know, the settled
// set persisted (so a restart keeps the membership, and a wiped voter
// adopts it), and, on the metadata log's leader, the voters it tracks.
// Called on the follow loop and after a change.
func (q *quorumRole) syncMembership() {
	if q.v == nil {
		return
	}
	q.syncMu.Lock()
	defer q.syncMu.Unlock()
	reg := q.v.Register()
	if reg.ClusterID == "" || reg.Change != nil || len(reg.Voters) == 0 {
		return
	}
	vs := memberVoters(reg.Voters)
	q.mu.Lock()
	settled, lead := q.settled, q.leadVoters
	q.mu.Unlock()
	if !sameVoterSet(vs, memberVoters(settled.Voters)) {
		for _, m := range reg.Voters {
			if m.Voter.ID == q.self.ID || len(m.Endpoints) == 0 {
				continue
			}
			addr := net.JoinHostPort(m.Endpoints[0].Host, strconv.Itoa(int(m.Endpoints[0].Port)))
			if err := q.net.AddPeer(m.Voter.ID, addr); err != nil {
				q.logger.Warn("a voter of the register cannot be reached", "voter", m.Voter.String(), "err", err)
			}
		}
		dir := filepath.Join(q.cfg.LogDirs[0], quorumVoterDir)
		sq := settledQuorum{ClusterID: reg.ClusterID, Voters: reg.Clone().Voters}
		if err := persistVoters(q.fsys, dir, sq, func(sq settledQuorum) {
			q.mu.Lock()
			q.settled = sq
			q.mu.Unlock()
		}, q.logger, "membership change"); err != nil {
			q.logger.Warn("persisting the controller quorum's voters", "err", err)
		}
	}
	if st := q.rep.Status(); st.Role == metarepl.RoleLeader && st.Epoch == reg.Epoch && !sameVoterSet(vs, lead) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := q.rep.ApplyRegister(ctx, metalog.ConfigOf(reg)); err != nil {
			q.logger.Warn("the metadata log leader did not take the new voters", "err", err)
			return
		}
		q.mu.Lock()
		q.leadVoters = vs
		q.mu.Unlock()
	}
}

// sameVoterSet compares two voter sets in any order.
func sameVoterSet(a, b []caspaxos.Voter) bool {
	if len(a) != len(b) {
		return false
	}
	for _, v := range a {
		if !slices.Contains(b, v) {
			return false
		}
	}
	return true
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
