package broker

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
)

// A group's coordinator is the leader of the __consumer_offsets partition
// its id hashes to, whatever leads the others: with one partition moved to
// another broker, only the groups that hash to it are sent there.
func TestFindCoordinatorFollowsTheGroupsPartition(t *testing.T) {
	tb := startTestBroker(t, "offsets.topic.num.partitions=3")
	if err := tb.groups.Ready(); err != nil {
		t.Fatal(err)
	}
	self := tb.cfg.NodeID
	other := controller.Endpoint{Name: "PLAINTEXT", Host: "other.example", Port: 19092}
	// Two groups on different partitions.
	moved, stays := "g0", ""
	for i := 1; stays == ""; i++ {
		if g := "g" + string(rune('0'+i)); coordinator.PartitionFor(g, 3) != coordinator.PartitionFor(moved, 3) {
			stays = g
		}
	}
	commit := func(plan controller.Plan) {
		t.Helper()
		if _, err := tb.meta.Commit(plan); err != nil {
			t.Fatal(err)
		}
	}
	commit(func(*controller.State) ([]controller.Record, error) {
		return []controller.Record{controller.RegisterBrokerRecord{BrokerID: 2, Endpoints: []controller.Endpoint{other}}}, nil
	})
	commit(func(s *controller.State) ([]controller.Record, error) {
		tp := s.Topics[coordinator.OffsetsTopic]
		p := coordinator.PartitionFor(moved, 3)
		return []controller.Record{
			controller.PartitionChangeRecord{TopicID: tp.ID, Partition: p, Leader: controller.NoLeaderChange, Replicas: []int32{self, 2}, ISR: []int32{self, 2}},
			controller.PartitionChangeRecord{TopicID: tp.ID, Partition: p, Leader: 2},
		}, nil
	})
	req := kmsg.NewPtrFindCoordinatorRequest()
	req.Version = 4
	req.CoordinatorKeys = []string{moved, stays}
	resp := tb.handleFindCoordinator(req)
	if len(resp.Coordinators) != 2 {
		t.Fatalf("coordinators %+v", resp.Coordinators)
	}
	if c := resp.Coordinators[0]; c.ErrorCode != 0 || c.NodeID != 2 || c.Host != other.Host || c.Port != other.Port {
		t.Errorf("group %s (partition led by broker 2): %+v", moved, c)
	}
	if c := resp.Coordinators[1]; c.ErrorCode != 0 || c.NodeID != self {
		t.Errorf("group %s (partition led here): %+v", stays, c)
	}
}
