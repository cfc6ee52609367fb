package voter

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
)

// stepRecord is the configuration a voter's proposers use: step Step
// (from 1) of the membership change Change (a caspaxos.VoterChange ID),
// whose configuration is Config. It is persisted with the acceptor state
// before the voter acknowledges it, and it only moves forward: a later
// step of the same change, or any step of a later change. A voter with
// no record uses Majority(Config.Voters), the bootstrap configuration.
type stepRecord struct {
	Change int64
	Step   int
	Config caspaxos.Config
}

// covers reports whether a voter at r has moved at least to step of
// change: a later change begins only after every proposer used the last
// step of the one before.
func (r stepRecord) covers(change int64, step int) bool {
	return r.Change > change || r.Change == change && r.Step >= step
}

func (r stepRecord) newer(o stepRecord) bool { return !o.covers(r.Change, r.Step) }

const stepRecordVersion = 1

// MarshalBinary: a version byte, change int64, step uint16, then
// caspaxos.Config's own encoding.
func (r stepRecord) MarshalBinary() ([]byte, error) {
	if r.Step < 0 || r.Step > 0xffff {
		return nil, fmt.Errorf("voter: step %d does not encode", r.Step)
	}
	b := []byte{stepRecordVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(r.Change))
	b = binary.BigEndian.AppendUint16(b, uint16(r.Step))
	cb, err := r.Config.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return append(b, cb...), nil
}

func (r *stepRecord) UnmarshalBinary(b []byte) error {
	if len(b) < 11 {
		return fmt.Errorf("voter: step record of %d bytes", len(b))
	}
	if b[0] != stepRecordVersion {
		return fmt.Errorf("voter: step record version %d, want %d", b[0], stepRecordVersion)
	}
	out := stepRecord{Change: int64(binary.BigEndian.Uint64(b[1:9])), Step: int(binary.BigEndian.Uint16(b[9:11]))}
	if err := out.Config.UnmarshalBinary(b[11:]); err != nil {
		return fmt.Errorf("voter: step record: %w", err)
	}
	if err := out.Config.Validate(); err != nil {
		return fmt.Errorf("voter: step record: %w", err)
	}
	*r = out
	return nil
}

// ErrNotMember: ChangeVoters was given a target it cannot plan (see the
// error), or this voter's proposers are not on the register's
// configuration.
var ErrNotMember = errors.New("voter: membership change refused")

// ChangeVoters moves the controller quorum to target, a membership of one
// voter per id (the incarnation each directory was formatted with), with
// endpoints: Kafka's AddRaftVoter and RemoveRaftVoter, and the
// re-admission of a wiped voter (target replaces its old incarnation by
// its new one). It runs on the active controller only (else an error
// wrapping ctrlquorum.ErrNotActive), one call at a time per Voter, and
// returns when the register's Voters are target, or with ctx's error.
//
// The caller makes every voter of target reachable through the Transport
// before calling (the broker adds target's endpoints to its peers), and a
// voter to be added runs already, started with Config.Join. A voter
// leaves the metadata ISR (RequestISR) before it leaves the quorum, so the
// active controller cannot remove itself.
//
// Every voter of the old and new configuration must acknowledge each step
// (but see ChangeVotersWithout), so one that cannot be reached blocks the
// change until ctx ends: the
// quorum then stays in a safe intermediate step (it keeps electing while
// the voters each step's quorums need are up), and a later ChangeVoters,
// here or on the next active controller, resumes the open change before
// anything else. See the package doc for the protocol.
func (v *Voter) ChangeVoters(ctx context.Context, target []caspaxos.Member) error {
	return v.ChangeVotersWithout(ctx, target, nil)
}

