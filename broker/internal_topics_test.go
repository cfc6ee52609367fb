package broker

import (
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/controller"
	"github.com/sluice-io/sluice/coordinator"
)

// TestClientsCannotCreateInternalTopics: a client-made __consumer_offsets
// (one partition, cleanup.policy=delete) would be adopted by the
// coordinator and its retention would erase committed offsets.
func TestClientsCannotCreateInternalTopics(t *testing.T) {
	tb := startTestBroker(t)
	c := tb.raw(t)
	for _, name := range []string{coordinator.OffsetsTopic, "__transaction_state", "__cluster_metadata"} {
		for _, validateOnly := range []bool{true, false} {
			req := createTopicsReq(validateOnly, name, 1, 1)
			req.Topics[0].Configs = []kmsg.CreateTopicsRequestTopicConfig{{Name: "cleanup.policy", Value: kmsg.StringPtr("delete")}}
			st := do[*kmsg.CreateTopicsResponse](c, req, 7).Topics[0]
			if st.ErrorCode != kerr.InvalidRequest.Code || !strings.Contains(strOrEmpty(st.ErrorMessage), "Creation of internal topic "+name+" is prohibited") {
				t.Errorf("create %s (validate_only=%v): %d %q", name, validateOnly, st.ErrorCode, strOrEmpty(st.ErrorMessage))
			}
		}
		if _, ok := tb.meta.Image().Topic(name); ok {
			t.Fatalf("%s was created by a client", name)
		}
	}
	// Names that merely start with "__" are ordinary topics.
	if st := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "__mine", 1, 1), 7).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("create __mine: %d %q", st.ErrorCode, strOrEmpty(st.ErrorMessage))
	}
}

// startWithOffsetsTopic starts a broker and has its coordinator create
// __consumer_offsets.
func startWithOffsetsTopic(t *testing.T) (*testBroker, *rawConn) {
	t.Helper()
	tb := startTestBroker(t, "offsets.topic.num.partitions=3")
	c := tb.raw(t)
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	for range 50 {
		if do[*kmsg.FindCoordinatorResponse](c, fc, 3).ErrorCode == 0 && tb.topics.get(coordinator.OffsetsTopic) != nil {
			return tb, c
		}
	}
	t.Fatal("the coordinator never created " + coordinator.OffsetsTopic)
	return nil, nil
}

func incrementalAlter(c *rawConn, topic string, ops ...kmsg.IncrementalAlterConfigsRequestResourceConfig) kmsg.IncrementalAlterConfigsResponseResource {
	req := kmsg.NewPtrIncrementalAlterConfigsRequest()
	rr := kmsg.NewIncrementalAlterConfigsRequestResource()
	rr.ResourceType, rr.ResourceName, rr.Configs = kmsg.ConfigResourceTypeTopic, topic, ops
	req.Resources = []kmsg.IncrementalAlterConfigsRequestResource{rr}
	return do[*kmsg.IncrementalAlterConfigsResponse](c, req, 1).Resources[0]
}

func setOp(name, value string) kmsg.IncrementalAlterConfigsRequestResourceConfig {
	return kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: name, Op: kmsg.IncrementalAlterConfigOpSet, Value: kmsg.StringPtr(value)}
}

