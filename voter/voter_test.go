package voter

import (
	"bytes"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/ctrlquorum"
	"github.com/sluice-io/sluice/segment"
)

// recTransport records what a voter sends and runs hook on each message,
// on the voter's loop, before Send returns.
type recTransport struct {
	mu   sync.Mutex
	sent []sent
	hook func(to int32, e envelope)
}

type sent struct {
	to  int32
	env envelope
}

func (r *recTransport) Send(to int32, payload []byte) {
	e, err := decodeEnvelope(payload)
	if err != nil {
		panic(err)
	}
	r.mu.Lock()
	r.sent = append(r.sent, sent{to, e})
	hook := r.hook
	r.mu.Unlock()
	if hook != nil {
		hook(to, e)
	}
}

func (r *recTransport) to(id int32) []caspaxos.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []caspaxos.Message
	for _, s := range r.sent {
		if s.to == id && s.env.kind == kindPaxos {
			out = append(out, s.env.msg)
		}
	}
	return out
}

func deliverMsg(t *testing.T, v *Voter, from int32, m caspaxos.Message) {
	t.Helper()
	b, err := encodeEnvelope(envelope{kind: kindPaxos, msg: m})
	if err != nil {
		t.Fatal(err)
	}
	if err := v.Deliver(from, b); err != nil {
		t.Fatal(err)
	}
}

