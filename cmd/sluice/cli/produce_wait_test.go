package cli

import (
	"context"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// silentProduce makes the fake cluster answer every Produce without its
// partitions, so the client re-sends forever and acknowledges nothing: a
// broker that went away, as far as the producer's buffer is concerned.
func silentProduce(c *kfake.Cluster) {
	c.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
		c.KeepControl()
		return req.ResponseKind(), nil, true
	})
}

func smallBuffer(t *testing.T, n int64) {
	old := produceMaxBuffered
	produceMaxBuffered = n
	t.Cleanup(func() { produceMaxBuffered = old })
}

// With the send buffer full and nothing acknowledged, Produce would wait
// for room forever; the wait is bounded by --timeout, the rest of the
// input is left unread, and the command fails with the counts.
func TestProduceFullBufferEnds(t *testing.T) {
	c, brokers := testCluster(t)
	silentProduce(c)
	smallBuffer(t, 2)
	start := time.Now()
	r := produceLines(t, brokers, strings.Repeat("x\n", 50), "--timeout", "300ms")
	if d := time.Since(start); d > 6*time.Second {
		t.Errorf("took %s", d)
	}
	for _, want := range []string{
		`sluice: produced 0 of 3 records to "orders"`,
		"no room in the send buffer within 1s",
		"the rest of the input was not read",
	} {
		if r.code != exitError || !strings.Contains(r.stderr, want) {
			t.Errorf("exit %d, stderr %q; want 1 and %q", r.code, r.stderr, want)
		}
	}
}

// The first Ctrl-C ends a Produce blocked on a full buffer and starts the
// flush; a second one ends the flush; the counts are printed either way.
func TestProduceInterruptedWhileBlocked(t *testing.T) {
	c, brokers := testCluster(t)
	silentProduce(c)
	smallBuffer(t, 2)
	pr, pw := io.Pipe()
	t.Cleanup(func() { pw.Close() })
	go io.WriteString(pw, strings.Repeat("x\n", 10))

	abort := make(chan struct{})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), abortKey{}, (<-chan struct{})(abort)))
	defer cancel()
	done := make(chan result, 1)
	go func() {
		done <- runIO(ctx, pr, "produce", "orders", "--brokers", brokers, "--timeout", "30s")
	}()
	time.Sleep(300 * time.Millisecond)
	cancel()
	select {
	case r := <-done:
		t.Fatalf("ended before the second interrupt, though nothing was acknowledged: exit %d, %q", r.code, r.stderr)
	case <-time.After(300 * time.Millisecond):
	}
	close(abort)
	select {
	case r := <-done:
		want := `interrupted: produced 0 of 3 records to "orders"; 1 failed, the first with: interrupted while waiting for room in the send buffer; 2 not acknowledged within 30s; the rest of the input was not read`
		if r.code != 130 || strings.TrimSpace(r.stderr) != want {
			t.Errorf("exit %d, stderr %q; want 130 and %q", r.code, r.stderr, want)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("produce did not stop after the second interrupt")
	}
}

// A missing topic is created where the broker allows it, as kcat does;
// where it does not, the error says how to create it.
func TestProduceCreatesMissingTopic(t *testing.T) {
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.AllowAutoTopicCreation(), kfake.DefaultNumPartitions(2))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	r := runIO(testCtx(t), strings.NewReader("a\nb\n"), "produce", "newtopic", "--brokers", brokers)
	if r.code != 0 || r.stderr != "produced 2 records to \"newtopic\"\n" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	if recs := readTopic(t, brokers, "newtopic"); len(recs) != 2 {
		t.Errorf("%d records in the new topic, want 2", len(recs))
	}

	_, strict := testCluster(t) // no auto-creation
	r = runIO(testCtx(t), strings.NewReader("a\n"), "produce", "nope", "--brokers", strict)
	checkRuntimeFailure(t, r, `topic "nope" not found, and the broker does not create topics on first use (auto.create.topics.enable=false); create it with: sluice topic create nope`)
}

// More input than the send buffer holds, against a broker that answers:
// every line is acknowledged. The wait for room used to hand the client a
// context that ended when Produce returned, and the client fails a whole
// buffered batch when its first record's context ends: `seq 1 20000 |
// sluice produce t` lost thousands of records "interrupted while waiting
// for room in the send buffer".
func TestProduceMoreThanTheBufferHolds(t *testing.T) {
	_, brokers := testCluster(t)
	smallBuffer(t, 5)
	const n = 500
	r := produceLines(t, brokers, strings.Repeat("x\n", n))
	if want := "produced 500 records to \"orders\"\n"; r.code != 0 || r.stderr != want {
		t.Fatalf("exit %d, stderr %q; want 0 and %q", r.code, r.stderr, want)
	}
	if got := len(readTopic(t, brokers, "orders")); got != n {
		t.Fatalf("%d records in the topic, want %d", got, n)
	}
}
