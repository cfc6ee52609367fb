package caspaxos

import (
	"bytes"
	"testing"
)

var (
	va = Voter{ID: 1, Incarnation: inc(1)}
	vb = Voter{ID: 2, Incarnation: inc(1)}
	vc = Voter{ID: 3, Incarnation: inc(1)}
)

func bal(c uint64, p uint64) Ballot { return Ballot{Counter: c, Proposer: p} }

func TestBallotOrder(t *testing.T) {
	cases := []struct {
		a, b Ballot
		want int
	}{
		{bal(1, 1), bal(1, 1), 0},
		{bal(1, 2), bal(2, 1), -1}, // the counter decides first
		{bal(2, 1), bal(2, 2), -1}, // then the proposer id: unique ballots
		{Ballot{}, bal(0, 1), -1},  // zero sorts below every real ballot
		{bal(3, 1), bal(2, 9), 1},
	}
	for _, c := range cases {
		if got := c.a.Compare(c.b); got != c.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", c.a, c.b, got, c.want)
		}
		if got := c.b.Compare(c.a); got != -c.want {
			t.Errorf("%s.Compare(%s) = %d, want %d", c.b, c.a, got, -c.want)
		}
	}
}

// TestAcceptorRules checks each acceptor rule: what it answers and what it
// asks the caller to persist before answering.
func TestAcceptorRules(t *testing.T) {
	val := []byte("v")
	old := []byte("old")
	cases := []struct {
		name    string
		st      AcceptorState
		in      Message
		reply   Message
		persist *AcceptorState // nil: nothing to persist
	}{{
		name:    "prepare on an empty acceptor is promised and persisted",
		st:      AcceptorState{Self: va},
		in:      Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(1, 7)},
		reply:   Message{Type: MsgPromise, Proposer: 7, Acceptor: va, Ballot: bal(1, 7)},
		persist: &AcceptorState{Self: va, Promised: bal(1, 7)},
	}, {
		name:    "prepare reports the accepted ballot and value",
		st:      AcceptorState{Self: va, Promised: bal(2, 1), Accepted: bal(2, 1), Value: old},
		in:      Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(3, 7)},
		reply:   Message{Type: MsgPromise, Proposer: 7, Acceptor: va, Ballot: bal(3, 7), Accepted: bal(2, 1), Value: old},
		persist: &AcceptorState{Self: va, Promised: bal(3, 7), Accepted: bal(2, 1), Value: old},
	}, {
		name:  "prepare below the promise is refused with the promise",
		st:    AcceptorState{Self: va, Promised: bal(5, 2)},
		in:    Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Promised: bal(5, 2), Reason: RejectBallot},
	}, {
		name:  "a duplicate prepare is answered again without a new write",
		st:    AcceptorState{Self: va, Promised: bal(4, 7)},
		in:    Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
		reply: Message{Type: MsgPromise, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
	}, {
		name:  "prepare at the accepted ballot is refused: it must beat both",
		st:    AcceptorState{Self: va, Promised: bal(4, 7), Accepted: bal(4, 7), Value: old},
		in:    Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Promised: bal(4, 7), Reason: RejectBallot},
	}, {
		name:    "accept at the promise is taken and persisted",
		st:      AcceptorState{Self: va, Promised: bal(4, 7), Accepted: bal(2, 1), Value: old},
		in:      Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Value: val},
		reply:   Message{Type: MsgAccepted, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
		persist: &AcceptorState{Self: va, Promised: bal(4, 7), Accepted: bal(4, 7), Value: val},
	}, {
		name:    "accept above the promise is taken and raises the promise",
		st:      AcceptorState{Self: va, Promised: bal(4, 7)},
		in:      Message{Type: MsgAccept, Proposer: 8, Acceptor: va, Ballot: bal(6, 8), Value: val},
		reply:   Message{Type: MsgAccepted, Proposer: 8, Acceptor: va, Ballot: bal(6, 8)},
		persist: &AcceptorState{Self: va, Promised: bal(6, 8), Accepted: bal(6, 8), Value: val},
	}, {
		name:  "accept below the promise is refused",
		st:    AcceptorState{Self: va, Promised: bal(5, 2)},
		in:    Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Value: val},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Promised: bal(5, 2), Reason: RejectBallot},
	}, {
		name:  "a duplicate accept is acknowledged without a new write",
		st:    AcceptorState{Self: va, Promised: bal(4, 7), Accepted: bal(4, 7), Value: val},
		in:    Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Value: val},
		reply: Message{Type: MsgAccepted, Proposer: 7, Acceptor: va, Ballot: bal(4, 7)},
	}, {
		name:    "accept with a piggybacked prepare promises the next ballot too",
		st:      AcceptorState{Self: va, Promised: bal(4, 7)},
		in:      Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Next: bal(5, 7), Value: val},
		reply:   Message{Type: MsgAccepted, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Next: bal(5, 7)},
		persist: &AcceptorState{Self: va, Promised: bal(5, 7), Accepted: bal(4, 7), Value: val},
	}, {
		name:  "a duplicate accept after the next promise is refused",
		st:    AcceptorState{Self: va, Promised: bal(5, 7), Accepted: bal(4, 7), Value: val},
		in:    Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Next: bal(5, 7), Value: val},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(4, 7), Promised: bal(5, 7), Reason: RejectBallot},
	}, {
		name:  "a message for another incarnation is refused and changes nothing",
		st:    AcceptorState{Self: Voter{ID: 1, Incarnation: inc(2)}},
		in:    Message{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(9, 7)},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(9, 7), Reason: RejectIdentity},
	}, {
		name:  "an accept for another incarnation is refused too",
		st:    AcceptorState{Self: Voter{ID: 1, Incarnation: inc(2)}},
		in:    Message{Type: MsgAccept, Proposer: 7, Acceptor: va, Ballot: bal(9, 7), Value: val},
		reply: Message{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(9, 7), Reason: RejectIdentity},
	}}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := NewAcceptor(c.st)
			if err != nil {
				t.Fatal(err)
			}
			rd := a.Step(c.in)
			if len(rd.Messages) != 1 || !msgEqual(rd.Messages[0], c.reply) {
				t.Fatalf("replies %v, want %v", rd.Messages, c.reply)
			}
			switch {
			case c.persist == nil && rd.Persist != nil:
				t.Fatalf("persist %+v, want nothing", *rd.Persist)
			case c.persist != nil && (rd.Persist == nil || !stateEqual(*rd.Persist, *c.persist)):
				t.Fatalf("persist %+v, want %+v", rd.Persist, *c.persist)
			}
			want := c.st
			if c.persist != nil {
				want = *c.persist
			}
			if !stateEqual(a.State(), want) {
				t.Fatalf("state %+v, want %+v", a.State(), want)
			}
		})
	}
}

