package broker

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/isr"
)

// fakeAlterController records each request the batcher sends and holds it
// until the test releases it.
type fakeAlterController struct {
	mu       sync.Mutex
	requests [][]controller.AlterPartitionItem
	inFlight int
	maxIn    int
	arrived  chan int // the size of each request, as it arrives
	release  chan struct{}
}

func newFakeAlterController() *fakeAlterController {
	return &fakeAlterController{arrived: make(chan int, 100), release: make(chan struct{}, 100)}
}

func (f *fakeAlterController) send(items []controller.AlterPartitionItem) []isr.AlterResult {
	f.mu.Lock()
	f.requests = append(f.requests, items)
	f.inFlight++
	f.maxIn = max(f.maxIn, f.inFlight)
	f.mu.Unlock()
	f.arrived <- len(items)
	<-f.release
	f.mu.Lock()
	f.inFlight--
	f.mu.Unlock()
	out := make([]isr.AlterResult, len(items))
	for i, it := range items {
		out[i] = isr.AlterResult{PartitionEpoch: it.PartitionEpoch + 1, LeaderEpoch: it.Partition} // echoes which item it answers
	}
	return out
}

func alterItem(partition, partitionEpoch int32) controller.AlterPartitionItem {
	return controller.AlterPartitionItem{TopicID: controller.TopicID{1}, Partition: partition, PartitionEpoch: partitionEpoch}
}

func waitArrived(t *testing.T, f *fakeAlterController) int {
	t.Helper()
	select {
	case n := <-f.arrived:
		return n
	case <-time.After(10 * time.Second):
		t.Fatal("no AlterPartition request was sent")
		return 0
	}
}

// TestAlterBatcherSendsWhatWaitedInOneRequest: items submitted while a
// request is out go together in the next one, one request at a time, and
// each waiter gets the answer to its own item.
func TestAlterBatcherSendsWhatWaitedInOneRequest(t *testing.T) {
	f := newFakeAlterController()
	a := newAlterBatcher(f.send)
	results := make([]isr.AlterResult, 50)
	var wg sync.WaitGroup
	submit := func(i int) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = a.submit(context.Background(), alterItem(int32(i), 7))
		}()
	}
	submit(0)
	if n := waitArrived(t, f); n != 1 {
		t.Fatalf("first request carried %d items, want 1", n)
	}
	for i := 1; i < 50; i++ {
		submit(i)
	}
	// All 49 are queued behind the request out before it returns.
	deadline := time.Now().Add(10 * time.Second)
	for {
		a.mu.Lock()
		n := len(a.queue)
		a.mu.Unlock()
		if n == 49 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d items queued, want 49", n)
		}
		time.Sleep(time.Millisecond)
	}
	f.release <- struct{}{}
	if n := waitArrived(t, f); n != 49 {
		t.Fatalf("second request carried %d items, want the 49 that waited", n)
	}
	f.release <- struct{}{}
	wg.Wait()
	for i, r := range results {
		if r.Err != nil || r.LeaderEpoch != int32(i) || r.PartitionEpoch != 8 {
			t.Errorf("waiter %d got %+v, want the answer to its own item", i, r)
		}
	}
	if f.maxIn != 1 {
		t.Errorf("%d requests were out at once, want 1", f.maxIn)
	}
}

