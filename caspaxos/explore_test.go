package caspaxos

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
)

// The explorer visits every reachable state of a small CASPaxos world:
// three acceptors and two or three proposers, each running its changes,
// over a network where any message in flight may be delivered next (so
// every reordering), duplicated, or dropped, and where any proposer may
// time out and retry. States are deduplicated by a fingerprint. In every
// state it checks: one value per ballot, a chosen value is never lost
// (every later round read it or something newer), chosen values grow along
// ballots, no change is applied twice, and every successful result is a
// chosen value holding its change. This is the explicit-state check
// for the register core, in Go since TLC is not available here.

// exploreBounds bound the nondeterminism of one exploration.
type exploreBounds struct {
	ops      [][]byte // per proposer, the letters its changes append, in order
	drops    int
	dups     int
	timeouts int // per proposer
	oneRTT   bool
	maxState int // stop (and fail) beyond this many states
}

type exWorld struct {
	acc      [3]AcceptorState
	props    []*Proposer
	next     []int // per proposer, index of its next op
	timeouts []int
	net      []Message
	drops    int
	dups     int
	// history for the checks
	valueAt  map[Ballot]string
	accBy    map[Ballot]uint8 // bitmask of acceptors that accepted
	chosen   map[Ballot]bool
	base     map[Ballot]Ballot
	results  []string // successful results, "letter:value"
	violated string
}

var exVoters = []Voter{va, vb, vc}

func appendLetter(l byte) Change {
	return func(cur []byte) ([]byte, error) { return append(bytes.Clone(cur), l), nil }
}

func (w *exWorld) clone() *exWorld {
	c := *w
	c.props = make([]*Proposer, len(w.props))
	for i, p := range w.props {
		c.props[i] = p.clone()
	}
	c.next = slices.Clone(w.next)
	c.timeouts = slices.Clone(w.timeouts)
	c.net = slices.Clone(w.net)
	c.valueAt = maps.Clone(w.valueAt)
	c.accBy = maps.Clone(w.accBy)
	c.chosen = maps.Clone(w.chosen)
	c.base = maps.Clone(w.base)
	c.results = slices.Clone(w.results)
	return &c
}

func (p *Proposer) clone() *Proposer {
	c := *p
	c.promised = maps.Clone(p.promised)
	c.accepted = maps.Clone(p.accepted)
	c.nextOK = maps.Clone(p.nextOK)
	c.rejected = maps.Clone(p.rejected)
	c.tried = maps.Clone(p.tried)
	for _, f := range []**prepared{&c.fast, &c.tail} {
		if *f != nil {
			x := **f
			x.oks = maps.Clone(x.oks)
			*f = &x
		}
	}
	return &c
}

func (w *exWorld) send(i int, out Output, b exploreBounds) {
	for _, m := range out.Messages {
		if m.Type == MsgAccept {
			if _, ok := w.base[m.Ballot]; !ok {
				w.base[m.Ballot] = w.props[i].lastBase
				for c := range w.chosen {
					if c.Less(m.Ballot) && w.base[m.Ballot].Less(c) {
						w.violated = fmt.Sprintf("ballot %s read up to %s, missing chosen %s", m.Ballot, w.base[m.Ballot], c)
					}
				}
			}
		}
		w.net = append(w.net, m)
	}
	if d := out.Done; d != nil {
		letter := b.ops[i][w.next[i]-1]
		switch {
		case d.Err == nil:
			w.results = append(w.results, string(letter)+":"+string(d.Value))
			if !bytes.Contains(d.Value, []byte{letter}) {
				w.violated = fmt.Sprintf("change %c succeeded but its result %q lacks it", letter, d.Value)
			}
		case d.Err != ErrIndeterminate:
			w.violated = fmt.Sprintf("unexpected error %v", d.Err)
		}
	}
}

func (w *exWorld) deliver(m Message, b exploreBounds) {
	if m.Type == MsgPrepare || m.Type == MsgAccept {
		k := int(m.Acceptor.ID - 1)
		a, _ := NewAcceptor(w.acc[k])
		rd := a.Step(m)
		if rd.Persist != nil {
			w.acc[k] = *rd.Persist
			w.observe(k, *rd.Persist)
		}
		w.net = append(w.net, rd.Messages...)
		return
	}
	for i, p := range w.props {
		if p.o.ID == m.Proposer {
			w.send(i, p.Step(m), b)
		}
	}
}

