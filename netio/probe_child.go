package netio

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// The engine self-test's client as a child process: the program re-executes
// itself with probeChildEnv naming the addresses to measure, and the child
// prints one median per address, in nanoseconds. Only a program whose main
// calls ProbeClientMain first thing can be re-executed this way; any other
// would run its whole main again, so the parent never tries it unless the
// hook was called.

const probeChildEnv = "SLUICE_NETIO_RTT_PROBE_ADDRS"

// probeChildOK is set once ProbeClientMain returned in the parent.
var probeChildOK atomic.Bool

// ProbeClientMain must be the first thing main (or TestMain) calls. In a
// process started as the io_uring self-test's client it runs that client
// and exits; otherwise it returns at once, and the self-test in this
// process may then measure engine round trips from such a child, as a
// real client sees them.
func ProbeClientMain() {
	addrs := os.Getenv(probeChildEnv)
	if addrs == "" {
		probeChildOK.Store(true)
		return
	}
	rtts, err := measureRTTs(strings.Split(addrs, ","))
	if err != nil {
		fmt.Fprintln(os.Stderr, "netio probe client:", err)
		os.Exit(1)
	}
	for i, d := range rtts {
		if i > 0 {
			fmt.Print(" ")
		}
		fmt.Print(d.Nanoseconds())
	}
	fmt.Println()
	os.Exit(0)
}

// rttsFromChild runs the probe client in a child process.
func rttsFromChild(addrs []string) ([]time.Duration, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*rttTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), probeChildEnv+"="+strings.Join(addrs, ","))
	cmd.Stderr = io.Discard
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting the probe client process: %w", err)
	}
	// Read through the poller until the child is done, and only then
	// wait for it: Wait blocks in wait4, a system call that would hold
	// one of the Ps the engines under test need while they are measured.
	out, rerr := io.ReadAll(stdout)
	if err := cmd.Wait(); err != nil || rerr != nil {
		return nil, fmt.Errorf("probe client process: %v, %v", err, rerr)
	}
	fields := strings.Fields(string(out))
	if len(fields) != len(addrs) {
		return nil, fmt.Errorf("probe client printed %q", out)
	}
	rtts := make([]time.Duration, len(fields))
	for i, f := range fields {
		ns, err := strconv.ParseInt(f, 10, 64)
		if err != nil || ns <= 0 {
			return nil, fmt.Errorf("probe client printed %q", out)
		}
		rtts[i] = time.Duration(ns)
	}
	return rtts, nil
}
