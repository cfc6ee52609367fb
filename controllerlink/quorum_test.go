package controllerlink

import (
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

func threeVoters() *quorum {
	return newQuorum([]Voter{{ID: 1, Addr: "a:1"}, {ID: 2, Addr: "b:2"}, {ID: 3, Addr: "c:3"}})
}

func TestQuorumMissMovesTheGuessRoundRobinOnce(t *testing.T) {
	q := threeVoters()
	if q.current() != 0 {
		t.Fatalf("first guess %d, want the first voter", q.current())
	}
	q.miss(0)
	if q.current() != 1 {
		t.Fatalf("after voter 0 missed the guess is %d, want 1", q.current())
	}
	// A second failure of voter 0 (another request that was in flight)
	// does not move the guess again.
	q.miss(0)
	if q.current() != 1 {
		t.Fatalf("a stale miss moved the guess to %d", q.current())
	}
	q.miss(1)
	q.miss(2)
	if q.current() != 0 {
		t.Fatalf("after the last voter the guess is %d, want the first again", q.current())
	}
	if id, epoch := q.active(); id != -1 || epoch != -1 {
		t.Errorf("active (%d, %d) before any answer, want (-1, -1)", id, epoch)
	}
}

func TestQuorumRedirectGoesToTheNamedLeader(t *testing.T) {
	cases := []struct {
		name          string
		leader, epoch int32
		want          int
		wantActive    int32 // the active controller reported after it
	}{
		{"names voter 3", 3, 4, 2, 3},
		{"names no one", -1, -1, 1, 1},
		{"names itself", 1, 4, 1, 1},
		{"names a node that is no voter", 9, 4, 1, 1},
		{"names a leader older than seen", 3, 1, 1, 1},
		{"names voter 3 in the epoch already known", 3, 2, 2, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := threeVoters()
			if ok, _ := q.answered(0, 1, 2); !ok {
				t.Fatal("first answer refused")
			}
			q.redirect(0, c.leader, c.epoch)
			if got := q.current(); got != c.want {
				t.Errorf("guess %d, want %d", got, c.want)
			}
			if id, _ := q.active(); id != c.wantActive {
				t.Errorf("active controller %d after the redirect, want %d", id, c.wantActive)
			}
		})
	}
	// A redirect from a voter that is no longer the guess changes nothing.
	q := threeVoters()
	q.miss(0)
	q.redirect(0, 3, 5)
	if q.current() != 1 {
		t.Errorf("a stale redirect moved the guess to %d", q.current())
	}
}

func TestQuorumFencesDeposedControllers(t *testing.T) {
	q := threeVoters()
	ok, changed := q.answered(0, 1, 5)
	if !ok || !changed {
		t.Fatalf("first answer: ok=%v changed=%v, want both", ok, changed)
	}
	if ok, changed := q.answered(0, 1, 5); !ok || changed {
		t.Errorf("same controller again: ok=%v changed=%v, want ok, unchanged", ok, changed)
	}
	// Voter 2 answers as leader at epoch 4 (below 5): dropped, and the
	// guess, now on it, moves on.
	q.miss(0)
	if ok, _ := q.answered(1, 2, 4); ok {
		t.Error("an answer at epoch 4 after epoch 5 was accepted")
	}
	if q.current() != 2 {
		t.Errorf("after a deposed answer the guess is %d, want 2", q.current())
	}
	// An answer with no epoch is below any real one.
	if ok, _ := q.answered(2, -1, -1); ok {
		t.Error("an answer without epoch after epoch 5 was accepted")
	}
	if id, epoch := q.active(); id != 1 || epoch != 5 {
		t.Errorf("active (%d, %d) after refused answers, want (1, 5)", id, epoch)
	}
	// A higher epoch wins, and the guess follows the voter that answered
	// even if another request's failure had moved it.
	q.miss(0)
	if ok, changed := q.answered(2, 3, 6); !ok || !changed {
		t.Errorf("epoch 6: ok=%v changed=%v", ok, changed)
	}
	if q.current() != 2 || q.highestEpoch() != 6 {
		t.Errorf("guess %d highest %d, want 2 and 6", q.current(), q.highestEpoch())
	}
	// The same node re-elected at a higher epoch is a new controller too.
	if _, changed := q.answered(2, 3, 7); !changed {
		t.Error("a new epoch of the same node did not count as a change")
	}
	// Without CurrentLeader's id the voter that answered is the leader.
	if _, changed := q.answered(0, -1, 7); !changed {
		t.Error("voter 1 at epoch 7 did not replace voter 3")
	}
	if id, epoch := q.active(); id != 1 || epoch != 7 {
		t.Errorf("active (%d, %d), want (1, 7)", id, epoch)
	}
}

