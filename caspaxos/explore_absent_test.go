package caspaxos

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
)

// Removing a dead voter (PlanChangeWithout, issue 17). With
// changeBounds.absent the membership explorer also models what package
// voter adds for it:
//
//   - each acceptor has a persisted step (accStep), moved forward on its
//     own under the same rule as the proposers, and every Prepare and
//     Accept carries the step its ballot was sent at;
//   - an acceptor refuses a Prepare or Accept sent at an older step than
//     its own and pushes its step back, which moves the sender forward
//     (unless the answer is lost);
//   - proposer 0 runs on the node of the first absent voter, its step
//     and that acceptor's are one persisted record, and the others may
//     go on without it: a step counts as used by everyone once every
//     other proposer and acceptor uses it and every prepare quorum of
//     every configuration proposer 0 could still be on holds an acceptor
//     that uses it (PrepareBlocked), so the walks leave it behind at any
//     step, let it run rounds there, restart it with its persisted step,
//     and deliver its old messages at any time.
//
// The invariants are the membership explorer's: one value per ballot, no
// chosen value lost, one linear history.

const leaver = 0 // the proposer on the absent voter's node

func (e *changeEnv) leaverSlot() int { return int(e.b.absent[0].ID - 1) }

// low is the lowest step a move from step s must wait for: every
// proposer's (and, with absent, every acceptor's), leaving out the absent
// voter's proposer and acceptor when they may be skipped.
func (w *cwWorld) low(e *changeEnv, s int) int {
	if len(e.b.absent) == 0 {
		return minInts(w.step)
	}
	skip := w.skippable(e, s)
	low := s + len(e.cfgs)
	for i, st := range w.step {
		if !(skip && i == leaver) {
			low = min(low, st)
		}
	}
	for k, st := range w.accStep {
		if !(skip && k == e.leaverSlot()) {
			low = min(low, st)
		}
	}
	return low
}

func minInts(xs []int) int {
	m := xs[0]
	for _, x := range xs {
		m = min(m, x)
	}
	return m
}

// skippable: the absent voter (on step ls < s) need not use step s before
// the others go on: every prepare quorum of each step from ls to s-1
// holds an acceptor already on s, which refuses it.
func (w *cwWorld) skippable(e *changeEnv, s int) bool {
	ls := w.step[leaver]
	if ls >= s {
		return false
	}
	var refusing []Voter
	for k, st := range w.accStep {
		if st >= s {
			refusing = append(refusing, w.acc[k].Self)
		}
	}
	return PrepareBlocked(e.cfgs[ls:s], refusing)
}

// moveTo switches proposer i to step s (its acceptor too, for the absent
// voter's node: one persisted record).
func (w *cwWorld) moveTo(e *changeEnv, i, s int) {
	w.step[i] = s
	if len(e.b.absent) > 0 && i == leaver {
		w.accStep[e.leaverSlot()] = s
	}
	o, err := w.props[i].SetConfig(e.cfgs[s])
	if err != nil {
		panic(err)
	}
	w.send(e, i, o)
}

// refuses: acceptor k refuses m, sent at an older step than its own, and
// pushes its step to the sender unless that answer is lost.
func (w *cwWorld) refuses(e *changeEnv, k int, m Message, lose bool) bool {
	if len(e.b.absent) == 0 || e.b.noRefuse {
		return false
	}
	at, mine := w.sentAt[m.Ballot], w.accStep[k]
	if at >= mine {
		return false
	}
	if !lose {
		for i, p := range w.props {
			if p.o.ID == m.Proposer && w.step[i] < mine {
				w.moveTo(e, i, mine)
			}
		}
	}
	return true
}

// absentSuccessors: an acceptor other than the absent voter's moves to
// its next step on its own (its voter persisted the step record).
func (w *cwWorld) absentSuccessors(e *changeEnv, add func(*cwWorld, string)) {
	if len(e.b.absent) == 0 {
		return
	}
	for k, s := range w.accStep {
		if k != e.leaverSlot() && w.mayMove(e, s) {
			n := w.clone()
			n.accStep[k]++
			add(n, fmt.Sprintf("acceptor %d uses step %d", k+1, n.accStep[k]))
		}
	}
}

