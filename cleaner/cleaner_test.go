package cleaner

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/internal/clock"
	"github.com/sluice-io/sluice/replica"
	"github.com/sluice-io/sluice/segment"
)

var t0 = time.UnixMilli(1_700_000_000_000)

func TestChoose(t *testing.T) {
	nowMs := t0.UnixMilli()
	m := func(ratio float64, dirty, firstTs int64, minRatio float64, maxLag int64) measured {
		return measured{
			c:     Candidate{Settings: Settings{MinCleanableRatio: minRatio, MaxCompactionLagMs: maxLag}},
			dirty: segment.Dirtiness{Ratio: ratio, DirtyBytes: dirty, FirstDirtyTimestamp: firstTs},
		}
	}
	const never = 1 << 62
	for _, tc := range []struct {
		name string
		ms   []measured
		want int
	}{
		{"nothing", nil, -1},
		{"below the ratio", []measured{m(0.4, 100, nowMs, 0.5, never)}, -1},
		{"at the ratio", []measured{m(0.5, 100, nowMs, 0.5, never)}, 0},
		{"dirtiest first", []measured{m(0.6, 100, nowMs, 0.5, never), m(0.9, 100, nowMs, 0.5, never), m(0.7, 100, nowMs, 0.5, never)}, 1},
		{"each topic its own ratio", []measured{m(0.6, 100, nowMs, 0.8, never), m(0.3, 100, nowMs, 0.2, never)}, 1},
		{"max compaction lag passed: cleaned below the ratio", []measured{m(0.1, 100, nowMs-1001, 0.5, 1000)}, 0},
		{"max compaction lag not passed", []measured{m(0.1, 100, nowMs-999, 0.5, 1000)}, -1},
		{"max compaction lag passed but nothing cleanable", []measured{m(0, 0, nowMs-5000, 0.5, 1000)}, -1},
		{"no dirty timestamp", []measured{m(0.1, 100, -1, 0.5, 1000)}, -1},
		{"a ratio with no bytes", []measured{m(1, 0, nowMs, 0.5, never)}, -1},
		{"ties go to the first", []measured{m(0.7, 100, nowMs, 0.5, never), m(0.7, 100, nowMs, 0.5, never)}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := choose(tc.ms, nowMs); got != tc.want {
				t.Fatalf("choose = %d, want %d", got, tc.want)
			}
		})
	}
}

// fakeLog is a Log whose dirtiness is set by the test and whose passes
// are recorded.
type fakeLog struct {
	mu     sync.Mutex
	dirty  segment.Dirtiness
	passes []segment.CleanOptions
	err    error
	// during, when set, runs inside Clean (with the options).
	during func(segment.CleanOptions)
}

func (l *fakeLog) Dirtiness(segment.CleanOptions) segment.Dirtiness {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.dirty
}

func (l *fakeLog) Clean(opts segment.CleanOptions) (segment.CleanStats, error) {
	l.mu.Lock()
	l.passes = append(l.passes, opts)
	during, err := l.during, l.err
	l.mu.Unlock()
	if during != nil {
		during(opts)
	}
	if err != nil {
		return segment.CleanStats{}, err
	}
	l.mu.Lock()
	l.dirty = segment.Dirtiness{FirstDirtyTimestamp: -1} // clean now
	l.mu.Unlock()
	return segment.CleanStats{BytesRead: 1000, BytesWritten: 250, RecordsDropped: 30, EndOffset: 10}, nil
}

func (l *fakeLog) count() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.passes)
}

func dirtyLog(ratio float64) *fakeLog {
	return &fakeLog{dirty: segment.Dirtiness{Ratio: ratio, DirtyBytes: 1000, FirstDirtyTimestamp: t0.UnixMilli()}}
}

func newCleaner(clk clock.Clock, threads int, cands ...Candidate) *Cleaner {
	return New(Config{Threads: threads, DedupeBufferBytes: 64 << 20, Clock: clk, Backoff: time.Second,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Candidates: func() []Candidate { return cands }})
}

func cand(name string, l Log, s Settings) Candidate {
	return Candidate{Topic: name, Partition: 0, Log: l, Settings: s}
}

