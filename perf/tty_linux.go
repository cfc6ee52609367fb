package perf

import (
	"os"

	"golang.org/x/sys/unix"
)

// isTerminal asks the kernel for the terminal settings of f, which only a
// terminal has.
func isTerminal(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}
