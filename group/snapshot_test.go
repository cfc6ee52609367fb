package group

import (
	"errors"
	"reflect"
	"testing"
	"time"
)

func TestSyncDeadlineRemovesMembersThatNeverSync(t *testing.T) {
	h := newHarness(t, testConfig())
	a, b := h.stableTwo()
	// b changes its subscription: a rebalance, both rejoin, only a syncs.
	_, tb := h.join(req("b", b, "range", "roundrobin"))
	_, ta := h.join(req("a", a))
	ja, jb := h.joined(ta), h.joined(tb)
	h.state(CompletingRebalance)
	gen := ja.Generation
	if jb.Generation != gen {
		t.Fatalf("generations %d/%d", ja.Generation, jb.Generation)
	}
	// The follower syncs; the leader has gone silent.
	res, tf := h.g.Sync(h.now, SyncRequest{MemberID: b, Generation: gen})
	if res != nil {
		t.Fatalf("follower sync answered early: %+v", res)
	}
	// b's heartbeats keep its session; a (the leader) stays silent.
	for i := 0; i < 5; i++ {
		h.advance(5 * time.Second)
		if h.g.State() != CompletingRebalance {
			break
		}
		h.heartbeat(b, gen, nil)
	}
	// a's session (10s) expired first, which started a rebalance and
	// answered b's parked sync.
	if r := h.synced(tf); !errors.Is(r.Err, errRebalanceInProgress) {
		t.Fatalf("parked sync: %+v", r)
	}
	if _, ok := h.g.members[a]; ok {
		t.Fatalf("silent leader %s still a member", a)
	}
}

func TestSyncDeadlineWithHeartbeatingLeader(t *testing.T) {
	h := newHarness(t, testConfig())
	a, b := h.stableTwo()
	_, tb := h.join(req("b", b, "range", "roundrobin"))
	_, ta := h.join(req("a", a))
	gen := h.joined(ta).Generation
	h.joined(tb)
	res, tf := h.g.Sync(h.now, SyncRequest{MemberID: b, Generation: gen})
	if res != nil {
		t.Fatal("follower sync answered early")
	}
	// The leader heartbeats but never sends its assignment: the sync
	// deadline (the rebalance timeout, 30s) removes it.
	for elapsed := time.Duration(0); elapsed < 30*time.Second; elapsed += 3 * time.Second {
		h.heartbeat(a, gen, nil)
		h.advance(3 * time.Second)
	}
	if _, ok := h.g.members[a]; ok {
		t.Fatal("leader that never synced is still a member")
	}
	if _, ok := h.g.members[b]; !ok {
		t.Fatal("follower that synced was removed")
	}
	if r := h.synced(tf); !errors.Is(r.Err, errRebalanceInProgress) {
		t.Fatalf("parked sync: %+v", r)
	}
	h.state(PreparingRebalance)
	if d := h.g.NextDeadline(); d.IsZero() {
		t.Fatal("no deadline while rebalancing")
	}
}

func TestSnapshotRestore(t *testing.T) {
	h := newHarness(t, testConfig())
	a, b := h.stableTwo()
	v := h.g.Version()
	if v == 0 {
		t.Fatal("a settled generation did not move Version")
	}
	s := h.g.Snapshot()
	r := Restore("g", testConfig(), s, h.now)
	if r.State() != Stable || r.Generation() != h.g.Generation() || r.Leader() != a || r.Protocol() != "range" || r.ProtocolType() != "consumer" {
		t.Fatalf("restored %v gen %d leader %s protocol %s/%s", r.State(), r.Generation(), r.Leader(), r.ProtocolType(), r.Protocol())
	}
	if !reflect.DeepEqual(r.Snapshot(), s) {
		t.Fatalf("snapshot round trip:\n%+v\n%+v", r.Snapshot(), s)
	}
	// The restored members keep working: heartbeat, lost sync response.
	if err := r.Heartbeat(h.now, HeartbeatRequest{MemberID: b, Generation: s.Generation}); err != nil {
		t.Fatal(err)
	}
	res, _ := r.Sync(h.now, SyncRequest{MemberID: b, Generation: s.Generation})
	if res == nil || string(res.Assignment) != "to "+b {
		t.Fatalf("sync after restore: %+v", res)
	}
	// Silent members expire after their session.
	r.Tick(h.now.Add(11 * time.Second))
	if r.State() != Empty || r.Generation() != s.Generation+1 {
		t.Fatalf("state %v gen %d after every session lapsed", r.State(), r.Generation())
	}

	empty := Restore("e", testConfig(), Snapshot{Generation: 7}, h.now)
	if empty.State() != Empty || empty.Generation() != 7 || !empty.IsEmpty() {
		t.Fatalf("empty restore: %v %d", empty.State(), empty.Generation())
	}
	// A group whose members all left keeps its protocol type across a
	// restart (group list showed "-" instead of "consumer").
	emptied := Restore("e", testConfig(), r.Snapshot(), h.now)
	if emptied.State() != Empty || emptied.ProtocolType() != "consumer" || !reflect.DeepEqual(emptied.Snapshot(), r.Snapshot()) {
		t.Fatalf("emptied group restored as %v with protocol type %q; snapshot %+v, want %+v",
			emptied.State(), emptied.ProtocolType(), emptied.Snapshot(), r.Snapshot())
	}
}

