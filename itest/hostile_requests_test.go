package itest

import (
	"math"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// TestHugePartitionRequestsKeepBrokerUp: one unauthenticated CreateTopics
// with 2^31-1 partitions (even validate_only), or CreatePartitions to
// 2^31-1, used to kill the broker with out of memory. Each is refused with
// POLICY_VIOLATION naming max.broker.partitions, the broker's peak memory
// stays small, and it keeps serving.
func TestHugePartitionRequestsKeepBrokerUp(t *testing.T) {
	engines.Run(t, testHugePartitionRequestsKeepBrokerUp)
}

func testHugePartitionRequestsKeepBrokerUp(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir())
	createTopic(t, b.Addr(), "small", 1, nil)
	rc := dialRaw(t, b.Addr())

	create := func(validateOnly bool, partitions int32, rf int16) kmsg.CreateTopicsResponseTopic {
		req := kmsg.NewPtrCreateTopicsRequest()
		req.SetVersion(7)
		req.ValidateOnly = validateOnly
		rt := kmsg.NewCreateTopicsRequestTopic()
		rt.Topic, rt.NumPartitions, rt.ReplicationFactor = "boom", partitions, rf
		req.Topics = []kmsg.CreateTopicsRequestTopic{rt}
		return rc.mustRoundTrip(req).(*kmsg.CreateTopicsResponse).Topics[0]
	}
	wantPolicy := func(what string, code int16, msg *string) {
		t.Helper()
		if code != kerr.PolicyViolation.Code || msg == nil || !strings.Contains(*msg, "max.broker.partitions") {
			t.Errorf("%s: %v %q, want POLICY_VIOLATION naming max.broker.partitions", what, kerr.ErrorForCode(code), deref(msg))
		}
	}
	for _, validateOnly := range []bool{true, false} {
		st := create(validateOnly, math.MaxInt32, 1)
		wantPolicy("CreateTopics 2^31-1 validate_only="+strconv.FormatBool(validateOnly), st.ErrorCode, st.ErrorMessage)

		req := kmsg.NewPtrCreatePartitionsRequest()
		req.SetVersion(3)
		req.ValidateOnly = validateOnly
		req.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "small", Count: math.MaxInt32}}
		sp := rc.mustRoundTrip(req).(*kmsg.CreatePartitionsResponse).Topics[0]
		wantPolicy("CreatePartitions to 2^31-1 validate_only="+strconv.FormatBool(validateOnly), sp.ErrorCode, sp.ErrorMessage)
	}
	if st := create(false, math.MaxInt32, math.MaxInt16); st.ErrorCode != kerr.InvalidReplicationFactor.Code {
		t.Errorf("replication factor 32767: %v, want INVALID_REPLICATION_FACTOR", kerr.ErrorForCode(st.ErrorCode))
	}
	// The CLI is a client like any other.
	_, stderr := runCLI(t, b.Addr(), 1, "topic", "create", "boom", "--partitions", "2147483647")
	if !strings.Contains(stderr, "max.broker.partitions") {
		t.Errorf("sluice topic create --partitions 2147483647: %q does not name max.broker.partitions", stderr)
	}

	if !b.Alive() {
		t.Fatal("broker process died")
	}
	if hwm := peakRSS(t, b.Pid()); hwm > 512<<20 {
		t.Errorf("broker peak RSS %d MiB after the refused requests", hwm>>20)
	}
	topics, err := admin(t, b.Addr()).ListTopics(testCtx(t, 15*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if topics.Has("boom") {
		t.Fatal("a refused topic exists")
	}
	produceSync(t, newClient(t, b.Addr()), &kgo.Record{Topic: "small", Value: []byte("still up")})
	if got := consumeAll(t, b.Addr(), "small"); len(got) != 1 {
		t.Fatalf("consumed %d records after the hostile requests, want 1", len(got))
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// peakRSS is the process's high-water resident set (VmHWM), in bytes.
func peakRSS(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Skipf("no /proc: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmHWM %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmHWM in /proc/pid/status")
	return 0
}
