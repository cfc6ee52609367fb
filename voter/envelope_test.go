package voter

import (
	"errors"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/segment"
)

func TestEnvelopeRoundTrip(t *testing.T) {
	self := caspaxos.Voter{ID: 2, Incarnation: caspaxos.Incarnation{7}}
	m := caspaxos.Message{Type: caspaxos.MsgAccept, Proposer: 5, Acceptor: self,
		Ballot: caspaxos.Ballot{Counter: 3, Proposer: 5}, Next: caspaxos.Ballot{Counter: 4, Proposer: 5}, Value: []byte("v")}
	reg, err := caspaxos.BootstrapValue("c", []caspaxos.Member{{Voter: self}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	step := stepRecord{Change: 9, Step: 3, Config: caspaxos.Majority([]caspaxos.Voter{self})}
	for _, e := range []envelope{{kind: kindPaxos, msg: m}, {kind: kindAnnounce, reg: reg},
		{kind: kindStep, step: step}, {kind: kindStepAck, step: step}} {
		b, err := encodeEnvelope(e)
		if err != nil {
			t.Fatal(err)
		}
		if b[0] != envelopeMagic || b[1] != envelopeVersion || kind(b[2]) != e.kind {
			t.Fatalf("%v header %x", e.kind, b[:3])
		}
		got, err := decodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("%v round trip: %+v, want %+v", e.kind, got, e)
		}
		for i := range b {
			b[i] = 0 // the decoded envelope shares nothing with the buffer
		}
		if !reflect.DeepEqual(got, e) {
			t.Fatalf("%v: decoded envelope changed with its buffer", e.kind)
		}
	}
}

func TestEnvelopeRefusesWhatItCannotRead(t *testing.T) {
	good, err := encodeEnvelope(envelope{kind: kindPaxos, msg: caspaxos.Message{Type: caspaxos.MsgPrepare, Proposer: 1,
		Acceptor: caspaxos.Voter{ID: 1}}})
	if err != nil {
		t.Fatal(err)
	}
	mod := func(i int, x byte) []byte {
		b := append([]byte(nil), good...)
		b[i] = x
		return b
	}
	for name, b := range map[string][]byte{
		"empty":          nil,
		"header only":    good[:3],
		"bad magic":      mod(0, 0x00),
		"newer version":  mod(1, envelopeVersion+1),
		"unknown kind":   mod(2, 99),
		"truncated body": good[:len(good)-1],
	} {
		if _, err := decodeEnvelope(b); !errors.Is(err, ErrEnvelope) {
			t.Errorf("%s: %v, want ErrEnvelope", name, err)
		}
	}
	v := soloVoter(t, segment.NewMemFS(), nopTransport{})
	defer v.Close()
	if err := v.Deliver(2, []byte("junk")); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("Deliver of junk: %v, want ErrEnvelope", err)
	}
}

func TestMemNetwork(t *testing.T) {
	n := NewMemNetwork(1)
	got := map[int32]int{}
	for _, id := range []int32{1, 2, 3} {
		n.Attach(id, func(from int32, p []byte) error { got[id]++; return nil })
	}
	send := func() { n.Transport(1).Send(2, []byte{1}); n.Transport(1).Send(3, []byte{1}) }
	send()
	n.Cut(1, 2, true)
	send()
	n.Cut(1, 2, false)
	n.Isolate(3, true)
	send()
	n.Isolate(3, false)
	n.Detach(2)
	send()
	if got[2] != 2 || got[3] != 3 {
		t.Fatalf("deliveries %v, want 2 to voter 2 and 3 to voter 3", got)
	}
	if s, d := n.Stats(); s != 8 || d != 3 {
		t.Fatalf("stats %d sent %d dropped, want 8 and 3", s, d)
	}
	n.Attach(2, func(int32, []byte) error { got[2]++; return nil })
	n.SetDrop(1)
	send()
	if got[2] != 2 || got[3] != 3 {
		t.Fatalf("a drop rate of 1 delivered: %v", got)
	}
}

// A caspaxos message from a voter with a step record is version 2 and
// carries the step; without one it is version 1, byte for byte as before,
// which decodes as a sender with no step (older than any record).
func TestEnvelopeStamp(t *testing.T) {
	self := caspaxos.Voter{ID: 2, Incarnation: caspaxos.Incarnation{7}}
	m := caspaxos.Message{Type: caspaxos.MsgPrepare, Proposer: 5, Acceptor: self, Ballot: caspaxos.Ballot{Counter: 3, Proposer: 5}}
	e := envelope{kind: kindPaxos, msg: m, at: &stamp{Change: 9, Step: 2}}
	b, err := encodeEnvelope(e)
	if err != nil {
		t.Fatal(err)
	}
	if b[1] != envelopeV2 {
		t.Fatalf("stamped message: version %d, want %d", b[1], envelopeV2)
	}
	got, err := decodeEnvelope(b)
	if err != nil || !reflect.DeepEqual(got, e) {
		t.Fatalf("round trip: %+v, %v", got, err)
	}
	if _, err := decodeEnvelope(b[:envelopeHeader+stampLen-1]); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("truncated stamp: %v", err)
	}
	v1, err := encodeEnvelope(envelope{kind: kindPaxos, msg: m})
	if err != nil || v1[1] != envelopeVersion {
		t.Fatalf("unstamped message: %x, %v", v1[:3], err)
	}
	old, err := decodeEnvelope(v1)
	if err != nil || old.at != nil {
		t.Fatalf("version 1: %+v, %v", old, err)
	}
	bad := append([]byte{envelopeMagic, envelopeV2, byte(kindStep)}, make([]byte, stampLen)...)
	if _, err := decodeEnvelope(bad); !errors.Is(err, ErrEnvelope) {
		t.Fatalf("version 2 step envelope: %v, want ErrEnvelope", err)
	}
	rec := stepRecord{Change: 9, Step: 2}
	for _, c := range []struct {
		at   *stamp
		want bool
	}{
		{nil, true},
		{&stamp{Change: 9, Step: 1}, true},
		{&stamp{Change: 8, Step: 4}, true},
		{&stamp{Change: 9, Step: 2}, false},
		{&stamp{Change: 9, Step: 3}, false},
		{&stamp{Change: 10, Step: 1}, false},
	} {
		if got := c.at.older(rec); got != c.want {
			t.Errorf("%+v older than change 9 step 2 = %v, want %v", c.at, got, c.want)
		}
	}
}
