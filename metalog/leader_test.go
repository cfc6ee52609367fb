package metalog

import (
	"errors"
	"slices"
	"testing"

	"github.com/twmb/franz-go/pkg/kerr"

	"github.com/sluice-io/sluice/caspaxos"
	"github.com/sluice-io/sluice/isr"
)

var (
	v1 = Voter{ID: 1, Incarnation: caspaxos.Incarnation{1}}
	v2 = Voter{ID: 2, Incarnation: caspaxos.Incarnation{2}}
	v3 = Voter{ID: 3, Incarnation: caspaxos.Incarnation{3}}
)

const lagMs = 1000

// leaderAt makes v1 the leader of epoch 5, version 10, voters v1–v3 with
// isrVoters, its durable log ending at leo with the epoch cache
// [(1, 0), (5, leo)].
func leaderAt(t *testing.T, isrVoters []Voter, minISR int, hw, leo int64) (*Leader, isr.EpochLookup) {
	t.Helper()
	l, err := NewLeader(LeaderConfig{
		Self:          v1,
		Register:      Config{Epoch: 5, Version: 10, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: isrVoters},
		MinISR:        minISR,
		LagTimeMaxMs:  lagMs,
		LogEndOffset:  leo,
		HighWatermark: hw,
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cache := []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 5, StartOffset: leo}}
	lookup := func(e int32) (int32, int64) {
		r := isr.EndOffsetFor(cache, e, l.LogEndOffset())
		return r.Epoch, r.EndOffset
	}
	return l, lookup
}

// fetch is a fetch by v in epoch 5 of a voter whose durable log ends at
// offset with records of lastEpoch.
func fetch(t *testing.T, l *Leader, lookup isr.EpochLookup, v Voter, offset int64, lastEpoch int32, now int64) {
	t.Helper()
	div, err := l.Fetch(VoterFetch{Voter: v, CurrentEpoch: 5, FetchOffset: offset, LastFetchedEpoch: lastEpoch,
		LeaderLogEndOffset: l.LogEndOffset()}, lookup, now)
	if err != nil || div != nil {
		t.Fatalf("fetch by %s at %d: diverging %v, %v", v, offset, div, err)
	}
}

func wantHW(t *testing.T, l *Leader, want int64) {
	t.Helper()
	if got := l.HighWatermark(); got != want {
		t.Fatalf("high watermark %d, want %d", got, want)
	}
}

func TestNewLeaderNeedsActiveInISR(t *testing.T) {
	for name, c := range map[string]Config{
		"not active": {Epoch: 2, Active: v2, Voters: []Voter{v1, v2}, ISR: []Voter{v1, v2}},
		"not in ISR": {Epoch: 2, Active: v1, Voters: []Voter{v1, v2}, ISR: []Voter{v2}},
	} {
		if _, err := NewLeader(LeaderConfig{Self: v1, Register: c, MinISR: 1}, 0); err == nil {
			t.Errorf("%s: NewLeader succeeded", name)
		}
	}
}

// Commit needs every ISR voter's durable position in this epoch; the
// leader's own durable end caps it too.
func TestCommitNeedsEveryISRVoter(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 0, 0)
	l.Append(10, 1)
	wantHW(t, l, 0)
	fetch(t, l, lookup, v2, 10, 5, 2)
	wantHW(t, l, 0) // v3 has not fetched in epoch 5
	fetch(t, l, lookup, v3, 4, 5, 3)
	wantHW(t, l, 4)
	fetch(t, l, lookup, v3, 10, 5, 4)
	wantHW(t, l, 10)
	if rd := l.Ready(); !rd.HighWatermarkAdvanced || rd.HighWatermark != 10 || rd.Proposal != nil {
		t.Fatalf("ready %+v", rd)
	}
	// Appended but not yet durable on the leader: not counted (the caller
	// reports only the durable end, and serves only durable records).
	l.Append(10, 5)
	wantHW(t, l, 10)
}

// Strict min ISR: with the ISR below min ISR nothing commits, even records
// every member has.
func TestStrictMinISR(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2}, 3, 0, 0)
	l.Append(5, 1)
	fetch(t, l, lookup, v2, 5, 5, 2)
	wantHW(t, l, 0)
}

