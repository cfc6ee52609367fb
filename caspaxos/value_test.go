package caspaxos

import (
	"errors"
	"reflect"
	"testing"
)

func enc(t *testing.T, r Register) []byte {
	t.Helper()
	b, err := r.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestRegisterEncoding(t *testing.T) {
	r := Register{Epoch: 7, Active: va, ISR: []Voter{va, vb}, Lease: 42}
	b := enc(t, r)
	var got Register
	if err := got.UnmarshalBinary(b); err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip %+v, %v; want %+v", got, err, r)
	}
	// The encoding is the persisted format: pin its layout.
	if len(b) != 1+4+20+8+2+2*20 || b[0] != 1 || b[4] != 7 {
		t.Fatalf("version 1 layout changed: % x", b)
	}
	if err := got.UnmarshalBinary(nil); err != nil || !reflect.DeepEqual(got, Register{}) {
		t.Fatalf("empty register decodes as %+v, %v", got, err)
	}
	for name, bad := range map[string][]byte{
		"truncated": b[:len(b)-3],
		"trailing":  append(enc(t, r), 0),
		"version 2": append([]byte{2}, b[1:]...),
	} {
		if err := got.UnmarshalBinary(bad); err == nil {
			t.Errorf("%s register decoded", name)
		}
	}
}

func TestRegisterChanges(t *testing.T) {
	wipedA := Voter{ID: va.ID, Incarnation: inc(2)}
	live := Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 10}
	var epochErr *EpochError
	cases := []struct {
		name    string
		from    Register
		change  Change
		want    Register // when no error
		wantErr any      // error value for errors.Is, or a pointer for errors.As
	}{
		{"bootstrap takeover puts the first controller in the ISR", Register{}, Takeover(0, 0, va),
			Register{Epoch: 1, Active: va, ISR: []Voter{va}}, nil},
		{"takeover by an ISR member after the lease stalled", live, Takeover(3, 10, vb),
			Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}}, nil},
		{"takeover already applied succeeds unchanged", Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}},
			Takeover(3, 10, vb), Register{Epoch: 4, Active: vb, ISR: []Voter{va, vb}}, nil},
		{"takeover from a stale epoch", live, Takeover(2, 10, vb), Register{}, &epochErr},
		{"takeover while the lease moves", live, Takeover(3, 9, vb), Register{}, ErrLeaseRenewed},
		{"takeover from outside the ISR", live, Takeover(3, 10, vc), Register{}, ErrNotInISR},
		{"a wiped voter's new incarnation is not its old self", live, Takeover(3, 10, wipedA), Register{}, ErrNotInISR},
		{"renew", live, Renew(3, va, 10), Register{Epoch: 3, Active: va, ISR: []Voter{va, vb}, Lease: 11}, nil},
		{"renew already applied succeeds unchanged", live, Renew(3, va, 9), live, nil},
		{"renew by a deposed controller", live, Renew(2, va, 10), Register{}, &epochErr},
		{"renew by another voter", live, Renew(3, vb, 10), Register{}, &epochErr},
		{"renew from a lease it never saw", live, Renew(3, va, 4), Register{}, "error"},
		{"set ISR", live, SetISR(3, []Voter{va, vc}), Register{Epoch: 3, Active: va, ISR: []Voter{va, vc}, Lease: 10}, nil},
		{"set ISR in a stale epoch", live, SetISR(2, []Voter{va}), Register{}, &epochErr},
		{"set ISR without the active controller", live, SetISR(3, []Voter{vb}), Register{}, "error"},
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
