package segment

import (
	"encoding/binary"
	"fmt"
	"sort"
)

// Index entry sizes on disk (and in memory: the in-memory index is the file
// image, so persisting it is a plain write of the unwritten tail).
const (
	offsetEntrySize = 8  // uint32 offset-base, uint32 position
	timeEntrySize   = 12 // int64 timestamp, uint32 offset-base
)

// maxIndexBytes caps an offset index; a segment rolls before exceeding it.
const maxIndexBytes = 10 << 20

// offsetIndex is a sparse map from relative offset to file position. Entries
// are strictly increasing in both.
type offsetIndex []byte

func (x offsetIndex) len() int { return len(x) / offsetEntrySize }

func (x offsetIndex) entry(i int) (rel uint32, pos uint32) {
	e := x[i*offsetEntrySize:]
	return binary.BigEndian.Uint32(e), binary.BigEndian.Uint32(e[4:])
}

func (x offsetIndex) add(rel, pos uint32) offsetIndex {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(x, rel), pos)
}

// floor returns the position of the last entry whose offset is <= rel, or
// 0 (the segment start) if there is none.
func (x offsetIndex) floor(rel uint32) int64 {
	i := sort.Search(x.len(), func(i int) bool { r, _ := x.entry(i); return r > rel }) - 1
	if i < 0 {
		return 0
	}
	_, pos := x.entry(i)
	return int64(pos)
}

// check verifies the invariants a loaded index must satisfy: strictly
// increasing entries, positions inside the log and offsets inside the
// segment's offset range.
func (x offsetIndex) check(logSize int64, maxRel int64) error {
	if len(x)%offsetEntrySize != 0 {
		return fmt.Errorf("offset index size %d not a multiple of %d", len(x), offsetEntrySize)
	}
	var prevRel, prevPos int64 = -1, -1
	for i := 0; i < x.len(); i++ {
		r, p := x.entry(i)
		if int64(r) <= prevRel || int64(p) <= prevPos {
			return fmt.Errorf("offset index entry %d (%d@%d) not increasing", i, r, p)
		}
		if int64(p) >= logSize || int64(r) > maxRel {
			return fmt.Errorf("offset index entry %d (%d@%d) beyond log (size %d)", i, r, p, logSize)
		}
		prevRel, prevPos = int64(r), int64(p)
	}
	return nil
}

// timeIndex maps the running maximum timestamp to the (relative) last
// offset of the batch carrying it. Timestamps strictly increase.
type timeIndex []byte

func (x timeIndex) len() int { return len(x) / timeEntrySize }

func (x timeIndex) entry(i int) (ts int64, rel uint32) {
	e := x[i*timeEntrySize:]
	return int64(binary.BigEndian.Uint64(e)), binary.BigEndian.Uint32(e[8:])
}

func (x timeIndex) last() (ts int64, rel uint32, ok bool) {
	if x.len() == 0 {
		return 0, 0, false
	}
	ts, rel = x.entry(x.len() - 1)
	return ts, rel, true
}

func (x timeIndex) add(ts int64, rel uint32) timeIndex {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint64(x, uint64(ts)), rel)
}

// before returns the relative offset of the last entry with a timestamp
// below ts. Every batch up to that offset has a max timestamp < ts, so a
// search for ts may start at the batch containing it.
func (x timeIndex) before(ts int64) (rel uint32, ok bool) {
	i := sort.Search(x.len(), func(i int) bool { t, _ := x.entry(i); return t >= ts }) - 1
	if i < 0 {
		return 0, false
	}
	_, rel = x.entry(i)
	return rel, true
}

func (x timeIndex) check(maxRel int64) error {
	if len(x)%timeEntrySize != 0 {
		return fmt.Errorf("time index size %d not a multiple of %d", len(x), timeEntrySize)
	}
	prevTs, prevRel := int64(-1<<63), int64(-1)
	for i := 0; i < x.len(); i++ {
		t, r := x.entry(i)
		if t <= prevTs || int64(r) < prevRel || int64(r) > maxRel {
			return fmt.Errorf("time index entry %d (%d@%d) out of order or range", i, t, r)
		}
		prevTs, prevRel = t, int64(r)
	}
	return nil
}
