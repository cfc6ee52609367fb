package controllerlink

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
)

// logLines records what a Link logs.
type logLines struct {
	mu    sync.Mutex
	lines []string // "LEVEL message"
}

func (h *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *logLines) WithAttrs([]slog.Attr) slog.Handler       { return h }
func (h *logLines) WithGroup(string) slog.Handler            { return h }
func (h *logLines) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.lines = append(h.lines, r.Level.String()+" "+r.Message)
	return nil
}

// count is how many lines were logged as line.
func (h *logLines) count(line string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, l := range h.lines {
		if l == line {
			n++
		}
	}
	return n
}

// dialQuorum links broker id to the voters fs, closing the link when the
// test ends.
func dialQuorum(t *testing.T, id int32, logs *logLines, fs ...*fakeController) *Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg := Config{NodeID: id, MaxWait: 50 * time.Millisecond, RequestTimeout: 300 * time.Millisecond}
	if logs != nil {
		cfg.Logger = slog.New(logs)
	}
	for _, f := range fs {
		cfg.Voters = append(cfg.Voters, f.voter())
	}
	l, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

// controllerIs waits until l reports controller id at epoch.
func controllerIs(t *testing.T, l *Link, id, epoch int32) {
	t.Helper()
	testkit.Eventually(t, 5*time.Second, fmt.Sprintf("controller %d at epoch %d", id, epoch), func() bool {
		gotID, gotEpoch := l.Controller()
		return gotID == id && gotEpoch == epoch
	})
}

// total counts the requests with key the fakes received together.
func total(key kmsg.Key, fs ...*fakeController) int {
	n := 0
	for _, f := range fs {
		n += len(f.seen(key))
	}
	return n
}

func TestFollowsTheActiveControllerAcrossMoves(t *testing.T) {
	fs := newFakeQuorum(t, 3)
	a, b, c := fs[0], fs[1], fs[2]
	a.setActive(1)
	logs := &logLines{}
	l := dialQuorum(t, 2, logs, a, b, c)
	var mu sync.Mutex
	var changes []int64
	l.OnChange(func() {
		mu.Lock()
		defer mu.Unlock()
		changes = append(changes, l.Image().Offset())
	})
	epoch := register(t, l, 2, 1)
	if a, b, c := len(a.seen(kmsg.BrokerRegistration)), len(b.seen(kmsg.BrokerRegistration)), len(c.seen(kmsg.BrokerRegistration)); a != 1 || b+c != 0 {
		t.Fatalf("registrations at voters 1,2,3: %d %d %d; want one, at the active voter 1", a, b, c)
	}
	if id, ep := l.Controller(); id != 1 || ep != 1 {
		t.Errorf("after the registration Controller() = (%d, %d), want (1, 1)", id, ep)
	}
	l.StartHeartbeats(20 * time.Millisecond)
	testkit.Eventually(t, 5*time.Second, "unfenced", func() bool { return !l.Fenced() })
	l.Start()
	topic := 0
	commit := func(n int) {
		for range n {
			createTopic(t, a, fmt.Sprintf("t%d", topic), []int32{1})
			topic++
		}
		caughtUp(t, a, l)
	}
	commit(3)
	// The fetches go at a version whose answer names the controller.
	for _, r := range a.seen(kmsg.Fetch) {
		if v := r.GetVersion(); v < 12 {
			t.Fatalf("metadata fetch v%d; CurrentLeader needs v12 or later", v)
		}
	}

	// Voter 3 becomes the controller at epoch 2; voter 1 steps down.
	// The link finds it through voter 2 and carries on from its own end.
	at := l.Image().Offset()
	a.setStandby(kerr.NotController.Code, -1, -1)
	c.setActive(2)
	controllerIs(t, l, 3, 2)
	commit(3)
	if offs := fetchOffsets(c); len(offs) == 0 || offs[0] != at {
		t.Errorf("voter 3's first fetch asked from %v, want %d (the copy's end at the move)", offs, at)
	}
	testkit.Eventually(t, 5*time.Second, "a heartbeat at voter 3", func() bool { return len(c.seen(kmsg.BrokerHeartbeat)) > 0 })
	pid, err := l.NextProducerID()
	if err != nil || len(c.seen(kmsg.AllocateProducerIDs)) != 1 {
		t.Fatalf("producer id %d, %v; voter 3 saw %d allocations, want 1", pid, err, len(c.seen(kmsg.AllocateProducerIDs)))
	}

	// Voter 3 dies; voter 2 takes over at epoch 3. The dead voter is
	// skipped, and so is voter 1, which is not the controller.
	c.stop()
	b.setActive(3)
	controllerIs(t, l, 2, 3)
	commit(2)
	testkit.Eventually(t, 5*time.Second, "a heartbeat at voter 2", func() bool { return len(b.seen(kmsg.BrokerHeartbeat)) > 0 })
	pid2, err := l.NextProducerID()
	if err != nil || pid2 <= pid || len(b.seen(kmsg.AllocateProducerIDs)) != 1 {
		t.Fatalf("producer id %d (after %d), %v; voter 2 saw %d allocations, want 1", pid2, pid, err, len(b.seen(kmsg.AllocateProducerIDs)))
	}
	if l.BrokerEpoch() != epoch {
		t.Errorf("broker epoch %d, want %d", l.BrokerEpoch(), epoch)
	}

	// Every change arrived once, in order: every topic is there, the
	// copy's offset only grew, and nothing needed a snapshot after Dial's.
	for i := range topic {
		if _, ok := l.Image().Topic(fmt.Sprintf("t%d", i)); !ok {
			t.Errorf("topic t%d missing", i)
		}
	}
	mu.Lock()
	for i := 1; i < len(changes); i++ {
		if changes[i] <= changes[i-1] {
			t.Errorf("the copy went from offset %d to %d", changes[i-1], changes[i])
		}
	}
	mu.Unlock()
	if n := total(kmsg.FetchSnapshot, a, b, c); n != 1 {
		t.Errorf("%d snapshot fetches; only Dial's was needed", n)
	}
	if n := logs.count("INFO following a new active controller"); n != 3 {
		t.Errorf("%d log lines for a new active controller, want 3 (1, then 3, then 2): %q", n, logs.lines)
	}
}

