package itest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Distributed mode with several worker processes: incremental cooperative
// rebalancing (a joining worker takes only the tasks it must, the others
// keep running), failover after a kill -9, and followers forwarding
// writes to the leader.

const stringConverter = "org.apache.kafka.connect.storage.StringConverter"

// connectStatus is GET /connectors/{name}/status.
type connectStatus struct {
	Name      string `json:"name"`
	Connector struct {
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
	} `json:"connector"`
	Tasks []struct {
		ID       int    `json:"id"`
		State    string `json:"state"`
		WorkerID string `json:"worker_id"`
		Trace    string `json:"trace"`
	} `json:"tasks"`
	Type string `json:"type"`
}

func (w *workerProc) status(name string) connectStatus {
	var st connectStatus
	w.call("GET", "/connectors/"+name+"/status", nil, &st)
	return st
}

// workerID is the worker_id a worker reports in statuses: host:port of its
// REST listener.
func (w *workerProc) workerID() string { return strings.TrimPrefix(w.url, "http://") }

// taskPlacement maps "connector-task" to the worker_id running it, for the
// given connectors, or returns nil while any task is not RUNNING.
func taskPlacement(w *workerProc, connectors ...string) map[string]string {
	out := map[string]string{}
	for _, c := range connectors {
		st := w.status(c)
		if len(st.Tasks) == 0 {
			return nil
		}
		for _, tk := range st.Tasks {
			if tk.State != "RUNNING" {
				return nil
			}
			out[fmt.Sprintf("%s-%d", c, tk.ID)] = tk.WorkerID
		}
	}
	return out
}

// statusRecord is one record of the connect-status topic.
type statusRecord struct {
	Key        string
	State      string `json:"state"`
	Trace      string `json:"trace"`
	WorkerID   string `json:"worker_id"`
	Generation int    `json:"generation"`
}

// statusRecords reads the connect-status topic from the start: every state
// a worker ever reported. A task reports RUNNING each time it starts, so
// the topic is where a user sees restarts, as with Kafka Connect.
func statusRecords(t *testing.T, addr string) []statusRecord {
	t.Helper()
	var out []statusRecord
	for _, r := range consumeAll(t, addr, "connect-status") {
		if r.Value == nil {
			continue
		}
		var s statusRecord
		if err := json.Unmarshal(r.Value, &s); err != nil {
			continue // topic statuses have another shape
		}
		s.Key = string(r.Key)
		out = append(out, s)
	}
	return out
}

// taskStarts counts the RUNNING statuses each task reported, by
// "connector-task".
func taskStarts(recs []statusRecord) map[string]int {
	out := map[string]int{}
	for _, r := range recs {
		if id, ok := strings.CutPrefix(r.Key, "status-task-"); ok && r.State == "RUNNING" {
			out[id]++
		}
	}
	return out
}

// sinkMembers lists the member ids of a sink connector's consumer group,
// connect-<name>: each sink task is one member, and a restarted task
// joins as a new one.
func sinkMembers(t *testing.T, addr, connector string) []string {
	t.Helper()
	described, err := admin(t, addr).DescribeGroups(testCtx(t, 15*time.Second), "connect-"+connector)
	if err != nil {
		t.Fatalf("describing group connect-%s: %v", connector, err)
	}
	var out []string
	for _, g := range described {
		for _, m := range g.Members {
			out = append(out, m.MemberID)
		}
	}
	sort.Strings(out)
	return out
}

// feeder produces "kgo-i" to every partition of a topic and appends
// "line-i" to a file, a few a second, until stopped; it then says how
// many of each it wrote.
type feeder struct {
	stop          chan struct{}
	done          chan struct{}
	once          sync.Once
	mu            sync.Mutex
	produced, app int
}

