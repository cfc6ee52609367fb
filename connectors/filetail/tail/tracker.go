package tail

import (
	"bytes"
	"fmt"
	"hash/crc64"
	"sort"
)

// FileID is a file's identity: a checksum of its first line(s), so that a
// renamed file keeps it and a new file at an old path gets a new one
// (inodes are reused and LVM changes device numbers; Vector and Filebeat
// both moved to content fingerprints for that reason).
type FileID string

var crcTable = crc64.MakeTable(crc64.ECMA)

// Fingerprint is the identity of a file whose first bytes (after any
// ignored header) are head: the checksum of its first `lines` lines,
// newlines included. A file without that many complete lines has none
// yet (ok false) unless head already holds maxBytes, when the first
// maxBytes are used: a first line longer than that still identifies it.
func Fingerprint(head []byte, lines, maxBytes int) (id FileID, ok bool) {
	end, n := 0, 0
	for n < lines {
		i := bytes.IndexByte(head[end:], '\n')
		if i < 0 {
			break
		}
		end += i + 1
		n++
	}
	switch {
	case n == lines:
	case len(head) >= maxBytes:
		end = maxBytes
	default:
		return "", false
	}
	return FileID(fmt.Sprintf("crc64:%016x", crc64.Checksum(head[:end], crcTable))), true
}

// Observation is what a scan found at one path matching the globs.
type Observation struct {
	Path string
	ID   FileID // "" while the file has no complete first line
	Size int64
	Dev  uint64
	Ino  uint64
}

// Tracked is a file the tracker has told the engine to keep open.
type Tracked struct {
	ID       FileID
	Path     string
	Dev, Ino uint64
	Emitted  int64 // position after the last line handed out in a record
	Durable  int64 // position after the last line Commit said is durable
	Gone     bool  // its path no longer leads to it (rotated away, deleted): drain and close
}

// ActionKind is what the engine must do with a file handle.
type ActionKind int

const (
	// Open: open Path (the handle the scan used) and read it as ID from
	// Pos. Pos is Size with FromEnd set for read_from=end.
	Open ActionKind = iota + 1
	// Move: the file ID was renamed to Path; its handle stays.
	Move
	// Drain: the file ID left the globs (renamed away or deleted): read
	// its handle to the end, then close it.
	Drain
	// Close: drop the handle of ID without reading further (it was
	// truncated; what it held is gone or read from its copy).
	Close
)

func (k ActionKind) String() string {
	return [...]string{"?", "open", "move", "drain", "close"}[k]
}

// Action is one decision of the Tracker.
type Action struct {
	Kind     ActionKind
	ID       FileID
	Path     string
	Pos      int64
	FromEnd  bool
	Dev, Ino uint64
	Why      string
}

func (a Action) String() string {
	return fmt.Sprintf("%s %s %s@%d (%s)", a.Kind, a.ID, a.Path, a.Pos, a.Why)
}

// Tracker decides, from what scans observe, which files are read from
// where: new files, renames (rotation by rename and create), files gone
// from the globs (drained, then closed), truncation (copytruncate, or a
// file rewritten in place) and copies. It does no I/O.
type Tracker struct {
	readFromEnd bool
	scanned     bool
	files       map[FileID]*Tracked
	known       map[FileID]int64 // positions of files not open: committed at start, or closed
	fresh       map[devIno]bool  // truncated files: read from 0 when found again, whatever their ID
	last        []Observation    // the latest scan, to find a truncated file's copy
}

// NewTracker returns a tracker resuming from committed positions.
// readFromEnd applies to files never seen that exist at the first scan;
// files that appear later are read from their beginning, so that lines
// written to a freshly rotated file before it is found are not lost.
func NewTracker(readFromEnd bool, committed map[FileID]int64) *Tracker {
	t := &Tracker{readFromEnd: readFromEnd, files: map[FileID]*Tracked{}, known: map[FileID]int64{},
		fresh: map[devIno]bool{}}
	for id, pos := range committed {
		t.known[id] = pos
	}
	return t
}

// File is the tracked file ID (nil when not open).
func (t *Tracker) File(id FileID) *Tracked { return t.files[id] }