// ChangeVotersWithout is ChangeVoters for a change that removes voters
// that are down for good (Kafka's RemoveRaftVoter of a dead controller):
// absent, each a voter of the register that target leaves out. The
// change is planned so that no step's quorums need them
// (caspaxos.PlanChangeWithout, recorded in the register, so a later
// active controller resumes the same plan), and a step goes on without an
// absent voter's acknowledgement once it has not answered for
// absentAfter and every prepare quorum of every configuration its
// proposer could still use holds a voter that acknowledged the step
// (caspaxos.PrepareBlocked): those voters' acceptors refuse a proposer on
// an older step, so it can complete no round, and their answer moves it
// to the step, where it is passive. It fails (ErrNotMember) when the
// voters left cannot carry the change: more absent voters than the
// current configuration tolerates losing (two of three, one of two). An
// open change is resumed with the absent voters it was begun with.
func (v *Voter) ChangeVotersWithout(ctx context.Context, target []caspaxos.Member, absent []caspaxos.Voter) error {
	v.changing.Lock()
	defer v.changing.Unlock()
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		epoch, ok := v.Active()
		if !ok {
			return fmt.Errorf("voter %s: change voters: %w", v.self, ctrlquorum.ErrNotActive)
		}
		reg, _, err := v.adminRound(ctx, nil)
		if err != nil {
			return err
		}
		if reg.Epoch != epoch || reg.Active != v.self {
			return fmt.Errorf("voter %s: change voters: %w in epoch %d (register: epoch %d, active %s)",
				v.self, ctrlquorum.ErrNotActive, epoch, reg.Epoch, reg.Active)
		}
		ch := reg.Change
		if ch == nil {
			if sameVoters(reg.Voters, target) {
				return nil
			}
			from := v.proposerConfig()
			if !caspaxos.SameConfig(from, caspaxos.Majority(memberVoters(reg.Voters))) {
				return fmt.Errorf("%w: this voter's proposers use %v, not the register's voters %v",
					ErrNotMember, from.Voters(), memberVoters(reg.Voters))
			}
			if _, err := caspaxos.PlanChangeWithout(from, memberVoters(target), absent); err != nil {
				return fmt.Errorf("%w: %w", ErrNotMember, err)
			}
			_, res, err := v.adminRound(ctx, caspaxos.BeginVoterChangeWithout(epoch, reg.ConfigVersion, from, target, absent))
			if err != nil {
				return err
			}
			if err := res.Err; err != nil && !retryable(err) {
				return fmt.Errorf("voter %s: begin voter change: %w", v.self, err)
			}
			continue // re-read: the change is open (or someone else's is)
		}
		if !sameVoters(ch.Target, target) {
			v.log.Info("resuming an open membership change before this one", "change", ch.ID, "target", memberVoters(ch.Target))
		}
		if err := v.drive(ctx, *ch); err != nil {
			return err
		}
		_, res, err := v.adminRound(ctx, caspaxos.FinishVoterChange(epoch, ch.ID, ch.Target))
		if err != nil {
			return err
		}
		if err := res.Err; err != nil && !retryable(err) {
			return fmt.Errorf("voter %s: finish voter change %d: %w", v.self, ch.ID, err)
		}
		v.log.Info("membership change done", "change", ch.ID, "voters", memberVoters(ch.Target))
	}
}

// ReadRegister reads the register with a full round of this voter's
// membership proposer, not the value last seen (Register): what a
// membership change is planned from, so a change never starts from a
// register older than the last change. It runs one at a time with
// ChangeVoters, and fails (ErrNotMember) on a voter outside its
// proposers' configuration.
func (v *Voter) ReadRegister(ctx context.Context) (caspaxos.Register, error) {
	v.changing.Lock()
	defer v.changing.Unlock()
	reg, _, err := v.adminRound(ctx, nil)
	return reg, err
}

// retryable errors of a configuration compare-and-set mean the register
// moved on (another change step, an ISR change, an indeterminate round):
// re-read and decide again. An epoch error ends the loop at the next
// Active check.
func retryable(err error) bool {
	var cv *caspaxos.ConfigVersionError
	var ep *caspaxos.EpochError
	return errors.As(err, &cv) || errors.As(err, &ep) || errors.Is(err, caspaxos.ErrIndeterminate)
}

