package pluginhost_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/pluginhost"
)

func TestStdoutGarbageBeforeHandshake(t *testing.T) {
	dir, _ := testPlugin(t)
	h, logs := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	p, err := h.Launch(context.Background(), pl, "noisy", pluginhost.Limits{Env: []string{"TESTPLUGIN_GARBAGE=1"}})
	if err != nil {
		t.Fatalf("a plugin printing to stdout before the handshake must still start: %v", err)
	}
	if _, err := p.Describe(context.Background()); err != nil {
		t.Fatal(err)
	}
	_ = p.Close()
	// The garbage went to stderr, hence to the log, tagged.
	if l := logs.String(); !strings.Contains(l, "garbage from init") || !strings.Contains(l, "connector=noisy") {
		t.Fatalf("garbage not logged with its connector:\n%s", l)
	}
}

func TestChecksumMismatchIsRefused(t *testing.T) {
	dir, path := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("tampered")); err != nil {
		t.Fatal(err)
	}
	_ = f.Close()
	_, err = h.Launch(context.Background(), pl, "c", pluginhost.Limits{})
	if !errors.Is(err, pluginhost.ErrChecksum) {
		t.Fatalf("launch of a changed binary: %v", err)
	}
}

// statusLog records a supervisor's statuses.
type statusLog struct {
	mu sync.Mutex
	st []pluginhost.Status
	at []time.Time
}

func (l *statusLog) add(s pluginhost.Status) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.st = append(l.st, s)
	l.at = append(l.at, time.Now())
}

func (l *statusLog) snapshot() ([]pluginhost.Status, []time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pluginhost.Status(nil), l.st...), append([]time.Time(nil), l.at...)
}

