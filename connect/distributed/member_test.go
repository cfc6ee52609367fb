package distributed

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

const testMaxDelay = 2 * time.Second

// world is a connect group of test workers over kfake. It tracks what every
// worker runs, from their callbacks, and fails the test the moment a unit
// of work would run on two workers at once.
type world struct {
	t       *testing.T
	cluster *kfake.Cluster // nil against an external broker
	addrs   []string
	group   string
	config  ConfigSnapshot

	sessioned map[string]bool // workers that advertise sessioned too

	mu        sync.Mutex
	running   map[ID]string
	starts    map[ID]int
	protocols map[string]string        // each worker's protocol in its last event
	gens      map[string][]int32       // each worker's event generations
	slow      map[string]time.Duration // a worker's next callback takes this long
	behind    map[string]int64         // a worker whose config topic reading lags at this offset
	mismatch  map[string]int           // ConfigMismatch events per worker
	workers   map[string]*worker
}

type worker struct {
	name   string
	m      *Member
	cancel context.CancelFunc
	done   chan struct{}
}

// bootstrapEnv names a broker to run the member tests against instead of
// kfake, for instance a Sluice broker started with
// --set group.min.session.timeout.ms=100. Each test uses its own group.
const bootstrapEnv = "CONNECT_TEST_BOOTSTRAP"

