package voter

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/segment"
)

// format gives voter id a directory and an identity, as the CLI's format
// step would, without starting it.
func (c *cluster) format(id int32) caspaxos.Member {
	c.t.Helper()
	if c.efs[id] == nil {
		c.efs[id] = segment.NewErrorFS(c.mem)
	}
	self, err := Identity(c.efs[id], c.dirOf(id), id)
	if err != nil {
		c.t.Fatal(err)
	}
	return caspaxos.Member{Voter: self, Endpoints: []caspaxos.Endpoint{{Name: "CONTROLLER", Host: "localhost", Port: uint16(9093 + id)}}}
}

// startJoin starts voter id to be added by a membership change.
func (c *cluster) startJoin(id int32) *Voter {
	c.t.Helper()
	var v *Voter
	v, err := New(Config{NodeID: id, Voters: c.members, Join: true, FS: c.efs[id], Dir: c.dirOf(id),
		Transport: c.net.Transport(id), Lease: testLease, TakeoverTimeout: testTakeover, TickInterval: 5 * time.Millisecond,
		OnTransition: func(tr ctrlquorum.Transition) {
			c.mu.Lock()
			defer c.mu.Unlock()
			c.events = append(c.events, event{id: id, self: v.Self(), tr: tr, at: time.Now()})
		}})
	if err != nil {
		c.t.Fatal(err)
	}
	c.voters[id] = v
	c.net.Attach(id, v.Deliver)
	v.Start()
	return v
}

func (c *cluster) change(leader int32, target []caspaxos.Member, d time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return c.voters[leader].ChangeVoters(ctx, target)
}

// setISR asks the active controller leader for isr, re-reading the
// register when the request was planned from a stale one.
func (c *cluster) setISR(leader int32, isr []caspaxos.Voter) error {
	c.t.Helper()
	v := c.voters[leader]
	var err error
	for range 50 {
		reg := v.Register()
		var ch <-chan ctrlquorum.ISRResult
		if ch, err = v.RequestISR(ctrlquorum.ISRRequest{Epoch: reg.Epoch, ConfigVersion: reg.ConfigVersion, ISR: isr}); err != nil {
			return err
		}
		res := <-ch
		var cv *caspaxos.ConfigVersionError
		if err = res.Err; !errors.As(err, &cv) && !errors.Is(err, caspaxos.ErrIndeterminate) {
			return err
		}
		time.Sleep(testLease / 3) // the next renewal brings the register up to date
	}
	return err
}