func (w *exWorld) observe(k int, st AcceptorState) {
	bl := st.Accepted
	if bl.IsZero() {
		return
	}
	if v, ok := w.valueAt[bl]; ok && v != string(st.Value) {
		w.violated = fmt.Sprintf("two values at ballot %s: %q and %q", bl, v, st.Value)
	}
	w.valueAt[bl] = string(st.Value)
	w.accBy[bl] |= 1 << k
	if w.chosen[bl] || popcount(int(w.accBy[bl])) < 2 {
		return
	}
	w.chosen[bl] = true
	for later, base := range w.base {
		if bl.Less(later) && base.Less(bl) {
			w.violated = fmt.Sprintf("chosen %s lost: ballot %s read only up to %s", bl, later, base)
		}
	}
	for c := range w.chosen {
		lo, hi := w.valueAt[c], w.valueAt[bl]
		if bl.Less(c) {
			lo, hi = hi, lo
		}
		if !strings.HasPrefix(hi, lo) {
			w.violated = fmt.Sprintf("chosen values do not grow along ballots: %q then %q", lo, hi)
		}
	}
	for i := 0; i < len(st.Value); i++ {
		if bytes.Count(st.Value, st.Value[i:i+1]) > 1 {
			w.violated = fmt.Sprintf("a change applied twice: %q", st.Value)
		}
	}
}

// checkResults: every success is a chosen value.
func (w *exWorld) checkResults() {
	for _, r := range w.results {
		v := r[2:]
		found := false
		for c := range w.chosen {
			found = found || w.valueAt[c] == v
		}
		if !found && v != "" {
			w.violated = fmt.Sprintf("result %q is no chosen value", r)
		}
	}
}

// prune removes proposer-bound answers the proposer will ignore from now
// on: delivering or dropping them leads to the same world, so keeping them
// only multiplies states. Ballots only grow, which makes "ignored now"
// "ignored forever" for these cases. Identical messages are kept once
// (receivers are idempotent; duplication is its own action).
func (w *exWorld) prune() {
	seen := map[string]bool{}
	out := w.net[:0]
	for _, m := range w.net {
		key := m.String() + string(m.Value)
		if seen[key] || w.ignorable(m) {
			continue
		}
		seen[key] = true
		out = append(out, m)
	}
	w.net = out
}

func (w *exWorld) ignorable(m Message) bool {
	var p *Proposer
	for _, q := range w.props {
		if q.o.ID == m.Proposer {
			p = q
		}
	}
	if p == nil {
		return false
	}
	live := m.Ballot == p.ballot && (p.phase == phasePrepare || p.phase == phaseAccept)
	switch m.Type {
	case MsgPromise:
		return !(live && p.phase == phasePrepare)
	case MsgAccepted:
		if live && p.phase == phaseAccept {
			return false
		}
		if m.Ballot == p.ballot && !m.Next.IsZero() && m.Next == p.next {
			return false // may still arm the fast ballot (tail)
		}
		return true
	case MsgReject:
		return !live && m.Promised.Counter <= p.counter
	}
	return false
}

func (w *exWorld) fingerprint() string {
	var sb strings.Builder
	for _, a := range w.acc {
		fmt.Fprintf(&sb, "%s/%s=%q;", a.Promised, a.Accepted, a.Value)
	}
	for i, p := range w.props {
		fmt.Fprintf(&sb, "|p%d %d %d %d %s %s %d %q %v %v %d", i, w.next[i], w.timeouts[i], p.phase, p.ballot, p.next,
			p.counter, p.value, p.err, p.fastTry, p.elapsed)
		fmt.Fprintf(&sb, " pr%v ac%v no%v rj%v", voterKeys(p.promised), voterKeys(p.accepted), voterKeys(p.nextOK), voterKeys(p.rejected))
		for _, f := range []*prepared{p.fast, p.tail} {
			if f != nil {
				fmt.Fprintf(&sb, " f%s<%s=%q%v", f.ballot, f.base, f.value, voterKeys(f.oks))
			}
		}
		bs := slices.SortedFunc(maps.Keys(p.tried), Ballot.Compare)
		for _, b := range bs {
			fmt.Fprintf(&sb, " t%s=%q", b, p.tried[b].value)
		}
	}
	msgs := make([]string, len(w.net))
	for i, m := range w.net {
		msgs[i] = m.String() + fmt.Sprintf("%q", m.Value)
	}
	sort.Strings(msgs)
	fmt.Fprintf(&sb, "|%v|%d %d", msgs, w.drops, w.dups)
	bs := slices.SortedFunc(maps.Keys(w.accBy), Ballot.Compare)
	for _, b := range bs {
		fmt.Fprintf(&sb, " %s:%d:%v", b, w.accBy[b], w.chosen[b])
	}
	bs = slices.SortedFunc(maps.Keys(w.base), Ballot.Compare)
	for _, b := range bs {
		fmt.Fprintf(&sb, " b%s<%s", b, w.base[b])
	}
	fmt.Fprintf(&sb, " %v", slices.Sorted(slices.Values(w.results)))
	return sb.String()
}

