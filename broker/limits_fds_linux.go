package broker

import (
	"errors"
	"io"
	"math"
	"os"
	"syscall"
)

// processFDUsage reads the soft RLIMIT_NOFILE and counts /proc/self/fd.
func processFDUsage() (limit, open int64, ok bool) {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > math.MaxInt64 {
		return 0, 0, false // unknown or unlimited
	}
	n, err := countEntries("/proc/self/fd")
	if err != nil {
		return 0, 0, false
	}
	return int64(rl.Cur), n, true
}

// countEntries counts a directory's entries in chunks, so a broker with
// hundreds of thousands of descriptors does not build a list of them all.
func countEntries(dir string) (int64, error) {
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var n int64
	for {
		names, err := d.Readdirnames(1024)
		n += int64(len(names))
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return 0, err
		}
	}
}