// Files is the tracked files, sorted by ID.
func (t *Tracker) Files() []*Tracked {
	out := make([]*Tracked, 0, len(t.files))
	for _, f := range t.files {
		out = append(out, f)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

type devIno struct{ dev, ino uint64 }

// Scan takes what a scan observed (one entry per path) and returns what
// the engine must do, updating the tracked files as if it had.
func (t *Tracker) Scan(obs []Observation) []Action {
	obs = append([]Observation(nil), obs...)
	sort.Slice(obs, func(i, j int) bool { return obs[i].Path < obs[j].Path })
	t.last = obs
	byIno := map[devIno]int{}
	for i, o := range obs {
		if _, dup := byIno[devIno{o.Dev, o.Ino}]; !dup { // a hard link: first path wins
			byIno[devIno{o.Dev, o.Ino}] = i
		}
	}
	var acts []Action
	for _, f := range t.Files() {
		i, ok := byIno[devIno{f.Dev, f.Ino}]
		if !ok {
			if !f.Gone {
				f.Gone = true
				acts = append(acts, Action{Kind: Drain, ID: f.ID, Path: f.Path, Pos: f.Emitted, Why: "left the include paths or deleted"})
			}
			continue
		}
		o := obs[i]
		switch {
		case o.ID != f.ID:
			acts = t.truncated(acts, f, "rewritten in place: its first line changed")
		case o.Size < f.Emitted:
			acts = t.truncated(acts, f, fmt.Sprintf("size %d is below the position %d", o.Size, f.Emitted))
		case o.Path != f.Path || f.Gone:
			f.Path, f.Gone = o.Path, false
			acts = append(acts, Action{Kind: Move, ID: f.ID, Path: o.Path, Pos: f.Emitted, Why: "renamed"})
		}
	}
	tracked := map[devIno]bool{}
	for _, f := range t.files {
		tracked[devIno{f.Dev, f.Ino}] = true
	}
	// Truncated files last: a copy of one (another inode with its ID)
	// takes the ID and its position first.
	sort.SliceStable(obs, func(i, j int) bool {
		return !t.fresh[devIno{obs[i].Dev, obs[i].Ino}] && t.fresh[devIno{obs[j].Dev, obs[j].Ino}]
	})
	opened := map[devIno]bool{}
	for _, o := range obs {
		if o.ID == "" || tracked[devIno{o.Dev, o.Ino}] || t.files[o.ID] != nil {
			// Not ready, already read, or a copy of a file being read
			// (copytruncate's copy before the truncation).
			continue
		}
		a := Action{Kind: Open, ID: o.ID, Path: o.Path, Dev: o.Dev, Ino: o.Ino}
		if t.fresh[devIno{o.Dev, o.Ino}] {
			a.Why = "new content after a truncation"
		} else if pos, ok := t.known[o.ID]; ok {
			a.Pos, a.Why = pos, "resumed"
			if pos > o.Size {
				a.Pos, a.Why = 0, fmt.Sprintf("shorter (%d) than its position %d: read again", o.Size, pos)
			}
		} else if !t.scanned && t.readFromEnd {
			a.Pos, a.FromEnd, a.Why = o.Size, true, "new, read_from end"
		} else {
			a.Why = "new"
		}
		t.open(a)
		tracked[devIno{o.Dev, o.Ino}] = true
		opened[devIno{o.Dev, o.Ino}] = true
		acts = append(acts, a)
	}
	t.scanned = true
	for di := range t.fresh {
		if _, ok := byIno[di]; !ok || opened[di] {
			delete(t.fresh, di) // gone, or just opened from 0
		}
	}
	return acts
}

func (t *Tracker) open(a Action) {
	t.files[a.ID] = &Tracked{ID: a.ID, Path: a.Path, Dev: a.Dev, Ino: a.Ino, Emitted: a.Pos, Durable: a.Pos}
	delete(t.known, a.ID)
}

// Truncated says the engine found file id shorter than what it read:
// its handle is closed and, if the latest scan saw a copy of it
// (copytruncate's), the copy is read from where the file was; the file
// itself is found again by the next scan as a new one.
func (t *Tracker) Truncated(id FileID, size int64) []Action {
	f := t.files[id]
	if f == nil {
		return nil
	}
	return t.truncated(nil, f, fmt.Sprintf("size %d is below the position read", size))
}

func (t *Tracker) truncated(acts []Action, f *Tracked, why string) []Action {
	delete(t.files, f.ID)
	// Its content from 0 is new, even with the same first line; a copy
	// of it (copytruncate's) at another inode resumes at the position.
	t.fresh[devIno{f.Dev, f.Ino}] = true
	t.known[f.ID] = f.Emitted
	acts = append(acts, Action{Kind: Close, ID: f.ID, Path: f.Path, Pos: f.Emitted, Why: "truncated: " + why})
	for _, c := range t.last {
		if c.ID == f.ID && (c.Dev != f.Dev || c.Ino != f.Ino) && c.Size >= f.Emitted {
			a := Action{Kind: Open, ID: f.ID, Path: c.Path, Pos: f.Emitted, Dev: c.Dev, Ino: c.Ino,
				Why: "the copy of truncated " + f.Path}
			t.open(a)
			t.files[f.ID].Durable = f.Durable
			return append(acts, a)
		}
	}
	return acts
}

// Emitted records that lines of id up to pos are in records handed out.
func (t *Tracker) Emitted(id FileID, pos int64) {
	if f := t.files[id]; f != nil && pos > f.Emitted {
		f.Emitted = pos
	}
}

// Reposition sets where reading id starts (read_from end, once the
// engine has found the end of the last complete line).
func (t *Tracker) Reposition(id FileID, pos int64) {
	if f := t.files[id]; f != nil {
		f.Emitted, f.Durable = pos, pos
	}
}

// Durable records that Commit said id's records up to pos are durable.
func (t *Tracker) Durable(id FileID, pos int64) {
	if f := t.files[id]; f != nil && pos > f.Durable && pos <= f.Emitted {
		f.Durable = pos
	}
}

// Closable says whether a drained file may be closed: it left the
// globs and every record read from it is durable.
func (t *Tracker) Closable(id FileID) bool {
	f := t.files[id]
	return f != nil && f.Gone && f.Durable >= f.Emitted
}

// Closed forgets an open file, remembering its position in case it is
// seen again (renamed back into the globs).
func (t *Tracker) Closed(id FileID) {
	if f := t.files[id]; f != nil {
		t.known[id] = f.Emitted
		delete(t.files, id)
	}
}
