//go:build invariants

package invariants

// Enabled is true in builds with the invariants tag (make test, make
// test-all): assertions behind it run and panic on a violation.
const Enabled = true
