package broker

import (
	"encoding/binary"

	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/sluice-io/sluice/netio"
)

// Fetch responses are the one hot path encoded by hand: kmsg would need the
// record bytes in memory, and here they must stay in the page cache. The
// layout follows the Fetch response schema for v4..v18; a test decodes the
// output with kmsg at every version to keep the two in step.

// fetchEncoder writes the response's bytes into one buffer and, for each
// partition's records, hands netio the bytes so far followed by file ranges.
type fetchEncoder struct {
	version int16
	flex    bool
	buf     []byte
	flushed int
	out     *netio.Response
}

func (e *fetchEncoder) i16(v int16)      { e.buf = binary.BigEndian.AppendUint16(e.buf, uint16(v)) }
func (e *fetchEncoder) i32(v int32)      { e.buf = binary.BigEndian.AppendUint32(e.buf, uint32(v)) }
func (e *fetchEncoder) i64(v int64)      { e.buf = binary.BigEndian.AppendUint64(e.buf, uint64(v)) }
func (e *fetchEncoder) uvarint(v uint64) { e.buf = binary.AppendUvarint(e.buf, v) }

// arrayLen writes an array length; null arrays are n = -1.
func (e *fetchEncoder) arrayLen(n int) {
	if e.flex {
		e.uvarint(uint64(n + 1))
		return
	}
	e.i32(int32(n))
}

func (e *fetchEncoder) str(s string) {
	if e.flex {
		e.uvarint(uint64(len(s) + 1))
	} else {
		e.i16(int16(len(s)))
	}
	e.buf = append(e.buf, s...)
}

func (e *fetchEncoder) emptyTags() {
	if e.flex {
		e.buf = append(e.buf, 0)
	}
}

// flushBytes hands the bytes written since the last flush to the response.
// Later appends never change them: they either write past the handed-out
// length or move to a new array.
func (e *fetchEncoder) flushBytes() {
	if len(e.buf) > e.flushed {
		e.out.AppendBytes(e.buf[e.flushed:len(e.buf):len(e.buf)])
		e.flushed = len(e.buf)
	}
}

func encodeFetch(req *kmsg.FetchRequest, sessionID int32, errCode int16, results []fetchResult, nodes ...hintedNode) *netio.Response {
	e := &fetchEncoder{version: req.Version, flex: req.Version >= 12, out: &netio.Response{}}
	e.buf = make([]byte, 0, 256+64*len(results))
	var releases []func()
	for i := range results {
		if results[i].read.Bytes > 0 {
			r := &results[i].read
			releases = append(releases, r.Release)
		}
	}
	if len(releases) > 0 {
		e.out.Release = func() {
			for _, f := range releases {
				f()
			}
		}
	}

	e.i32(0) // throttle_time_ms
	if e.version >= 7 {
		e.i16(errCode)
		e.i32(sessionID)
	}
	// Group partitions by topic, keeping the order topics first appear in.
	var topics [][]*fetchResult
	index := map[string]int{}
	for i := range results {
		name := results[i].item.key.topic
		j, ok := index[name]
		if !ok {
			j = len(topics)
			index[name] = j
			topics = append(topics, nil)
		}
		topics[j] = append(topics[j], &results[i])
	}
	e.arrayLen(len(topics))
	for _, parts := range topics {
		if e.version >= 13 {
			id := parts[0].item.topicID
			e.buf = append(e.buf, id[:]...)
		} else {
			e.str(parts[0].item.key.topic)
		}
		e.arrayLen(len(parts))
		for _, r := range parts {
			e.partition(req, r)
		}
		e.emptyTags()
	}
	if len(nodes) > 0 && e.version >= 16 {
		// Tag 0, NodeEndpoints: the leaders the partitions point to.
		sub := &fetchEncoder{version: e.version, flex: true}
		sub.arrayLen(len(nodes))
		for _, n := range nodes {
			sub.i32(n.id)
			sub.str(n.host)
			sub.i32(n.port)
			if n.rack == nil {
				sub.uvarint(0)
			} else {
				sub.str(*n.rack)
			}
			sub.emptyTags()
		}
		e.uvarint(1)
		e.uvarint(0)
		e.uvarint(uint64(len(sub.buf)))
		e.buf = append(e.buf, sub.buf...)
	} else {
		e.emptyTags()
	}
	e.flushBytes()
	return e.out
}

func (e *fetchEncoder) partition(req *kmsg.FetchRequest, r *fetchResult) {
	e.i32(r.item.key.partition)
	e.i16(r.errCode)
	e.i64(r.hw)
	e.i64(r.lso)
	if e.version >= 5 {
		e.i64(r.start)
	}
	// Aborted transactions: none exist yet. Null unless the client reads
	// committed data, where Kafka sends an empty list.
	if req.IsolationLevel == 1 {
		e.arrayLen(0)
	} else {
		e.arrayLen(-1)
	}
	if e.version >= 11 {
		if r.hasPreferred {
			e.i32(r.preferred)
		} else {
			e.i32(-1) // preferred_read_replica: none
		}
	}
	n := r.read.Bytes
	if e.flex {
		e.uvarint(uint64(n + 1))
	} else {
		e.i32(int32(n))
	}
	if n > 0 {
		e.flushBytes()
		for _, fr := range r.read.Ranges {
			e.out.AppendFile(fr.File, fr.Offset, fr.Length)
		}
	}
	if !e.flex {
		return
	}
	hint := r.hint
	if e.version < 16 {
		hint = nil
	}
	n = 0
	if r.diverging != nil {
		n++
	}
	if hint != nil {
		n++
	}
	e.uvarint(uint64(n))
	if d := r.diverging; d != nil {
		// Tag 0, DivergingEpoch{epoch int32, end_offset int64, no
		// tags} = 13 bytes.
		e.uvarint(0)
		e.uvarint(13)
		e.i32(d.epoch)
		e.i64(d.end)
		e.emptyTags()
	}
	if hint != nil {
		// Tag 1, CurrentLeader{leader_id int32, leader_epoch int32, no
		// tags} = 9 bytes.
		e.uvarint(1)
		e.uvarint(9)
		e.i32(hint.id)
		e.i32(hint.epoch)
		e.emptyTags()
	}
}
