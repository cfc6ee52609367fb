package coordinator

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

// The measurement of issue 18: how long the coordinator takes to load its
// partition of __consumer_offsets as commits accumulate, on the log as
// written and on the same log compacted. It writes gigabytes, so it runs
// only when asked:
//
//	SLUICE_REPLAY_MEASURE=1 go test -run TestMeasureReplay -v -timeout 2h ./coordinator/
//
// SLUICE_REPLAY_COMMITS overrides the checkpoints (default
// 1000000,5000000,10000000 offset-commit records). Results are in
// perf/results/compaction/offsets-replay.md.

const (
	measureReps       = 5   // loads timed per log
	measureGroups     = 100 // groups, each committing ...
	measurePartitions = 10  // ... the partitions of one topic: 1,000 group-partitions
)

// measureLog is one partition of __consumer_offsets on the real file
// system, loaded by a coordinator through ReplayPartition.
type measureLog struct{ p *replica.Partition }

func (l measureLog) Leads(int32) bool                { return true }
func (l measureLog) Open(bool, int32) (int32, error) { return 1, nil }
func (l measureLog) Append(int32, []Record) error    { return fmt.Errorf("read-only") }
func (l measureLog) Replay(_ int32, fn func(Record) error) error {
	return ReplayPartition(l.p.Read, l.p.LogStartOffset(), l.p.HighWatermark(), fn)
}

