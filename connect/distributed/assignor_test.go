package distributed

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

// cluster simulates workers around the assignor: each has its own Assignor
// (as every Kafka worker does), the oldest live worker leads, and a worker
// applies its assignment (stop revoked, start assigned) before the next
// round, as Member's callback contract requires.
type cluster struct {
	t        *testing.T
	maxDelay time.Duration
	now      time.Time
	gen      int32
	order    []string // live workers, oldest first
	owned    map[string]idSet
	asg      map[string]*Assignor
	config   map[string]int
	offsets  map[string]int64 // config offset each worker reports; default = config offset
	offset   int64
}

func newCluster(t *testing.T, maxDelay time.Duration, workers ...string) *cluster {
	c := &cluster{t: t, maxDelay: maxDelay, now: time.Unix(1000, 0), owned: map[string]idSet{},
		asg: map[string]*Assignor{}, config: map[string]int{}, offsets: map[string]int64{}}
	for _, w := range workers {
		c.join(w)
	}
	return c
}

func (c *cluster) join(w string) {
	c.order = append(c.order, w)
	c.owned[w] = idSet{}
	c.asg[w] = NewAssignor(c.maxDelay)
}

// leave removes a worker and its work (it stopped, or died).
func (c *cluster) leave(w string) {
	c.order = slices.DeleteFunc(c.order, func(x string) bool { return x == w })
	delete(c.owned, w)
}

func (c *cluster) setTasks(conn string, n int) {
	c.config[conn] = n
	c.offset++
}

func (c *cluster) deleteConnector(conn string) {
	delete(c.config, conn)
	c.offset++
}

// round runs one rebalance and checks what must hold in every round.
func (c *cluster) round() map[string]*Assignment {
	c.t.Helper()
	c.gen++
	var members []WorkerState
	for _, w := range c.order {
		off, ok := c.offsets[w]
		if !ok {
			off = c.offset
		}
		members = append(members, WorkerState{ID: w, URL: "http://" + w, ConfigOffset: off, Owned: c.owned[w].sorted()})
	}
	leader := c.order[0]
	out := c.asg[leader].Assign(Round{Now: c.now, Generation: c.gen, LastCompleted: c.gen - 1, Leader: leader,
		Version: V1, Members: members, Config: ConfigSnapshot{Offset: c.offset, Tasks: maps.Clone(c.config)}})
	if len(out) != len(members) {
		c.t.Fatalf("%d assignments for %d members", len(out), len(members))
	}
	running := map[ID]string{}
	for _, w := range c.order {
		for id := range c.owned[w] {
			running[id] = w
		}
	}
	given := map[ID]string{}
	for _, w := range c.order {
		a := out[w]
		if a.Leader != leader || a.LeaderURL != "http://"+leader {
			c.t.Fatalf("%s: leader %q %q, want %q", w, a.Leader, a.LeaderURL, leader)
		}
		for _, id := range a.Revoked {
			if !c.owned[w].has(id) {
				c.t.Fatalf("%s: revoked %v it does not run", w, id)
			}
		}
		for _, id := range a.Assigned {
			if o, ok := running[id]; ok {
				c.t.Fatalf("%s: assigned %v still run by %s", w, id, o)
			}
			if o, ok := given[id]; ok {
				c.t.Fatalf("%v assigned to both %s and %s", id, o, w)
			}
			if _, ok := c.config[id.Connector]; !ok || id.Task >= int32(c.config[id.Connector]) {
				c.t.Fatalf("%s: assigned %v which is not configured", w, id)
			}
			given[id] = w
		}
	}
	for _, w := range c.order {
		if out[w].Error != NoError {
			continue
		}
		for _, id := range out[w].Revoked {
			delete(c.owned[w], id)
		}
		for _, id := range out[w].Assigned {
			c.owned[w].add(id)
		}
	}
	return out
}