// TestAlterBatcherReplacesAnUnsentItemOfTheSamePartition: a request never
// names a partition twice; the newer item takes the older's place, whose
// waiter is told it was not attempted.
func TestAlterBatcherReplacesAnUnsentItemOfTheSamePartition(t *testing.T) {
	f := newFakeAlterController()
	a := newAlterBatcher(f.send)
	go a.submit(context.Background(), alterItem(9, 1))
	waitArrived(t, f)
	older := make(chan isr.AlterResult, 1)
	go func() { older <- a.submit(context.Background(), alterItem(3, 1)) }()
	for {
		a.mu.Lock()
		n := len(a.queue)
		a.mu.Unlock()
		if n == 1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	newer := make(chan isr.AlterResult, 1)
	go func() { newer <- a.submit(context.Background(), alterItem(3, 2)) }()
	r := <-older
	if !errors.Is(r.Err, kerr.OperationNotAttempted) {
		t.Fatalf("the replaced item got %v, want OPERATION_NOT_ATTEMPTED", r.Err)
	}
	f.release <- struct{}{}
	if n := waitArrived(t, f); n != 1 {
		t.Fatalf("the next request carried %d items, want only the newer one", n)
	}
	f.release <- struct{}{}
	if r := <-newer; r.Err != nil || r.PartitionEpoch != 3 {
		t.Fatalf("the newer item got %+v, want the answer to partition epoch 2", r)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if got := f.requests[1][0].PartitionEpoch; got != 2 {
		t.Fatalf("sent partition epoch %d, want the newer item's 2", got)
	}
}

// TestAlterBatcherSkipsAbandonedItemsAndSplitsLargeBatches: an item whose
// waiter gave up is not sent, and no request carries more than
// maxAlterItems.
func TestAlterBatcherSkipsAbandonedItemsAndSplitsLargeBatches(t *testing.T) {
	f := newFakeAlterController()
	a := newAlterBatcher(f.send)
	go a.submit(context.Background(), alterItem(-1, 1))
	waitArrived(t, f)
	ctx, cancel := context.WithCancel(context.Background())
	gone := make(chan isr.AlterResult, 1)
	go func() { gone <- a.submit(ctx, alterItem(-2, 1)) }()
	var wg sync.WaitGroup
	total := maxAlterItems + 10
	for i := range total {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := a.submit(context.Background(), alterItem(int32(i), 1)); r.Err != nil {
				t.Errorf("item %d: %v", i, r.Err)
			}
		}()
	}
	for {
		a.mu.Lock()
		n := len(a.queue)
		a.mu.Unlock()
		if n == total+1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	if r := <-gone; !errors.Is(r.Err, context.Canceled) {
		t.Fatalf("the abandoned waiter got %v", r.Err)
	}
	sent := 0
	for sent < total {
		f.release <- struct{}{}
		n := waitArrived(t, f)
		if n > maxAlterItems {
			t.Fatalf("a request carried %d items, more than %d", n, maxAlterItems)
		}
		sent += n
	}
	f.release <- struct{}{}
	wg.Wait()
	if sent != total {
		t.Fatalf("sent %d items, want %d (the abandoned one left out)", sent, total)
	}
}

// handledRequests is how many requests of api tb has answered, from its
// request histograms.
func handledRequests(t *testing.T, tb *testBroker, api string) uint64 {
	t.Helper()
	fams, err := tb.metrics.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range fams {
		if f.GetName() != "sluice_request_handle_seconds" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "api" && l.GetValue() == api {
					n += m.GetHistogram().GetSampleCount()
				}
			}
		}
	}
	return n
}

// createSpread creates topic with n partitions, every one on replicas.
func createSpread(t *testing.T, ctl *testBroker, topic string, n int32, replicas ...int32) {
	t.Helper()
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = topic, -1, -1
	for i := range n {
		ra := kmsg.NewCreateTopicsRequestTopicReplicaAssignment()
		ra.Partition, ra.Replicas = i, replicas
		rt.ReplicaAssignment = append(rt.ReplicaAssignment, ra)
	}
	req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
	resp := do[*kmsg.CreateTopicsResponse](ctl.raw(t), req, 7)
	if resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("create %s: error %d %v", topic, resp.Topics[0].ErrorCode, resp.Topics[0].ErrorMessage)
	}
}

// TestRejoinExpandsISRsInFewRequests: a broker that comes back is added
// to the ISR of every partition it follows, each by an AlterPartition
// item of that partition's leader; a leader elsewhere sends its items to
// the controller together, not one request per partition, and a leader on
// the controller's own node commits them together.
func TestRejoinExpandsISRsInFewRequests(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b3 := bs[0], bs[2]
	const n = 40
	createSpread(t, ctl, "ra", n, 2, 3) // led by broker 2, on the link
	createSpread(t, ctl, "rb", n, 2, 3)
	createSpread(t, ctl, "rc", n, 1, 3) // led by the controller's node
	full := func() bool {
		img := ctl.metaImage()
		for _, topic := range []string{"ra", "rb", "rc"} {
			for i := range int32(n) {
				if p, _ := img.Partition(topic, i); len(p.ISR) != 2 {
					return false
				}
			}
		}
		return true
	}
	testkit.Eventually(t, 20*time.Second, "every ISR full", full)
	stopLinked(t, ctl, b3)
	if full() {
		t.Fatal("broker 3 stopped but stayed in the ISRs")
	}
	before := handledRequests(t, ctl, "AlterPartition")
	b3 = startAgain(t, ctl, b3)
	testkit.Eventually(t, 30*time.Second, "broker 3 back in every ISR", full)
	// Without batching: one request per partition of "ra" and "rb".
	if got := handledRequests(t, ctl, "AlterPartition") - before; got > n/2 {
		t.Errorf("broker 2 sent %d AlterPartition requests to rejoin broker 3 to %d ISRs, want them batched", got, 2*n)
	}
	_ = b3
}
