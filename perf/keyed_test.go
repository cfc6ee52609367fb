package perf

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
)

// TestKeyedProduceOnConfiguredTopic: --topic-config reaches the created
// topic and --keys N gives every record one of N keys, in turn, so a
// compacted topic takes the load and keeps N records.
func TestKeyedProduceOnConfiguredTopic(t *testing.T) {
	brokers := newFake(t)
	p := runJSON(t, "produce", "--brokers", brokers, "--topic", "keyed", "--records", "70", "--record-size", "10",
		"--keys", "7", "--topic-config", "cleanup.policy=compact", "--topic-config", "segment.bytes=16777216")
	// Bytes count keys too: "k0" to "k6" are two bytes each.
	if p.Records != 70 || p.Errors != 0 || p.Bytes != 70*(10+2) {
		t.Fatalf("produce: %+v", p)
	}
	if p.Config.Keys != 7 || p.Config.TopicConfig != "cleanup.policy=compact,segment.bytes=16777216" {
		t.Fatalf("config echo: %+v", p.Config)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers), kgo.ConsumeTopics("keyed"),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()

	rc, err := kadm.NewClient(cl).DescribeTopicConfigs(ctx, "keyed")
	if err != nil {
		t.Fatal(err)
	}
	c, err := rc.On("keyed", nil)
	if err != nil {
		t.Fatal(err)
	}
	set := map[string]string{}
	for _, kv := range c.Configs {
		if kv.Value != nil {
			set[kv.Key] = *kv.Value
		}
	}
	if set["cleanup.policy"] != "compact" || set["segment.bytes"] != "16777216" {
		t.Fatalf("topic configs after create: cleanup.policy=%q segment.bytes=%q", set["cleanup.policy"], set["segment.bytes"])
	}

	perKey := map[string]int{}
	for n := 0; n < 70; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("after %d records: %v", n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			// One client cycles from k0: record i has key k<i mod 7>.
			if want := fmt.Sprintf("k%d", r.Offset%7); string(r.Key) != want {
				t.Errorf("offset %d: key %q, want %q", r.Offset, r.Key, want)
			}
			perKey[string(r.Key)]++
			n++
		})
	}
	for i := range 7 {
		if k := fmt.Sprintf("k%d", i); perKey[k] != 10 {
			t.Errorf("key %s: %d records, want 10 (all: %v)", k, perKey[k], perKey)
		}
	}
}
