package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"testing"
	"time"
)

// rec is one record as a consumer sees it.
type rec struct {
	off        int64
	key, value string
	tombstone  bool
}

func (r rec) String() string { return fmt.Sprintf("%d:%s=%s(t%v)", r.off, r.key, r.value, r.tombstone) }

// appendKVs appends one uncompressed batch of kvs at timestamp ts.
func appendKVs(t testing.TB, l *Log, kvs []KV, ts int64) AppendInfo {
	t.Helper()
	b, err := BuildBatch(kvs, ts)
	if err != nil {
		t.Fatal(err)
	}
	return appendRaw(t, l, b)
}

func appendRaw(t testing.TB, l *Log, b []byte) AppendInfo {
	t.Helper()
	hs, err := ValidateBatches(b, 0)
	if err != nil {
		t.Fatal(err)
	}
	info, err := l.Append(b, hs, 3, -1)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

// viewOf decodes every record from the log start to its end, checking
// that every batch is valid (length, CRC, records) on the way.
func viewOf(t testing.TB, l *Log) []rec {
	t.Helper()
	if l.StartOffset() == l.EndOffset() {
		return nil
	}
	b, err := l.ReadBatches(l.StartOffset(), math.MaxInt32)
	if err != nil {
		t.Fatal(err)
	}
	// The framing and CRC a follower checks; a cleaned batch may hold
	// fewer records than its offset range, which a producer's may not.
	if _, err := ValidateFetchedBatches(b); err != nil {
		t.Fatalf("log holds an invalid batch: %v", err)
	}
	var out []rec
	for p := 0; p < len(b); {
		h := parseHeader(b[p:])
		err := EachRecord(b[p:p+h.Size()], func(r Record) error {
			out = append(out, rec{off: r.Offset, key: string(r.Key), value: string(r.Value), tombstone: r.Value == nil})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		p += h.Size()
	}
	return out
}

// latestOf replays a view: each key's last value; a tombstone deletes.
func latestOf(v []rec) map[string]string {
	m := map[string]string{}
	for _, r := range v {
		if r.tombstone {
			delete(m, r.key)
		} else {
			m[r.key] = r.value
		}
	}
	return m
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// checkCleaned asserts what compaction promises against the view before
// the pass: the same latest values; every record kept is the one that was
// at its offset; nothing at or above keepFrom was dropped; below mapEnd no
// record is left that a later one below mapEnd supersedes.
func checkCleaned(t *testing.T, pre, post []rec, keepFrom, mapEnd int64) {
	t.Helper()
	if !equalMaps(latestOf(pre), latestOf(post)) {
		t.Fatalf("latest values differ after cleaning:\npre  %v\npost %v", latestOf(pre), latestOf(post))
	}
	byOff := map[int64]rec{}
	last := map[string]int64{}
	for _, r := range pre {
		byOff[r.off] = r
		if r.off < mapEnd {
			last[r.key] = r.off // what the pass's map saw
		}
	}
	kept := map[int64]bool{}
	for i, r := range post {
		if byOff[r.off] != r {
			t.Fatalf("record %v was not in the log before (there: %v)", r, byOff[r.off])
		}
		if i > 0 && r.off <= post[i-1].off {
			t.Fatalf("offsets out of order: %v after %v", r, post[i-1])
		}
		if r.off < mapEnd && last[r.key] != r.off {
			t.Fatalf("superseded record %v kept (latest of its key at %d)", r, last[r.key])
		}
		kept[r.off] = true
	}
	for _, r := range pre {
		if r.off >= keepFrom && !kept[r.off] {
			t.Fatalf("record %v above the cleanable range was dropped", r)
		}
	}
}

func cleanConfig() Config {
	return Config{SegmentBytes: 2048, IndexIntervalBytes: 128, RetentionBytes: -1, RetentionMs: -1}
}

// fillRandom appends n batches of 1-4 records over keys k0..k(keys-1),
// one in tombstoneEvery a tombstone.
func fillRandom(t *testing.T, l *Log, rng *rand.Rand, c *clock, n, keys, tombstoneEvery int) {
	t.Helper()
	for i := 0; i < n; i++ {
		var kvs []KV
		for j := rng.IntN(4); j >= 0; j-- {
			kv := KV{Key: fmt.Appendf(nil, "k%d", rng.IntN(keys))}
			if tombstoneEvery == 0 || rng.IntN(tombstoneEvery) != 0 {
				kv.Value = fmt.Appendf(nil, "v%d-%d", i, j)
			}
			kvs = append(kvs, kv)
		}
		appendKVs(t, l, kvs, c.now().UnixMilli())
		c.advance(time.Millisecond)
	}
}

func TestCleanRandomized(t *testing.T) {
	for seed := uint64(1); seed <= 8; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			fs, c := NewMemFS(), newClock()
			l := openLog(t, fs, testDir, cleanConfig(), c)
			defer func() { _ = l.Close() }()
			for round := 0; round < 3; round++ {
				fillRandom(t, l, rng, c, 150+rng.IntN(150), 5+rng.IntN(60), 5)
				pre := viewOf(t, l)
				active := l.active().base
				var paced int64
				st, err := l.Clean(CleanOptions{DeleteRetentionMs: 10, Throttle: func(n int) { paced += int64(n) }})
				if err != nil {
					t.Fatal(err)
				}
				if paced != st.MapBytesRead+st.BytesRead+st.BytesWritten {
					t.Fatalf("the throttle was told of %d bytes, the pass moved %+v", paced, st)
				}
				post := viewOf(t, l)
				checkCleaned(t, pre, post, active, st.EndOffset)
				if st.EndOffset != active || st.RecordsDropped == 0 || st.BytesWritten >= st.BytesRead {
					t.Fatalf("round %d: %+v (active segment at %d)", round, st, active)
				}
				checkEveryPosition(t, l, pre, post)
				// What was written survives a restart as it is.
				if err := l.Close(); err != nil {
					t.Fatal(err)
				}
				l = openLog(t, fs, testDir, cleanConfig(), c)
				if len(l.Gaps()) > 0 {
					t.Fatalf("reopened cleaned log reports gaps: %+v", l.Gaps())
				}
				if again := viewOf(t, l); fmt.Sprint(again) != fmt.Sprint(post) {
					t.Fatalf("view changed across a restart")
				}
				c.advance(time.Second) // past delete.retention.ms for the next round
			}
		})
	}
}

// checkEveryPosition reads at every offset the log had before cleaning: a
// consumer positioned there must get the first surviving record at or
// after it.
func checkEveryPosition(t *testing.T, l *Log, pre, post []rec) {
	t.Helper()
	for _, r := range pre {
		b, err := l.ReadBatches(r.off, 1)
		if err != nil {
			t.Fatalf("read at %d: %v", r.off, err)
		}
		var first *rec
		for p := 0; p < len(b) && first == nil; {
			h := parseHeader(b[p:])
			_ = EachRecord(b[p:p+h.Size()], func(x Record) error {
				if first == nil && x.Offset >= r.off {
					first = &rec{off: x.Offset, key: string(x.Key), value: string(x.Value), tombstone: x.Value == nil}
				}
				return nil
			})
			p += h.Size()
		}
		var want *rec
		for i := range post {
			if post[i].off >= r.off {
				want = &post[i]
				break
			}
		}
		if want != nil && first != nil && *first != *want {
			t.Fatalf("read at %d: first record %v, want %v", r.off, *first, *want)
		}
	}
}

func TestCleanTombstonesAfterDeleteRetention(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	opts := CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}
	// pass writes kvs into a new segment after advancing the clock by
	// age, and cleans.
	pass := func(age time.Duration, kvs ...KV) CleanStats {
		c.advance(age)
		appendKVs(t, l, kvs, c.now().UnixMilli())
		rollTo(t, l, c)
		st, err := l.Clean(opts)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	pass(0, KV{Key: []byte("a"), Value: []byte("1")}, KV{Key: []byte("b"), Value: []byte("1")}, KV{Key: []byte("a")})
	if v := viewOf(t, l); !hasTombstone(v, "a") {
		t.Fatalf("first pass dropped the tombstone: %v", v)
	}
	// Two hours on, the clean section still ends with segments written
	// with the tombstone's: it stays.
	pass(2*time.Hour, KV{Key: []byte("c"), Value: []byte("1")})
	if v := viewOf(t, l); !hasTombstone(v, "a") {
		t.Fatalf("tombstone dropped before its clean segment aged: %v", v)
	}
	// Now the clean section ends with a segment written two hours after
	// the tombstone's, more than delete.retention.ms.
	st := pass(2*time.Hour, KV{Key: []byte("d"), Value: []byte("1")})
	if v := viewOf(t, l); hasTombstone(v, "a") || st.TombstonesDropped != 1 {
		t.Fatalf("tombstone kept past delete.retention.ms: %v %+v", v, st)
	}
}

func hasTombstone(v []rec, key string) bool {
	for _, r := range v {
		if r.key == key && r.tombstone {
			return true
		}
	}
	return false
}

// rollTo fills the active segment with an unrelated key until it rolls.
func rollTo(t *testing.T, l *Log, c *clock) {
	t.Helper()
	for n := l.NumSegments(); l.NumSegments() == n; {
		appendKVs(t, l, []KV{{Key: []byte("filler"), Value: bytes.Repeat([]byte("x"), 300)}}, c.now().UnixMilli())
	}
}

func TestCleanMinCompactionLagAndMaxOffset(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	rng := rand.New(rand.NewPCG(3, 3))
	fillRandom(t, l, rng, c, 100, 10, 0)
	old := l.active().base
	c.advance(time.Hour)
	fillRandom(t, l, rng, c, 100, 10, 0)
	pre := viewOf(t, l)
	st, err := l.Clean(CleanOptions{MinCompactionLagMs: time.Minute.Milliseconds()})
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset > old {
		t.Fatalf("cleaned up to %d, into segments younger than the lag (from %d)", st.EndOffset, old)
	}
	checkCleaned(t, pre, viewOf(t, l), old, st.EndOffset)

	pre = viewOf(t, l)
	hw := l.EndOffset() - 150
	st, err = l.Clean(CleanOptions{MaxOffset: hw})
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset > hw {
		t.Fatalf("cleaned up to %d, above MaxOffset %d", st.EndOffset, hw)
	}
	checkCleaned(t, pre, viewOf(t, l), hw, st.EndOffset)
}

func TestCleanDedupeBufferFull(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	rng := rand.New(rand.NewPCG(4, 4))
	fillRandom(t, l, rng, c, 300, 1000, 0)
	active := l.active().base
	pre := viewOf(t, l)
	opts := CleanOptions{DedupeBufferBytes: 60 * (offsetMapEntryOverhead + 4)}
	st, err := l.Clean(opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.EndOffset >= active || st.EndOffset <= 0 {
		t.Fatalf("a full map cleaned up to %d (active at %d)", st.EndOffset, active)
	}
	checkCleaned(t, pre, viewOf(t, l), st.EndOffset, st.EndOffset)
	if got := l.CleanerCheckpoint(); got != st.EndOffset {
		t.Fatalf("checkpoint %d, pass ended at %d", got, st.EndOffset)
	}
	// Passes go on from the checkpoint until the dirty section is done.
	for i := 0; st.EndOffset < active; i++ {
		if i > 100 {
			t.Fatal("passes make no progress")
		}
		pre = viewOf(t, l)
		prev := st.EndOffset
		if st, err = l.Clean(opts); err != nil {
			t.Fatal(err)
		}
		if st.FirstDirtyOffset != prev || st.EndOffset <= prev {
			t.Fatalf("pass from %d to %d after one that ended at %d", st.FirstDirtyOffset, st.EndOffset, prev)
		}
		checkCleaned(t, pre, viewOf(t, l), st.EndOffset, 0)
	}
	if _, err := l.Clean(CleanOptions{DedupeBufferBytes: 10}); err != nil {
		t.Fatalf("nothing dirty, yet: %v", err)
	}
	fillRandom(t, l, rng, c, 50, 1000, 0)
	if _, err := l.Clean(CleanOptions{DedupeBufferBytes: 10}); err == nil {
		t.Fatal("a map too small for one batch went unreported")
	}
}

func TestDirtiness(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	if d := l.Dirtiness(CleanOptions{}); d.Ratio != 0 || d.FirstDirtyTimestamp != -1 {
		t.Fatalf("empty log: %+v", d)
	}
	rng := rand.New(rand.NewPCG(5, 5))
	fillRandom(t, l, rng, c, 100, 10, 0)
	d := l.Dirtiness(CleanOptions{})
	if d.Ratio != 1 || d.CleanBytes != 0 || d.FirstDirtyOffset != 0 || d.FirstDirtyTimestamp != newClock().now().UnixMilli() {
		t.Fatalf("all dirty: %+v", d)
	}
	if _, err := l.Clean(CleanOptions{}); err != nil {
		t.Fatal(err)
	}
	if d := l.Dirtiness(CleanOptions{}); d.Ratio != 0 || d.DirtyBytes != 0 || d.FirstDirtyOffset != l.active().base {
		t.Fatalf("all clean: %+v", d)
	}
	fillRandom(t, l, rng, c, 100, 10, 0)
	if d := l.Dirtiness(CleanOptions{}); d.Ratio <= 0 || d.Ratio >= 1 || l.DirtyRatio(CleanOptions{}) != d.Ratio {
		t.Fatalf("partly dirty: %+v", d)
	}
	// Dirty data a pass may not clean yet does not count.
	if d := l.Dirtiness(CleanOptions{MinCompactionLagMs: time.Hour.Milliseconds()}); d.DirtyBytes != 0 || d.Ratio != 0 {
		t.Fatalf("dirty segments within min.compaction.lag.ms counted: %+v", d)
	}
	if d := l.Dirtiness(CleanOptions{MaxOffset: l.StartOffset() + 1}); d.DirtyBytes != 0 {
		t.Fatalf("dirty segments above MaxOffset counted: %+v", d)
	}
}

func TestCleanAbortsWhenTheLogChanges(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	rng := rand.New(rand.NewPCG(6, 6))
	fillRandom(t, l, rng, c, 200, 10, 0)
	cut := l.active().base - 5
	truncated := false
	opts := CleanOptions{Throttle: func(int) {
		if !truncated {
			truncated = true
			if err := l.TruncateTo(cut); err != nil {
				t.Error(err)
			}
		}
	}}
	if _, err := l.Clean(opts); !errors.Is(err, ErrCleanAborted) {
		t.Fatalf("clean racing a truncation: %v", err)
	}
	for _, r := range viewOf(t, l) {
		if r.off >= cut {
			t.Fatalf("record %v past the truncation", r)
		}
	}
	names, _ := fs.ReadDir(testDir)
	for _, n := range names {
		if bytes.HasSuffix([]byte(n), []byte(cleanedSuffix)) || bytes.HasSuffix([]byte(n), []byte(swapSuffix)) {
			t.Fatalf("aborted pass left %s", n)
		}
	}
	if _, err := l.Clean(CleanOptions{}); err != nil {
		t.Fatalf("pass after an aborted one: %v", err)
	}
}

// TestCleanWhileAppendingAndReading runs passes while a producer appends,
// a consumer reads from the start and a flusher flushes (under the race
// detector this checks the locking), then checks the result as usual.
func TestCleanWhileAppendingAndReading(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	rng := rand.New(rand.NewPCG(9, 9))
	fillRandom(t, l, rng, c, 100, 20, 5)
	done := make(chan struct{})
	errs := make(chan error, 3)
	// loop runs step until done or its first error.
	loop := func(step func() error) {
		for {
			select {
			case <-done:
				errs <- nil
				return
			default:
			}
			if err := step(); err != nil {
				errs <- err
				return
			}
		}
	}
	go loop(func() error { // a consumer reading the whole log
		for off := l.StartOffset(); off < l.EndOffset(); {
			r, err := l.Read(off, 4096, math.MaxInt64, true)
			if err != nil {
				return err
			}
			for _, fr := range r.Ranges {
				if n, err := fr.File.ReadAt(make([]byte, fr.Length), fr.Offset); int64(n) != fr.Length {
					return fmt.Errorf("reading a range at %d: %d bytes, %w", off, n, err)
				}
			}
			r.Release()
			if r.Next <= off {
				break
			}
			off = r.Next
		}
		return nil
	})
	go loop(l.Flush)
	for i := 0; i < 5; i++ {
		fillRandom(t, l, rng, c, 40, 20, 5) // the producer, between and during passes
		full := viewOf(t, l)
		stop := make(chan struct{})
		go func() {
			defer close(stop)
			if _, err := l.Clean(CleanOptions{}); err != nil {
				errs <- err
			}
		}()
		more := rand.New(rand.NewPCG(uint64(i), 1))
		for j := 0; j < 20; j++ {
			key := fmt.Sprintf("k%d", more.IntN(20))
			info := appendKVs(t, l, []KV{{Key: []byte(key), Value: []byte("during")}}, c.now().UnixMilli())
			full = append(full, rec{off: info.FirstOffset, key: key, value: "during"})
		}
		<-stop
		checkCleaned(t, full, viewOf(t, l), math.MaxInt64, 0)
	}
	close(done)
	for i := 0; i < 2; i++ {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	select {
	case err := <-errs:
		t.Fatal(err)
	default:
	}
}

// TestCleanOnOSFS runs a pass on the real file system: a read taken before
// it still reads the old bytes through its descriptors, no cleaner file is
// left, and a cleaned segment keeps the modification time of the newest
// segment it replaced (the tombstone horizon is measured from it).
func TestCleanOnOSFS(t *testing.T) {
	dir := t.TempDir()
	c := newClock()
	l := openLog(t, OSFS(), dir, cleanConfig(), c)
	defer l.Close()
	fillRandom(t, l, rand.New(rand.NewPCG(10, 10)), c, 150, 10, 5)
	old := time.Now().Add(-48 * time.Hour).Truncate(time.Second)
	for _, s := range l.segs[:len(l.segs)-1] {
		if err := os.Chtimes(segName(dir, s.base, ".log"), old, old); err != nil {
			t.Fatal(err)
		}
	}
	want := readEverything(t, l)
	r, err := l.Read(0, math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Release()
	if _, err := l.Clean(CleanOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, r); !bytes.Equal(got, want) {
		t.Fatal("a read taken before the pass changed under its holder")
	}
	names, _ := OSFS().ReadDir(dir)
	for _, n := range names {
		if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) || strings.HasSuffix(n, deletedSuffix) {
			t.Fatalf("the pass left %s", n)
		}
	}
	st, err := os.Stat(segName(dir, 0, ".log"))
	if err != nil {
		t.Fatal(err)
	}
	if !st.ModTime().Equal(old) {
		t.Fatalf("cleaned segment modified at %v, the segments it replaced at %v", st.ModTime(), old)
	}
}
