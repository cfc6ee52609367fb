package caspaxos

import (
	"flag"
	"testing"
)

var flagExplore = flag.Bool("explore", false, "run the exhaustive explorations that take minutes")

// TestExplore checks every reachable state of small worlds (see
// explore_test.go). The smallest runs always; the others with -explore or
// -long (one retry: 29,000 states; two proposers racing: 280,000 to
// 340,000 states and 40 to 50 s each; 90 s in all).
func TestExplore(t *testing.T) {
	cases := []struct {
		name string
		long bool
		b    exploreBounds
	}{
		{"one proposer, one retry", true, exploreBounds{ops: [][]byte{[]byte("a")}, timeouts: 1}},
		{"one proposer, one round trip, a drop", false, exploreBounds{ops: [][]byte{[]byte("ab")}, drops: 1, oneRTT: true}},
		{"two proposers race", true, exploreBounds{ops: [][]byte{[]byte("a"), []byte("b")}}},
		{"two proposers race, one round trip", true, exploreBounds{ops: [][]byte{[]byte("a"), []byte("b")}, oneRTT: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if c.long && !*flagExplore && !*flagLong {
				t.Skip("run with -explore")
			}
			c.b.maxState = 1_000_000
			if !c.long {
				c.b.maxState = 50_000
			}
			n, bad := explore(t, c.b)
			if bad != "" {
				t.Fatal(bad)
			}
			t.Logf("%d states", n)
		})
	}
}
