package voter

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/segment"
)

func TestIdentityIsStableAndNewAfterWipe(t *testing.T) {
	mem := segment.NewMemFS()
	a, err := Identity(mem, "/v", 3)
	if err != nil {
		t.Fatal(err)
	}
	if a.ID != 3 || a.Incarnation == (caspaxos.Incarnation{}) {
		t.Fatalf("identity %s: want voter 3 with an incarnation", a)
	}
	if a.Incarnation[6]>>4 != 4 || a.Incarnation[8]>>6 != 2 {
		t.Errorf("incarnation %x is not a version-4 UUID", a.Incarnation)
	}
	// Durable before Identity returns: a crash right after keeps it.
	mem.Crash()
	b, err := Identity(mem, "/v", 3)
	if err != nil || b != a {
		t.Fatalf("after a crash: %s %v, want %s", b, err, a)
	}
	if err := mem.RemoveAll("/v"); err != nil {
		t.Fatal(err)
	}
	c, err := Identity(mem, "/v", 3)
	if err != nil || c == a || c.ID != 3 {
		t.Fatalf("after a wipe: %s %v, want voter 3 with a new incarnation (was %s)", c, err, a)
	}
	if _, err := Identity(mem, "/v", 4); err == nil || !strings.Contains(err.Error(), "not of node 4") {
		t.Fatalf("voter 4 opening voter 3's directory: %v, want a refusal", err)
	}
}

func TestStateRoundTrip(t *testing.T) {
	st := caspaxos.AcceptorState{Self: caspaxos.Voter{ID: 2, Incarnation: caspaxos.Incarnation{1, 2, 3}},
		Promised: caspaxos.Ballot{Counter: 9, Proposer: 7}, Accepted: caspaxos.Ballot{Counter: 8, Proposer: 7},
		Value: []byte("register")}
	b, err := encodeState(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	if [4]byte(b[:4]) != stateMagic {
		t.Fatalf("without a step record the file keeps its first format, magic %q", b[:4])
	}
	got, rec, err := decodeState(b)
	if err != nil || rec != nil {
		t.Fatal(err, rec)
	}
	if got.Self != st.Self || got.Promised != st.Promised || got.Accepted != st.Accepted || !bytes.Equal(got.Value, st.Value) {
		t.Fatalf("round trip: %+v, want %+v", got, st)
	}
	// With a step record: both come back.
	vs := []caspaxos.Voter{st.Self, {ID: 3, Incarnation: caspaxos.Incarnation{4}}, {ID: 4, Incarnation: caspaxos.Incarnation{5}}}
	want := stepRecord{Change: 12, Step: 2, Config: caspaxos.Majority(vs)}
	if b, err = encodeState(st, &want); err != nil {
		t.Fatal(err)
	}
	got, rec, err = decodeState(b)
	if err != nil || rec == nil {
		t.Fatal(err, rec)
	}
	if rec.Change != want.Change || rec.Step != want.Step || !caspaxos.SameConfig(rec.Config, want.Config) ||
		got.Promised != st.Promised || !bytes.Equal(got.Value, st.Value) {
		t.Fatalf("round trip with a step: %+v %+v", got, rec)
	}
	// A damaged record is an error too, never a fallback to Config.Voters.
	b[len(b)-1] ^= 1
	if _, _, err := decodeState(b); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("flipped step record: %v, want ErrCorruptState", err)
	}
}

// A damaged state file is an error naming the file, never a fresh
// acceptor: one that forgot its promises could let two values be chosen.
func TestCorruptStateIsAnError(t *testing.T) {
	st := caspaxos.AcceptorState{Self: caspaxos.Voter{ID: 1, Incarnation: caspaxos.Incarnation{9}},
		Promised: caspaxos.Ballot{Counter: 5, Proposer: 1}, Accepted: caspaxos.Ballot{Counter: 5, Proposer: 1}, Value: []byte("v")}
	good, err := encodeState(st, nil)
	if err != nil {
		t.Fatal(err)
	}
	flip := bytes.Clone(good)
	flip[len(flip)-1] ^= 0x40
	badMagic := bytes.Clone(good)
	badMagic[0] = 'X'
	zeroSelf, _ := encodeState(caspaxos.AcceptorState{}, nil)
	cases := map[string][]byte{
		"empty":          {},
		"torn header":    good[:7],
		"torn body":      good[:len(good)-2],
		"trailing bytes": append(bytes.Clone(good), 0),
		"bit flip":       flip,
		"bad magic":      badMagic,
		"no voter":       zeroSelf,
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			mem := segment.NewMemFS()
			if err := mem.MkdirAll("/v", 0o755); err != nil {
				t.Fatal(err)
			}
			if err := segment.WriteFileAtomic(mem, "/v/"+StateFile, data); err != nil {
				t.Fatal(err)
			}
			_, err := New(Config{NodeID: 1, Voters: members(1), FS: mem, Dir: "/v", Transport: nopTransport{}})
			if !errors.Is(err, ErrCorruptState) || !strings.Contains(err.Error(), StateFile) {
				t.Fatalf("New over a %s state file: %v, want ErrCorruptState naming the file", name, err)
			}
			// Nothing was reset.
			if b, _ := segment.ReadFile(mem, "/v/"+StateFile); !bytes.Equal(b, data) {
				t.Fatalf("the damaged file was rewritten")
			}
		})
	}
	// A leftover temp file of an interrupted write is ignored.
	mem := segment.NewMemFS()
	if err := mem.MkdirAll("/v", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := segment.WriteFileAtomic(mem, "/v/"+StateFile, good); err != nil {
		t.Fatal(err)
	}
	if err := segment.WriteFileAtomic(mem, "/v/"+StateFile+".tmp", []byte("half")); err != nil {
		t.Fatal(err)
	}
	v, err := New(Config{NodeID: 1, Voters: members(1), FS: mem, Dir: "/v", Transport: nopTransport{}})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	if v.Self() != st.Self || v.acc.State().Promised != st.Promised {
		t.Fatalf("loaded %+v, want %+v", v.acc.State(), st)
	}
}

func TestNewRefusesALockedDirectory(t *testing.T) {
	mem := segment.NewMemFS()
	cfg := Config{NodeID: 1, Voters: members(1), FS: mem, Dir: "/v", Transport: nopTransport{}}
	v, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := New(cfg); !errors.Is(err, segment.ErrLocked) {
		t.Fatalf("a second voter on one directory: %v, want ErrLocked", err)
	}
	if err := v.Close(); err != nil {
		t.Fatal(err)
	}
	v2, err := New(cfg)
	if err != nil {
		t.Fatalf("after Close: %v", err)
	}
	v2.Close()
}

// members returns voters 1..n with made-up incarnations; a test's own
// voter must replace its entry with its real identity to be a member.
func members(n int32) []caspaxos.Member {
	var ms []caspaxos.Member
	for id := int32(1); id <= n; id++ {
		ms = append(ms, caspaxos.Member{Voter: caspaxos.Voter{ID: id, Incarnation: caspaxos.Incarnation{byte(id), 0xee}}})
	}
	return ms
}

type nopTransport struct{}

func (nopTransport) Send(int32, []byte) {}
