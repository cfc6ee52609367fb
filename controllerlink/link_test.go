package controllerlink

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/internal/testkit"
)

// dial links broker id to f, closing the link when the test ends.
func dial(t *testing.T, f *fakeController, id int32, clk clock.Clock) *Link {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	l, err := Dial(ctx, Config{NodeID: id, ControllerID: 1, ControllerAddr: f.addr(), MaxWait: 50 * time.Millisecond, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = l.Close() })
	return l
}

func registration(id int32) controller.Broker {
	return controller.Broker{ID: id, Endpoints: []controller.Endpoint{{Name: "PLAINTEXT", Host: "127.0.0.1", Port: 9000 + id}}}
}

func incarnation(id int32, run byte) [16]byte { return [16]byte{0: byte(id), 1: run, 15: 1} }

// register registers l as broker id and fails the test on error.
func register(t *testing.T, l *Link, id int32, run byte) int64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	epoch, err := l.Register(ctx, registration(id), incarnation(id, run))
	if err != nil {
		t.Fatal(err)
	}
	return epoch
}

// createTopic creates name on the controller with the given assignment.
func createTopic(t *testing.T, f *fakeController, name string, assignment ...[]int32) controller.TopicID {
	t.Helper()
	id := controller.NewTopicID()
	f.commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanCreateTopic(controller.NewTopic{Name: name, ID: id, Partitions: int32(len(assignment)),
			ReplicationFactor: int16(len(assignment[0])), Assignment: assignment}, 1000)
	})
	return id
}

func TestRegisterRetriesUntilTheControllerAnswers(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	// The controller is there but does not answer the first registrations:
	// two dropped connections, then a previous incarnation's session that
	// has not ended yet.
	tries := 0
	f.on(kmsg.BrokerRegistration, func(r kmsg.Request) (kmsg.Response, bool) {
		tries++
		switch tries {
		case 1, 2:
			return nil, true
		case 3:
			resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
			resp.ErrorCode, resp.BrokerEpoch = kerr.DuplicateBrokerRegistration.Code, -1
			return resp, false
		}
		return nil, false
	})
	epoch := register(t, l, 2, 1)
	if got := len(f.seen(kmsg.BrokerRegistration)); got != 4 {
		t.Errorf("registration sent %d times, want 4 (two dropped, one duplicate, one answered)", got)
	}
	if epoch < 0 || l.BrokerEpoch() != epoch {
		t.Errorf("epoch %d, link says %d", epoch, l.BrokerEpoch())
	}
	// Register returns only once this node's copy holds the registration.
	br, ok := l.Image().Broker(2)
	if !ok || br.Epoch != epoch || !br.Fenced {
		t.Errorf("the copy has broker 2 as %+v (ok=%v), want epoch %d, fenced", br, ok, epoch)
	}
	if !l.Fenced() {
		t.Error("a broker that has not heartbeated yet is fenced")
	}
}