// deposedBatch is a metadata batch at offset from that creates topic
// name: valid on f's log as it is now, so that a copy at from would apply
// it if nothing stopped it.
func deposedBatch(t *testing.T, f *fakeController, from int64, name string) []byte {
	var rs []controller.Record
	errPlanned := errors.New("planned only")
	_, err := f.store.Commit(func(s *controller.State) ([]controller.Record, error) {
		var err error
		rs, err = s.PlanCreateTopic(controller.NewTopic{Name: name, ID: controller.NewTopicID(), Partitions: 1, ReplicationFactor: 1,
			Assignment: [][]int32{{1}}}, 1000)
		if err != nil {
			return nil, err
		}
		return nil, errPlanned
	})
	if !errors.Is(err, errPlanned) {
		t.Errorf("planning %s: %v", name, err)
	}
	raw, err := controller.EncodeBatches([]controller.Batch{{Offset: from, Records: rs}}, 0)
	if err != nil {
		t.Error(err)
	}
	return raw
}

func TestADeposedControllersAnswersAreNeverApplied(t *testing.T) {
	for _, staleEpoch := range []int32{3, -1} {
		t.Run(fmt.Sprintf("epoch %d", staleEpoch), func(t *testing.T) {
			fs := newFakeQuorum(t, 3)
			a, b, c := fs[0], fs[1], fs[2]
			a.setActive(5)
			l := dialQuorum(t, 2, nil, a, b, c)
			l.Start()
			createTopic(t, a, "before", []int32{1})
			caughtUp(t, a, l)
			controllerIs(t, l, 1, 5)

			// The batch the deposed voter 2 serves would apply to this
			// copy: check that on a copy of its own.
			snap, end, err := a.store.Snapshot()
			if err != nil {
				t.Fatal(err)
			}
			probe, err := controller.NewObserver(snap, 1)
			if err != nil {
				t.Fatal(err)
			}
			batches, err := controller.DecodeBatches(deposedBatch(t, a, end, "deposed"))
			if err != nil || probe.Apply(batches[0]) != nil {
				t.Fatalf("the deposed batch does not apply to a copy at %d: %v", end, err)
			}
			if _, ok := probe.Image().Topic("deposed"); !ok {
				t.Fatal("the deposed batch does not create its topic")
			}

			// Voter 1 steps down; voter 2 answers as the controller at
			// an epoch below 5, with a batch of its own.
			var deposedAnswers int
			var dmu sync.Mutex
			b.on(kmsg.Fetch, func(r kmsg.Request) (kmsg.Response, bool) {
				req := r.(*kmsg.FetchRequest)
				resp := req.ResponseKind().(*kmsg.FetchResponse)
				rt := kmsg.NewFetchResponseTopic()
				rt.Topic, rt.TopicID = req.Topics[0].Topic, req.Topics[0].TopicID
				p := kmsg.NewFetchResponseTopicPartition()
				from := req.Topics[0].Partitions[0].FetchOffset
				p.HighWatermark = from + 1
				p.RecordBatches = deposedBatch(t, a, from, "deposed")
				p.CurrentLeader.LeaderID, p.CurrentLeader.LeaderEpoch = 2, staleEpoch
				rt.Partitions = append(rt.Partitions, p)
				resp.Topics = append(resp.Topics, rt)
				dmu.Lock()
				deposedAnswers++
				dmu.Unlock()
				return resp, false
			})
			a.setStandby(kerr.NotController.Code, -1, -1)
			testkit.Eventually(t, 5*time.Second, "two answers from the deposed voter", func() bool {
				dmu.Lock()
				defer dmu.Unlock()
				return deposedAnswers >= 2
			})
			if _, ok := l.Image().Topic("deposed"); ok {
				t.Fatal("the copy applied a deposed controller's batch")
			}
			if id, epoch := l.Controller(); id != 1 || epoch != 5 {
				t.Errorf("Controller() = (%d, %d) after deposed answers, want (1, 5)", id, epoch)
			}

			// Voter 3 is elected at epoch 6: the link follows it.
			c.setActive(6)
			createTopic(t, c, "after", []int32{1})
			caughtUp(t, c, l)
			controllerIs(t, l, 3, 6)
			if _, ok := l.Image().Topic("after"); !ok {
				t.Error("topic committed by the new controller is missing")
			}
			if _, ok := l.Image().Topic("deposed"); ok {
				t.Error("the copy applied a deposed controller's batch")
			}
		})
	}
}

