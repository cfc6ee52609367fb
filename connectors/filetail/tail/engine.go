package tail

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// FileInfo is what the engine needs to know of a file.
type FileInfo struct {
	Size     int64
	Dev, Ino uint64
}

// File is an open file, read with ReadAt so that positions stay explicit.
type File interface {
	ReadAt(p []byte, off int64) (int, error)
	Stat() (FileInfo, error)
	Close() error
}

// FS is the file system the engine reads: the plugin's is the real one,
// the tests' an in-memory one.
type FS interface {
	Glob(pattern string) ([]string, error)
	Open(path string) (File, error)
}

// Config configures an Engine.
type Config struct {
	Include, Exclude []string // globs (filepath.Match syntax)
	ReadFromEnd      bool
	MaxLineBytes     int
	LongLines        LongLines
	MaxReadBytes     int // one file's share of one round of reading
	FingerprintLines int
	IgnoredHeader    int64 // bytes skipped before the fingerprinted lines
	Multiline        Multiline
	RotateWait       time.Duration // a drained file is kept this long after it last grew
}

// Output is one record's worth: an event from the file ID at Path, with
// End the position after its last line.
type Output struct {
	ID        FileID
	Path      string
	Text      string
	End       int64
	Lines     int
	Truncated bool
}

// Stats counts what the engine did.
type Stats struct {
	Lines, Bytes, Records        int64
	TruncatedLines, DroppedBytes int64
	SplitPieces                  int64
	Opened, Rotated, Truncations int64
	Copies, Closed, ScanFailures int64
}

type openFile struct {
	id     FileID
	h      File
	read   int64 // next byte to read
	grew   time.Time
	split  Splitter
	asm    *Assembler
	final  bool // a drained file's last partial line and event are out
	closed bool
}

// Engine tails the files matching the globs: Scan finds them and applies
// the Tracker's decisions, Read reads a fair share of each. It is not safe
// for concurrent use; the plugin calls it from Poll only.
type Engine struct {
	fs     FS
	cfg    Config
	tr     *Tracker
	files  map[FileID]*openFile
	order  []FileID // round-robin order
	cursor int
	buf    []byte
	lines  []Line
	events []Event
	out    []Output // Read's answer, reused
	stats  Stats
	// needScan: a truncation was found while reading.
	needScan bool
	Log      func(msg string, args ...any)
}

// NewEngine returns an engine resuming from committed positions.
func NewEngine(fs FS, cfg Config, committed map[FileID]int64) *Engine {
	if cfg.MaxLineBytes <= 0 {
		cfg.MaxLineBytes = 102400
	}
	if cfg.MaxReadBytes <= 0 {
		cfg.MaxReadBytes = 64 << 10
	}
	if cfg.FingerprintLines <= 0 {
		cfg.FingerprintLines = 1
	}
	return &Engine{fs: fs, cfg: cfg, tr: NewTracker(cfg.ReadFromEnd, committed), files: map[FileID]*openFile{},
		buf: make([]byte, cfg.MaxReadBytes), Log: func(string, ...any) {}}
}

// Tracker is the engine's tracker, for inspection.
func (e *Engine) Tracker() *Tracker { return e.tr }

// Stats is what the engine has done so far.
func (e *Engine) Stats() Stats {
	s := e.stats
	for _, f := range e.files {
		s.TruncatedLines += f.split.TruncatedLines
		s.DroppedBytes += f.split.DroppedBytes
		s.SplitPieces += f.split.SplitPieces
	}
	return s
}

// candidate is a path found by a scan, opened to fingerprint it.
type candidate struct {
	obs Observation
	h   File
}

// Scan globs the include patterns and acts on what changed.
func (e *Engine) Scan(now time.Time) error {
	e.needScan = false
	paths, err := e.glob()
	if err != nil {
		e.stats.ScanFailures++
		return err
	}
	byIno := map[devIno]*openFile{}
	for _, f := range e.files {
		if t := e.tr.File(f.id); t != nil {
			byIno[devIno{t.Dev, t.Ino}] = f
		}
	}
	var obs []Observation
	cands := map[string]candidate{}
	for _, p := range paths {
		h, err := e.fs.Open(p)
		if err != nil {
			continue // gone since the glob, or unreadable: the next scan sees
		}
		st, err := h.Stat()
		if err != nil {
			_ = h.Close()
			continue
		}
		o := Observation{Path: p, Size: st.Size, Dev: st.Dev, Ino: st.Ino}
		o.ID = e.fingerprint(h, st.Size)
		obs = append(obs, o)
		cands[p] = candidate{o, h}
	}
	used := map[string]bool{}
	for _, a := range e.tr.Scan(obs) {
		e.apply(a, now, cands, used)
	}
	for p, c := range cands {
		if !used[p] {
			_ = c.h.Close()
		}
	}
	return nil
}

