//go:build !invariants

package invariants

// Enabled is false in builds without the invariants tag (the broker
// binary, benchmarks): every `if invariants.Enabled { ... }` block is
// dead code the compiler removes, so assertions cost nothing.
const Enabled = false
