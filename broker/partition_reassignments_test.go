package broker

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// reassign sends an AlterPartitionReassignments for partition 0 of each
// topic to tb, raw at version (nil replicas cancel), and returns the
// partitions' error codes.
func reassign(t *testing.T, tb *testBroker, version int16, allowRFChange bool, moves map[string][]int32) map[string]int16 {
	t.Helper()
	req := kmsg.NewPtrAlterPartitionAssignmentsRequest()
	req.AllowReplicationFactorChange = allowRFChange
	for topic, replicas := range moves {
		rt := kmsg.NewAlterPartitionAssignmentsRequestTopic()
		rp := kmsg.NewAlterPartitionAssignmentsRequestTopicPartition()
		rp.Replicas = replicas
		rt.Topic, rt.Partitions = topic, append(rt.Partitions, rp)
		req.Topics = append(req.Topics, rt)
	}
	resp := do[*kmsg.AlterPartitionAssignmentsResponse](tb.raw(t), req, version)
	if resp.ErrorCode != 0 || len(resp.Topics) != len(moves) {
		t.Fatalf("AlterPartitionReassignments v%d %v: %+v", version, moves, resp)
	}
	codes := map[string]int16{}
	for _, rt := range resp.Topics {
		if len(rt.Partitions) != 1 || rt.Partitions[0].Partition != 0 {
			t.Fatalf("AlterPartitionReassignments %v answered %+v", moves, rt)
		}
		codes[rt.Topic] = rt.Partitions[0].ErrorCode
	}
	return codes
}

// listReassignments lists the moves under way through tb, raw (nil
// topics: all), as "topic-partition replicas +adding -removing".
func listReassignments(t *testing.T, tb *testBroker, topics ...string) []string {
	t.Helper()
	req := kmsg.NewPtrListPartitionReassignmentsRequest()
	for _, name := range topics {
		rt := kmsg.NewListPartitionReassignmentsRequestTopic()
		rt.Topic, rt.Partitions = name, []int32{0, 1}
		req.Topics = append(req.Topics, rt)
	}
	resp := do[*kmsg.ListPartitionReassignmentsResponse](tb.raw(t), req, 0)
	if resp.ErrorCode != 0 {
		t.Fatalf("ListPartitionReassignments: %+v", resp)
	}
	var out []string
	for _, rt := range resp.Topics {
		for _, p := range rt.Partitions {
			out = append(out, fmt.Sprintf("%s-%d %v +%v -%v", rt.Topic, p.Partition, p.Replicas, p.AddingReplicas, p.RemovingReplicas))
		}
	}
	return out
}

// A partition on brokers 1 and 2 moves to 2 and 3 while a producer writes
// to it with acks=all: the move is asked through kadm, it completes by
// itself once broker 3 is in the ISR (the list of moves goes empty and the
// image holds replicas [2 3]), broker 3 holds every record, and every
// acknowledged record is read back, once, in order.
func TestReassignmentUnderTraffic(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b3 := bs[0], bs[2]
	createAssigned(t, ctl, "mv", 1, 2)
	testkit.Eventually(t, 10*time.Second, "broker 2 in the ISR of mv", func() bool {
		p, _ := ctl.metaImage().Partition("mv", 0)
		return len(p.ISR) == 2
	})
	cl := ctl.client(t, kgo.DefaultProduceTopic("mv"), kgo.RequiredAcks(kgo.AllISRAcks()), kgo.RecordRetries(1000))
	ctx := context.Background()
	var (
		mu    sync.Mutex
		acked int
		perr  error
		stop  = make(chan struct{})
		done  = make(chan struct{})
		some  = 20
	)
	go func() {
		defer close(done)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			pctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			err := cl.ProduceSync(pctx, &kgo.Record{Value: fmt.Appendf(nil, "v%d", i)}).FirstErr()
			cancel()
			mu.Lock()
			if err != nil {
				perr = err
				mu.Unlock()
				return
			}
			acked++
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	testkit.Eventually(t, 10*time.Second, "some records before the move", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acked >= some || perr != nil
	})

	adm := kadm.NewClient(b3.client(t))
	var req kadm.AlterPartitionAssignmentsReq
	req.Assign("mv", 0, []int32{2, 3})
	res, err := adm.AlterPartitionAssignments(ctx, req)
	if err != nil || res["mv"][0].Err != nil {
		t.Fatalf("kadm AlterPartitionAssignments: %v %+v", err, res)
	}
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		list, err := adm.ListPartitionReassignments(ctx, kadm.TopicsSet{"mv": {0: {}}})
		if err != nil {
			return err
		}
		p, _ := ctl.metaImage().Partition("mv", 0)
		if len(list) != 0 || !slices.Equal(p.Replicas, []int32{2, 3}) {
			return fmt.Errorf("moves under way %+v, replicas %v ISR %v", list, p.Replicas, p.ISR)
		}
		return nil
	})
	testkit.Eventually(t, 10*time.Second, "more records after the move", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return acked >= 2*some || perr != nil
	})
	close(stop)
	<-done
	if perr != nil {
		t.Fatalf("acks=all produce during the move, after %d records: %v", acked, perr)
	}
	p, _ := b3.metaImage().Partition("mv", 0)
	if !slices.Equal(p.Replicas, []int32{2, 3}) || !slices.Equal(sortedIDs(p.ISR), []int32{2, 3}) || p.Leader == 1 {
		t.Fatalf("after the move broker 3 sees replicas %v, ISR %v, leader %d", p.Replicas, p.ISR, p.Leader)
	}
	testkit.EventuallyNil(t, 10*time.Second, func() error {
		if leo, hw, ok := replicaState(b3, "mv"); !ok || leo != int64(acked) || hw != int64(acked) {
			return fmt.Errorf("broker 3's replica: %v, LEO %d, HW %d; want %d records", ok, leo, hw, acked)
		}
		return nil
	})
	got := consumeAll(t, b3, "mv", acked)
	for i := range acked {
		if got[i] != fmt.Sprintf("v%d", i) {
			t.Fatalf("record %d is %q", i, got[i])
		}
	}
}