func absentCases() []changeBounds {
	three := []Voter{va, vb, vc}
	four := []Voter{va, vb, vc, {ID: 4, Incarnation: inc(1)}}
	return []changeBounds{
		{name: "3 to 2 without C", start: three, target: three[:2], slots: three, absent: three[2:],
			ops: [][]byte{[]byte("cd"), []byte("ab")}},
		{name: "3 to 2 without C, a drop, a dup, a restart, a timeout", start: three, target: three[:2], slots: three,
			absent: three[2:], ops: [][]byte{[]byte("cd"), []byte("ab")}, drops: 1, dups: 1, restarts: 1, timeouts: 1},
		{name: "3 to 2 without C, C restarts twice", start: three, target: three[:2], slots: three, absent: three[2:],
			ops: [][]byte{[]byte("cde"), []byte("a")}, restarts: 2, crashes: 1},
		{name: "3 to 2 without C, C never hears a step", start: three, target: three[:2], slots: three, absent: three[2:],
			deaf: true, ops: [][]byte{[]byte("cd"), []byte("ab")}, restarts: 1, drops: 1, timeouts: 6},
		{name: "4 to 3 without D, D never hears a step", start: four, target: three, slots: four, absent: four[3:],
			deaf: true, ops: [][]byte{[]byte("de"), []byte("ab")}, restarts: 1, timeouts: 4},
	}
}

// TestExploreRemoveAbsentVoter walks the removal of a voter whose
// proposer is left behind and comes back on its stale step: its rounds
// are refused, no two values are chosen and no chosen value is lost.
func TestExploreRemoveAbsentVoter(t *testing.T) {
	walks := 400
	if *flagExplore || *flagLong {
		walks = 10000
	}
	for _, c := range absentCases() {
		t.Run(c.name, func(t *testing.T) {
			n, bad := walkChange(t, c, walks, uint64(*flagSeed))
			if bad != "" {
				t.Fatalf("%s (replay: -run 'TestExploreRemoveAbsentVoter' -seed=%d)", bad, *flagSeed)
			}
			t.Logf("%d states on %d random walks", n, walks)
		})
	}
}

// Without the acceptors' refusal, the deaf proposer left behind on the
// old configuration (2 of ABC) chooses a value with B and C that A alone
// (1 of AB) does not see. The walks first hold the absent voter still
// (its proposer and the messages from it) and the other client until
// everyone else uses the last step, as when it is down for the whole
// change, then go on at random; with the refusal the same walks find
// nothing.
func TestExploreRemoveAbsentVoterCatchesNoRefusal(t *testing.T) {
	c := absentCases()[3]
	c.noRefuse = true
	n, bad := walkAbsentLate(t, c, 2000, 1)
	if bad == "" {
		t.Fatalf("no violation found in %d states", n)
	}
	t.Logf("found after %d states: %s", n, strings.SplitN(bad, "\n", 2)[0])
	c.noRefuse = false
	if n, bad := walkAbsentLate(t, c, 1000, 1); bad != "" {
		t.Fatalf("with the refusal, after %d states: %s", n, bad)
	}
}

// walkAbsentLate is walkChange with the absent voter's proposer and its
// messages, and the other client's proposals, held back until every other
// proposer and acceptor uses the last step.
func walkAbsentLate(t *testing.T, b changeBounds, walks int, seed uint64) (states int, bad string) {
	e, w0 := newChangeWorld(t, b)
	rng := rand.New(rand.NewPCG(seed, 7))
	last := len(e.cfgs) - 1
	for range walks {
		w := w0.clone()
		var trace []string
		for len(trace) < 500 {
			w.checkResults()
			if w.violated != "" {
				return states, w.violated + "\n  after: " + strings.Join(trace, "\n         ")
			}
			next, names := w.successors(e)
			held := false
			for i, st := range w.step {
				held = held || (i != leaver && st < last)
			}
			for k, st := range w.accStep {
				held = held || (k != e.leaverSlot() && st < last)
			}
			var idx []int
			for j, name := range names {
				mine := strings.HasPrefix(name, "p0 ") || strings.HasPrefix(name, "p1 propose") ||
					strings.Contains(name, fmt.Sprintf(" p=%d ", w.props[leaver].o.ID))
				if !held || !mine {
					idx = append(idx, j)
				}
			}
			if len(idx) == 0 {
				break
			}
			j := idx[rng.IntN(len(idx))]
			w = next[j]
			w.prune()
			trace = append(trace, names[j])
			states++
		}
	}
	return states, ""
}
