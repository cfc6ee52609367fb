package itest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
)

// Consumer groups, end to end: franz-go members (classic protocol with each
// client-side balancer, and KIP-848 with the broker's assignors) split a
// topic's partitions, rebalance when members come, go or die, keep their
// partitions across a static restart, and resume from committed offsets
// after the broker restarts. The group tests are engine-independent, so all
// but TestGroupSmoke run on the std engine only.

// groupBrokerSets are the broker settings of the group tests: no initial
// rebalance delay, session timeouts down to 1s, and KIP-848 members told to
// heartbeat every 300ms. overrides replace or add settings (key=value).
func groupBrokerSets(overrides ...string) []string {
	set := map[string]string{
		"group.initial.rebalance.delay.ms":     "0",
		"group.min.session.timeout.ms":         "1000",
		"group.consumer.heartbeat.interval.ms": "300",
		"group.consumer.session.timeout.ms":    "10000",
	}
	for _, o := range overrides {
		k, v, _ := strings.Cut(o, "=")
		set[k] = v
	}
	keys := make([]string, 0, len(set))
	for k := range set {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, k+"="+set[k])
	}
	return out
}

// groupConf is how a test consumer joins its group. It is JSON because a
// child process (groups_child_test.go) gets it in its environment.
type groupConf struct {
	Group string `json:"group"`
	Topic string `json:"topic"`
	// Balancer is range, roundrobin, sticky or cooperative-sticky; ""
	// is kgo's default, cooperative-sticky. With KIP848 kgo maps range
	// to the broker's "range" assignor and the sticky ones to "uniform".
	Balancer   string `json:"balancer"`
	KIP848     bool   `json:"kip848"`
	InstanceID string `json:"instance_id,omitempty"`
	// Session and Heartbeat are the classic session timeout and heartbeat
	// interval (KIP-848 members get both from the broker); 0 means 10s
	// and 300ms.
	Session   time.Duration `json:"session"`
	Heartbeat time.Duration `json:"heartbeat"`
	// BlockOnPoll is kgo.BlockRebalanceOnPoll: a rebalance waits until
	// the member processed what it polled.
	BlockOnPoll bool `json:"block_on_poll,omitempty"`
}

func (c groupConf) opts() []kgo.Opt {
	session, hb := c.Session, c.Heartbeat
	if session == 0 {
		session = 10 * time.Second
	}
	if hb == 0 {
		hb = 300 * time.Millisecond
	}
	opts := []kgo.Opt{
		kgo.ConsumerGroup(c.Group),
		kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.SessionTimeout(session),
		kgo.HeartbeatInterval(hb),
		kgo.RebalanceTimeout(30 * time.Second),
		kgo.AutoCommitInterval(time.Second),
	}
	switch c.Balancer {
	case "range":
		opts = append(opts, kgo.Balancers(kgo.RangeBalancer()))
	case "roundrobin":
		opts = append(opts, kgo.Balancers(kgo.RoundRobinBalancer()))
	case "sticky":
		opts = append(opts, kgo.Balancers(kgo.StickyBalancer()))
	case "cooperative-sticky":
		opts = append(opts, kgo.Balancers(kgo.CooperativeStickyBalancer()))
	}
	if c.KIP848 {
		opts = append(opts, kgo.ServerSideBalancer())
	}
	if c.InstanceID != "" {
		opts = append(opts, kgo.InstanceID(c.InstanceID))
	}
	if c.BlockOnPoll {
		opts = append(opts, kgo.BlockRebalanceOnPoll())
	}
	return opts
}

// groupMember is a group member whose assignment the test can see: an
// in-process member or a child process.
type groupMember interface {
	Name() string
	MemberID() string
	Owned() []int32 // partitions of the group's topic, ascending
}

// groupEvent is one assignment change a member's callbacks saw.
type groupEvent struct {
	at    time.Time
	kind  string // assigned, revoked or lost
	parts []int32
}

func (e groupEvent) String() string {
	return fmt.Sprintf("%s %s [%s]", e.at.Format("15:04:05.000"), e.kind, joinParts(e.parts))
}

// member is an in-process group member: a kgo client with a poll loop,
// whose OnPartitionsAssigned/Revoked/Lost callbacks track what it owns. Like
// kgo's default revoke, its revoke callback commits what it consumed.
type member struct {
	t      *testing.T
	name   string
	conf   groupConf
	cl     *kgo.Client
	ledger *ledger // nil, or where every consumed record is accounted

	mu       sync.Mutex
	owned    map[int32]bool
	events   []groupEvent
	errs     []error
	consumed int

	stopping  atomic.Bool
	loopDone  chan struct{}
	closeOnce sync.Once
}

func startMember(t *testing.T, addr, name string, conf groupConf, led *ledger) *member {
	t.Helper()
	m := &member{t: t, name: name, conf: conf, ledger: led, owned: map[int32]bool{}, loopDone: make(chan struct{})}
	opts := append(baseClientOpts(addr), conf.opts()...)
	opts = append(opts,
		kgo.OnPartitionsAssigned(m.onChange("assigned")),
		kgo.OnPartitionsRevoked(m.onChange("revoked")),
		kgo.OnPartitionsLost(m.onChange("lost")),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		t.Fatalf("member %s: %v", name, err)
	}
	m.cl = cl
	go m.loop()
	t.Cleanup(m.Close)
	return m
}

func (m *member) onChange(kind string) func(context.Context, *kgo.Client, map[string][]int32) {
	return func(ctx context.Context, cl *kgo.Client, ps map[string][]int32) {
		parts := ps[m.conf.Topic]
		if kind == "revoked" {
			// What kgo's default revoke does, which this callback
			// replaces: commit everything polled (and, the poll loop
			// being synchronous, processed) before the partitions go.
			if err := cl.CommitUncommittedOffsets(ctx); err != nil {
				m.noteErr(fmt.Errorf("commit on revoke of [%s]: %w", joinParts(parts), err))
			}
		}
		m.mu.Lock()
		defer m.mu.Unlock()
		for _, p := range parts {
			if kind == "assigned" {
				m.owned[p] = true
			} else {
				delete(m.owned, p)
			}
		}
		if len(parts) > 0 {
			m.events = append(m.events, groupEvent{time.Now(), kind, slices.Clone(parts)})
		}
	}
}

func (m *member) loop() {
	defer close(m.loopDone)
	for !m.stopping.Load() {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		fs := m.cl.PollRecords(ctx, 1000)
		cancel()
		if fs.IsClientClosed() {
			return
		}
		fs.EachError(func(topic string, p int32, err error) {
			if !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
				m.noteErr(fmt.Errorf("fetch %s[%d]: %w", topic, p, err))
			}
		})
		recs := fs.Records()
		if m.ledger != nil {
			m.ledger.consume(m.name, recs)
		}
		m.mu.Lock()
		m.consumed += len(recs)
		m.mu.Unlock()
		m.cl.AllowRebalance()
	}
}

// Close stops polling and closes the client, which leaves the group (a
// static member does not leave: classic members just go, KIP-848 members
// leave with epoch -2 and keep their partitions reserved).
func (m *member) Close() {
	m.closeOnce.Do(func() {
		m.stopping.Store(true)
		<-m.loopDone
		m.cl.CloseAllowingRebalance()
	})
}