// A lagging voter is proposed out after the lag time, keeps holding the
// high watermark until the register's compare-and-set succeeds, and only
// then leaves.
func TestLaggingVoterLeavesOnlyOnCAS(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 0, 0)
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 10, 5, 100)
	fetch(t, l, lookup, v3, 3, 5, 100)
	wantHW(t, l, 3)
	l.Tick(lagMs)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatalf("proposal within the lag time: %+v", rd.Proposal)
	}
	l.Tick(lagMs + 1)
	rd := l.Ready()
	want := ISRChange{ID: rd.Proposal.ID, Epoch: 5, Version: 10, ISR: []Voter{v1, v2}}
	if rd.Proposal == nil || !slices.Equal(rd.Proposal.ISR, want.ISR) || rd.Proposal.Epoch != 5 || rd.Proposal.Version != 10 || rd.Proposal.Expand {
		t.Fatalf("proposal %+v, want %+v", rd.Proposal, want)
	}
	id := rd.Proposal.ID
	fetch(t, l, lookup, v2, 10, 5, lagMs+2)
	wantHW(t, l, 3) // still in the ISR until the register says otherwise
	l.Tick(lagMs * 3)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatalf("second proposal while one is in flight: %+v", rd.Proposal)
	}
	// A lost answer is retried with the same change.
	if out, err := l.HandleISRResult(id, ISRResult{Err: errors.New("timeout")}, lagMs*3); err != nil || out != OutcomeRetry {
		t.Fatalf("timeout: %v %v", out, err)
	}
	if rd := l.Ready(); rd.Proposal == nil || rd.Proposal.ID != id {
		t.Fatalf("retry not handed out: %+v", rd.Proposal)
	}
	wantHW(t, l, 3)
	reg := Config{Epoch: 5, Version: 11, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: []Voter{v1, v2}}
	if out, err := l.HandleISRResult(id, ISRResult{Register: reg}, lagMs*3); err != nil || out != OutcomeCommitted {
		t.Fatalf("success: %v %v", out, err)
	}
	wantHW(t, l, 10)
	if l.Version() != 11 || !slices.Equal(l.ISR(), []Voter{v1, v2}) {
		t.Fatalf("version %d ISR %v", l.Version(), l.ISR())
	}
	// A late duplicate answer changes nothing.
	if out, _ := l.HandleISRResult(id, ISRResult{Register: reg}, lagMs*3); out != OutcomeIgnored {
		t.Fatalf("duplicate answer: %v", out)
	}
}

// No shrink below min ISR is proposed: the register would refuse it. The
// laggard stays in the ISR and holds the high watermark.
func TestNoShrinkBelowMinISR(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2}, 2, 0, 0)
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 4, 5, 1)
	wantHW(t, l, 4)
	for _, now := range []int64{lagMs + 10, 2*lagMs + 10} {
		l.Tick(now)
		if rd := l.Ready(); rd.Proposal != nil {
			t.Fatalf("shrink below min ISR proposed: %+v", rd.Proposal)
		}
	}
	fetch(t, l, lookup, v2, 10, 5, 2*lagMs+20)
	wantHW(t, l, 10)
}

// A caught-up voter outside the ISR is proposed back in; the expansion
// holds the high watermark at once, and stops holding it if refused.
func TestCaughtUpVoterProposedBackIn(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2}, 1, 0, 0)
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 10, 5, 1)
	wantHW(t, l, 10)
	l.Ready()
	fetch(t, l, lookup, v3, 4, 5, 2)
	if rd := l.Ready(); rd.Proposal != nil {
		t.Fatalf("proposed a voter below the high watermark: %+v", rd.Proposal)
	}
	fetch(t, l, lookup, v3, 10, 5, 3)
	rd := l.Ready()
	if rd.Proposal == nil || !slices.Equal(rd.Proposal.ISR, []Voter{v1, v2, v3}) || !rd.Proposal.Expand {
		t.Fatalf("proposal %+v", rd.Proposal)
	}
	l.Append(20, 4)
	fetch(t, l, lookup, v2, 20, 5, 5)
	wantHW(t, l, 10) // v3 counts from the proposal on
	if out, _ := l.HandleISRResult(rd.Proposal.ID, ISRResult{Err: ErrRefused}, 6); out != OutcomeReset {
		t.Fatalf("refused: %v", out)
	}
	l.Tick(6)
	wantHW(t, l, 10) // v3 is still caught up and eligible: Kafka lets it catch the HW
	fetch(t, l, lookup, v3, 20, 5, 7)
	if rd := l.Ready(); rd.Proposal == nil {
		t.Fatal("no new proposal after the refusal")
	}
}

