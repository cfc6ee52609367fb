package caspaxos

import (
	"errors"
	"slices"
	"testing"
)

func TestVoterChangeLifecycle(t *testing.T) {
	vd := Voter{ID: 4, Incarnation: inc(1)}
	old := []Member{{Voter: va}, {Voter: vb}, {Voter: vc}}
	target := append(slices.Clone(old), Member{Voter: vd, Endpoints: []Endpoint{{Name: "CONTROLLER", Host: "h4", Port: 9}}})
	r, err := BootstrapValue("c", old, 1)
	if err != nil {
		t.Fatal(err)
	}
	r.Epoch, r.Active = 1, va
	from := Majority([]Voter{va, vb, vc})
	apply := func(ch Change) (Register, error) {
		b, _ := r.MarshalBinary()
		out, err := ch(b)
		var next Register
		if err == nil {
			if derr := next.UnmarshalBinary(out); derr != nil {
				t.Fatal(derr)
			}
		}
		return next, err
	}
	begin := BeginVoterChange(1, r.ConfigVersion, from, target)
	next, err := apply(begin)
	if err != nil || next.Change == nil || next.Change.ID != 2 || next.ConfigVersion != 2 || !SameConfig(next.Change.From, from) {
		t.Fatalf("begin: %+v %v", next.Change, err)
	}
	if !slices.EqualFunc(next.Change.Target, target, equalMember) {
		t.Fatalf("begin target %+v", next.Change.Target)
	}
	r = next
	if _, err := apply(begin); err != nil {
		t.Fatalf("begin again (already applied): %v", err)
	}
	if _, err := apply(BeginVoterChange(1, r.ConfigVersion, from, old)); !errors.Is(err, ErrChangeInProgress) {
		t.Fatalf("second begin: %v, want ErrChangeInProgress", err)
	}
	if _, err := apply(SetVoters(1, r.ConfigVersion, old)); !errors.Is(err, ErrChangeInProgress) {
		t.Fatalf("SetVoters during a change: %v", err)
	}
	if _, err := apply(FinishVoterChange(2, 2, target)); err == nil {
		t.Fatal("finish in another epoch succeeded")
	}
	fin := FinishVoterChange(1, 2, target)
	next, err = apply(fin)
	if err != nil || next.Change != nil || next.ConfigVersion != 3 || !next.IsVoter(vd) {
		t.Fatalf("finish: %+v %v", next, err)
	}
	r = next
	if _, err := apply(fin); err != nil {
		t.Fatalf("finish again (already applied): %v", err)
	}
	// Removing an ISR member is refused until the ISR shrinks.
	noC := []Member{target[0], target[1], target[3]}
	if _, err := apply(BeginVoterChange(1, r.ConfigVersion, Majority([]Voter{va, vb, vc, vd}), noC)); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("begin that drops ISR member %s: %v, want ErrBadConfig", vc, err)
	}
	// While open, the ISR cannot grow outside the target.
	r.ISR = []Voter{va, vb}
	r.Change = &VoterChange{ID: r.ConfigVersion, From: Majority([]Voter{va, vb, vc, vd}), Target: target[:2]}
	if _, err := apply(ExpandISR(1, r.ConfigVersion, []Voter{va, vb, vc})); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("expand to a leaving voter during a change: %v", err)
	}
}

func TestRegisterV3RoundTrip(t *testing.T) {
	r := Register{ClusterID: "c", Epoch: 3, Active: va, ISR: []Voter{va}, Voters: []Member{{Voter: va}},
		ConfigVersion: 7, Change: &VoterChange{ID: 7, From: Majority([]Voter{va}),
			Target: []Member{{Voter: va}, {Voter: vb, Endpoints: []Endpoint{{Name: "C", Host: "b", Port: 1}}}}}}
	b, err := r.MarshalBinary()
	if err != nil || b[0] != registerV3 {
		t.Fatalf("marshal: version %d, %v", b[0], err)
	}
	var got Register
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !got.Change.equal(r.Change) || got.ConfigVersion != 7 {
		t.Fatalf("round trip: %+v", got.Change)
	}
	r.Change = nil
	if b, _ := r.MarshalBinary(); b[0] != registerVersion {
		t.Fatalf("no change open: version %d, want %d", b[0], registerVersion)
	}
	var c Config
	cb, _ := Majority([]Voter{va, vb, vc}).MarshalBinary()
	if err := c.UnmarshalBinary(cb); err != nil || !SameConfig(c, Majority([]Voter{va, vb, vc})) {
		t.Fatalf("config round trip: %+v %v", c, err)
	}
	if err := c.UnmarshalBinary(cb[:len(cb)-1]); err == nil {
		t.Fatal("truncated config decoded")
	}
}
