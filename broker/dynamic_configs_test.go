package broker

import (
	"context"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// incAlter sends one IncrementalAlterConfigs for a BROKER resource and
// returns its error code and message.
func incAlter(t *testing.T, c *rawConn, resource string, validateOnly bool, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) (int16, string) {
	t.Helper()
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	req.ValidateOnly = validateOnly
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeBroker, resource, ops
	req.Resources = append(req.Resources, rr)
	r := do[*kmsg.IncrementalAlterConfigsResponse](c, req, 1).Resources[0]
	return r.ErrorCode, strOrEmpty(r.ErrorMessage)
}

func brokerDelete(name string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpDelete}
}

// describeBroker describes resource with synonyms, by setting name.
func describeBroker(t *testing.T, c *rawConn, resource string) (int16, map[string]kmsg.DescribeConfigsResponseResourceConfig) {
	t.Helper()
	req := kmsg.NewPtrDescribeConfigsRequest()
	req.IncludeSynonyms = true
	rr := kmsg.NewDescribeConfigsRequestResource()
	rr.ResourceType, rr.ResourceName = kmsg.ConfigResourceTypeBroker, resource
	req.Resources = append(req.Resources, rr)
	r := do[*kmsg.DescribeConfigsResponse](c, req, 4).Resources[0]
	out := map[string]kmsg.DescribeConfigsResponseResourceConfig{}
	for _, e := range r.Configs {
		out[e.Name] = e
	}
	return r.ErrorCode, out
}

func synonymSources(e kmsg.DescribeConfigsResponseResourceConfig) []kmsg.ConfigSource {
	var out []kmsg.ConfigSource
	for _, s := range e.ConfigSynonyms {
		out = append(out, s.Source)
	}
	return out
}

