package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
)

// fetchOffsets returns the offsets of the metadata fetches f received.
func fetchOffsets(f *fakeController) []int64 {
	var out []int64
	for _, r := range f.seen(kmsg.Fetch) {
		out = append(out, r.(*kmsg.FetchRequest).Topics[0].Partitions[0].FetchOffset)
	}
	return out
}

// caughtUp waits until l's copy reaches the controller's end.
func caughtUp(t *testing.T, f *fakeController, l *Link) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, "the copy to catch up", func() bool { return l.Image().Offset() == f.store.End() })
}

func TestFollowAppliesInOrderAndResumesAfterADroppedConnection(t *testing.T) {
	f := newFakeController(t)
	createTopic(t, f, "before", []int32{1})
	l := dial(t, f, 2, nil)
	if _, ok := l.Image().Topic("before"); !ok {
		t.Fatal("the first snapshot lacks a topic committed before Dial")
	}
	var mu sync.Mutex
	var changes []int64 // the copy's offset at each change applied
	l.OnChange(func() {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, l.Image().Offset())
	})
	l.Start()

	// Three changes, each its own batch, arrive in order.
	for i := range 3 {
		createTopic(t, f, fmt.Sprintf("t%d", i), []int32{1})
	}
	caughtUp(t, f, l)
	for i := range 3 {
		if _, ok := l.Image().Topic(fmt.Sprintf("t%d", i)); !ok {
			t.Errorf("topic t%d missing from the copy", i)
		}
	}

	// The connection drops in the middle of a fetch; the link reconnects
	// and asks again from where its copy ends: nothing skipped, nothing
	// applied twice.
	resumeAt := l.Image().Offset()
	var dropped atomic.Bool
	f.on(kmsg.Fetch, func(kmsg.Request) (kmsg.Response, bool) {
		return nil, dropped.CompareAndSwap(false, true)
	})
	testkit.Eventually(t, 5*time.Second, "a fetch to be dropped", dropped.Load)
	before := len(fetchOffsets(f))
	createTopic(t, f, "after", []int32{1})
	caughtUp(t, f, l)
	if _, ok := l.Image().Topic("after"); !ok {
		t.Error("topic committed after the drop is missing from the copy")
	}
	after := fetchOffsets(f)[before-1:]
	if after[0] != resumeAt {
		t.Errorf("the dropped fetch asked from %d, want %d", after[0], resumeAt)
	}
	for _, off := range after {
		if off != resumeAt && off != f.store.End() {
			t.Errorf("after the drop the link fetched from %d; want %d (its copy's end), then %d", off, resumeAt, f.store.End())
		}
	}

	// Every fetch asked from the end of what the copy held, and the
	// copy's offset only moved forward, one change at a time.
	testkit.Eventually(t, 5*time.Second, "the last change's callback", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(changes) > 0 && changes[len(changes)-1] == f.store.End()
	})
	mu.Lock()
	defer mu.Unlock()
	last := int64(-1)
	for _, off := range changes {
		if off <= last {
			t.Errorf("the copy went from offset %d to %d", last, off)
		}
		last = off
	}
	if len(f.seen(kmsg.FetchSnapshot)) != 1 {
		t.Errorf("%d snapshot fetches; only Dial's was needed", len(f.seen(kmsg.FetchSnapshot)))
	}
}

func TestFollowFallsBackToASnapshotWhenTheOffsetIsGone(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	from := l.Image().Offset()
	// While the link is not following, the controller commits and folds
	// its log into a snapshot: the link's offset is no longer served.
	for i := range 3 {
		createTopic(t, f, fmt.Sprintf("t%d", i), []int32{1})
	}
	f.setLogStart(f.store.End())
	l.Start()
	caughtUp(t, f, l)
	for i := range 3 {
		if _, ok := l.Image().Topic(fmt.Sprintf("t%d", i)); !ok {
			t.Errorf("topic t%d missing from the copy", i)
		}
	}
	if n := len(f.seen(kmsg.FetchSnapshot)); n != 2 {
		t.Errorf("%d snapshot fetches, want Dial's and the fallback's", n)
	}
	if offs := fetchOffsets(f); len(offs) == 0 || offs[0] != from {
		t.Errorf("fetches from %v, want the first from %d", offs, from)
	}
	// From the snapshot on it follows the log again.
	f.setLogStart(0)
	createTopic(t, f, "later", []int32{1})
	caughtUp(t, f, l)
	if _, ok := l.Image().Topic("later"); !ok {
		t.Error("a topic committed after the snapshot is missing")
	}
}

