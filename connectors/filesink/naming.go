package main

import (
	"strconv"
	"strings"
	"time"
)

// The sink's exactly-once rests on file names, decided here without I/O.
//
// Records of a partition are appended to a temp file, named for the
// partition and its first offset and hidden (a leading dot, a .tmp
// suffix) so that nobody reads it as data. At commit the temp file is
// fsynced and renamed to its final name, which carries the offsets it
// holds, first and last: <topic>-<partition>-<start>-<end>.<ext>. A rename
// is atomic, so a final file is complete, and its name says which offsets
// it holds. On Open the task lists the directory: the highest end offset
// among a partition's final files, plus one, is where consumption resumes,
// and temp files (a crash's leftovers, never committed) are deleted. Every
// record therefore ends up in exactly one final file.

// Extensions of the final files by format.
var extensions = map[string]string{formatRaw: "txt", formatJSON: "json", formatNDJSON: "ndjson"}

const tempSuffix = ".tmp"

// fileName is a parsed file name of the sink.
type fileName struct {
	topic      string
	partition  int32
	start, end int64 // end is -1 for a temp file
	temp       bool
}

// finalName is the name of a committed file holding offsets start..end
// (inclusive) of a partition.
func finalName(topic string, partition int32, start, end int64, ext string) string {
	return topic + "-" + strconv.Itoa(int(partition)) + "-" + strconv.FormatInt(start, 10) + "-" +
		strconv.FormatInt(end, 10) + "." + ext
}

// tempName is the name of the file a partition's records are written to
// before their commit, from offset start on.
func tempName(topic string, partition int32, start int64) string {
	return "." + topic + "-" + strconv.Itoa(int(partition)) + "-" + strconv.FormatInt(start, 10) + tempSuffix
}

// parseName reads a final or temp file name; ok is false for any other
// file. Topic names may hold dashes, so the numbers are taken from the
// right.
func parseName(name string) (fileName, bool) {
	var f fileName
	base := name
	if strings.HasPrefix(name, ".") && strings.HasSuffix(name, tempSuffix) {
		f.temp = true
		base = strings.TrimSuffix(strings.TrimPrefix(name, "."), tempSuffix)
	} else {
		dot := strings.LastIndexByte(name, '.')
		if dot < 0 || !knownExt(name[dot+1:]) {
			return f, false
		}
		base = name[:dot]
	}
	nums := 3 // partition, start, end
	if f.temp {
		nums = 2 // partition, start
	}
	vals := make([]int64, nums)
	for i := nums - 1; i >= 0; i-- {
		dash := strings.LastIndexByte(base, '-')
		if dash <= 0 {
			return f, false
		}
		n, err := strconv.ParseInt(base[dash+1:], 10, 64)
		if err != nil || n < 0 || strconv.FormatInt(n, 10) != base[dash+1:] {
			return f, false
		}
		vals[i], base = n, base[:dash]
	}
	if vals[0] > 1<<31-1 {
		return f, false
	}
	f.topic, f.partition, f.start, f.end = base, int32(vals[0]), vals[1], -1
	if !f.temp {
		f.end = vals[2]
		if f.end < f.start {
			return f, false
		}
	}
	return f, true
}

func knownExt(ext string) bool {
	for _, e := range extensions {
		if e == ext {
			return true
		}
	}
	return false
}

// recovery is what Open does for one partition, decided from the names
// in the directory.
type recovery struct {
	next      int64    // the offset to resume from; -1 when no final file exists
	deletions []string // the partition's temp files: never committed
}

// recoverPartition decides a partition's recovery from the directory's
// file names.
func recoverPartition(names []string, topic string, partition int32) recovery {
	r := recovery{next: -1}
	for _, n := range names {
		f, ok := parseName(n)
		if !ok || f.topic != topic || f.partition != partition {
			continue
		}
		if f.temp {
			r.deletions = append(r.deletions, n)
		} else if f.end+1 > r.next {
			r.next = f.end + 1
		}
	}
	return r
}

// rotation bounds one file: records, bytes and age; zero is no bound.
type rotation struct {
	maxRecords int64
	maxBytes   int64
	interval   time.Duration
}

// due reports whether a file holding records records in bytes bytes,
// opened at opened, is to be committed now, before anything more is
// written to it. An empty file never is.
func (r rotation) due(records, bytes int64, opened, now time.Time) bool {
	if records == 0 {
		return false
	}
	return (r.maxRecords > 0 && records >= r.maxRecords) ||
		(r.maxBytes > 0 && bytes >= r.maxBytes) ||
		(r.interval > 0 && !now.Before(opened.Add(r.interval)))
}