// shrinkInFlight is a leader of v1–v3 whose log ends at 10, which v2 has
// fetched and v3 has not, with the shrink of v3 in flight.
func shrinkInFlight(t *testing.T) (*Leader, isr.EpochLookup, *ISRChange) {
	t.Helper()
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 0, 0)
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 10, 5, 1)
	l.Tick(lagMs + 10)
	p := l.Ready().Proposal
	if p == nil || !slices.Equal(p.ISR, []Voter{v1, v2}) {
		t.Fatalf("proposal %+v", p)
	}
	return l, lookup, p
}

// An answer in another epoch deposes the leader: it stops serving and its
// high watermark freezes.
func TestEpochChangeDeposes(t *testing.T) {
	l, lookup, p := shrinkInFlight(t)
	if out, _ := l.HandleISRResult(p.ID, ISRResult{Err: ErrEpochChanged}, lagMs+11); out != OutcomeDeposed {
		t.Fatalf("outcome %v", out)
	}
	if rd := l.Ready(); !rd.Deposed || rd.Proposal != nil {
		t.Fatalf("ready %+v", rd)
	}
	if _, err := l.Fetch(VoterFetch{Voter: v3, CurrentEpoch: 5, FetchOffset: 10, LastFetchedEpoch: 5, LeaderLogEndOffset: 10}, lookup, lagMs+12); !errors.Is(err, ErrDeposed) {
		t.Fatalf("fetch at a deposed leader: %v", err)
	}
	wantHW(t, l, 0)
}

// A configuration version conflict sends the caller to the register; a read
// showing this very change applied adopts it.
func TestVersionConflictReadsRegister(t *testing.T) {
	l, _, p := shrinkInFlight(t)
	if out, _ := l.HandleISRResult(p.ID, ISRResult{Err: ErrVersionChanged}, lagMs+11); out != OutcomeReadRegister {
		t.Fatalf("outcome %v", out)
	}
	wantHW(t, l, 0)
	if err := l.ApplyRegister(Config{Epoch: 5, Version: 10, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: []Voter{v1}}, lagMs+12); err != nil {
		t.Fatal(err)
	}
	wantHW(t, l, 0) // the same version: nothing new
	if err := l.ApplyRegister(Config{Epoch: 5, Version: 11, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: []Voter{v1, v2}}, lagMs+12); err != nil {
		t.Fatal(err)
	}
	wantHW(t, l, 10)
	if err := l.ApplyRegister(Config{Epoch: 6, Version: 11, Active: v2}, lagMs+13); !errors.Is(err, ErrDeposed) || !l.Deposed() {
		t.Fatalf("newer epoch: %v", err)
	}
}

// Observers read up to the high watermark and never move it.
func TestObserverNeverAffectsHW(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2}, 1, 0, 0)
	l.Append(10, 0)
	for _, off := range []int64{0, 10} {
		to, div, err := l.FetchObserver(ObserverFetch{CurrentEpoch: 5, FetchOffset: off, LastFetchedEpoch: isr.UndefinedEpoch, LeaderLogEndOffset: 10}, lookup)
		if err != nil || div != nil || to != off {
			t.Fatalf("observer at %d: read to %d, %v %v", off, to, div, err)
		}
	}
	wantHW(t, l, 0)
	fetch(t, l, lookup, v2, 6, 5, 1)
	wantHW(t, l, 6)
	to, _, err := l.FetchObserver(ObserverFetch{CurrentEpoch: 5, FetchOffset: 2, LastFetchedEpoch: 5, LeaderLogEndOffset: 10}, lookup)
	if err != nil || to != 6 {
		t.Fatalf("read to %d, %v; want the high watermark 6", to, err)
	}
	if _, _, err := l.FetchObserver(ObserverFetch{CurrentEpoch: 4, FetchOffset: 2, LastFetchedEpoch: isr.UndefinedEpoch, LeaderLogEndOffset: 10}, lookup); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("observer in an older epoch: %v", err)
	}
}