func (m *member) noteErr(err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.errs = append(m.errs, err)
}

func (m *member) Errs() []error {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.errs)
}

func (m *member) Name() string { return m.name }

func (m *member) MemberID() string {
	id, _ := m.cl.GroupMetadata()
	return id
}

func (m *member) Generation() int32 {
	_, gen := m.cl.GroupMetadata()
	return gen
}

func (m *member) Owned() []int32 {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]int32, 0, len(m.owned))
	for p := range m.owned {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// EventCount is how many assignment changes the member saw so far.
func (m *member) EventCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.events)
}

// EventsSince returns the changes after the first n.
func (m *member) EventsSince(n int) []groupEvent {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.events[min(n, len(m.events)):])
}

func (m *member) Consumed() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.consumed
}

// --- what the broker says ---

// groupView is a group as DescribeGroups (classic) or ConsumerGroupDescribe
// (KIP-848) reports it, limited to one topic.
type groupView struct {
	state    string
	protocol string             // classic: the chosen assignor; KIP-848: the assignor name
	assigned map[string][]int32 // member id → partitions of the topic, ascending
	target   map[string][]int32 // KIP-848: member id → target assignment
	epochs   map[string]int32   // KIP-848: member id → member epoch
	meta     map[string]string  // classic: member id → its JoinGroup metadata, decoded
}

func (v groupView) String() string {
	ids := make([]string, 0, len(v.assigned))
	for id := range v.assigned {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	var sb strings.Builder
	fmt.Fprintf(&sb, "state=%s protocol=%s members={", v.state, v.protocol)
	for i, id := range ids {
		if i > 0 {
			sb.WriteString(" ")
		}
		fmt.Fprintf(&sb, "%s:[%s]", id, joinParts(v.assigned[id]))
		if t, ok := v.target[id]; ok {
			fmt.Fprintf(&sb, "/target[%s]", joinParts(t))
		}
	}
	sb.WriteString("}")
	return sb.String()
}

func describeGroup(adm *kadm.Client, group, topic string, kip848 bool) (groupView, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	v := groupView{assigned: map[string][]int32{}, target: map[string][]int32{}, epochs: map[string]int32{}, meta: map[string]string{}}
	parts := func(s kadm.TopicsSet) []int32 {
		var out []int32
		for p := range s[topic] {
			out = append(out, p)
		}
		slices.Sort(out)
		return out
	}
	if kip848 {
		ds, err := adm.DescribeConsumerGroups(ctx, group)
		if err != nil {
			return v, err
		}
		g, ok := ds[group]
		if !ok {
			return v, fmt.Errorf("ConsumerGroupDescribe: no answer for group %s", group)
		}
		if g.Err != nil {
			return v, fmt.Errorf("ConsumerGroupDescribe %s: %w", group, g.Err)
		}
		v.state, v.protocol = g.State, g.AssignorName
		for _, m := range g.Members {
			v.assigned[m.MemberID] = parts(m.Assignment)
			v.target[m.MemberID] = parts(m.TargetAssignment)
			v.epochs[m.MemberID] = m.MemberEpoch
		}
		return v, nil
	}
	ds, err := adm.DescribeGroups(ctx, group)
	if err != nil {
		return v, err
	}
	g, ok := ds[group]
	if !ok {
		return v, fmt.Errorf("DescribeGroups: no answer for group %s", group)
	}
	if g.Err != nil {
		return v, fmt.Errorf("DescribeGroups %s: %w", group, g.Err)
	}
	v.state, v.protocol = g.State, g.Protocol
	for _, m := range g.Members {
		var ps []int32
		if a, ok := m.Assigned.AsConsumer(); ok {
			for _, t := range a.Topics {
				if t.Topic == topic {
					ps = append(ps, t.Partitions...)
				}
			}
		}
		slices.Sort(ps)
		v.assigned[m.MemberID] = ps
		if j, ok := m.Join.AsConsumer(); ok {
			v.meta[m.MemberID] = fmt.Sprintf("{version %d, topics %v, generation %d, owned %v}", j.Version, j.Topics, j.Generation, j.OwnedPartitions)
		}
	}
	return v, nil
}

// checkSplit returns "" when the members own every partition 0..n-1 exactly
// once and evenly (counts differ by at most one, nobody idle while another
// has two), and the broker agrees: the group is Stable with exactly these
// members, each assigned what it owns (KIP-848: as its target too).
// Otherwise it says what is off.
func checkSplit(adm *kadm.Client, conf groupConf, nparts int, ms []groupMember) string {
	count := map[int32]int{}
	owned := map[string][]int32{}
	lo, hi := nparts, 0
	var desc []string
	for _, m := range ms {
		id, ps := m.MemberID(), m.Owned()
		desc = append(desc, fmt.Sprintf("%s(%s):[%s]", m.Name(), id, joinParts(ps)))
		if id == "" {
			return m.Name() + " has no member id yet"
		}
		owned[id] = ps
		for _, p := range ps {
			count[p]++
		}
		lo, hi = min(lo, len(ps)), max(hi, len(ps))
	}
	mine := strings.Join(desc, " ")
	for p := range int32(nparts) {
		if count[p] != 1 {
			return fmt.Sprintf("partition %d owned by %d members: %s", p, count[p], mine)
		}
	}
	if len(count) != nparts {
		return fmt.Sprintf("members own partitions the topic does not have: %s", mine)
	}
	if hi-lo > 1 {
		return fmt.Sprintf("uneven split: %s", mine)
	}
	v, err := describeGroup(adm, conf.Group, conf.Topic, conf.KIP848)
	if err != nil {
		return fmt.Sprintf("describe: %v (members: %s)", err, mine)
	}
	if v.state != "Stable" {
		return fmt.Sprintf("broker: %v; members: %s", v, mine)
	}
	if len(v.assigned) != len(ms) {
		return fmt.Sprintf("broker reports %d members, want %d: %v; members: %s", len(v.assigned), len(ms), v, mine)
	}
	for id, ps := range owned {
		got, ok := v.assigned[id]
		if !ok || !slices.Equal(got, ps) {
			return fmt.Sprintf("broker's assignment differs from the members': %v; members: %s", v, mine)
		}
		if conf.KIP848 && !slices.Equal(v.target[id], ps) {
			return fmt.Sprintf("broker's target assignment differs from the members': %v; members: %s", v, mine)
		}
	}
	return ""
}

// waitSplit waits (up to 45s) for checkSplit to hold and returns each
// member's partitions by name.
func waitSplit(t *testing.T, adm *kadm.Client, conf groupConf, nparts int, ms ...groupMember) map[string][]int32 {
	t.Helper()
	var why string
	if !testkit.Poll(45*time.Second, func() bool {
		why = checkSplit(adm, conf, nparts, ms)
		return why == ""
	}) {
		var names []string
		for _, m := range ms {
			names = append(names, m.Name())
			if im, ok := m.(*member); ok {
				t.Logf("%s events: %v; errors: %v", m.Name(), im.EventsSince(0), im.Errs())
			}
		}
		t.Fatalf("group %s: %d partitions never split evenly among %v: %s", conf.Group, nparts, names, why)
	}
	out := map[string][]int32{}
	for _, m := range ms {
		out[m.Name()] = m.Owned()
	}
	return out
}

// --- records ---

// ledger accounts for every record consumed across the members of a group.
type ledger struct {
	mu    sync.Mutex
	seen  map[int32]map[int64]int // partition → offset → times consumed
	keys  map[int32]map[int64]string
	by    map[int32]map[int64]string // who consumed it first
	dups  []string
	total int
}

func newLedger() *ledger {
	return &ledger{seen: map[int32]map[int64]int{}, keys: map[int32]map[int64]string{}, by: map[int32]map[int64]string{}}
}

func (l *ledger) consume(who string, recs []*kgo.Record) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, r := range recs {
		if l.seen[r.Partition] == nil {
			l.seen[r.Partition] = map[int64]int{}
			l.keys[r.Partition] = map[int64]string{}
			l.by[r.Partition] = map[int64]string{}
		}
		l.seen[r.Partition][r.Offset]++
		if n := l.seen[r.Partition][r.Offset]; n > 1 {
			l.dups = append(l.dups, fmt.Sprintf("partition %d offset %d consumed %d times (by %s, first by %s)",
				r.Partition, r.Offset, n, who, l.by[r.Partition][r.Offset]))
		} else {
			l.keys[r.Partition][r.Offset] = string(r.Key)
			l.by[r.Partition][r.Offset] = who
		}
		l.total++
	}
}

