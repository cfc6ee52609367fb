package isr

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
)

// LeaderEpochFileCache.endOffsetFor.
func TestEndOffsetFor(t *testing.T) {
	cache := []EpochEntry{{2, 5}, {4, 10}, {7, 20}}
	for _, tc := range []struct {
		requested int32
		want      EpochEndOffset
	}{
		{7, EpochEndOffset{7, 30}},                                // latest epoch: the LEO
		{4, EpochEndOffset{4, 20}},                                // known epoch: next epoch's start
		{5, EpochEndOffset{4, 20}},                                // unknown epoch: its floor
		{1, EpochEndOffset{1, 5}},                                 // below every epoch: requested, first start
		{8, EpochEndOffset{UndefinedEpoch, UndefinedEpochOffset}}, // beyond the latest
		{UndefinedEpoch, EpochEndOffset{UndefinedEpoch, UndefinedEpochOffset}},
	} {
		if got := EndOffsetFor(cache, tc.requested, 30); got != tc.want {
			t.Errorf("EndOffsetFor(%d) = %v, want %v", tc.requested, got, tc.want)
		}
	}
	if got := EndOffsetFor(nil, 3, 30); got.EndOffset != UndefinedEpochOffset {
		t.Errorf("empty cache answered %v", got)
	}
}

// AbstractFetcherThread.getOffsetTruncationState (KIP-101, KIP-279).
func TestTruncationFor(t *testing.T) {
	local := []EpochEntry{{1, 0}, {3, 10}, {4, 15}} // LEO 20, HW 8
	for _, tc := range []struct {
		name   string
		leader EpochEndOffset
		want   Truncation
	}{
		{"KIP-101: leader has no end offset for the epoch: truncate to HW", EpochEndOffset{UndefinedEpoch, UndefinedEpochOffset}, Truncation{8, true}},
		{"pre-KIP-279 leader (no epoch): its end offset", EpochEndOffset{UndefinedEpoch, 12}, Truncation{12, true}},
		{"same epoch, leader ends earlier: leader's end", EpochEndOffset{3, 12}, Truncation{12, true}},
		{"same epoch, follower ends earlier: own end", EpochEndOffset{3, 17}, Truncation{15, true}},
		{"same latest epoch, both beyond LEO: LEO", EpochEndOffset{4, 25}, Truncation{20, true}},
		{"KIP-279: epoch 2 unknown locally: end of epoch 1, ask again", EpochEndOffset{2, 12}, Truncation{10, false}},
		{"epoch below every local epoch: the leader's end", EpochEndOffset{0, 3}, Truncation{0, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := TruncationFor(local, 20, 8, tc.leader); got != tc.want {
				t.Fatalf("TruncationFor(%v) = %+v, want %+v", tc.leader, got, tc.want)
			}
		})
	}
}

// AbstractFetcherThread.fetchOffsetAndTruncate.
func TestOutOfRangeReset(t *testing.T) {
	for _, tc := range []struct {
		leo, start, end, want int64
		full                  bool
	}{
		{20, 0, 15, 15, false}, // unclean election: leader ends below us
		{5, 10, 30, 10, true},  // leader deleted what we need: start over at its start
		{12, 10, 30, 12, false},
	} {
		got, full := OutOfRangeReset(tc.leo, tc.start, tc.end)
		if got != tc.want || full != tc.full {
			t.Errorf("OutOfRangeReset(%d, %d, %d) = %d %v, want %d %v", tc.leo, tc.start, tc.end, got, full, tc.want, tc.full)
		}
	}
}