// waitRegister waits for v to see a register for which ok holds.
func waitRegister(t *testing.T, v *Voter, what string, ok func(caspaxos.Register) bool) caspaxos.Register {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		r := v.Register()
		if ok(r) {
			return r
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never showed %s: %+v", v.Self(), what, r)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkConfig: every running voter's proposers use Majority(want), and
// they persisted it.
func (c *cluster) checkConfig(want []caspaxos.Member) {
	c.t.Helper()
	cfg := caspaxos.Majority(memberVoters(want))
	for id, v := range c.voters {
		if got := v.proposerConfig(); !caspaxos.SameConfig(got, cfg) {
			c.t.Errorf("voter %d uses %+v, want %+v", id, got, cfg)
		}
		_, rec, _, err := store{fsys: c.mem, dir: c.dirOf(id)}.load()
		if err != nil || rec == nil || !caspaxos.SameConfig(rec.Config, cfg) {
			c.t.Errorf("voter %d persisted %+v (%v), want %+v", id, rec, err, cfg)
		}
	}
}

func (v *Voter) isPassive() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.passive
}

func without(ms []caspaxos.Member, id int32) []caspaxos.Member {
	return slices.DeleteFunc(slices.Clone(ms), func(m caspaxos.Member) bool { return m.Voter.ID == id })
}

// 3 voters → add a fourth → remove one of the first three: after each
// change the register and every voter's proposers agree, and failovers
// work with the new majority (and would not with the old one).
func TestClusterAddThenRemoveVoter(t *testing.T) {
	c := newCluster(t)
	leader, epoch := c.waitActive(5*time.Second, 0)
	m4 := c.format(4)
	c.startJoin(4)
	four := append(slices.Clone(c.members), m4)
	if err := c.change(leader, four, 10*time.Second); err != nil {
		t.Fatalf("add voter 4: %v", err)
	}
	reg := waitRegister(t, c.voters[leader], "four voters", func(r caspaxos.Register) bool { return sameVoters(r.Voters, four) })
	if reg.Change != nil {
		t.Fatalf("change still open after ChangeVoters: %+v", reg.Change)
	}
	c.checkConfig(four)
	if err := c.change(leader, four, time.Second); err != nil {
		t.Fatalf("the same change again: %v, want a no-op", err)
	}
	// A takeover with four voters (accepts need three of them).
	c.kill(leader)
	c.start(leader)
	leader, epoch = c.waitActive(10*time.Second, epoch)
	if leader == 4 {
		t.Fatal("voter 4, outside the ISR, became active")
	}

	// Remove a voter of the first three that is not the controller: it
	// leaves the ISR first.
	gone := leader%3 + 1
	if err := c.change(leader, without(four, gone), 2*time.Second); !errors.Is(err, caspaxos.ErrBadConfig) {
		t.Fatalf("removing ISR member %d: %v, want ErrBadConfig", gone, err)
	}
	isr := slices.DeleteFunc(memberVoters(c.members), func(v caspaxos.Voter) bool { return v.ID == gone })
	if err := c.setISR(leader, isr); err != nil {
		t.Fatalf("shrink ISR to %v: %v", isr, err)
	}
	three := without(four, gone)
	if err := c.change(leader, three, 10*time.Second); err != nil {
		t.Fatalf("remove voter %d: %v", gone, err)
	}
	removed := c.voters[gone]
	delete(c.voters, gone)
	c.checkConfig(three)
	c.voters[gone] = removed
	if !removed.isPassive() {
		t.Errorf("removed voter %d still proposes", gone)
	}
	// The removed voter restarts passive, from its persisted step.
	c.kill(gone)
	if v := c.start(gone); !v.isPassive() {
		t.Errorf("removed voter %d proposes after a restart", gone)
	}
	// With the controller and the removed voter gone, the other two of
	// the new three (two of four of the old configuration, not enough
	// there) elect the remaining ISR member.
	c.kill(gone)
	c.kill(leader)
	next, e := c.waitActive(10*time.Second, epoch)
	if next == 4 || next == gone {
		t.Fatalf("voter %d became active in epoch %d", next, e)
	}
}

// A wiped voter comes back with a new incarnation: it is refused (as an
// ISR member, and its acceptor does not count) until ChangeVoters replaces
// its old identity, and admitted after.
func TestClusterReadmitWipedVoter(t *testing.T) {
	c := newCluster(t)
	leader, epoch := c.waitActive(5*time.Second, 0)
	wiped := leader%3 + 1
	third := 6 - leader - wiped
	old := c.voters[wiped].Self()
	c.kill(wiped)
	if err := c.mem.RemoveAll(c.dirOf(wiped)); err != nil {
		t.Fatal(err)
	}
	fresh := c.format(wiped)
	if fresh.Voter == old {
		t.Fatal("wiped voter kept its incarnation")
	}
	w := c.start(wiped)
	if !w.isPassive() {
		t.Fatal("the wiped voter proposes before any change admits it")
	}
	if err := c.setISR(leader, append(memberVoters(c.members), fresh.Voter)); !errors.Is(err, caspaxos.ErrBadConfig) {
		t.Fatalf("ISR with the new incarnation before the change: %v, want ErrBadConfig", err)
	}
	// Replace the old identity: it leaves the ISR, then the quorum.
	if err := c.setISR(leader, []caspaxos.Voter{c.members[leader-1].Voter, c.members[third-1].Voter}); err != nil {
		t.Fatal(err)
	}
	target := slices.Clone(c.members)
	target[wiped-1] = fresh
	if err := c.change(leader, target, 10*time.Second); err != nil {
		t.Fatalf("replace %s by %s: %v", old, fresh.Voter, err)
	}
	c.checkConfig(target)
	if w.isPassive() {
		t.Fatal("the new incarnation is still passive after the change")
	}
	// Admitted: it joins the ISR, and once it is the only other ISR
	// member it takes over with the third voter's acceptor.
	if err := c.setISR(leader, []caspaxos.Voter{c.members[leader-1].Voter, c.members[third-1].Voter, fresh.Voter}); err != nil {
		t.Fatalf("ISR with the new incarnation after the change: %v", err)
	}
	if err := c.setISR(leader, []caspaxos.Voter{c.members[leader-1].Voter, fresh.Voter}); err != nil {
		t.Fatal(err)
	}
	c.kill(leader)
	next, e := c.waitActive(10*time.Second, epoch)
	if next != wiped {
		t.Fatalf("voter %d active in epoch %d, want the re-admitted voter %d", next, e, wiped)
	}
	if got := c.eventsOf(fresh.Voter); len(got) == 0 || !got[0].Active {
		t.Fatalf("re-admitted voter's transitions: %+v", got)
	}
}

// A change blocked by a voter that is not running returns ctx's error and
// leaves the quorum in step 1, where it keeps its controller, survives a
// restart of a voter (which resumes from its persisted step) and elects;
// the next controller completes the change once the voter runs.
func TestClusterBlockedChangeResumes(t *testing.T) {
	c := newCluster(t)
	leader, _ := c.waitActive(5*time.Second, 0)
	m4 := c.format(4)
	four := append(slices.Clone(c.members), m4)
	err := c.change(leader, four, 1500*time.Millisecond)
	// Step 1 needs accepts from all three running voters, so on a loaded
	// machine the controller may lose its lease while it waits: then the
	// change ends with ErrNotActive instead, blocked all the same.
	if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, ctrlquorum.ErrNotActive) {
		t.Fatalf("change with voter 4 down: %v, want a deadline error", err)
	}
	steps, perr := caspaxos.PlanChange(caspaxos.Majority(memberVoters(c.members)), memberVoters(four))
	if perr != nil {
		t.Fatal(perr)
	}
	for id, v := range c.voters {
		if got := v.proposerConfig(); !caspaxos.SameConfig(got, steps[0].Config) {
			t.Fatalf("voter %d uses %+v, want step 1 %+v", id, got, steps[0].Config)
		}
	}
	// The quorum has a controller in step 1 (the same one, unless the
	// machine is loaded).
	leader, epoch := c.waitActive(10*time.Second, 0)
	// Restart the controller between steps: it comes back on step 1.
	c.kill(leader)
	v := c.start(leader)
	if got := v.proposerConfig(); !caspaxos.SameConfig(got, steps[0].Config) {
		t.Fatalf("restarted voter uses %+v, want its persisted step 1", got)
	}
	leader, epoch = c.waitActive(10*time.Second, epoch)
	if reg := c.voters[leader].Register(); reg.Change == nil {
		t.Fatalf("no open change in the register: %+v", reg)
	}
	c.startJoin(4)
	if err := c.change(leader, four, 10*time.Second); err != nil {
		t.Fatalf("resume: %v", err)
	}
	c.checkConfig(four)
	waitRegister(t, c.voters[leader], "four voters", func(r caspaxos.Register) bool { return sameVoters(r.Voters, four) && r.Change == nil })
	c.kill(leader)
	c.start(leader)
	c.waitActive(10*time.Second, epoch)
}

func TestChangeVotersNotActive(t *testing.T) {
	c := newCluster(t)
	leader, _ := c.waitActive(5*time.Second, 0)
	other := leader%3 + 1
	if err := c.change(other, c.members, time.Second); !errors.Is(err, ctrlquorum.ErrNotActive) {
		t.Fatalf("ChangeVoters on a follower: %v, want ErrNotActive", err)
	}
}
