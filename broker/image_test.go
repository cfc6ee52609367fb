package broker

import (
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
)

// TestHandlersAnswerFromTheImage: Metadata, DescribeCluster and
// FindCoordinator say what the metadata image records (brokers, leaders,
// replicas, ISR, epochs), not "this node leads everything". Another broker
// is registered and leadership moved to it by records, as the controller
// of a cluster will do.
func TestHandlersAnswerFromTheImage(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "moved", 2, nil)
	if err := tb.groups.Ready(); err != nil {
		t.Fatal(err)
	}
	commit := func(plan controller.Plan) {
		t.Helper()
		if _, err := tb.meta.Commit(plan); err != nil {
			t.Fatal(err)
		}
	}
	self := tb.cfg.NodeID
	other := controller.Endpoint{Name: "PLAINTEXT", Host: "other.example", Port: 19092}
	commit(func(*controller.State) ([]controller.Record, error) {
		return []controller.Record{controller.RegisterBrokerRecord{BrokerID: 2, Endpoints: []controller.Endpoint{other}}}, nil
	})
	// Partition 1 of "moved" gains broker 2 as a replica, then as leader;
	// so does every partition of __consumer_offsets.
	commit(func(s *controller.State) ([]controller.Record, error) {
		var rs []controller.Record
		for _, name := range []string{"moved", coordinator.OffsetsTopic} {
			tp := s.Topics[name]
			for _, p := range tp.Partitions {
				if name == "moved" && p.Index == 0 {
					continue
				}
				rs = append(rs,
					controller.PartitionChangeRecord{TopicID: tp.ID, Partition: p.Index, Leader: controller.NoLeaderChange, Replicas: []int32{self, 2}, ISR: []int32{self, 2}},
					controller.PartitionChangeRecord{TopicID: tp.ID, Partition: p.Index, Leader: 2})
			}
		}
		return rs, nil
	})

	md := tb.handleMetadata(kmsg.NewPtrMetadataRequest())
	if len(md.Brokers) != 2 || md.Brokers[1].NodeID != 2 || md.Brokers[1].Host != other.Host || md.Brokers[1].Port != other.Port {
		t.Fatalf("brokers %+v", md.Brokers)
	}
	if md.ControllerID != self {
		t.Fatalf("controller %d", md.ControllerID)
	}
	var moved kmsg.MetadataResponseTopic
	for _, mt := range md.Topics {
		if *mt.Topic == "moved" {
			moved = mt
		}
	}
	p0, p1 := moved.Partitions[0], moved.Partitions[1]
	if p0.Leader != self || !reflect.DeepEqual(p0.Replicas, []int32{self}) {
		t.Fatalf("partition 0 %+v", p0)
	}
	if p1.Leader != 2 || !reflect.DeepEqual(p1.Replicas, []int32{self, 2}) || !reflect.DeepEqual(p1.ISR, []int32{self, 2}) || p1.LeaderEpoch != p0.LeaderEpoch+1 {
		t.Fatalf("partition 1 %+v (partition 0 at epoch %d)", p1, p0.LeaderEpoch)
	}

	dc := tb.handleDescribeCluster(kmsg.NewPtrDescribeClusterRequest())
	if len(dc.Brokers) != 2 || dc.Brokers[1].Host != other.Host || dc.ControllerID != self {
		t.Fatalf("DescribeCluster %+v", dc)
	}

	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	if r := tb.handleFindCoordinator(fc); r.ErrorCode != 0 || r.NodeID != 2 || r.Host != other.Host || r.Port != other.Port {
		t.Fatalf("FindCoordinator %+v, want broker 2 (the offsets topic's leader)", r)
	}
}

// TestBrokerRegistersItselfAtStart: each start registers this node with
// the port it listens on, and starts a new leader epoch on what it leads.
func TestBrokerRegistersItselfAtStart(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "ep", 1, nil)
	br, ok := tb.metaImage().Broker(tb.cfg.NodeID)
	if !ok || len(br.Endpoints) != 1 || !strings.HasSuffix(tb.addr, ":"+strconv.Itoa(int(br.Endpoints[0].Port))) {
		t.Fatalf("registration %+v, listening on %s", br, tb.addr)
	}
	epoch := func(tb *testBroker) int32 {
		p, _ := tb.metaImage().Partition("ep", 0)
		return p.LeaderEpoch
	}
	before, brokerEpoch := epoch(tb), br.Epoch
	if err := tb.Shutdown(t.Context()); err != nil {
		t.Fatal(err)
	}
	tb2 := startTestBrokerIn(t, dir)
	br2, _ := tb2.metaImage().Broker(tb.cfg.NodeID)
	if epoch(tb2) != before+1 || br2.Epoch <= brokerEpoch {
		t.Fatalf("after a restart: leader epoch %d (was %d), broker epoch %d (was %d)", epoch(tb2), before, br2.Epoch, brokerEpoch)
	}
}

// TestNoHandlerTakesThisNodeForALeader is a grep-style guard: the only
// non-test files of the broker package that may read cfg.NodeID are those
// that need this node's own identity (registering it, naming its own
// replica, its log lines and log-dir identity, the broker config resource
// DescribeConfigs names); every leader, replica, ISR, epoch, broker and
// endpoint a handler reports comes from the metadata image. It fails when
// any other file mentions cfg.NodeID.
func TestNoHandlerTakesThisNodeForALeader(t *testing.T) {
	allowed := map[string]bool{
		"image.go":            true, // localID and registration
		"broker.go":           true, // log lines; the log dirs' identity
		"describe_configs.go": true, // "broker 1"'s config resource
	}
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	use := regexp.MustCompile(`cfg\.NodeID`)
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || allowed[f] {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if use.Match(b) {
			t.Errorf("%s reads cfg.NodeID: take leaders, replicas and brokers from the metadata image (metaImage), or this node's id from localID", f)
		}
	}
}