func TestDeadAndSilentVotersAreSkipped(t *testing.T) {
	fs := newFakeQuorum(t, 3)
	dead, silent, live := fs[0], fs[1], fs[2]
	dead.stop()
	// The silent voter takes connections but never answers.
	hang := make(chan struct{})
	silent.on(kmsg.ApiVersions, func(kmsg.Request) (kmsg.Response, bool) {
		<-hang
		return nil, true
	})
	t.Cleanup(func() { close(hang) }) // before the fakes stop: cleanups run last first
	live.setActive(1)
	start := time.Now()
	l := dialQuorum(t, 2, nil, dead, silent, live)
	if took := time.Since(start); took > 3*time.Second {
		t.Errorf("Dial took %v past a dead and a silent voter", took)
	}
	if len(live.seen(kmsg.FetchSnapshot)) == 0 {
		t.Fatal("the snapshot did not come from the live voter")
	}
	register(t, l, 2, 1)
	if len(live.seen(kmsg.BrokerRegistration)) != 1 {
		t.Error("the registration did not reach the live voter")
	}
	if id, epoch := l.Controller(); id != 3 || epoch != 1 {
		t.Errorf("Controller() = (%d, %d), want (3, 1)", id, epoch)
	}
}

func TestAStandbyThatNamesTheLeaderSendsTheLinkThere(t *testing.T) {
	fs := newFakeQuorum(t, 3)
	a, b, c := fs[0], fs[1], fs[2]
	a.setActive(1)
	l := dialQuorum(t, 2, nil, a, b, c)
	l.Start()
	caughtUp(t, a, l)
	// Voter 1 steps down and answers as a Kafka voter does,
	// NOT_LEADER_OR_FOLLOWER naming voter 3: voter 2 is never asked.
	a.setStandby(kerr.NotLeaderForPartition.Code, 3, 2)
	c.setActive(2)
	controllerIs(t, l, 3, 2)
	createTopic(t, c, "after", []int32{1})
	caughtUp(t, c, l)
	if n := total(kmsg.Fetch, b); n != 0 {
		t.Errorf("voter 2 got %d fetches; the redirect should have skipped it", n)
	}
}

