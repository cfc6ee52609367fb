//go:build !linux

package cli

import "io"

// isTerminal is only implemented on Linux, Sluice's platform; elsewhere
// progress lines are simply never shown.
var isTerminal = func(io.Writer) bool { return false }
