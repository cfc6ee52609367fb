//go:build !linux

package perf

import "os"

// isTerminal approximates the Linux check where the termios request differs
// by system: a terminal is a character device (so is /dev/null, which only
// costs a few discarded writes).
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