// Fetches are fenced by epoch and by exact incarnation; a fetch in a newer
// epoch proves a takeover and deposes the leader.
func TestFetchFences(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 0, 0)
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 10, 5, 1)
	wiped := Voter{ID: 3, Incarnation: caspaxos.Incarnation{9}}
	if _, err := l.Fetch(VoterFetch{Voter: wiped, CurrentEpoch: 5, FetchOffset: 10, LastFetchedEpoch: 5, LeaderLogEndOffset: 10}, lookup, 2); !errors.Is(err, kerr.UnknownLeaderEpoch) {
		t.Fatalf("new incarnation of voter 3: %v", err)
	}
	wantHW(t, l, 0) // voter 3 in the ISR is the old incarnation
	if _, err := l.Fetch(VoterFetch{Voter: v3, CurrentEpoch: 4, FetchOffset: 10, LastFetchedEpoch: 5, LeaderLogEndOffset: 10}, lookup, 3); !errors.Is(err, kerr.FencedLeaderEpoch) {
		t.Fatalf("older epoch: %v", err)
	}
	wantHW(t, l, 0)
	if _, err := l.Fetch(VoterFetch{Voter: v3, CurrentEpoch: 6, FetchOffset: 10, LastFetchedEpoch: 5, LeaderLogEndOffset: 10}, lookup, 4); !errors.Is(err, kerr.UnknownLeaderEpoch) || !l.Deposed() {
		t.Fatalf("newer epoch: %v, deposed %v", err, l.Deposed())
	}
}

// On takeover the high watermark starts at the new leader's own and waits
// for every ISR voter to fetch in the new epoch; it never goes back.
func TestTakeoverHighWatermark(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 7, 12)
	wantHW(t, l, 7)
	fetch(t, l, lookup, v2, 12, 5, 1)
	wantHW(t, l, 7)
	fetch(t, l, lookup, v3, 12, 1, 2)
	wantHW(t, l, 12)
	// A voter that truncated (after a crash lost its unsynced tail) lowers
	// its position; the high watermark stays.
	fetch(t, l, lookup, v3, 11, 1, 3)
	wantHW(t, l, 12)
}

// A voter whose last epoch ended earlier on the leader gets DivergingEpoch.
func TestLeaderAnswersDivergingEpoch(t *testing.T) {
	l, lookup := leaderAt(t, []Voter{v1, v2, v3}, 1, 0, 8)
	div, err := l.Fetch(VoterFetch{Voter: v2, CurrentEpoch: 5, FetchOffset: 11, LastFetchedEpoch: 3, LeaderLogEndOffset: 8}, lookup, 1)
	if err != nil || div == nil || *div != (isr.EpochEndOffset{Epoch: 1, EndOffset: 8}) {
		t.Fatalf("diverging %v, %v", div, err)
	}
	wantHW(t, l, 0)
}

// The controller a takeover replaced (Stale) is proposed out of the
// metadata ISR at the leader's first Tick, not after the lag time, and
// holds the high watermark until the register's compare-and-set says so.
func TestStaleVoterProposedOutAtFirstTick(t *testing.T) {
	l, err := NewLeader(LeaderConfig{
		Self:         v1,
		Register:     Config{Epoch: 5, Version: 10, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: []Voter{v1, v2, v3}},
		MinISR:       2,
		LagTimeMaxMs: lagMs,
		Stale:        []Voter{v3},
	}, 0)
	if err != nil {
		t.Fatal(err)
	}
	cache := []isr.EpochEntry{{Epoch: 1, StartOffset: 0}, {Epoch: 5, StartOffset: 0}}
	lookup := func(e int32) (int32, int64) {
		r := isr.EndOffsetFor(cache, e, l.LogEndOffset())
		return r.Epoch, r.EndOffset
	}
	l.Append(10, 0)
	fetch(t, l, lookup, v2, 10, 5, 1)
	wantHW(t, l, 0)
	l.Tick(1)
	rd := l.Ready()
	if rd.Proposal == nil || !slices.Equal(rd.Proposal.ISR, []Voter{v1, v2}) || rd.Proposal.Expand {
		t.Fatalf("want a shrink to [v1 v2] at the first tick, got %+v", rd.Proposal)
	}
	wantHW(t, l, 0)
	reg := Config{Epoch: 5, Version: 11, Active: v1, Voters: []Voter{v1, v2, v3}, ISR: []Voter{v1, v2}}
	if out, err := l.HandleISRResult(rd.Proposal.ID, ISRResult{Register: reg}, 2); err != nil || out != OutcomeCommitted {
		t.Fatalf("shrink: %v %v", out, err)
	}
	wantHW(t, l, 10)
}
