package broker

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

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
		dq := describeQuorum(t, n, 2, controller.MetadataTopic).Topics[0].Partitions[0]
		if dq.ErrorCode != 0 || dq.LeaderID != first || dq.LeaderEpoch < 1 || len(dq.CurrentVoters) != 3 {
			t.Fatalf("DescribeQuorum through node %d: %+v; want leader %d in an epoch >= 1 and 3 voters", n.cfg.NodeID, dq, first)
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
