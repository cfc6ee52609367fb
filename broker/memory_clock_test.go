package broker

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// longPollFetch asks for partition 0 of topic from offset 0, waiting up to
// maxWaitMs for one byte.
func longPollFetch(topic string, id [16]byte, maxWaitMs int32) *kmsg.FetchRequest {
	req := kmsg.NewPtrFetchRequest()
	req.ReplicaID, req.MaxBytes, req.MinBytes, req.MaxWaitMillis, req.SessionEpoch = -1, 1<<20, 1, maxWaitMs, -1
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = topic, id
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	return req
}

// A long-poll fetch waits on the broker's clock: on a fake clock it stays
// parked however long the test takes, and answers (empty) once the clock
// passes max_wait_ms, not before.
func TestLongPollFetchWaitsOnTheBrokersClock(t *testing.T) {
	mem := segment.NewMemFS()
	clk := newFakeClock()
	mb := openMem(t, mem, clk)
	defer mb.Shutdown(context.Background())
	id := mb.createTopic("quiet", nil)

	req := longPollFetch("quiet", id, 500)

	timersBefore := clk.Pending()
	done := make(chan *kmsg.FetchResponse, 1)
	go func() { done <- callHandle[*kmsg.FetchResponse](mb, req) }()
	// Parked: its deadline is armed on the fake clock.
	testkit.Eventually(t, 10*time.Second, "the fetch's deadline armed on the broker's clock", func() bool { return clk.Pending() > timersBefore })
	select {
	case resp := <-done:
		t.Fatalf("fetch answered before the broker's clock moved: %+v", resp)
	case <-time.After(100 * time.Millisecond): // real time passes; the broker's does not
	}
	clk.advance(499 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("fetch answered 1 ms before max_wait_ms on the broker's clock")
	case <-time.After(50 * time.Millisecond):
	}
	clk.advance(time.Millisecond)
	select {
	case resp := <-done:
		p := resp.Topics[0].Partitions[0]
		if p.ErrorCode != 0 || len(p.RecordBatches) != 0 || p.HighWatermark != 0 {
			t.Fatalf("expired fetch: error %d, %d bytes, HW %d; want an empty answer", p.ErrorCode, len(p.RecordBatches), p.HighWatermark)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("fetch still parked after max_wait_ms passed on the broker's clock")
	}
}

// A group member's session runs on the broker's clock: a KIP-848 member
// that stops heartbeating is removed once group.consumer.session.timeout.ms
// passes on it, and its next heartbeat is told UNKNOWN_MEMBER_ID.
func TestGroupSessionExpiresOnTheBrokersClock(t *testing.T) {
	mem := segment.NewMemFS()
	clk := newFakeClock()
	mb := openMem(t, mem, clk, "group.consumer.session.timeout.ms=45000")
	defer mb.Shutdown(context.Background())
	mb.createTopic("events", nil)

	heartbeat := func(epoch int32) *kmsg.ConsumerGroupHeartbeatResponse {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.Group, req.MemberID, req.MemberEpoch = "g", "member-0001-0002-0003", epoch
		if epoch == 0 {
			req.RebalanceTimeoutMillis = 30000
			req.SubscribedTopicNames = []string{"events"}
			req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		}
		return callHandle[*kmsg.ConsumerGroupHeartbeatResponse](mb, req)
	}
	joined := heartbeat(0)
	if joined.ErrorCode != 0 || joined.MemberEpoch <= 0 {
		t.Fatalf("join: error %d (%v), epoch %d", joined.ErrorCode, joined.ErrorMessage, joined.MemberEpoch)
	}
	clk.advance(44 * time.Second)
	if r := heartbeat(joined.MemberEpoch); r.ErrorCode != 0 {
		t.Fatalf("heartbeat within the session: error %d", r.ErrorCode)
	}
	clk.advance(44 * time.Second) // the last heartbeat renewed the session
	if r := heartbeat(joined.MemberEpoch); r.ErrorCode != 0 {
		t.Fatalf("heartbeat 44 s after the last one: error %d, want none", r.ErrorCode)
	}
	clk.advance(46 * time.Second)
	if r := heartbeat(joined.MemberEpoch); r.ErrorCode != kerr.UnknownMemberID.Code {
		t.Fatalf("heartbeat 46 s after the last one: error %d, want UNKNOWN_MEMBER_ID (%d): the session timer did not fire on the broker's clock",
			r.ErrorCode, kerr.UnknownMemberID.Code)
	}
}

// Deps.Metadata replaces the local store: the broker reads and commits its
// metadata there, writes no cluster-metadata.log of its own, stamps its log
// dirs with the source's cluster id, and refuses a dir of another cluster.
func TestBrokerTakesMetadataFromItsSource(t *testing.T) {
	srcFS := segment.NewMemFS()
	src, err := controller.Create(srcFS, "/controller", 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	mem := segment.NewMemFS()
	open := func(source MetadataSource) (*Broker, error) {
		return NewWith(memConfig(t), Deps{FS: mem, Clock: newFakeClock().Fake, Metadata: source})
	}
	b, err := open(src)
	if err != nil {
		t.Fatal(err)
	}
	mb := &memBroker{Broker: b, t: t, log: &lockedBuffer{}}
	id := mb.createTopic("from-source", nil)
	mb.mustProduce("from-source", "v0")
	if tp, ok := src.Image().Topic("from-source"); !ok || tp.ID != controller.TopicID(id) {
		t.Fatalf("topic created through the broker is not in its metadata source (%v, %v)", tp, ok)
	}
	if _, err := mem.Stat(filepath.Join(memLogDir, controller.MetadataFile)); err == nil {
		t.Fatalf("the broker wrote its own %s beside a metadata source", controller.MetadataFile)
	}
	props, err := segment.ReadFile(mem, filepath.Join(memLogDir, metaPropertiesFile))
	if err != nil || !strings.Contains(string(props), "cluster.id="+src.ClusterID()) {
		t.Fatalf("log dir identity %q (%v), want cluster.id=%s", props, err, src.ClusterID())
	}
	if err := b.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	other, err := controller.Create(segment.NewMemFS(), "/other", 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if b, err := open(other); err == nil {
		_ = b.Shutdown(context.Background())
		t.Fatal("a broker started on a log dir of another cluster's source")
	} else if !strings.Contains(err.Error(), src.ClusterID()) {
		t.Fatalf("refusal does not name the dir's cluster %s: %v", src.ClusterID(), err)
	}
}

// noProducerIDs is a metadata source whose controller hands out no
// producer ids (unreachable, or moving to another voter).
type noProducerIDs struct{ *controller.Store }

func (noProducerIDs) NextProducerID() (int64, error) {
	return 0, errors.New("no controller answers AllocateProducerIds")
}

// Without a block of producer ids from the controller, InitProducerId
// answers a retriable error (as Kafka's producer-id manager does while it
// waits for a block), never UNKNOWN_SERVER_ERROR, which makes an
// idempotent client fail every record it holds.
func TestInitProducerIDRetriableWithoutController(t *testing.T) {
	src, err := controller.Create(segment.NewMemFS(), "/controller", 1, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWith(memConfig(t), Deps{FS: segment.NewMemFS(), Clock: newFakeClock().Fake, Metadata: noProducerIDs{src}})
	if err != nil {
		t.Fatal(err)
	}
	mb := &memBroker{Broker: b, t: t, log: &lockedBuffer{}}
	resp := callHandle[*kmsg.InitProducerIDResponse](mb, kmsg.NewPtrInitProducerIDRequest())
	if resp.ErrorCode != kerr.CoordinatorLoadInProgress.Code || !kerr.IsRetriable(kerr.ErrorForCode(resp.ErrorCode)) {
		t.Fatalf("InitProducerId with no producer ids: error %d, want COORDINATOR_LOAD_IN_PROGRESS (retriable)", resp.ErrorCode)
	}
}
