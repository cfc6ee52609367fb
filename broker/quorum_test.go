package broker

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/config"
	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/segment"
)

// startQuorum starts n combined broker+controller nodes, ids 1..n, that
// form a controller quorum over loopback. They start together: each
// waits in New for the others (the voters gather their identities and
// elect an active controller before any broker registers).
func startQuorumNodes(t *testing.T, n int, extra ...string) ([]*testBroker, []string) {
	t.Helper()
	ports := testkit.FreePorts(t, n)
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	nodes := make([]*testBroker, n)
	dirs := make([]string, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dirs[i] = t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			nodes[i], errs[i] = tryStart(t, segment.OSFS(), dirs[i], quorumNodeConfig(i+1, ports[i], voters, extra)...)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i+1, err)
		}
	}
	return nodes, dirs
}

func quorumNodeConfig(id, cport int, voters []string, extra []string) []string {
	return append([]string{fmt.Sprintf("node.id=%d", id), "process.roles=broker,controller",
		"controller.quorum.voters=" + strings.Join(voters, ","), "controller.listener.names=CONTROLLER",
		fmt.Sprintf("listeners=PLAINTEXT://127.0.0.1:0,CONTROLLER://127.0.0.1:%d", cport),
		"broker.heartbeat.interval.ms=200", "broker.session.timeout.ms=3000", "admin.listener="}, extra...)
}

// startControllerQuorum starts n controller-only voters (process.roles=
// controller), ids 1..n, together; it returns them and the voters list.
func startControllerQuorum(t *testing.T, n int) ([]*Broker, string) {
	t.Helper()
	ports := testkit.FreePorts(t, n)
	var voters []string
	for i, p := range ports {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", i+1, p))
	}
	nodes := make([]*Broker, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		dir := t.TempDir()
		wg.Add(1)
		go func() {
			defer wg.Done()
			cfg, err := config.Load("", []string{fmt.Sprintf("node.id=%d", i+1), "process.roles=controller",
				"controller.quorum.voters=" + strings.Join(voters, ","), "controller.listener.names=CONTROLLER",
				fmt.Sprintf("listeners=CONTROLLER://127.0.0.1:%d", ports[i]), "admin.listener=", "log.dirs=" + dir,
				"broker.session.timeout.ms=3000"})
			if err != nil {
				errs[i] = err
				return
			}
			b, err := New(cfg, testLogger())
			if err == nil {
				err = b.Listen()
				t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
			}
			nodes[i], errs[i] = b, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("controller %d: %v", i+1, err)
		}
	}
	return nodes, strings.Join(voters, ",")
}

