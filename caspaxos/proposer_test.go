package caspaxos

import (
	"bytes"
	"errors"
	"testing"
)

var three = Majority([]Voter{va, vb, vc})

func newTestProposer(t *testing.T, oneRTT bool) *Proposer {
	t.Helper()
	p, err := NewProposer(Options{ID: 7, Config: three, RetryTicks: 5, OneRoundTrip: oneRTT})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func promise(to Voter, b, accepted Ballot, v string) Message {
	m := Message{Type: MsgPromise, Proposer: 7, Acceptor: to, Ballot: b, Accepted: accepted}
	if v != "" {
		m.Value = []byte(v)
	}
	return m
}

func acked(to Voter, b, next Ballot) Message {
	return Message{Type: MsgAccepted, Proposer: 7, Acceptor: to, Ballot: b, Next: next}
}

// wantSent checks the messages are one of typ to each voter of q, all at
// ballot b, and returns the first.
func wantSent(t *testing.T, out Output, typ MsgType, q Quorum, b Ballot) Message {
	t.Helper()
	if len(out.Messages) != len(q.Voters) {
		t.Fatalf("sent %v, want %s to %v", out.Messages, typ, q.Voters)
	}
	for i, m := range out.Messages {
		if m.Type != typ || m.Acceptor != q.Voters[i] || m.Ballot != b || m.Proposer != 7 {
			t.Fatalf("sent %v, want %s at %s to %v", out.Messages, typ, b, q.Voters)
		}
	}
	return out.Messages[0]
}

func appendX(cur []byte) ([]byte, error) { return append(bytes.Clone(cur), 'x'), nil }

func TestProposerFullRound(t *testing.T) {
	p := newTestProposer(t, false)
	out, err := p.Propose(appendX)
	if err != nil {
		t.Fatal(err)
	}
	b := bal(1, 7)
	wantSent(t, out, MsgPrepare, three.Prepare, b)
	if _, err := p.Propose(Read); !errors.Is(err, ErrBusy) {
		t.Fatalf("second Propose: %v, want ErrBusy", err)
	}
	// The change runs on the value at the highest accepted ballot.
	if out = p.Step(promise(va, b, bal(0, 3), "low")); len(out.Messages) != 0 {
		t.Fatalf("one promise is not a quorum: %v", out.Messages)
	}
	out = p.Step(promise(vb, b, bal(0, 4), "high"))
	m := wantSent(t, out, MsgAccept, three.Accept, b)
	if string(m.Value) != "highx" || !m.Next.IsZero() {
		t.Fatalf("accept value %q next %s, want highx and no piggybacked prepare", m.Value, m.Next)
	}
	for i := 0; i < 2; i++ { // a duplicate counts once
		if out = p.Step(acked(va, b, Ballot{})); out.Done != nil {
			t.Fatal("done after one voter's accept")
		}
	}
	out = p.Step(acked(vc, b, Ballot{}))
	if out.Done == nil || string(out.Done.Value) != "highx" || out.Done.Err != nil || out.Done.Ballot != b {
		t.Fatalf("done %+v, want highx at %s", out.Done, b)
	}
	if p.Busy() {
		t.Fatal("busy after done")
	}
}

// TestProposerCountsEachVoterOnce: duplicates, answers from outside the
// configuration (including another incarnation of a voter id) and answers
// to other ballots do not make a quorum.
func TestProposerCountsEachVoterOnce(t *testing.T) {
	p := newTestProposer(t, false)
	p.Propose(Read)
	b := bal(1, 7)
	wiped := Voter{ID: va.ID, Incarnation: inc(2)}
	for _, m := range []Message{
		promise(va, b, Ballot{}, ""),
		promise(va, b, Ballot{}, ""),                             // duplicate
		promise(wiped, b, Ballot{}, ""),                          // voter 1's new incarnation
		promise(vb, bal(0, 7), Ballot{}, ""),                     // an older ballot
		{Type: MsgPromise, Proposer: 8, Acceptor: vb, Ballot: b}, // another proposer's
	} {
		if out := p.Step(m); len(out.Messages) != 0 {
			t.Fatalf("%v made a quorum", m)
		}
	}
	if out := p.Step(promise(vc, b, Ballot{}, "")); len(out.Messages) != 3 {
		t.Fatalf("second voter's promise: sent %v", out.Messages)
	}
}

func TestProposerFastForwardsPastRejections(t *testing.T) {
	p := newTestProposer(t, false)
	p.Propose(Read)
	b := bal(1, 7)
	if out := p.Step(Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: b, Promised: bal(50, 9), Reason: RejectBallot}); len(out.Messages) != 0 {
		t.Fatal("one rejection of three gave up the attempt")
	}
	// A second rejection leaves no quorum: back off, then retry above 50.
	p.Step(Message{Type: MsgReject, Proposer: 7, Acceptor: vb, Ballot: b, Promised: bal(40, 8), Reason: RejectBallot})
	if out := p.Step(promise(vc, b, Ballot{}, "")); len(out.Messages) != 0 {
		t.Fatal("a late promise revived an abandoned attempt")
	}
	var out Output
	for i := 0; i < 5 && len(out.Messages) == 0; i++ {
		out = p.Tick()
	}
	wantSent(t, out, MsgPrepare, three.Prepare, bal(51, 7))
}

