package distributed

import (
	"cmp"
	"slices"
	"time"
)

// DefaultMaxDelay is Kafka's scheduled.rebalance.max.delay.ms: how long the
// work of a worker that left the group is held back in case it returns.
const DefaultMaxDelay = 300 * time.Second

// WorkerState is one member of a round as the leader sees it in JoinGroup.
type WorkerState struct {
	ID           string // group member ID
	URL          string
	ConfigOffset int64
	Owned        []ID // what the worker runs now (its metadata's allocation)
}

// ConfigSnapshot is the leader's view of the config topic: every connector
// and how many tasks it has committed configs for (tasks 0..n-1).
type ConfigSnapshot struct {
	Offset int64
	Tasks  map[string]int
}

// Round is the input of one assignment.
type Round struct {
	Now time.Time
	// Generation is the generation being assigned; LastCompleted is the
	// last generation this leader completed a SyncGroup for (-1 for none).
	// When they show this assignor missed a round, its memory is dropped.
	Generation, LastCompleted int32
	Leader                    string // member ID of the leader
	Version                   int16  // protocol version of the assignments
	Members                   []WorkerState
	Config                    ConfigSnapshot
}

// Assignor is Kafka Connect's incremental cooperative assignor (KIP-415):
// work moves only when it must, in two rounds (revoke, then assign in the
// next round once the owner has stopped it), and the work of a departed
// worker is held back for up to the max delay in case it returns. It is a
// deterministic state machine: time comes in with each Round, and it keeps
// only the memory of the previous round it needs to tell lost work from
// new work.
type Assignor struct {
	maxDelay time.Duration

	prevGen     int32
	prev        idSet // everything assigned (or held back) after the last round
	prevRevoked idSet // revoked in the last round
	prevMembers map[string]bool

	// revokedInPrevious and successiveRevokes space out successive rounds
	// that revoke for balance.
	revokedInPrevious bool
	successiveRevokes int
	backoffPending    bool // scheduled is such a spacing, not held-back work

	scheduled  time.Time       // when held-back work gets reassigned; zero = none
	delay      time.Duration   // the delay handed out in the last round
	candidates map[string]bool // workers seen empty while work was held back
}

// NewAssignor returns an assignor holding lost work back for maxDelay
// (0 reassigns lost work at once).
func NewAssignor(maxDelay time.Duration) *Assignor {
	return &Assignor{maxDelay: maxDelay, prevGen: -1, prev: idSet{}, prevRevoked: idSet{}, candidates: map[string]bool{}}
}

