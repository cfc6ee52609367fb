package segment

import (
	"bytes"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ageRolledLog opens a log on fs that rolls by age only, every segmentMs.
func ageRolledLog(t *testing.T, fs FS, segmentMs int64) (*Log, *clock, Config) {
	t.Helper()
	c := newClock()
	cfg := testConfig()
	cfg.SegmentBytes, cfg.SegmentMs = 1<<20, segmentMs
	return openLog(t, fs, testDir, cfg, c), c, cfg
}

// spin runs f in a goroutine (counted in wg) until stop closes or f
// returns false.
func spin(wg *sync.WaitGroup, stop <-chan struct{}, f func() bool) {
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
				if !f() {
					return
				}
			}
		}
	}()
}

// noError reports a non-nil err as a test error; it says whether err was nil.
func noError(t *testing.T, err error) bool {
	if err != nil {
		t.Error(err)
	}
	return err == nil
}

// RollIfDue rolls a non-empty active segment once it is segment.ms old,
// to an empty one at the log end, and does nothing otherwise; the log
// reads the same and survives a restart without gaps.
func TestRollIfDue(t *testing.T) {
	fs := NewMemFS()
	l, c, cfg := ageRolledLog(t, fs, 1000)
	t0 := c.now()
	roll := func(at time.Duration, want bool) {
		t.Helper()
		rolled, err := l.RollIfDue(t0.Add(at))
		if err != nil || rolled != want {
			t.Fatalf("RollIfDue(+%v) = %v, %v; want %v", at, rolled, err, want)
		}
	}
	roll(time.Hour, false) // empty active segment
	batches := fill(t, l, 5, 0)
	roll(999*time.Millisecond, false)
	if l.NumSegments() != 1 {
		t.Fatalf("rolled early: %d segments", l.NumSegments())
	}
	leo := l.EndOffset()
	roll(1000*time.Millisecond, true)
	if l.NumSegments() != 2 || l.EndOffset() != leo || l.active().base != leo || l.active().size != 0 {
		t.Fatalf("after the roll: %d segments, LEO %d→%d, active at %d of %d bytes",
			l.NumSegments(), leo, l.EndOffset(), l.active().base, l.active().size)
	}
	roll(time.Hour, false) // the new active segment is empty
	// The new segment's age counts from the roll: an append right after
	// it goes into it.
	c.advance(1000 * time.Millisecond)
	batches = append(batches, fill(t, l, 3, 0)...)
	roll(1999*time.Millisecond, false)
	if l.NumSegments() != 2 {
		t.Fatalf("append after the roll rolled again: %d segments", l.NumSegments())
	}
	checkReadEveryOffset(t, l, batches)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := l.RollIfDue(t0.Add(time.Hour)); !errors.Is(err, ErrLogClosed) {
		t.Fatalf("RollIfDue on a closed log: %v", err)
	}
	l = openLog(t, fs, testDir, cfg, c)
	defer l.Close()
	if l.NumSegments() != 2 || len(l.Gaps()) != 0 || !bytes.Equal(readEverything(t, l), bytes.Join(batches, nil)) {
		t.Fatalf("after a restart: %d segments, gaps %+v", l.NumSegments(), l.Gaps())
	}
}

// Without segment.ms nothing rolls by age; a poisoned log refuses.
func TestRollIfDueDisabledOrPoisoned(t *testing.T) {
	c := newClock()
	l := openLog(t, NewMemFS(), testDir, testConfig(), c) // SegmentMs 0
	defer l.Close()
	fill(t, l, 3, 0)
	if rolled, err := l.RollIfDue(c.now().Add(1000 * time.Hour)); rolled || err != nil {
		t.Fatalf("SegmentMs 0: %v, %v", rolled, err)
	}
	cfg := testConfig()
	cfg.SegmentMs = 1
	l.SetConfig(cfg)
	_ = l.poison(errors.New("test"))
	if rolled, err := l.RollIfDue(c.now().Add(time.Hour)); rolled || !errors.Is(err, ErrLogPoisoned) || l.NumSegments() != 1 {
		t.Fatalf("poisoned: %v, %v, %d segments", rolled, err, l.NumSegments())
	}
}