// settle runs rounds the way members drive them: again at once after a
// revocation, again when the delay expires, until a round changes nothing.
func (c *cluster) settle() {
	c.t.Helper()
	for i := 0; i < 50; i++ {
		out := c.round()
		var revoked, assigned bool
		var delay int32
		for _, a := range out {
			revoked = revoked || len(a.Revoked) > 0
			assigned = assigned || len(a.Assigned) > 0
			delay = max(delay, a.Delay)
		}
		switch {
		case revoked:
		case delay > 0:
			c.now = c.now.Add(time.Duration(delay) * time.Millisecond)
		case !assigned:
			return
		}
	}
	c.t.Fatalf("no convergence after 50 rounds")
}

// checkSettled asserts what users rely on once nothing is held back: every
// configured connector and task runs exactly once, nothing else runs, and
// no worker has more than one connector (or task) above another.
func (c *cluster) checkSettled() {
	c.t.Helper()
	runs := map[ID]int{}
	minC, maxC, minT, maxT := 1<<30, -1, 1<<30, -1
	for _, w := range c.order {
		for id := range c.owned[w] {
			runs[id]++
		}
		nc, nt := c.owned[w].count(true), c.owned[w].count(false)
		minC, maxC, minT, maxT = min(minC, nc), max(maxC, nc), min(minT, nt), max(maxT, nt)
	}
	want := 0
	for conn, n := range c.config {
		for task := int32(-1); task < int32(n); task++ {
			want++
			if runs[ID{conn, task}] != 1 {
				c.t.Fatalf("%v runs %d times\n%s", ID{conn, task}, runs[ID{conn, task}], c)
			}
		}
	}
	if len(runs) != want {
		c.t.Fatalf("%d units run, %d configured\n%s", len(runs), want, c)
	}
	if len(c.order) > 0 && (maxC-minC > 1 || maxT-minT > 1) {
		c.t.Fatalf("unbalanced: connectors %d..%d tasks %d..%d\n%s", minC, maxC, minT, maxT, c)
	}
}

func (c *cluster) String() string {
	var b strings.Builder
	for _, w := range c.order {
		fmt.Fprintf(&b, "%s: %v\n", w, c.owned[w].sorted())
	}
	return b.String()
}

// show renders a round's assignments compactly for table tests.
func show(out map[string]*Assignment) string {
	var lines []string
	for _, w := range slices.Sorted(maps.Keys(out)) {
		a := out[w]
		line := fmt.Sprintf("%s: +%v -%v", w, a.Assigned, a.Revoked)
		if a.Delay != 0 {
			line += fmt.Sprintf(" delay=%d", a.Delay)
		}
		if a.Error != NoError {
			line += fmt.Sprintf(" error=%d offset=%d", a.Error, a.ConfigOffset)
		}
		lines = append(lines, line)
	}
	return strings.Join(lines, "\n")
}

