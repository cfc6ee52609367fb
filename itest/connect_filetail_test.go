package itest

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// filetailWriter appends numbered lines to dir/app.log at a steady rate and
// rotates the file as logrotate does, alternating rename-and-create (the
// writer goes on with its old handle a moment, as an application does
// until it reopens its log) and copytruncate (the copy and truncation done
// while the writer waits, as logrotate cannot: lines written between its
// copy and its truncation are lost by copytruncate itself).
type filetailWriter struct {
	t         *testing.T
	dir       string
	mu        sync.Mutex
	next      int
	rotations int
	done      chan struct{}
}

func (w *filetailWriter) path() string { return filepath.Join(w.dir, "app.log") }

// line is line i, about 100 bytes.
func filetailLine(i int) string { return fmt.Sprintf("line-%07d %s", i, strings.Repeat("x", 86)) }

func (w *filetailWriter) run(total, perSecond, rotateEvery int) {
	defer close(w.done)
	f, err := os.OpenFile(w.path(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		w.t.Error(err)
		return
	}
	defer func() { _ = f.Close() }()
	const burst = 20
	tick := time.Second * burst / time.Duration(perSecond)
	start := time.Now()
	for i := 0; i < total; i += burst {
		var sb strings.Builder
		for j := i; j < min(i+burst, total); j++ {
			sb.WriteString(filetailLine(j) + "\n")
		}
		if _, err := f.WriteString(sb.String()); err != nil {
			w.t.Error(err)
			return
		}
		w.mu.Lock()
		w.next = min(i+burst, total)
		w.mu.Unlock()
		if i > 0 && i%rotateEvery == 0 {
			if f, err = w.rotate(f); err != nil {
				w.t.Error(err)
				return
			}
		}
		if d := time.Until(start.Add(tick * time.Duration(i/burst+1))); d > 0 {
			time.Sleep(d)
		}
	}
}

func (w *filetailWriter) rotate(f *os.File) (*os.File, error) {
	w.rotations++
	rotated := filepath.Join(w.dir, fmt.Sprintf("app.log.%d", w.rotations))
	if w.rotations%2 == 1 { // rename and create
		if err := os.Rename(w.path(), rotated); err != nil {
			return f, err
		}
		time.Sleep(20 * time.Millisecond) // still writing to the old file
		return os.OpenFile(w.path(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	}
	// copytruncate
	src, err := os.Open(w.path())
	if err != nil {
		return f, err
	}
	defer func() { _ = src.Close() }()
	dst, err := os.Create(rotated)
	if err != nil {
		return f, err
	}
	if _, err := io.Copy(dst, src); err != nil {
		return f, err
	}
	if err := dst.Close(); err != nil {
		return f, err
	}
	return f, f.Truncate(0)
}

func (w *filetailWriter) written() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.next
}

// filetailTopicCounts consumes topic until it holds every line below n
// (or the time runs out), then up to its end offsets, and returns how
// often each value came.
func filetailTopicCounts(t *testing.T, addr, topic string, n int, within time.Duration) map[string]int {
	t.Helper()
	cl := newClient(t, addr, kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	ctx := testCtx(t, within)
	seen := map[string]int{}
	next := map[int32]int64{}
	poll := func() {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			seen[string(r.Value)]++
			next[r.Partition] = r.Offset + 1
		})
	}
	for len(seen) < n && ctx.Err() == nil {
		poll()
	}
	// The rest of the topic: duplicates written after the last new line.
	for p, end := range endOffsets(t, addr, topic) {
		for next[p] < end && ctx.Err() == nil {
			poll()
		}
	}
	return seen
}

// Log lines written under load, through rotation of both kinds, reach the
// topic while the plugin and then the worker are killed with SIGKILL:
// none is missing, and lines come twice only within the window whose
// offsets were not committed yet (offset.flush.interval.ms=500) at each
// kill.
func TestConnectFileTailRotationAndKill9LosesNothing(t *testing.T) {
	const (
		total       = 60000
		rate        = 5000 // lines a second: 12 s of writing
		rotateEvery = 4000
	)
	testStart := time.Now()
	b := startBroker(t, "std", t.TempDir())
	plugins := connectPlugins(t)
	dir := t.TempDir()
	w := startWorker(t, b.Addr(), plugins)
	t.Logf("broker and worker up after %v", time.Since(testStart).Round(time.Millisecond))
	cfg := map[string]string{
		"connector.class": "FileTailSource", "topic": "logs",
		"include": filepath.Join(dir, "app.log*"), "glob_minimum_cooldown_ms": "200", "rotate_wait_secs": "1",
		"key.converter": stringConverter, "value.converter": stringConverter,
	}
	var answer map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "tail", "config": cfg}, &answer); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, answer)
	}
	wr := &filetailWriter{t: t, dir: dir, done: make(chan struct{})}
	go wr.run(total, rate, rotateEvery)
	t.Cleanup(func() { <-wr.done })

	waitFor(t, 60*time.Second, "the task RUNNING", func() bool {
		s := w.taskStates("tail")
		return len(s) == 1 && s[0] == "RUNNING"
	})
	waitFor(t, 30*time.Second, "a fifth of the lines written", func() bool { return wr.written() > total/5 })
	pids := pluginPids(plugins)
	if len(pids) == 0 {
		t.Fatal("no plugin process")
	}
	for _, pid := range pids {
		_ = syscall.Kill(pid, syscall.SIGKILL)
	}
	t.Logf("killed the plugin at line %d, %v in", wr.written(), time.Since(testStart).Round(time.Millisecond))
	waitFor(t, 30*time.Second, "the plugin restarted", func() bool {
		p := pluginPids(plugins)
		return len(p) > 0 && p[0] != pids[0]
	})
	waitFor(t, 30*time.Second, "three fifths of the lines written", func() bool { return wr.written() > 3*total/5 })
	w.kill9()
	t.Logf("killed the worker at line %d", wr.written())
	waitFor(t, 5*time.Second, "the plugin to die with its worker", func() bool { return len(pluginPids(plugins)) == 0 })
	w2 := startWorker(t, b.Addr(), plugins)
	defer func() {
		stopping := time.Now()
		w2.stop()
		t.Logf("worker stopped in %v", time.Since(stopping).Round(time.Millisecond))
	}()
	<-wr.done
	t.Logf("%d lines written, %d rotations", total, wr.rotations)

	began := time.Now()
	waitFor(t, 60*time.Second, "the task RUNNING on the new worker", func() bool {
		s := w2.taskStates("tail")
		return len(s) == 1 && s[0] == "RUNNING"
	})
	t.Logf("running again after %v", time.Since(began).Round(time.Millisecond))
	seen := filetailTopicCounts(t, b.Addr(), "logs", total, 90*time.Second)
	t.Logf("every line consumed after %v", time.Since(began).Round(time.Millisecond))
	missing, dups := 0, 0
	for i := range total {
		c := seen[filetailLine(i)]
		if c == 0 {
			if missing < 5 {
				t.Errorf("line %d never reached the topic", i)
			}
			missing++
		}
		if c > 1 {
			dups += c - 1
		}
	}
	if missing > 0 {
		t.Fatalf("%d of %d lines missing (%d distinct values in the topic)", missing, total, len(seen))
	}
	if len(seen) != total {
		t.Errorf("the topic holds %d distinct values, want the %d lines written", len(seen), total)
	}
	t.Logf("%d lines, %d read twice after two kills", total, dups)
	// Both kinds of rotation were seen as such by the connector.
	logs := w.Log() + w2.Log()
	for _, want := range []string{"why=renamed", "why=\"truncated: "} {
		if !strings.Contains(logs, want) {
			t.Errorf("the workers' logs never say %s", want)
		}
	}
	// Each kill may repeat what was read but not committed: at most a
	// second's worth of lines (the flush interval is 0.5 s).
	if dups > 2*rate {
		t.Errorf("%d lines repeated: more than a second of input per kill (%d lines)", dups, 2*rate)
	}
}