// A move that cannot finish (its new replica's broker is down) is listed
// with what is added and removed, until it is cancelled, which puts the
// old replicas back; the requests go to a broker that is not the
// controller, which forwards them. Cancelling again, moving to a broker
// twice or to an unknown one, moving a partition that does not exist, and
// changing the replication factor when the request forbids it are refused.
func TestReassignmentCancelAndErrors(t *testing.T) {
	bs := threeBrokers(t, "auto.leader.rebalance.enable=false")
	ctl, b2 := bs[0], bs[1]
	createAssigned(t, ctl, "cx", 1, 2)
	createAssigned(t, ctl, "rf", 1, 2)
	stopLinked(t, ctl, bs[2])

	wantCode(t, "move cx to [1 3]", reassign(t, b2, 0, true, map[string][]int32{"cx": {1, 3}})["cx"], 0)
	if got, want := listReassignments(t, b2), []string{"cx-0 [1 3 2] +[3] -[2]"}; !slices.Equal(got, want) {
		t.Fatalf("moves under way: %v; want %v", got, want)
	}
	if got, want := listReassignments(t, ctl, "rf", "cx", "missing"), []string{"cx-0 [1 3 2] +[3] -[2]"}; !slices.Equal(got, want) {
		t.Fatalf("moves under way among those asked: %v; want %v", got, want)
	}
	wantCode(t, "cancel the move of cx", reassign(t, b2, 1, true, map[string][]int32{"cx": nil})["cx"], 0)
	if got := listReassignments(t, b2); len(got) != 0 {
		t.Fatalf("moves under way after the cancel: %v", got)
	}
	if p, _ := b2.metaImage().Partition("cx", 0); !slices.Equal(p.Replicas, []int32{1, 2}) || p.Reassigning() {
		t.Fatalf("cx after the cancel: %+v; want replicas [1 2]", p)
	}

	for _, tc := range []struct {
		what    string
		version int16
		allowRF bool
		moves   map[string][]int32
		want    int16
	}{
		{"cancel with no move", 0, true, map[string][]int32{"cx": nil}, kerr.NoReassignmentInProgress.Code},
		{"a broker twice", 0, true, map[string][]int32{"cx": {1, 1}}, kerr.InvalidReplicaAssignment.Code},
		{"an unknown broker", 0, true, map[string][]int32{"cx": {1, 9}}, kerr.InvalidReplicaAssignment.Code},
		{"no replicas", 0, true, map[string][]int32{"cx": {}}, kerr.InvalidReplicaAssignment.Code},
		{"an unknown topic", 0, true, map[string][]int32{"missing": {1, 2}}, kerr.UnknownTopicOrPartition.Code},
		{"a new replication factor, forbidden", 1, false, map[string][]int32{"rf": {1, 2, 3}}, kerr.InvalidReplicationFactor.Code},
	} {
		wantCode(t, tc.what, reassign(t, b2, tc.version, tc.allowRF, tc.moves)[firstKey(tc.moves)], tc.want)
	}
	if p, _ := ctl.metaImage().Partition("rf", 0); !slices.Equal(p.Replicas, []int32{1, 2}) || p.Reassigning() {
		t.Fatalf("rf after a refused move: %+v", p)
	}
	// Allowed, the same factor change starts.
	wantCode(t, "a new replication factor, allowed", reassign(t, b2, 1, true, map[string][]int32{"rf": {1, 2, 3}})["rf"], 0)
	if got, want := listReassignments(t, ctl, "rf"), []string{"rf-0 [1 2 3] +[3] -[]"}; !slices.Equal(got, want) {
		t.Fatalf("moves under way: %v; want %v", got, want)
	}
}

func firstKey(m map[string][]int32) string {
	for k := range m {
		return k
	}
	return ""
}
