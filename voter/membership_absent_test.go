package voter

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
)

// Three voters, one closed for good (its disk kept): ChangeVotersWithout
// removes it, the two left elect after a restart of the controller, and
// the removed voter, started again from its old disk (no step record, the
// bootstrap configuration of three), is refused by both acceptors, pushed
// the last step and turns passive (without the refusal it would keep
// proposing on its old configuration): it never becomes active, and the
// register keeps the two voters, no open change and the removed voter
// out of the ISR.
func TestClusterRemoveDeadVoter(t *testing.T) {
	c := newCluster(t)
	leader, epoch := c.waitActive(5*time.Second, 0)
	gone := leader%3 + 1
	goneVoter := c.members[gone-1].Voter
	c.kill(gone)
	isr := slices.DeleteFunc(memberVoters(c.members), func(v caspaxos.Voter) bool { return v.ID == gone })
	if err := c.setISR(leader, isr); err != nil {
		t.Fatalf("shrink ISR to %v: %v", isr, err)
	}
	two := without(c.members, gone)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := c.voters[leader].ChangeVotersWithout(ctx, two, []caspaxos.Voter{goneVoter}); err != nil {
		t.Fatalf("remove dead voter %d: %v", gone, err)
	}
	reg := waitRegister(t, c.voters[leader], "two voters", func(r caspaxos.Register) bool {
		return sameVoters(r.Voters, two) && r.Change == nil
	})
	c.checkConfig(two)
	// A restart of the controller: the two elect again.
	leader, _ = c.waitActive(10*time.Second, 0)
	c.kill(leader)
	c.start(leader)
	c.waitActive(10*time.Second, max(epoch, reg.Epoch))
	if leader == gone {
		t.Fatalf("removed voter %d active", gone)
	}

	// The removed voter returns with its old disk and its stale
	// configuration.
	if _, rec, _, err := (store{fsys: c.mem, dir: c.dirOf(gone)}).load(); err != nil || rec != nil {
		t.Fatalf("the removed voter's disk holds step record %+v (%v), want none", rec, err)
	}
	v := c.start(gone)
	deadline := time.Now().Add(5 * time.Second)
	for !v.isPassive() {
		if time.Now().After(deadline) {
			t.Fatalf("the removed voter still proposes with %+v", v.proposerConfig())
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got := v.proposerConfig(); !caspaxos.SameConfig(got, caspaxos.Majority(memberVoters(two))) {
		t.Fatalf("the removed voter uses %+v, want the last step", got)
	}
	c.hold(3*testTakeover, "the removed voter never active", func(a map[int32]int32) bool { _, ok := a[gone]; return !ok })
	leader, _ = c.waitActive(10*time.Second, 0)
	after := c.voters[leader].Register()
	if after.Active == goneVoter || !sameVoters(after.Voters, two) || after.Change != nil || after.InISR(goneVoter) {
		t.Fatalf("register after the removed voter ran: %+v", after)
	}
	if got := c.eventsOf(goneVoter); slices.ContainsFunc(got, func(tr ctrlquorum.Transition) bool { return tr.Active }) {
		t.Fatalf("the removed voter became active: %+v", got)
	}
	// Its persisted record is the last step: a restart keeps it passive.
	c.kill(gone)
	if v := c.start(gone); !v.isPassive() {
		t.Fatal("the removed voter proposes after a restart")
	}
}

// Two dead voters of three cannot be removed: the one left is no prepare
// quorum of the configuration the change starts from, so the change is
// refused before it opens (ErrNotMember), and with the two down for real
// the controller has no quorum to run it.
func TestClusterRemoveTwoDeadVotersRefused(t *testing.T) {
	c := newCluster(t)
	leader, _ := c.waitActive(5*time.Second, 0)
	var others []caspaxos.Voter
	for _, m := range c.members {
		if m.Voter.ID != leader {
			others = append(others, m.Voter)
		}
	}
	one := []caspaxos.Member{c.members[leader-1]}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.voters[leader].ChangeVotersWithout(ctx, one, others); !errors.Is(err, ErrNotMember) {
		t.Fatalf("removing two absent voters of three: %v, want ErrNotMember", err)
	} else {
		t.Logf("refused: %v", err)
	}
	// An absent voter that stays is refused too.
	if err := c.voters[leader].ChangeVotersWithout(ctx, without(c.members, others[1].ID), others[:1]); !errors.Is(err, ErrNotMember) {
		t.Fatalf("absent voter in the target: %v, want ErrNotMember", err)
	}
	if reg, err := c.voters[leader].ReadRegister(ctx); err != nil || reg.Change != nil {
		t.Fatalf("register after the refusals: %+v, %v; want no open change", reg, err)
	}
	for _, o := range others {
		c.kill(o.ID)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel2()
	if err := c.voters[leader].ChangeVotersWithout(short, one, others); err == nil {
		t.Fatal("removed two dead voters of three")
	}
}
