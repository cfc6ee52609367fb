package cli

import (
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"
)

type jsonClusterInfo struct {
	ClusterID  *string `json:"cluster_id"`
	Controller *int32  `json:"controller"`
	Brokers    []struct {
		NodeID      int32   `json:"node_id"`
		Host        string  `json:"host"`
		Port        int32   `json:"port"`
		Rack        *string `json:"rack"`
		APIVersions []struct {
			Key        int16  `json:"key"`
			Name       string `json:"name"`
			MinVersion int16  `json:"min_version"`
			MaxVersion int16  `json:"max_version"`
		} `json:"api_versions"`
		Error *string `json:"error"`
	} `json:"brokers"`
	TopicCount             int `json:"topic_count"`
	PartitionCount         int `json:"partition_count"`
	InternalTopicCount     int `json:"internal_topic_count"`
	InternalPartitionCount int `json:"internal_partition_count"`
}

func TestClusterInfo(t *testing.T) {
	// Capping the versions proves the output is the broker's answer, not
	// the client's own table.
	versions := kversion.V3_7_0()
	c, err := kfake.NewCluster(kfake.NumBrokers(3), kfake.ClusterID("test-cluster"), kfake.SeedTopics(3, "orders"), kfake.MaxVersions(versions))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	brokers := strings.Join(c.ListenAddrs(), ",")
	if _, err := kadm.NewClient(newClient(t, brokers)).CreateTopic(testCtx(t), 2, 1, nil, "payments"); err != nil {
		t.Fatal(err)
	}

	r := runCLI("cluster", "info", "--json", "--brokers", brokers)
	if r.code != 0 || r.stderr != "" {
		t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
	}
	var info jsonClusterInfo
	decodeStrict(t, r.stdout, &info)
	if info.ClusterID == nil || *info.ClusterID != "test-cluster" {
		t.Errorf("cluster_id %v", info.ClusterID)
	}
	if info.TopicCount != 2 || info.PartitionCount != 5 || info.InternalTopicCount != 0 || info.InternalPartitionCount != 0 {
		t.Errorf("counts %d/%d internal %d/%d, want 2 topics, 5 partitions", info.TopicCount, info.PartitionCount, info.InternalTopicCount, info.InternalPartitionCount)
	}
	var addrs, ids []string
	for _, b := range info.Brokers {
		addrs = append(addrs, net.JoinHostPort(b.Host, strconv.Itoa(int(b.Port))))
		ids = append(ids, strconv.Itoa(int(b.NodeID)))
		if b.Rack == nil || *b.Rack != "krack" || b.Error != nil { // kfake puts every broker in rack "krack"
			t.Errorf("broker %d: rack %v, error %v", b.NodeID, b.Rack, b.Error)
		}
		produceMax, _ := versions.LookupMaxKeyVersion(int16(kmsg.Produce))
		found := false
		for i, v := range b.APIVersions {
			if i > 0 && v.Key <= b.APIVersions[i-1].Key {
				t.Errorf("broker %d: API keys not sorted", b.NodeID)
			}
			if v.Key == int16(kmsg.Produce) {
				found = v.Name == "Produce" && v.MaxVersion == produceMax
			}
			if v.Name == "" || v.MinVersion > v.MaxVersion {
				t.Errorf("broker %d: %+v", b.NodeID, v)
			}
		}
		if !found {
			t.Errorf("broker %d: no Produce up to v%d in %+v", b.NodeID, produceMax, b.APIVersions)
		}
	}
	listen := c.ListenAddrs()
	slices.Sort(listen)
	sortedAddrs := slices.Sorted(slices.Values(addrs))
	if !slices.Equal(sortedAddrs, listen) || !slices.IsSorted(ids) {
		t.Errorf("brokers %v (ids %v), want %v sorted by id", addrs, ids, listen)
	}
	if info.Controller == nil || !slices.Contains(ids, strconv.Itoa(int(*info.Controller))) {
		t.Errorf("controller %v not among %v", info.Controller, ids)
	}

	r = runCLI("cluster", "info", "--brokers", brokers)
	if r.code != 0 {
		t.Fatalf("text: exit %d, stderr %q", r.code, r.stderr)
	}
	for _, want := range []string{"Cluster ID:", "test-cluster", "Topics:", "2 (5 partitions)", "NODE-ID", "APIS"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("text output lacks %q:\n%s", want, r.stdout)
		}
	}
	for i, b := range info.Brokers {
		row := tableRows(r.stdout, ids[i])
		if len(row) != 1 || row[0][1] != addrs[i] || row[0][2] != "krack" || row[0][3] != strconv.Itoa(len(b.APIVersions)) {
			t.Errorf("row for broker %s: %q", ids[i], row)
		}
	}

	checkRuntimeFailure(t, runCLI("cluster", "info", "--brokers", "127.0.0.1:1"), "cannot reach brokers 127.0.0.1:1")
	for _, args := range [][]string{{"cluster"}, {"cluster", "nope"}, {"cluster", "info", "extra"}} {
		if r := runCLI(args...); r.code != exitUsage || !strings.Contains(r.stderr, "usage: sluice cluster") {
			t.Errorf("%q: exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
