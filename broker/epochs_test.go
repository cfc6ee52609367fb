package broker

import (
	"context"
	"testing"

	"github.com/twmb/franz-go/pkg/kmsg"
)

// A restart is a new leadership: the leader epoch goes up, and a client
// whose last fetched epoch ended before its fetch offset is told where the
// logs diverge (fetch v12+, KIP-320).
func TestRestartBumpsEpochAndFetchReportsDivergence(t *testing.T) {
	tb := startTestBroker(t)
	tb.createTopic(t, "ep", 1, nil)
	fill(t, tb, "ep", 1, 10, 10)
	first := tb.topics.get("ep").parts[0].LeaderEpoch()

	dir := tb.dir
	_ = tb.Shutdown(context.Background())
	tb = startTestBrokerIn(t, dir)
	p := tb.topics.get("ep").parts[0]
	if p.LeaderEpoch() != first+1 {
		t.Fatalf("leader epoch %d after restart, want %d", p.LeaderEpoch(), first+1)
	}
	fill(t, tb, "ep", 1, 5, 10)
	c := tb.raw(t)
	md := do[*kmsg.MetadataResponse](c, kmsg.NewPtrMetadataRequest(), 12)
	if got := md.Topics[0].Partitions[0].LeaderEpoch; got != first+1 {
		t.Fatalf("metadata leader epoch %d", got)
	}

	fetch := func(offset int64, lastEpoch int32) kmsg.FetchResponseTopicPartition {
		req := fetchReq("ep", [16]byte{}, offset)
		req.Topics[0].Partitions[0].LastFetchedEpoch = lastEpoch
		return do[*kmsg.FetchResponse](c, req, 12).Topics[0].Partitions[0]
	}
	// Read epoch `first` up to its end (10): consistent, records flow.
	if r := fetch(10, first); r.ErrorCode != 0 || r.DivergingEpoch.Epoch != -1 || len(r.RecordBatches) == 0 {
		t.Fatalf("consistent fetch: err %d diverging %+v records %d", r.ErrorCode, r.DivergingEpoch, len(r.RecordBatches))
	}
	// Claims to have read epoch `first` up to 12, but that epoch ended at 10.
	r := fetch(12, first)
	if r.DivergingEpoch.Epoch != first || r.DivergingEpoch.EndOffset != 10 || len(r.RecordBatches) != 0 {
		t.Fatalf("diverged fetch: diverging %+v, %d record bytes", r.DivergingEpoch, len(r.RecordBatches))
	}
}