func TestSnapshotReadInChunks(t *testing.T) {
	f := newFakeController(t)
	for i := range 50 {
		createTopic(t, f, fmt.Sprintf("topic-with-a-long-name-%03d", i), []int32{1})
	}
	// Chunks of 100 bytes: many FetchSnapshot requests for one snapshot.
	f.on(kmsg.FetchSnapshot, func(r kmsg.Request) (kmsg.Response, bool) {
		r.(*kmsg.FetchSnapshotRequest).MaxBytes = 100
		return nil, false
	})
	l := dial(t, f, 2, nil)
	if got := len(l.Image().TopicNames()); got != 50 {
		t.Errorf("the copy has %d topics, want 50", got)
	}
	if n := len(f.seen(kmsg.FetchSnapshot)); n < 10 {
		t.Errorf("%d snapshot requests for a snapshot in 100-byte chunks", n)
	}
}

func TestForwardReturnsTheControllersAnswer(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	register(t, l, 2, 1)

	req := kmsg.NewPtrCreateTopicsRequest()
	for _, name := range []string{"fresh", "fresh"} {
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, 1, 1
		req.Topics = append(req.Topics, rt)
	}
	kresp, err := l.Forward(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	resp := kresp.(*kmsg.CreateTopicsResponse)
	if len(resp.Topics) != 2 || resp.Topics[0].ErrorCode != 0 || resp.Topics[1].ErrorCode != kerr.TopicAlreadyExists.Code {
		t.Fatalf("answer %+v; want the controller's: created, then TOPIC_ALREADY_EXISTS", resp.Topics)
	}
	// The answer comes once this node's copy holds the change, though
	// nothing follows the controller yet.
	mt, ok := l.Image().Topic("fresh")
	if !ok || mt.ID != resp.Topics[0].TopicID {
		t.Errorf("the copy has topic fresh=%v (ok=%v), want id %v", mt, ok, resp.Topics[0].TopicID)
	}

	// The same through an Envelope, as the broker creates its own
	// internal topics.
	inner := kmsg.NewPtrCreateTopicsRequest()
	inner.SetVersion(5)
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "enveloped", 2, 1
	inner.Topics = append(inner.Topics, rt)
	kresp, err = l.ForwardAsBroker(context.Background(), inner)
	if err != nil {
		t.Fatal(err)
	}
	if er := kresp.(*kmsg.CreateTopicsResponse); len(er.Topics) != 1 || er.Topics[0].ErrorCode != 0 {
		t.Fatalf("enveloped answer %+v", er.Topics)
	}
	if mt, ok := l.Image().Topic("enveloped"); !ok || len(mt.Partitions) != 2 {
		t.Errorf("the copy lacks the enveloped topic's two partitions")
	}
	if len(f.seen(kmsg.Envelope)) != 1 {
		t.Error("ForwardAsBroker did not send an Envelope")
	}
}

func TestForwardToAControllerThatIsDown(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	f.stop()
	req := kmsg.NewPtrCreateTopicsRequest()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := l.Forward(ctx, req)
	if err == nil {
		t.Fatal("forwarded to a controller that is down")
	}
	if msg := err.Error(); !strings.Contains(msg, "forward CreateTopics to controller 1") {
		t.Errorf("error %q does not say what failed and where", msg)
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		t.Errorf("a transport failure reads as the controller's answer %v", ke)
	}
	if time.Since(start) > 4*time.Second {
		t.Error("a refused connection took until the deadline")
	}
	if _, err := l.ForwardAsBroker(ctx, kmsg.NewPtrCreateTopicsRequest()); err == nil || !strings.Contains(err.Error(), "controller 1") {
		t.Errorf("ForwardAsBroker: %v", err)
	}
}

func TestPreviousBrokerEpochKeepsACleanRestartEligible(t *testing.T) {
	// min.insync.replicas=2 on two replicas: a replica that leaves the
	// ISR stays an eligible leader (ELR) unless it may have lost records.
	setup := func(t *testing.T) (*fakeController, int64) {
		f := newFakeController(t)
		f.pol = controller.Policy{MinInsyncReplicas: 2}
		f.commit(func(s *controller.State) ([]controller.Record, error) {
			return s.PlanRegisterBroker(controller.BrokerRegistration{ID: 3, Incarnation: incarnation(3, 1), PreviousBrokerEpoch: -1}, false, f.pol)
		})
		b3, _ := f.store.Image().Broker(3)
		end := f.store.End()
		f.commit(func(s *controller.State) ([]controller.Record, error) {
			_, rs, err := s.PlanBrokerHeartbeat(controller.Heartbeat{BrokerID: 3, BrokerEpoch: b3.Epoch, MetadataOffset: end}, nil, f.pol)
			return rs, err
		})
		l := dial(t, f, 2, nil)
		register(t, l, 2, 1)
		l.StartHeartbeats(time.Hour)
		testkit.Eventually(t, 5*time.Second, "unfenced", func() bool { return !l.Fenced() })
		createTopic(t, f, "t", []int32{2, 3})
		// A clean shutdown: leadership and ISR place go to broker 3, and
		// broker 2 stays eligible.
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := l.ControlledShutdown(ctx, 10*time.Millisecond); err != nil {
			t.Fatal(err)
		}
		p, _ := f.store.Image().Partition("t", 0)
		if p.Leader != 3 || fmt.Sprint(p.ISR, p.ELR) != "[3] [2]" {
			t.Fatalf("after the shutdown: leader %d isr %v elr %v; want 3, [3], [2]", p.Leader, p.ISR, p.ELR)
		}
		epoch := l.BrokerEpoch()
		_ = l.Close()
		return f, epoch
	}
	t.Run("clean", func(t *testing.T) {
		f, epoch := setup(t)
		l := dial(t, f, 2, nil)
		l.SetPreviousBrokerEpoch(epoch)
		register(t, l, 2, 2)
		if got := f.seen(kmsg.BrokerRegistration); got[len(got)-1].(*kmsg.BrokerRegistrationRequest).PreviousBrokerEpoch != epoch {
			t.Errorf("the registration did not carry the previous epoch %d", epoch)
		}
		if p, _ := l.Image().Partition("t", 0); fmt.Sprint(p.ISR, p.ELR, p.LastKnownELR) != "[3] [2] []" {
			t.Errorf("after a clean restart: isr %v elr %v last known %v; want [3] [2] []", p.ISR, p.ELR, p.LastKnownELR)
		}
	})
	t.Run("unclean", func(t *testing.T) {
		f, _ := setup(t)
		l := dial(t, f, 2, nil)
		register(t, l, 2, 2) // no previous epoch: the last stop was not clean
		if got := f.seen(kmsg.BrokerRegistration); got[len(got)-1].(*kmsg.BrokerRegistrationRequest).PreviousBrokerEpoch != -1 {
			t.Error("the registration carried a previous epoch it was not given")
		}
		if p, _ := l.Image().Partition("t", 0); fmt.Sprint(p.ISR, p.ELR, p.LastKnownELR) != "[3] [] [2]" {
			t.Errorf("after an unclean restart: isr %v elr %v last known %v; want [3] [] [2]", p.ISR, p.ELR, p.LastKnownELR)
		}
	})
	t.Run("stale", func(t *testing.T) {
		f, epoch := setup(t)
		l := dial(t, f, 2, nil)
		l.SetPreviousBrokerEpoch(epoch - 1) // a marker from an older registration
		register(t, l, 2, 2)
		if p, _ := l.Image().Partition("t", 0); fmt.Sprint(p.ELR) != "[]" {
			t.Errorf("a previous epoch that is not the registered one kept elr %v", p.ELR)
		}
	})
}

// WaitCaughtUp's end-offset probe does not queue behind the follow loop's
// long poll, parked at an idle controller for its whole max wait: a
// connection's requests are answered in order, and every forwarded
// request took that wait longer (500 ms in a broker).
func TestWaitCaughtUpNotBehindTheLongPoll(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	register(t, l, 2, 1)
	l.Start()
	caughtUp(t, f, l)
	const parked = 2 * time.Second
	var held atomic.Int32
	f.on(kmsg.Fetch, func(r kmsg.Request) (kmsg.Response, bool) {
		if r.(*kmsg.FetchRequest).MaxWaitMillis > 0 {
			held.Add(1)
			time.Sleep(parked) // an idle controller holds the long poll
		}
		return nil, false
	})
	// Let the follow loop park a fetch, then ask.
	testkit.Eventually(t, 5*time.Second, "a parked long poll", func() bool { return held.Load() > 0 })
	start := time.Now()
	if err := l.WaitCaughtUp(context.Background()); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > parked/2 {
		t.Fatalf("WaitCaughtUp at an idle controller took %v: behind the long poll", took)
	}
}