func newWorld(t *testing.T) *world {
	w := &world{t: t, group: "connect-" + t.Name(), running: map[ID]string{}, starts: map[ID]int{}, workers: map[string]*worker{},
		config: ConfigSnapshot{Offset: 4, Tasks: map[string]int{"a": 3, "b": 3}}}
	if addr := os.Getenv(bootstrapEnv); addr != "" {
		w.addrs = strings.Split(addr, ",")
		return w
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.GroupMinSessionTimeout(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	w.cluster, w.addrs = c, c.ListenAddrs()
	return w
}

func (w *world) start(name string) *worker {
	w.t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.addrs...))
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(cl.Close)
	m, err := NewMember(Config{
		Client: cl, GroupID: w.group, URL: "http://" + name,
		SessionTimeout: 1500 * time.Millisecond, HeartbeatInterval: 200 * time.Millisecond,
		RebalanceTimeout: 3 * time.Second, MaxDelay: testMaxDelay, Sessioned: w.sessioned[name],
		Snapshot: func() ConfigSnapshot {
			w.mu.Lock()
			defer w.mu.Unlock()
			snap := w.config
			if off, ok := w.behind[name]; ok {
				snap.Offset = off
			}
			return snap
		},
		OnAssignment: func(ev Event) {
			w.onAssignment(name, ev)
			w.mu.Lock()
			d := w.slow[name]
			delete(w.slow, name)
			w.mu.Unlock()
			time.Sleep(d)
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		w.t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	wk := &worker{name: name, m: m, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(wk.done)
		if err := m.Run(ctx); err != context.Canceled {
			w.t.Errorf("%s: Run: %v", name, err)
		}
	}()
	w.mu.Lock()
	w.workers[name] = wk
	w.mu.Unlock()
	w.t.Cleanup(func() { wk.stop() })
	return wk
}

func (w *world) onAssignment(name string, ev Event) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if ev.Error == ConfigMismatch {
		// What the worker does: read the config topic to the end.
		if w.mismatch == nil {
			w.mismatch = map[string]int{}
		}
		w.mismatch[name]++
		delete(w.behind, name)
		return
	}
	if w.protocols == nil {
		w.protocols = map[string]string{}
	}
	w.protocols[name] = ev.Protocol
	if w.gens == nil {
		w.gens = map[string][]int32{}
	}
	w.gens[name] = append(w.gens[name], ev.Generation)
	for _, id := range ev.Revoked {
		if w.running[id] != name {
			w.t.Errorf("%s: revoked %v, run by %q", name, id, w.running[id])
		}
		delete(w.running, id)
	}
	for _, id := range ev.Assigned {
		if o, ok := w.running[id]; ok {
			w.t.Errorf("%s: assigned %v while %s runs it", name, id, o)
		}
		w.running[id] = name
		w.starts[id]++
	}
}

// stop ends a worker's Run (leaving the group) and forgets its work, as
// the worker stops it when Run returns.
func (wk *worker) stop() {
	wk.cancel()
	<-wk.done
}

func (w *world) close(name string) {
	w.mu.Lock()
	wk := w.workers[name]
	delete(w.workers, name)
	w.mu.Unlock()
	wk.stop()
	w.forget(name)
}

// kill makes a worker vanish without LeaveGroup: it stops heartbeating and
// the coordinator finds out only when its session times out.
func (w *world) kill(name string) {
	w.mu.Lock()
	wk := w.workers[name]
	delete(w.workers, name)
	w.mu.Unlock()
	wk.m.mu.Lock()
	wk.m.leave = false
	wk.m.mu.Unlock()
	wk.stop()
	w.forget(name)
}

func (w *world) forget(name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, o := range w.running {
		if o == name {
			delete(w.running, id)
		}
	}
}

// settled reports whether every configured unit runs on a live worker,
// balanced within one, and describes the state otherwise.
func (w *world) settled() (bool, string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	per := map[string][2]int{}
	for name := range w.workers {
		per[name] = [2]int{}
	}
	n := 0
	for conn, tasks := range w.config.Tasks {
		for task := int32(-1); task < int32(tasks); task++ {
			n++
			o, ok := w.running[ID{conn, task}]
			if _, live := w.workers[o]; !ok || !live {
				return false, fmt.Sprintf("%v not running (%v)", ID{conn, task}, w.running)
			}
			c := per[o]
			if task == ConnectorTask {
				c[0]++
			} else {
				c[1]++
			}
			per[o] = c
		}
	}
	if len(w.running) != n {
		return false, fmt.Sprintf("%d running, %d configured", len(w.running), n)
	}
	lo, hi := [2]int{1 << 30, 1 << 30}, [2]int{}
	for _, c := range per {
		for i := range c {
			lo[i], hi[i] = min(lo[i], c[i]), max(hi[i], c[i])
		}
	}
	if hi[0]-lo[0] > 1 || hi[1]-lo[1] > 1 {
		return false, fmt.Sprintf("unbalanced %v", per)
	}
	return true, ""
}

func (w *world) waitSettled(within time.Duration) {
	w.t.Helper()
	deadline := time.Now().Add(within)
	for {
		ok, why := w.settled()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("not settled after %v: %s", within, why)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (w *world) lastProtocol(name string) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.protocols[name]
}

func (w *world) snapshotStarts() map[ID]int {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := map[ID]int{}
	for id, n := range w.starts {
		out[id] = n
	}
	return out
}

func (w *world) ownedBy(name string) []ID {
	w.mu.Lock()
	defer w.mu.Unlock()
	s := idSet{}
	for id, o := range w.running {
		if o == name {
			s.add(id)
		}
	}
	return s.sorted()
}

func TestMemberTwoConverge(t *testing.T) {
	w := newWorld(t)
	w1 := w.start("w1")
	w.waitSettled(10 * time.Second)
	w2 := w.start("w2")
	w.waitSettled(10 * time.Second)
	if u1, u2 := w1.m.LeaderURL(), w2.m.LeaderURL(); u1 != "http://w1" || u2 != u1 {
		t.Fatalf("leader URLs %q %q, want http://w1 (the first member leads)", u1, u2)
	}
	if !w1.m.IsLeader() || w2.m.IsLeader() {
		t.Fatal("w1 should lead")
	}
	for _, id := range w2.m.Owned() {
		if u, ok := w1.m.OwnerURL(id); !ok || u != "http://w2" {
			t.Fatalf("leader says %v is at %q", id, u)
		}
	}
}

func TestMemberThirdJoinMovesOnlyItsShare(t *testing.T) {
	w := newWorld(t)
	w.start("w1")
	w.start("w2")
	w.waitSettled(10 * time.Second)
	before := w.snapshotStarts()
	w.start("w3")
	w.waitSettled(10 * time.Second)
	after := w.snapshotStarts()
	var restarted []ID
	for id, n := range after {
		if n != before[id] {
			restarted = append(restarted, id)
		}
	}
	got := idSet{}
	for _, id := range restarted {
		got.add(id)
	}
	if want := w.ownedBy("w3"); !slicesEqual(got.sorted(), want) {
		t.Fatalf("restarted %v; only w3's share %v should move", got.sorted(), want)
	}
}

func TestMemberLeaveAndDie(t *testing.T) {
	w := newWorld(t)
	w1 := w.start("w1")
	w.waitSettled(10 * time.Second)
	w.start("w2")
	w.waitSettled(10 * time.Second)
	w.start("w3")
	w.waitSettled(10 * time.Second)
	if !w1.m.IsLeader() {
		// A new leader remembers no previous round, so a departed
		// worker's work is simply unassigned to it and moves at once (as
		// in Kafka); the holding back is the leader's memory.
		t.Fatal("w1, the first member, should still lead")
	}
	notMoved := func(lost []ID, since time.Time) {
		t.Helper()
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, id := range lost {
			if o, ok := w.running[id]; ok {
				t.Fatalf("%v reassigned to %s within %v of its worker going; the delay is %v", id, o, time.Since(since), testMaxDelay)
			}
		}
	}

	// A worker that leaves: its work is held back for the delay, then
	// spread over the others.
	lost := w.ownedBy("w3")
	gone := time.Now()
	w.close("w3")
	time.Sleep(testMaxDelay / 2)
	notMoved(lost, gone)
	w.waitSettled(testMaxDelay + 5*time.Second)

	// A worker that dies: found out after its session times out, its work
	// then held back for the delay as well.
	lost = w.ownedBy("w2")
	gone = time.Now()
	w.kill("w2")
	time.Sleep(1500*time.Millisecond + testMaxDelay/2)
	notMoved(lost, gone)
	w.waitSettled(1500*time.Millisecond + testMaxDelay + 8*time.Second)
	if got := len(w.ownedBy("w1")); got != 8 {
		t.Fatalf("w1 runs %d units, want all 8", got)
	}
}

func TestMemberRequestRejoinPicksUpConfig(t *testing.T) {
	w := newWorld(t)
	w1 := w.start("w1")
	w.waitSettled(10 * time.Second)
	w.mu.Lock()
	w.config = ConfigSnapshot{Offset: 9, Tasks: map[string]int{"a": 5}}
	w.mu.Unlock()
	w1.m.RequestRejoin()
	w.waitSettled(10 * time.Second)
}

func slicesEqual(a, b []ID) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// A worker cut off from the coordinator stops all its work once a session
// timeout has passed without an accepted heartbeat: by then the group has
// evicted it and may give the work to another worker.
func TestMemberSessionLostStopsWork(t *testing.T) {
	w := newWorld(t)
	if w.cluster == nil {
		t.Skip("needs to cut the worker off its broker")
	}
	w.start("w1")
	w.waitSettled(10 * time.Second)
	cut := time.Now()
	w.cluster.Close()
	deadline := time.Now().Add(10 * time.Second)
	for len(w.ownedBy("w1")) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("w1 still runs %v 10s after losing the coordinator", w.ownedBy("w1"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if d := time.Since(cut); d < 1500*time.Millisecond {
		t.Fatalf("work stopped after %v, before the session timeout", d)
	}
}

// Tools see a connect group as Kafka shows one: protocol type "connect",
// protocol "compatible", each member's metadata and assignment in the
// connect encoding.
func TestMemberGroupDescribed(t *testing.T) {
	w := newWorld(t)
	w.start("w1")
	w.start("w2")
	w.waitSettled(10 * time.Second)
	cl, err := kgo.NewClient(kgo.SeedBrokers(w.addrs...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req := kmsg.NewPtrDescribeGroupsRequest()
	req.Groups = []string{w.group}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	g := resp.Groups[0]
	if g.ErrorCode != 0 || g.ProtocolType != ProtocolType || g.Protocol != ProtocolCompatible || g.State != "Stable" || len(g.Members) != 2 {
		t.Fatalf("described as %+v", g)
	}
	urls, leaderURLs := map[string]bool{}, map[string]bool{}
	for _, m := range g.Members {
		md, err := DecodeMetadata(m.ProtocolMetadata)
		if err != nil {
			t.Fatal(err)
		}
		a, err := DecodeAssignment(m.MemberAssignment)
		if err != nil {
			t.Fatal(err)
		}
		leaderURLs[a.LeaderURL] = true
		if md.Version != V1 || md.ConfigOffset != 4 || a.Version != V1 || a.Error != NoError {
			t.Fatalf("member %s: metadata %+v assignment %+v", m.MemberID, md, a)
		}
		urls[md.URL] = true
	}
	if !urls["http://w1"] || !urls["http://w2"] || len(leaderURLs) != 1 {
		t.Fatalf("member URLs %v, leader URLs %v", urls, leaderURLs)
	}
}

// The coordinator picks the first protocol every member supports: a group
// of sessioned workers runs sessioned (v2 bytes), and one worker without it
// brings the group down to compatible.
func TestMemberProtocolChoice(t *testing.T) {
	w := newWorld(t)
	w.sessioned = map[string]bool{"w1": true, "w2": true}
	w.start("w1")
	w.waitSettled(10 * time.Second)
	w.start("w2")
	w.waitSettled(10 * time.Second)
	if p := w.lastProtocol("w2"); p != ProtocolSessioned {
		t.Fatalf("two sessioned workers run %q", p)
	}
	w.start("w3")
	w.waitSettled(10 * time.Second)
	for _, name := range []string{"w1", "w2", "w3"} {
		if p := w.lastProtocol(name); p != ProtocolCompatible {
			t.Fatalf("%s runs %q with a compatible-only worker in the group", name, p)
		}
	}
}

// A worker slow to stop its revoked work (longer than a session timeout)
// keeps its place in the group: the member heartbeats while the callback
// runs, as Kafka's heartbeat thread does.
func TestMemberSlowCallbackKeepsSession(t *testing.T) {
	w := newWorld(t)
	w.slow = map[string]time.Duration{"w1": 4 * time.Second}
	w.start("w1")
	w.waitSettled(10 * time.Second)
	time.Sleep(4*time.Second + time.Second)
	w.mu.Lock()
	gens := w.gens["w1"]
	w.mu.Unlock()
	if len(gens) != 1 {
		t.Fatalf("w1 went through generations %v; a slow callback cost it its membership", gens)
	}
}

// A leader whose config is behind a member's cannot assign: everyone gets
// ConfigMismatch, the leader reads the config topic to the end, and the
// group converges on the rejoin that follows.
func TestMemberConfigMismatch(t *testing.T) {
	w := newWorld(t)
	w.start("w1")
	w.waitSettled(10 * time.Second)
	// A connector config lands at offset 5; w2 has read it, the leader w1
	// only up to 3.
	w.mu.Lock()
	w.behind = map[string]int64{"w1": 3}
	w.config.Offset = 5
	w.mu.Unlock()
	w.start("w2")
	w.waitSettled(10 * time.Second)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.mismatch["w1"] == 0 || w.mismatch["w2"] == 0 {
		t.Fatalf("ConfigMismatch events %v; both members should have had one", w.mismatch)
	}
}