// soloVoter is voter 1 of three whose peers never run: its acceptor
// answers a test's messages as node 9's proposer.
func soloVoter(t *testing.T, fsys segment.FS, tr Transport) *Voter {
	t.Helper()
	self, err := Identity(fsys, "/v", 1)
	if err != nil {
		t.Fatal(err)
	}
	ms := members(3)
	ms[0].Voter = self
	v, err := New(Config{NodeID: 1, Voters: ms, FS: fsys, Dir: "/v", Transport: tr, TickInterval: time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// An answer leaves only once what it promises is durable: at the moment
// the transport is handed the Promise and the Accepted, a power loss keeps
// the promise and the accepted value.
func TestAnswersFollowDurableState(t *testing.T) {
	mem := segment.NewMemFS()
	rec := &recTransport{}
	v := soloVoter(t, mem, rec)
	defer v.Close()
	b := caspaxos.Ballot{Counter: 1 << 40, Proposer: 77}
	checked := make(chan error, 2)
	rec.hook = func(to int32, e envelope) {
		if to != 9 {
			return
		}
		mem.Crash() // the loop is inside Send: nothing of the voter's is mid-write
		st, _, ok, err := store{fsys: mem, dir: "/v"}.load()
		switch {
		case err != nil || !ok:
			checked <- errors.Join(err, errors.New("no state after the crash"))
		case e.msg.Type == caspaxos.MsgPromise && st.Promised != b:
			checked <- errors.New("promise sent before it was durable")
		case e.msg.Type == caspaxos.MsgAccepted && (st.Accepted != b || !bytes.Equal(st.Value, []byte("x"))):
			checked <- errors.New("accepted sent before it was durable")
		case e.msg.Type != caspaxos.MsgPromise && e.msg.Type != caspaxos.MsgAccepted:
			checked <- errors.New("unexpected answer " + e.msg.String())
		default:
			checked <- nil
		}
	}
	v.Start()
	deliverMsg(t, v, 9, caspaxos.Message{Type: caspaxos.MsgPrepare, Proposer: 77, Acceptor: v.Self(), Ballot: b})
	deliverMsg(t, v, 9, caspaxos.Message{Type: caspaxos.MsgAccept, Proposer: 77, Acceptor: v.Self(), Ballot: b, Value: []byte("x")})
	for range 2 {
		select {
		case err := <-checked:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("no answer")
		}
	}
}

// A failed write of the acceptor state stops the voter without sending
// the answers that depended on it, whichever step of the atomic
// replacement fails; restarted from its directory it is the same voter.
func TestNoAnswerWhenPersistFails(t *testing.T) {
	for _, op := range []segment.Op{segment.OpWrite, segment.OpSync, segment.OpRename, segment.OpSyncDir} {
		t.Run(op.String(), func(t *testing.T) {
			mem := segment.NewMemFS()
			efs := segment.NewErrorFS(mem)
			rec := &recTransport{}
			v := soloVoter(t, efs, rec)
			self := v.Self()
			inj := efs.Inject(segment.Fault{Ops: op, Path: segment.PathUnder("/v"), Sticky: true})
			// Queued before Start: the loop's own first round and this
			// prepare both need a write, and both must fail.
			deliverMsg(t, v, 9, caspaxos.Message{Type: caspaxos.MsgPrepare, Proposer: 77, Acceptor: self,
				Ballot: caspaxos.Ballot{Counter: 1 << 40, Proposer: 77}})
			v.Start()
			select {
			case <-v.Done():
			case <-time.After(5 * time.Second):
				t.Fatal("voter kept running with a failing disk")
			}
			if err := v.Err(); !errors.Is(err, segment.ErrInjected) {
				t.Fatalf("Err %v, want the injected fault", err)
			}
			if inj.Failed() == 0 {
				t.Fatal("the fault never fired")
			}
			if m := rec.to(9); len(m) != 0 {
				t.Fatalf("answers sent after a failed persist: %v", m)
			}
			for _, s := range rec.sent {
				if s.env.msg.Type == caspaxos.MsgPromise || s.env.msg.Type == caspaxos.MsgAccepted {
					t.Fatalf("acceptor answer sent after a failed persist: %v", s.env.msg)
				}
			}
			if _, ok := v.Active(); ok {
				t.Fatal("a failed voter reports itself active")
			}
			if _, err := v.RequestISR(ctrlquorum.ISRRequest{Epoch: 1}); !errors.Is(err, ErrClosed) {
				t.Fatalf("RequestISR on a failed voter: %v, want ErrClosed", err)
			}
			if err := v.Close(); err != nil {
				t.Fatal(err)
			}
			inj.Disarm()
			mem.Crash()
			v2, err := New(Config{NodeID: 1, Voters: members(3), FS: efs, Dir: "/v", Transport: rec})
			if err != nil {
				t.Fatalf("restart from the directory: %v", err)
			}
			defer v2.Close()
			if v2.Self() != self {
				t.Fatalf("restarted as %s, was %s", v2.Self(), self)
			}
		})
	}
}

// A message for another incarnation of this voter id (a peer that still
// names the voter's wiped self) is refused without a write.
func TestWrongIncarnationRefused(t *testing.T) {
	mem := segment.NewMemFS()
	rec := &recTransport{}
	v := soloVoter(t, mem, rec)
	defer v.Close()
	v.Start()
	old := caspaxos.Voter{ID: 1, Incarnation: caspaxos.Incarnation{0xab}}
	deliverMsg(t, v, 9, caspaxos.Message{Type: caspaxos.MsgPrepare, Proposer: 77, Acceptor: old,
		Ballot: caspaxos.Ballot{Counter: 1 << 40, Proposer: 77}})
	deadline := time.Now().Add(5 * time.Second)
	for len(rec.to(9)) == 0 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	m := rec.to(9)
	if len(m) != 1 || m[0].Type != caspaxos.MsgReject || m[0].Reason != caspaxos.RejectIdentity {
		t.Fatalf("answers %v, want one identity reject", m)
	}
}

func TestRequestISRAndObserveEpoch(t *testing.T) {
	c := newCluster(t)
	leader, epoch := c.waitActive(5*time.Second, 0)
	v := c.voters[leader]
	out := leader%3 + 1
	keep := out%3 + 1
	if _, err := c.voters[out].RequestISR(ctrlquorum.ISRRequest{Epoch: epoch}); !errors.Is(err, ctrlquorum.ErrNotActive) {
		t.Fatalf("ISR request to a voter that is not active: %v, want ErrNotActive", err)
	}
	reg := v.Register()
	isr := []caspaxos.Voter{c.members[leader-1].Voter, c.members[keep-1].Voter}
	stale, err := v.RequestISR(ctrlquorum.ISRRequest{Epoch: epoch, ConfigVersion: reg.ConfigVersion - 1, ISR: isr})
	if err != nil {
		t.Fatal(err)
	}
	var cv *caspaxos.ConfigVersionError
	if r := wait(t, stale); !errors.As(r.Err, &cv) {
		t.Fatalf("ISR change from a stale config version: %v, want a ConfigVersionError", r.Err)
	}
	ch, err := v.RequestISR(ctrlquorum.ISRRequest{Epoch: epoch, ConfigVersion: reg.ConfigVersion, ISR: isr})
	if err != nil {
		t.Fatal(err)
	}
	r := wait(t, ch)
	if r.Err != nil || r.Register.InISR(c.members[out-1].Voter) || r.Register.ConfigVersion != reg.ConfigVersion+1 {
		t.Fatalf("shrink: %+v", r)
	}
	// Out of the ISR, voter out can no longer take over: only keep can.
	c.kill(leader)
	id, e := c.waitActive(testTakeover+2*time.Second, epoch)
	if id != keep {
		t.Fatalf("voter %d took over in epoch %d; only voter %d is in the ISR %v", id, e, keep, isr)
	}
	// A higher epoch heard elsewhere deposes the controller at once.
	if err := c.voters[id].ObserveEpoch(e + 5); err != nil {
		t.Fatal(err)
	}
	c.waitStepDown(c.members[id-1].Voter, e, "epoch", 2*time.Second)
}

func wait(t *testing.T, ch <-chan ctrlquorum.ISRResult) ctrlquorum.ISRResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("no ISR result")
		return ctrlquorum.ISRResult{}
	}
}

func TestCloseBeforeStartAndTwice(t *testing.T) {
	v := soloVoter(t, segment.NewMemFS(), nopTransport{})
	if _, err := v.RequestISR(ctrlquorum.ISRRequest{}); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("RequestISR before Start: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v.Start() // after Close: does nothing
	select {
	case <-v.Done():
	default:
		t.Fatal("Done open after Close")
	}
}