// Total is how many records were consumed, duplicates included.
func (l *ledger) Total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.total
}

// check asserts every record of want (partition → keys by offset) was
// consumed exactly once, and nothing else.
func (l *ledger) check(t *testing.T, want map[int32][]string) {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, d := range l.dups {
		if i == 10 {
			t.Errorf("... %d duplicates in all", len(l.dups))
			break
		}
		t.Errorf("duplicate: %s", d)
	}
	wantN := 0
	for p, keys := range want {
		wantN += len(keys)
		var missing []int64
		for off, k := range keys {
			switch got := l.keys[p][int64(off)]; {
			case l.seen[p][int64(off)] == 0:
				missing = append(missing, int64(off))
			case got != k:
				t.Errorf("partition %d offset %d: consumed key %q, produced %q", p, off, got, k)
			}
		}
		if len(missing) > 0 {
			t.Errorf("partition %d: %d of %d records never consumed, first offsets %v", p, len(missing), len(keys), missing[:min(len(missing), 10)])
		}
		for off := range l.seen[p] {
			if off >= int64(len(keys)) {
				t.Errorf("partition %d: consumed offset %d, only %d records were produced", p, off, len(keys))
			}
		}
	}
	for p := range l.seen {
		if _, ok := want[p]; !ok {
			t.Errorf("consumed from partition %d, which nothing was produced to", p)
		}
	}
	if l.total != wantN {
		t.Errorf("consumed %d records in all, produced %d", l.total, wantN)
	}
}

// offsetsRange returns the lowest and highest consumed offset of a
// partition (ok false when none).
func (l *ledger) offsetsRange(p int32) (lo, hi int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for off := range l.seen[p] {
		if !ok || off < lo {
			lo = off
		}
		if !ok || off > hi {
			hi = off
		}
		ok = true
	}
	return lo, hi, ok
}

// produceKeyed produces n records with keys prefix-<i>, record i to
// partition i%nparts, and returns partition → keys by offset ("" at the
// offsets of records produced before).
func produceKeyed(t *testing.T, addr, topic, prefix string, n, nparts int) map[int32][]string {
	t.Helper()
	cl := newClient(t, addr)
	defer cl.Close()
	var recs []*kgo.Record
	for i := range n {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % nparts),
			Key: []byte(prefix + "-" + strconv.Itoa(i)), Value: []byte("v")})
	}
	ctx := testCtx(t, 30*time.Second)
	res := cl.ProduceSync(ctx, recs...)
	if err := res.FirstErr(); err != nil {
		t.Fatalf("produce: %v", err)
	}
	out := map[int32][]string{}
	for _, r := range res {
		ks := out[r.Record.Partition]
		for int64(len(ks)) <= r.Record.Offset {
			ks = append(ks, "")
		}
		ks[r.Record.Offset] = string(r.Record.Key)
		out[r.Record.Partition] = ks
	}
	return out
}

// fetchCommitted returns a group's committed offsets for a topic, failing
// on any error.
func fetchCommitted(t *testing.T, adm *kadm.Client, group, topic string) map[int32]kadm.Offset {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	resp, err := adm.FetchOffsets(ctx, group)
	if err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	if err := resp.Error(); err != nil {
		t.Fatalf("FetchOffsets %s: %v", group, err)
	}
	out := map[int32]kadm.Offset{}
	for p, o := range resp[topic] {
		out[p] = o.Offset
	}
	return out
}

func committedString(m map[int32]kadm.Offset) string {
	ps := make([]int32, 0, len(m))
	for p := range m {
		ps = append(ps, p)
	}
	slices.Sort(ps)
	var sb strings.Builder
	for _, p := range ps {
		o := m[p]
		fmt.Fprintf(&sb, "p%d=%d(epoch %d, meta %q) ", p, o.At, o.LeaderEpoch, o.Metadata)
	}
	return sb.String()
}

// sameCommitted compares committed offsets by partition, offset, leader
// epoch and metadata.
func sameCommitted(a, b map[int32]kadm.Offset) bool {
	if len(a) != len(b) {
		return false
	}
	for p, o := range a {
		q, ok := b[p]
		if !ok || o.At != q.At || o.LeaderEpoch != q.LeaderEpoch || o.Metadata != q.Metadata {
			return false
		}
	}
	return true
}

// listGroups returns ListGroups' answer, group → state.
func listGroups(t *testing.T, adm *kadm.Client) kadm.ListedGroups {
	t.Helper()
	ctx := testCtx(t, 15*time.Second)
	ls, err := adm.ListGroups(ctx)
	if err != nil {
		t.Fatalf("ListGroups: %v", err)
	}
	return ls
}

// --- tests ---

// TestGroupSmoke: on both engines, two members of a classic group and one
// of a KIP-848 group consume a topic exactly once between them, commit on
// leaving, and ListGroups shows both groups empty afterwards.
func TestGroupSmoke(t *testing.T) { engines.Run(t, testGroupSmoke) }

