// Package itest holds process-level integration tests: every test runs the
// real sluice binary (built once, race-enabled) and talks to it over TCP
// like any Kafka client would.
package itest

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/testkit"
)

// sluiceBin is the race-enabled broker binary TestMain builds.
var sluiceBin string

func TestMain(m *testing.M) {
	if conf := os.Getenv(childConsumerEnv); conf != "" {
		// A re-executed test binary serving as a group member process
		// (see groups_child_test.go), not a test run.
		os.Exit(runChildConsumer(conf))
	}
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "sluice-itest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sluiceBin = filepath.Join(dir, "sluice")
	cmd := exec.Command("go", "build", "-race", "-ldflags=-checklinkname=0", "-o", sluiceBin, "github.com/sluice-io/sluice/cmd/sluice")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "itest: building sluice:", err)
		return 1
	}
	out, err := exec.Command(sluiceBin, "engines").Output()
	if err != nil {
		fmt.Fprintln(os.Stderr, "itest: sluice engines:", err)
		return 1
	}
	for _, line := range strings.Split(string(out), "\n") {
		if why, ok := strings.CutPrefix(line, "uring: unavailable: "); ok {
			uringUnavailable = why
			fmt.Fprintln(os.Stderr, "itest: io_uring engine unavailable here, its test variants are skipped:", why)
		}
		if m := ringModeRE.FindStringSubmatch(line); m != nil {
			uringMode = m[1]
		}
	}
	return m.Run()
}

// uringUnavailable is why the io_uring engine cannot run on this machine
// ("" when it can), as `sluice engines` reports it.
var uringUnavailable string

// uringMode is the ring mode the wake-up self-test of `sluice engines`
// chose here. Brokers on the uring engine get it as netio.uring.mode, so
// each start skips the self-test, which costs ~2 s in a race-enabled
// build, while the rings still run in the mode this machine measured.
var uringMode string

var ringModeRE = regexp.MustCompile(`rings use ([a-z-]+)`)

// engineArgs are the broker flags that select engine.
func engineArgs(engine string) []string {
	args := []string{"--set", "netio.engine=" + engine}
	if engine == "uring" && uringMode != "" {
		args = append(args, "--set", "netio.uring.mode="+uringMode)
	}
	return args
}

// engines runs a test once per network engine, as subtests engine=std and
// engine=uring: the broker must behave the same on both. With -short
// (make test) each test runs on one of them, chosen by a hash of its name,
// so the suite still exercises both engines end to end in half the time;
// make test-all runs every test on both.
var engines = testkit.Engines{
	OneUnderShort: true,
	Unavailable: func(engine string) error {
		if engine == "uring" && uringUnavailable != "" {
			return errors.New(uringUnavailable)
		}
		return nil
	},
}

// brokerProc is one running sluice broker process.
type brokerProc struct {
	t       testing.TB
	cmd     *exec.Cmd
	addr    string
	admin   string // host:port of the admin endpoint (/metrics, /healthz, /readyz)
	dataDir string

	mu  sync.Mutex
	log bytes.Buffer

	done     chan struct{} // closed once the process exited and stderr drained
	exitErr  error
	stopOnce sync.Once
	stopped  atomic.Bool // the test stopped or killed it on purpose
}

var (
	listeningRE = regexp.MustCompile(`msg="broker listening".*\baddr=(127\.0\.0\.1:\d+)`)
	adminRE     = regexp.MustCompile(`msg="admin listening".*\baddr=(127\.0\.0\.1:\d+)`)
)