func TestProposerRetriesAfterTimeout(t *testing.T) {
	p := newTestProposer(t, false)
	p.Propose(Read)
	for i := 0; i < 4; i++ {
		if out := p.Tick(); len(out.Messages) != 0 {
			t.Fatalf("retried after %d ticks", i+1)
		}
	}
	wantSent(t, p.Tick(), MsgPrepare, three.Prepare, bal(2, 7))
}

func TestProposerWritesBackOnChangeError(t *testing.T) {
	p := newTestProposer(t, false)
	refuse := errors.New("no")
	p.Propose(func([]byte) ([]byte, error) { return []byte("changed"), refuse })
	b := bal(1, 7)
	p.Step(promise(va, b, bal(0, 1), "cur"))
	m := wantSent(t, p.Step(promise(vb, b, Ballot{}, "")), MsgAccept, three.Accept, b)
	if string(m.Value) != "cur" {
		t.Fatalf("accept value %q, want the current value written back", m.Value)
	}
	p.Step(acked(va, b, Ballot{}))
	out := p.Step(acked(vb, b, Ballot{}))
	if out.Done == nil || !errors.Is(out.Done.Err, refuse) || string(out.Done.Value) != "cur" {
		t.Fatalf("done %+v, want the change's error and the current value", out.Done)
	}
}

// TestProposerRetryAppliesOnce: a retry that finds its own earlier attempt
// on top finishes it without running the change again; one that finds
// someone else's value reports ErrIndeterminate instead of applying twice.
func TestProposerRetryAppliesOnce(t *testing.T) {
	for _, c := range []struct {
		name     string
		read     bool
		top      Ballot
		wantErr  error
		wantSent string
	}{
		{"own value on top", false, bal(1, 7), nil, "basex"},
		{"another value on top", false, bal(1, 9), ErrIndeterminate, "other"},
		{"a read may read again", true, bal(1, 9), nil, "other"},
	} {
		t.Run(c.name, func(t *testing.T) {
			p := newTestProposer(t, false)
			calls := 0
			if c.read {
				p.ProposeRead()
				calls = 1
			} else {
				p.Propose(func(cur []byte) ([]byte, error) { calls++; return appendX(cur) })
			}
			b1 := bal(1, 7)
			p.Step(promise(va, b1, Ballot{}, "base"))
			wantSent(t, p.Step(promise(vb, b1, Ballot{}, "base")), MsgAccept, three.Accept, b1)
			if _, err := p.ProposeRead(); !errors.Is(err, ErrBusy) {
				t.Fatalf("ProposeRead while busy: %v", err)
			}
			for i := 0; i < 5; i++ {
				p.Tick() // the accepts are lost: retry
			}
			b2 := bal(2, 7)
			val := "basex"
			if c.read {
				val = "base"
			}
			if c.top != b1 {
				val = "other"
			}
			p.Step(promise(va, b2, c.top, val))
			m := wantSent(t, p.Step(promise(vc, b2, Ballot{}, "")), MsgAccept, three.Accept, b2)
			if string(m.Value) != c.wantSent || calls != 1 {
				t.Fatalf("retry sent %q after %d change calls, want %q after 1", m.Value, calls, c.wantSent)
			}
			p.Step(acked(va, b2, Ballot{}))
			out := p.Step(acked(vb, b2, Ballot{}))
			if out.Done == nil || !errors.Is(out.Done.Err, c.wantErr) || string(out.Done.Value) != c.wantSent {
				t.Fatalf("done %+v, want %q err %v", out.Done, c.wantSent, c.wantErr)
			}
		})
	}
}