func testGroupSmoke(t *testing.T, engine string) {
	b := startBroker(t, engine, t.TempDir(), groupBrokerSets()...)
	adm := admin(t, b.Addr())
	const topic, nparts, n = "smoke", 4, 200
	createTopic(t, b.Addr(), topic, nparts, nil)

	classic := groupConf{Group: "smoke-classic", Topic: topic, Balancer: "range"}
	kip848 := groupConf{Group: "smoke-848", Topic: topic, KIP848: true}
	ledC, led8 := newLedger(), newLedger()
	c1 := startMember(t, b.Addr(), "c1", classic, ledC)
	c2 := startMember(t, b.Addr(), "c2", classic, ledC)
	k1 := startMember(t, b.Addr(), "k1", kip848, led8)
	waitSplit(t, adm, classic, nparts, c1, c2)
	waitSplit(t, adm, kip848, nparts, k1)

	want := produceKeyed(t, b.Addr(), topic, "smoke", n, nparts)
	for _, l := range []*ledger{ledC, led8} {
		if !testkit.Poll(30*time.Second, func() bool { return l.Total() >= n }) {
			t.Fatalf("consumed %d of %d records", l.Total(), n)
		}
	}
	time.Sleep(300 * time.Millisecond) // room for a stray duplicate to show
	ledC.check(t, want)
	led8.check(t, want)

	c1.Close()
	c2.Close()
	k1.Close()
	ends := endOffsets(t, b.Addr(), topic)
	for _, g := range []string{classic.Group, kip848.Group} {
		got := fetchCommitted(t, adm, g, topic)
		for p, end := range ends {
			if got[p].At != end {
				t.Errorf("group %s: committed %s, want every partition at its end %v", g, committedString(got), ends)
				break
			}
		}
	}
	ls := listGroups(t, adm)
	for _, g := range []string{classic.Group, kip848.Group} {
		if lg, ok := ls[g]; !ok || lg.State != "Empty" {
			t.Errorf("ListGroups: group %s present=%v state=%q, want Empty", g, ok, lg.State)
		}
	}
	for _, m := range []*member{c1, c2, k1} {
		if errs := m.Errs(); len(errs) > 0 {
			t.Errorf("%s: %v", m.Name(), errs)
		}
	}
}

// TestGroupClassicBalancers: with each of kgo's classic balancers, members
// split a 6-partition topic evenly (every partition with exactly one member,
// as DescribeGroups confirms), a third member joining takes partitions from
// the other two, and a member leaving hands its partitions to the rest.
func TestGroupClassicBalancers(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	for _, bal := range []string{"range", "roundrobin", "cooperative-sticky"} {
		t.Run(bal, func(t *testing.T) {
			conf := groupConf{Group: "classic-" + bal, Topic: "classic-" + bal, Balancer: bal}
			testSplitJoinLeave(t, b.Addr(), conf, bal)
		})
	}
}

// TestGroupConsumerProtocol: the same with KIP-848 (kgo.ServerSideBalancer):
// the broker's uniform and range assignors split the partitions, move them
// to a joining member and from a leaving one, and ConsumerGroupDescribe
// reports the members, their assignments and the assignor.
func TestGroupConsumerProtocol(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	for _, tc := range []struct{ balancer, assignor string }{
		{"cooperative-sticky", "uniform"},
		{"range", "range"},
	} {
		t.Run(tc.assignor, func(t *testing.T) {
			conf := groupConf{Group: "kip848-" + tc.assignor, Topic: "kip848-" + tc.assignor, Balancer: tc.balancer, KIP848: true}
			testSplitJoinLeave(t, b.Addr(), conf, tc.assignor)
			ctx := testCtx(t, 10*time.Second)
			ls, err := admin(t, b.Addr()).ListGroupsByType(ctx, []string{"consumer"})
			if err != nil {
				t.Fatalf("ListGroups by type consumer: %v", err)
			}
			if _, ok := ls[conf.Group]; !ok {
				t.Errorf("ListGroups(type=consumer) lacks %s: %v", conf.Group, ls.Groups())
			}
		})
	}
}

// testSplitJoinLeave runs the split/join/leave scenario on a new 6-partition
// topic; protocol is the assignor the broker must report.
func testSplitJoinLeave(t *testing.T, addr string, conf groupConf, protocol string) {
	const nparts = 6
	createTopic(t, addr, conf.Topic, nparts, nil)
	adm := admin(t, addr)
	want := produceKeyed(t, addr, conf.Topic, "k", 60, nparts)
	led := newLedger()

	m1 := startMember(t, addr, "m1", conf, led)
	waitSplit(t, adm, conf, nparts, m1)
	m2 := startMember(t, addr, "m2", conf, led)
	two := waitSplit(t, adm, conf, nparts, m1, m2)
	if v, err := describeGroup(adm, conf.Group, conf.Topic, conf.KIP848); err != nil || v.protocol != protocol {
		t.Errorf("group protocol/assignor %q (err %v), want %q", v.protocol, err, protocol)
	}
	if !testkit.Poll(20*time.Second, func() bool { return led.Total() >= 60 }) {
		t.Errorf("the members consumed %d of 60 records", led.Total())
	}

	// A member joins: it gets partitions, taken from the other two.
	m3 := startMember(t, addr, "m3", conf, led)
	three := waitSplit(t, adm, conf, nparts, m1, m2, m3)
	for _, name := range []string{"m1", "m2"} {
		if len(three[name]) >= len(two[name]) {
			t.Errorf("%s kept %v after m3 joined (had %v)", name, three[name], two[name])
		}
	}

	// A member leaves: the others get its partitions. Sticky assignors
	// (cooperative-sticky, the broker's uniform) take nothing from them.
	e1, e2 := m1.EventCount(), m2.EventCount()
	m3.Close()
	after := waitSplit(t, adm, conf, nparts, m1, m2)
	if protocol == "cooperative-sticky" || protocol == "uniform" {
		for _, c := range []struct {
			m *member
			n int
		}{{m1, e1}, {m2, e2}} {
			for _, e := range c.m.EventsSince(c.n) {
				if e.kind != "assigned" {
					t.Errorf("%s: %v after m3 left (%s is sticky: survivors keep what they had)", c.m.Name(), e, protocol)
				}
			}
			if name := c.m.Name(); !isSubset(three[name], after[name]) {
				t.Errorf("%s had %v, has %v after m3 left", name, three[name], after[name])
			}
		}
	}
	// Everything was consumed at least once (rebalances may repeat a
	// record that was consumed but not yet committed).
	led.mu.Lock()
	for p, keys := range want {
		for off := range keys {
			if led.seen[p][int64(off)] == 0 {
				t.Errorf("partition %d offset %d never consumed", p, off)
			}
		}
	}
	led.mu.Unlock()
	for _, m := range []*member{m1, m2, m3} {
		if errs := m.Errs(); len(errs) > 0 {
			t.Errorf("%s: %v", m.Name(), errs)
		}
	}
}

func isSubset(a, b []int32) bool {
	for _, x := range a {
		if !slices.Contains(b, x) {
			return false
		}
	}
	return true
}

