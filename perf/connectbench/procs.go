package main

import (
	"bufio"
	"context"
	"fmt"
	"github.com/sluice-io/sluice/perf/internal/benchkit"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// proc is a process the benchmark started: the broker or the worker.
type proc struct {
	name    string
	argv    []string
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{}
	waitErr error
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

// start runs argv with its output in logPath, in its own process group and
// killed by the kernel should the benchmark die first. lineHook, when set,
// sees every line the process writes to stderr.
func start(name string, argv, env []string, logPath string, lineHook func(string)) (*proc, error) {
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	if len(env) > 0 {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.Stdout = logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	var stderr io.ReadCloser
	if lineHook == nil {
		cmd.Stderr = logFile
	} else if stderr, err = cmd.StderrPipe(); err != nil {
		logFile.Close()
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{name: name, argv: argv, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		defer logFile.Close()
		if stderr != nil {
			sc := bufio.NewScanner(stderr)
			sc.Buffer(make([]byte, 64<<10), 4<<20)
			for sc.Scan() {
				line := sc.Text()
				fmt.Fprintln(logFile, line)
				lineHook(line)
			}
			_, _ = io.Copy(logFile, stderr)
		}
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM to the process group, then SIGKILL after grace.
func (p *proc) stop(grace time.Duration) {
	if p == nil || !p.running() {
		return
	}
	_ = syscall.Kill(-p.pid(), syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(grace):
		_ = syscall.Kill(-p.pid(), syscall.SIGKILL)
		<-p.exited
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

// startBroker runs one `sluice broker` on a free loopback port, logging
// only problems as the bench harness's peers do. group.initial.rebalance.delay.ms=0
// is Kafka's quickstart server.properties value; it spares each run's
// groups three seconds of waiting.
func startBroker(ctx context.Context, sluice, dir string) (*proc, string, error) {
	port, err := benchkit.FreePort()
	if err != nil {
		return nil, "", err
	}
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	argv := []string{sluice, "broker",
		"--set", "listeners=PLAINTEXT://" + addr,
		"--set", "log.dirs=" + filepath.Join(dir, "broker-data"),
		"--set", "log.level=warn",
		"--set", "admin.listener=",
		"--set", "group.initial.rebalance.delay.ms=0",
	}
	p, err := start("broker", argv, nil, filepath.Join(dir, "broker.log"), nil)
	if err != nil {
		return nil, "", err
	}
	if err := benchkit.WaitPort(ctx, addr, 30*time.Second, p.exited); err != nil {
		p.stop(5 * time.Second)
		return nil, "", fmt.Errorf("the broker did not come up: %w\n%s", err, p.logTail(5))
	}
	return p, addr, nil
}

var listeningRE = regexp.MustCompile(`msg="connect worker listening" urls=\[(http://[^ \]]+)`)

// worker is the `sluice connect` process and where to reach it.
type worker struct {
	*proc
	url     string // REST API
	metrics string // admin listener's /metrics
}

// startWorker runs a distributed worker against bootstrap with the
// benchmark's plugins, its REST API on an ephemeral port (read from its
// "connect worker listening" log line) and /metrics on a free port.
// offset.flush.interval.ms=10000 is Kafka's quickstart value. env is added
// to the worker's environment (its plugins inherit it).
func startWorker(ctx context.Context, sluice, dir, bootstrap, plugins string, env []string) (*worker, error) {
	adminPort, err := benchkit.FreePort()
	if err != nil {
		return nil, err
	}
	argv := []string{sluice, "connect",
		"--set", "bootstrap.servers=" + bootstrap,
		"--set", "group.id=connectbench",
		"--set", "listeners=http://127.0.0.1:0",
		"--set", fmt.Sprintf("admin.listener=127.0.0.1:%d", adminPort),
		"--set", "plugin.path=" + plugins,
		"--set", "offset.flush.interval.ms=10000",
		"--set", "key.converter=org.apache.kafka.connect.storage.StringConverter",
		"--set", "value.converter=org.apache.kafka.connect.converters.ByteArrayConverter",
	}
	urls := make(chan string, 1)
	p, err := start("worker", argv, env, filepath.Join(dir, "worker.log"), func(line string) {
		if m := listeningRE.FindStringSubmatch(line); m != nil {
			select {
			case urls <- strings.TrimSuffix(m[1], "/"):
			default:
			}
		}
	})
	if err != nil {
		return nil, err
	}
	w := &worker{proc: p, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", adminPort)}
	select {
	case w.url = <-urls:
		return w, nil
	case <-p.exited:
		return nil, fmt.Errorf("the worker exited before listening: %v\n%s", p.waitErr, p.logTail(10))
	case <-ctx.Done():
		p.stop(5 * time.Second)
		return nil, ctx.Err()
	case <-time.After(60 * time.Second):
		p.stop(5 * time.Second)
		return nil, fmt.Errorf("the worker did not listen within 60s\n%s", p.logTail(10))
	}
}

// child is a live child process of the worker: a plugin.
type child struct {
	pid  int
	name string // the plugin binary's file name
}

// children lists the worker's live child processes (its plugins).
func children(ppid int) []child {
	entries, _ := os.ReadDir("/proc")
	var out []child
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		st, err := readProcStat(pid)
		if err != nil || st.PPid != ppid {
			continue
		}
		name := "?"
		if exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid)); err == nil {
			name = filepath.Base(exe)
		}
		out = append(out, child{pid: pid, name: name})
	}
	return out
}

func readProcStat(pid int) (procStat, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return procStat{}, err
	}
	return parseProcStat(b)
}

// cpuOf reads a process's CPU seconds; a process that is gone reads 0
// with an error.
func cpuOf(pid int) (float64, error) {
	st, err := readProcStat(pid)
	return st.CPU, err
}
