package tail

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Unix(1_000_000, 0)

func newTestEngine(fs *memFS, cfg Config, committed map[FileID]int64) *Engine {
	if cfg.Include == nil {
		cfg.Include = []string{"/log/*.log*"}
	}
	return NewEngine(fs, cfg, committed)
}

// pump scans and reads until nothing more comes, returning the texts.
func pump(t *testing.T, e *Engine, now time.Time) []Output {
	t.Helper()
	if err := e.Scan(now); err != nil {
		t.Fatal(err)
	}
	var all []Output
	for range 1000 {
		out, err := e.Read(now, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, out...)
		if e.WantScan() {
			if err := e.Scan(now); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if len(out) == 0 {
			return all
		}
	}
	t.Fatal("reading never ends")
	return nil
}

func texts(outs []Output) []string {
	var s []string
	for _, o := range outs {
		s = append(s, o.Text)
	}
	return s
}

// exactlyOnce checks that line-0 … line-(n-1) each came once.
func exactlyOnce(t *testing.T, outs []Output, n int) {
	t.Helper()
	seen := map[string]int{}
	for _, o := range outs {
		seen[o.Text]++
	}
	for i := range n {
		if c := seen[fmt.Sprintf("line-%d", i)]; c != 1 {
			t.Fatalf("line-%d read %d times (%d records)", i, c, len(outs))
		}
	}
	if len(outs) != n {
		t.Fatalf("%d records for %d lines", len(outs), n)
	}
}

type writer struct {
	fs   *memFS
	path string
	next int
}

func (w *writer) write(n int) {
	var b strings.Builder
	for range n {
		fmt.Fprintf(&b, "line-%d\n", w.next)
		w.next++
	}
	w.fs.append(w.path, b.String())
}

func TestEngineFollowsRenameAndCreateRotation(t *testing.T) {
	fs := newMemFS()
	w := &writer{fs: fs, path: "/log/app.log"}
	e := newTestEngine(fs, Config{Include: []string{"/log/app.log"}, RotateWait: time.Second}, nil)
	var outs []Output
	now := t0
	for round := range 20 {
		w.write(50)
		outs = append(outs, pump(t, e, now)...)
		w.write(30) // written after the last read, before the rotation
		fs.rename("/log/app.log", fmt.Sprintf("/log/app.log.%d", round))
		w.write(1 + round) // the writer keeps its old handle a moment: modelled as lines in the new file
		now = now.Add(100 * time.Millisecond)
		outs = append(outs, pump(t, e, now)...)
	}
	now = now.Add(2 * time.Second)
	outs = append(outs, pump(t, e, now)...)
	exactlyOnce(t, outs, w.next)
	if s := e.Stats(); s.Rotated < 20 {
		t.Fatalf("rotations seen: %d", s.Rotated)
	}
}

func TestEngineDrainsARotatedFileBeforeClosingIt(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/app.log", "one\ntwo\n")
	e := newTestEngine(fs, Config{Include: []string{"/log/app.log"}, RotateWait: time.Second}, nil)
	if got := texts(pump(t, e, t0)); strings.Join(got, ",") != "one,two" {
		t.Fatalf("first: %v", got)
	}
	fs.append("/log/app.log", "three\nfour-unfinished")
	fs.rename("/log/app.log", "/log/old")
	fs.append("/log/app.log", "new\n")
	got := texts(pump(t, e, t0.Add(time.Millisecond)))
	if strings.Join(got, ",") != "three,new" && strings.Join(got, ",") != "new,three" {
		t.Fatalf("after the rotation: %v", got)
	}
	// Still open: the writer may write to its old handle for a while.
	fs.append("/log/old", "-now\n")
	got = texts(pump(t, e, t0.Add(500*time.Millisecond)))
	if strings.Join(got, ",") != "four-unfinished-now" {
		t.Fatalf("late write to the rotated file: %v", got)
	}
	fs.append("/log/old", "tail without newline")
	if got := texts(pump(t, e, t0.Add(time.Second))); len(got) != 0 {
		t.Fatalf("a partial line emitted while the file still grows: %v", got)
	}
	got = texts(pump(t, e, t0.Add(2*time.Second+time.Millisecond)))
	if strings.Join(got, ",") != "tail without newline" {
		t.Fatalf("the rotated file's last partial line: %v", got)
	}
	id, _ := Fingerprint([]byte("one\n"), 1, 100)
	if e.Tracker().File(id) == nil {
		t.Fatal("closed before its records are durable")
	}
	e.Commit(id, int64(len("one\ntwo\nthree\nfour-unfinished-now\ntail without newline")))
	pump(t, e, t0.Add(4*time.Second))
	if e.Tracker().File(id) != nil {
		t.Fatal("a drained, durable, rotated file is still open")
	}
}

func TestEngineCopytruncate(t *testing.T) {
	fs := newMemFS()
	w := &writer{fs: fs, path: "/log/app.log"}
	e := newTestEngine(fs, Config{}, nil)
	var outs []Output
	now := t0
	for round := range 10 {
		w.write(40)
		outs = append(outs, pump(t, e, now)...)
		w.write(25) // not read yet when logrotate copies
		copyName := fmt.Sprintf("/log/app.log.%d", round)
		fs.copyFile("/log/app.log", copyName)
		if round%2 == 0 {
			// Sometimes a scan sees the copy before the truncation.
			outs = append(outs, pump(t, e, now)...)
		}
		fs.truncate("/log/app.log")
		w.write(5 + round)
		now = now.Add(time.Second)
		if round%2 == 1 {
			// A read finds the truncation before a scan sees the copy.
			out, err := e.Read(now, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			outs = append(outs, out...)
		}
		outs = append(outs, pump(t, e, now)...)
	}
	exactlyOnce(t, outs, w.next)
}

func TestEngineTruncationStartsOver(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/a.log", "first\nsecond\n")
	e := newTestEngine(fs, Config{}, nil)
	pump(t, e, t0)
	fs.truncate("/log/a.log")
	fs.append("/log/a.log", "x\n")
	// A read notices the size below the position before any scan.
	got := texts(pump(t, e, t0))
	if strings.Join(got, ",") != "x" {
		t.Fatalf("after truncation: %v", got)
	}
	if s := e.Stats(); s.Truncations != 1 {
		t.Fatalf("truncations %d", s.Truncations)
	}
}

// One file with far more to read than others cannot starve them: every
// quiet file's line comes in the first Read, within its budget.
func TestEngineIsFairBetweenFiles(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/busy.log", strings.Repeat(strings.Repeat("b", 99)+"\n", 100_000)) // 10 MB
	for i := range 10 {
		fs.append(fmt.Sprintf("/log/quiet%d.log", i), fmt.Sprintf("quiet-%d\n", i))
	}
	e := newTestEngine(fs, Config{MaxReadBytes: 4096}, nil)
	if err := e.Scan(t0); err != nil {
		t.Fatal(err)
	}
	out, err := e.Read(t0, 64<<10)
	if err != nil {
		t.Fatal(err)
	}
	quiet, busy := 0, 0
	for _, o := range out {
		if strings.HasPrefix(o.Text, "quiet-") {
			quiet++
		} else {
			busy++
		}
	}
	if quiet != 10 {
		t.Fatalf("%d of 10 quiet files read in the first Read (%d busy lines)", quiet, busy)
	}
	if busy > 700 {
		t.Fatalf("the busy file took %d lines of a 64 KiB budget", busy)
	}
	// New lines in a quiet file are read next time even though the busy
	// file has megabytes left.
	fs.append("/log/quiet3.log", "again\n")
	out, _ = e.Read(t0, 64<<10)
	found := false
	for _, o := range out {
		found = found || o.Text == "again"
	}
	if !found {
		t.Fatal("a quiet file's new line waited behind the busy file")
	}
}

func TestEngineResumesFromCommittedPositions(t *testing.T) {
	fs := newMemFS()
	w := &writer{fs: fs, path: "/log/app.log"}
	w.write(100)
	e := newTestEngine(fs, Config{}, nil)
	outs := pump(t, e, t0)
	// The worker committed records up to line 59; the process dies.
	committed := map[FileID]int64{outs[59].ID: outs[59].End}
	w.write(20)
	e2 := newTestEngine(fs, Config{ReadFromEnd: true}, committed)
	again := pump(t, e2, t0)
	if len(again) != 60 || again[0].Text != "line-60" || again[59].Text != "line-119" {
		t.Fatalf("resumed: %d records from %v", len(again), again[0].Text)
	}
}

func TestEngineReadFromEnd(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/old.log", "before\nhalf")
	e := newTestEngine(fs, Config{ReadFromEnd: true}, nil)
	if got := pump(t, e, t0); len(got) != 0 {
		t.Fatalf("read_from end read %v", texts(got))
	}
	fs.append("/log/old.log", " line\nafter\n")
	fs.append("/log/new.log", "new file\n")
	got := strings.Join(texts(pump(t, e, t0)), ",")
	if got != "half line,after,new file" && got != "new file,half line,after" {
		t.Fatalf("after start: %s", got)
	}
}

func TestEngineMultilineTimeout(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/app.log", "Exception\n  at a\n")
	e := newTestEngine(fs, Config{Multiline: Multiline{Start: regexp.MustCompile(`^\S`), Condition: regexp.MustCompile(`^\s`),
		Mode: ContinueThrough, Timeout: time.Second}}, nil)
	if got := pump(t, e, t0); len(got) != 0 {
		t.Fatalf("pending event emitted early: %v", texts(got))
	}
	if d := e.Due(); !d.Equal(t0.Add(time.Second)) {
		t.Fatalf("due %v", d)
	}
	got := pump(t, e, t0.Add(time.Second))
	if len(got) != 1 || got[0].Text != "Exception\n  at a" || got[0].End != 17 {
		t.Fatalf("timed out event: %+v", got)
	}
}

func TestEngineExcludeAndMaxLineBytes(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/a.log", "short\n"+strings.Repeat("z", 30)+"\n")
	fs.append("/log/a.log.gz", "compressed\n")
	e := newTestEngine(fs, Config{Exclude: []string{"*.gz"}, MaxLineBytes: 10}, nil)
	got := pump(t, e, t0)
	if strings.Join(texts(got), ",") != "short,zzzzzzzzzz" || !got[1].Truncated {
		t.Fatalf("got %+v", got)
	}
	if s := e.Stats(); s.TruncatedLines != 1 || s.DroppedBytes != 20 {
		t.Fatalf("stats %+v", s)
	}
}

// A deleted file's unread lines are still read through its open handle.
func TestEngineReadsADeletedFileToItsEnd(t *testing.T) {
	fs := newMemFS()
	fs.append("/log/a.log", "one\n")
	e := newTestEngine(fs, Config{}, nil)
	pump(t, e, t0)
	fs.append("/log/a.log", "two\n")
	fs.remove("/log/a.log")
	if got := texts(pump(t, e, t0)); strings.Join(got, ",") != "two" {
		t.Fatalf("after deletion: %v", got)
	}
}