// The replication throttle rates are dynamic broker settings on a single
// node: set for the broker or cluster-wide, the broker's own value beats
// the cluster default, which beats the properties file; the throttles
// take the new rate without a restart; DescribeConfigs names the source
// with Kafka's synonyms; static and unknown settings, bad values and
// other brokers' ids are refused with INVALID_REQUEST; validateOnly
// changes nothing; and the values survive a restart.
func TestDynamicBrokerConfigsSingleNode(t *testing.T) {
	tb := startTestBroker(t, "follower.replication.throttled.rate=300000")
	self := strconv.Itoa(int(tb.cfg.NodeID))
	c := tb.raw(t)
	limits := func() (leader, follower int64) {
		tb.syncDynamicConfigs()
		return tb.throttles.leader.Limit(), tb.throttles.follower.Limit()
	}
	if l, f := limits(); l != math.MaxInt64 || f != 300000 {
		t.Fatalf("static rates %d %d", l, f)
	}

	if code, msg := incAlter(t, c, self, true, setOp(leaderThrottledRate, "1000")); code != 0 {
		t.Fatalf("validateOnly: %d %s", code, msg)
	}
	if l, _ := limits(); l != math.MaxInt64 {
		t.Fatalf("validateOnly changed the leader rate to %d", l)
	}
	if code, msg := incAlter(t, c, self, false, setOp(leaderThrottledRate, "1000")); code != 0 {
		t.Fatalf("set the broker's leader rate: %d %s", code, msg)
	}
	if code, msg := incAlter(t, c, "", false, setOp(leaderThrottledRate, "5000"), setOp(followerThrottledRate, "6000")); code != 0 {
		t.Fatalf("set the cluster defaults: %d %s", code, msg)
	}
	if l, f := limits(); l != 1000 || f != 6000 {
		t.Fatalf("rates %d %d; want the broker's 1000 and the cluster default 6000", l, f)
	}

	code, byName := describeBroker(t, c, self)
	l, f := byName[leaderThrottledRate], byName[followerThrottledRate]
	switch {
	case code != 0:
		t.Fatalf("describe: %d", code)
	case *l.Value != "1000" || l.Source != kmsg.ConfigSourceDynamicBrokerConfig || l.ReadOnly:
		t.Errorf("leader rate: %s source %v read-only %v", *l.Value, l.Source, l.ReadOnly)
	case strings.Join(sourceNames(synonymSources(l)), ",") != "DYNAMIC_BROKER_CONFIG,DYNAMIC_DEFAULT_BROKER_CONFIG,DEFAULT_CONFIG":
		t.Errorf("leader rate synonyms: %v", synonymSources(l))
	case *f.Value != "6000" || f.Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig ||
		strings.Join(sourceNames(synonymSources(f)), ",") != "DYNAMIC_DEFAULT_BROKER_CONFIG,STATIC_BROKER_CONFIG,DEFAULT_CONFIG":
		t.Errorf("follower rate: %s source %v synonyms %v", *f.Value, f.Source, synonymSources(f))
	case !byName["num.partitions"].ReadOnly:
		t.Error("num.partitions is not read-only")
	}
	code, defaults := describeBroker(t, c, "")
	if code != 0 || len(defaults) != 2 || *defaults[followerThrottledRate].Value != "6000" ||
		defaults[followerThrottledRate].Source != kmsg.ConfigSourceDynamicDefaultBrokerConfig {
		t.Errorf("describe the cluster default: %d %v", code, defaults)
	}

	for _, c2 := range []struct {
		resource string
		op       kmsg.IncrementalAlterConfigsRequestResourceConfig
		words    string
	}{
		{self, setOp("num.partitions", "3"), "cannot update these configs dynamically"},
		{self, setOp("leader.replication.throttled.rat", "3"), "unknown broker setting"},
		{"", setOp(leaderThrottledRate, "-5"), "below the minimum"},
		{self, setOp(leaderThrottledRate, "fast"), "not an integer"},
		{"7", setOp(leaderThrottledRate, "3"), "no such broker is registered"},
		{"x", setOp(leaderThrottledRate, "3"), "node id must be an integer"},
	} {
		code, msg := incAlter(t, c, c2.resource, false, c2.op)
		if code != kerr.InvalidRequest.Code || !strings.Contains(msg, c2.words) {
			t.Errorf("%s=%s on %q: code %d %q; want INVALID_REQUEST saying %q", c2.op.Name, *c2.op.Value, c2.resource, code, msg, c2.words)
		}
	}
	if l, f := limits(); l != 1000 || f != 6000 {
		t.Fatalf("refused changes moved the rates to %d %d", l, f)
	}

	// Legacy AlterConfigs replaces the broker's whole set: the leader
	// rate it does not name falls back to the cluster default.
	alt := kmsg.NewPtrAlterConfigsRequest()
	alt.Resources = []kmsg.AlterConfigsRequestResource{{ResourceType: kmsg.ConfigResourceTypeBroker, ResourceName: self,
		Configs: []kmsg.AlterConfigsRequestResourceConfig{{Name: followerThrottledRate, Value: kmsg.StringPtr("7000")}}}}
	if r := do[*kmsg.AlterConfigsResponse](c, alt, 2); r.Resources[0].ErrorCode != 0 {
		t.Fatalf("legacy alter: %d %v", r.Resources[0].ErrorCode, r.Resources[0].ErrorMessage)
	}
	if l, f := limits(); l != 5000 || f != 7000 {
		t.Fatalf("after the legacy alter: rates %d %d, want 5000 7000", l, f)
	}

	// They survive a restart.
	dir := tb.dir
	_ = tb.Shutdown(context.Background())
	tb = startTestBrokerIn(t, dir, "follower.replication.throttled.rate=300000")
	if l, f := limits(); l != 5000 || f != 7000 {
		t.Fatalf("after a restart: rates %d %d, want 5000 7000", l, f)
	}
	// Deleting them all gives back the properties file's.
	c = tb.raw(t)
	if code, msg := incAlter(t, c, self, false, brokerDelete(followerThrottledRate)); code != 0 {
		t.Fatalf("delete: %d %s", code, msg)
	}
	if code, msg := incAlter(t, c, "", false, brokerDelete(followerThrottledRate), brokerDelete(leaderThrottledRate)); code != 0 {
		t.Fatalf("delete the defaults: %d %s", code, msg)
	}
	if l, f := limits(); l != math.MaxInt64 || f != 300000 {
		t.Fatalf("after deleting: rates %d %d, want the static ones", l, f)
	}
}

func sourceNames(ss []kmsg.ConfigSource) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.String()
	}
	return out
}

