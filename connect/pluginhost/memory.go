package pluginhost

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// residentBytes reads a process's resident set size (VmRSS).
//
// Why an RSS watchdog rather than RLIMIT_AS or a cgroup: RLIMIT_AS limits
// address space, and Go (like most runtimes) reserves far more address
// space than it touches, so a limit near the real budget breaks healthy
// plugins at start and one far above it catches nothing. A cgroup v2
// memory.max would be exact and kernel-enforced, but needs a delegated
// cgroup subtree that a worker run by hand or in a plain container does
// not have. Sampling VmRSS every health interval is portable, kills with a
// clear reason, and a plugin can overshoot only by what it allocates in one
// interval. Children of the plugin are not counted.
func residentBytes(pid int) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	defer func() { _ = f.Close() }()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "VmRSS:") {
			continue
		}
		fields := strings.Fields(line[len("VmRSS:"):])
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("pluginhost: odd VmRSS line %q", line)
		}
		kb, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			return 0, err
		}
		return kb << 10, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("pluginhost: no VmRSS for pid %d", pid)
}