// TestInternalTopicKeepsItsDataSettings: IncrementalAlterConfigs with
// cleanup.policy=delete and retention.ms=1 on __consumer_offsets used to be
// accepted, and retention then erased every group's committed offsets.
func TestInternalTopicKeepsItsDataSettings(t *testing.T) {
	tb, c := startWithOffsetsTopic(t)
	const off = coordinator.OffsetsTopic
	deleteOp := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpDelete}
	for name, ops := range map[string][]kmsg.IncrementalAlterConfigsRequestResourceConfig{
		"cleanup.policy=delete":    {setOp("cleanup.policy", "delete")},
		"retention.ms=1":           {setOp("retention.ms", "1")},
		"retention.bytes=1":        {setOp("retention.bytes", "1")},
		"max.message.bytes=10":     {setOp("max.message.bytes", "10")},
		"DELETE cleanup.policy":    {deleteOp},
		"tunable with a bad one":   {setOp("flush.messages", "1"), setOp("retention.ms", "1")},
		"APPEND to cleanup.policy": {{Name: "cleanup.policy", Op: kmsg.IncrementalAlterConfigOpAppend, Value: kmsg.StringPtr("delete")}},
	} {
		r := incrementalAlter(c, off, ops...)
		if r.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(strOrEmpty(r.ErrorMessage), "internal") {
			t.Errorf("%s: %d %q, want POLICY_VIOLATION", name, r.ErrorCode, strOrEmpty(r.ErrorMessage))
		}
	}
	// The legacy AlterConfigs replaces the whole set: leaving
	// cleanup.policy out would turn compaction off.
	ac := kmsg.NewPtrAlterConfigsRequest()
	ar := kmsg.NewAlterConfigsRequestResource()
	ar.ResourceType, ar.ResourceName = kmsg.ConfigResourceTypeTopic, off
	ar.Configs = []kmsg.AlterConfigsRequestResourceConfig{{Name: "flush.messages", Value: kmsg.StringPtr("1")}}
	ac.Resources = []kmsg.AlterConfigsRequestResource{ar}
	if r := do[*kmsg.AlterConfigsResponse](c, ac, 1).Resources[0]; r.ErrorCode != kerr.PolicyViolation.Code {
		t.Errorf("AlterConfigs dropping cleanup.policy: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if mt, _ := tb.meta.Image().Topic(off); mt.Configs["cleanup.policy"] != "compact" || mt.Configs["retention.ms"] != "" {
		t.Fatalf("%s configs after the refusals: %v", off, mt.Configs)
	}
	if cfg := tb.topics.get(off).cfg; cfg.CleanupPolicy != "compact" {
		t.Fatalf("live cleanup.policy %q", cfg.CleanupPolicy)
	}
	// Settings that only say when to fsync or how to lay out files may
	// still be tuned, by either API.
	if r := incrementalAlter(c, off, setOp("flush.messages", "1"), setOp("segment.ms", "3600000")); r.ErrorCode != 0 {
		t.Fatalf("tuning flush.messages and segment.ms: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	mt, _ := tb.meta.Image().Topic(off)
	ar.Configs = nil
	for k, v := range mt.Configs {
		ar.Configs = append(ar.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: k, Value: kmsg.StringPtr(v)})
	}
	ar.Configs = append(ar.Configs, kmsg.AlterConfigsRequestResourceConfig{Name: "flush.ms", Value: kmsg.StringPtr("1000")})
	ac.Resources = []kmsg.AlterConfigsRequestResource{ar}
	if r := do[*kmsg.AlterConfigsResponse](c, ac, 1).Resources[0]; r.ErrorCode != 0 {
		t.Fatalf("AlterConfigs keeping the protected settings: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	// Ordinary topics are not affected.
	tb.createTopic(t, "user", 1, nil)
	if r := incrementalAlter(c, "user", setOp("cleanup.policy", "delete"), setOp("retention.ms", "1")); r.ErrorCode != 0 {
		t.Fatalf("user topic: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
}

// TestInternalTopicCannotBeDeletedTrimmedOrGrown: each would lose or strand
// committed offsets.
func TestInternalTopicCannotBeDeletedTrimmedOrGrown(t *testing.T) {
	tb, c := startWithOffsetsTopic(t)
	const off = coordinator.OffsetsTopic

	dt := kmsg.NewPtrDeleteTopicsRequest()
	dt.Topics = []kmsg.DeleteTopicsRequestTopic{{Topic: kmsg.StringPtr(off)}}
	if r := do[*kmsg.DeleteTopicsResponse](c, dt, 6).Topics[0]; r.ErrorCode != kerr.InvalidTopicException.Code || !strings.Contains(strOrEmpty(r.ErrorMessage), off) {
		t.Errorf("DeleteTopics: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}

	dr := kmsg.NewPtrDeleteRecordsRequest()
	dr.Topics = []kmsg.DeleteRecordsRequestTopic{{Topic: off, Partitions: []kmsg.DeleteRecordsRequestTopicPartition{{Partition: 0, Offset: -1}}}}
	if r := do[*kmsg.DeleteRecordsResponse](c, dr, 2).Topics[0].Partitions[0]; r.ErrorCode != kerr.InvalidTopicException.Code {
		t.Errorf("DeleteRecords: %d", r.ErrorCode)
	}

	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: off, Count: 4}}
	for _, validateOnly := range []bool{true, false} {
		cp.ValidateOnly = validateOnly
		if r := do[*kmsg.CreatePartitionsResponse](c, cp, 3).Topics[0]; r.ErrorCode != kerr.InvalidRequest.Code {
			t.Errorf("CreatePartitions (validate_only=%v): %d %q", validateOnly, r.ErrorCode, strOrEmpty(r.ErrorMessage))
		}
	}
	if n := len(tb.topics.get(off).parts); n != 3 {
		t.Fatalf("%s has %d partitions, want 3", off, n)
	}
}

// TestDamagedInternalTopicCanBeRepaired: a __consumer_offsets a client set
// to cleanup.policy=delete before the policy existed can be set back to
// the broker's own settings, and only to those.
func TestDamagedInternalTopicCanBeRepaired(t *testing.T) {
	tb, c := startWithOffsetsTopic(t)
	const off = coordinator.OffsetsTopic
	damaged := map[string]string{"cleanup.policy": "delete", "retention.ms": "1", "segment.bytes": offsetsTopicConfigs["segment.bytes"]}
	if _, err := tb.meta.Commit(func(s *controller.State) ([]controller.Record, error) { return s.PlanTopicConfigs(off, damaged) }); err != nil {
		t.Fatal(err)
	}
	if r := incrementalAlter(c, off, setOp("cleanup.policy", "compact,delete")); r.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("a change to something else than the broker's own value: %d", r.ErrorCode)
	}
	deleteRetention := kmsg.IncrementalAlterConfigsRequestResourceConfig{Name: "retention.ms", Op: kmsg.IncrementalAlterConfigOpDelete}
	if r := incrementalAlter(c, off, setOp("cleanup.policy", "compact"), deleteRetention); r.ErrorCode != 0 {
		t.Fatalf("restoring the broker's settings: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if mt, _ := tb.meta.Image().Topic(off); mt.Configs["cleanup.policy"] != "compact" || mt.Configs["retention.ms"] != "" {
		t.Fatalf("configs after the repair: %v", mt.Configs)
	}
	if r := incrementalAlter(c, off, setOp("cleanup.policy", "delete")); r.ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("damaging it again: %d", r.ErrorCode)
	}
}