func TestForwardedRequestsGoOnce(t *testing.T) {
	fs := newFakeQuorum(t, 3)
	a, dead, b := fs[0], fs[1], fs[2]
	dead.stop()
	a.setActive(1)
	l := dialQuorum(t, 2, nil, a, dead, b) // the guess is voter 1
	a.setStandby(kerr.NotController.Code, -1, -1)
	b.setActive(2)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	// Send goes to the guess, which says NOT_CONTROLLER: the answer is
	// the caller's, never sent again elsewhere; the guess moves on.
	kresp, err := l.Send(ctx, kmsg.NewPtrAlterPartitionRequest())
	if err != nil {
		t.Fatal(err)
	}
	if code := kresp.(*kmsg.AlterPartitionResponse).ErrorCode; code != kerr.NotController.Code {
		t.Errorf("Send's answer has code %d, want voter 1's NOT_CONTROLLER", code)
	}
	if total(kmsg.AlterPartition, a, b) != 1 {
		t.Error("an answered Send went to another voter")
	}

	// Forward finds the guess (voter 2) unreachable: nothing went out,
	// so it goes to the next voter, the controller.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "first", 1, 1
	req.Topics = append(req.Topics, rt)
	kresp, err = l.Forward(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ts := kresp.(*kmsg.CreateTopicsResponse).Topics; len(ts) != 1 || ts[0].ErrorCode != 0 {
		t.Fatalf("answer %+v, want the topic created", ts)
	}
	if _, ok := l.Image().Topic("first"); !ok || len(b.seen(kmsg.CreateTopics)) != 1 {
		t.Error("the forwarded topic was not created at voter 3 and in the copy")
	}

	// The controller moves to voter 1; the link has not noticed. The
	// forward goes to voter 3, which answers NOT_CONTROLLER per topic:
	// that is the answer, the request is not sent to voter 1.
	b.setStandby(kerr.NotController.Code, -1, -1)
	a.setActive(3)
	req.Topics[0].Topic = "second"
	kresp, err = l.Forward(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if ts := kresp.(*kmsg.CreateTopicsResponse).Topics; len(ts) != 1 || ts[0].ErrorCode != kerr.NotController.Code {
		t.Fatalf("answer %+v, want voter 3's NOT_CONTROLLER", ts)
	}
	if n := len(a.seen(kmsg.CreateTopics)); n != 0 {
		t.Errorf("voter 1 got the forwarded request %d times after voter 3 answered it", n)
	}
	// Waiting for the copy found the new controller meanwhile.
	if id, epoch := l.Controller(); id != 1 || epoch != 3 {
		t.Errorf("Controller() = (%d, %d), want (1, 3)", id, epoch)
	}
}

func TestOneControllerShorthandAndBadVoters(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	if id, epoch := l.Controller(); id != -1 || epoch != -1 {
		t.Errorf("Controller() = (%d, %d) before any fetch, want (-1, -1)", id, epoch)
	}
	register(t, l, 2, 1)
	if id, epoch := l.Controller(); id != 1 || epoch != -1 {
		t.Errorf("Controller() = (%d, %d) with a single controller, want (1, -1)", id, epoch)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for _, c := range []struct {
		voters []Voter
		want   string
	}{
		{[]Voter{{ID: 1, Addr: f.addr()}, {ID: 1, Addr: f.addr()}}, "controller 1 listed twice"},
		{[]Voter{{ID: 1, Addr: f.addr()}, {ID: 2}}, "controller 2 has no address"},
	} {
		if _, err := Dial(ctx, Config{NodeID: 2, Voters: c.voters}); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Dial(%v): %v, want %q", c.voters, err, c.want)
		}
	}
}
