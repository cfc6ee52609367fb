package broker

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/cmd/sluice/cli"
	"github.com/sluice-io/sluice/internal/testkit"
)

// sluice runs the command line against brokers and returns its exit code
// and output.
func sluice(brokers string, args ...string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := cli.Run(append(args, "--brokers", brokers), &out, &errOut)
	return code, out.String(), errOut.String()
}

// `sluice partitions reassign --execute --throttle` against a three-broker
// cluster, as kafka-reassign-partitions: it sets both rates on every
// broker the move involves and the throttled replicas on the topic, the
// move runs no faster than the throttle, `--verify --preserve-throttles`
// leaves them, and `--verify` once the move is done removes them all.
func TestReassignThrottleEndToEnd(t *testing.T) {
	bs := threeBrokers(t, "replica.fetch.max.bytes=65536") // one record per fetch
	createAssigned(t, bs[0], "mv", 2, 3)
	ctx := context.Background()
	cl := bs[1].client(t, kgo.DefaultProduceTopic("mv"), kgo.DisableIdempotentWrite(), kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := incompressible(64 << 10)
	for range 6 { // 384 KiB for broker 1 to copy
		if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	plan := filepath.Join(t.TempDir(), "plan.json")
	if err := os.WriteFile(plan, []byte(`{"version":1,"partitions":[{"topic":"mv","partition":0,"replicas":[2,1]}]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	brokers := strings.Join([]string{bs[0].addr, bs[1].addr, bs[2].addr}, ",")

	start := time.Now()
	code, out, errOut := sluice(brokers, "partitions", "reassign", "--execute", "--reassignment-json-file", plan, "--throttle", "131072")
	if code != 0 || !strings.Contains(out, "The inter-broker throttle limit was set to 131072 B/s") {
		t.Fatalf("--execute: exit %d\n%s%s", code, out, errOut)
	}
	throttled := func(tb *testBroker) error {
		img := tb.metaImage()
		for _, id := range []string{"1", "2", "3"} { // 2 and 3 hold it, 1 will
			got := img.BrokerConfigs(id)
			if got[leaderThrottledRate] != "131072" || got[followerThrottledRate] != "131072" || len(got) != 2 {
				return fmt.Errorf("broker %s's dynamic configs: %v", id, got)
			}
		}
		mt, _ := img.Topic("mv")
		if l, f := mt.Configs["leader.replication.throttled.replicas"], mt.Configs["follower.replication.throttled.replicas"]; l != "0:2,0:3" || f != "0:1" {
			return fmt.Errorf("topic throttles: leader %q follower %q", l, f)
		}
		return nil
	}
	if err := throttled(bs[0]); err != nil {
		t.Fatalf("after --execute: %v", err)
	}

	type verified struct {
		Complete         bool `json:"complete"`
		ThrottlesCleared bool `json:"throttles_cleared"`
	}
	verify := func(extra ...string) verified {
		t.Helper()
		code, out, errOut := sluice(brokers, append([]string{"partitions", "reassign", "--verify", "--reassignment-json-file", plan, "--json"}, extra...)...)
		var v verified
		if err := json.Unmarshal([]byte(out), &v); code != 0 || err != nil {
			t.Fatalf("--verify: exit %d, %v\n%s%s", code, err, out, errOut)
		}
		return v
	}
	testkit.Eventually(t, 60*time.Second, "the move to complete", func() bool {
		v := verify("--preserve-throttles")
		if !v.Complete {
			time.Sleep(100 * time.Millisecond)
		}
		return v.Complete && !v.ThrottlesCleared
	})
	if took := time.Since(start); took < 1200*time.Millisecond {
		t.Errorf("broker 1 copied 384 KiB in %v under a 128 KiB/s throttle (want 1.2 s or more)", took)
	}
	if err := throttled(bs[0]); err != nil {
		t.Fatalf("--verify --preserve-throttles removed throttles: %v", err)
	}

	if v := verify(); !v.Complete || !v.ThrottlesCleared {
		t.Fatalf("--verify of a finished move: %+v", v)
	}
	for _, tb := range bs {
		testkit.Eventually(t, 10*time.Second, "broker "+strconv.Itoa(int(tb.cfg.NodeID))+" to lose the throttles", func() bool {
			img := tb.metaImage()
			mt, _ := img.Topic("mv")
			return img.BrokerConfigs("1") == nil && img.BrokerConfigs("2") == nil && img.BrokerConfigs("3") == nil &&
				mt.Configs["leader.replication.throttled.replicas"] == "" && mt.Configs["follower.replication.throttled.replicas"] == ""
		})
		tb.syncDynamicConfigs()
		if tb.throttles.leader.On() || tb.throttles.follower.On() {
			t.Errorf("broker %d still throttles after --verify removed the rates", tb.cfg.NodeID)
		}
	}
}
