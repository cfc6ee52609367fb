package caspaxos

import (
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func enc(t testing.TB, r Register) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fullRegister sets every field, so a field the encoding forgets shows.
func fullRegister() Register {
	return Register{ClusterID: "MkU3OEVBNTcwNTJENDM2Qk", Epoch: 7, Active: va, ISR: []Voter{va, vb}, Lease: 42,
		ConfigVersion: 9, MetaMinISR: 2, Voters: []Member{
			{Voter: va, Endpoints: []Endpoint{{Name: "CONTROLLER", Host: "h1", Port: 9093}}},
			{Voter: vb, Endpoints: []Endpoint{{Name: "CONTROLLER", Host: "h2", Port: 9093}, {Name: "X", Host: "::1", Port: 1}}},
			{Voter: vc},
		}}
}

// encodeV1 writes the version 1 layout by hand, as registers persisted
// before ClusterID and the configuration fields were added look on disk.
func encodeV1(r Register) []byte {
	b := []byte{1}
	b = binary.BigEndian.AppendUint32(b, uint32(r.Epoch))
	b = appendVoter(b, r.Active)
	b = binary.BigEndian.AppendUint64(b, r.Lease)
	b = binary.BigEndian.AppendUint16(b, uint16(len(r.ISR)))
	for _, v := range r.ISR {
		b = appendVoter(b, v)
	}
	return b
}

func TestRegisterEncoding(t *testing.T) {
	r := fullRegister()
	b := enc(t, r)
	var got Register
	if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, r)
	}
	// The encoding is the persisted format: pin its layout.
	small := Register{ClusterID: "c", Epoch: 7, Active: va, ISR: []Voter{va}, Lease: 1, ConfigVersion: 3, MetaMinISR: 1,
		Voters: []Member{{Voter: va, Endpoints: []Endpoint{{Name: "N", Host: "h", Port: 0x2385}}}}}
	sb := enc(t, small)
	if len(sb) != 1+3+4+20+8+8+4+2+20+2+20+2+3+3+2 || sb[0] != 2 || sb[1] != 0 || sb[2] != 1 || sb[3] != 'c' || sb[7] != 7 ||
		sb[len(sb)-2] != 0x23 || sb[len(sb)-1] != 0x85 {
		t.Fatalf("version 2 layout changed: % x", sb)
	}
	if err := got.UnmarshalBinary(nil); err != nil || !reflect.DeepEqual(got, Register{}) {
		t.Fatalf("empty register decodes as %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)-3],
		"trailing":  append(enc(t, r), 0),
		"version 3": append([]byte{3}, b[1:]...),
		"version 0": append([]byte{0}, b[1:]...),
	} {
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Errorf("%s register decoded", name)
		}
	}
	if _, err := (Register{ISR: make([]Voter, 0x10000)}).MarshalBinary(); err == nil {
		t.Error("an ISR too large for its count encoded")
	}
}

func TestRegisterDecodesVersion1(t *testing.T) {
	old := Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 10}
	var got Register
	if err := got.UnmarshalBinary(encodeV1(old)); err != nil || !reflect.DeepEqual(got, old) {
		t.Fatalf("version 1 decodes as %+v, %v; want %+v", got, err, old)
	}
	// A change applied to a version 1 value writes version 2.
	next, err := Renew(3, va, 10)(encodeV1(old))
	if err != nil || next[0] != registerVersion {
		t.Fatalf("renew of a version 1 value: % x, %v", next, err)
	}
	if err := got.UnmarshalBinary(next); err != nil || got.Lease != 11 || !reflect.DeepEqual(got.ISR, old.ISR) {
		t.Fatalf("renewed version 1 value: %+v, %v", got, err)
	}
}

// FuzzRegister: whatever decodes re-encodes to bytes that decode to the
// same value, and nothing panics.
func FuzzRegister(f *testing.F) {
	f.Add(enc(f, fullRegister()))
	f.Add(encodeV1(Register{Epoch: 3, Active: va, ISR: []Voter{va}, Lease: 1}))
	f.Add([]byte{2, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var r Register
		if r.UnmarshalBinary(b) != nil {
			return
		}
		var again Register
		if err := again.UnmarshalBinary(enc(t, r)); err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("re-encoding %+v decodes as %+v, %v", r, again, err)
		}
	})
}