func msgEqual(a, b Message) bool {
	return a.Type == b.Type && a.Proposer == b.Proposer && a.Acceptor == b.Acceptor && a.Ballot == b.Ballot &&
		a.Next == b.Next && a.Accepted == b.Accepted && a.Promised == b.Promised && a.Reason == b.Reason &&
		bytes.Equal(a.Value, b.Value)
}

func stateEqual(a, b AcceptorState) bool {
	return a.Self == b.Self && a.Promised == b.Promised && a.Accepted == b.Accepted && bytes.Equal(a.Value, b.Value)
}

func TestAcceptorIgnoresAnswers(t *testing.T) {
	a, _ := NewAcceptor(AcceptorState{Self: va})
	for _, typ := range []MsgType{MsgPromise, MsgAccepted, MsgReject} {
		if rd := a.Step(Message{Type: typ, Acceptor: va, Ballot: bal(1, 1)}); rd.Persist != nil || len(rd.Messages) != 0 {
			t.Fatalf("%s produced %+v", typ, rd)
		}
	}
}

func TestAcceptorStateEncoding(t *testing.T) {
	for _, st := range []AcceptorState{
		{Self: va},
		{Self: vb, Promised: bal(9, 3), Accepted: bal(8, 2), Value: []byte("register")},
	} {
		b, err := st.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got AcceptorState
		if err := got.UnmarshalBinary(b); err != nil {
			t.Fatal(err)
		}
		if !stateEqual(got, st) {
			t.Fatalf("round trip %+v, want %+v", got, st)
		}
		if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil && len(st.Value) > 0 {
			t.Fatal("truncated state decoded")
		}
		if err := got.UnmarshalBinary(append(b, 0)); err == nil {
			t.Fatal("state with trailing bytes decoded")
		}
		b[0] = 2
		if err := got.UnmarshalBinary(b); err == nil {
			t.Fatal("unknown version decoded")
		}
	}
}

func TestNewAcceptorRefusesBadState(t *testing.T) {
	if _, err := NewAcceptor(AcceptorState{}); err == nil {
		t.Fatal("acceptor without identity")
	}
	if _, err := NewAcceptor(AcceptorState{Self: va, Promised: bal(1, 1), Accepted: bal(2, 1)}); err == nil {
		t.Fatal("acceptor with accepted above promised")
	}
}

func TestMessageEncoding(t *testing.T) {
	for _, m := range []Message{
		{Type: MsgPrepare, Proposer: 7, Acceptor: va, Ballot: bal(3, 7)},
		{Type: MsgAccept, Proposer: 7, Acceptor: vb, Ballot: bal(3, 7), Next: bal(4, 7), Value: []byte("v")},
		{Type: MsgPromise, Proposer: 7, Acceptor: vc, Ballot: bal(3, 7), Accepted: bal(2, 1), Value: []byte("old")},
		{Type: MsgReject, Proposer: 7, Acceptor: va, Ballot: bal(3, 7), Promised: bal(9, 2), Reason: RejectBallot},
	} {
		b, err := m.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var got Message
		if err := got.UnmarshalBinary(b); err != nil || !msgEqual(got, m) {
			t.Fatalf("round trip %v, %v; want %v", got, err, m)
		}
		if err := got.UnmarshalBinary(b[:len(b)-1]); err == nil {
			t.Fatalf("truncated %s decoded", m.Type)
		}
		bad := append([]byte(nil), b...)
		bad[1] = 9
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Fatal("unknown message type decoded")
		}
		bad[0], bad[1] = 2, b[1]
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Fatal("unknown message version decoded")
		}
	}
}