// The follower's fetch loop (AbstractFetcherThread.processFetchRequest).
func TestFollowerLoop(t *testing.T) {
	t.Run("no epoch in the log: truncate to HW, then fetch", func(t *testing.T) {
		f := NewFollower(2, 5, LocalLog{LogEndOffset: 12, HighWatermark: 8, LatestEpoch: UndefinedEpoch})
		if a := f.Next(); a.Kind != ActTruncate || a.Truncation != (Truncation{8, true}) {
			t.Fatalf("Next = %+v, want truncate to 8", a)
		}
		f.Truncated(LocalLog{LogEndOffset: 8, HighWatermark: 8, LatestEpoch: UndefinedEpoch})
		if a := f.Next(); a.Kind != ActFetch || a.Request != (FetchRequest{8, UndefinedEpoch, 5}) {
			t.Fatalf("Next = %+v", a)
		}
	})
	t.Run("truncation on fetch: DivergingEpoch, then resume from the cut", func(t *testing.T) {
		local := []EpochEntry{{1, 0}, {3, 10}}
		log := LocalLog{LogEndOffset: 14, HighWatermark: 9, LatestEpoch: 3}
		f := NewFollower(2, 5, log)
		a := f.Next()
		if a.Kind != ActFetch || a.Request != (FetchRequest{14, 3, 5}) {
			t.Fatalf("Next = %+v, want fetch from the LEO with last fetched epoch 3", a)
		}
		got := f.HandleResponse(a.Request, FetchResponse{Diverging: &EpochEndOffset{3, 12}}, local, log)
		if got.Kind != ActTruncate || got.Truncation != (Truncation{12, true}) {
			t.Fatalf("HandleResponse = %+v, want truncate to 12", got)
		}
		f.Truncated(LocalLog{LogEndOffset: 12, HighWatermark: 9, LatestEpoch: 3})
		a = f.Next()
		if a.Request.FetchOffset != 12 {
			t.Fatalf("after truncation fetches from %d", a.Request.FetchOffset)
		}
		if got := f.HandleResponse(a.Request, FetchResponse{HighWatermark: 30}, local, log); got.Kind != ActAppend {
			t.Fatalf("records: %+v, want append", got)
		}
		if hw := f.Appended(LocalLog{LogEndOffset: 20, LatestEpoch: 5}, 30); hw != 20 {
			t.Fatalf("follower HW = %d, want min(leader HW 30, LEO 20)", hw)
		}
		if a := f.Next(); a.Request != (FetchRequest{20, 5, 5}) {
			t.Fatalf("Next = %+v", a)
		}
		if got := f.HandleResponse(FetchRequest{14, 3, 5}, FetchResponse{}, local, log); got.Kind != ActIgnore {
			t.Fatalf("an answer to an older request: %+v, want ignore", got)
		}
	})
	t.Run("errors", func(t *testing.T) {
		for _, tc := range []struct {
			err  error
			want ActionKind
		}{
			{kerr.OffsetOutOfRange, ActReset},
			{kerr.FencedLeaderEpoch, ActWait},
			{kerr.UnknownLeaderEpoch, ActBackoff},
			{kerr.NotLeaderForPartition, ActBackoff},
			{errors.New("i/o timeout"), ActBackoff},
		} {
			f := NewFollower(2, 5, LocalLog{LogEndOffset: 10, LatestEpoch: 4})
			a := f.Next()
			if got := f.HandleResponse(a.Request, FetchResponse{Err: tc.err}, nil, LocalLog{}); got.Kind != tc.want {
				t.Errorf("%v: %v, want %v", tc.err, got.Kind, tc.want)
			}
		}
	})
	t.Run("fenced waits for a newer leader epoch", func(t *testing.T) {
		f := NewFollower(2, 5, LocalLog{LogEndOffset: 10, LatestEpoch: 4})
		f.HandleResponse(f.Next().Request, FetchResponse{Err: kerr.FencedLeaderEpoch}, nil, LocalLog{})
		if a := f.Next(); a.Kind != ActWait {
			t.Fatalf("Next = %+v, want wait", a)
		}
		if f.SetLeader(2, 5, LocalLog{LogEndOffset: 10, LatestEpoch: 4}) {
			t.Fatal("same epoch restarted the follower")
		}
		if !f.SetLeader(3, 6, LocalLog{LogEndOffset: 10, LatestEpoch: 4}) {
			t.Fatal("newer epoch not applied")
		}
		if a := f.Next(); a.Kind != ActFetch || a.Request != (FetchRequest{10, 4, 6}) {
			t.Fatalf("Next = %+v", a)
		}
		if id, ep := f.Leader(); id != 3 || ep != 6 {
			t.Fatalf("Leader = %d/%d", id, ep)
		}
	})
}