// TestGroupSessionTimeoutEviction: a member killed with SIGKILL (no
// LeaveGroup, no leave heartbeat) is evicted once its session times out,
// and its partitions move to the survivor: not before the session timeout
// (so the eviction is the timeout's doing) and not much after.
func TestGroupSessionTimeoutEviction(t *testing.T) {
	const session, hb = 3 * time.Second, 300 * time.Millisecond
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets(
		"group.consumer.session.timeout.ms=3000",
		"group.consumer.heartbeat.interval.ms=300")...)
	adm := admin(t, b.Addr())
	for _, tc := range []struct {
		name string
		conf groupConf
	}{
		{"classic", groupConf{Balancer: "range", Session: session, Heartbeat: hb}},
		{"kip848", groupConf{Balancer: "range", KIP848: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const nparts = 6
			conf := tc.conf
			conf.Group, conf.Topic = "evict-"+tc.name, "evict-"+tc.name
			createTopic(t, b.Addr(), conf.Topic, nparts, nil)
			survivor := startMember(t, b.Addr(), "survivor", conf, nil)
			waitSplit(t, adm, conf, nparts, survivor)
			victim := startChildMember(t, b.Addr(), "victim", conf)
			waitSplit(t, adm, conf, nparts, survivor, victim)
			// One more heartbeat round, so the victim's session is
			// fresh when it dies.
			time.Sleep(2 * hb)

			n := survivor.EventCount()
			victim.Kill()
			killed := time.Now()
			if !testkit.Poll(session+10*time.Second, func() bool { return len(survivor.Owned()) == nparts }) {
				t.Fatalf("survivor owns %v %v after the kill; events %v", survivor.Owned(), time.Since(killed), survivor.EventsSince(n))
			}
			took := time.Since(killed)
			evs := survivor.EventsSince(n)
			first := evs[0].at.Sub(killed)
			t.Logf("survivor's first change %v after the kill, owns everything after %v (session timeout %v)", first, took, session)
			// The victim's last heartbeat was at most a heartbeat
			// interval before the kill (more on a loaded machine);
			// a second of slack still tells a timeout from a leave,
			// which would move the partitions within a heartbeat.
			if earliest := session - time.Second; first < earliest {
				t.Errorf("survivor's assignment changed %v after the kill, before the session timeout (%v) could expire: %v", first, session, evs)
			}
			if latest := session + 5*time.Second; took > latest {
				t.Errorf("survivor got the victim's partitions only %v after the kill (session timeout %v)", took, session)
			}
			// The broker agrees the victim is gone.
			waitSplit(t, adm, conf, nparts, survivor)
		})
	}
}

// TestGroupStaticMembership: a static member (kgo.InstanceID) that closes
// and comes back with the same instance id within its session timeout gets
// its partitions back without a rebalance: the other member sees no revoke
// and no assign. The static member first lives through a few rebalances, as
// one in a real deployment does.
func TestGroupStaticMembership(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	adm := admin(t, b.Addr())
	for _, tc := range []struct {
		name string
		conf groupConf
	}{
		{"classic-range", groupConf{Balancer: "range"}},
		{"classic-cooperative-sticky", groupConf{Balancer: "cooperative-sticky"}},
		{"kip848", groupConf{KIP848: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const nparts = 6
			conf := tc.conf
			conf.Group, conf.Topic = "static-"+tc.name, "static-"+tc.name
			createTopic(t, b.Addr(), conf.Topic, nparts, nil)
			static := conf
			static.InstanceID = "instance-a"

			other := startMember(t, b.Addr(), "other", conf, nil)
			waitSplit(t, adm, conf, nparts, other)
			a := startMember(t, b.Addr(), "a", static, nil)
			waitSplit(t, adm, conf, nparts, other, a)
			extra := startMember(t, b.Addr(), "extra", conf, nil)
			waitSplit(t, adm, conf, nparts, other, a, extra)
			extra.Close()
			split := waitSplit(t, adm, conf, nparts, other, a)

			n, otherGen := other.EventCount(), other.Generation()
			oldID := a.MemberID()
			v, _ := describeGroup(adm, conf.Group, conf.Topic, conf.KIP848)
			oldMeta := v.meta[oldID]
			a.Close()
			a2 := startMember(t, b.Addr(), "a-restarted", static, nil)
			if !testkit.Poll(8*time.Second, func() bool { return slices.Equal(a2.Owned(), split["a"]) }) {
				t.Errorf("restarted static member owns %v, had %v before the restart; events %v", a2.Owned(), split["a"], a2.EventsSince(0))
			}
			// A rebalance the restart started would reach the other
			// member within a few heartbeats.
			time.Sleep(2 * time.Second)
			rebalanced := false
			if evs := other.EventsSince(n); len(evs) > 0 {
				rebalanced = true
				t.Errorf("the other member saw a rebalance when the static member restarted: %v", evs)
			}
			// A generation (KIP-848: member epoch) bump is a rebalance
			// too, even one that moves nothing.
			if g := other.Generation(); g != otherGen {
				rebalanced = true
				t.Errorf("the other member's generation went from %d to %d across the static restart", otherGen, g)
			}
			after := waitSplit(t, adm, conf, nparts, other, a2)
			if !slices.Equal(after["a-restarted"], split["a"]) || !slices.Equal(after["other"], split["other"]) {
				t.Errorf("assignment changed across the static restart: before %v, after %v", split, after)
			}
			v, _ = describeGroup(adm, conf.Group, conf.Topic, conf.KIP848)
			if _, ok := v.assigned[oldID]; ok && oldID != a2.MemberID() {
				t.Errorf("the static member's old id %s is still in the group: %v", oldID, v)
			}
			if rebalanced && !conf.KIP848 {
				t.Logf("static member's JoinGroup metadata before the restart %s, after %s", oldMeta, v.meta[a2.MemberID()])
			}
		})
	}
}

// TestGroupOffsetsSurviveRestart: committed offsets (with their metadata
// and leader epoch) and the groups themselves survive a clean stop and a
// kill -9 of the broker, and a new member resumes from them.
func TestGroupOffsetsSurviveRestart(t *testing.T) {
	dir := t.TempDir()
	sets := groupBrokerSets()
	b := startBroker(t, "std", dir, sets...)
	const topic, nparts = "resume", 3
	createTopic(t, b.Addr(), topic, nparts, nil)
	groups := []groupConf{
		{Group: "resume-classic", Topic: topic, Balancer: "range"},
		{Group: "resume-848", Topic: topic, KIP848: true},
	}
	const manual = "resume-manual" // offsets committed by an admin tool

	// Consume what is there and commit it on leaving.
	produceKeyed(t, b.Addr(), topic, "a", 90, nparts)
	for _, c := range groups {
		led := newLedger()
		m := startMember(t, b.Addr(), c.Group+"-1", c, led)
		if !testkit.Poll(30*time.Second, func() bool { return led.Total() >= 90 }) {
			t.Fatalf("%s consumed %d of 90", c.Group, led.Total())
		}
		m.Close()
	}
	adm := admin(t, b.Addr())
	mo := kadm.Offsets{}
	mo.Add(kadm.Offset{Topic: topic, Partition: 0, At: 7, LeaderEpoch: 0, Metadata: "seven"})
	mo.Add(kadm.Offset{Topic: topic, Partition: 1, At: 19, LeaderEpoch: -1, Metadata: ""})
	mo.Add(kadm.Offset{Topic: topic, Partition: 2, At: 0, LeaderEpoch: 0, Metadata: strings.Repeat("m", 300)})
	ctx := testCtx(t, 15*time.Second)
	if resp, err := adm.CommitOffsets(ctx, manual, mo); err != nil || resp.Error() != nil {
		t.Fatalf("CommitOffsets %s: %v / %v", manual, err, resp.Error())
	}
	all := append([]string{manual}, groups[0].Group, groups[1].Group)
	before := map[string]map[int32]kadm.Offset{}
	for _, g := range all {
		before[g] = fetchCommitted(t, adm, g, topic)
		if len(before[g]) != nparts {
			t.Fatalf("group %s has committed %s, want all %d partitions", g, committedString(before[g]), nparts)
		}
	}
	for _, c := range groups {
		for p, o := range before[c.Group] {
			if o.At != 30 {
				t.Fatalf("group %s committed partition %d at %d, want 30", c.Group, p, o.At)
			}
		}
	}

	// checkAfter verifies the offsets and groups after a restart, then has
	// a new member of each group consume what was produced since (n per
	// partition, from offset from) and commit it.
	checkAfter := func(b *brokerProc, how string, from int64, n int) {
		t.Helper()
		adm := admin(t, b.Addr())
		for _, g := range all {
			if got := fetchCommitted(t, adm, g, topic); !sameCommitted(got, before[g]) {
				t.Errorf("after %s, group %s has committed %s; before: %s", how, g, committedString(got), committedString(before[g]))
			}
		}
		ls := listGroups(t, adm)
		for _, g := range all {
			if lg, ok := ls[g]; !ok {
				t.Errorf("after %s, ListGroups lacks group %s: %v", how, g, ls.Groups())
			} else if lg.State != "Empty" {
				t.Errorf("after %s, group %s is %s, want Empty", how, g, lg.State)
			}
		}
		produceKeyed(t, b.Addr(), topic, how, n*nparts, nparts)
		for _, c := range groups {
			led := newLedger()
			m := startMember(t, b.Addr(), c.Group+"-"+how, c, led)
			if !testkit.Poll(30*time.Second, func() bool { return led.Total() >= n*nparts }) {
				t.Fatalf("after %s, %s consumed %d of %d", how, c.Group, led.Total(), n*nparts)
			}
			time.Sleep(300 * time.Millisecond)
			m.Close()
			if got := led.Total(); got != n*nparts {
				t.Errorf("after %s, %s consumed %d records, want the %d produced since the commit", how, c.Group, got, n*nparts)
			}
			for p := range int32(nparts) {
				lo, hi, ok := led.offsetsRange(p)
				if !ok || lo != from || hi != from+int64(n)-1 {
					t.Errorf("after %s, %s consumed partition %d offsets %d..%d (any: %v), want %d..%d", how, c.Group, p, lo, hi, ok, from, from+int64(n)-1)
				}
			}
			before[c.Group] = fetchCommitted(t, adm, c.Group, topic)
			for p, o := range before[c.Group] {
				if o.At != from+int64(n) {
					t.Errorf("after %s, %s committed partition %d at %d, want %d", how, c.Group, p, o.At, from+int64(n))
				}
			}
		}
	}

	b.Stop()
	b2 := startBroker(t, "std", dir, sets...)
	checkAfter(b2, "clean-restart", 30, 15)

	b2.Kill()
	b3 := startBroker(t, "std", dir, sets...)
	checkAfter(b3, "kill-9", 45, 5)
}

