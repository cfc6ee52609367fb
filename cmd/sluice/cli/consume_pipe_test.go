package cli

import (
	"strings"
	"sync"
	"syscall"
	"testing"
)

// closingReader takes n writes, then fails every later one with EPIPE, as
// a pipe does once "head -n" has exited.
type closingReader struct {
	mu     sync.Mutex
	n      int
	taken  strings.Builder
	failed int
}

func (w *closingReader) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.n == 0 {
		w.failed++
		return 0, syscall.EPIPE
	}
	w.n--
	w.taken.Write(p)
	return len(p), nil
}

// consume --group G | head -3: the group commits the three records the
// reader took, not everything fetched, and the command ends quietly with
// code 0.
func TestConsumeGroupCommitsOnlyWhatWasWritten(t *testing.T) {
	_, brokers := testCluster(t)
	seed(t, brokers, 200, 200, 200)
	out := &closingReader{n: 3}
	var stderr strings.Builder
	code := runConsume(testCtx(t), []string{"orders", "--brokers", brokers, "--group", "head"}, out, &stderr)
	if code != 0 || stderr.String() != "" {
		t.Fatalf("exit %d, stderr %q; want 0 and nothing", code, stderr.String())
	}
	if out.failed != 1 {
		t.Errorf("%d writes after the pipe closed, want the one that found out", out.failed)
	}
	if lines := strings.Count(out.taken.String(), "\n"); lines != 3 {
		t.Errorf("the reader took %d lines, want 3", lines)
	}
	total := int64(0)
	for _, o := range committedOffsets(t, brokers, "head") {
		total += o
	}
	if total != 3 {
		t.Errorf("the group committed %d records, want the 3 written", total)
	}
}
