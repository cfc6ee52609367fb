package netio

import (
	"bufio"
	"context"
	"errors"
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
// itself with probeChildEnv set, and the child then reads one loopback
// address per line on stdin, measures sequential round trips to it and
// answers with one line, the median in nanoseconds (or "error: ..."), until
// stdin closes. One child serves every engine of the self-test, which
// starts each engine only for its turn. Only a program whose main calls
// ProbeClientMain first thing can be re-executed this way; any other would
// run its whole main again, so the parent never tries it unless the hook
// was called.

const probeChildEnv = "SLUICE_NETIO_RTT_PROBE_CLIENT"

// probeChildOK is set once ProbeClientMain returned in the parent.
var probeChildOK atomic.Bool

// ProbeClientMain must be the first thing main (or TestMain) calls. In a
// process started as the io_uring self-test's client it runs that client
// and exits; otherwise it returns at once, and the self-test in this
// process may then measure engine round trips from such a child, as a
// real client sees them.
func ProbeClientMain() {
	if os.Getenv(probeChildEnv) == "" {
		probeChildOK.Store(true)
		return
	}
	in := bufio.NewScanner(os.Stdin)
	for in.Scan() {
		rtts, err := measureRTTs([]string{strings.TrimSpace(in.Text())})
		if err != nil {
			fmt.Printf("error: %v\n", err)
			continue
		}
		fmt.Println(rtts[0].Nanoseconds())
	}
	os.Exit(0)
}

// probeChild is a running probe client process.
type probeChild struct {
	cmd    *exec.Cmd
	cancel context.CancelFunc
	in     io.WriteCloser
	out    *bufio.Reader
}

// startProbeChild re-executes this program as a probe client.
func startProbeChild() (*probeChild, error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*rttTimeout)
	cmd := exec.CommandContext(ctx, exe)
	cmd.Env = append(os.Environ(), probeChildEnv+"=1")
	cmd.Stderr = io.Discard
	in, err := cmd.StdinPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("starting the probe client process: %w", err)
	}
	return &probeChild{cmd: cmd, cancel: cancel, in: in, out: bufio.NewReader(out)}, nil
}

// rtt has the child measure the engine listening on addr.
func (p *probeChild) rtt(addr string) (time.Duration, error) {
	if _, err := fmt.Fprintln(p.in, addr); err != nil {
		return 0, fmt.Errorf("probe client process: %w", err)
	}
	line, err := p.out.ReadString('\n')
	if err != nil {
		return 0, fmt.Errorf("probe client process: %w", err)
	}
	line = strings.TrimSpace(line)
	if msg, ok := strings.CutPrefix(line, "error: "); ok {
		return 0, errors.New(msg)
	}
	ns, err := strconv.ParseInt(line, 10, 64)
	if err != nil || ns <= 0 {
		return 0, fmt.Errorf("probe client printed %q", line)
	}
	return time.Duration(ns), nil
}

// close ends the child and waits for it. Wait blocks in wait4, a system
// call that holds a P, so it comes only after the last measurement.
func (p *probeChild) close() {
	p.in.Close()
	_, _ = io.Copy(io.Discard, p.out)
	_ = p.cmd.Wait()
	p.cancel()
}
