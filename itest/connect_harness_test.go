package itest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// builtPlugins holds the connector plugins built for the connect tests,
// once per test binary.
var (
	pluginOnce   sync.Once
	builtPlugins string
	pluginErr    error
)

// connectPlugins returns a plugin.path directory of the test's own, with a
// copy of every plugin binary: a test finds its plugin processes by the
// path of their executable, so no two tests share one.
func connectPlugins(t *testing.T) string {
	t.Helper()
	pluginOnce.Do(func() {
		// Every connector under connectors/ with a main.go, as make
		// build makes them, in one go build.
		builtPlugins = filepath.Join(filepath.Dir(sluiceBin), "plugins")
		mains, _ := filepath.Glob(filepath.Join("..", "connectors", "*", "main.go"))
		if len(mains) == 0 {
			pluginErr = fmt.Errorf("no connectors/*/main.go under %s", filepath.Join("..", "connectors"))
			return
		}
		if pluginErr = os.MkdirAll(builtPlugins, 0o755); pluginErr != nil {
			return
		}
		args := []string{"build", "-ldflags=-checklinkname=0", "-o", builtPlugins + "/"}
		for _, m := range mains {
			args = append(args, "./"+filepath.ToSlash(filepath.Dir(m)))
		}
		cmd := exec.Command("go", args...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		pluginErr = cmd.Run()
	})
	if pluginErr != nil {
		t.Fatalf("building the connector plugins: %v", pluginErr)
	}
	dir := filepath.Join(t.TempDir(), "plugins")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(builtPlugins)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(builtPlugins, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// workerProc is one `sluice connect` worker process.
type workerProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	url  string
	mu   sync.Mutex
	log  bytes.Buffer
	done chan struct{}
}

var workerListeningRE = regexp.MustCompile(`msg="connect worker listening" urls=\[(http://127\.0\.0\.1:\d+)`)

// startWorker runs a distributed worker against the broker at bootstrap
// with a REST listener on an ephemeral port; sets are more --set values.
func startWorker(t *testing.T, bootstrap, plugins string, sets ...string) *workerProc {
	t.Helper()
	args := []string{
		"--set", "bootstrap.servers=" + bootstrap,
		"--set", "listeners=http://127.0.0.1:0",
		"--set", "admin.listener=",
		"--set", "plugin.path=" + plugins,
		"--set", "offset.flush.interval.ms=500",
		"--set", "scheduled.rebalance.max.delay.ms=2000",
		"--set", "consumer.session.timeout.ms=6000",
		"--log-level", "debug",
	}
	for _, s := range sets {
		args = append(args, "--set", s)
	}
	return startConnectProc(t, args...)
}

func (w *workerProc) Log() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.log.String()
}

func (w *workerProc) stop() {
	select {
	case <-w.done:
		return
	default:
	}
	_ = w.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-w.done:
	case <-time.After(30 * time.Second):
		_ = w.cmd.Process.Kill()
		<-w.done
	}
}

func (w *workerProc) kill9() {
	_ = w.cmd.Process.Kill()
	<-w.done
}

// call sends a REST request and decodes a JSON answer into out (when not
// nil), returning the status code. A 409 (a rebalance is underway, as
// while the worker joins its group) is retried for up to 30 s, as Connect
// clients do.
func (w *workerProc) call(method, path string, body, out any) int {
	w.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		code := w.callOnce(method, path, body, out)
		if code != http.StatusConflict || time.Now().After(deadline) {
			return code
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func (w *workerProc) callOnce(method, path string, body, out any) int {
	w.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			w.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, w.url+path, rd)
	if err != nil {
		w.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		w.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil && len(b) > 0 {
		if err := json.Unmarshal(b, out); err != nil {
			w.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, b, err)
		}
	}
	return resp.StatusCode
}

// taskStates is the states of a connector's tasks ("" when it has no
// status yet).
func (w *workerProc) taskStates(name string) []string {
	var st struct {
		Tasks []struct {
			State string `json:"state"`
		} `json:"tasks"`
	}
	if w.call("GET", "/connectors/"+name+"/status", nil, &st) != 200 {
		return nil
	}
	var out []string
	for _, t := range st.Tasks {
		out = append(out, t.State)
	}
	return out
}

// pluginPids lists the processes running a binary from dir.
func pluginPids(dir string) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
		if err == nil && strings.HasPrefix(exe, dir+string(os.PathSeparator)) {
			out = append(out, pid)
		}
	}
	return out
}

func waitFor(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// fileLines is the lines of a file (none when it does not exist).
func fileLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) == 0 {
		return nil
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}