// TestGroupCommitOnRevokeExactlyOnce: while a producer writes continuously,
// members join and leave a group again and again; each commits what it
// processed when partitions are revoked (kgo.BlockRebalanceOnPoll, so a
// rebalance waits for the processing), as franz-go's own group ETL test
// does. In the end every record produced was consumed exactly once: the
// broker accepted each commit-on-revoke and handed the partition over at
// the committed offset.
func TestGroupCommitOnRevokeExactlyOnce(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	for _, bal := range []string{"range", "cooperative-sticky"} {
		t.Run(bal, func(t *testing.T) { testCommitOnRevoke(t, b.Addr(), bal) })
	}
}

func testCommitOnRevoke(t *testing.T, addr, balancer string) {
	const nparts = 6
	conf := groupConf{Group: "etl-" + balancer, Topic: "etl-" + balancer, Balancer: balancer, BlockOnPoll: true}
	createTopic(t, addr, conf.Topic, nparts, nil)
	adm := admin(t, addr)
	prod := startSeqProducer(t, addr, conf.Topic, nparts)
	led := newLedger()
	var all []*member
	start := func() *member {
		m := startMember(t, addr, fmt.Sprintf("c%d", len(all)+1), conf, led)
		all = append(all, m)
		return m
	}
	split := func(ms ...groupMember) {
		t.Helper()
		waitSplit(t, adm, conf, nparts, ms...)
		// Let the new owners consume for a while before the next change.
		n := led.Total()
		if !testkit.Poll(20*time.Second, func() bool { return led.Total() >= n+200 }) {
			t.Fatalf("consumption stalled at %d records (producer at %d)", led.Total(), prod.Count())
		}
	}

	c1 := start()
	split(c1)
	c2 := start()
	split(c1, c2)
	c3 := start()
	split(c1, c2, c3)
	c1.Close()
	split(c2, c3)
	c4 := start()
	split(c2, c3, c4)
	c2.Close()
	c3.Close()
	split(c4)
	c5 := start()
	c6 := start()
	split(c4, c5, c6)
	c4.Close()
	split(c5, c6)

	want := prod.Stop()
	total := 0
	for _, ks := range want {
		total += len(ks)
	}
	if !testkit.Poll(30*time.Second, func() bool { return led.Total() >= total }) {
		t.Errorf("consumed %d of %d records", led.Total(), total)
	}
	time.Sleep(500 * time.Millisecond) // room for a stray duplicate to show
	c5.Close()
	c6.Close()
	t.Logf("%d records produced and consumed through %d members", total, len(all))
	led.check(t, want)
	for _, m := range all {
		if errs := m.Errs(); len(errs) > 0 {
			t.Errorf("%s: %v", m.Name(), errs)
		}
	}
	ends := endOffsets(t, addr, conf.Topic)
	got := fetchCommitted(t, adm, conf.Group, conf.Topic)
	for p, end := range ends {
		if got[p].At != end {
			t.Errorf("committed %s, want every partition at its end %v", committedString(got), ends)
			break
		}
	}
}

// seqProducer produces records with increasing sequence numbers as keys,
// round robin over the partitions, until stopped.
type seqProducer struct {
	t    *testing.T
	cl   *kgo.Client
	stop chan struct{}
	done chan struct{}

	mu   sync.Mutex
	keys map[int32]map[int64]string
	errs []error
	n    int
}

func startSeqProducer(t *testing.T, addr, topic string, nparts int) *seqProducer {
	p := &seqProducer{t: t, cl: newClient(t, addr, kgo.MaxBufferedRecords(1000)),
		stop: make(chan struct{}), done: make(chan struct{}), keys: map[int32]map[int64]string{}}
	go func() {
		defer close(p.done)
		for seq := 0; ; seq++ {
			select {
			case <-p.stop:
				return
			default:
			}
			key := strconv.Itoa(seq)
			r := &kgo.Record{Topic: topic, Partition: int32(seq % nparts), Key: []byte(key), Value: []byte("v")}
			p.cl.Produce(context.Background(), r, func(r *kgo.Record, err error) {
				p.mu.Lock()
				defer p.mu.Unlock()
				if err != nil {
					p.errs = append(p.errs, err)
					return
				}
				if p.keys[r.Partition] == nil {
					p.keys[r.Partition] = map[int64]string{}
				}
				p.keys[r.Partition][r.Offset] = key
				p.n++
			})
			time.Sleep(time.Millisecond)
		}
	}()
	t.Cleanup(func() {
		select {
		case <-p.stop:
		default:
			close(p.stop)
		}
		<-p.done
	})
	return p
}