// TestProposerOneRoundTrip: with the optimization, each accept carries the
// next prepare; once a prepare quorum promised it, the next change skips
// the prepare phase. A rejection sends the proposer back to full rounds.
func TestProposerOneRoundTrip(t *testing.T) {
	p := newTestProposer(t, true)
	p.Propose(appendX)
	b1 := bal(1, 7)
	p.Step(promise(va, b1, Ballot{}, ""))
	m := wantSent(t, p.Step(promise(vb, b1, Ballot{}, "")), MsgAccept, three.Accept, b1)
	next := m.Next
	if next != bal(2, 7) {
		t.Fatalf("piggybacked prepare %s, want 2.7", next)
	}
	p.Step(acked(va, b1, next))
	if out := p.Step(acked(vb, b1, Ballot{})); out.Done == nil { // vb did not promise next
		t.Fatal("not done after an accept quorum")
	}
	// Only one promise of next so far: a second change would need a
	// prepare. A late answer from vc completes the promise quorum.
	if p.fast != nil {
		t.Fatal("fast ballot after one promise of the two needed")
	}
	p.Step(acked(vc, b1, next))
	out, _ := p.Propose(appendX)
	m = wantSent(t, out, MsgAccept, three.Accept, next)
	if string(m.Value) != "xx" || m.Next != bal(3, 7) {
		t.Fatalf("fast accept %q next %s, want xx next 3.7", m.Value, m.Next)
	}
	// Both accepts promise the next ballot: the change after is fast at
	// once, without waiting for the third voter.
	p.Step(acked(va, next, m.Next))
	if out := p.Step(acked(vc, next, m.Next)); out.Done == nil || string(out.Done.Value) != "xx" {
		t.Fatalf("fast change done %+v, want xx", out.Done)
	}
	out, _ = p.Propose(appendX)
	next = m.Next
	m = wantSent(t, out, MsgAccept, three.Accept, next)
	if string(m.Value) != "xxx" {
		t.Fatalf("second fast accept %q, want xxx", m.Value)
	}
	// Another proposer got in: the fast accept is refused, and the
	// proposer goes straight back to a full round above the intruder.
	out = p.Step(Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: next, Promised: bal(9, 8), Reason: RejectBallot})
	wantSent(t, out, MsgPrepare, three.Prepare, bal(10, 7))
}

func TestProposerSetConfigRestartsAttempt(t *testing.T) {
	p := newTestProposer(t, true)
	p.Propose(Read)
	vd := Voter{ID: 4, Incarnation: inc(1)}
	steps, err := PlanChange(three, []Voter{va, vb, vc, vd})
	if err != nil {
		t.Fatal(err)
	}
	out, err := p.SetConfig(steps[0].Config)
	if err != nil {
		t.Fatal(err)
	}
	wantSent(t, out, MsgPrepare, steps[0].Config.Prepare, bal(2, 7))
	// The accepts go to all four voters and need three.
	b := bal(2, 7)
	p.Step(promise(va, b, Ballot{}, ""))
	wantSent(t, p.Step(promise(vb, b, Ballot{}, "")), MsgAccept, steps[0].Config.Accept, b)
	p.Step(acked(va, b, Ballot{}))
	if out := p.Step(acked(vd, b, Ballot{})); out.Done != nil {
		t.Fatal("done with two of four accepts")
	}
	if out := p.Step(acked(vb, b, Ballot{})); out.Done == nil {
		t.Fatal("not done with three of four accepts")
	}
	if _, err := p.SetConfig(Config{}); err == nil {
		t.Fatal("empty config accepted")
	}
}

func TestProposerIdentityRejectCountsAgainstQuorum(t *testing.T) {
	p := newTestProposer(t, false)
	p.Propose(Read)
	b := bal(1, 7)
	p.Step(Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: b, Reason: RejectIdentity})
	p.Step(Message{Type: MsgReject, Proposer: 7, Acceptor: vb, Ballot: b, Reason: RejectIdentity})
	if p.phase != phaseBackoff {
		t.Fatalf("phase %d after two of three refused, want backoff", p.phase)
	}
	if p.Counter() != 1 {
		t.Fatalf("counter %d: an identity refusal carries no ballot to fast-forward to", p.Counter())
	}
}