func (e *Engine) glob() ([]string, error) {
	seen := map[string]bool{}
	var out []string
	for _, pat := range e.cfg.Include {
		m, err := e.fs.Glob(pat)
		if err != nil {
			return nil, fmt.Errorf("glob %q: %w", pat, err)
		}
	next:
		for _, p := range m {
			if seen[p] {
				continue
			}
			if e.excluded(p) {
				continue next
			}
			seen[p] = true
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out, nil
}

// excluded says whether an exclude glob matches p, or its base name when
// the glob has no directory part ("*.gz").
func (e *Engine) excluded(p string) bool {
	for _, x := range e.cfg.Exclude {
		if ok, _ := filepath.Match(x, p); ok {
			return true
		}
		if !strings.ContainsRune(x, filepath.Separator) {
			if ok, _ := filepath.Match(x, filepath.Base(p)); ok {
				return true
			}
		}
	}
	return false
}

// maxFingerprint bounds what a scan reads of each file to identify it: a
// first line longer than this is identified by its first 64 KiB.
const maxFingerprint = 64 << 10

func (e *Engine) fingerprint(h File, size int64) FileID {
	limit := min(e.cfg.MaxLineBytes, maxFingerprint)
	need := min(int64(limit), size-e.cfg.IgnoredHeader)
	if need <= 0 {
		return ""
	}
	head := make([]byte, min(need, 4096))
	for {
		n, err := h.ReadAt(head, e.cfg.IgnoredHeader)
		head = head[:n]
		if id, ok := Fingerprint(head, e.cfg.FingerprintLines, limit); ok {
			return id
		}
		if err != nil || int64(n) >= need {
			return ""
		}
		head = make([]byte, need)
	}
}

// apply carries out one decision of the tracker.
func (e *Engine) apply(a Action, now time.Time, cands map[string]candidate, used map[string]bool) {
	e.Log("file", "action", a.Kind.String(), "id", string(a.ID), "path", a.Path, "pos", a.Pos, "why", a.Why)
	switch a.Kind {
	case Open:
		c, ok := cands[a.Path]
		if ok && !used[a.Path] {
			used[a.Path] = true
		} else if c.h = e.reopen(a); c.h == nil {
			// Not there any more: the tracker remembers the position
			// and the next scan finds the file again.
			e.tr.Closed(a.ID)
			e.needScan = true
			return
		}
		f := &openFile{id: a.ID, h: c.h, read: a.Pos, grew: now,
			split: Splitter{MaxBytes: e.cfg.MaxLineBytes, Long: e.cfg.LongLines}, asm: NewAssembler(e.cfg.Multiline)}
		if a.FromEnd {
			f.read = lastLineEnd(c.h, a.Pos)
			e.tr.Reposition(a.ID, f.read)
		}
		if old := e.files[a.ID]; old != nil {
			e.drop(old)
		}
		e.files[a.ID] = f
		e.order = append(e.order, a.ID)
		e.stats.Opened++
		if a.Why != "new" && a.Why != "resumed" && a.Why != "new, read_from end" {
			e.stats.Copies++
		}
	case Move:
		e.stats.Rotated++
	case Drain:
		e.stats.Rotated++
		if f := e.files[a.ID]; f != nil {
			f.grew = now
		}
	case Close:
		e.stats.Truncations++
		e.needScan = true // the truncated file is found again as a new one
		if f := e.files[a.ID]; f != nil {
			e.drop(f)
		}
	}
}

// reopen opens a.Path outside a scan (a truncated file's copy), checking
// that it is still the file the scan saw.
func (e *Engine) reopen(a Action) File {
	h, err := e.fs.Open(a.Path)
	if err != nil {
		return nil
	}
	if st, err := h.Stat(); err != nil || st.Dev != a.Dev || st.Ino != a.Ino {
		_ = h.Close()
		return nil
	}
	return h
}

// WantScan says whether something seen while reading (a truncation)
// calls for a scan before the next periodic one.
func (e *Engine) WantScan() bool { return e.needScan }

// lastLineEnd is the position after the last newline before size (0 if
// none in the last 64 KiB): read_from end starts on a line boundary.
func lastLineEnd(h File, size int64) int64 {
	from := max(0, size-64<<10)
	b := make([]byte, size-from)
	n, _ := h.ReadAt(b, from)
	if i := bytes.LastIndexByte(b[:n], '\n'); i >= 0 {
		return from + int64(i) + 1
	}
	if from == 0 {
		return 0
	}
	return size
}

func (e *Engine) drop(f *openFile) {
	e.stats.TruncatedLines += f.split.TruncatedLines
	e.stats.DroppedBytes += f.split.DroppedBytes
	e.stats.SplitPieces += f.split.SplitPieces
	f.split.TruncatedLines, f.split.DroppedBytes, f.split.SplitPieces = 0, 0, 0
	if !f.closed {
		_ = f.h.Close()
		f.closed = true
	}
	if e.files[f.id] == f {
		delete(e.files, f.id)
	}
	for i, id := range e.order {
		if id == f.id && (e.files[id] == nil) {
			e.order = append(e.order[:i], e.order[i+1:]...)
			if e.cursor > i {
				e.cursor--
			}
			break
		}
	}
}

// Read reads the open files round-robin, at most MaxReadBytes from each in
// a turn, until about maxBytes were read or no file has more, and returns
// the events completed (plus multiline events whose timeout passed),
// valid until the next Read. Rounds go on from where the previous Read
// stopped, so a busy file takes its turn like the others and cannot
// starve them.
func (e *Engine) Read(now time.Time, maxBytes int64) ([]Output, error) {
	out := e.out[:0]
	defer func() { e.out = out[:0] }()
	var read int64
	for read < maxBytes && len(e.order) > 0 {
		progress := false
		for n := len(e.order); n > 0 && read < maxBytes && len(e.order) > 0; n-- {
			e.cursor %= len(e.order)
			f := e.files[e.order[e.cursor]]
			e.cursor++
			got, err := e.readTurn(f, now, &out)
			if err != nil {
				return out, err
			}
			read += int64(got)
			progress = progress || got > 0
		}
		if !progress {
			break
		}
	}
	for _, id := range append([]FileID(nil), e.order...) {
		f := e.files[id]
		if f == nil {
			continue
		}
		e.events = f.asm.Tick(e.events[:0], now)
		out = e.emit(f, out)
		e.finish(f, now, &out)
	}
	return out, nil
}

// readTurn reads one share of f.
func (e *Engine) readTurn(f *openFile, now time.Time, out *[]Output) (int, error) {
	n, err := f.h.ReadAt(e.buf, f.read)
	if err != nil && !errors.Is(err, io.EOF) {
		return 0, fmt.Errorf("reading %s: %w", e.path(f), err)
	}
	if n == 0 {
		st, err := f.h.Stat()
		if err == nil && st.Size < f.read {
			e.Log("file truncated", "id", string(f.id), "path", e.path(f), "size", st.Size, "read", f.read)
			for _, a := range e.tr.Truncated(f.id, st.Size) {
				e.apply(a, now, nil, nil)
			}
		}
		return 0, nil
	}
	f.grew = now
	before := f.split.TruncatedLines
	// One string for the chunk: its lines are substrings of it.
	e.lines = f.split.Feed(e.lines[:0], string(e.buf[:n]), f.read)
	if d := f.split.TruncatedLines - before; d > 0 {
		e.Log("lines longer than max_line_bytes truncated", "path", e.path(f), "lines", d, "before", f.read+int64(n), "max_line_bytes", e.cfg.MaxLineBytes)
	}
	f.read += int64(n)
	e.stats.Bytes += int64(n)
	e.events = e.events[:0]
	for _, l := range e.lines {
		e.stats.Lines++
		e.events = f.asm.Add(e.events, l, now)
	}
	*out = e.emit(f, *out)
	return n, nil
}

func (e *Engine) emit(f *openFile, out []Output) []Output {
	if len(e.events) == 0 {
		return out
	}
	path := e.path(f)
	for _, ev := range e.events {
		out = append(out, Output{ID: f.id, Path: path, Text: ev.Text, End: ev.End, Lines: ev.Lines, Truncated: ev.Truncated})
	}
	e.stats.Records += int64(len(e.events))
	e.tr.Emitted(f.id, e.events[len(e.events)-1].End)
	e.events = e.events[:0]
	return out
}

// finish ends a file that left the globs: once it has not grown for
// RotateWait, its last unfinished line and event go out, and once those
// are durable its handle is closed.
func (e *Engine) finish(f *openFile, now time.Time, out *[]Output) {
	t := e.tr.File(f.id)
	if t == nil || !t.Gone || now.Sub(f.grew) < e.cfg.RotateWait {
		return
	}
	if !f.final {
		f.final = true
		if p := f.split.Pending(); len(p) > 0 {
			e.events = f.asm.Add(e.events[:0], Line{Text: string(trimCR(p)), End: f.read}, now)
			f.split.Reset()
		}
		e.events = f.asm.Flush(e.events)
		*out = e.emit(f, *out)
	}
	if e.tr.Closable(f.id) {
		e.Log("file drained and closed", "id", string(f.id), "path", t.Path, "pos", t.Emitted)
		e.tr.Closed(f.id)
		e.stats.Closed++
		e.drop(f)
	}
}

func (e *Engine) path(f *openFile) string {
	if t := e.tr.File(f.id); t != nil {
		return t.Path
	}
	return ""
}

// Commit records that the records of id up to pos are durable.
func (e *Engine) Commit(id FileID, pos int64) { e.tr.Durable(id, pos) }

// Due is the earliest time the engine has something to do without new
// input: a multiline timeout or a drained file to finish (zero if none).
func (e *Engine) Due() time.Time {
	var due time.Time
	for _, f := range e.files {
		d := f.asm.Due()
		if t := e.tr.File(f.id); t != nil && t.Gone && !f.final {
			if g := f.grew.Add(e.cfg.RotateWait); d.IsZero() || g.Before(d) {
				d = g
			}
		}
		if !d.IsZero() && (due.IsZero() || d.Before(due)) {
			due = d
		}
	}
	return due
}

// Close closes every open file.
func (e *Engine) Close() {
	for _, f := range e.files {
		if !f.closed {
			_ = f.h.Close()
			f.closed = true
		}
	}
	e.files, e.order = map[FileID]*openFile{}, nil
}