func expect(t *testing.T, out map[string]*Assignment, want string) {
	t.Helper()
	want = strings.TrimSpace(strings.ReplaceAll(want, "\t", ""))
	if got := show(out); got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestAssignFresh(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1", "w2")
	c.setTasks("a", 3)
	c.setTasks("b", 3)
	expect(t, c.round(), `
		w1: +[a a-0 a-2 b-1] -[]
		w2: +[a-1 b b-0 b-2] -[]`)
	c.checkSettled()
}

func TestAssignJoinMovesOnlyWhatMust(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1")
	c.setTasks("a", 3)
	c.setTasks("b", 3)
	c.round()
	c.join("w2")
	// First round: w1 stops its share above balance; w2 gets nothing yet
	// because that work still runs on w1.
	expect(t, c.round(), `
		w1: +[] -[b b-0 b-1 b-2]
		w2: +[] -[]`)
	// Second round (w1 rejoins once stopped): exactly that work moves.
	expect(t, c.round(), `
		w1: +[] -[]
		w2: +[b b-0 b-1 b-2] -[]`)
	c.checkSettled()
	// A third worker takes its share of tasks; w1 and w2 each give up only
	// what is above their share (connectors are 1-1-0 already: balanced).
	c.join("w3")
	expect(t, c.round(), `
		w1: +[] -[a-2]
		w2: +[] -[b-2]
		w3: +[] -[]`)
	expect(t, c.round(), `
		w1: +[] -[]
		w2: +[] -[]
		w3: +[a-2 b-2] -[]`)
	c.checkSettled()
}

// Workers joining in quick succession make rounds that each revoke for
// balance; as in Kafka the second such round waits (40ms, then 1.6s, 64s,
// up to the max delay) instead of revoking, and a round that needs no
// revocation ends the spacing.
func TestAssignSuccessiveRevocationsSpacedOut(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1")
	c.setTasks("a", 6)
	c.round()
	c.join("w2")
	expect(t, c.round(), `
		w1: +[] -[a-3 a-4 a-5]
		w2: +[] -[]`)
	c.join("w3")
	expect(t, c.round(), `
		w1: +[] -[] delay=40
		w2: +[a-3 a-5] -[] delay=40
		w3: +[a-4] -[] delay=40`)
	c.now = c.now.Add(40 * time.Millisecond)
	expect(t, c.round(), `
		w1: +[] -[a-2]
		w2: +[] -[]
		w3: +[] -[]`)
	c.settle()
	c.checkSettled()
	for _, a := range c.round() {
		if a.Delay != 0 {
			t.Fatalf("a settled group still gets a delay: %+v", a)
		}
	}
}

func TestAssignDepartedWorkHeldBack(t *testing.T) {
	c := newCluster(t, 10*time.Second, "w1", "w2", "w3")
	c.setTasks("a", 6)
	c.round()
	c.checkSettled()
	lost := c.owned["w3"].sorted()
	c.leave("w3")
	// Its work waits for it: nothing moves, everyone is told to come back
	// when the delay is over.
	expect(t, c.round(), `
		w1: +[] -[] delay=10000
		w2: +[] -[] delay=10000`)
	// A rebalance in between (say a config change) keeps counting down.
	c.now = c.now.Add(4 * time.Second)
	expect(t, c.round(), `
		w1: +[] -[] delay=6000
		w2: +[] -[] delay=6000`)
	c.now = c.now.Add(6 * time.Second)
	out := c.round()
	var got []ID
	for _, a := range out {
		if len(a.Revoked) != 0 || a.Delay != 0 {
			t.Fatalf("after the delay: %s", show(out))
		}
		got = append(got, a.Assigned...)
	}
	slices.SortFunc(got, ID.Compare)
	if !slices.Equal(got, lost) {
		t.Fatalf("reassigned %v, w3 had %v", got, lost)
	}
	c.checkSettled()
}

func TestAssignDepartedWorkerReturns(t *testing.T) {
	c := newCluster(t, 10*time.Second, "w1", "w2")
	c.setTasks("a", 4)
	c.round()
	had := c.owned["w2"]
	c.leave("w2")
	c.round()
	// Back within the delay with its allocation: nothing was lost.
	c.join("w2")
	c.owned["w2"] = had
	expect(t, c.round(), `
		w1: +[] -[]
		w2: +[] -[]`)
	c.checkSettled()

	// Restarted under a new member ID, empty: it gets the held-back work
	// when the delay expires.
	had = c.owned["w2"]
	c.leave("w2")
	c.round()
	c.join("w2b")
	expect(t, c.round(), `
		w1: +[] -[] delay=10000
		w2b: +[] -[] delay=10000`)
	c.now = c.now.Add(10 * time.Second)
	out := c.round()
	if !slices.Equal(out["w2b"].Assigned, had.sorted()) {
		t.Fatalf("w2b got %v, the departed worker had %v", out["w2b"].Assigned, had.sorted())
	}
	c.checkSettled()
}

func TestAssignNoDelay(t *testing.T) {
	c := newCluster(t, 0, "w1", "w2")
	c.setTasks("a", 2)
	c.round()
	c.leave("w2")
	expect(t, c.round(), `w1: +[a-1] -[]`)
	c.checkSettled()
}

func TestAssignDeletesAndTaskCounts(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1", "w2")
	c.setTasks("a", 2)
	c.setTasks("b", 2)
	c.round()
	expect(t, c.round(), `
		w1: +[] -[]
		w2: +[] -[]`)
	c.deleteConnector("b")
	c.setTasks("a", 4)
	out := c.round()
	expect(t, out, `
		w1: +[a-2] -[b-0]
		w2: +[a-3] -[b b-1]`)
	c.settle()
	c.checkSettled()
	c.setTasks("a", 1)
	expect(t, c.round(), `
		w1: +[] -[a-2]
		w2: +[] -[a-1 a-3]`)
	c.settle()
	c.checkSettled()
}

func TestAssignDuplicatesRevokedFromAll(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1", "w2")
	c.setTasks("a", 2)
	c.round()
	c.owned["w1"].add(TaskID("a", 1))
	c.owned["w2"].add(TaskID("a", 1))
	c.owned["w1"].add(TaskID("a", 0))
	delete(c.owned["w2"], TaskID("a", 0))
	// Bypass round()'s checks: the duplicate is the input under test.
	out := c.asg["w1"].Assign(Round{Now: c.now, Generation: 9, LastCompleted: 8, Leader: "w1", Version: V1,
		Members: []WorkerState{
			{ID: "w1", ConfigOffset: c.offset, Owned: c.owned["w1"].sorted()},
			{ID: "w2", ConfigOffset: c.offset, Owned: c.owned["w2"].sorted()},
		}, Config: ConfigSnapshot{Offset: c.offset, Tasks: c.config}})
	for _, w := range []string{"w1", "w2"} {
		if !slices.Contains(out[w].Revoked, TaskID("a", 1)) {
			t.Fatalf("%s keeps the duplicate: %s", w, show(out))
		}
	}
}

func TestAssignConfigMismatch(t *testing.T) {
	c := newCluster(t, DefaultMaxDelay, "w1", "w2")
	c.setTasks("a", 1)
	c.round()
	c.offsets["w2"] = c.offset + 3 // w2 has read a newer config than the leader
	expect(t, c.round(), `
		w1: +[] -[] error=1 offset=4
		w2: +[] -[] error=1 offset=4`)
	delete(c.offsets, "w2")
	c.offsets["w1"] = c.offset // a follower behind is fine; it catches up to the offset in its assignment
	c.offsets["w2"] = c.offset - 1
	for _, a := range c.round() {
		if a.Error != NoError || a.ConfigOffset != c.offset {
			t.Fatalf("%+v", a)
		}
	}
}

func TestAssignLeaderChangeForgets(t *testing.T) {
	c := newCluster(t, 10*time.Second, "w1", "w2", "w3")
	c.setTasks("a", 3)
	c.round()
	// The leader dies: the new leader has no memory of the last round, so
	// the old leader's work is new work to it and is assigned at once (as
	// in Kafka).
	c.leave("w1")
	c.round()
	c.settle()
	c.checkSettled()
}

// TestAssignRandom drives the assignor through random joins, leaves,
// connector adds and deletes and task count changes, checking in every
// round that nothing is given to two workers or to one while another still
// runs it, and after each settling that all configured work runs once and
// is balanced within one.
func TestAssignRandom(t *testing.T) {
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)
	defer func() {
		if t.Failed() {
			t.Logf("failed with seed %d", seed)
		}
	}()
	for iter := 0; iter < 40; iter++ {
		rng := rand.New(rand.NewPCG(seed, uint64(iter)))
		delay := []time.Duration{0, time.Second, DefaultMaxDelay}[rng.IntN(3)]
		c := newCluster(t, delay, "w0")
		next := 1
		for step := 0; step < 60; step++ {
			switch k := rng.IntN(10); {
			case k < 2 && len(c.order) < 6:
				c.join(fmt.Sprintf("w%d", next))
				next++
			case k < 4 && len(c.order) > 1:
				c.leave(c.order[rng.IntN(len(c.order))])
			case k < 7:
				c.setTasks(fmt.Sprintf("c%d", rng.IntN(8)), rng.IntN(6))
			case k < 8 && len(c.config) > 0:
				names := slices.Sorted(maps.Keys(c.config))
				c.deleteConnector(names[rng.IntN(len(names))])
			default:
				c.now = c.now.Add(time.Duration(rng.IntN(5000)) * time.Millisecond)
			}
			// Sometimes only one round runs before the next change, so
			// changes land mid-rebalance.
			if rng.IntN(3) == 0 {
				c.round()
			} else {
				c.settle()
				c.checkSettled()
			}
		}
		c.settle()
		c.checkSettled()
	}
}
