package fetcher

import (
	"math"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/isr"
)

// sentAt is partition index of topic "t" asking for offset.
func sentAt(index int32, offset int64) sent {
	ps := &partState{p: Partition{Topic: "t", TopicID: topicID, Index: index}}
	return sent{ps: ps, req: isr.FetchRequest{CurrentLeaderEpoch: 3, FetchOffset: offset, LastFetchedEpoch: 2}}
}

// asked lists the partitions a request names, and those it forgets.
func asked(req *kmsg.FetchRequest) (parts, forgotten []int32) {
	for _, t := range req.Topics {
		for _, p := range t.Partitions {
			parts = append(parts, p.Partition)
		}
	}
	for _, t := range req.ForgottenTopics {
		forgotten = append(forgotten, t.Partitions...)
	}
	slices.Sort(parts)
	slices.Sort(forgotten)
	return parts, forgotten
}

func build(s *session, batch ...sent) (*kmsg.FetchRequest, pendingSession) {
	req := kmsg.NewPtrFetchRequest()
	return req, s.build(req, batch, 1<<20)
}

// KIP-227 from the follower's side: a full fetch opens the session, then
// each request names only what changed and forgets what left, with the
// epoch counting up.
func TestSessionSendsOnlyChanges(t *testing.T) {
	var s session
	req, p := build(&s, sentAt(0, 10), sentAt(1, 20), sentAt(2, 30))
	if parts, _ := asked(req); req.SessionID != 0 || req.SessionEpoch != 0 || !slices.Equal(parts, []int32{0, 1, 2}) {
		t.Fatalf("first request: session %d epoch %d partitions %v, want a full fetch of 0-2 asking for a session", req.SessionID, req.SessionEpoch, parts)
	}
	s.done(p, &kmsg.FetchResponse{SessionID: 77}, nil)

	req, p = build(&s, sentAt(0, 10), sentAt(1, 25), sentAt(2, 30))
	if parts, gone := asked(req); req.SessionID != 77 || req.SessionEpoch != 1 || !slices.Equal(parts, []int32{1}) || len(gone) != 0 {
		t.Fatalf("second request: session %d epoch %d partitions %v forgotten %v, want session 77 epoch 1 naming only partition 1", req.SessionID, req.SessionEpoch, parts, gone)
	}
	s.done(p, &kmsg.FetchResponse{SessionID: 77}, nil)

	// Partition 2 left (backing off, say) and partition 3 joined.
	req, p = build(&s, sentAt(0, 10), sentAt(1, 25), sentAt(3, 0))
	if parts, gone := asked(req); req.SessionEpoch != 2 || !slices.Equal(parts, []int32{3}) || !slices.Equal(gone, []int32{2}) {
		t.Fatalf("third request: epoch %d partitions %v forgotten %v, want epoch 2 adding 3 and forgetting 2", req.SessionEpoch, parts, gone)
	}
	if req.ForgottenTopics[0].TopicID != topicID || req.ForgottenTopics[0].Topic != "t" {
		t.Fatalf("forgotten topic %+v names neither the id nor the name", req.ForgottenTopics[0])
	}
	s.done(p, &kmsg.FetchResponse{SessionID: 77}, nil)

	// Nothing changed: an empty incremental request, which the leader
	// answers with the partitions that have news.
	req, _ = build(&s, sentAt(0, 10), sentAt(1, 25), sentAt(3, 0))
	if parts, gone := asked(req); req.SessionEpoch != 3 || len(parts) != 0 || len(gone) != 0 {
		t.Fatalf("idle request: epoch %d partitions %v forgotten %v, want epoch 3 and nothing named", req.SessionEpoch, parts, gone)
	}
}

// After any failure the leader's session holds an unknown state: the next
// request is full, closing the old session (its id with epoch 0).
func TestSessionResetsAfterAFailure(t *testing.T) {
	for _, err := range []error{kerr.FetchSessionIDNotFound, kerr.InvalidFetchSessionEpoch, kerr.UnknownServerError, errFake} {
		var s session
		_, p := build(&s, sentAt(0, 10))
		s.done(p, &kmsg.FetchResponse{SessionID: 9}, nil)
		_, p = build(&s, sentAt(0, 11))
		s.done(p, nil, err)
		req, _ := build(&s, sentAt(0, 11), sentAt(1, 0))
		if parts, _ := asked(req); req.SessionID != 9 || req.SessionEpoch != 0 || !slices.Equal(parts, []int32{0, 1}) {
			t.Fatalf("after %v: session %d epoch %d partitions %v, want a full fetch closing session 9", err, req.SessionID, req.SessionEpoch, parts)
		}
	}
	if !isSessionError(kerr.FetchSessionIDNotFound) || !isSessionError(kerr.InvalidFetchSessionEpoch) || isSessionError(kerr.NotLeaderForPartition) {
		t.Fatal("isSessionError must name exactly the two session errors")
	}
}

// A leader that keeps no session (its cache is full, or it predates
// sessions) answers a full fetch with session id 0: every request stays full.
func TestSessionlessLeaderGetsFullFetches(t *testing.T) {
	var s session
	for range 3 {
		req, p := build(&s, sentAt(0, 10), sentAt(1, 20))
		if parts, _ := asked(req); req.SessionID != 0 || req.SessionEpoch != 0 || len(parts) != 2 {
			t.Fatalf("session %d epoch %d partitions %v, want full fetches", req.SessionID, req.SessionEpoch, parts)
		}
		s.done(p, &kmsg.FetchResponse{}, nil)
	}
}

func TestSessionEpochWrapsToOne(t *testing.T) {
	if got := nextEpoch(math.MaxInt32); got != 1 {
		t.Fatalf("epoch after MaxInt32 = %d, want 1 (0 opens a session)", got)
	}
	if got := nextEpoch(5); got != 6 {
		t.Fatalf("epoch after 5 = %d", got)
	}
}

type fakeErr string

func (e fakeErr) Error() string { return string(e) }

const errFake = fakeErr("connection reset")
