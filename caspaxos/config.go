package caspaxos

import (
	"errors"
	"fmt"
	"slices"
)

// Quorum is a set of acceptors and how many of them must answer.
type Quorum struct {
	Voters []Voter
	Need   int
}

func (q Quorum) has(v Voter) bool { return slices.Contains(q.Voters, v) }

// Config is what a proposer needs to run rounds: where prepares go and how
// many promises make a quorum, and the same for accepts. With flexible
// quorums (FPaxos) the two differ; safety needs only that every prepare
// quorum intersects every accept quorum (Intersects). A steady-state
// configuration is Majority(voters); the others appear only during a
// membership change (PlanChange).
type Config struct {
	Prepare Quorum
	Accept  Quorum
}

// Majority is the steady configuration over voters: accepts need a strict
// majority and prepares the fewest that still intersect it (equal to the
// majority for an odd count).
func Majority(voters []Voter) Config {
	n := len(voters)
	a := n/2 + 1
	vs := slices.Clone(voters)
	return Config{Prepare: Quorum{Voters: vs, Need: n - a + 1}, Accept: Quorum{Voters: slices.Clone(vs), Need: a}}
}

// Validate checks that c is usable and safe on its own.
func (c Config) Validate() error {
	for _, q := range []Quorum{c.Prepare, c.Accept} {
		if q.Need < 1 || q.Need > len(q.Voters) {
			return fmt.Errorf("caspaxos: quorum needs %d of %d voters", q.Need, len(q.Voters))
		}
		// Two incarnations of one id may both appear (replacing a wiped
		// voter): they are different acceptors, and the old one only ever
		// refuses. The same incarnation twice would count one vote twice.
		seen := make(map[Voter]bool, len(q.Voters))
		for _, v := range q.Voters {
			if v.IsZero() {
				return errors.New("caspaxos: quorum names the zero voter")
			}
			if seen[v] {
				return fmt.Errorf("caspaxos: voter %s appears twice in a quorum", v)
			}
			seen[v] = true
		}
	}
	if !Intersects(c.Prepare, c.Accept) {
		return fmt.Errorf("caspaxos: prepare quorum %d/%d and accept quorum %d/%d need not intersect",
			c.Prepare.Need, len(c.Prepare.Voters), c.Accept.Need, len(c.Accept.Voters))
	}
	return nil
}

// Intersects reports whether every Need-subset of prep shares a voter with
// every Need-subset of acc. The worst case puts each quorum outside the
// other's voters as far as it can; what is left must overlap.
func Intersects(prep, acc Quorum) bool {
	common := 0
	for _, v := range prep.Voters {
		if acc.has(v) {
			common++
		}
	}
	inP := prep.Need - min(prep.Need, len(prep.Voters)-common)
	inA := acc.Need - min(acc.Need, len(acc.Voters)-common)
	return inP+inA > common
}

// Step is one configuration of a membership change. Every proposer must be
// using Config before any proposer moves to the next step. If Rescan is set,
// a read round (Read) must then complete through Config before the next
// step. After the first step it rewrites the register's value onto an
// accept quorum of Config, so that the next step's prepares see it. After
// every step it is also a fence: a proposer that moved on abandons its
// attempt of the step before, but that attempt's accepts may still be in
// flight, and a proposer two steps on (or restarted with a low counter)
// could run rounds whose quorums miss them. The read's accept phase is
// refused until its ballot exceeds every such attempt (the step's accept
// quorums meet the previous step's prepare quorums), and its promises make
// the step's prepare quorum refuse them, so none of them can be chosen or
// read as the newest value once it completed. The membership explorer
// finds a lost value without the fence after step 2.
type Step struct {
	Config Config
	Rescan bool
}

// PlanChange returns the steps from cur to Majority(target), following the
// CASPaxos paper's procedure generalised by flexible quorums:
//
//  1. accepts go to old ∪ new voters with a quorum that intersects both the
//     old and the new prepare quorums, prepares stay as they were; then a
//     rescan;
//  2. prepares switch to the new voters;
//  3. accepts shrink to the new configuration.
//
// Any two adjacent steps are safe to run side by side (each one's prepares
// intersect the other's accepts). What plain adjacency cannot cover, a value
// accepted only by an old quorum and invisible to the new prepares, is what
// the rescan after step 1 removes. Step 2 is fenced by a read as well
// (see Step); the last step's fence is the caller's next full round through
// it once every proposer uses it (package voter's FinishVoterChange), before
// any later change begins. Added voters must start empty with a new
// incarnation.
func PlanChange(cur Config, target []Voter) ([]Step, error) {
	if err := cur.Validate(); err != nil {
		return nil, fmt.Errorf("caspaxos: plan change: current config: %w", err)
	}
	want := Majority(target)
	if err := want.Validate(); err != nil {
		return nil, fmt.Errorf("caspaxos: plan change: target config: %w", err)
	}
	var union []Voter
	for _, vs := range [][]Voter{cur.Prepare.Voters, cur.Accept.Voters, target} {
		for _, v := range vs {
			if !slices.Contains(union, v) {
				union = append(union, v)
			}
		}
	}
	grown := Quorum{Voters: union}
	for grown.Need = 1; grown.Need <= len(union); grown.Need++ {
		if Intersects(cur.Prepare, grown) && Intersects(want.Prepare, grown) {
			break
		}
	}
	steps := []Step{
		{Config: Config{Prepare: cloneQuorum(cur.Prepare), Accept: grown}, Rescan: true},
		{Config: Config{Prepare: cloneQuorum(want.Prepare), Accept: cloneQuorum(grown)}, Rescan: true},
		{Config: want},
	}
	for i, s := range steps {
		if err := s.Config.Validate(); err != nil {
			return nil, fmt.Errorf("caspaxos: plan change: step %d: %w", i+1, err)
		}
	}
	return steps, nil
}

func cloneQuorum(q Quorum) Quorum { return Quorum{Voters: slices.Clone(q.Voters), Need: q.Need} }

// Compatible reports whether proposers using a and b at the same time are
// safe: each one's prepare quorums intersect the other's accept quorums.
func Compatible(a, b Config) bool {
	return Intersects(a.Prepare, b.Accept) && Intersects(b.Prepare, a.Accept)
}
