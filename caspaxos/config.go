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
// incarnation. It is PlanChangeWithout with no absent voter.
func PlanChange(cur Config, target []Voter) ([]Step, error) {
	return PlanChangeWithout(cur, target, nil)
}

// PlanChangeWithout plans the change from cur to Majority(target) so that
// no step's quorums need the absent voters: leaving voters (in cur, not in
// target) that are down, as when RemoveRaftVoter removes a dead
// controller. Every voter of target must answer.
//
// The accept quorum over old ∪ new must then be met by the voters left, so
// the new prepare quorum is chosen larger than Majority's (p of the n
// target voters, from Majority's count up to n) until such an accept
// quorum exists; with a larger p the steps are
//
//  1. prepares as in cur, accepts grown over old ∪ new (rescan);
//  2. prepares p of target, accepts as in step 1 (rescan);
//  3. prepares p of target, accepts Majority(target)'s (rescan);
//  4. Majority(target).
//
// Step 3 is compatible with both neighbours (p is at least Majority's
// prepare count, so p of target meets Majority's accepts), so the change
// still ends on Majority(target) and the next change plans from it as
// usual. With Majority's p it is PlanChange's three steps. Removing one
// dead voter of three: {2 of ABC, 2 of ABC}, {2 of AB, 2 of ABC}, {2 of
// AB, 2 of AB}, {1 of AB, 2 of AB}; C is in no quorum that must answer.
//
// It fails when cur's own prepare quorum cannot be met without the absent
// voters (they are more than cur tolerates losing: two of three, or one
// of two), or when no p works.
func PlanChangeWithout(cur Config, target []Voter, absent []Voter) ([]Step, error) {
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
	for _, v := range absent {
		if slices.Contains(target, v) || !slices.Contains(union, v) {
			return nil, fmt.Errorf("caspaxos: plan change: absent voter %s is not a leaving voter", v)
		}
	}
	present := func(q Quorum) int {
		n := 0
		for _, v := range q.Voters {
			if !slices.Contains(absent, v) {
				n++
			}
		}
		return n
	}
	if present(cur.Prepare) < cur.Prepare.Need {
		return nil, fmt.Errorf("caspaxos: plan change: without %v the current prepare quorum (%d of %d) cannot be met",
			absent, cur.Prepare.Need, len(cur.Prepare.Voters))
	}
	for p := want.Prepare.Need; p <= len(target); p++ {
		prep := Quorum{Voters: slices.Clone(target), Need: p}
		grown := Quorum{Voters: union}
		for grown.Need = 1; grown.Need <= len(union); grown.Need++ {
			if Intersects(cur.Prepare, grown) && Intersects(prep, grown) {
				break
			}
		}
		if grown.Need > len(union) || present(grown) < grown.Need {
			continue
		}
		steps := []Step{
			{Config: Config{Prepare: cloneQuorum(cur.Prepare), Accept: grown}, Rescan: true},
			{Config: Config{Prepare: prep, Accept: cloneQuorum(grown)}, Rescan: true},
		}
		if p > want.Prepare.Need {
			steps = append(steps, Step{Config: Config{Prepare: cloneQuorum(prep), Accept: cloneQuorum(want.Accept)}, Rescan: true})
		}
		steps = append(steps, Step{Config: want})
		prev := cur
		for i, s := range steps {
			if err := s.Config.Validate(); err != nil {
				return nil, fmt.Errorf("caspaxos: plan change: step %d: %w", i+1, err)
			}
			if !Compatible(prev, s.Config) {
				return nil, fmt.Errorf("caspaxos: plan change: step %d is not compatible with the one before", i+1)
			}
			prev = s.Config
		}
		return steps, nil
	}
	return nil, fmt.Errorf("caspaxos: plan change: no plan to %v leaves out %v", target, absent)
}

// PrepareBlocked reports whether every prepare quorum of every config in
// configs holds at least one voter of refusing. Package voter skips the
// acknowledgement of a silent leaving voter only when it holds for every
// configuration that voter's proposer could still use, with refusing the
// voters that persisted the current step: their acceptors refuse a
// proposer on an older step, so no prepare of that proposer can complete
// again. A quorum of Need from its Voters avoids refusing only if at least
// Need of its voters are outside refusing.
func PrepareBlocked(configs []Config, refusing []Voter) bool {
	for _, c := range configs {
		free := 0
		for _, v := range c.Prepare.Voters {
			if !slices.Contains(refusing, v) {
				free++
			}
		}
		if free >= c.Prepare.Need {
			return false
		}
	}
	return true
}

func cloneQuorum(q Quorum) Quorum { return Quorum{Voters: slices.Clone(q.Voters), Need: q.Need} }

// Compatible reports whether proposers using a and b at the same time are
// safe: each one's prepare quorums intersect the other's accept quorums.
func Compatible(a, b Config) bool {
	return Intersects(a.Prepare, b.Accept) && Intersects(b.Prepare, a.Accept)
}