// startBroker runs `sluice broker` on dataDir with an ephemeral port on
// 127.0.0.1, waits until it listens and registers its stop (and the log
// checks) with t.Cleanup.
func startBroker(t testing.TB, engine, dataDir string, sets ...string) *brokerProc {
	t.Helper()
	args := append([]string{"broker"}, engineArgs(engine)...)
	args = append(args,
		"--set", "listeners=PLAINTEXT://127.0.0.1:0",
		"--set", "admin.listener=127.0.0.1:0",
		"--set", "log.dirs="+dataDir,
		"--set", "log.level=debug",
	)
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	cmd := exec.Command(sluiceBin, args...)
	cmd.Env = append(os.Environ(), "GORACE=halt_on_error=0")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	b := &brokerProc{t: t, cmd: cmd, dataDir: dataDir, done: make(chan struct{})}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting sluice: %v", err)
	}
	listening := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 4<<20)
		for sc.Scan() {
			line := sc.Text()
			b.mu.Lock()
			b.log.WriteString(line)
			b.log.WriteByte('\n')
			b.mu.Unlock()
			if m := adminRE.FindStringSubmatch(line); m != nil {
				b.mu.Lock()
				b.admin = m[1]
				b.mu.Unlock()
			}
			if m := listeningRE.FindStringSubmatch(line); m != nil {
				select {
				case listening <- m[1]:
				default:
				}
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
		b.exitErr = cmd.Wait()
		close(b.done)
	}()
	t.Cleanup(func() {
		select {
		case <-b.done:
			if !b.stopped.Load() {
				t.Errorf("broker exited on its own: %v", b.exitErr)
			}
		default:
			b.stop(t, false)
		}
		logText := b.Log()
		if strings.Contains(logText, "DATA RACE") {
			t.Errorf("broker log reports a DATA RACE")
		}
		if strings.Contains(logText, "panic") || strings.Contains(logText, "fatal error:") {
			t.Errorf("broker log contains a panic or fatal runtime error")
		}
		if t.Failed() {
			t.Logf("broker (pid %d, data %s) log:\n%s", cmd.Process.Pid, dataDir, logText)
		}
	})
	select {
	case b.addr = <-listening:
	case <-b.done:
		t.Fatalf("sluice exited before listening: %v", b.exitErr)
	case <-time.After(15 * time.Second):
		_ = cmd.Process.Kill()
		<-b.done
		t.Fatalf("sluice did not log \"broker listening\" within 15s")
	}
	return b
}

// Addr is the host:port the broker listens on.
func (b *brokerProc) Addr() string { return b.addr }

// AdminAddr is the host:port of the broker's admin endpoint.
func (b *brokerProc) AdminAddr() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.admin
}

// Pid is the broker's process id.
func (b *brokerProc) Pid() int { return b.cmd.Process.Pid }

// Log is everything the broker wrote to stderr so far.
func (b *brokerProc) Log() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.log.String()
}

// Alive reports whether the process has not exited yet.
func (b *brokerProc) Alive() bool {
	select {
	case <-b.done:
		return false
	default:
		return true
	}
}

// Stop sends SIGTERM and asserts a clean exit: code 0 within 30s and the
// "broker stopped cleanly" log line.
func (b *brokerProc) Stop() {
	b.t.Helper()
	b.stop(b.t, true)
}

func (b *brokerProc) stop(t testing.TB, fatal bool) {
	t.Helper()
	fail := t.Errorf
	if fatal {
		fail = t.Fatalf
	}
	var msg string
	b.stopOnce.Do(func() {
		b.stopped.Store(true)
		_ = b.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-b.done:
		case <-time.After(30 * time.Second):
			_ = b.cmd.Process.Kill()
			<-b.done
			msg = "broker did not exit within 30s of SIGTERM"
			return
		}
		if b.exitErr != nil {
			msg = fmt.Sprintf("broker exited uncleanly after SIGTERM: %v", b.exitErr)
			return
		}
		if !strings.Contains(b.Log(), "broker stopped cleanly") {
			msg = `broker log lacks "broker stopped cleanly"`
		}
	})
	if msg != "" {
		fail("%s", msg)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (b *brokerProc) Kill() {
	b.t.Helper()
	b.stopOnce.Do(func() {
		b.stopped.Store(true)
		_ = b.cmd.Process.Kill()
		<-b.done
		var ee *exec.ExitError
		if !errors.As(b.exitErr, &ee) {
			b.t.Fatalf("killed broker: unexpected wait result %v", b.exitErr)
		}
	})
}
