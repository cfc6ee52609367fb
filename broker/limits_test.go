package broker

import (
	"math"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func createTopicsReq(validateOnly bool, name string, partitions int32, rf int16) *kmsg.CreateTopicsRequest {
	req := kmsg.NewPtrCreateTopicsRequest()
	rt := kmsg.NewCreateTopicsRequestTopic()
	rt.Topic, rt.NumPartitions, rt.ReplicationFactor = name, partitions, rf
	req.Topics, req.ValidateOnly = []kmsg.CreateTopicsRequestTopic{rt}, validateOnly
	return req
}

// TestHugePartitionCountsAreRefused: CreateTopics with 2^31-1 partitions
// (validate-only or not) and CreatePartitions to 2^31-1 used to kill the
// broker with out of memory. They are refused with POLICY_VIOLATION naming
// the setting, and the broker keeps serving.
func TestHugePartitionCountsAreRefused(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "small", 1, nil)
	c := tb.raw(t)
	for _, validateOnly := range []bool{true, false} {
		resp := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(validateOnly, "boom", math.MaxInt32, 1), 7)
		st := resp.Topics[0]
		if st.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(strOrEmpty(st.ErrorMessage), "max.broker.partitions") {
			t.Errorf("validate_only=%v: error %d %q, want POLICY_VIOLATION naming max.broker.partitions", validateOnly, st.ErrorCode, strOrEmpty(st.ErrorMessage))
		}
	}
	// A huge replication factor is refused for what it is, before the
	// partition count is looked at.
	resp := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "boom", math.MaxInt32, math.MaxInt16), 7)
	if code := resp.Topics[0].ErrorCode; code != kerr.InvalidReplicationFactor.Code {
		t.Errorf("rf 32767: error %d, want INVALID_REPLICATION_FACTOR", code)
	}
	for _, validateOnly := range []bool{true, false} {
		cp := kmsg.NewPtrCreatePartitionsRequest()
		cp.ValidateOnly = validateOnly
		cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "small", Count: math.MaxInt32}}
		r := do[*kmsg.CreatePartitionsResponse](c, cp, 3)
		if r.Topics[0].ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(strOrEmpty(r.Topics[0].ErrorMessage), "max.broker.partitions") {
			t.Errorf("grow to 2^31-1, validate_only=%v: %d %q", validateOnly, r.Topics[0].ErrorCode, strOrEmpty(r.Topics[0].ErrorMessage))
		}
	}
	if _, ok := tb.meta.Image().Topic("boom"); ok || tb.topics.get("boom") != nil {
		t.Fatal("a refused topic is in the metadata")
	}
	if n := len(tb.topics.get("small").parts); n != 1 {
		t.Fatalf("small has %d partitions after a refused grow", n)
	}
	// Still serving.
	if resp := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "fine", 2, 1), 7); resp.Topics[0].ErrorCode != 0 {
		t.Fatalf("ordinary create after the refusals: %d", resp.Topics[0].ErrorCode)
	}
}

// TestPartitionCapCountsTheWholeBroker: the cap is on all topics together,
// and auto-created topics count as well.
func TestPartitionCapCountsTheWholeBroker(t *testing.T) {
	tb := startTestBroker(t, "max.broker.partitions=5", "num.partitions=2")
	c := tb.raw(t)
	if r := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "a", 3, 1), 7); r.Topics[0].ErrorCode != 0 {
		t.Fatalf("3 of 5: %d", r.Topics[0].ErrorCode)
	}
	if r := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "b", 3, 1), 7); r.Topics[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("3+3 of 5: %d %q", r.Topics[0].ErrorCode, strOrEmpty(r.Topics[0].ErrorMessage))
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "a", Count: 6}}
	if r := do[*kmsg.CreatePartitionsResponse](c, cp, 3); r.Topics[0].ErrorCode != kerr.PolicyViolation.Code {
		t.Fatalf("grow to 6 of 5: %d", r.Topics[0].ErrorCode)
	}
	// Auto-creation: 2 more partitions fit, a third topic's do not.
	md := kmsg.NewPtrMetadataRequest()
	md.AllowAutoTopicCreation = true
	md.Topics = []kmsg.MetadataRequestTopic{{Topic: kmsg.StringPtr("auto1")}, {Topic: kmsg.StringPtr("auto2")}}
	mr := do[*kmsg.MetadataResponse](c, md, 9)
	if mr.Topics[0].ErrorCode != 0 || mr.Topics[1].ErrorCode == 0 {
		t.Fatalf("auto-create under the cap: %d, %d", mr.Topics[0].ErrorCode, mr.Topics[1].ErrorCode)
	}
	if n := tb.meta.Image().PartitionCount(); n != 5 {
		t.Fatalf("%d partitions, cap 5", n)
	}
	// The group coordinator's own topic is not a client's to count
	// against: groups keep working on a full broker.
	fc := kmsg.NewPtrFindCoordinatorRequest()
	fc.CoordinatorKey = "g"
	for range 50 {
		if r := do[*kmsg.FindCoordinatorResponse](c, fc, 3); r.ErrorCode == 0 {
			return
		}
	}
	t.Fatal("FindCoordinator never succeeded on a broker at its partition cap")
}
