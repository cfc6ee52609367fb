// Package invtest helps tests prove that an invariant assertion fires. It
// is for _test.go files built with the invariants tag only.
package invtest

import (
	"strings"
	"testing"

	"github.com/sluice-io/sluice/internal/invariants"
)

// Expect runs fn and fails t unless fn panics with an invariant violation
// whose message contains every string in want (say, the log dir and the
// values the assertion names).
func Expect(t testing.TB, fn func(), want ...string) {
	t.Helper()
	v := invariants.Catch(fn)
	if v == nil {
		t.Fatalf("no invariant violation, want one saying %q", want)
	}
	for _, w := range want {
		if !strings.Contains(v.Msg, w) {
			t.Fatalf("violation %q, want one saying %q", v.Msg, w)
		}
	}
}