func TestQuorumWithoutEpochsAcceptsEverything(t *testing.T) {
	// A single controller sends no epoch (-1), or 0: never fenced.
	q := newQuorum([]Voter{{ID: 4, Addr: "x:1"}})
	for i, epoch := range []int32{-1, 0, -1, -1} {
		ok, changed := q.answered(0, -1, epoch)
		if !ok {
			t.Fatalf("answer %d (epoch %d) refused", i, epoch)
		}
		if wantChanged := i == 0; changed != wantChanged {
			t.Errorf("answer %d (epoch %d): changed=%v", i, epoch, changed)
		}
	}
	if id, epoch := q.active(); id != 4 || epoch != -1 {
		t.Errorf("active (%d, %d), want (4, -1)", id, epoch)
	}
	q.miss(0)
	if q.current() != 0 {
		t.Error("one voter: the guess left it")
	}
}

func TestRetryPacing(t *testing.T) {
	dial := fmt.Errorf("unable to dial: %w", &net.OpError{Op: "dial", Err: errors.New("refused")})
	stale := fmt.Errorf("%w: epoch", errStaleController)
	for _, err := range []error{dial, stale, kerr.NotController, kerr.NotLeaderForPartition, errors.New("eof")} {
		if !movesOn(err) {
			t.Errorf("%v does not move on", err)
		}
	}
	for _, err := range []error{kerr.UnknownServerError, kerr.DuplicateBrokerRegistration, fmt.Errorf("x: %w", kerr.KafkaStorageError)} {
		if movesOn(err) {
			t.Errorf("%v moves on", err)
		}
	}
	if !unsent(dial) || unsent(errors.New("connection reset")) || unsent(&net.OpError{Op: "read"}) {
		t.Error("unsent misreads dial and other errors")
	}
	cases := []struct {
		voters, failures int
		err              error
		want             time.Duration
	}{
		{3, 1, kerr.NotController, 0},
		{3, 2, dial, 0},
		{3, 3, dial, 50 * time.Millisecond},
		{3, 4, dial, 0},
		{3, 6, dial, 100 * time.Millisecond},
		{3, 1, kerr.UnknownServerError, 50 * time.Millisecond},
		{3, 300, dial, quorumMaxBackoff}, // a quorum elects within seconds: rounds stay close
		{1, 300, dial, time.Second},
		{1, 1, dial, 50 * time.Millisecond},
		{1, 2, dial, 100 * time.Millisecond},
	}
	for _, c := range cases {
		if got := retryWait(c.voters, c.failures, c.err); got != c.want {
			t.Errorf("retryWait(%d voters, %d failures, %v) = %v, want %v", c.voters, c.failures, c.err, got, c.want)
		}
	}
	var warned []int
	for f := 1; f <= 45; f++ {
		if warnAt(3, f) {
			warned = append(warned, f)
		}
	}
	if fmt.Sprint(warned) != "[3 23 43]" {
		t.Errorf("3 voters warn at failures %v, want [3 23 43]", warned)
	}
	if !warnAt(1, 1) || warnAt(1, 2) || !warnAt(1, 21) {
		t.Error("one voter warns at its first failure, then every 20th")
	}
}

// An attempt's copy carries every field of the request, and the original
// is left for the next attempt.
func TestCloneRequestKeepsEveryField(t *testing.T) {
	req := kmsg.NewPtrBrokerHeartbeatRequest()
	req.BrokerID, req.BrokerEpoch, req.CurrentMetadataOffset, req.WantShutdown = 4, 17, 99, true
	req.OfflineLogDirs = [][16]byte{{1, 2, 3}}
	c := cloneRequest(req).(*kmsg.BrokerHeartbeatRequest)
	if c == req || c.BrokerID != 4 || c.BrokerEpoch != 17 || c.CurrentMetadataOffset != 99 || !c.WantShutdown || len(c.OfflineLogDirs) != 1 || c.OfflineLogDirs[0] != req.OfflineLogDirs[0] {
		t.Fatalf("copy %+v of %+v", c, req)
	}
}
