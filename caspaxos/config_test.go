package caspaxos

import (
	"fmt"
	"testing"
)

func voters(ids ...int32) []Voter {
	out := make([]Voter, len(ids))
	for i, id := range ids {
		out[i] = Voter{ID: id, Incarnation: inc(1)}
	}
	return out
}

func TestMajority(t *testing.T) {
	for _, c := range []struct{ n, prep, acc int }{{1, 1, 1}, {2, 1, 2}, {3, 2, 2}, {4, 2, 3}, {5, 3, 3}} {
		cfg := Majority(voters(1, 2, 3, 4, 5)[:c.n])
		if cfg.Prepare.Need != c.prep || cfg.Accept.Need != c.acc {
			t.Errorf("Majority(%d) needs %d/%d, want %d/%d", c.n, cfg.Prepare.Need, cfg.Accept.Need, c.prep, c.acc)
		}
		if err := cfg.Validate(); err != nil {
			t.Errorf("Majority(%d): %v", c.n, err)
		}
	}
}

// bruteIntersects enumerates every quorum pair.
func bruteIntersects(p, a Quorum) bool {
	for pm := 0; pm < 1<<len(p.Voters); pm++ {
		if popcount(pm) != p.Need {
			continue
		}
		for am := 0; am < 1<<len(a.Voters); am++ {
			if popcount(am) != a.Need {
				continue
			}
			meet := false
			for i, v := range p.Voters {
				for j, w := range a.Voters {
					meet = meet || (pm>>i&1 == 1 && am>>j&1 == 1 && v == w)
				}
			}
			if !meet {
				return false
			}
		}
	}
	return true
}

func popcount(x int) int {
	n := 0
	for ; x > 0; x &= x - 1 {
		n++
	}
	return n
}

func TestIntersectsMatchesEnumeration(t *testing.T) {
	wiped := Voter{ID: 1, Incarnation: inc(2)}
	sets := [][]Voter{voters(1, 2, 3), voters(1, 2, 3, 4), voters(2, 3, 4), voters(1, 2), append(voters(2, 3), wiped),
		append(voters(1, 2, 3), wiped), voters(1, 2, 3, 4, 5)}
	for _, ps := range sets {
		for _, as := range sets {
			for pn := 1; pn <= len(ps); pn++ {
				for an := 1; an <= len(as); an++ {
					p, a := Quorum{Voters: ps, Need: pn}, Quorum{Voters: as, Need: an}
					if got, want := Intersects(p, a), bruteIntersects(p, a); got != want {
						t.Fatalf("Intersects(%d of %v, %d of %v) = %v, want %v", pn, ps, an, as, got, want)
					}
				}
			}
		}
	}
}

func TestConfigValidate(t *testing.T) {
	v3 := voters(1, 2, 3)
	for _, c := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"majority", Majority(v3), true},
		{"flexible: prepare 1, accept all", Config{Prepare: Quorum{v3, 1}, Accept: Quorum{v3, 3}}, true},
		{"quorums that miss each other", Config{Prepare: Quorum{v3, 1}, Accept: Quorum{v3, 2}}, false},
		{"need above size", Config{Prepare: Quorum{v3, 4}, Accept: Quorum{v3, 2}}, false},
		{"need zero", Config{Prepare: Quorum{v3, 0}, Accept: Quorum{v3, 3}}, false},
		{"same voter twice", Config{Prepare: Quorum{append(voters(1, 2), v3[0]), 2}, Accept: Quorum{v3, 2}}, false},
		{"zero voter", Config{Prepare: Quorum{[]Voter{{}, v3[1], v3[2]}, 2}, Accept: Quorum{v3, 2}}, false},
		{"two incarnations of one id", Config{Prepare: Quorum{append(voters(1, 2, 3), Voter{ID: 1, Incarnation: inc(2)}), 3},
			Accept: Quorum{append(voters(1, 2, 3), Voter{ID: 1, Incarnation: inc(2)}), 3}}, true},
	} {
		if err := c.cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: Validate = %v, want ok=%v", c.name, err, c.ok)
		}
	}
}

// TestPlanChange checks the membership procedure for the changes a
// controller quorum makes: every step is valid, neighbouring steps (and the
// starting configuration with the first) are safe side by side, the plan
// ends at the target majority, and a rescan follows the first step. It
// also shows why the rescan is needed: the old accept quorums do not all
// meet the new prepare quorums.
func TestPlanChange(t *testing.T) {
	wiped := Voter{ID: 1, Incarnation: inc(2)}
	for _, c := range []struct {
		name       string
		from, to   []Voter
		needRescan bool // old accepts can miss new prepares
	}{
		{"3 to 4", voters(1, 2, 3), voters(1, 2, 3, 4), true},
		{"3 to 5", voters(1, 2, 3), voters(1, 2, 3, 4, 5), true},
		{"4 to 3", voters(1, 2, 3, 4), voters(1, 2, 3), false},
		{"5 to 3", voters(1, 2, 3, 4, 5), voters(1, 2, 3), true},
		{"replace 1 by 4", voters(1, 2, 3), voters(2, 3, 4), true},
		{"wiped 1 rejoins as a new incarnation", voters(1, 2, 3), append([]Voter{wiped}, voters(2, 3)...), true},
		{"3 to 2", voters(1, 2, 3), voters(1, 2), true},
	} {
		t.Run(c.name, func(t *testing.T) {
			cur := Majority(c.from)
			steps, err := PlanChange(cur, c.to)
			if err != nil {
				t.Fatal(err)
			}
			if !steps[0].Rescan {
				t.Fatal("first step has no rescan")
			}
			prev := cur
			for i, s := range steps {
				if err := s.Config.Validate(); err != nil {
					t.Fatalf("step %d: %v", i+1, err)
				}
				if !Compatible(prev, s.Config) {
					t.Fatalf("step %d is unsafe next to the step before: %s / %s", i+1, show(prev), show(s.Config))
				}
				prev = s.Config
			}
			want := Majority(c.to)
			if show(prev) != show(want) {
				t.Fatalf("plan ends at %s, want %s", show(prev), show(want))
			}
			if got := !Intersects(want.Prepare, cur.Accept); got != c.needRescan {
				t.Fatalf("old accepts miss new prepares = %v, want %v", got, c.needRescan)
			}
		})
	}
	if _, err := PlanChange(Majority(voters(1, 2, 3)), nil); err == nil {
		t.Fatal("plan to no voters")
	}
}

func show(c Config) string {
	return fmt.Sprintf("prepare %d of %v, accept %d of %v", c.Prepare.Need, c.Prepare.Voters, c.Accept.Need, c.Accept.Voters)
}
