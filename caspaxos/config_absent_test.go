package caspaxos

import (
	"errors"
	"slices"
	"testing"
)

// TestPlanChangeWithout checks the plans that leave dead voters out: every
// step is valid and safe beside the one before (the current
// configuration beside the first), the plan ends on Majority(target), and
// no step's prepare or accept quorum needs an absent voter. Removing more
// voters than the current configuration tolerates losing is refused.
func TestPlanChangeWithout(t *testing.T) {
	for _, c := range []struct {
		name           string
		from, to, gone []Voter
		steps          int
		refused        bool
	}{
		{"3 to 2, the leaving one dead", voters(1, 2, 3), voters(1, 2), voters(3), 4, false},
		{"5 to 4, the leaving one dead", voters(1, 2, 3, 4, 5), voters(1, 2, 3, 4), voters(5), 3, false},
		{"5 to 3, both leaving dead", voters(1, 2, 3, 4, 5), voters(1, 2, 3), voters(4, 5), 4, false},
		{"4 to 3, the leaving one dead", voters(1, 2, 3, 4), voters(1, 2, 3), voters(4), 3, false},
		{"replace a dead 3 by 4", voters(1, 2, 3), voters(1, 2, 4), voters(3), 3, false},
		{"3 to 1, both leaving dead", voters(1, 2, 3), voters(1), voters(2, 3), 0, true},
		{"2 to 1, the leaving one dead", voters(1, 2), voters(1), voters(2), 0, true},
		{"5 to 2, three leaving dead", voters(1, 2, 3, 4, 5), voters(1, 2), voters(3, 4, 5), 0, true},
		{"absent voter that stays", voters(1, 2, 3), voters(1, 2, 3), voters(3), 0, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cur := Majority(c.from)
			steps, err := PlanChangeWithout(cur, c.to, c.gone)
			if c.refused {
				if err == nil {
					t.Fatalf("planned %d steps without %v", len(steps), c.gone)
				}
				t.Logf("refused: %v", err)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(steps) != c.steps {
				t.Fatalf("%d steps, want %d", len(steps), c.steps)
			}
			prev := cur
			for i, s := range steps {
				if err := s.Config.Validate(); err != nil {
					t.Fatalf("step %d: %v", i+1, err)
				}
				if !Compatible(prev, s.Config) {
					t.Fatalf("step %d unsafe beside the one before: %s / %s", i+1, show(prev), show(s.Config))
				}
				if s.Rescan != (i < len(steps)-1) {
					t.Fatalf("step %d rescan %v", i+1, s.Rescan)
				}
				for _, q := range []Quorum{s.Config.Prepare, s.Config.Accept} {
					live := 0
					for _, v := range q.Voters {
						if !slices.Contains(c.gone, v) {
							live++
						}
					}
					if live < q.Need {
						t.Fatalf("step %d (%s) needs an absent voter", i+1, show(s.Config))
					}
				}
				prev = s.Config
			}
			if show(prev) != show(Majority(c.to)) {
				t.Fatalf("plan ends at %s", show(prev))
			}
			// Without the absent voters named, the plan is PlanChange's.
			plain, err := PlanChange(cur, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if len(plain) != 3 {
				t.Fatalf("PlanChange: %d steps", len(plain))
			}
		})
	}
	// The plan that obstacle (a) is about: removing one dead voter of
	// three with PlanChange's plan needs all three to accept in step 1.
	plain, _ := PlanChange(Majority(voters(1, 2, 3)), voters(1, 2))
	if plain[0].Config.Accept.Need != 3 {
		t.Fatalf("PlanChange 3 to 2 step 1 accepts %d of 3; the test's premise changed", plain[0].Config.Accept.Need)
	}
}

// TestPrepareBlocked pins the skip condition: every prepare quorum of
// every configuration must hold a refusing voter.
func TestPrepareBlocked(t *testing.T) {
	abc, ab := Majority(voters(1, 2, 3)), Majority(voters(1, 2))
	five := Majority(voters(1, 2, 3, 4, 5))
	for _, c := range []struct {
		name     string
		configs  []Config
		refusing []Voter
		want     bool
	}{
		{"2 of ABC, A and B refuse", []Config{abc}, voters(1, 2), true},
		{"2 of ABC, only A refuses", []Config{abc}, voters(1), false},
		{"1 of AB, A refuses (B alone is a quorum)", []Config{ab}, voters(1), false},
		{"3 of five, three refuse", []Config{five}, voters(1, 2, 3), true},
		{"3 of five, two refuse", []Config{five}, voters(1, 2), false},
		{"one blocked, one not", []Config{abc, ab}, voters(1, 2), true},
		{"one blocked, one not (2)", []Config{abc, ab}, voters(1), false},
		{"no configs", nil, nil, true},
		{"nobody refuses", []Config{abc}, nil, false},
	} {
		if got := PrepareBlocked(c.configs, c.refusing); got != c.want {
			t.Errorf("%s: PrepareBlocked = %v, want %v", c.name, got, c.want)
		}
	}
}

func TestRegisterV4RoundTrip(t *testing.T) {
	r := Register{ClusterID: "c", Epoch: 3, Active: va, ISR: []Voter{va}, Voters: []Member{{Voter: va}, {Voter: vb}, {Voter: vc}},
		ConfigVersion: 7, Change: &VoterChange{ID: 7, From: Majority([]Voter{va, vb, vc}),
			Target: []Member{{Voter: va}, {Voter: vb}}, Absent: []Voter{vc}}}
	b, err := r.MarshalBinary()
	if err != nil || b[0] != registerV4 {
		t.Fatalf("marshal: version %d, %v", b[0], err)
	}
	var got Register
	if err := got.UnmarshalBinary(b); err != nil {
		t.Fatal(err)
	}
	if !got.Change.equal(r.Change) || !slices.Equal(got.Change.Absent, []Voter{vc}) {
		t.Fatalf("round trip: %+v", got.Change)
	}
	if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil {
		t.Fatal("truncated register decoded")
	}
	r.Change.Absent = nil
	if b, _ := r.MarshalBinary(); b[0] != registerV3 {
		t.Fatalf("no absent voter: version %d, want %d", b[0], registerV3)
	}
}

func TestBeginVoterChangeWithout(t *testing.T) {
	r := Register{ClusterID: "c", Epoch: 1, Active: va, ISR: []Voter{va}, ConfigVersion: 4,
		Voters: []Member{{Voter: va}, {Voter: vb}, {Voter: vc}}}
	apply := func(ch Change) (Register, error) {
		cur, _ := r.MarshalBinary()
		next, err := ch(cur)
		if err != nil {
			return Register{}, err
		}
		var out Register
		return out, out.UnmarshalBinary(next)
	}
	from := Majority([]Voter{va, vb, vc})
	if _, err := apply(BeginVoterChangeWithout(1, 4, from, []Member{{Voter: va}, {Voter: vb}, {Voter: vc}}, []Voter{vc})); !errors.Is(err, ErrBadConfig) {
		t.Fatalf("absent voter that stays: %v, want ErrBadConfig", err)
	}
	got, err := apply(BeginVoterChangeWithout(1, 4, from, []Member{{Voter: va}, {Voter: vb}}, []Voter{vc}))
	if err != nil || got.Change == nil || !slices.Equal(got.Change.Absent, []Voter{vc}) {
		t.Fatalf("begin without C: %+v, %v", got.Change, err)
	}
}
