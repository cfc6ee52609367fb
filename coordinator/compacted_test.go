package coordinator

import (
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// diskLog is a one-partition __consumer_offsets on a real partition log
// (replica.Partition), replayed with ReplayPartition as the broker does.
// Every append is mirrored into an uncleaned memLog: what a coordinator
// loads from the mirror is what a full replay gives.
type diskLog struct {
	p      *replica.Partition
	now    func() time.Time
	mirror *memLog
}

func openDiskLog(t testing.TB, fs segment.FS, dir string, segmentBytes int64, now func() time.Time) *diskLog {
	t.Helper()
	cfg := replica.Config{Log: segment.Config{SegmentBytes: segmentBytes}}
	p, err := replica.Open(fs, dir, OffsetsTopic, 0, 0, cfg, now, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	mirror := &memLog{}
	if _, err := mirror.Open(true, 1); err != nil {
		t.Fatal(err)
	}
	return &diskLog{p: p, now: now, mirror: mirror}
}

func (l *diskLog) Leads(int32) bool                { return true }
func (l *diskLog) Open(bool, int32) (int32, error) { return 1, nil }

func (l *diskLog) Append(p int32, recs []Record) error {
	kvs := make([]segment.KV, len(recs))
	for i, r := range recs {
		kvs[i] = segment.KV{Key: r.Key, Value: r.Value}
	}
	b, err := segment.BuildBatch(kvs, l.now().UnixMilli())
	if err != nil {
		return err
	}
	if _, err := l.p.Append(b); err != nil {
		return err
	}
	return l.mirror.Append(p, recs)
}

func (l *diskLog) Replay(_ int32, fn func(Record) error) error {
	return ReplayPartition(l.p.Read, l.p.LogStartOffset(), l.p.HighWatermark(), fn)
}

// dump renders every group a coordinator loaded, sorted, with what a
// client can see of it: state, generation, members with their metadata
// and assignment, and each committed offset.
func dump(c *Coordinator) string {
	var out []string
	for _, e := range c.entries() {
		e.mu.Lock()
		s := fmt.Sprintf("group %s %s gen %d", e.id, e.state(), e.generation())
		if e.classic != nil {
			snap := e.classic.Snapshot()
			s += fmt.Sprintf(" %s/%s leader %s", snap.ProtocolType, snap.Protocol, snap.Leader)
			for _, m := range snap.Members {
				s += fmt.Sprintf("\n  member %s md %x as %q", m.MemberID, m.Metadata, m.Assignment)
			}
		}
		for topic, ps := range e.offsets {
			for p, o := range ps {
				s += fmt.Sprintf("\n  %s/%d = %d epoch %d md %q at %d", topic, p, o.Offset, o.LeaderEpoch, o.Metadata, o.CommitTime.UnixMilli())
			}
		}
		e.mu.Unlock()
		lines := strings.Split(s, "\n")
		sort.Strings(lines[1:])
		out = append(out, strings.Join(lines, "\n"))
	}
	sort.Strings(out)
	return strings.Join(out, "\n")
}

// loaded is what a new coordinator loads from log, rendered by dump.
func loadedFrom(t *testing.T, log Log, now func() time.Time) string {
	t.Helper()
	c := startCoordinator(t, log, now)
	defer c.Close()
	return dump(c)
}

// logShape counts a partition's batches, the empty ones among them, and
// its records, reading every batch from the log start.
func logShape(t *testing.T, p *replica.Partition) (batches, empty, records int) {
	t.Helper()
	for next := p.LogStartOffset(); next < p.LogEndOffset(); {
		rr, err := p.Read(next, 1<<30, true)
		if err != nil {
			t.Fatal(err)
		}
		if rr.Bytes == 0 {
			break
		}
		buf := make([]byte, 0, rr.Bytes)
		for _, fr := range rr.Ranges {
			chunk := make([]byte, fr.Length)
			if _, err := fr.File.ReadAt(chunk, fr.Offset); err != nil {
				t.Fatal(err)
			}
			buf = append(buf, chunk...)
		}
		rr.Release()
		for len(buf) > 0 {
			h, err := segment.ParseBatchHeader(buf)
			if err != nil {
				t.Fatal(err)
			}
			batches++
			if h.NumRecords == 0 {
				empty++
			}
			records += int(h.NumRecords)
			next = h.LastOffset() + 1
			buf = buf[h.Size():]
		}
	}
	return batches, empty, records
}

// commitN commits offset off to partitions 0..n-1 of topic, standalone.
func commitN(t *testing.T, c *Coordinator, groupID, topic string, n int32, off int64) {
	t.Helper()
	req := commitReq(8, groupID, "", -1, topic, 0, off, fmt.Sprintf("md-%d", off))
	for p := int32(1); p < n; p++ {
		rp := req.Topics[0].Partitions[0]
		rp.Partition = p
		req.Topics[0].Partitions = append(req.Topics[0].Partitions, rp)
	}
	for _, tp := range c.OffsetCommit(req).Topics {
		for _, p := range tp.Partitions {
			if p.ErrorCode != 0 {
				t.Fatalf("commit %s %s/%d: %v", groupID, tp.Topic, p.Partition, kerr.ErrorForCode(p.ErrorCode))
			}
		}
	}
}

// A coordinator loads from a cleaned __consumer_offsets exactly what it
// loads from the same log uncleaned: across the gaps the cleaner leaves,
// across a batch emptied to its header, and once the tombstones of
// deleted offsets and groups are gone (delete.retention.ms later), with
// nothing deleted coming back. Reads are made small so the replay buffer
// is reused many times, as it is on a large log.
func TestLoadFromACleanedLog(t *testing.T) {
	defer func(n int) { replayChunk = n }(replayChunk)
	replayChunk = 256
	clk := &testClock{t: time.Unix(1_700_000_000, 0)}
	log := openDiskLog(t, segment.NewMemFS(), "offsets-0", 2048, clk.now)
	c := startCoordinator(t, log, clk.now)

	members, gen := joinSync(t, c, "cg", 1)
	for i := range 5 {
		for _, g := range []string{"g0", "g1", "g2", "g3"} {
			commitN(t, c, g, "orders", 3, int64(10*i))
		}
		clk.add(time.Second)
	}
	if code := commitCode(c.OffsetCommit(commitReq(8, "cg", members[0], gen, "orders", 0, 42, ""))); code != 0 {
		t.Fatalf("member commit: %v", kerr.ErrorForCode(code))
	}
	// An idempotent producer's batch (not how the coordinator writes,
	// but a log may hold one): once its record is superseded, the
	// cleaner keeps its header for the producer state.
	idem := testkit.Batch{PartitionLeaderEpoch: -1, Producer: &testkit.Producer{ID: 7}, FirstTimestamp: clk.now().UnixMilli()}
	idem.Records = []testkit.Record{offsetTestRecord("g3", "audit", 0, 5, clk.now())}
	if _, err := log.p.Append(idem.Encode()); err != nil {
		t.Fatal(err)
	}
	if err := log.mirror.Append(0, []Record{offsetRecord("g3", "audit", 0, &offset{Offset: 5, LeaderEpoch: -1, CommitTime: clk.now()})}); err != nil {
		t.Fatal(err)
	}
	commitN(t, c, "g3", "audit", 1, 6)
	// Tombstones: one offset (OffsetDelete), one whole group.
	od := kmsg.NewPtrOffsetDeleteRequest()
	od.Group = "g1"
	odt := kmsg.NewOffsetDeleteRequestTopic()
	odt.Topic = "orders"
	odp := kmsg.NewOffsetDeleteRequestTopicPartition()
	odp.Partition = 1
	odt.Partitions = append(odt.Partitions, odp)
	od.Topics = append(od.Topics, odt)
	if r := c.OffsetDelete(od); r.ErrorCode != 0 || r.Topics[0].Partitions[0].ErrorCode != 0 {
		t.Fatalf("offset delete: %+v", r)
	}
	dg := kmsg.NewPtrDeleteGroupsRequest()
	dg.Groups = []string{"g2"}
	if r := c.DeleteGroups(dg); r.Groups[0].ErrorCode != 0 {
		t.Fatalf("delete group: %v", kerr.ErrorForCode(r.Groups[0].ErrorCode))
	}
	c.Close()

	opts := segment.CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}
	// tail commits to a group of its own until the segments above are
	// no longer the active one, so a pass may clean them.
	tail := func(round int) {
		c := startCoordinator(t, log, clk.now)
		for i := range 30 {
			commitN(t, c, "tail", "audit", 1, int64(100*round+i))
		}
		c.Close()
	}
	tail(0)
	want := loadedFrom(t, log.mirror, clk.now)
	for _, g := range []string{"cg", "g0", "g1", "g3", "tail"} {
		if !strings.Contains(want, "group "+g+" ") {
			t.Fatalf("the uncleaned log lacks group %s:\n%s", g, want)
		}
	}
	if strings.Contains(want, "group g2 ") || !strings.Contains(want, "group g1 Empty gen 0 / leader \n  orders/0 = 40 epoch 4 md \"md-40\" at 1700000004000\n  orders/2") {
		t.Fatalf("the uncleaned log does not have g2 deleted and g1's orders/1 only:\n%s", want)
	}
	_, _, before := logShape(t, log.p)
	st, err := log.p.Clean(opts)
	if err != nil {
		t.Fatal(err)
	}
	batches, empty, after := logShape(t, log.p)
	if st.RecordsDropped == 0 || after >= before || empty == 0 {
		t.Fatalf("first pass: %+v; %d records before, %d after, %d of %d batches empty; want records dropped and an empty batch kept",
			st, before, after, empty, batches)
	}
	if got := loadedFrom(t, log, clk.now); got != want {
		t.Fatalf("loaded from the cleaned log:\n%s\nwant (uncleaned):\n%s", got, want)
	}

	// delete.retention.ms later, passes over newer segments drop the
	// tombstones; nothing they deleted may come back.
	var dropped int64
	for round := 1; round <= 4 && dropped == 0; round++ {
		clk.add(2 * time.Hour)
		tail(round)
		st, err := log.p.Clean(opts)
		if err != nil {
			t.Fatal(err)
		}
		dropped += st.TombstonesDropped
	}
	if dropped == 0 {
		t.Fatal("no pass dropped a tombstone after delete.retention.ms")
	}
	want = loadedFrom(t, log.mirror, clk.now)
	if got := loadedFrom(t, log, clk.now); got != want {
		t.Fatalf("loaded once the tombstones are gone:\n%s\nwant (uncleaned):\n%s", got, want)
	}
	if strings.Contains(want, "group g2 ") {
		t.Fatalf("deleted group g2 is back:\n%s", want)
	}
}

// offsetTestRecord is the testkit form of an offset commit record.
func offsetTestRecord(groupID, topic string, partition int32, off int64, at time.Time) testkit.Record {
	r := offsetRecord(groupID, topic, partition, &offset{Offset: off, LeaderEpoch: -1, CommitTime: at})
	return testkit.Record{Key: r.Key, Value: r.Value}
}

// Random commits, offset deletions and group deletions, with cleaning
// passes and time passing in between: after every pass, a coordinator
// loads from the cleaned log exactly what it loads from the same appends
// uncleaned.
func TestLoadFromACleanedLogRandomly(t *testing.T) {
	defer func(n int) { replayChunk = n }(replayChunk)
	replayChunk = 512
	var kept, dropped, tombstones int64
	for seed := range int64(4) {
		rng := rand.New(rand.NewPCG(uint64(seed), 18))
		clk := &testClock{t: time.Unix(1_700_000_000, 0)}
		log := openDiskLog(t, segment.NewMemFS(), fmt.Sprintf("offsets-%d", seed), 1024, clk.now)
		c := startCoordinator(t, log, clk.now)
		opts := segment.CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}
		for op := range 300 {
			g := fmt.Sprintf("g%d", rng.IntN(6))
			switch r := rng.IntN(20); {
			case r < 14:
				if rng.IntN(3) == 0 {
					commitN(t, c, g, "audit", 1, int64(op))
				} else {
					commitN(t, c, g, "orders", 1+rng.Int32N(3), int64(op))
				}
			case r < 16:
				od := kmsg.NewPtrOffsetDeleteRequest()
				od.Group = g
				odt := kmsg.NewOffsetDeleteRequestTopic()
				odt.Topic = "orders"
				odp := kmsg.NewOffsetDeleteRequestTopicPartition()
				odp.Partition = rng.Int32N(3)
				odt.Partitions = append(odt.Partitions, odp)
				od.Topics = append(od.Topics, odt)
				c.OffsetDelete(od) // GROUP_ID_NOT_FOUND is fine
			case r < 17:
				dg := kmsg.NewPtrDeleteGroupsRequest()
				dg.Groups = []string{g}
				c.DeleteGroups(dg) // GROUP_ID_NOT_FOUND is fine
			case r < 19:
				clk.add(time.Duration(rng.IntN(40)) * time.Minute)
			default:
				st, err := log.p.Clean(opts)
				if err != nil {
					t.Fatal(err)
				}
				kept, dropped, tombstones = kept+st.RecordsKept, dropped+st.RecordsDropped, tombstones+st.TombstonesDropped
				want := loadedFrom(t, log.mirror, clk.now)
				if got := loadedFrom(t, log, clk.now); got != want {
					t.Fatalf("seed %d op %d: loaded from the cleaned log:\n%s\nwant (uncleaned):\n%s", seed, op, got, want)
				}
			}
		}
		c.Close()
	}
	if dropped == 0 || tombstones == 0 {
		t.Fatalf("passes kept %d records and dropped %d, %d of them tombstones: want both kinds dropped", kept, dropped, tombstones)
	}
	t.Logf("passes kept %d records, dropped %d (%d tombstones)", kept, dropped, tombstones)
}
