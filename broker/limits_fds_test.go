package broker

import (
	"errors"
	"os"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// pretendFDs makes the broker see limit descriptors with open in use, for
// the rest of the test. Call it before starting the broker, so the swap
// happens before any handler goroutine exists.
func pretendFDs(t *testing.T, limit, open int64) {
	saved := fdUsage
	fdUsage = func() (int64, int64, bool) { return limit, open, true }
	t.Cleanup(func() { fdUsage = saved })
}

// TestFDBudgetRefusesWhatCannotBeOpened: a create the process has no
// descriptors for used to fail halfway with KAFKA_STORAGE_ERROR and leave
// the broker unable to accept connections. It is refused up front, with
// the LimitNOFILE that would do.
func TestFDBudgetRefusesWhatCannotBeOpened(t *testing.T) {
	pretendFDs(t, 2000, 1500)
	tb := startTestBroker(t)
	c := tb.raw(t)
	for _, validateOnly := range []bool{true, false} {
		st := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(validateOnly, "many", 100, 1), 7).Topics[0]
		msg := strOrEmpty(st.ErrorMessage)
		if st.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(msg, "LimitNOFILE") || !strings.Contains(msg, "about 300 file descriptors") || !strings.Contains(msg, "at least 2056") {
			t.Errorf("100 partitions with 500 descriptors left (validate_only=%v): %d %q", validateOnly, st.ErrorCode, msg)
		}
	}
	if _, ok := tb.meta.Image().Topic("many"); ok {
		t.Fatal("a refused topic is in the metadata")
	}
	// 10 partitions (30 descriptors) leave the reserve of 256 intact.
	if st := do[*kmsg.CreateTopicsResponse](c, createTopicsReq(false, "few", 10, 1), 7).Topics[0]; st.ErrorCode != 0 {
		t.Fatalf("10 partitions: %d %q", st.ErrorCode, strOrEmpty(st.ErrorMessage))
	}
	cp := kmsg.NewPtrCreatePartitionsRequest()
	cp.Topics = []kmsg.CreatePartitionsRequestTopic{{Topic: "few", Count: 100}}
	if r := do[*kmsg.CreatePartitionsResponse](c, cp, 3).Topics[0]; r.ErrorCode != kerr.PolicyViolation.Code || !strings.Contains(strOrEmpty(r.ErrorMessage), "90 new partitions") {
		t.Fatalf("grow by 90: %d %q", r.ErrorCode, strOrEmpty(r.ErrorMessage))
	}
	if mt, _ := tb.meta.Image().Topic("few"); len(mt.Partitions) != 10 {
		t.Fatalf("few has %d partitions after a refused grow", len(mt.Partitions))
	}
}

// TestFDBudgetNamesALimitThatWorks: the LimitNOFILE the error suggests is
// enough for the same create, reserve included.
func TestFDBudgetNamesALimitThatWorks(t *testing.T) {
	saved := fdUsage
	defer func() { fdUsage = saved }()
	at := regexp.MustCompile(`at least (\d+)`)
	for _, tc := range []struct{ limit, open, partitions int64 }{
		{1024, 100, 300}, {20000, 19000, 1}, {1 << 20, 10000, 340000}, {65536, 60000, 100000},
	} {
		fdUsage = func() (int64, int64, bool) { return tc.limit, tc.open, true }
		err := checkFDBudget(tc.partitions)
		if err == nil || !errors.Is(err, kerr.PolicyViolation) {
			t.Fatalf("%+v: %v, want a POLICY_VIOLATION", tc, err)
		}
		m := at.FindStringSubmatch(err.Error())
		if m == nil {
			t.Fatalf("%+v: no limit named in %q", tc, err)
		}
		enough, _ := strconv.ParseInt(m[1], 10, 64)
		fdUsage = func() (int64, int64, bool) { return enough, tc.open, true }
		if err := checkFDBudget(tc.partitions); err != nil {
			t.Errorf("%+v: the suggested limit %d is not enough: %v", tc, enough, err)
		}
		fdUsage = func() (int64, int64, bool) { return enough - 50, tc.open, true }
		if checkFDBudget(tc.partitions) == nil {
			t.Errorf("%+v: %d is far from the least limit that works", tc, enough)
		}
	}
	fdUsage = func() (int64, int64, bool) { return 0, 0, false }
	if err := checkFDBudget(1 << 30); err != nil {
		t.Errorf("without a known limit nothing is refused: %v", err)
	}
}

func TestProcessFDUsage(t *testing.T) {
	limit, open, ok := processFDUsage()
	if runtime.GOOS != "linux" {
		t.Skip("descriptor usage is read on Linux only")
	}
	if !ok || open <= 0 || limit < open {
		t.Fatalf("limit %d, open %d, ok %v", limit, open, ok)
	}
	// Opening more files shows in the count.
	for range 40 {
		f, err := os.Open(os.DevNull)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
	}
	if _, more, _ := processFDUsage(); more < open+40 {
		t.Fatalf("%d open before 40 more were opened, %d after", open, more)
	}
	t.Logf("RLIMIT_NOFILE %d, %d open", limit, open)
}