func voterKeys[V any](m map[Voter]V) []int32 {
	out := make([]int32, 0, len(m))
	for v := range m {
		out = append(out, v.ID)
	}
	slices.Sort(out)
	return out
}

// successors returns every world one action away, with the action's name.
func (w *exWorld) successors(b exploreBounds) ([]*exWorld, []string) {
	var out []*exWorld
	var names []string
	add := func(n *exWorld, name string) { out, names = append(out, n), append(names, name) }
	for i := range w.props {
		if !w.props[i].Busy() && w.next[i] < len(b.ops[i]) {
			n := w.clone()
			letter := b.ops[i][n.next[i]]
			n.next[i]++
			o, _ := n.props[i].Propose(appendLetter(letter))
			n.send(i, o, b)
			add(n, fmt.Sprintf("p%d propose %c", i, letter))
		}
		if w.props[i].Busy() && w.timeouts[i] > 0 {
			n := w.clone()
			n.timeouts[i]--
			n.send(i, n.props[i].Tick(), b)
			add(n, fmt.Sprintf("p%d tick", i))
		}
	}
	seen := map[string]bool{}
	for k, m := range w.net {
		key := m.String() + string(m.Value)
		if seen[key] {
			continue // an identical message in flight leads to the same worlds
		}
		seen[key] = true
		n := w.clone()
		n.net = slices.Delete(n.net, k, k+1)
		n.deliver(m, b)
		add(n, "deliver "+m.String())
		if w.dups > 0 {
			n := w.clone()
			n.dups--
			n.deliver(m, b)
			add(n, "duplicate "+m.String())
		}
		if w.drops > 0 {
			n := w.clone()
			n.drops--
			n.net = slices.Delete(n.net, k, k+1)
			add(n, "drop "+m.String())
		}
	}
	return out, names
}

func explore(t *testing.T, b exploreBounds) (int, string) {
	w := &exWorld{drops: b.drops, dups: b.dups, valueAt: map[Ballot]string{}, accBy: map[Ballot]uint8{},
		chosen: map[Ballot]bool{}, base: map[Ballot]Ballot{}}
	for i, v := range exVoters {
		w.acc[i] = AcceptorState{Self: v}
	}
	for i := range b.ops {
		p, err := NewProposer(Options{ID: uint64(i + 1), Config: Majority(exVoters), RetryTicks: 1, OneRoundTrip: b.oneRTT})
		if err != nil {
			t.Fatal(err)
		}
		w.props = append(w.props, p)
		w.next = append(w.next, 0)
		w.timeouts = append(w.timeouts, b.timeouts)
	}
	type frame struct {
		w     *exWorld
		trace []string
	}
	seen := map[string]bool{w.fingerprint(): true}
	stack := []frame{{w: w}}
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		f.w.checkResults()
		if f.w.violated != "" {
			return len(seen), f.w.violated + "\n  after: " + strings.Join(f.trace, "\n         ")
		}
		next, names := f.w.successors(b)
		for i, n := range next {
			n.prune()
			fp := n.fingerprint()
			if seen[fp] {
				continue
			}
			seen[fp] = true
			if len(seen) > b.maxState {
				t.Fatalf("more than %d states: tighten the bounds", b.maxState)
			}
			stack = append(stack, frame{w: n, trace: append(slices.Clip(f.trace), names[i])})
		}
	}
	return len(seen), ""
}
