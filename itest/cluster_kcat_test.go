package itest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// TestClusterKcat: librdkafka (kcat) produces with acks=all and
// idempotence through one broker-only node and consumes through each node
// of a three-node cluster, an RF=3 topic of three partitions: clients find
// every partition's leader from any broker.
func TestClusterKcat(t *testing.T) { engines.Run(t, testClusterKcat) }

func testClusterKcat(t *testing.T, engine string) {
	kcat := kcatBin(t)
	c := startCluster(t, engine)
	const topic = "kcat-rf3"
	c.createTopic(2, topic, 3, minISR2)

	var in strings.Builder
	var want []string
	for i := range 300 {
		fmt.Fprintf(&in, "key-%d:value-%d\n", i, i)
		want = append(want, fmt.Sprintf("key-%d=value-%d", i, i))
	}
	slices.Sort(want)
	runKcat(t, kcat, in.String(), "-P", "-b", c.node(3).addr(), "-t", topic, "-K:",
		"-X", "acks=all", "-X", "enable.idempotence=true")

	for _, n := range c.nodes {
		out := runKcat(t, kcat, "", "-C", "-b", n.addr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%k=%s\n")
		got := strings.Split(strings.TrimSpace(out), "\n")
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("kcat consuming through node %d read %d records, want the %d produced (first: %q)", n.id, len(got), len(want), got[:min(len(got), 3)])
		}
	}
	parts := runKcat(t, kcat, "", "-C", "-b", c.node(1).addr(), "-t", topic, "-o", "beginning", "-e", "-q", "-f", "%p\n")
	for p := range 3 {
		if !strings.Contains(parts, fmt.Sprint(p)) {
			t.Errorf("no record landed on partition %d; the keys should spread over all three", p)
		}
	}

	// A topic that does not exist is created by the produce
	// (auto.create.topics.enable), whichever broker the client asks.
	for _, n := range c.nodes {
		auto := fmt.Sprintf("auto-%d", n.id)
		meta := runKcat(t, kcat, "", "-L", "-b", n.addr(), "-t", auto)
		if !strings.Contains(meta, "with 1 partitions") {
			t.Errorf("kcat -L through node %d did not auto-create %s:\n%s", n.id, auto, meta)
		}
	}
}
