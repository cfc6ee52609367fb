package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// The JSON shapes below are written out independently of the package's own
// types on purpose: they pin the field names scripts depend on.
type jsonBroker struct {
	NodeID *int32 `json:"node_id"`
	Host   string `json:"host"`
	Port   int32  `json:"port"`
}

type jsonListed struct {
	Groups []struct {
		GroupID      string     `json:"group_id"`
		State        string     `json:"state"`
		Type         string     `json:"type"`
		ProtocolType string     `json:"protocol_type"`
		Coordinator  jsonBroker `json:"coordinator"`
	} `json:"groups"`
}

type jsonPartition struct {
	Topic         string  `json:"topic"`
	Partition     int32   `json:"partition"`
	CurrentOffset *int64  `json:"current_offset"`
	LogEndOffset  *int64  `json:"log_end_offset"`
	Lag           *int64  `json:"lag"`
	MemberID      string  `json:"member_id"`
	ClientID      string  `json:"client_id"`
	Host          string  `json:"host"`
	Error         *string `json:"error"`
}

type jsonTopicPartitions struct {
	Topic      string  `json:"topic"`
	Partitions []int32 `json:"partitions"`
}

type jsonMember struct {
	MemberID         string                `json:"member_id"`
	InstanceID       *string               `json:"instance_id"`
	ClientID         string                `json:"client_id"`
	Host             string                `json:"host"`
	MemberEpoch      *int32                `json:"member_epoch"`
	Assignment       []jsonTopicPartitions `json:"assignment"`
	TargetAssignment []jsonTopicPartitions `json:"target_assignment"`
}

type jsonGroup struct {
	GroupID         string          `json:"group_id"`
	State           string          `json:"state"`
	Type            string          `json:"type"`
	ProtocolType    string          `json:"protocol_type"`
	Assignor        string          `json:"assignor"`
	Coordinator     jsonBroker      `json:"coordinator"`
	Epoch           *int32          `json:"epoch"`
	AssignmentEpoch *int32          `json:"assignment_epoch"`
	Members         []jsonMember    `json:"members"`
	Partitions      []jsonPartition `json:"partitions"`
	TotalLag        int64           `json:"total_lag"`
}

type jsonDescribed struct {
	Groups   []jsonGroup `json:"groups"`
	NotFound []string    `json:"not_found"`
}

type result struct {
	code           int
	stdout, stderr string
}

func runCLI(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := Run(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// decodeStrict parses one JSON document, rejecting fields the test shapes
// do not know, so a renamed or added field is noticed here first.
func decodeStrict(t *testing.T, doc string, v any) {
	t.Helper()
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decoding JSON: %v\n%s", err, doc)
	}
	if dec.More() {
		t.Fatalf("more than one JSON document:\n%s", doc)
	}
}

// testCluster is a three-broker fake cluster on loopback, so group
// coordinators differ between groups as on a real cluster.
func testCluster(t *testing.T) (*kfake.Cluster, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.SeedTopics(3, "orders"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ",")
}

func newClient(t *testing.T, brokers string, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	cl, err := kgo.NewClient(append([]kgo.Opt{kgo.SeedBrokers(strings.Split(brokers, ",")...)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cl.Close)
	return cl
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// produce writes counts[p] records to partition p of topic.
func produce(t *testing.T, brokers, topic string, counts ...int) {
	t.Helper()
	cl := newClient(t, brokers, kgo.RecordPartitioner(kgo.ManualPartitioner()))
	var rs []*kgo.Record
	for p, n := range counts {
		for range n {
			rs = append(rs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte("v")})
		}
	}
	if err := cl.ProduceSync(testCtx(t), rs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll joins group with the given options and polls until it has
// read want records, which proves it owns every partition; offsets are not
// committed automatically, so the test decides what the group has committed.
func consumeAll(t *testing.T, brokers, group string, want int, opts ...kgo.Opt) *kgo.Client {
	t.Helper()
	opts = append([]kgo.Opt{
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics("orders"),
		kgo.DisableAutoCommit(),
		kgo.FetchMaxWait(100 * time.Millisecond),
	}, opts...)
	cl := newClient(t, brokers, opts...)
	ctx := testCtx(t)
	got := 0
	for got < want {
		fs := cl.PollFetches(ctx)
		if err := ctx.Err(); err != nil {
			t.Fatalf("group %s consumed %d of %d records: %v", group, got, want, err)
		}
		fs.EachError(func(topic string, p int32, err error) { t.Logf("fetch %s/%d: %v", topic, p, err) })
		got += fs.NumRecords()
	}
	return cl
}

// commit commits the given partition offsets of topic "orders" as a group
// member, the way an application does.
func commit(t *testing.T, cl *kgo.Client, offsets map[int32]int64) {
	t.Helper()
	m := map[string]map[int32]kgo.EpochOffset{"orders": {}}
	for p, o := range offsets {
		m["orders"][p] = kgo.EpochOffset{Epoch: -1, Offset: o}
	}
	var cerr error
	cl.CommitOffsetsSync(testCtx(t), m, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, tp := range resp.Topics {
			for _, p := range tp.Partitions {
				if p.ErrorCode != 0 && cerr == nil {
					cerr = kerr.ErrorForCode(p.ErrorCode)
				}
			}
		}
	})
	if cerr != nil {
		t.Fatalf("commit: %v", cerr)
	}
}

func coordinatorOf(t *testing.T, brokers, group string) int32 {
	t.Helper()
	adm := kadm.NewClient(newClient(t, brokers))
	r := adm.FindGroupCoordinators(testCtx(t), group)[group]
	if r.Err != nil {
		t.Fatal(r.Err)
	}
	return r.NodeID
}

// settle is how long a test waits for what the broker does after it
// answered (group state, records produced in the background).
const settle = 20 * time.Second

// tableRows returns the whitespace-split lines of stdout that start with
// first, e.g. every "orders" row of an offsets table.
func tableRows(out, first string) [][]string {
	var rows [][]string
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) > 0 && f[0] == first {
			rows = append(rows, f)
		}
	}
	return rows
}

func ptr[T any](v T) *T { return &v }
