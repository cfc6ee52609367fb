package broker

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controllerlink"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/netio"
	"github.com/sluice-io/sluice/segment"
)

// startLinkedBroker starts broker id whose metadata comes from the
// controller at controllerAddr (node 1), and stops it when the test ends.
func startLinkedBroker(t *testing.T, id int32, controllerAddr string, sets ...string) *testBroker {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", append([]string{fmt.Sprintf("node.id=%d", id), "listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=", "log.dirs=" + dir}, sets...))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	link, err := controllerlink.Dial(ctx, controllerlink.Config{NodeID: id, ControllerID: 1, ControllerAddr: controllerAddr, MaxWait: 200 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewWith(cfg, Deps{FS: segment.OSFS(), Metadata: link, Network: netio.NewEngine, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		_ = link.Close()
		t.Fatal(err)
	}
	if err := b.Listen(); err != nil {
		_ = b.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return &testBroker{Broker: b, dir: dir, addr: b.Addr().String()}
}

// waitUnfenced waits until the controller's metadata has every broker in
// ids registered and unfenced (their first heartbeat went through).
func waitUnfenced(t *testing.T, ctl *testBroker, ids ...int32) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("brokers %v to be unfenced", ids), func() bool {
		for _, id := range ids {
			if br, ok := ctl.metaImage().Broker(id); !ok || br.Fenced {
				return false
			}
		}
		return true
	})
}

// Two brokers, one of them the controller: the other registers with it,
// follows its metadata, forwards what only the controller decides, and
// both serve the partitions placed on them. A client that knows only the
// second broker creates a topic, sees it at once, produces (idempotently:
// producer ids come from the controller) to partitions on both brokers and
// reads everything back.
func TestTwoBrokersOneController(t *testing.T) {
	ctl := startTestBroker(t, "node.id=1")
	b2 := startLinkedBroker(t, 2, ctl.addr)
	waitUnfenced(t, ctl, 2)

	for _, tb := range []*testBroker{ctl, b2} {
		if br, ok := tb.metaImage().Broker(2); !ok || len(br.Endpoints) == 0 || br.Epoch <= 0 {
			t.Fatalf("node %d's metadata: broker 2 registered as %+v (%v)", tb.cfg.NodeID, br, ok)
		}
	}
	// CreateTopics sent to broker 2 itself is forwarded to the
	// controller, and answered once broker 2's own metadata has it.
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "spread", 6, 1
	req.Topics, req.TimeoutMillis = append(req.Topics, rt), 10000
	created := do[*kmsg.CreateTopicsResponse](b2.raw(t), req, 7)
	if len(created.Topics) != 1 || created.Topics[0].ErrorCode != 0 {
		t.Fatalf("create topic through broker 2: %+v", created.Topics)
	}
	tp, ok := b2.metaImage().Topic("spread")
	if !ok || len(tp.Partitions) != 6 {
		t.Fatalf("broker 2's metadata right after its CreateTopics answered: %+v, %v; want the topic with 6 partitions", tp, ok)
	}
	leaders := map[int32]int{}
	for _, p := range tp.Partitions {
		leaders[p.Leader]++
	}
	if leaders[1] == 0 || leaders[2] == 0 {
		t.Fatalf("leaders of the new topic %v; want partitions on brokers 1 and 2", leaders)
	}
	ctx := context.Background()

	cl := b2.client(t, kgo.DefaultProduceTopic("spread"), kgo.RecordPartitioner(kgo.RoundRobinPartitioner()))
	const n = 60
	for i := range n {
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr(); err != nil {
			t.Fatalf("produce %d: %v", i, err)
		}
	}
	consumer := b2.client(t, kgo.ConsumeTopics("spread"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	seen := map[string]bool{}
	deadline := time.Now().Add(20 * time.Second)
	for len(seen) < n && time.Now().Before(deadline) {
		fctx, cancel := context.WithTimeout(ctx, time.Second)
		fs := consumer.PollFetches(fctx)
		cancel()
		fs.EachRecord(func(r *kgo.Record) { seen[string(r.Value)] = true })
	}
	if len(seen) != n {
		t.Fatalf("read back %d of %d records", len(seen), n)
	}

	// A change decided on the controller reaches broker 2 by itself.
	ctl.createTopic(t, "from-controller", 1, nil)
	testkit.Eventually(t, 10*time.Second, "broker 2 to learn of a topic created on the controller", func() bool {
		_, ok := b2.metaImage().Topic("from-controller")
		return ok
	})
}