func waitFor(t *testing.T, d time.Duration, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestCrashedPluginRestartsWithBackoff(t *testing.T) {
	dir, _ := testPlugin(t)
	h, logs := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	var sl statusLog
	sup := h.Supervise(pluginhost.SupervisorConfig{
		Plugin: pl, Connector: "crashy",
		Limits:   pluginhost.Limits{Env: []string{"TESTPLUGIN_CRASH_AFTER=150ms"}},
		Policy:   pluginhost.Policy{InitialBackoff: 200 * time.Millisecond, MaxBackoff: 400 * time.Millisecond},
		OnStatus: sl.add,
	})
	waitFor(t, 20*time.Second, "three restarts", func() bool { return sup.Status().Restarts >= 3 })
	sts, at := sl.snapshot()
	var fails int
	for i, s := range sts {
		if s.State != pluginhost.StateFailed {
			continue
		}
		fails++
		if !strings.Contains(s.Reason, "exited unexpectedly") || !strings.Contains(s.Reason, "crashing on purpose") {
			t.Fatalf("failure reason %q", s.Reason)
		}
		want := 200 * time.Millisecond
		if s.Failures > 1 {
			want = 400 * time.Millisecond
		}
		// The next RUNNING comes no sooner than the backoff.
		if i+1 < len(sts) && sts[i+1].State == pluginhost.StateRunning {
			if gap := at[i+1].Sub(at[i]); gap < want {
				t.Fatalf("restarted after %v, backoff is %v (failure %d)", gap, want, s.Failures)
			}
		}
	}
	if fails < 3 {
		t.Fatalf("%d failures recorded: %+v", fails, sts)
	}
	if !strings.Contains(logs.String(), "connector=crashy") {
		t.Fatal("plugin stderr not tagged with its connector")
	}
	sup.Close()
	if st := sup.Status(); st.State != pluginhost.StateStopped {
		t.Fatalf("after Close: %v", st.State)
	}
}

// A Go panic outside any task call kills the process; the reason shows
// the panic's message, not just the last lines of its stack.
func TestPanicReasonShowsThePanic(t *testing.T) {
	dir, _ := testPlugin(t)
	h, logs := newHost(t, pluginhost.Options{})
	pl := discoverOne(t, h, dir)
	p, err := h.Launch(context.Background(), pl, "panics", pluginhost.Limits{Env: []string{"TESTPLUGIN_PANIC_AFTER=200ms"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a panicking plugin did not die")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "panic: testplugin: panicking on purpose") {
		t.Fatalf("reason: %v", err)
	}
	if !strings.Contains(logs.String(), `level=ERROR msg="panic: testplugin: panicking on purpose"`) {
		t.Fatalf("panic not logged as an error:\n%s", logs.String())
	}
	if p.Pid() <= 0 {
		t.Fatal("no pid")
	}
	if _, err := p.ResidentBytes(); err == nil {
		t.Fatal("resident memory of a dead process")
	}
}

func TestHungPollIsKilledAndRestarted(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{PollGrace: 300 * time.Millisecond})
	pl := discoverOne(t, h, dir)
	sup := h.Supervise(pluginhost.SupervisorConfig{Plugin: pl, Connector: "hangs",
		Policy: pluginhost.Policy{InitialBackoff: 50 * time.Millisecond}})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	p, err := sup.Process(ctx)
	if err != nil {
		t.Fatal(err)
	}
	src := p.SourceTask(pluginhost.TaskID{Task: 0, Generation: 1})
	if err := src.Start(ctx, "test.Source", map[string]string{"mode": "hang"}, nil); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_, err = src.Poll(ctx, pluginhost.PollLimits{MaxRecords: 10, MaxWait: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "hung") {
		t.Fatalf("poll of a hung plugin: %v", err)
	}
	if el := time.Since(start); el > 5*time.Second {
		t.Fatalf("hung poll took %v to be declared hung", el)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("hung process not killed")
	}
	assertGone(t, p.Pid())
	p2, err := sup.Process(ctx)
	if err != nil || p2.Pid() == p.Pid() {
		t.Fatalf("not restarted: %v", err)
	}
	if _, err := p2.Describe(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestMissedHealthChecksKill(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{HealthInterval: 100 * time.Millisecond, MaxMissedPings: 3})
	pl := discoverOne(t, h, dir)
	p, err := h.Launch(context.Background(), pl, "frozen", pluginhost.Limits{Env: []string{"TESTPLUGIN_STOP_AFTER=300ms"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("a stopped (frozen) plugin was not killed")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "health checks missed") {
		t.Fatalf("reason: %v", err)
	}
	assertGone(t, p.Pid())
}

func TestMemoryLimitKills(t *testing.T) {
	dir, _ := testPlugin(t)
	h, _ := newHost(t, pluginhost.Options{HealthInterval: 100 * time.Millisecond})
	pl := discoverOne(t, h, dir)
	p, err := h.Launch(context.Background(), pl, "leaky",
		pluginhost.Limits{MemoryBytes: 128 << 20, Env: []string{"TESTPLUGIN_LEAK=1"}})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.Done():
	case <-time.After(20 * time.Second):
		t.Fatal("a leaking plugin was not killed")
	}
	if err := p.Err(); err == nil || !strings.Contains(err.Error(), "memory limit exceeded") {
		t.Fatalf("reason: %v", err)
	}
	assertGone(t, p.Pid())
}

// assertGone checks that pid is no longer a live process (a zombie
// waiting for its reaper counts as gone: it holds no memory and runs
// nothing).
func assertGone(t *testing.T, pid int) {
	t.Helper()
	waitFor(t, 10*time.Second, fmt.Sprintf("pid %d to be gone", pid), func() bool { return !alive(pid) })
}

func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	// pid (comm) S ...: the state follows the last ')'.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] != 'Z' && s[i+2] != 'X'
}

// helperHost is the host process of TestNoOrphanAfterHostKill9: it
// starts the plugin, prints its pid and waits to be killed.
func helperHost(pluginPath string) {
	sum, err := pluginhost.FileSHA256(pluginPath)
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	h, err := pluginhost.New(pluginhost.Options{SocketDir: os.Getenv("PLUGINHOST_HELPER_SOCKETS")})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	// Launch from a goroutine that then exits, so the Go runtime may
	// retire threads freely: the plugin must survive that and die only
	// with the process.
	type res struct {
		p   *pluginhost.Process
		err error
	}
	ch := make(chan res)
	go func() {
		p, err := h.Launch(context.Background(), pluginhost.Plugin{Path: pluginPath, SHA256: sum}, "orphan", pluginhost.Limits{})
		ch <- res{p, err}
	}()
	r := <-ch
	if r.err != nil {
		fmt.Println("error", r.err)
		os.Exit(1)
	}
	fmt.Printf("pid=%d\n", r.p.Pid())
	select {}
}

func TestNoOrphanAfterHostKill9(t *testing.T) {
	_, path := testPlugin(t)
	sock, err := os.MkdirTemp("", "ph") // the killed helper cannot clean up
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(sock) })
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "PLUGINHOST_HELPER_PLUGIN="+path, "PLUGINHOST_HELPER_SOCKETS="+sock)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "pid=") {
		_ = cmd.Process.Kill()
		t.Fatalf("helper host said %q %v", line, err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(line, "pid=")))
	// Let the host's runtime shuffle threads a while, then check the
	// plugin is still up before the kill.
	time.Sleep(500 * time.Millisecond)
	if !alive(pid) {
		t.Fatalf("plugin %d died before its host", pid)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	assertGone(t, pid)
}