// In a cluster, a throttle rate changed at run time reaches the broker it
// is meant for through the metadata, and its follower fetches follow it:
// a follower rate set on broker 3 (sent to broker 3, forwarded to the
// controller) slows its catch-up to the rate; deleted, catch-up is quick
// again; then a cluster-wide leader rate, sent to broker 2, slows the
// leader's side.
func TestThrottleRateChangedAtRunTime(t *testing.T) {
	bs := threeBrokers(t, "replica.fetch.max.bytes=65536") // one record per fetch
	createAssigned(t, bs[0], "thr", 2, 3)
	ctx := context.Background()
	for _, side := range []string{"leader", "follower"} {
		if r := incrementalAlter(bs[0].raw(t), "thr", setOp(side+".replication.throttled.replicas", "*")); r.ErrorCode != 0 {
			t.Fatalf("throttle the replicas: %d %v", r.ErrorCode, r.ErrorMessage)
		}
	}
	cl := bs[1].client(t, kgo.DefaultProduceTopic("thr"), kgo.RequiredAcks(kgo.LeaderAck()), kgo.DisableIdempotentWrite(),
		kgo.ProducerBatchCompression(kgo.NoCompression()))
	value := incompressible(64 << 10)
	// catchUp produces 384 KiB and times broker 3's catch-up.
	catchUp := func() time.Duration {
		t.Helper()
		start := time.Now()
		for range 6 {
			if err := cl.ProduceSync(ctx, &kgo.Record{Value: value}).FirstErr(); err != nil {
				t.Fatal(err)
			}
		}
		leaderLEO, _, _ := replicaState(bs[1], "thr")
		testkit.Eventually(t, 60*time.Second, "broker 3 to catch up", func() bool {
			leo, _, ok := replicaState(bs[2], "thr")
			return ok && leo == leaderLEO
		})
		return time.Since(start)
	}
	// seen waits until broker tb's metadata holds value for resource.
	seen := func(tb *testBroker, resource, name, value string) {
		t.Helper()
		testkit.Eventually(t, 10*time.Second, "the change in broker "+strconv.Itoa(int(tb.cfg.NodeID))+"'s metadata", func() bool {
			v, ok := tb.metaImage().BrokerConfigs(resource)[name]
			return ok == (value != "") && v == value
		})
	}
	if took := catchUp(); took > time.Second {
		t.Logf("unthrottled catch-up took %v", took) // a slow machine; the throttled runs below must take longer still
	}

	if code, msg := incAlter(t, bs[2].raw(t), "3", false, setOp(followerThrottledRate, "131072")); code != 0 {
		t.Fatalf("set broker 3's follower rate through broker 3: %d %s", code, msg)
	}
	seen(bs[2], "3", followerThrottledRate, "131072")
	if took := catchUp(); took < 1200*time.Millisecond {
		t.Fatalf("broker 3 caught up 384 KiB in %v at a follower rate of 128 KiB/s set at run time (want 1.2 s or more)", took)
	}
	_, byName := describeBroker(t, bs[2].raw(t), "3")
	if e := byName[followerThrottledRate]; *e.Value != "131072" || e.Source != kmsg.ConfigSourceDynamicBrokerConfig {
		t.Errorf("broker 3 describes its follower rate as %s from %v", *e.Value, e.Source)
	}

	if code, msg := incAlter(t, bs[2].raw(t), "3", false, brokerDelete(followerThrottledRate)); code != 0 {
		t.Fatalf("delete broker 3's follower rate: %d %s", code, msg)
	}
	seen(bs[2], "3", followerThrottledRate, "")
	if took := catchUp(); took >= 1200*time.Millisecond {
		t.Fatalf("with the follower rate deleted, broker 3 still took %v to catch up 384 KiB", took)
	}

	if code, msg := incAlter(t, bs[1].raw(t), "", false, setOp(leaderThrottledRate, "131072")); code != 0 {
		t.Fatalf("set the cluster-wide leader rate through broker 2: %d %s", code, msg)
	}
	seen(bs[1], "", leaderThrottledRate, "131072")
	if took := catchUp(); took < 1200*time.Millisecond {
		t.Fatalf("broker 3 caught up 384 KiB in %v with a cluster-wide leader rate of 128 KiB/s (want 1.2 s or more)", took)
	}
}

// incompressible is n bytes that compression does not shrink to nothing.
func incompressible(n int) []byte {
	v := make([]byte, n)
	for i := range v {
		v[i] = byte(i*7919 + i/251)
	}
	return v
}