// Each step cleans the dirtiest due log with the topic's settings and the
// thread's share of the dedupe buffer, and counts the pass; a log that
// became clean is not cleaned again.
func TestStepCleansTheDirtiestAndCounts(t *testing.T) {
	a, b := dirtyLog(0.6), dirtyLog(0.9)
	s := Settings{MinCleanableRatio: 0.5, MinCompactionLagMs: 7, DeleteRetentionMs: 99, MaxCompactionLagMs: 1 << 62}
	c := newCleaner(clock.NewFake(t0), 2, cand("a", a, s), cand("b", b, s))
	if !c.Step(0) || b.count() != 1 || a.count() != 0 {
		t.Fatalf("first step cleaned a %d times, b %d times; want b (dirtier) once", a.count(), b.count())
	}
	if o := b.passes[0]; o.MinCompactionLagMs != 7 || o.DeleteRetentionMs != 99 || o.DedupeBufferBytes != 32<<20 || o.Throttle == nil {
		t.Fatalf("pass options %+v: want the topic's lags, half the dedupe buffer, a throttle", o)
	}
	if !c.Step(1) || a.count() != 1 {
		t.Fatal("second step did not clean a")
	}
	if c.Step(0) {
		t.Fatal("a step cleaned a log that is clean")
	}
	st := c.Stats()
	if st.Runs != 2 || st.BytesRead != 2000 || st.BytesWritten != 500 || st.RecopyRatio != 0.25 || st.RecordsDropped != 60 || st.LastRun.IsZero() {
		t.Fatalf("stats %+v", st)
	}
	for _, ps := range st.Partitions {
		if ps.LastCleaned.IsZero() || ps.Uncleanable {
			t.Fatalf("partition stats %+v", ps)
		}
	}
}

// A log being cleaned by one thread is not handed to another.
func TestBusyLogIsNotCleanedTwice(t *testing.T) {
	l := dirtyLog(0.9)
	c := newCleaner(clock.NewFake(t0), 2, cand("a", l, Settings{MinCleanableRatio: 0.5}))
	inside, release := make(chan struct{}), make(chan struct{})
	l.during = func(segment.CleanOptions) { close(inside); <-release }
	done := make(chan bool)
	go func() { done <- c.Step(0) }()
	<-inside
	l.mu.Lock()
	l.during = nil
	l.mu.Unlock()
	if c.Step(1) {
		t.Fatal("a second thread took the log being cleaned")
	}
	close(release)
	if !<-done {
		t.Fatal("the first step did not report its pass")
	}
}

// A failed pass marks the partition uncleanable: it is skipped, counted
// and the others still get cleaned. An aborted pass (the log changed under
// it) or a closed partition is not a failure.
func TestFailuresAndAborts(t *testing.T) {
	for _, tc := range []struct {
		err         error
		uncleanable bool
	}{
		{fmt.Errorf("clean t-0: %w", segment.ErrLogPoisoned), true},
		{errors.New("disk on fire"), true},
		{fmt.Errorf("clean t-0: %w", segment.ErrCleanAborted), false},
		{fmt.Errorf("clean t-0: %w", replica.ErrClosed), false},
	} {
		t.Run(tc.err.Error(), func(t *testing.T) {
			bad, good := dirtyLog(0.9), dirtyLog(0.6)
			bad.err = tc.err
			s := Settings{MinCleanableRatio: 0.5}
			c := newCleaner(clock.NewFake(t0), 1, cand("bad", bad, s), cand("good", good, s))
			c.Step(0)
			c.Step(0)
			st := c.Stats()
			var badStats PartitionStats
			for _, ps := range st.Partitions {
				if ps.Topic == "bad" {
					badStats = ps
				}
			}
			if badStats.Uncleanable != tc.uncleanable || (st.Failures == 1) != tc.uncleanable {
				t.Fatalf("uncleanable %v, failures %d; want uncleanable %v", badStats.Uncleanable, st.Failures, tc.uncleanable)
			}
			// A failure leaves the other log to the second step; an
			// abort leaves the log due, and still the dirtiest.
			wantBad, wantGood := 2, 0
			if tc.uncleanable {
				wantBad, wantGood = 1, 1
			}
			if bad.count() != wantBad || good.count() != wantGood {
				t.Fatalf("bad cleaned %d times, good %d; want %d and %d", bad.count(), good.count(), wantBad, wantGood)
			}
		})
	}
}

// All passes together move at most log.cleaner.io.max.bytes.per.second:
// a pass that used up the rate waits, on the cleaner's clock, until it is
// earned back.
func TestThrottlePacesPasses(t *testing.T) {
	clk := clock.NewFake(t0)
	l := dirtyLog(0.9)
	l.during = func(o segment.CleanOptions) {
		for range 3 {
			o.Throttle(1000) // 3000 bytes at 1000 B/s: a full bucket, then 2 s
		}
	}
	c := New(Config{Threads: 1, IOMaxBytesPerSecond: 1000, Clock: clk, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Candidates: func() []Candidate { return []Candidate{cand("a", l, Settings{MinCleanableRatio: 0.5})} }})
	done := make(chan struct{})
	go func() { c.Step(0); close(done) }()
	waited := time.Duration(0)
	for {
		select {
		case <-done:
			if waited < 2*time.Second || waited > 3*time.Second {
				t.Fatalf("the pass waited %v on the clock, want about 2s", waited)
			}
			return
		default:
		}
		if clk.Pending() > 0 {
			clk.Advance(100 * time.Millisecond)
			waited += 100 * time.Millisecond
		} else {
			time.Sleep(time.Millisecond)
		}
	}
}
