package metalog

import (
	"errors"
	"testing"

	"github.com/sluice-io/sluice/caspaxos"
)

// The register's own changes answer in the errors HandleISRResult knows.
func TestRegisterError(t *testing.T) {
	reg := caspaxos.Register{ClusterID: "c", Epoch: 5, Active: v1, ISR: []Voter{v1, v2, v3}, ConfigVersion: 10,
		Voters: []caspaxos.Member{{Voter: v1}, {Voter: v2}, {Voter: v3}}, MetaMinISR: 2}
	cur, err := reg.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if c := ConfigOf(reg); c.Epoch != 5 || c.Version != 10 || c.Active != v1 || len(c.Voters) != 3 || len(c.ISR) != 3 {
		t.Fatalf("config %+v", c)
	}
	for _, tc := range []struct {
		name   string
		change caspaxos.Change
		want   error
	}{
		{"old epoch", caspaxos.ShrinkISR(4, 10, []Voter{v1, v2}), ErrEpochChanged},
		{"old version", caspaxos.ShrinkISR(5, 9, []Voter{v1, v2}), ErrVersionChanged},
		{"below min ISR", caspaxos.ShrinkISR(5, 10, []Voter{v1}), ErrRefused},
		{"applied", caspaxos.ShrinkISR(5, 10, []Voter{v1, v2}), nil},
	} {
		_, err := tc.change(cur)
		if got := RegisterError(err); !errors.Is(got, tc.want) || (tc.want == nil && got != nil) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	other := errors.New("timeout")
	if got := RegisterError(other); got != other {
		t.Errorf("timeout: %v", got)
	}
}
