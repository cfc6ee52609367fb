package itest

import (
	"bufio"
	"bytes"
	"io"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// cliProc is a sluice client command running as its own process, with its
// standard input held open by the test.
type cliProc struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr bytes.Buffer
	done   chan struct{}
}

func startCLI(t *testing.T, addr string, args ...string) *cliProc {
	t.Helper()
	p := &cliProc{cmd: exec.Command(sluiceBin, append(args, "--brokers", addr)...), done: make(chan struct{})}
	var err error
	if p.stdin, err = p.cmd.StdinPipe(); err != nil {
		t.Fatal(err)
	}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.done })
	return p
}

// wait returns the exit code, failing the test if the command is still
// running after d.
func (p *cliProc) wait(t *testing.T, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("%v still running after %s; stderr %q", p.cmd.Args, d, p.stderr.String())
		return -1
	}
}

// Producing to a topic that does not exist creates it, as the broker
// allows by default (auto.create.topics.enable).
func TestCLIProduceCreatesTopic(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	p := startCLI(t, b.Addr(), "produce", "fresh")
	io.WriteString(p.stdin, "one\ntwo\n")
	p.stdin.Close()
	if code := p.wait(t, 20*time.Second); code != 0 || p.stderr.String() != "produced 2 records to \"fresh\"\n" {
		t.Fatalf("exit %d, stderr %q", code, p.stderr.String())
	}
	if got := consumeAll(t, b.Addr(), "fresh"); len(got) != 2 {
		t.Errorf("%d records in the new topic, want 2", len(got))
	}
}

// The first Ctrl-C stops reading, waits for what was read, prints the
// counts and exits 130, however much input is still to come.
func TestCLIProduceInterrupted(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "ctrl-c", 1, nil)
	p := startCLI(t, b.Addr(), "produce", "ctrl-c")
	io.WriteString(p.stdin, "a\nb\nc\n")
	if !testkit.Poll(10*time.Second, func() bool { return endOffsets(t, b.Addr(), "ctrl-c")[0] == 3 }) {
		t.Fatal("the three lines were not produced")
	}
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	want := "interrupted: produced 3 of 3 records to \"ctrl-c\"; 0 failed; the rest of the input was not read\n"
	if code := p.wait(t, 10*time.Second); code != 130 || p.stderr.String() != want {
		t.Errorf("exit %d, stderr %q; want 130 and %q", code, p.stderr.String(), want)
	}
}

// When the broker goes away, produce ends within its --timeout with exit 1
// and says how many records were not acknowledged.
func TestCLIProduceBrokerGone(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "gone", 1, nil)
	p := startCLI(t, b.Addr(), "produce", "gone", "--timeout", "2s")
	io.WriteString(p.stdin, "before\n")
	if !testkit.Poll(10*time.Second, func() bool { return endOffsets(t, b.Addr(), "gone")[0] == 1 }) {
		t.Fatal("the first line was not produced")
	}
	b.Kill()
	io.WriteString(p.stdin, strings.Repeat("after\n", 100))
	p.stdin.Close()
	start := time.Now()
	code := p.wait(t, 20*time.Second)
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %s after the input ended, with --timeout 2s", d)
	}
	if code != 1 || !strings.Contains(p.stderr.String(), `sluice: produced 1 of 101 records to "gone"`) {
		t.Errorf("exit %d, stderr %q", code, p.stderr.String())
	}
}

// consume --group G | head -3 commits about what head read, not all that
// was fetched, and ends quietly with code 0 when head closes the pipe.
func TestCLIConsumeGroupIntoHead(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "piped", 1, nil)
	cl := newClient(t, b.Addr())
	value := bytes.Repeat([]byte("v"), 1024)
	var recs []*kgo.Record
	for range 1010 {
		recs = append(recs, &kgo.Record{Topic: "piped", Value: value})
	}
	produceSync(t, cl, recs...)

	cmd := exec.Command(sluiceBin, "consume", "piped", "--group", "head", "--brokers", b.Addr())
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	br := bufio.NewReader(out)
	for i := range 3 {
		if _, err := br.ReadString('\n'); err != nil {
			t.Fatalf("line %d: %v", i, err)
		}
	}
	out.Close() // head exits
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil || stderr.Len() > 0 {
			t.Errorf("consume ended with %v, stderr %q; want exit 0 and nothing", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatal("consume did not stop when its output closed")
	}
	offs, err := admin(t, b.Addr()).FetchOffsets(testCtx(t, 10*time.Second), "head")
	if err != nil {
		t.Fatal(err)
	}
	o, _ := offs.Lookup("piped", 0)
	// What is written into a pipe before the reader exits is written, so
	// up to a pipe buffer (64 KiB, here 64 records) more than the 3 read
	// may be committed; never the whole topic.
	if o.At < 3 || o.At > 100 {
		t.Errorf("committed offset %d, want 3 to ~70 (what reached the pipe), not all %d fetched", o.At, len(recs))
	}
}