// A crash right after a roll (nothing flushed since) loses nothing that
// was flushed and leaves no gap, with or without the new empty segment.
func TestRollIfDueThenCrash(t *testing.T) {
	fs := NewMemFS()
	l, c, cfg := ageRolledLog(t, fs, 1000)
	batches := fill(t, l, 4, 0)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
	if rolled, err := l.RollIfDue(c.now().Add(time.Second)); !rolled || err != nil {
		t.Fatalf("RollIfDue: %v, %v", rolled, err)
	}
	fs.Crash()
	l = openLog(t, fs, testDir, cfg, c)
	defer l.Close()
	if len(l.Gaps()) != 0 || !bytes.Equal(readEverything(t, l), bytes.Join(batches, nil)) {
		t.Fatalf("after a crash: LEO %d, gaps %+v", l.EndOffset(), l.Gaps())
	}
	more := fill(t, l, 2, 0)
	checkReadEveryOffset(t, l, append(batches, more...))
}

// What the roll is for: a compacted partition that stopped receiving
// writes has its last data in the active segment, which the cleaner never
// touches; once rolled, the cleaner cleans it.
func TestRollIfDueLetsTheCleanerCleanAQuietPartition(t *testing.T) {
	l, c, _ := ageRolledLog(t, NewMemFS(), 60_000)
	defer l.Close()
	for range 20 {
		appendSpec(t, l, batchSpec{records: 3, valSize: 50}) // keys key-0..key-2 again and again
	}
	size := l.Size()
	if st, err := l.Clean(CleanOptions{}); err != nil || st.RecordsDropped != 0 || l.Size() != size {
		t.Fatalf("clean before the roll: %+v, %v, size %d→%d", st, err, size, l.Size())
	}
	if rolled, err := l.RollIfDue(c.now().Add(time.Minute)); !rolled || err != nil {
		t.Fatalf("RollIfDue: %v, %v", rolled, err)
	}
	st, err := l.Clean(CleanOptions{})
	if err != nil || st.RecordsDropped != 57 || l.Size() >= size/4 {
		t.Fatalf("clean after the roll: %+v, %v, size %d→%d", st, err, size, l.Size())
	}
}

// RollIfDue is safe beside appends, reads, flushes and cleaning passes.
func TestRollIfDueConcurrent(t *testing.T) {
	l, c, _ := ageRolledLog(t, NewMemFS(), 10)
	defer l.Close()
	var wg sync.WaitGroup
	stop := make(chan struct{})
	// The log's own clock stands still, so appends never roll by age and
	// every roll by age is RollIfDue's.
	at := c.now()
	var rolls atomic.Int64
	spin(&wg, stop, func() bool {
		at = at.Add(5 * time.Millisecond)
		rolled, err := l.RollIfDue(at)
		if rolled {
			rolls.Add(1)
		}
		return noError(t, err)
	})
	spin(&wg, stop, func() bool {
		if leo := l.EndOffset(); leo > 0 {
			b, err := l.ReadBatches(leo/2, 4000)
			if err == nil {
				_, err = ValidateFetchedBatches(b)
			}
			return errors.Is(err, ErrOffsetOutOfRange) || noError(t, err)
		}
		return true
	})
	spin(&wg, stop, func() bool {
		_, err := l.Clean(CleanOptions{})
		return errors.Is(err, ErrCleanAborted) || noError(t, err)
	})
	for i := 0; i < 300 || rolls.Load() < 3; i++ {
		appendSpec(t, l, batchSpec{records: 1 + i%3, valSize: 40})
		if i%50 == 0 {
			if err := l.Flush(); err != nil {
				t.Error(err)
			}
		}
	}
	close(stop)
	wg.Wait()
	segmentsContiguous(t, l)
	if _, err := ValidateFetchedBatches(readEverything(t, l)); err != nil {
		t.Fatal(err)
	}
}