// commitBatch is one group's OffsetCommit of all its partitions as the
// coordinator writes it: one batch, one OffsetCommitValue per partition.
func commitBatch(t testing.TB, groupID string, off int64, at time.Time) []byte {
	kvs := make([]segment.KV, measurePartitions)
	for p := range int32(measurePartitions) {
		r := offsetRecord(groupID, "orders", p, &offset{Offset: off, LeaderEpoch: 3, Metadata: "", CommitTime: at})
		kvs[p] = segment.KV{Key: r.Key, Value: r.Value}
	}
	b, err := segment.BuildBatch(kvs, at.UnixMilli())
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// loadTimes are the wall-clock and CPU (user+system, the whole process)
// times of loads, sorted.
type loadTimes struct{ wall, cpu []time.Duration }

func (l loadTimes) String() string {
	r := time.Millisecond
	if l.wall[0] < 10*time.Millisecond {
		r = time.Microsecond
	}
	m := len(l.wall) / 2
	return fmt.Sprintf("%v / %v / %v", l.wall[0].Round(r), l.wall[m].Round(r), l.cpu[m].Round(r))
}

func cpuTime(t testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		t.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// timeLoad loads a coordinator from p reps times and returns the times
// and what it loaded.
func timeLoad(t testing.TB, p *replica.Partition, reps int) (times loadTimes, groups, offsets int) {
	for range reps {
		runtime.GC()
		c := New(testConfig(), measureLog{p}, testImage, nil, slog.New(slog.NewTextHandler(io.Discard, nil)))
		began, cpu := time.Now(), cpuTime(t)
		if err := c.Load(); err != nil {
			t.Fatal(err)
		}
		times.wall = append(times.wall, time.Since(began))
		times.cpu = append(times.cpu, cpuTime(t)-cpu)
		groups, offsets = 0, 0
		for _, e := range c.entries() {
			groups++
			for _, ps := range e.offsets {
				offsets += len(ps)
			}
		}
		c.Close()
	}
	slices.Sort(times.wall)
	slices.Sort(times.cpu)
	return times, groups, offsets
}

func TestMeasureReplay(t *testing.T) {
	if os.Getenv("SLUICE_REPLAY_MEASURE") == "" {
		t.Skip("set SLUICE_REPLAY_MEASURE=1 to measure (writes gigabytes)")
	}
	checkpoints := []int64{1_000_000, 5_000_000, 10_000_000}
	if s := os.Getenv("SLUICE_REPLAY_COMMITS"); s != "" {
		checkpoints = nil
		for _, f := range strings.Split(s, ",") {
			n, err := strconv.ParseInt(f, 10, 64)
			if err != nil {
				t.Fatal(err)
			}
			checkpoints = append(checkpoints, n)
		}
	}
	// A fake clock, one second per round of commits, so segment.ms can
	// roll the cleaned log's active segment when the test says.
	var clock atomic.Int64
	clock.Store(time.Unix(1_700_000_000, 0).UnixNano())
	now := func() time.Time { return time.Unix(0, clock.Load()) }
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	// As broker/groups.go creates the topic: 100 MiB segments.
	cfg := replica.Config{Log: segment.Config{SegmentBytes: 100 << 20, SegmentMs: time.Hour.Milliseconds()}}
	open := func(dir string) *replica.Partition {
		p, err := replica.Open(segment.OSFS(), dir, OffsetsTopic, 0, 0, cfg, now, quiet)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = p.Close() })
		return p
	}
	dir := t.TempDir()
	raw, cleaned := open(dir+"/raw"), open(dir+"/cleaned")
	ids := make([]string, measureGroups)
	for g := range ids {
		ids[g] = fmt.Sprintf("consumer-group-%03d", g)
	}
	// Kafka's default delete.retention.ms; no tombstones here anyway.
	opts := segment.CleanOptions{DeleteRetentionMs: 24 * time.Hour.Milliseconds()}
	fmt.Printf("| commits | log as written | load: fastest / median wall / median CPU of %d | cleaned, active segment dirty | load | cleaned, active segment rolled and cleaned | load | groups / offsets loaded |\n", measureReps)
	fmt.Printf("|---|---|---|---|---|---|---|---|\n")
	var written, round int64
	for _, target := range checkpoints {
		began := time.Now()
		for written < target {
			at := now()
			for _, id := range ids {
				b := commitBatch(t, id, round, at)
				if _, err := raw.Append(b); err != nil {
					t.Fatal(err)
				}
				if _, err := cleaned.Append(b); err != nil {
					t.Fatal(err)
				}
				written += measurePartitions
			}
			round++
			clock.Add(int64(time.Second))
		}
		build := time.Since(began)
		rawT, g, o := timeLoad(t, raw, measureReps)
		// As the cleaner would leave it: everything but the active
		// segment clean.
		cleanBegan := time.Now()
		st1, err := cleaned.Clean(opts)
		if err != nil {
			t.Fatal(err)
		}
		clean1 := time.Since(cleanBegan)
		size1 := cleaned.Size()
		c1T, g1, o1 := timeLoad(t, cleaned, measureReps)
		// And with the dirty part gone: segment.ms rolls the active
		// segment, and a pass cleans it too.
		clock.Add(int64(2 * time.Hour))
		if _, err := cleaned.RollIfDue(); err != nil {
			t.Fatal(err)
		}
		st2, err := cleaned.Clean(opts)
		if err != nil {
			t.Fatal(err)
		}
		c2T, g2, o2 := timeLoad(t, cleaned, measureReps)
		if g1 != g || g2 != g || o1 != o || o2 != o {
			t.Fatalf("loaded %d/%d groups/offsets as written, %d/%d and %d/%d cleaned", g, o, g1, o1, g2, o2)
		}
		fmt.Printf("| %d | %s | %v | %s | %v | %s | %v | %d / %d |\n",
			written, mib(raw.Size()), rawT, mib(size1), c1T, mib(cleaned.Size()), c2T, g, o)
		t.Logf("%d commits: built in %v; first pass %v (%d segments read, %d written, %s read, %d records dropped); second pass %d records dropped; %d segments left",
			written, build.Round(time.Millisecond), clean1.Round(time.Millisecond), st1.SegmentsRead, st1.SegmentsWritten, mib(st1.BytesRead), st1.RecordsDropped,
			st2.RecordsDropped, cleaned.NumSegments())
	}
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }
