package broker

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// Compaction on a replicated topic switched on at run time: once the
// leader's log has gaps, a replica added by a reassignment copies it
// across them (a follower takes batches above its log end), reaches the
// leader's log end and high watermark, and holds the latest value of every
// key.
func TestCompactionReplicatesAcrossGaps(t *testing.T) {
	bs := threeBrokers(t, "log.cleaner.backoff.ms=50")
	createAssigned(t, bs[0], "rkv", 2, 3)
	leader := bs[1]
	testkit.Eventually(t, 10*time.Second, "broker 2 to lead rkv", func() bool {
		return leader.topics.get("rkv").replication(0) != nil
	})
	ctx := context.Background()
	adm := bs[2].admin(t) // forwarded to the controller
	str := func(s string) *string { return &s }
	alter := []kadm.AlterConfig{
		{Name: "cleanup.policy", Value: str("compact")},
		{Name: "segment.bytes", Value: str("1024")},
		{Name: "min.cleanable.dirty.ratio", Value: str("0.01")},
	}
	if rs, err := adm.AlterTopicConfigs(ctx, alter, "rkv"); err != nil || rs[0].Err != nil {
		t.Fatalf("switching rkv to compact: %v %v", err, rs)
	}

	cl := leader.client(t, kgo.DefaultProduceTopic("rkv"), kgo.RequiredAcks(kgo.AllISRAcks()))
	want := map[string]string{}
	for v := range 40 {
		for _, k := range []string{"a", "b", "c", "d", "e"} {
			val := fmt.Sprintf("%s-%d", k, v)
			if err := cl.ProduceSync(ctx, &kgo.Record{Key: []byte(k), Value: []byte(val)}).FirstErr(); err != nil {
				t.Fatal(err)
			}
			want[k] = val
		}
	}
	testkit.Eventually(t, 20*time.Second, "the leader's cleaner to drop old versions", func() bool {
		return leader.replicas.CleanerStats().RecordsDropped > 0
	})

	moves := kadm.AlterPartitionAssignmentsReq{}
	moves.Assign("rkv", 0, []int32{2, 3, 1})
	if rs, err := adm.AlterPartitionAssignments(ctx, moves); err != nil {
		t.Fatal(err)
	} else if err := rs.Error(); err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyNil(t, 20*time.Second, func() error {
		lleo, lhw, _ := replicaState(leader, "rkv")
		leo, hw, ok := replicaState(bs[0], "rkv")
		if !ok || leo != lleo || hw != lhw {
			return fmt.Errorf("new replica on broker 1: present %v, LEO %d HW %d; leader's %d and %d", ok, leo, hw, lleo, lhw)
		}
		return nil
	})
	got := latestValues(t, bs[0].topics.get("rkv").partition(0))
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("broker 1's copy: key %s = %q, want %q (all %v)", k, got[k], v, got)
		}
	}
}

// latestValues reads p from its start to its high watermark and returns
// the last value of each key.
func latestValues(t *testing.T, p *replica.Partition) map[string]string {
	t.Helper()
	res, err := p.Read(p.LogStartOffset(), 1<<30, true)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Release()
	out := map[string]string{}
	for _, fr := range res.Ranges {
		buf := make([]byte, fr.Length)
		if _, err := fr.File.ReadAt(buf, fr.Offset); err != nil {
			t.Fatal(err)
		}
		for len(buf) >= segment.BatchHeaderSize {
			h, err := segment.ParseBatchHeader(buf)
			if err != nil || h.Size() > len(buf) {
				break
			}
			if err := segment.EachRecord(buf[:h.Size()], func(r segment.Record) error {
				out[string(r.Key)] = string(r.Value)
				return nil
			}); err != nil {
				t.Fatal(err)
			}
			buf = buf[h.Size():]
		}
	}
	return out
}
