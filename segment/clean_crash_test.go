package segment

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
)

var errCrashed = errors.New("crashed (test)")

// crashFS is a MemFS that crashes (MemFS.Crash) at its at-th durable
// step once armed: a rename, a removal, a file or directory fsync. From
// then on every operation of the old process fails; the test reopens the
// log on the MemFS itself, as the restarted broker would.
type crashFS struct {
	*MemFS
	mu      sync.Mutex
	armed   bool
	ops, at int
	crashed bool
}

func (c *crashFS) step() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.crashed {
		return errCrashed
	}
	if !c.armed {
		return nil
	}
	c.ops++
	if c.ops == c.at {
		c.Crash()
		c.crashed = true
		return errCrashed
	}
	return nil
}

func (c *crashFS) dead() bool { c.mu.Lock(); defer c.mu.Unlock(); return c.crashed }

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (File, error) {
	if c.dead() {
		return nil, errCrashed
	}
	f, err := c.MemFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	return crashFile{f, c}, nil
}

func (c *crashFS) Remove(name string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.Remove(name)
}

func (c *crashFS) Rename(from, to string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.Rename(from, to)
}

func (c *crashFS) SyncDir(dir string) error {
	if err := c.step(); err != nil {
		return err
	}
	return c.MemFS.SyncDir(dir)
}

type crashFile struct {
	File
	c *crashFS
}

func (f crashFile) Sync() error {
	if err := f.c.step(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f crashFile) Write(p []byte) (int, error) {
	if f.c.dead() {
		return 0, errCrashed
	}
	return f.File.Write(p)
}

// fillForCrash writes the same keyed records, tombstones included, into
// every log of the crash test, cleans them once (so that the segments
// shrink and the next pass groups several into one), writes more, and
// flushes.
func fillForCrash(t *testing.T, l *Log, c *clock) {
	rng := rand.New(rand.NewPCG(11, 12))
	fillRandom(t, l, rng, c, 120, 30, 6)
	if _, err := l.Clean(CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}); err != nil {
		t.Fatal(err)
	}
	fillRandom(t, l, rng, c, 60, 30, 6)
	if err := l.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestCleanCrashAtEveryStep kills the cleaner at each of its durable steps
// in turn and restarts the log: what it then serves is the log before the
// pass, or after it, or (between two groups' swaps) before it for some
// segments and after it for the others. Nothing is lost (each key's latest
// value is there), nothing is doubled, no offset moves, no cleaner file is
// left over, and a new pass brings it to the same result.
func TestCleanCrashAtEveryStep(t *testing.T) {
	opts := CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}
	cfg := cleanConfig()
	// The reference pass, uninterrupted.
	ref := openLog(t, NewMemFS(), testDir, cfg, newClock())
	fillForCrash(t, ref, newClock())
	pre := viewOf(t, ref)
	st, err := ref.Clean(opts)
	if err != nil {
		t.Fatal(err)
	}
	if st.SegmentsRead <= st.SegmentsWritten {
		t.Fatalf("the reference pass grouped no segments: %+v", st)
	}
	post := viewOf(t, ref)
	_ = ref.Close()
	if len(post) >= len(pre) {
		t.Fatalf("the reference pass dropped nothing: %d records of %d", len(post), len(pre))
	}
	states := map[string]bool{}
	for at := 1; ; at++ {
		mem := NewMemFS()
		cfs := &crashFS{MemFS: mem}
		c := newClock()
		l := openLog(t, cfs, testDir, cfg, c)
		fillForCrash(t, l, c)
		cfs.mu.Lock()
		cfs.armed, cfs.at = true, at
		cfs.mu.Unlock()
		_, err = l.Clean(opts)
		finished := !cfs.dead()
		if finished && err != nil {
			t.Fatalf("step %d: %v", at, err)
		}
		if !finished {
			_ = l.Close() // fails: the process is gone
		}
		mem.Crash() // a finished pass must be durable too
		var logBuf bytes.Buffer
		if l, err = Open(mem, testDir, cfg, c.now, slog.New(slog.NewTextHandler(&logBuf, nil))); err != nil {
			t.Fatalf("step %d: reopening: %v", at, err)
		}
		// Recovery may say it completed a swap, and nothing else: no
		// damage, no bytes ignored.
		for _, line := range strings.Split(strings.TrimSpace(logBuf.String()), "\n") {
			if line != "" && !strings.Contains(line, "completing an interrupted swap") {
				t.Fatalf("step %d: recovery reported: %s", at, line)
			}
		}
		v := viewOf(t, l)
		switch fmt.Sprint(v) {
		case fmt.Sprint(pre):
			states["before"] = true
		case fmt.Sprint(post):
			states["after"] = true
		default:
			states["between"] = true
		}
		checkBetween(t, at, pre, v, post)
		if len(l.Gaps()) > 0 {
			t.Fatalf("step %d: gaps after recovery: %+v", at, l.Gaps())
		}
		names, _ := mem.ReadDir(testDir)
		for _, n := range names {
			if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) || strings.HasSuffix(n, deletedSuffix) {
				t.Fatalf("step %d: recovery left %s", at, n)
			}
		}
		if _, err := l.Clean(opts); err != nil {
			t.Fatalf("step %d: pass after recovery: %v", at, err)
		}
		if again := viewOf(t, l); fmt.Sprint(again) != fmt.Sprint(post) {
			t.Fatalf("step %d: a pass after recovery gives\n%v\nnot\n%v", at, again, post)
		}
		_ = l.Close()
		if finished {
			t.Logf("the pass took %d durable steps", at-1)
			if at < 10 {
				t.Fatalf("the pass took only %d durable steps", at)
			}
			break
		}
	}
	t.Logf("states seen after a crash: %v", states)
	if !states["before"] || !states["after"] || !states["between"] {
		t.Fatalf("crash points never saw one side of the swap: %v", states)
	}
}