func startFeeder(t *testing.T, cl *kgo.Client, topic string, partitions int32, file string, fromProduced, fromLine int) *feeder {
	f := &feeder{stop: make(chan struct{}), done: make(chan struct{}), produced: fromProduced, app: fromLine}
	t.Cleanup(func() { f.finish() })
	go func() {
		defer close(f.done)
		out, err := os.OpenFile(file, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			t.Error(err)
			return
		}
		defer out.Close()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-f.stop:
				return
			case <-tick.C:
			}
			f.mu.Lock()
			i, j := f.produced, f.app
			f.mu.Unlock()
			var recs []*kgo.Record
			for k := i; k < i+4; k++ {
				recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(k) % partitions, Value: []byte(fmt.Sprintf("kgo-%d", k))})
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err := cl.ProduceSync(ctx, recs...).FirstErr()
			cancel()
			if err != nil {
				t.Errorf("producing: %v", err)
				return
			}
			if _, err := fmt.Fprintf(out, "line-%d\nline-%d\n", j, j+1); err != nil {
				t.Error(err)
				return
			}
			f.mu.Lock()
			f.produced, f.app = i+4, j+2
			f.mu.Unlock()
		}
	}()
	return f
}

// finish stops the feeder and returns how many records it produced and
// lines it appended in all.
func (f *feeder) finish() (produced, appended int) {
	f.once.Do(func() { close(f.stop) })
	<-f.done
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.produced, f.app
}

// missingLines lists which of kgo-0..produced-1 and line-0..appended-1
// are not in the sink file (at most a few), and counts lines held more
// than once.
func missingLines(sink string, produced, appended int) (missing []string, dups int) {
	seen := map[string]int{}
	for _, l := range fileLines(sink) {
		seen[l]++
	}
	check := func(prefix string, n int) {
		for i := 0; i < n; i++ {
			l := fmt.Sprintf("%s-%d", prefix, i)
			switch c := seen[l]; {
			case c == 0 && len(missing) < 5:
				missing = append(missing, l)
			case c > 1:
				dups += c - 1
			}
		}
	}
	check("kgo", produced)
	check("line", appended)
	return missing, dups
}

// assignmentRE matches a worker's log line for a connect group assignment:
// the leader's member id, and the delay before the worker rejoins (lost
// work held back for scheduled.rebalance.max.delay.ms).
var assignmentRE = regexp.MustCompile(`msg="connect group assignment" .*\bleader=(\S+) .*\bdelay=(\S+)`)

func countByWorker(placement map[string]string) map[string]int {
	out := map[string]int{}
	for _, w := range placement {
		out[w]++
	}
	return out
}