// Count is how many records were acknowledged so far.
func (p *seqProducer) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// Stop stops producing, flushes, and returns partition → keys by offset.
func (p *seqProducer) Stop() map[int32][]string {
	p.t.Helper()
	close(p.stop)
	<-p.done
	ctx := testCtx(p.t, 30*time.Second)
	if err := p.cl.Flush(ctx); err != nil {
		p.t.Fatalf("flush: %v", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.errs) > 0 {
		p.t.Fatalf("produce errors: %v", p.errs)
	}
	out := map[int32][]string{}
	for part, byOff := range p.keys {
		ks := make([]string, len(byOff))
		for off, k := range byOff {
			if off >= int64(len(ks)) {
				p.t.Fatalf("partition %d: offsets not contiguous (offset %d of %d records)", part, off, len(ks))
			}
			ks[off] = k
		}
		out[part] = ks
	}
	return out
}

// TestGroupBadRequests: group requests a correct client would not send, over
// raw connections, get Kafka's error codes; none of them disturbs a live
// classic group or a live KIP-848 group (same members, generation and
// assignments, no rebalance, consumption goes on), changes a committed
// offset, or makes the broker panic.
func TestGroupBadRequests(t *testing.T) {
	b := startBroker(t, "std", t.TempDir(), groupBrokerSets()...)
	adm := admin(t, b.Addr())
	const topic, nparts = "bad-groups", 3
	createTopic(t, b.Addr(), topic, nparts, nil)
	classic := groupConf{Group: "bad-classic", Topic: topic, Balancer: "range"}
	kip848 := groupConf{Group: "bad-848", Topic: topic, KIP848: true}

	produceKeyed(t, b.Addr(), topic, "a", 30, nparts)
	ledC, led8 := newLedger(), newLedger()
	m1 := startMember(t, b.Addr(), "m1", classic, ledC)
	m2 := startMember(t, b.Addr(), "m2", classic, ledC)
	k1 := startMember(t, b.Addr(), "k1", kip848, led8)
	waitSplit(t, adm, classic, nparts, m1, m2)
	waitSplit(t, adm, kip848, nparts, k1)
	for _, l := range []*ledger{ledC, led8} {
		if !testkit.Poll(30*time.Second, func() bool { return l.Total() >= 30 }) {
			t.Fatalf("consumed %d of 30", l.Total())
		}
	}
	ctx := testCtx(t, 60*time.Second)
	for _, m := range []*member{m1, m2, k1} {
		if err := m.cl.CommitUncommittedOffsets(ctx); err != nil {
			t.Fatalf("%s commit: %v", m.Name(), err)
		}
	}
	committed := map[string]map[int32]kadm.Offset{}
	for _, g := range []string{classic.Group, kip848.Group} {
		committed[g] = fetchCommitted(t, adm, g, topic)
		if len(committed[g]) != nparts {
			t.Fatalf("group %s committed %s, want %d partitions", g, committedString(committed[g]), nparts)
		}
	}
	viewC, err := describeGroup(adm, classic.Group, topic, false)
	if err != nil {
		t.Fatal(err)
	}
	view8, err := describeGroup(adm, kip848.Group, topic, true)
	if err != nil {
		t.Fatal(err)
	}
	id1, gen := m1.cl.GroupMetadata()
	kid, kepoch := k1.cl.GroupMetadata()
	events := map[*member]int{m1: m1.EventCount(), m2: m2.EventCount(), k1: k1.EventCount()}
	ids, err := admin(t, b.Addr()).ListTopics(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	topicID := ids[topic].ID

	rc := dialRaw(t, b.Addr())
	code := func(c int16) string {
		if c == 0 {
			return "NONE"
		}
		return kerr.ErrorForCode(c).Error()
	}
	expect := func(what string, got int16, want *kerr.Error) {
		t.Helper()
		if got != want.Code {
			t.Errorf("%s: got %s, want %s", what, code(got), code(want.Code))
		}
	}
	str := kmsg.StringPtr

	// OffsetCommit as the real member, so only the per-partition checks
	// can refuse; offset 999 would show in the committed offsets if any
	// of these were written.
	commitReq := func(version int16, gen int32, member string, topics ...kmsg.OffsetCommitRequestTopic) *kmsg.OffsetCommitResponse {
		req := kmsg.NewPtrOffsetCommitRequest()
		req.SetVersion(version)
		req.Group, req.Generation, req.MemberID = classic.Group, gen, member
		req.Topics = topics
		return rc.mustRoundTrip(req).(*kmsg.OffsetCommitResponse)
	}
	part := func(p int32, meta *string) kmsg.OffsetCommitRequestTopicPartition {
		rp := kmsg.NewOffsetCommitRequestTopicPartition()
		rp.Partition, rp.Offset, rp.Metadata = p, 999, meta
		return rp
	}
	byName := func(name string, ps ...kmsg.OffsetCommitRequestTopicPartition) kmsg.OffsetCommitRequestTopic {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.Partitions = name, ps
		return rt
	}
	byID := func(id [16]byte, ps ...kmsg.OffsetCommitRequestTopicPartition) kmsg.OffsetCommitRequestTopic {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.TopicID, rt.Partitions = id, ps
		return rt
	}
	tooLong := str(strings.Repeat("x", 4097)) // offset.metadata.max.bytes is 4096
	for _, v := range []int16{2, 8, 9} {
		resp := commitReq(v, gen, id1,
			byName("no-such-topic", part(0, nil)),
			byName(topic, part(nparts, nil), part(-1, nil), part(0, tooLong)))
		if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[1].Partitions) != 3 {
			t.Fatalf("OffsetCommit v%d response shape: %+v", v, resp)
		}
		expect(fmt.Sprintf("OffsetCommit v%d unknown topic", v), resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		expect(fmt.Sprintf("OffsetCommit v%d partition %d of %d", v, nparts, nparts), resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		expect(fmt.Sprintf("OffsetCommit v%d partition -1", v), resp.Topics[1].Partitions[1].ErrorCode, kerr.UnknownTopicOrPartition)
		expect(fmt.Sprintf("OffsetCommit v%d metadata of 4097 bytes", v), resp.Topics[1].Partitions[2].ErrorCode, kerr.OffsetMetadataTooLarge)
	}
	{
		resp := commitReq(10, gen, id1,
			byID([16]byte{0xde, 0xad, 0xbe, 0xef}, part(0, nil)),
			byID(topicID, part(nparts, nil), part(0, tooLong)))
		if len(resp.Topics) != 2 || len(resp.Topics[0].Partitions) != 1 || len(resp.Topics[1].Partitions) != 2 {
			t.Fatalf("OffsetCommit v10 response shape: %+v", resp)
		}
		expect("OffsetCommit v10 unknown topic id", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicID)
		expect("OffsetCommit v10 partition out of range", resp.Topics[1].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
		expect("OffsetCommit v10 metadata too large", resp.Topics[1].Partitions[1].ErrorCode, kerr.OffsetMetadataTooLarge)
	}
	{
		resp := commitReq(8, gen-1, id1, byName(topic, part(0, nil)))
		expect("OffsetCommit with the previous generation", resp.Topics[0].Partitions[0].ErrorCode, kerr.IllegalGeneration)
		resp = commitReq(8, gen, "nobody", byName(topic, part(0, nil)))
		expect("OffsetCommit from an unknown member", resp.Topics[0].Partitions[0].ErrorCode, kerr.UnknownMemberID)
	}

	// JoinGroup with what no current member speaks. Checked before the
	// member gets an id (v4+), so nothing about the group changes.
	rangeMeta := kmsg.NewConsumerMemberMetadata()
	rangeMeta.Topics = []string{topic}
	meta := rangeMeta.AppendTo(nil)
	join := func(version int16, group, protocolType string, protocols ...string) int16 {
		req := kmsg.NewPtrJoinGroupRequest()
		req.SetVersion(version)
		req.Group, req.ProtocolType = group, protocolType
		req.SessionTimeoutMillis, req.RebalanceTimeoutMillis = 10000, 10000
		for _, name := range protocols {
			p := kmsg.NewJoinGroupRequestProtocol()
			p.Name, p.Metadata = name, meta
			req.Protocols = append(req.Protocols, p)
		}
		return rc.mustRoundTrip(req).(*kmsg.JoinGroupResponse).ErrorCode
	}
	for _, v := range []int16{0, 5, 9} {
		expect(fmt.Sprintf("JoinGroup v%d protocol type connect", v), join(v, classic.Group, "connect", "range"), kerr.InconsistentGroupProtocol)
		expect(fmt.Sprintf("JoinGroup v%d no common assignor", v), join(v, classic.Group, "consumer", "no-such-assignor", "sticky"), kerr.InconsistentGroupProtocol)
	}
	expect("JoinGroup of a new group, empty protocol type", join(9, "bad-new-group", "", "range"), kerr.InconsistentGroupProtocol)
	expect("JoinGroup of a new group, no protocols", join(9, "bad-new-group", "consumer"), kerr.InconsistentGroupProtocol)

	// Heartbeat and SyncGroup from a member that is not there, or from
	// the real member but the wrong generation.
	heartbeat := func(member string, gen int32) int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.SetVersion(4)
		req.Group, req.MemberID, req.Generation = classic.Group, member, gen
		return rc.mustRoundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
	}
	syncGroup := func(member string, gen int32) int16 {
		req := kmsg.NewPtrSyncGroupRequest()
		req.SetVersion(5)
		req.Group, req.MemberID, req.Generation = classic.Group, member, gen
		req.ProtocolType, req.Protocol = str("consumer"), str("range")
		return rc.mustRoundTrip(req).(*kmsg.SyncGroupResponse).ErrorCode
	}
	expect("Heartbeat from an unknown member", heartbeat("nobody", gen), kerr.UnknownMemberID)
	expect("SyncGroup from an unknown member", syncGroup("nobody", gen), kerr.UnknownMemberID)
	expect("Heartbeat with the previous generation", heartbeat(id1, gen-1), kerr.IllegalGeneration)
	expect("Heartbeat with a future generation", heartbeat(id1, gen+1), kerr.IllegalGeneration)
	expect("SyncGroup with the previous generation", syncGroup(id1, gen-1), kerr.IllegalGeneration)
	expect("Heartbeat to a group that does not exist", func() int16 {
		req := kmsg.NewPtrHeartbeatRequest()
		req.SetVersion(4)
		req.Group, req.MemberID, req.Generation = "no-such-group", "nobody", 1
		return rc.mustRoundTrip(req).(*kmsg.HeartbeatResponse).ErrorCode
	}(), kerr.UnknownMemberID)
	{
		req := kmsg.NewPtrLeaveGroupRequest()
		req.SetVersion(5)
		req.Group = classic.Group
		lm := kmsg.NewLeaveGroupRequestMember()
		lm.MemberID = "nobody"
		req.Members = append(req.Members, lm)
		resp := rc.mustRoundTrip(req).(*kmsg.LeaveGroupResponse)
		if len(resp.Members) != 1 {
			t.Errorf("LeaveGroup of an unknown member: %d member answers, want 1", len(resp.Members))
		} else {
			expect("LeaveGroup of an unknown member", resp.Members[0].ErrorCode, kerr.UnknownMemberID)
		}
	}

	// KIP-848 heartbeats from members that are not there, or with an
	// epoch the member does not have.
	cgHeartbeat := func(group, member string, epoch int32) int16 {
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.SetVersion(1)
		req.Group, req.MemberID, req.MemberEpoch = group, member, epoch
		return rc.mustRoundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse).ErrorCode
	}
	expect("ConsumerGroupHeartbeat, unknown member, epoch 5", cgHeartbeat(kip848.Group, "AAAAAAAAAAAAAAAAAAAAAA", 5), kerr.UnknownMemberID)
	expect("ConsumerGroupHeartbeat, unknown group, epoch 3", cgHeartbeat("no-such-group", "AAAAAAAAAAAAAAAAAAAAAA", 3), kerr.UnknownMemberID)
	expect("ConsumerGroupHeartbeat, real member, epoch ahead of it", cgHeartbeat(kip848.Group, kid, kepoch+5), kerr.FencedMemberEpoch)
	{
		// A KIP-848 join of the live classic group.
		req := kmsg.NewPtrConsumerGroupHeartbeatRequest()
		req.SetVersion(1)
		req.Group, req.MemberID, req.MemberEpoch = classic.Group, "BBBBBBBBBBBBBBBBBBBBBB", 0
		req.RebalanceTimeoutMillis, req.SubscribedTopicNames = 10000, []string{topic}
		req.Topics = []kmsg.ConsumerGroupHeartbeatRequestTopic{}
		resp := rc.mustRoundTrip(req).(*kmsg.ConsumerGroupHeartbeatResponse)
		expect("ConsumerGroupHeartbeat join of a classic group with members", resp.ErrorCode, kerr.GroupIDNotFound)
	}

	// The groups are as they were.
	if got, _ := describeGroup(adm, classic.Group, topic, false); got.String() != viewC.String() {
		t.Errorf("classic group changed:\nbefore %v\nafter  %v", viewC, got)
	}
	if got, _ := describeGroup(adm, kip848.Group, topic, true); got.String() != view8.String() || got.epochs[kid] != view8.epochs[kid] {
		t.Errorf("KIP-848 group changed:\nbefore %v (epochs %v)\nafter  %v (epochs %v)", view8, view8.epochs, got, got.epochs)
	}
	if id, g := m1.cl.GroupMetadata(); id != id1 || g != gen {
		t.Errorf("m1 is member %s generation %d, was %s generation %d", id, g, id1, gen)
	}
	for m, n := range events {
		if evs := m.EventsSince(n); len(evs) > 0 {
			t.Errorf("%s saw a rebalance: %v", m.Name(), evs)
		}
	}
	for _, g := range []string{classic.Group, kip848.Group} {
		if got := fetchCommitted(t, adm, g, topic); !sameCommitted(got, committed[g]) {
			t.Errorf("group %s committed offsets changed: %s, were %s", g, committedString(got), committedString(committed[g]))
		}
	}
	// And they keep consuming.
	produceKeyed(t, b.Addr(), topic, "b", 30, nparts)
	for name, l := range map[string]*ledger{"classic": ledC, "KIP-848": led8} {
		if !testkit.Poll(30*time.Second, func() bool { return l.Total() >= 60 }) {
			t.Errorf("%s group consumed %d of 60 records after the bad requests", name, l.Total())
		}
	}
	if strings.Contains(b.Log(), "panic") {
		t.Errorf("broker logged a panic")
	}
}