func TestValidateCommit(t *testing.T) {
	h := newHarness(t, testConfig())
	if err := h.g.ValidateCommit("", "", -1); err != nil {
		t.Fatalf("admin commit to an empty group: %v", err)
	}
	a, b := h.stableTwo()
	gen := h.g.Generation()
	for _, c := range []struct {
		member, instance string
		gen              int32
		want             error
	}{
		{a, "", gen, nil},
		{"", "", -1, errUnknownMember},
		{"ghost", "", gen, errUnknownMember},
		{b, "", gen + 1, errIllegalGeneration},
	} {
		if err := h.g.ValidateCommit(c.member, c.instance, c.gen); !errors.Is(err, c.want) || (c.want == nil && err != nil) {
			t.Errorf("commit %q gen %d: %v, want %v", c.member, c.gen, err, c.want)
		}
	}
	// A rebalance starts: commits of the current generation still go
	// through (commit on revoke), until the join completes.
	_, tb := h.join(req("b", b, "range", "roundrobin"))
	if err := h.g.ValidateCommit(a, "", gen); err != nil {
		t.Fatalf("commit during PreparingRebalance: %v", err)
	}
	_, ta := h.join(req("a", a))
	h.joined(ta)
	h.joined(tb)
	if err := h.g.ValidateCommit(a, "", gen+1); !errors.Is(err, errRebalanceInProgress) {
		t.Fatalf("commit during CompletingRebalance: %v", err)
	}
	if err := h.g.Delete(); !errors.Is(err, errNonEmptyGroup) {
		t.Fatal(err)
	}
}

func TestStaticRestartChangingTheProtocolRebalances(t *testing.T) {
	h := newHarness(t, testConfig())
	s := req("s", "", "roundrobin", "range")
	s.InstanceID = "s-1"
	_, ts := h.join(s)
	old := h.joined(ts).MemberID
	b, tb := h.joinNew("b", "roundrobin", "range")
	s.MemberID = old
	_, ts = h.join(s)
	if j := h.joined(ts); j.Protocol != "roundrobin" {
		t.Fatalf("chosen %q", j.Protocol)
	}
	h.joined(tb)
	res, tf := h.g.Sync(h.now, SyncRequest{MemberID: b, Generation: 2})
	if res != nil {
		t.Fatal("follower answered early")
	}
	h.g.Sync(h.now, SyncRequest{MemberID: old, Generation: 2, Assignments: map[string][]byte{old: []byte("x"), b: []byte("y")}})
	h.collect()
	h.synced(tf)
	h.state(Stable)
	// s restarts preferring range: the vote ties and the longest-standing
	// member's first choice wins, so the protocol would change.
	s.MemberID = ""
	s.Protocols = []Protocol{{Name: "range"}, {Name: "roundrobin"}}
	if r, tk := h.join(s); r != nil || tk == 0 {
		t.Fatalf("static restart changing the protocol answered at once: %+v", r)
	}
	h.state(PreparingRebalance)
}