// Two workers run a FileStreamSink with four tasks over a four-partition
// topic and a FileStreamSource feeding it; a third worker joins. The group
// converges to 2/2/1 tasks with the newcomer running some, and a task that
// kept its worker was not restarted: its worker_id is unchanged, it wrote
// no new RUNNING status to connect-status (each start writes one), and,
// for sink tasks, its consumer is still the same member of the group
// connect-sink. Then a worker running two tasks is killed with SIGKILL:
// its plugin processes die with it, its tasks run on the two survivors
// once scheduled.rebalance.max.delay.ms has passed, and every record
// produced and every line appended meanwhile reaches the sink file.
func TestConnectRebalanceMovesOnlyWhatItMust(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	const partitions = 4
	createTopic(t, b.Addr(), "rb", partitions, nil)
	dir := t.TempDir()
	src, sink := filepath.Join(dir, "in.txt"), filepath.Join(dir, "out.txt")
	// The sink tasks' consumers get the same short session as the
	// workers (Kafka's consumer.* override): with the consumer default of
	// 45 s the killed worker's consumers held their partitions for most
	// of the final wait, and a loaded CI machine ran past it.
	sets := []string{"session.timeout.ms=6000", "heartbeat.interval.ms=1000", "consumer.session.timeout.ms=6000"}
	plugins := []string{connectPlugins(t), connectPlugins(t), connectPlugins(t)}
	workers := []*workerProc{startWorker(t, b.Addr(), plugins[0], sets...), startWorker(t, b.Addr(), plugins[1], sets...)}
	for _, c := range []map[string]any{
		{"name": "sink", "config": map[string]string{"connector.class": "FileStreamSink", "tasks.max": "4", "file": sink, "topics": "rb",
			"key.converter": stringConverter, "value.converter": stringConverter}},
		{"name": "src", "config": map[string]string{"connector.class": "FileStreamSource", "file": src, "topic": "rb",
			"key.converter": stringConverter, "value.converter": stringConverter}},
	} {
		var info map[string]any
		if code := workers[1].call("POST", "/connectors", c, &info); code != 201 {
			t.Fatalf("POST /connectors %v: %d %v", c["name"], code, info)
		}
	}
	cl := newClient(t, b.Addr())
	feed := startFeeder(t, cl, "rb", partitions, src, 0, 0)
	var before map[string]string
	waitFor(t, 60*time.Second, "five tasks RUNNING on two workers", func() bool {
		before = taskPlacement(workers[0], "sink", "src")
		return len(before) == 5 && len(countByWorker(before)) == 2
	})
	waitFor(t, 30*time.Second, "four members in group connect-sink", func() bool { return len(sinkMembers(t, b.Addr(), "sink")) == 4 })
	waitFor(t, 30*time.Second, "records in the sink file", func() bool { return len(fileLines(sink)) > 20 })
	startsBefore := taskStarts(statusRecords(t, b.Addr()))
	membersBefore := sinkMembers(t, b.Addr(), "sink")
	// A restart after these snapshots but before the join would be
	// blamed on the join: check that the snapshot was stable.
	if p := taskPlacement(workers[0], "sink", "src"); !reflect.DeepEqual(p, before) {
		t.Fatalf("tasks moved without a rebalance: %v, then %v", before, p)
	}
	t.Logf("two workers: %v; starts %v", before, startsBefore)

	joined := time.Now()
	workers = append(workers, startWorker(t, b.Addr(), plugins[2], sets...))
	newcomer := workers[2].workerID()
	var after map[string]string
	waitFor(t, 60*time.Second, "tasks spread over three workers", func() bool {
		after = taskPlacement(workers[2], "sink", "src")
		n := countByWorker(after)
		if len(after) != 5 || len(n) != 3 {
			return false
		}
		for _, c := range n {
			if c < 1 || c > 2 {
				return false
			}
		}
		return true
	})
	// Let a second revocation round show up, were there one.
	time.Sleep(3 * time.Second)
	if p := taskPlacement(workers[2], "sink", "src"); !reflect.DeepEqual(p, after) {
		t.Fatalf("the placement did not settle: %v, then %v", after, p)
	}
	t.Logf("three workers after %v: %v", time.Since(joined).Round(time.Millisecond), after)
	startsAfter := taskStarts(statusRecords(t, b.Addr()))
	membersAfter := sinkMembers(t, b.Addr(), "sink")
	stayed, stayedSinks := 0, 0
	for task, w := range after {
		switch {
		case w == before[task]:
			stayed++
			if startsAfter[task] != startsBefore[task] {
				t.Errorf("task %s stayed on %s but was restarted (RUNNING reported %d times, %d before the join)",
					task, w, startsAfter[task], startsBefore[task])
			}
			if strings.HasPrefix(task, "sink-") {
				stayedSinks++
			}
		case w == newcomer:
			if startsAfter[task] <= startsBefore[task] {
				t.Errorf("task %s moved to %s without reporting a start", task, w)
			}
		default:
			t.Errorf("task %s moved from %s to %s, not to the new worker %s", task, before[task], w, newcomer)
		}
	}
	if moved := len(after) - stayed; moved > 2 {
		t.Errorf("%d of 5 tasks moved when a third worker joined; two at most are needed for 2/2/1", moved)
	}
	kept := 0
	for _, m := range membersAfter {
		for _, o := range membersBefore {
			if m == o {
				kept++
			}
		}
	}
	if kept != stayedSinks || len(membersAfter) != 4 {
		t.Errorf("group connect-sink: %d of %d members kept their member id (before %v, after %v); %d sink tasks did not move",
			kept, len(membersAfter), membersBefore, membersAfter, stayedSinks)
	}

	// Kill -9 a worker running two tasks, the one with the source task
	// if it has two.
	victim, load := 0, countByWorker(after)
	for i, w := range workers {
		id, best := w.workerID(), workers[victim].workerID()
		if load[id] > load[best] || load[id] == load[best] && after["src-0"] == id {
			victim = i
		}
	}
	if len(pluginPids(plugins[victim])) == 0 {
		t.Fatalf("worker %d runs tasks but no plugin process", victim)
	}
	logAtKill := map[int]int{}
	for i, w := range workers {
		logAtKill[i] = len(w.Log())
	}
	killed := time.Now()
	workers[victim].kill9()
	waitFor(t, 5*time.Second, "the killed worker's plugin processes to die", func() bool { return len(pluginPids(plugins[victim])) == 0 })
	survivors := map[string]bool{}
	for i, w := range workers {
		if i != victim {
			survivors[w.workerID()] = true
		}
	}
	observer := workers[(victim+1)%3]
	var failover map[string]string
	waitFor(t, 60*time.Second, "every task RUNNING on the two survivors", func() bool {
		failover = taskPlacement(observer, "sink", "src")
		if len(failover) != 5 {
			return false
		}
		for _, w := range failover {
			if !survivors[w] {
				return false
			}
		}
		return true
	})
	t.Logf("failover after %v: %v", time.Since(killed).Round(time.Millisecond), failover)
	// A leader that survived held the lost tasks back before handing
	// them on: an assignment with a delay came first. (A new leader has
	// no memory of the lost work and hands it on at once, as Kafka's.)
	var leaders, delays []string
	for i, w := range workers {
		if i == victim {
			continue
		}
		for _, m := range assignmentRE.FindAllStringSubmatch(w.Log(), -1) {
			leaders = append(leaders, m[1])
		}
		for _, m := range assignmentRE.FindAllStringSubmatch(w.Log()[logAtKill[i]:], -1) {
			delays = append(delays, m[2])
		}
	}
	if len(leaders) > 0 && leaders[0] == leaders[len(leaders)-1] && !slices.ContainsFunc(delays, func(d string) bool { return d != "0s" }) {
		t.Errorf("the leader survived but told no worker to wait (scheduled.rebalance.max.delay.ms) before moving the lost tasks: delays %v", delays)
	}
	for i, p := range plugins {
		if i != victim && len(pluginPids(p)) == 0 {
			t.Errorf("surviving worker %d has no plugin process", i)
		}
	}
	time.Sleep(time.Second)
	produced, appended := feed.finish()
	var missing []string
	var dups int
	if !testkit.Poll(60*time.Second, func() bool {
		missing, dups = missingLines(sink, produced, appended)
		return len(missing) == 0
	}) {
		t.Fatalf("after 60s the sink lacks some of the %d produced records and %d appended lines, e.g. %v; connect-sink members %v; tasks %v",
			produced, appended, missing, sinkMembers(t, b.Addr(), "sink"), taskPlacement(observer, "sink", "src"))
	}
	t.Logf("%d records produced and %d lines appended, %d delivered more than once", produced, appended, dups)
	if len(pluginPids(plugins[victim])) != 0 {
		t.Errorf("a plugin process of the killed worker is running again")
	}
}