// startQuorumBroker starts a broker-only node of a cluster whose
// controllers are voters.
func startQuorumBroker(t *testing.T, id int32, voters string) *testBroker {
	t.Helper()
	dir := t.TempDir()
	cfg, err := config.Load("", []string{fmt.Sprintf("node.id=%d", id), "process.roles=broker", "controller.quorum.voters=" + voters,
		"controller.listener.names=CONTROLLER", "listeners=PLAINTEXT://127.0.0.1:0", "admin.listener=", "log.dirs=" + dir,
		"broker.heartbeat.interval.ms=200", "broker.session.timeout.ms=3000", "replica.fetch.wait.max.ms=200"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(cfg, testLogger())
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Listen(); err != nil {
		_ = b.Shutdown(context.Background())
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Shutdown(context.Background()) })
	return &testBroker{Broker: b, dir: dir, addr: b.Addr().String()}
}

func testLogger() *slog.Logger {
	w := io.Writer(io.Discard)
	if os.Getenv("SLUICE_TEST_LOG") != "" {
		w = os.Stderr
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// Three controller-only voters and two brokers: the brokers find the
// active controller among the voters, register, create and serve a
// replicated topic; when the active controller stops, another takes over
// and the brokers follow it: a new topic can be created, the old one is
// still served.
func TestQuorumControllerOnlyVoters(t *testing.T) {
	ctls, voters := startControllerQuorum(t, 3)
	b4 := startQuorumBroker(t, 4, voters)
	b5 := startQuorumBroker(t, 5, voters)
	ctx := context.Background()
	brokers := []*testBroker{b4, b5}
	first := quorumLeader(t, brokers, 15*time.Second, -1)
	waitUnfenced(t, b4, 4, 5)
	for _, b := range brokers {
		req := kmsg.NewPtrMetadataRequest()
		resp, err := req.RequestWith(ctx, b.client(t))
		if err != nil || resp.ControllerID != b.cfg.NodeID {
			t.Fatalf("Metadata from broker %d: controller %v (%v); want the broker itself, which forwards to controller-only voters", b.cfg.NodeID, resp, err)
		}
	}
	if _, err := kadm.NewClient(b4.client(t)).CreateTopic(ctx, 2, 2, nil, "kept"); err != nil {
		t.Fatal(err)
	}
	cl := b5.client(t, kgo.DefaultProduceTopic("kept"), kgo.RequiredAcks(kgo.AllISRAcks()))
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("one")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	for _, c := range ctls {
		// Metadata at a controller-only voter (kgo clients seeded with
		// the voters, such as the brokers' links, send it) lists the
		// brokers; it must not need a broker listener of its own.
		cl, err := kgo.NewClient(kgo.SeedBrokers(c.ctrlListener.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		req := kmsg.NewPtrMetadataRequest()
		resp, err := cl.SeedBrokers()[0].Request(ctx, req)
		cl.Close()
		if err != nil || len(resp.(*kmsg.MetadataResponse).Brokers) != 2 {
			t.Fatalf("Metadata at controller %d: %v, %v; want brokers 4 and 5", c.cfg.NodeID, resp, err)
		}
	}
	if err := ctls[first-1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	second := quorumLeader(t, brokers, 15*time.Second, first)
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	for {
		_, err := kadm.NewClient(b5.client(t)).CreateTopic(cctx, 1, 2, nil, "after")
		if err == nil {
			break
		}
		if cctx.Err() != nil {
			t.Fatalf("controller %d took over, but no topic could be created: %v", second, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := cl.ProduceSync(ctx, &kgo.Record{Value: []byte("two")}).FirstErr(); err != nil {
		t.Fatalf("produce after the controller moved: %v", err)
	}
}

// activeController is the ControllerID every given node's Metadata names,
// once they agree on one.
func activeController(t *testing.T, nodes []*testBroker, within time.Duration, not int32) int32 {
	t.Helper()
	var id int32 = -1
	testkit.Eventually(t, within, fmt.Sprintf("every node to name the same active controller, not %d", not), func() bool {
		id = -1
		for _, n := range nodes {
			req := kmsg.NewPtrMetadataRequest()
			resp, err := req.RequestWith(context.Background(), n.client(t))
			if err != nil || resp.ControllerID < 0 || resp.ControllerID == not || (id >= 0 && resp.ControllerID != id) {
				return false
			}
			id = resp.ControllerID
		}
		return true
	})
	return id
}

// quorumLeader is the metadata log's leader every given broker's
// DescribeQuorum names, once they agree on one other than not.
func quorumLeader(t *testing.T, nodes []*testBroker, within time.Duration, not int32) int32 {
	t.Helper()
	var id int32 = -1
	testkit.Eventually(t, within, fmt.Sprintf("every node's DescribeQuorum to name the same leader, not %d", not), func() bool {
		id = -1
		for _, n := range nodes {
			resp := describeQuorum(t, n, 2, controller.MetadataTopic)
			if resp.ErrorCode != 0 || len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return false
			}
			p := resp.Topics[0].Partitions[0]
			if p.ErrorCode != 0 || p.LeaderID < 0 || p.LeaderID == not || (id >= 0 && p.LeaderID != id) {
				return false
			}
			id = p.LeaderID
		}
		return true
	})
	return id
}

// Three voters elect one active controller, which every node names; the
// metadata survives the loss of that controller: another voter takes over
// within the takeover timeout, every node names it, the topics created
// before are all there, and a new topic can be created through any node.
func TestQuorumFailoverKeepsMetadata(t *testing.T) {
	nodes, _ := startQuorumNodes(t, 3)
	first := activeController(t, nodes, 15*time.Second, -1)
	waitUnfenced(t, nodes[0], 1, 2, 3)
	ctx := context.Background()
	for i, n := range nodes {
		name := fmt.Sprintf("before-%d", i+1)
		if _, err := kadm.NewClient(n.client(t)).CreateTopic(ctx, 3, 3, nil, name); err != nil {
			t.Fatalf("create %s through node %d: %v", name, i+1, err)
		}
	}
	for _, n := range nodes {
		var dq kmsg.DescribeQuorumResponseTopicPartition
		testkit.EventuallyNil(t, 10*time.Second, func() error {
			// Forwarded to the active controller: a moment after a
			// lease lapse on a loaded machine it may answer NOT_CONTROLLER.
			resp := describeQuorum(t, n, 2, controller.MetadataTopic)
			if len(resp.Topics) != 1 || len(resp.Topics[0].Partitions) != 1 {
				return fmt.Errorf("DescribeQuorum through node %d: %+v", n.cfg.NodeID, resp)
			}
			dq = resp.Topics[0].Partitions[0]
			if dq.ErrorCode != 0 || dq.LeaderID != first || dq.LeaderEpoch < 1 || len(dq.CurrentVoters) != 3 {
				return fmt.Errorf("DescribeQuorum through node %d: %+v; want leader %d in an epoch >= 1 and 3 voters", n.cfg.NodeID, dq, first)
			}
			return nil
		})
		now := time.Now().UnixMilli()
		for _, v := range dq.CurrentVoters {
			if v.LastCaughtUpTimestamp < now-60_000 || v.LastCaughtUpTimestamp > now+1000 {
				t.Fatalf("DescribeQuorum: voter %d last caught up at %d, now is %d: want a wall-clock time of the last minute", v.ReplicaID, v.LastCaughtUpTimestamp, now)
			}
		}
	}

	for _, n := range nodes {
		s := newReplScrape(n)
		if err := s.want(t, map[string]float64{"sluice_raft_current_leader": float64(first)}); err != nil {
			t.Fatal(err)
		}
		state := "follower"
		if n.cfg.NodeID == first {
			state = "leader"
		}
		testkit.Eventually(t, 5*time.Second, fmt.Sprintf("node %d's sluice_raft_current_state to be %s", n.cfg.NodeID, state), func() bool {
			v, ok := value(s.gather(t), "sluice_raft_current_state", "state", state)
			return ok && v == 1
		})
	}
	for _, n := range nodes {
		// A voter's CONTROLLER listener answers a metadata fetch: the
		// active one with itself and its epoch, the others with
		// NOT_CONTROLLER naming the active one, so a link goes there.
		p := metadataFetchAt(t, n.ctrlListener.Addr().String())
		wantCode := int16(0)
		if n.cfg.NodeID != first {
			wantCode = kerr.NotController.Code
		}
		if p.ErrorCode != wantCode || p.CurrentLeader.LeaderID != first || p.CurrentLeader.LeaderEpoch < 1 {
			t.Fatalf("metadata fetch at node %d: error %d, current leader %+v; want error %d naming node %d in an epoch >= 1",
				n.cfg.NodeID, p.ErrorCode, p.CurrentLeader, wantCode, first)
		}
	}
	killed := time.Now()
	if err := nodes[first-1].Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	var rest []*testBroker
	for i, n := range nodes {
		if int32(i+1) != first {
			rest = append(rest, n)
		}
	}
	second := activeController(t, rest, 15*time.Second, first)
	t.Logf("controller %d stopped; every node named %d after %v", first, second, time.Since(killed).Round(time.Millisecond))
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	adm := kadm.NewClient(rest[0].client(t, kgo.RetryTimeout(20*time.Second)))
	for {
		_, err := adm.CreateTopic(cctx, 1, 2, nil, "after")
		if err == nil {
			break
		}
		if cctx.Err() != nil {
			t.Fatalf("no topic could be created after the active controller stopped: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("a topic was created %v after the controller stopped", time.Since(killed).Round(time.Millisecond))
	for _, n := range rest {
		img := n.metaImage()
		for i := range nodes {
			if _, ok := img.Topic(fmt.Sprintf("before-%d", i+1)); !ok {
				t.Fatalf("topic before-%d lost after the failover", i+1)
			}
		}
	}
}

// metadataFetchAt sends a metadata-log fetch (as controllerlink does) to a
// CONTROLLER listener and returns the partition's answer.
func metadataFetchAt(t *testing.T, addr string) kmsg.FetchResponseTopicPartition {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(addr))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	req := kmsg.NewPtrFetchRequest()
	req.Version = 13
	req.ReplicaID, req.SessionEpoch, req.MaxBytes = -1, -1, 1<<20
	rt := kmsg.NewFetchRequestTopic()
	rt.Topic, rt.TopicID = controller.MetadataTopic, controller.MetadataTopicID
	rp := kmsg.NewFetchRequestTopicPartition()
	rp.PartitionMaxBytes, rp.CurrentLeaderEpoch, rp.LogStartOffset = 1<<20, -1, -1
	rt.Partitions = append(rt.Partitions, rp)
	req.Topics = append(req.Topics, rt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	resp, err := cl.SeedBrokers()[0].Request(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	fr := resp.(*kmsg.FetchResponse)
	if len(fr.Topics) != 1 || len(fr.Topics[0].Partitions) != 1 {
		t.Fatalf("metadata fetch at %s: %+v", addr, fr)
	}
	return fr.Topics[0].Partitions[0]
}
