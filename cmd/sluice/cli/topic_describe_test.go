package cli

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
)

// --sizes gives each partition one size per replica, the one that
// replica's broker reports in DescribeLogDirs, in --json and in a SIZES
// column; without it, neither appears.
func TestTopicDescribeSizes(t *testing.T) {
	_, brokers := testCluster(t)
	produce(t, brokers, "orders", 5, 0, 2)
	adm := kadm.NewClient(newClient(t, brokers))
	md := topicDetail(t, brokers, "orders")

	r := runCLI("topic", "describe", "orders", "--sizes", "--json", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("describe --sizes: exit %d, stderr %q", r.code, r.stderr)
	}
	var doc struct {
		Topics []struct {
			Partitions []struct {
				Partition    int32         `json:"partition"`
				Replicas     []int32       `json:"replicas"`
				ReplicaSizes []replicaSize `json:"replica_sizes"`
			} `json:"partitions"`
		} `json:"topics"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &doc); err != nil {
		t.Fatalf("%v\n%s", err, r.stdout)
	}
	if len(doc.Topics) != 1 || len(doc.Topics[0].Partitions) != 3 {
		t.Fatalf("described %s", r.stdout)
	}
	cells := map[int32]string{}
	for _, p := range doc.Topics[0].Partitions {
		replicas := md.Partitions[p.Partition].Replicas
		if len(p.ReplicaSizes) != len(replicas) {
			t.Fatalf("partition %d: sizes %+v for replicas %v", p.Partition, p.ReplicaSizes, replicas)
		}
		var want []string
		for i, rs := range p.ReplicaSizes {
			dirs, err := adm.DescribeBrokerLogDirs(testCtx(t), replicas[i], nil)
			if err != nil {
				t.Fatal(err)
			}
			var reported *kadm.DescribedLogDirPartition
			for _, d := range dirs {
				if dp, ok := d.Topics.Lookup("orders", p.Partition); ok {
					reported = &dp
				}
			}
			if reported == nil || rs.Broker != replicas[i] || rs.Size == nil || *rs.Size != reported.Size ||
				rs.Dir == nil || *rs.Dir != reported.Dir || rs.OffsetLag == nil || *rs.OffsetLag != reported.OffsetLag {
				t.Fatalf("partition %d replica %d: %+v, broker reports %+v", p.Partition, replicas[i], rs, reported)
			}
			if p.Partition != 1 && *rs.Size <= 0 {
				t.Fatalf("partition %d replica %d: size %d after a produce", p.Partition, replicas[i], *rs.Size)
			}
			want = append(want, fmt.Sprintf("%d:%d", rs.Broker, *rs.Size))
		}
		cells[p.Partition] = strings.Join(want, ",")
	}

	r = runCLI("topic", "describe", "orders", "--sizes", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("describe --sizes: exit %d, stderr %q", r.code, r.stderr)
	}
	if h := tableRows(r.stdout, "PARTITION"); len(h) != 1 || h[0][len(h[0])-1] != "SIZES" {
		t.Fatalf("header %q:\n%s", h, r.stdout)
	}
	for p, cell := range cells {
		if rows := tableRows(r.stdout, fmt.Sprint(p)); len(rows) != 1 || rows[0][len(rows[0])-1] != cell {
			t.Fatalf("partition %d row %q, want SIZES %q:\n%s", p, rows, cell, r.stdout)
		}
	}

	r = runCLI("topic", "describe", "orders", "--json", "--brokers", brokers)
	if r.code != 0 || strings.Contains(r.stdout, "replica_sizes") {
		t.Fatalf("describe without --sizes: exit %d:\n%s", r.code, r.stdout)
	}
}

func TestFormatSizes(t *testing.T) {
	n := int64(4096)
	for _, tc := range []struct {
		in   []replicaSize
		want string
	}{
		{nil, "-"},
		{[]replicaSize{{Broker: 1, Size: &n}, {Broker: 2}}, "1:4096,2:-"},
	} {
		if got := formatSizes(tc.in); got != tc.want {
			t.Errorf("formatSizes(%+v) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