// twoWorkers starts a broker and two workers of one group, the second
// once the first is in the group (so the first leads).
func twoWorkers(t *testing.T) (*brokerProc, *workerProc, *workerProc) {
	t.Helper()
	b := startBroker(t, "std", t.TempDir())
	plugins := connectPlugins(t)
	w1 := startWorker(t, b.Addr(), plugins)
	waitFor(t, 30*time.Second, "the first worker in its group", func() bool {
		return strings.Contains(w1.Log(), `msg="connect group assignment"`)
	})
	return b, w1, startWorker(t, b.Addr(), plugins)
}

// A follower performs no write itself: POST /connectors and PUT
// .../pause sent to it reach the leader, which performs them, and the
// answer is the leader's. Every worker then shows the same connectors and
// statuses.
func TestConnectFollowerForwardsWrites(t *testing.T) {
	_, w1, w2 := twoWorkers(t)
	dir := t.TempDir()
	const forwarded = `msg="forwarding connect REST request to the leader"`
	create := func(w *workerProc, name string) {
		t.Helper()
		body := map[string]any{"name": name, "config": map[string]string{
			"connector.class": "FileStreamSource", "file": filepath.Join(dir, name+".txt"), "topic": name}}
		var info struct {
			Name   string            `json:"name"`
			Config map[string]string `json:"config"`
			Type   string            `json:"type"`
		}
		if code := w.call("POST", "/connectors", body, &info); code != 201 || info.Name != name || info.Type != "source" ||
			info.Config["name"] != name {
			t.Fatalf("POST /connectors %s: %d %+v", name, code, info)
		}
	}
	// The first worker to join leads; find out rather than assume.
	create(w2, "via-w2")
	leader, follower := w1, w2
	if !strings.Contains(w2.Log(), forwarded) {
		leader, follower = w2, w1
		create(w1, "via-w1")
		if !strings.Contains(w1.Log(), forwarded) {
			t.Fatalf("neither worker forwarded a POST /connectors to the leader")
		}
	}
	if strings.Contains(leader.Log(), forwarded) {
		t.Errorf("the leader forwarded a request")
	}
	name := "via-" + map[*workerProc]string{w1: "w1", w2: "w2"}[follower]
	n := strings.Count(follower.Log(), forwarded)
	if code := follower.call("PUT", "/connectors/"+name+"/pause", nil, nil); code != 202 {
		t.Fatalf("PUT /connectors/%s/pause on the follower: %d, want 202", name, code)
	}
	if strings.Count(follower.Log(), forwarded) <= n {
		t.Errorf("the follower did not forward PUT /connectors/%s/pause", name)
	}
	waitFor(t, 30*time.Second, "the connector PAUSED on both workers", func() bool {
		for _, w := range []*workerProc{w1, w2} {
			st := w.status(name)
			if st.Connector.State != "PAUSED" || len(st.Tasks) != 1 || st.Tasks[0].State != "PAUSED" {
				return false
			}
		}
		return true
	})
	waitFor(t, 30*time.Second, "both workers showing the same connectors and statuses", func() bool {
		var l1, l2 []string
		w1.call("GET", "/connectors", nil, &l1)
		w2.call("GET", "/connectors", nil, &l2)
		if len(l1) == 0 || !reflect.DeepEqual(l1, l2) {
			return false
		}
		for _, c := range l1 {
			if !reflect.DeepEqual(w1.status(c), w2.status(c)) {
				return false
			}
		}
		return true
	})
	if code := follower.call("DELETE", "/connectors/"+name, nil, nil); code != 204 {
		t.Fatalf("DELETE /connectors/%s on the follower: %d, want 204", name, code)
	}
	waitFor(t, 30*time.Second, "the deleted connector gone from both workers", func() bool {
		for _, w := range []*workerProc{w1, w2} {
			if w.callOnce("GET", "/connectors/"+name, nil, nil) != 404 {
				return false
			}
		}
		return true
	})
}