// Assign computes every member's assignment for the round. Assigned lists
// only work newly given to the member; Revoked is work the member must stop
// before it rejoins; Delay (ms) is set while lost work is held back, and
// members rejoin when it expires so the leader can reassign.
//
// If the leader's config snapshot is behind any member's config offset,
// every member gets ConfigMismatch and no work moves (Kafka's
// CONFIG_MISMATCH: read the config topic to the end and rejoin).
func (a *Assignor) Assign(r Round) map[string]*Assignment {
	members := slices.Clone(r.Members)
	slices.SortFunc(members, func(x, y WorkerState) int { return cmp.Compare(x.ID, y.ID) })
	var maxOffset int64 = -1
	leaderURL := ""
	for _, m := range members {
		maxOffset = max(maxOffset, m.ConfigOffset)
		if m.ID == r.Leader {
			leaderURL = m.URL
		}
	}
	out := make(map[string]*Assignment, len(members))
	if len(members) == 0 {
		return out
	}
	base := Assignment{Version: r.Version, Leader: r.Leader, LeaderURL: leaderURL, ConfigOffset: r.Config.Offset}
	if r.Config.Offset < maxOffset {
		for _, m := range members {
			asg := base
			asg.Error, asg.ConfigOffset = ConfigMismatch, maxOffset
			out[m.ID] = &asg
		}
		return out
	}
	if a.prevGen != r.LastCompleted {
		// The leader missed the outcome of the round it remembers (its
		// SyncGroup failed, or it was not leader since): what it remembers
		// may be wrong, and wrong memory would hold back work nobody lost.
		a.prev = idSet{}
	}

	configured := idSet{}
	for name, n := range r.Config.Tasks {
		configured.add(ConnectorID(name))
		for i := 0; i < n; i++ {
			configured.add(TaskID(name, int32(i)))
		}
	}
	owned := make(map[string]idSet, len(members))
	holders := map[ID]int{}
	for _, m := range members {
		s := idSet{}
		for _, id := range m.Owned {
			if !s.has(id) {
				s.add(id)
				holders[id]++
			}
		}
		owned[m.ID] = s
	}
	if len(a.prevRevoked) > 0 {
		for id := range a.prevRevoked {
			if holders[id] > 0 {
				// A revocation did not take effect: the worker did not
				// get or apply its last assignment. Start from what runs.
				a.prev = idSet{}
				for id := range holders {
					a.prev.add(id)
				}
				break
			}
		}
		a.prevRevoked = idSet{}
	}

	// Deleted work and work running twice is revoked from every holder;
	// duplicates come back as new work in the next round.
	revoke := make(map[string]idSet, len(members))
	next := make(map[string]idSet, len(members))
	for _, m := range members {
		revoke[m.ID], next[m.ID] = idSet{}, idSet{}
		for id := range owned[m.ID] {
			if !configured.has(id) || holders[id] > 1 {
				revoke[m.ID].add(id)
			} else {
				next[m.ID].add(id)
			}
		}
	}
	lost, created := idSet{}, idSet{}
	for id := range a.prev {
		if configured.has(id) && holders[id] == 0 {
			lost.add(id)
		}
	}
	for id := range configured {
		if !a.prev.has(id) && holders[id] == 0 {
			created.add(id)
		}
	}

	toAssign := created
	reassigned := a.handleLost(r.Now, lost, members, next)
	for id := range reassigned {
		toAssign.add(id)
	}
	if a.delay == 0 {
		// Balance only when no work is held back: a returning worker
		// should get its own work back, not a share of the others'.
		a.balance(r.Now, members, configured, owned, next, revoke)
	} else {
		a.revokedInPrevious = false
	}
	for _, id := range toAssign.sorted() {
		w := leastLoaded(members, next, id.IsConnector())
		next[w].add(id)
	}

	a.prev = idSet{}
	for _, m := range members {
		asg := base
		asg.Delay = int32(a.delay / time.Millisecond)
		for _, id := range next[m.ID].sorted() {
			a.prev.add(id)
			if !owned[m.ID].has(id) {
				asg.Assigned = append(asg.Assigned, id)
			}
		}
		asg.Revoked = revoke[m.ID].sorted()
		for _, id := range asg.Revoked {
			a.prevRevoked.add(id)
		}
		out[m.ID] = &asg
	}
	for id := range lost {
		a.prev.add(id) // still held back, or reassigned and in next anyway
	}
	a.prevGen = r.Generation
	a.prevMembers = make(map[string]bool, len(members))
	for _, m := range members {
		a.prevMembers[m.ID] = true
	}
	return out
}

// balance revokes what workers run above their share. Rounds that each
// revoke for balance, one after another (workers joining in quick
// succession), are spaced out as in Kafka (KAFKA-12495): the second waits
// 40ms, then 1.6s, 64s, up to the max delay, until a round needs none.
func (a *Assignor) balance(now time.Time, members []WorkerState, configured idSet, owned, next, revoke map[string]idSet) {
	var conns, tasks int
	for id := range configured {
		if id.IsConnector() {
			conns++
		} else {
			tasks++
		}
	}
	lb := map[string][]ID{}
	for _, isConn := range []bool{true, false} {
		total := tasks
		if isConn {
			total = conns
		}
		for w, ids := range balanceRevocations(members, owned, next, isConn, total) {
			lb[w] = append(lb[w], ids...)
		}
	}
	empty := true
	for _, ids := range lb {
		empty = empty && len(ids) == 0
	}
	switch {
	case empty:
		a.revokedInPrevious, a.successiveRevokes = false, 0
		return
	case a.revokedInPrevious:
		a.successiveRevokes++
		if d := revokeBackoff(a.successiveRevokes, a.maxDelay); d > 0 {
			a.delay, a.scheduled, a.backoffPending = d, now.Add(d), true
			return
		}
	default:
		a.revokedInPrevious = true
	}
	for w, ids := range lb {
		for _, id := range ids {
			revoke[w].add(id)
			delete(next[w], id)
		}
	}
}

// revokeBackoff is Kafka's ExponentialBackoff(1ms, x40, maxDelay) for the
// n-th successive balance-revoking round.
func revokeBackoff(n int, maxDelay time.Duration) time.Duration {
	if maxDelay <= 0 {
		return 0
	}
	d := time.Millisecond
	for i := 0; i < n && d < maxDelay; i++ {
		d *= 40
	}
	return min(d, maxDelay)
}

