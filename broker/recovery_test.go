package broker

import (
	"context"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// A restart over a partition whose middle segment was cut in half keeps the
// later segments, reports the damaged range in sluice_log_recovery_gaps, and
// appends after the highest offset on disk.
func TestRecoveryGapIsCountedAndOffsetsGoOn(t *testing.T) {
	dir := t.TempDir()
	tb := startTestBrokerIn(t, dir)
	tb.createTopic(t, "dmg", 1, map[string]*string{"segment.bytes": kmsg.StringPtr("2000")})
	cl := tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	for i := 0; i < 60; i++ {
		produceSync(t, cl, &kgo.Record{Topic: "dmg", Value: make([]byte, 200)})
	}
	leo := tb.topics.get("dmg").parts[0].LogEndOffset()
	cl.Close()
	if err := tb.Shutdown(context.Background()); err != nil {
		t.Fatal(err)
	}

	logs, _ := filepath.Glob(filepath.Join(dir, "dmg-0", "*.log"))
	sort.Strings(logs)
	if len(logs) < 5 {
		t.Fatalf("only %d segments", len(logs))
	}
	victim := logs[len(logs)/2]
	st, err := os.Stat(victim)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(victim, st.Size()/2); err != nil {
		t.Fatal(err)
	}

	tb = startTestBrokerIn(t, dir)
	p := tb.topics.get("dmg").parts[0]
	if p.LogEndOffset() != leo || p.NumSegments() != len(logs) {
		t.Fatalf("after restart: LEO %d, %d segments; want %d, %d", p.LogEndOffset(), p.NumSegments(), leo, len(logs))
	}
	if v := mustValue(t, tb.scrape(t), "sluice_log_recovery_gaps", "topic", "dmg", "partition", "0"); v != 1 {
		t.Fatalf("sluice_log_recovery_gaps = %v, want 1", v)
	}
	cl = tb.client(t, kgo.ProducerBatchCompression(kgo.NoCompression()))
	r := &kgo.Record{Topic: "dmg", Value: []byte("after")}
	produceSync(t, cl, r)
	if r.Offset != leo {
		t.Fatalf("produce after recovery got offset %d, want %d", r.Offset, leo)
	}
}