// checkBetween asserts that v lies between the logs before and after a
// pass: every record of v was in pre at the same offset, every record of
// post is in v, and the latest values are pre's.
func checkBetween(t *testing.T, at int, pre, v, post []rec) {
	t.Helper()
	inPre := map[int64]rec{}
	for _, r := range pre {
		inPre[r.off] = r
	}
	inV := map[int64]bool{}
	for i, r := range v {
		if inPre[r.off] != r {
			t.Fatalf("step %d: record %v was not in the log", at, r)
		}
		if i > 0 && r.off <= v[i-1].off {
			t.Fatalf("step %d: offset %d served twice or out of order", at, r.off)
		}
		inV[r.off] = true
	}
	for _, r := range post {
		if !inV[r.off] {
			t.Fatalf("step %d: record %v lost", at, r)
		}
	}
	if !equalMaps(latestOf(pre), latestOf(v)) {
		t.Fatalf("step %d: latest values differ", at)
	}
}

// TestCleanKeepsReadersOfOldSegments holds a read of the whole log across
// a pass: its ranges still read the old bytes after the old segments were
// renamed and removed (a zero-copy sender holds the descriptor the same
// way).
func TestCleanKeepsReadersOfOldSegments(t *testing.T) {
	fs, c := NewMemFS(), newClock()
	l := openLog(t, fs, testDir, cleanConfig(), c)
	defer l.Close()
	fillRandom(t, l, rand.New(rand.NewPCG(8, 8)), c, 200, 10, 0)
	want := readEverything(t, l)
	r, err := l.Read(0, math.MaxInt32, math.MaxInt64, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := l.Clean(CleanOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := readBytes(t, r); string(got) != string(want) {
		t.Fatal("a read taken before the pass changed under its holder")
	}
	r.Release()
	if got := readEverything(t, l); len(got) >= len(want) {
		t.Fatalf("the pass shrank nothing: %d bytes of %d", len(got), len(want))
	}
}

// TestCleanFailures fails the pass's file operations one kind at a time:
// until the .swap files are in place a failure leaves the log as it was
// (no cleaner file left, not poisoned); from then on it poisons the log,
// whose reads still serve the old segments (the cache, tiny in these
// tests, reopens them by their new names), and the next Open settles the
// files.
func TestCleanFailures(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fault  Fault
		poison bool
	}{
		{"write .cleaned", Fault{Ops: OpWrite, Path: PathSuffix(".log" + cleanedSuffix)}, false},
		{"fsync .cleaned", Fault{Ops: OpSync, Path: PathSuffix(".index" + cleanedSuffix)}, false},
		{"rename to .swap", Fault{Ops: OpRename, Path: PathSuffix(".timeindex" + swapSuffix)}, false},
		{"rename to .swap, undo fails", Fault{Ops: OpRename | OpRemove, Path: PathSuffix(swapSuffix), Sticky: true}, true},
		{"rename to .deleted", Fault{Ops: OpRename, Path: PathSuffix(".log" + deletedSuffix), Nth: 2}, true},
		{"rename from .swap", Fault{Ops: OpRename, Path: PathSuffix(".log" + swapSuffix), Nth: 2}, true},
		{"remove .deleted", Fault{Ops: OpRemove, Path: PathSuffix(deletedSuffix)}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem, c := NewMemFS(), newClock()
			efs := NewErrorFS(mem)
			l := openLog(t, efs, testDir, cleanConfig(), c)
			fillForCrash(t, l, c)
			pre := viewOf(t, l)
			in := efs.Inject(tc.fault)
			_, err := l.Clean(CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()})
			if in.Failed() == 0 {
				t.Fatalf("the fault never fired (%d matching operations)", in.Seen())
			}
			if err == nil {
				t.Fatal("the pass hid a failure")
			}
			if got := errors.Is(err, ErrLogPoisoned); got != tc.poison {
				t.Fatalf("poisoned %v, want %v: %v", got, tc.poison, err)
			}
			efs.Heal()
			if tc.poison {
				if got := viewOf(t, l); fmt.Sprint(got) != fmt.Sprint(pre) {
					t.Fatal("a poisoned log serves other records than before the pass")
				}
			} else {
				checkBetween(t, 0, pre, viewOf(t, l), nil)
				names, _ := mem.ReadDir(testDir)
				for _, n := range names {
					if strings.HasSuffix(n, cleanedSuffix) || strings.HasSuffix(n, swapSuffix) {
						t.Fatalf("a failed pass left %s", n)
					}
				}
			}
			_ = l.Close()
			l = openLog(t, mem, testDir, cleanConfig(), c)
			defer l.Close()
			checkBetween(t, 0, pre, viewOf(t, l), nil)
			if _, err := l.Clean(CleanOptions{DeleteRetentionMs: time.Hour.Milliseconds()}); err != nil {
				t.Fatalf("pass after reopening: %v", err)
			}
		})
	}
}