// handleLost decides what happens to work that was assigned last round and
// that no member runs now. It returns the work to hand out now by balance;
// work for returning workers it puts in next itself; the rest stays held
// back, with a.delay saying how long.
func (a *Assignor) handleLost(now time.Time, lost idSet, members []WorkerState, next map[string]idSet) idSet {
	if len(lost) == 0 {
		if a.backoffPending && now.Before(a.scheduled) {
			a.delay = min(a.scheduled.Sub(now), a.maxDelay)
			return nil
		}
		if a.backoffPending {
			// The wait is over: the next round may revoke for balance.
			a.revokedInPrevious = false
		}
		a.resetDelay()
		return nil
	}
	if a.backoffPending {
		// Work was lost while balance rounds were being spaced out: hold
		// it back for the full delay, not just to the end of the spacing.
		a.scheduled, a.backoffPending, a.revokedInPrevious = time.Time{}, false, false
	}
	allBack := true
	present := make(map[string]bool, len(members))
	for _, m := range members {
		present[m.ID] = true
	}
	for id := range a.prevMembers {
		allBack = allBack && present[id]
	}
	if (a.scheduled.IsZero() && allBack) || a.maxDelay == 0 {
		// Nobody left, so the work was lost by a worker that missed its
		// last assignment; or holding back is switched off.
		return lost
	}
	if !a.scheduled.IsZero() && !now.Before(a.scheduled) {
		var cands []string
		for _, m := range members {
			if a.candidates[m.ID] {
				cands = append(cands, m.ID)
			}
		}
		a.resetDelay()
		// The wait is over: the next round may revoke for balance again.
		a.revokedInPrevious = false
		if len(cands) == 0 {
			return lost
		}
		// Workers that were empty while the work was held back are likely
		// the departed ones come back under a new member ID: give the work
		// to them, connectors and tasks each dealt round-robin.
		var ci, ti int
		for _, id := range lost.sorted() {
			if id.IsConnector() {
				next[cands[ci%len(cands)]].add(id)
				ci++
			} else {
				next[cands[ti%len(cands)]].add(id)
				ti++
			}
		}
		return nil
	}
	for _, m := range members {
		if len(next[m.ID]) == 0 {
			a.candidates[m.ID] = true
		}
	}
	if now.Before(a.scheduled) {
		a.delay = min(a.scheduled.Sub(now), a.maxDelay)
	} else {
		a.delay = a.maxDelay
	}
	a.scheduled = now.Add(a.delay)
	return nil
}

func (a *Assignor) resetDelay() {
	a.scheduled, a.delay, a.backoffPending = time.Time{}, 0, false
	clear(a.candidates)
}

// balanceRevocations picks the connectors (or tasks) to take away so that no
// worker keeps more than its share of total: total/n each, one more for
// total%n of them. Workers already within their share keep everything.
func balanceRevocations(members []WorkerState, owned, next map[string]idSet, conns bool, total int) map[string][]ID {
	if len(members) == 0 || total == 0 {
		return nil
	}
	size := func(w string) int { return next[w].count(conns) }
	lo, extra := total/len(members), total%len(members)
	var atLo, atHi, allEmpty = 0, 0, true
	for _, m := range members {
		switch size(m.ID) {
		case lo:
			atLo++
		case lo + 1:
			atHi++
		}
		allEmpty = allEmpty && len(next[m.ID]) == 0
	}
	if allEmpty || (atHi == extra && atLo+atHi == len(members)) {
		return nil
	}
	out := map[string][]ID{}
	extras := 0
	for _, m := range members {
		n := size(m.ID)
		if n <= lo {
			continue
		}
		limit := lo
		if extras < extra {
			extras++
			if n == lo+1 {
				continue
			}
			limit = lo + 1
		}
		// Only what the worker runs now can be revoked: work just given
		// to it from a departed worker is not running yet. Keep the lowest
		// IDs where they run.
		var ids []ID
		for _, id := range next[m.ID].sortedKind(conns) {
			if owned[m.ID].has(id) {
				ids = append(ids, id)
			}
		}
		out[m.ID] = ids[max(0, len(ids)-(n-limit)):]
	}
	return out
}

// leastLoaded is the member with the fewest connectors (or tasks) in next,
// the first by member ID on ties.
func leastLoaded(members []WorkerState, next map[string]idSet, conns bool) string {
	best, bestN := "", -1
	for _, m := range members {
		if n := next[m.ID].count(conns); bestN < 0 || n < bestN {
			best, bestN = m.ID, n
		}
	}
	return best
}

type idSet map[ID]struct{}

func (s idSet) add(id ID)      { s[id] = struct{}{} }
func (s idSet) has(id ID) bool { _, ok := s[id]; return ok }

func (s idSet) sorted() []ID {
	if len(s) == 0 {
		return nil
	}
	out := make([]ID, 0, len(s))
	for id := range s {
		out = append(out, id)
	}
	slices.SortFunc(out, ID.Compare)
	return out
}

func (s idSet) count(conns bool) int {
	n := 0
	for id := range s {
		if id.IsConnector() == conns {
			n++
		}
	}
	return n
}

func (s idSet) sortedKind(conns bool) []ID {
	var out []ID
	for id := range s {
		if id.IsConnector() == conns {
			out = append(out, id)
		}
	}
	slices.SortFunc(out, ID.Compare)
	return out
}