func TestRegisterStopsOnARefusal(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	f.on(kmsg.BrokerRegistration, func(r kmsg.Request) (kmsg.Response, bool) {
		resp := r.ResponseKind().(*kmsg.BrokerRegistrationResponse)
		resp.ErrorCode, resp.BrokerEpoch = kerr.InconsistentClusterID.Code, -1
		return resp, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := l.Register(ctx, registration(2), incarnation(2, 1))
	if !errors.Is(err, kerr.InconsistentClusterID) {
		t.Fatalf("got %v, want INCONSISTENT_CLUSTER_ID", err)
	}
	if got := len(f.seen(kmsg.BrokerRegistration)); got != 1 {
		t.Errorf("a refusal was retried: %d registrations", got)
	}
	if l.BrokerEpoch() != -1 {
		t.Errorf("broker epoch %d after a refused registration", l.BrokerEpoch())
	}
}

// heartbeats returns the heartbeats f received.
func heartbeats(f *fakeController) []*kmsg.BrokerHeartbeatRequest {
	var out []*kmsg.BrokerHeartbeatRequest
	for _, r := range f.seen(kmsg.BrokerHeartbeat) {
		out = append(out, r.(*kmsg.BrokerHeartbeatRequest))
	}
	return out
}

func TestHeartbeatsCarryTheEpochAndReportFencing(t *testing.T) {
	f := newFakeController(t)
	clk := clock.NewFake(time.Unix(1000, 0))
	l := dial(t, f, 2, clk)
	epoch := register(t, l, 2, 1)
	const interval = 2 * time.Second
	l.StartHeartbeats(interval)

	// The first heartbeat goes out at once and unfences the broker.
	testkit.Eventually(t, 5*time.Second, "the first heartbeat's answer", func() bool { return !l.Fenced() })
	hbs := heartbeats(f)
	if len(hbs) != 1 {
		t.Fatalf("%d heartbeats before the clock moved, want 1", len(hbs))
	}
	if hbs[0].BrokerID != 2 || hbs[0].BrokerEpoch != epoch || hbs[0].CurrentMetadataOffset != epoch {
		t.Errorf("heartbeat: broker %d epoch %d offset %d; want broker 2 epoch %d offset %d",
			hbs[0].BrokerID, hbs[0].BrokerEpoch, hbs[0].CurrentMetadataOffset, epoch, epoch)
	}
	if br, _ := f.store.Image().Broker(2); br.Fenced {
		t.Error("the controller still has the broker fenced")
	}

	// The next one waits for the interval on the link's clock.
	testkit.Eventually(t, 5*time.Second, "the heartbeat timer", func() bool { return clk.Pending() > 0 })
	clk.Advance(interval - time.Millisecond)
	time.Sleep(20 * time.Millisecond)
	if n := len(heartbeats(f)); n != 1 {
		t.Fatalf("%d heartbeats before the interval passed", n)
	}
	// The controller fences the broker (its session expired there):
	// the next answer says so and the link reports it.
	f.on(kmsg.BrokerHeartbeat, func(r kmsg.Request) (kmsg.Response, bool) {
		resp := r.ResponseKind().(*kmsg.BrokerHeartbeatResponse)
		resp.IsFenced = true
		return resp, false
	})
	clk.Advance(time.Millisecond)
	testkit.Eventually(t, 5*time.Second, "the link to report fencing", l.Fenced)
	if n := len(heartbeats(f)); n != 2 {
		t.Errorf("%d heartbeats after one interval, want 2", n)
	}

	// Unfenced again, then replaced by another registration of its id:
	// STALE_BROKER_EPOCH is fencing too.
	f.on(kmsg.BrokerHeartbeat, nil)
	testkit.Eventually(t, 5*time.Second, "the heartbeat timer", func() bool { return clk.Pending() > 0 })
	clk.Advance(interval)
	testkit.Eventually(t, 5*time.Second, "an unfencing heartbeat", func() bool { return !l.Fenced() })
	f.commit(func(s *controller.State) ([]controller.Record, error) {
		return s.PlanRegisterBroker(controller.BrokerRegistration{ID: 2, Incarnation: incarnation(2, 2), PreviousBrokerEpoch: -1}, false, f.pol)
	})
	testkit.Eventually(t, 5*time.Second, "the heartbeat timer", func() bool { return clk.Pending() > 0 })
	clk.Advance(interval)
	testkit.Eventually(t, 5*time.Second, "the link to report fencing after STALE_BROKER_EPOCH", l.Fenced)
	if last := heartbeats(f); last[len(last)-1].BrokerEpoch != epoch {
		t.Errorf("the heartbeat carried epoch %d, want this registration's %d", last[len(last)-1].BrokerEpoch, epoch)
	}
}

func TestControlledShutdownWaitsForTheController(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	epoch := register(t, l, 2, 1)
	l.StartHeartbeats(time.Hour)
	testkit.Eventually(t, 5*time.Second, "unfenced", func() bool { return !l.Fenced() })
	// The controller first says the shutdown is under way, then grants it.
	asks := 0
	f.on(kmsg.BrokerHeartbeat, func(r kmsg.Request) (kmsg.Response, bool) {
		if asks++; asks <= 2 {
			return r.ResponseKind(), false // not yet
		}
		return nil, false
	})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := l.ControlledShutdown(ctx, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	hbs := heartbeats(f)
	if len(hbs) != 4 {
		t.Errorf("%d heartbeats, want the first and three that want to shut down", len(hbs))
	}
	for _, hb := range hbs[1:] {
		if !hb.WantShutdown || hb.BrokerEpoch != epoch {
			t.Errorf("shutdown heartbeat: want_shutdown=%v epoch=%d, want true and %d", hb.WantShutdown, hb.BrokerEpoch, epoch)
		}
	}
	if br, _ := f.store.Image().Broker(2); !br.Fenced {
		t.Error("a broker granted its shutdown is fenced at the controller")
	}
}

func TestControlledShutdownGivesUpOnAnUnreachableController(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, nil)
	register(t, l, 2, 1)
	f.stop()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := l.ControlledShutdown(ctx, 10*time.Millisecond)
	if err == nil || !strings.Contains(err.Error(), "unreachable") {
		t.Fatalf("got %v, want the controller named unreachable", err)
	}
	if ctx.Err() != nil {
		t.Error("waited for the deadline instead of giving up")
	}
}

// Heartbeats travel on connections of their own: a controller answers a
// connection's requests in order, and one stuck behind a long request
// (here an AlterPartition the controller holds) must not miss the session.
func TestHeartbeatNotQueuedBehindOtherRequests(t *testing.T) {
	f := newFakeController(t)
	l := dial(t, f, 2, clock.Real())
	register(t, l, 2, 1)
	release := make(chan struct{})
	f.on(kmsg.AlterPartition, func(r kmsg.Request) (kmsg.Response, bool) {
		<-release
		return r.ResponseKind(), false
	})
	defer close(release)
	sent := make(chan error, 1)
	go func() {
		_, err := l.Send(context.Background(), kmsg.NewPtrAlterPartitionRequest())
		sent <- err
	}()
	testkit.Eventually(t, 5*time.Second, "the AlterPartition at the controller", func() bool {
		return len(f.seen(kmsg.AlterPartition)) == 1
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if _, err := l.heartbeat(ctx, false); err != nil {
		t.Fatalf("a heartbeat behind a held AlterPartition: %v", err)
	}
	select {
	case err := <-sent:
		t.Fatalf("the AlterPartition returned while the controller held it: %v", err)
	default:
	}
}
