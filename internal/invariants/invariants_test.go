package invariants

import (
	"strings"
	"testing"
)

func TestCatchReturnsTheViolation(t *testing.T) {
	v := Catch(func() { Failf("log %s: LEO %d", "/d", 7) })
	if v == nil || !strings.Contains(v.Error(), "invariant violated: log /d: LEO 7") {
		t.Fatalf("Catch = %v, want the violation", v)
	}
	if v := Catch(func() {}); v != nil {
		t.Fatalf("Catch of a normal return = %v, want nil", v)
	}
}

func TestCatchPassesOtherPanicsOn(t *testing.T) {
	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	Catch(func() { panic("other") })
}