// POST /connectors/{c}/tasks/{t}/restart restarts a RUNNING task wherever
// it runs, whichever worker the request is sent to: Kafka's owner
// restarts it, a follower forwards to the leader, and the leader forwards
// to the owner. Seen as a new RUNNING status in connect-status.
func TestConnectTaskRestartOnAnyWorker(t *testing.T) {
	b, w1, w2 := twoWorkers(t)
	dir := t.TempDir()
	for _, name := range []string{"r1", "r2"} {
		body := map[string]any{"name": name, "config": map[string]string{
			"connector.class": "FileStreamSource", "file": filepath.Join(dir, name+".txt"), "topic": name}}
		if code := w1.call("POST", "/connectors", body, nil); code != 201 {
			t.Fatalf("POST /connectors %s: %d", name, code)
		}
	}
	waitFor(t, 60*time.Second, "one task RUNNING on each worker", func() bool {
		p := taskPlacement(w1, "r1", "r2")
		return len(p) == 2 && len(countByWorker(p)) == 2
	})
	placement := taskPlacement(w1, "r1", "r2")
	for _, task := range []string{"r1-0", "r2-0"} {
		conn := strings.TrimSuffix(task, "-0")
		for _, w := range []*workerProc{w1, w2} {
			starts := taskStarts(statusRecords(t, b.Addr()))[task]
			if code := w.call("POST", "/connectors/"+conn+"/tasks/0/restart", nil, nil); code != 204 {
				t.Fatalf("restart of %s (on %s) sent to %s: %d, want 204", task, placement[task], w.workerID(), code)
			}
			deadline := time.Now().Add(15 * time.Second)
			for taskStarts(statusRecords(t, b.Addr()))[task] == starts {
				if time.Now().After(deadline) {
					t.Fatalf("restart of RUNNING task %s (on %s) sent to %s answered 204 but the task did not restart",
						task, placement[task], w.workerID())
				}
				time.Sleep(200 * time.Millisecond)
			}
		}
	}
}