// drive moves every voter of ch's old ∪ new configuration through ch's
// steps: each step is sent to all of them until each has persisted it (or
// a later one), and after a step with Rescan (the rescan, and the fence
// against stale accepts of the step before: caspaxos.Step) a read round
// runs through this voter's proposers, which use that step by then.
// Starting from step 1 every time makes resuming after any failure the
// same code: a voter further on acknowledges its own, later step.
func (v *Voter) drive(ctx context.Context, ch caspaxos.VoterChange) error {
	steps, err := caspaxos.PlanChangeWithout(ch.From, ch.TargetVoters(), ch.Absent)
	if err != nil {
		return fmt.Errorf("voter %s: plan change %d: %w", v.self, ch.ID, err)
	}
	var nodes []int32
	for _, s := range steps {
		for _, m := range s.Config.Voters() {
			if !slices.Contains(nodes, m.ID) {
				nodes = append(nodes, m.ID)
			}
		}
	}
	p := plan{change: ch, steps: steps, nodes: nodes, silentSince: map[int32]time.Time{}}
	for i, s := range steps {
		rec := stepRecord{Change: ch.ID, Step: i + 1, Config: s.Config}
		if err := v.awaitStep(ctx, rec, p); err != nil {
			return err
		}
		if s.Rescan {
			if _, _, err := v.adminRound(ctx, nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// awaitStep sends rec to every node until each acknowledges it (or a later
// step), resending every RetryTicks ticks, or may be skipped (skippable).
// An acknowledgement of a later change means this one was finished by
// someone else: the caller's FinishVoterChange then fails on the
// ConfigVersion and re-reads.
func (v *Voter) awaitStep(ctx context.Context, rec stepRecord, p plan) error {
	nodes := p.nodes
	resend := time.Duration(v.cfg.RetryTicks) * v.cfg.TickInterval
	absentAfter := absentResends * resend
	var last time.Time
	skipped := map[int32]bool{}
	for {
		missing := v.missingAcks(rec, nodes)
		for id := range p.silentSince {
			if !slices.Contains(missing, id) {
				delete(p.silentSince, id) // it answers
			}
		}
		waiting := missing
		if len(missing) > 0 && len(p.change.Absent) > 0 {
			waiting = nil
			now := time.Now()
			for _, id := range missing {
				since, ok := p.silentSince[id]
				if !ok {
					since = now
					p.silentSince[id] = now
				}
				if now.Sub(since) >= absentAfter && v.skippable(p, rec.Step, id) {
					if !skipped[id] {
						skipped[id] = true
						v.log.Warn("going on without a leaving voter that does not answer", "change", rec.Change,
							"step", rec.Step, "voter", id)
					}
					continue
				}
				waiting = append(waiting, id)
			}
		}
		if len(waiting) == 0 {
			return nil
		} else if time.Since(last) >= resend {
			last = time.Now()
			if err := v.call(func() { v.sendStep(rec, missing) }); err != nil {
				return err
			}
		}
		if _, ok := v.Active(); !ok {
			return fmt.Errorf("voter %s: change %d step %d: %w", v.self, rec.Change, rec.Step, ctrlquorum.ErrNotActive)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("voter %s: change %d step %d: waiting for voters %v: %w",
				v.self, rec.Change, rec.Step, waiting, ctx.Err())
		case <-v.done:
			return ErrClosed
		case <-time.After(v.cfg.TickInterval):
		}
	}
}

// absentResends is how many resend intervals an absent voter may stay
// silent on a step before the change may go on without it. Safety does
// not depend on it (a voter that only seems dead is refused as one that
// is); it spares a live voter the refusals and pushes.
const absentResends = 5

// plan is a change and its steps, and the node ids every step goes to.
type plan struct {
	change caspaxos.VoterChange
	steps  []caspaxos.Step
	nodes  []int32
	// silentSince is when each node was first found missing an
	// acknowledgement in this drive, until it acknowledges one: a voter
	// silent through one step is not waited for again at the next (each
	// wait was 2 s in a broker, and a removal of four steps outlasted a
	// client's 10 s request timeout, which cancels the drive).
	silentSince map[int32]time.Time
}

// skippable reports whether node id need not acknowledge step (from 1)
// of p: each of its voters in the plan is one of the change's absent
// voters, and every prepare quorum of every configuration its proposer
// could still use holds a voter whose node acknowledged step. It could
// be on the step it last acknowledged here or any later one before step
// (its acknowledgement of a later one may be lost), or, with none heard,
// on the change's From (its record of the change before, or the bootstrap
// Majority of the same voters) or any step before step.
func (v *Voter) skippable(p plan, step int, id int32) bool {
	var mine []caspaxos.Voter
	for _, s := range p.steps {
		for _, m := range s.Config.Voters() {
			if m.ID == id && !slices.Contains(mine, m) {
				mine = append(mine, m)
			}
		}
	}
	for _, m := range mine {
		if !slices.Contains(p.change.Absent, m) {
			return false
		}
	}
	v.mu.Lock()
	acks := maps.Clone(v.acks)
	v.mu.Unlock()
	configs := []caspaxos.Config{p.change.From}
	from := 1
	if a, ok := acks[id]; ok && a.Change == p.change.ID && a.Step >= 1 {
		configs, from = nil, a.Step
	}
	for k := from; k < step; k++ {
		configs = append(configs, p.steps[k-1].Config)
	}
	var refusing []caspaxos.Voter
	for _, s := range append([]caspaxos.Step{{Config: p.change.From}}, p.steps...) {
		for _, m := range s.Config.Voters() {
			if a, ok := acks[m.ID]; ok && a.covers(p.change.ID, step) && m.ID != id && !slices.Contains(refusing, m) {
				refusing = append(refusing, m)
			}
		}
	}
	return caspaxos.PrepareBlocked(configs, refusing)
}

func (v *Voter) missingAcks(rec stepRecord, nodes []int32) []int32 {
	v.mu.Lock()
	defer v.mu.Unlock()
	var out []int32
	for _, id := range nodes {
		if a, ok := v.acks[id]; !ok || !a.covers(rec.Change, rec.Step) {
			out = append(out, id)
		}
	}
	return out
}

// sendStep, on the loop: adopt rec here if this voter is among nodes,
// send it to the others.
func (v *Voter) sendStep(rec stepRecord, nodes []int32) {
	b, err := encodeEnvelope(envelope{kind: kindStep, step: rec})
	if err != nil {
		v.log.Error("encode", "err", err)
		return
	}
	for _, id := range nodes {
		if id == v.cfg.NodeID {
			v.adopt(id, rec)
		} else {
			v.out = append(v.out, outbound{to: id, payload: b})
		}
	}
}

// adopt, on the loop: a step record from node from. A newer one is
// persisted with the acceptor state first, then the proposers switch to
// its configuration; either way the voter then acknowledges the record it
// uses. A failed write stops the voter, as for the acceptor.
func (v *Voter) adopt(from int32, rec stepRecord) {
	if err := rec.Config.Validate(); err != nil {
		v.log.Warn("ignoring an invalid step", "from", from, "err", err)
		return
	}
	if v.rec == nil || rec.newer(*v.rec) {
		if err := v.store.save(v.acc.State(), &rec); err != nil {
			v.fail(fmt.Errorf("voter %s: persist step: %w", v.self, err))
			return
		}
		v.mu.Lock()
		v.useConfig(rec)
		v.mu.Unlock()
	}
	cur := *v.rec
	if from == v.cfg.NodeID {
		v.noteAck(from, cur)
		return
	}
	b, err := encodeEnvelope(envelope{kind: kindStepAck, step: cur})
	if err != nil {
		v.log.Error("encode", "err", err)
		return
	}
	v.out = append(v.out, outbound{to: from, payload: b})
}

// useConfig switches both proposers to rec's configuration, under mu. A
// voter outside it turns passive: it proposes nothing (the Node's proposal
// is parked) until a configuration names it.
func (v *Voter) useConfig(rec stepRecord) {
	v.rec = &rec
	v.pcfg = rec.Config
	out, err := v.prop.SetConfig(rec.Config)
	if err != nil {
		v.log.Error("set config", "err", err) // validated by adopt
	}
	v.proposerOut(out)
	aout, _ := v.admin.SetConfig(rec.Config)
	v.adminOut(aout)
	passive := !slices.Contains(rec.Config.Voters(), v.self)
	v.log.Info("proposers use a membership step", "change", rec.Change, "step", rec.Step, "voters", rec.Config.Voters(), "passive", passive)
	switch {
	case passive && !v.passive:
		v.passive = true
		v.prop.Cancel()
		if v.flight != nil {
			v.parked, v.flight = v.flight, nil
		}
		v.admin.Cancel()
		v.adminResult(caspaxos.Result{Err: fmt.Errorf("%w: this voter left the quorum", ErrNotMember)})
	case !passive && v.passive:
		v.passive = false
		if p := v.parked; p != nil {
			v.parked = nil
			v.startProposal(*p)
		}
	}
}

func (v *Voter) noteAck(from int32, rec stepRecord) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if a, ok := v.acks[from]; !ok || rec.newer(a) {
		v.acks[from] = rec
	}
}

// proposerConfig returns the configuration this voter's proposers use.
func (v *Voter) proposerConfig() caspaxos.Config {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.pcfg
}

// adminRound runs ch (a read if nil) through the driver's proposer and
// returns the register it leaves and the round's result.
func (v *Voter) adminRound(ctx context.Context, ch caspaxos.Change) (caspaxos.Register, caspaxos.Result, error) {
	done := make(chan caspaxos.Result, 1)
	started := make(chan error, 1) // call only hands the function over
	err := v.call(func() {
		v.mu.Lock()
		defer v.mu.Unlock()
		if v.passive {
			started <- fmt.Errorf("%w: this voter is not in its proposers' configuration", ErrNotMember)
			return
		}
		var out caspaxos.Output
		var err error
		if ch == nil {
			out, err = v.admin.ProposeRead()
		} else {
			out, err = v.admin.Propose(ch)
		}
		if err == nil {
			v.adminWait = done
			v.adminOut(out)
		}
		started <- err
	})
	if err == nil {
		select {
		case err = <-started:
		case <-v.done:
			select {
			case err = <-started:
			default:
				err = ErrClosed
			}
		}
	}
	if err != nil {
		return caspaxos.Register{}, caspaxos.Result{}, fmt.Errorf("voter %s: membership round: %w", v.self, err)
	}
	var res caspaxos.Result
	select {
	case res = <-done:
	case <-ctx.Done():
		_ = v.call(func() {
			v.mu.Lock()
			defer v.mu.Unlock()
			if v.adminWait == done {
				v.admin.Cancel()
				v.adminWait = nil
			}
		})
		return caspaxos.Register{}, caspaxos.Result{}, fmt.Errorf("voter %s: membership round: %w", v.self, ctx.Err())
	case <-v.done:
		return caspaxos.Register{}, caspaxos.Result{}, ErrClosed
	}
	var reg caspaxos.Register
	if res.Value == nil && res.Err != nil {
		return reg, res, fmt.Errorf("voter %s: membership round: %w", v.self, res.Err)
	}
	if err := reg.UnmarshalBinary(res.Value); err != nil {
		return reg, res, fmt.Errorf("voter %s: membership round: %w", v.self, err)
	}
	return reg, res, nil
}

// adminOut sends the driver proposer's messages and hands its result to
// the waiting ChangeVoters. Under mu.
func (v *Voter) adminOut(out caspaxos.Output) {
	for _, m := range out.Messages {
		v.sendPaxos(m.Acceptor.ID, m)
	}
	if res := out.Done; res != nil {
		v.adminResult(*res)
	}
}

func (v *Voter) adminResult(res caspaxos.Result) {
	if ch := v.adminWait; ch != nil {
		ch <- res
		v.adminWait = nil
	}
}

func memberVoters(ms []caspaxos.Member) []caspaxos.Voter {
	out := make([]caspaxos.Voter, len(ms))
	for i, m := range ms {
		out[i] = m.Voter
	}
	return out
}

// sameVoters compares the voters of two memberships, in any order.
func sameVoters(a, b []caspaxos.Member) bool {
	if len(a) != len(b) {
		return false
	}
	for _, m := range a {
		if !slices.ContainsFunc(b, func(o caspaxos.Member) bool { return o.Voter == m.Voter }) {
			return false
		}
	}
	return true
}
