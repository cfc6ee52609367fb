package itest

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Kafka's Connect quickstart, over the REST API: the two connector configs
// of connect-file-source.properties and connect-file-sink.properties,
// POSTed unchanged but for the file paths; lines appended to the source
// file appear in the sink file.
func TestConnectQuickstart(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	dir := t.TempDir()
	src, sink := filepath.Join(dir, "test.txt"), filepath.Join(dir, "test.sink.txt")
	if err := os.WriteFile(src, []byte("foo\nbar\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, b.Addr(), connectPlugins(t))
	for _, c := range []map[string]any{
		{"name": "local-file-source", "config": map[string]string{
			"connector.class": "FileStreamSource", "tasks.max": "1", "file": src, "topic": "connect-test"}},
		{"name": "local-file-sink", "config": map[string]string{
			"connector.class": "FileStreamSink", "tasks.max": "1", "file": sink, "topics": "connect-test"}},
	} {
		var info map[string]any
		if code := w.call("POST", "/connectors", c, &info); code != 201 {
			t.Fatalf("POST /connectors %v: %d %v", c["name"], code, info)
		}
	}
	waitFor(t, 60*time.Second, "foo and bar in the sink file", func() bool {
		return strings.Join(fileLines(sink), ",") == "foo,bar"
	})
	f, err := os.OpenFile(src, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = f.WriteString("Another line\n")
	_ = f.Close()
	waitFor(t, 30*time.Second, "the appended line in the sink file", func() bool {
		return strings.Join(fileLines(sink), ",") == "foo,bar,Another line"
	})
	for _, name := range []string{"local-file-source", "local-file-sink"} {
		if st := w.taskStates(name); len(st) != 1 || st[0] != "RUNNING" {
			t.Errorf("%s tasks: %v, want one RUNNING", name, st)
		}
	}
	var offs struct {
		Offsets []struct {
			Partition map[string]any `json:"partition"`
			Offset    map[string]any `json:"offset"`
		} `json:"offsets"`
	}
	waitFor(t, 30*time.Second, "the source offset at the end of the file", func() bool {
		w.call("GET", "/connectors/local-file-source/offsets", nil, &offs)
		return len(offs.Offsets) == 1 && offs.Offsets[0].Partition["filename"] == src &&
			offs.Offsets[0].Offset["position"] == float64(len("foo\nbar\nAnother line\n"))
	})
}

// appendLines appends "line-i" for i in [from, to) at about perSecond
// lines a second.
func appendLines(t *testing.T, path string, from, to, perSecond int) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Error(err)
		return
	}
	defer f.Close()
	tick := time.Second / time.Duration(perSecond/10)
	for i := from; i < to; i += 10 {
		var sb strings.Builder
		for j := i; j < min(i+10, to); j++ {
			fmt.Fprintf(&sb, "line-%d\n", j)
		}
		if _, err := f.WriteString(sb.String()); err != nil {
			t.Error(err)
			return
		}
		time.Sleep(tick)
	}
}

// checkDelivered asserts that the sink file holds every line-i for i < n
// and returns how many lines it holds more than once.
func checkDelivered(t *testing.T, sink string, n int) int {
	t.Helper()
	seen := map[string]int{}
	for _, l := range fileLines(sink) {
		seen[l]++
	}
	dups := 0
	for i := 0; i < n; i++ {
		c := seen[fmt.Sprintf("line-%d", i)]
		if c == 0 {
			t.Fatalf("line-%d was lost (sink holds %d distinct lines)", i, len(seen))
		}
		dups += c - 1
	}
	return dups
}

// pipeline is a file → topic → file pipeline on one worker with lines
// being appended to its source file.
type pipeline struct {
	broker        *brokerProc
	worker        *workerProc
	plugins       string
	src, sink     string
	lines         int
	appendingDone chan struct{}
}

// startPipeline creates the FileStreamSource → FileStreamSink pipeline,
// starts appending n lines at perSecond, and returns once the sink holds
// more than first of them.
func startPipeline(t *testing.T, n, perSecond, first int) *pipeline {
	t.Helper()
	dir := t.TempDir()
	p := &pipeline{broker: startBroker(t, "std", t.TempDir()), plugins: connectPlugins(t),
		src: filepath.Join(dir, "in.txt"), sink: filepath.Join(dir, "out.txt"), lines: n, appendingDone: make(chan struct{})}
	p.worker = startWorker(t, p.broker.Addr(), p.plugins)
	for _, c := range []map[string]any{
		{"name": "src", "config": map[string]string{"connector.class": "FileStreamSource", "file": p.src, "topic": "pipe"}},
		{"name": "sink", "config": map[string]string{"connector.class": "FileStreamSink", "file": p.sink, "topics": "pipe"}},
	} {
		var answer map[string]any
		if code := p.worker.call("POST", "/connectors", c, &answer); code != 201 {
			t.Fatalf("POST /connectors %v: %d %v", c["name"], code, answer)
		}
	}
	// Ten lines first, to wait for the pipeline to run; the rest at the
	// given rate, so that what follows happens mid-stream.
	appendLines(t, p.src, 0, 10, 100)
	waitFor(t, 60*time.Second, "the pipeline running", func() bool { return len(fileLines(p.sink)) >= 10 })
	go func() { defer close(p.appendingDone); appendLines(t, p.src, 10, n, perSecond) }()
	waitFor(t, 60*time.Second, "the first lines in the sink", func() bool { return len(fileLines(p.sink)) > first })
	if len(pluginPids(p.plugins)) == 0 {
		t.Fatal("no plugin process runs while the pipeline does")
	}
	return p
}

// finish waits for the appending to end and every line to reach the
// sink, and returns how many lines the sink holds more than once.
func (p *pipeline) finish(t *testing.T) int {
	t.Helper()
	<-p.appendingDone
	waitFor(t, 90*time.Second, "every line in the sink", func() bool {
		seen := map[string]bool{}
		for _, l := range fileLines(p.sink) {
			seen[l] = true
		}
		return len(seen) >= p.lines
	})
	return checkDelivered(t, p.sink, p.lines)
}

// A worker killed with SIGKILL mid-stream loses nothing: its plugin
// processes die with it (none is left in /proc), a new worker resumes from
// the committed offsets, and lines are repeated at most for the window
// that was not yet committed (offset.flush.interval.ms=500).
func TestConnectWorkerKill9LosesNothing(t *testing.T) {
	const n, rate = 3000, 1000
	p := startPipeline(t, n, rate, 300)
	p.worker.kill9()
	waitFor(t, 5*time.Second, "the plugin processes to die with their worker", func() bool {
		return len(pluginPids(p.plugins)) == 0
	})
	w2 := startWorker(t, p.broker.Addr(), p.plugins)
	dups := p.finish(t)
	t.Logf("%d lines, %d repeated after the kill", n, dups)
	if dups > rate {
		t.Errorf("%d lines repeated: more than one second of input (%d lines), the uncommitted window is 0.5 s", dups, rate)
	}
	w2.stop()
	waitFor(t, 10*time.Second, "no plugin process after a clean stop", func() bool { return len(pluginPids(p.plugins)) == 0 })
}

// A plugin process killed with SIGKILL is restarted by its worker, its
// tasks run again, and nothing is lost.
func TestConnectPluginKill9IsRestarted(t *testing.T) {
	const n, rate = 2000, 1000
	p := startPipeline(t, n, rate, 200)
	w := p.worker
	pids := pluginPids(p.plugins)
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	dups := p.finish(t)
	t.Logf("%d lines, %d repeated after the plugin kill", n, dups)
	waitFor(t, 30*time.Second, "both tasks RUNNING again", func() bool {
		s, k := w.taskStates("src"), w.taskStates("sink")
		return len(s) == 1 && s[0] == "RUNNING" && len(k) == 1 && k[0] == "RUNNING"
	})
	for _, pid := range pids {
		deadline := time.Now().Add(10 * time.Second)
		for {
			status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
			if err != nil {
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("killed plugin pid %d still exists (worker pid %d): %s", pid, w.cmd.Process.Pid, status)
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
}

// A connector's plugin.memory.limit.bytes is enforced: a plugin over it is
// killed, and the task shows FAILED with the reason until it runs again.
func TestConnectPluginOverItsMemoryLimitIsKilled(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	src := filepath.Join(t.TempDir(), "in.txt")
	if err := os.WriteFile(src, []byte("a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	w := startWorker(t, b.Addr(), connectPlugins(t))
	var answer map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "small", "config": map[string]string{
		"connector.class": "FileStreamSource", "file": src, "topic": "small",
		"plugin.memory.limit.bytes": "1048576", // 1 MiB: below any process's resident set
	}}, &answer); code != 201 {
		t.Fatalf("POST: %d %v", code, answer)
	}
	waitFor(t, 60*time.Second, "a FAILED state naming the memory limit", func() bool {
		var st struct {
			Connector struct{ State, Trace string }   `json:"connector"`
			Tasks     []struct{ State, Trace string } `json:"tasks"`
		}
		w.call("GET", "/connectors/small/status", nil, &st)
		for _, s := range append(st.Tasks, st.Connector) {
			if s.State == "FAILED" && strings.Contains(strings.ToLower(s.Trace), "memory") {
				return true
			}
		}
		return false
	})
}
