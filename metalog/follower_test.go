package metalog

import (
	"errors"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/isr"
)

func mustFetch(t *testing.T, f *Follower) isr.FetchRequest {
	t.Helper()
	a := f.Next()
	if a.Kind != isr.ActFetch {
		t.Fatalf("next %+v, want a fetch", a)
	}
	return a.Request
}

// A voter with a suffix from an old epoch truncates to where the new
// leader's epoch history says it ends.
func TestFollowerTruncatesDivergentSuffix(t *testing.T) {
	// The voter led epoch 3 and wrote offsets 5–8 that were never
	// committed; v2 took over in epoch 4 with the log of epoch 1 up to 5.
	local := []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 3, StartOffset: 5}}
	log := isr.LocalLog{LogEndOffset: 9, HighWatermark: 5, LatestEpoch: 3}
	f := NewFollower(v2, 4, log)
	req := mustFetch(t, f)
	if req != (isr.FetchRequest{FetchOffset: 9, LastFetchedEpoch: 3, CurrentLeaderEpoch: 4}) {
		t.Fatalf("request %+v", req)
	}
	a, err := f.HandleResponse(req, Response{Epoch: 4, Diverging: &isr.EpochEndOffset{Epoch: 1, EndOffset: 5}}, local, log)
	if err != nil || a.Kind != isr.ActTruncate || a.Truncation != (isr.Truncation{Offset: 5, Complete: true}) {
		t.Fatalf("action %+v, %v", a, err)
	}
	if err := f.Truncated(isr.LocalLog{LogEndOffset: 5, HighWatermark: 5, LatestEpoch: 1}); err != nil {
		t.Fatal(err)
	}
	if req := mustFetch(t, f); req.FetchOffset != 5 || req.LastFetchedEpoch != 1 {
		t.Fatalf("request after truncation %+v", req)
	}
}

// A truncation below the high watermark would drop a committed record: it
// is refused, whether the leader asks for it or the caller did it.
func TestFollowerNeverTruncatesCommitted(t *testing.T) {
	local := []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 3, StartOffset: 5}}
	log := isr.LocalLog{LogEndOffset: 9, HighWatermark: 7, LatestEpoch: 3}
	f := NewFollower(v2, 4, log)
	req := mustFetch(t, f)
	_, err := f.HandleResponse(req, Response{Epoch: 4, Diverging: &isr.EpochEndOffset{Epoch: 1, EndOffset: 5}}, local, log)
	if !errors.Is(err, ErrCommittedTruncation) {
		t.Fatalf("truncation below the high watermark: %v", err)
	}
	if err := f.Truncated(isr.LocalLog{LogEndOffset: 6, LatestEpoch: 1}); !errors.Is(err, ErrCommittedTruncation) {
		t.Fatalf("truncated below the high watermark: %v", err)
	}
}

// A follower reports only durable positions: after an append it waits for
// Appended (the fsync) before fetching again.
func TestFollowerWaitsForFsync(t *testing.T) {
	log := isr.LocalLog{LogEndOffset: 0, HighWatermark: 0, LatestEpoch: 2}
	f := NewFollower(v1, 2, log)
	req := mustFetch(t, f)
	a, err := f.HandleResponse(req, Response{Epoch: 2, HighWatermark: 0}, nil, log)
	if err != nil || a.Kind != isr.ActAppend {
		t.Fatalf("action %+v, %v", a, err)
	}
	if a := f.Next(); a.Kind != isr.ActWait {
		t.Fatalf("fetching before the fsync: %+v", a)
	}
	// A duplicated answer is not appended twice.
	if a, _ := f.HandleResponse(req, Response{Epoch: 2}, nil, log); a.Kind != isr.ActIgnore {
		t.Fatalf("duplicate answer: %+v", a)
	}
	if hw := f.Appended(isr.LocalLog{LogEndOffset: 4, LatestEpoch: 2}, 3); hw != 3 {
		t.Fatalf("high watermark %d, want 3", hw)
	}
	if req := mustFetch(t, f); req.FetchOffset != 4 {
		t.Fatalf("request %+v", req)
	}
}

// A follower never goes back to a lower epoch and ignores answers in
// another epoch than the one it follows.
func TestFollowerIgnoresOtherEpochs(t *testing.T) {
	log := isr.LocalLog{LogEndOffset: 4, HighWatermark: 4, LatestEpoch: 2}
	f := NewFollower(v1, 3, log)
	if f.SetLeader(v2, 2, log) || f.SetLeader(v2, 3, log) {
		t.Fatal("followed an older or equal epoch")
	}
	req := mustFetch(t, f)
	if a, _ := f.HandleResponse(req, Response{Epoch: 2, HighWatermark: 9}, nil, log); a.Kind != isr.ActIgnore {
		t.Fatalf("answer from epoch 2: %+v", a)
	}
	// The leader is ahead: wait for the register to name the new epoch.
	if a, _ := f.HandleResponse(req, Response{Epoch: 4, Err: kerr.FencedLeaderEpoch}, nil, log); a.Kind != isr.ActWait {
		t.Fatalf("fenced: %+v", a)
	}
	if a := f.Next(); a.Kind != isr.ActWait {
		t.Fatalf("fetching while fenced: %+v", a)
	}
	if !f.SetLeader(v3, 4, log) {
		t.Fatal("did not follow epoch 4")
	}
	if l, e := f.Leader(); l != v3 || e != 4 {
		t.Fatalf("leader %s epoch %d", l, e)
	}
	if req := mustFetch(t, f); req.CurrentLeaderEpoch != 4 {
		t.Fatalf("request %+v", req)
	}
}

// The high watermark never goes back, even when a new leader's lags.
func TestFollowerHighWatermarkNeverBack(t *testing.T) {
	log := isr.LocalLog{LogEndOffset: 0, LatestEpoch: 2}
	f := NewObserver(v1, 2, log)
	for _, step := range []struct {
		leo, leaderHW, want int64
	}{{5, 5, 5}, {5, 3, 5}, {8, 7, 7}, {8, 6, 7}, {9, 9, 9}} {
		req := mustFetch(t, f)
		if a, err := f.HandleResponse(req, Response{Epoch: 2, HighWatermark: step.leaderHW}, nil, log); err != nil || a.Kind != isr.ActAppend {
			t.Fatalf("action %+v, %v", a, err)
		}
		log = isr.LocalLog{LogEndOffset: step.leo, LatestEpoch: 2}
		if hw := f.Appended(log, step.leaderHW); hw != step.want {
			t.Fatalf("leader HW %d, LEO %d: high watermark %d, want %d", step.leaderHW, step.leo, hw, step.want)
		}
	}
}