func TestBootstrapValue(t *testing.T) {
	members := []Member{{Voter: va}, {Voter: vb}, {Voter: vc}}
	r, err := BootstrapValue("c1", members, 2)
	want := Register{ClusterID: "c1", ISR: []Voter{va, vb, vc}, ConfigVersion: 1, MetaMinISR: 2, Voters: members}
	if err != nil || !reflect.DeepEqual(r, want) {
		t.Fatalf("bootstrap value %+v, %v; want %+v", r, err, want)
	}
	for name, c := range map[string]struct {
		id     string
		voters []Member
		min    int32
	}{
		"no cluster id":   {"", members, 1},
		"no voters":       {"c1", nil, 0},
		"zero voter":      {"c1", []Member{{}}, 0},
		"repeated id":     {"c1", []Member{{Voter: va}, {Voter: Voter{ID: va.ID, Incarnation: inc(2)}}}, 1},
		"min above count": {"c1", members, 4},
		"negative min":    {"c1", members, -1},
	} {
		if _, err := BootstrapValue(c.id, c.voters, c.min); !errors.Is(err, ErrBadConfig) {
			t.Errorf("%s: err %v, want ErrBadConfig", name, err)
		}
	}
}

func TestRegisterChanges(t *testing.T) {
	wipedA := Voter{ID: va.ID, Incarnation: inc(2)}
	members := []Member{{Voter: va}, {Voter: vb}, {Voter: vc}}
	boot, _ := BootstrapValue("c1", members, 2)
	live := Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 10}
	// cfg is a bootstrapped cluster in epoch 3 with a two-voter minimum.
	cfg := Register{ClusterID: "c1", Epoch: 3, Active: va, ISR: []Voter{va, vb, vc}, Lease: 10, ConfigVersion: 5,
		MetaMinISR: 2, Voters: members}
	with := func(r Register, f func(*Register)) Register { r = r.Clone(); f(&r); return r }
	var epochErr *EpochError
	var cvErr *ConfigVersionError
	cases := []struct {
		name    string
		from    Register
		change  Change
		want    Register // when no error
		wantErr any      // error value for errors.Is, or a pointer for errors.As
	}{
		{"bootstrap an empty register", Register{}, Bootstrap("c1", members, 2), boot, nil},
		{"bootstrap again is a read", cfg, Bootstrap("c1", members, 2), cfg, nil},
		{"bootstrap over another cluster", cfg, Bootstrap("c2", members, 2), Register{}, ErrClusterID},
		{"bootstrap over an unbootstrapped live register", live, Bootstrap("c1", members, 2), Register{}, ErrClusterID},
		{"first takeover after bootstrap", boot, Takeover(0, 0, vb),
			with(boot, func(r *Register) { r.Epoch, r.Active = 1, vb }), nil},
		{"bootstrap takeover puts the first controller in the ISR", Register{}, Takeover(0, 0, va),
			Register{Epoch: 1, Active: va, ISR: []Voter{va}}, nil},
		{"takeover by an ISR member after the lease stalled", live, Takeover(3, 10, vb),
			Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}}, nil},
		{"takeover keeps the configuration", cfg, Takeover(3, 10, vc),
			with(cfg, func(r *Register) { r.Epoch, r.Active, r.Lease = 4, vc, 0 }), nil},
		{"takeover already applied succeeds unchanged", Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}},
			Takeover(3, 10, vb), Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}}, nil},
		{"takeover from a stale epoch", live, Takeover(2, 10, vb), Register{}, &epochErr},
		{"takeover with a nonce starts the lease there", live, TakeoverNonce(3, 10, vb, 77),
			Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}, Lease: 77}, nil},
		{"takeover with a nonce already applied", Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}, Lease: 77},
			TakeoverNonce(3, 10, vb, 77), Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}, Lease: 77}, nil},
		{"an earlier takeover of the same voter is not this one", Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}, Lease: 5},
			TakeoverNonce(3, 10, vb, 77), Register{}, &epochErr},
		{"takeover while the lease moves", live, Takeover(3, 9, vb), Register{}, ErrLeaseRenewed},
		{"takeover from outside the ISR", live, Takeover(3, 10, vc), Register{}, ErrNotInISR},
		{"a wiped voter's new incarnation is not its old self", live, Takeover(3, 10, wipedA), Register{}, ErrNotInISR},
		{"a wiped voter cannot take over a bootstrapped cluster", boot, Takeover(0, 0, wipedA), Register{}, ErrNotInISR},
		{"renew", live, Renew(3, va, 10), Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 11}, nil},
		{"renew already applied succeeds unchanged", live, Renew(3, va, 9), live, nil},
		{"renew by a deposed controller", live, Renew(2, va, 10), Register{}, &epochErr},
		{"renew by another voter", live, Renew(3, vb, 10), Register{}, &epochErr},
		{"renew from a lease it never saw", live, Renew(3, va, 4), Register{}, "error"},
		{"shrink", cfg, ShrinkISR(3, 5, []Voter{va, vc}),
			with(cfg, func(r *Register) { r.ISR, r.ConfigVersion = []Voter{va, vc}, 6 }), nil},
		{"shrink already applied succeeds unchanged", with(cfg, func(r *Register) { r.ISR, r.ConfigVersion = []Voter{va, vc}, 6 }),
			ShrinkISR(3, 5, []Voter{va, vc}), with(cfg, func(r *Register) { r.ISR, r.ConfigVersion = []Voter{va, vc}, 6 }), nil},
		{"shrink below the min ISR", cfg, ShrinkISR(3, 5, []Voter{va}), Register{}, ErrBelowMinISR},
		{"shrink without the active controller", cfg, ShrinkISR(3, 5, []Voter{vb, vc}), Register{}, ErrBelowMinISR},
		{"shrink in a stale epoch", cfg, ShrinkISR(2, 5, []Voter{va, vb}), Register{}, &epochErr},
		{"shrink from a stale config version", cfg, ShrinkISR(3, 4, []Voter{va, vb}), Register{}, &cvErr},
		{"shrink that adds", with(cfg, func(r *Register) { r.ISR = []Voter{va, vb} }), ShrinkISR(3, 5, []Voter{va, vc}), Register{}, ErrBadConfig},
		{"shrink with a voter twice", cfg, ShrinkISR(3, 5, []Voter{va, va}), Register{}, ErrBadConfig},
		{"shrink with no active controller", boot, ShrinkISR(0, 1, []Voter{va, vb}), Register{}, ErrBelowMinISR},
		{"min ISR 0 still keeps the active controller", with(cfg, func(r *Register) { r.MetaMinISR = 0 }),
			ShrinkISR(3, 5, []Voter{va}), with(cfg, func(r *Register) { r.MetaMinISR, r.ISR, r.ConfigVersion = 0, []Voter{va}, 6 }), nil},
		{"expand", with(cfg, func(r *Register) { r.ISR = []Voter{va, vb} }), ExpandISR(3, 5, []Voter{va, vb, vc}),
			with(cfg, func(r *Register) { r.ConfigVersion = 6 }), nil},
		{"expand by a wiped voter's new incarnation", with(cfg, func(r *Register) { r.ISR = []Voter{va, vb} }),
			ExpandISR(3, 5, []Voter{va, vb, {ID: vc.ID, Incarnation: inc(2)}}), Register{}, ErrBadConfig},
		{"expand that drops", cfg, ExpandISR(3, 5, []Voter{va, vb}), Register{}, ErrBadConfig},
		{"expand from a stale config version", cfg, ExpandISR(3, 6, []Voter{va, vb, vc}), Register{}, &cvErr},
		{"expand in a stale epoch", cfg, ExpandISR(4, 5, []Voter{va, vb, vc}), Register{}, &epochErr},
		{"set voters", cfg, SetVoters(3, 5, append(members, Member{Voter: wipedA})),
			with(cfg, func(r *Register) { r.Voters, r.ConfigVersion = append(members, Member{Voter: wipedA}), 6 }), nil},
		{"set voters that drop an ISR member", cfg, SetVoters(3, 5, members[:2]), Register{}, ErrBadConfig},
		{"set voters from a stale config version", cfg, SetVoters(3, 3, members), Register{}, &cvErr},
		{"set ISR", live, SetISR(3, []Voter{va, vc}), Register{Epoch: 3, Active: va, ISR: []Voter{va, vc}, Lease: 10, ConfigVersion: 1}, nil},
		{"set ISR in a stale epoch", live, SetISR(2, []Voter{va}), Register{}, &epochErr},
		{"set ISR without the active controller", live, SetISR(3, []Voter{vb}), Register{}, "error"},
		{"set ISR below the min ISR", cfg, SetISR(3, []Voter{va}), Register{}, ErrBelowMinISR},
		{"compare-and-set in the expected epoch", live, CompareAndSet(3, func(r *Register) error { r.Lease = 99; return nil }),
			Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 99}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var cur []byte
			if !reflect.DeepEqual(c.from, Register{}) {
				cur = enc(t, c.from)
			}
			before := string(cur)
			next, err := c.change(cur)
			if string(cur) != before {
				t.Fatal("change modified its argument")
			}
			switch want := c.wantErr.(type) {
			case nil:
				if err != nil {
					t.Fatal(err)
				}
				var got Register
				if err := got.UnmarshalBinary(next); err != nil || !reflect.DeepEqual(got, c.want) {
					t.Fatalf("got %+v, %v; want %+v", got, err, c.want)
				}
			case **EpochError:
				if !errors.As(err, want) || (*want).Current.Epoch != c.from.Epoch {
					t.Fatalf("err %v, want an EpochError reporting epoch %d", err, c.from.Epoch)
				}
			case **ConfigVersionError:
				if !errors.As(err, want) || (*want).Current.ConfigVersion != c.from.ConfigVersion {
					t.Fatalf("err %v, want a ConfigVersionError reporting %d", err, c.from.ConfigVersion)
				}
			case error:
				if !errors.Is(err, want) {
					t.Fatalf("err %v, want %v", err, want)
				}
			default:
				if err == nil {
					t.Fatal("no error")
				}
			}
		})
	}
}
