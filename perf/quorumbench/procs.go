package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"
)

// proc is one run of a sluice process. A node restarted is a new proc
// with the same argv and log directory; its log file is appended to.
type proc struct {
	name    string
	cmd     *exec.Cmd
	started time.Time // just before the fork
	logPath string
	exited  chan struct{}
	waitErr error

	mu        sync.Mutex
	listening time.Time // when the "… listening" line was read; zero before
	listenCh  chan struct{}
}

func (p *proc) pid() int { return p.cmd.Process.Pid }

func (p *proc) running() bool {
	select {
	case <-p.exited:
		return false
	default:
		return true
	}
}

// listenedAt is when the process logged that it listens, zero before.
func (p *proc) listenedAt() time.Time {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.listening
}

// listenLine is the line a node logs once it serves: "broker listening"
// on a broker, "controller listening" on a controller-only voter.
func listenLine(line string) bool {
	return strings.Contains(line, `msg="broker listening"`) || strings.Contains(line, `msg="controller listening"`)
}

// startProc runs argv with stdout and stderr appended to logPath, in its
// own process group and killed by the kernel should the benchmark die
// first. Every stderr line is read here, so the "listening" line is timed
// by this process's clock when it arrives.
func startProc(name string, argv []string, logPath string) (*proc, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(logFile, "=== %s start %s\n", name, time.Now().Format(time.RFC3339Nano))
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		logFile.Close()
		return nil, err
	}
	p := &proc{name: name, cmd: cmd, logPath: logPath, exited: make(chan struct{}), listenCh: make(chan struct{})}
	p.started = time.Now()
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		defer logFile.Close()
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			if listenLine(line) {
				p.mu.Lock()
				if p.listening.IsZero() {
					p.listening = time.Now()
					close(p.listenCh)
				}
				p.mu.Unlock()
			}
			fmt.Fprintln(logFile, line)
		}
		_, _ = io.Copy(logFile, stderr)
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// waitListening waits for the "listening" line, the process's exit or
// the timeout.
func (p *proc) waitListening(timeout time.Duration) error {
	select {
	case <-p.listenCh:
		return nil
	case <-p.exited:
		return fmt.Errorf("%s exited before listening: %v\n%s", p.name, p.waitErr, p.logTail(15))
	case <-time.After(timeout):
		return fmt.Errorf("%s did not log that it listens within %s\n%s", p.name, timeout, p.logTail(15))
	}
}

// kill9 sends SIGKILL to the process (by its pid) and returns when it
// was sent; the process is reaped in the background (see exited).
func (p *proc) kill9() time.Time {
	t := time.Now()
	if p.running() {
		_ = syscall.Kill(p.pid(), syscall.SIGKILL)
	}
	return t
}

// stop sends SIGTERM and waits for the exit, then SIGKILL to the process
// group after grace. It reports how long the clean exit took and whether
// it was clean.
func (p *proc) stop(grace time.Duration) (time.Duration, bool) {
	if p == nil || !p.running() {
		return 0, true
	}
	t0 := time.Now()
	_ = syscall.Kill(p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
		return time.Since(t0), true
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
		return time.Since(t0), false
	}
}

// logTail is the last n lines of the process's log, for error messages.
func (p *proc) logTail(n int) string {
	b, err := os.ReadFile(p.logPath)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
