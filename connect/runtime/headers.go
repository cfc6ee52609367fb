package runtime

import (
	"bytes"
	"encoding/json"
	"fmt"
	"unsafe"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/sluice-io/sluice/connect/data"
)

// headerCache converts a source task's record headers for the producer.
// Consecutive records very often carry the same headers (a file tail's
// path on every line): those share the last conversion instead of
// allocating and filling a slice each, as the producer only reads
// headers. Other conversions come from a slab, one allocation per
// headerSlab headers rather than one per record.
//
// Converted keys and values are copies in an arena of the cache's own,
// never the record's memory: a record's text lives in its whole Poll
// batch (~2 MB for a file tail), and a slab entry pointing into it kept
// that batch alive until the slab's last header was done with. With four
// files the path changes every few hundred lines, and the 1024 entries
// of a slab pinned ~40 batches (~70 MB; hundreds with 1 MiB turns per
// file): the worker's heap and page faults grew with it, ~0.3 µs of its
// CPU per line, the four-file case's extra cost.
type headerCache struct {
	last  []data.Header      // a copy of the headers converted last
	out   []kgo.RecordHeader // what they converted to
	slab  []kgo.RecordHeader
	arena []byte // converted keys' and values' bytes
}

const (
	headerSlab  = 1024
	headerArena = 64 << 10
)

// convert returns hs for a kgo.Record; the result must not be changed.
func (c *headerCache) convert(hs []data.Header) []kgo.RecordHeader {
	if len(hs) == 0 {
		return nil
	}
	if c.out != nil && sameHeaderValues(hs, c.last) {
		return c.out
	}
	if cap(c.slab)-len(c.slab) < len(hs) {
		c.slab = make([]kgo.RecordHeader, 0, max(headerSlab, len(hs)))
	}
	n := len(c.slab)
	c.slab = c.slab[:n+len(hs)]
	out := c.slab[n : n+len(hs) : n+len(hs)]
	cacheable := true
	for i, h := range hs {
		out[i] = kgo.RecordHeader{Key: c.ownString(h.Key), Value: c.own(headerBytes(h.Value))}
		switch h.Value.(type) {
		case nil, string, []byte:
		default:
			cacheable = false
		}
	}
	c.out, c.last = nil, c.last[:0]
	if cacheable {
		// A copy: a transform may later change the record's own slice.
		c.out, c.last = out, append(c.last, hs...)
	}
	return out
}

// own returns a copy of b in the arena (nil stays nil, empty stays
// empty); a value too large to share an arena gets its own copy.
func (c *headerCache) own(b []byte) []byte {
	if len(b) == 0 {
		if b == nil {
			return nil
		}
		// Not b itself: an empty slice of a batch still points into it.
		return []byte{}
	}
	if len(b) > headerArena/8 {
		return bytes.Clone(b)
	}
	if cap(c.arena)-len(c.arena) < len(b) {
		c.arena = make([]byte, 0, headerArena)
	}
	n := len(c.arena)
	c.arena = append(c.arena, b...)
	return c.arena[n : n+len(b) : n+len(b)]
}

// ownString is own for a key: arena bytes are never written again once
// appended, so they may back a string.
func (c *headerCache) ownString(s string) string {
	if s == "" {
		return ""
	}
	b := c.own(unsafe.Slice(unsafe.StringData(s), len(s)))
	return unsafe.String(unsafe.SliceData(b), len(b))
}

// sameHeaderValues reports whether headers a convert to exactly what b
// did: the same keys and, value by value, the same text, the same bytes
// or both null. Shared text compares by pointer first, so a file tail's
// repeated path costs a few comparisons.
func sameHeaderValues(a, b []data.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Key != b[i].Key {
			return false
		}
		switch x := a[i].Value.(type) {
		case nil:
			if b[i].Value != nil {
				return false
			}
		case string:
			if y, ok := b[i].Value.(string); !ok || x != y {
				return false
			}
		case []byte:
			y, ok := b[i].Value.([]byte)
			if !ok || (x == nil) != (y == nil) || !bytes.Equal(x, y) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// headerBytes encodes a header value as Kafka's SimpleHeaderConverter
// does for the common cases: strings and bytes as they are, everything
// else as its JSON text.
func headerBytes(v any) []byte {
	switch x := v.(type) {
	case nil:
		return nil
	case []byte:
		return x
	case string:
		if x == "" {
			return []byte{} // empty, not null: unsafe.Slice of "" may be nil
		}
		// The producer only reads header values (to encode the batch),
		// so the text's own bytes serve without a copy per record.
		return unsafe.Slice(unsafe.StringData(x), len(x))
	}
	b, err := json.Marshal(v)
	if err != nil {
		return []byte(fmt.Sprint(v))
	}
	return b
}
