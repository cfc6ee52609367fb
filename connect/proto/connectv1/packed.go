package connectv1

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
)

// Packed batches carry records whose keys, values and headers are raw
// bytes or text (ByteArrayConverter, StringConverter, log lines) as one
// buffer instead of five or six protobuf messages per record: encoding
// appends to one slice, decoding slices it, and neither side touches
// protobuf's reflection. README.md ("Packed batches") is the wire format:
//
//	packed := uvarint(1) uvarint(total records) run*
//	run    := str(topic) zigzag(partition) zigzag(base offset) uvarint(count) record{count}
//	record := flags zigzag(offset - previous offset) zigzag(timestamp) data(key) data(value)
//	          [uvarint(n) (str(key) data(value)){n}]                  if flags&1
//	          (the previous record's headers, none written)           if flags&8 (version 4)
//	          [str(topic) zigzag(partition) zigzag(offset)]           if flags&2
//	data   := kind [uvarint(len) bytes]                               if kind&3 is 1 or 2
//	          kind tree                                               if kind is 3 (version 2)
//	          kind uvarint(schema index) value                        if kind is 0x20 (version 3)
//
// Version 2 (PackedTreesVersion, packed_tree.go) adds kind 3: a schemaless
// structured value. Version 3 (PackedSchemasVersion, packed_schema.go)
// adds a table of schemas after the version and kind 0x20: a value under
// one of them. Version 4 (PackedSharedHeadersVersion) adds flag 8: the
// record has the headers of the record before it in the buffer, sent
// once (a file tail's path header on every line). A side writes a version
// only to a peer that says it reads it (NegotiatePacked).
// A run is consecutive records of one topic and partition; the first
// record's previous offset is the run's base offset.

// PackedVersion is the first uvarint of a packed buffer.
const PackedVersion = 1

// Record flags.
const (
	packedHeaders      = 1 // headers follow
	packedOriginal     = 2 // the original topic, partition and offset follow
	packedNoOriginal   = 4 // original topic "", partition 0, offset 0 (source records)
	packedSameHeaders  = 8 // the previous record's headers (version 4)
	packedKnownFlags   = packedHeaders | packedOriginal | packedNoOriginal | packedSameHeaders
	packedMinRecordLen = 5 // flags, offset delta, timestamp, key kind, value kind
)

// Data kinds: the value in bits 0-1, the schema in bits 2-3, optional in 4.
const (
	kindNull, kindBytes, kindString       = 0, 1, 2
	schemaNone, schemaBytes, schemaString = 0 << 2, 1 << 2, 2 << 2
	kindOptional                          = 1 << 4
)

// ErrNotPackable is returned by AppendPacked for a record whose key, value
// or a header is not raw bytes, text or null under no schema or a plain
// BYTES/STRING schema; such batches travel as messages.
var ErrNotPackable = errors.New("connectv1: record not packable")

// dataKind returns the kind byte for a key, value or header in a buffer
// of the given version, or false. A kindSchema value may still fail to
// pack (a value that does not fit its schema); appendPayload says so.
func dataKind(s *data.Schema, v any, version uint32) (byte, bool) {
	if k, ok := plainKind(s, v); ok {
		return k, true
	}
	if s == nil {
		return kindTree, version >= PackedTreesVersion && isTree(v)
	}
	return kindSchema, version >= PackedSchemasVersion
}

// plainKind is dataKind in version 1: raw bytes, text or null under no
// schema or a plain BYTES or STRING schema.
func plainKind(s *data.Schema, v any) (byte, bool) {
	var k byte
	if s != nil {
		if s.Name != "" || s.Version != 0 || s.Doc != "" || len(s.Parameters) > 0 || s.Default != nil {
			return 0, false
		}
		switch s.Type {
		case data.TypeBytes:
			k = schemaBytes
		case data.TypeString:
			k = schemaString
		default:
			return 0, false
		}
		if s.Optional {
			k |= kindOptional
		}
	}
	switch v.(type) {
	case nil:
		return k, true
	case []byte:
		return k | kindBytes, s == nil || s.Type == data.TypeBytes
	case string:
		return k | kindString, s == nil || s.Type == data.TypeString
	}
	return 0, false
}

// Packable reports whether AppendPacked can carry r.
func Packable(r *data.Record) bool { return PackableVersion(r, PackedVersion) }

// PackableTrees reports whether AppendPackedTrees can carry r, as far as
// its top-level values say (a tree holding a struct or an unknown Go type
// still fails at AppendPackedTrees, which then returns ErrNotPackable).
func PackableTrees(r *data.Record) bool { return PackableVersion(r, PackedTreesVersion) }

// PackableVersion reports whether AppendPackedVersion in version can
// carry r, as far as its top-level values say: in PackedSchemasVersion
// any value with a schema passes here, and one that does not fit its
// schema fails at AppendPackedVersion with ErrNotPackable.
func PackableVersion(r *data.Record, version uint32) bool {
	if _, ok := dataKind(r.KeySchema, r.Key, version); !ok {
		return false
	}
	if _, ok := dataKind(r.ValueSchema, r.Value, version); !ok {
		return false
	}
	for _, h := range r.Headers {
		if _, ok := dataKind(h.Schema, h.Value, version); !ok {
			return false
		}
	}
	return true
}

// PackedSize is the bytes a packable record's key and value weigh for
// max_bytes, about as Data.SizeOf counts them (payload bytes, not the
// encoding's overhead).
func PackedSize(r *data.Record) int {
	return treeSize(r.Key) + treeSize(r.Value)
}

// AppendPacked appends recs to b as one packed buffer. It returns
// ErrNotPackable (and b as it was) if any record is not Packable. It
// grows b once, to a bound of what the records need.
func AppendPacked(b []byte, recs []*data.Record) ([]byte, error) {
	return AppendPackedVersion(b, recs, PackedVersion)
}

// AppendPackedTrees is AppendPacked in PackedTreesVersion, which also
// carries schemaless structured keys, values and headers; only for a peer
// that reads it.
func AppendPackedTrees(b []byte, recs []*data.Record) ([]byte, error) {
	return AppendPackedVersion(b, recs, PackedTreesVersion)
}

// AppendPackedVersion is AppendPacked in the given version (1 to
// PackedNewestVersion; what NegotiatePacked gives for the peer):
// PackedSchemasVersion also carries keys, values and headers with a
// Connect schema, each distinct schema once per batch.
func AppendPackedVersion(b []byte, recs []*data.Record, version uint32) ([]byte, error) {
	if version < PackedVersion || version > PackedNewestVersion {
		return b, fmt.Errorf("connectv1: no packed version %d", version)
	}
	return appendPacked(b, recs, version, packedBound(recs, version, -1))
}

// AppendPackedVersionSized is AppendPackedVersion for a caller that has
// already summed the records' PackedSize (payload): b is sized from that
// instead of by walking every key and value again, which for structured
// values (a syslog message as a map of maps) was ~8% of a plugin's CPU.
// A wrong payload costs only a larger buffer or one more growth.
func AppendPackedVersionSized(b []byte, recs []*data.Record, version uint32, payload int) ([]byte, error) {
	if version < PackedVersion || version > PackedNewestVersion {
		return b, fmt.Errorf("connectv1: no packed version %d", version)
	}
	return appendPacked(b, recs, version, packedBound(recs, version, max(payload, 0)))
}

func appendPacked(b []byte, recs []*data.Record, version uint32, bound int) ([]byte, error) {
	orig := len(b)
	b = slices.Grow(b, bound)
	b = binary.AppendUvarint(b, uint64(version))
	p := packer{version: version}
	if version >= PackedSchemasVersion {
		p.table.collect(recs)
		var ok bool
		if b, ok = p.table.appendTo(b); !ok {
			return b[:orig], ErrNotPackable
		}
	}
	b = binary.AppendUvarint(b, uint64(len(recs)))
	recsAt := len(b)
	var prevHeaders []data.Header // the last record's, for flag 8
	for i := 0; i < len(recs); {
		j := i + 1
		for j < len(recs) && recs[j].Topic == recs[i].Topic && recs[j].Partition == recs[i].Partition {
			j++
		}
		b = appendStr(b, recs[i].Topic)
		b = binary.AppendVarint(b, int64(recs[i].Partition))
		prev := recs[i].KafkaOffset
		b = binary.AppendVarint(b, prev)
		b = binary.AppendUvarint(b, uint64(j-i))
		for _, r := range recs[i:j] {
			var ok bool
			if b, ok = p.appendRecord(b, r, prev, prevHeaders); !ok {
				return b[:orig], ErrNotPackable
			}
			prevHeaders = r.Headers
			prev = r.KafkaOffset
			if r == recs[0] && len(recs) > 1 && p.version >= PackedSchemasVersion && holdsStruct(r) {
				// packedBound counts no struct: size the rest of the
				// batch by its first record instead of growing b by
				// doubling (each doubling copies what came before).
				b = slices.Grow(b, (len(b)-recsAt)*(len(recs)-1)*9/8)
			}
		}
		i = j
	}
	return b, nil
}

// packedBound estimates the packed size of recs in version from above for
// the usual records (small offset deltas and timestamps), so AppendPacked
// rarely grows its buffer twice and does not zero much more than it
// fills. Headers sent once for a run of records (flag 8) count once: a
// file tail's path counted per line made the plugin allocate and zero
// ~30% more than it wrote.
//
// With payload >= 0 (the records' PackedSize summed by the caller), keys
// and values are not walked: text and bytes count their length as
// always, and what the payload holds beyond them (structured values)
// counts half again for its encoding's kinds and lengths.
func packedBound(recs []*data.Record, version uint32, payload int) int {
	n := 2 * binary.MaxVarintLen64
	plain := 0 // payload of text and bytes keys and values, when payload >= 0
	for i, r := range recs {
		if i == 0 || r.Topic != recs[i-1].Topic || r.Partition != recs[i-1].Partition {
			n += len(r.Topic) + 4*binary.MaxVarintLen64
		}
		n += 16 + 2*binary.MaxVarintLen32
		if payload < 0 {
			n += boundSize(r.Key) + boundSize(r.Value)
		} else {
			plain += plainSize(r.Key) + plainSize(r.Value)
		}
		if r.OriginalTopic != r.Topic {
			n += len(r.OriginalTopic) + 3*binary.MaxVarintLen64
		}
		if i > 0 && version >= PackedSharedHeadersVersion && sameHeaders(r.Headers, recs[i-1].Headers) {
			continue
		}
		for _, h := range r.Headers {
			n += 2*binary.MaxVarintLen32 + 1 + len(h.Key) + boundSize(h.Value)
		}
	}
	if payload >= 0 {
		n += plain + max(payload-plain, 0)*3/2
	}
	return n
}

// plainSize is treeSize of text, bytes and null, 0 for anything else.
func plainSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	}
	return 0
}

// holdsStruct reports whether packedBound counted nothing for some of r's
// key, value or header values (a struct). Otherwise the bound holds, and
// sizing the batch by its first record instead would over-allocate: that
// record carries the headers later ones share.
func holdsStruct(r *data.Record) bool {
	if _, ok := r.Key.(*data.Struct); ok {
		return true
	}
	if _, ok := r.Value.(*data.Struct); ok {
		return true
	}
	for _, h := range r.Headers {
		if _, ok := h.Value.(*data.Struct); ok {
			return true
		}
	}
	return false
}

// boundSize is treeSize for packedBound, but a struct counts nothing:
// walking it twice would cost more than growing the buffer once more.
func boundSize(v any) int {
	if _, ok := v.(*data.Struct); ok {
		return 0
	}
	return treeSize(v)
}

// packer is one AppendPackedVersion's state.
type packer struct {
	version uint32
	table   schemaTable // version 3
}

func (p *packer) appendRecord(b []byte, r *data.Record, prev int64, prevHeaders []data.Header) ([]byte, bool) {
	var flags byte
	switch {
	case len(r.Headers) == 0:
	case p.version >= PackedSharedHeadersVersion && sameHeaders(r.Headers, prevHeaders):
		flags |= packedSameHeaders
	default:
		flags |= packedHeaders
	}
	switch {
	case r.OriginalTopic == r.Topic && r.OriginalPartition == r.Partition && r.OriginalOffset == r.KafkaOffset:
	case r.OriginalTopic == "" && r.OriginalPartition == 0 && r.OriginalOffset == 0:
		flags |= packedNoOriginal
	default:
		flags |= packedOriginal
	}
	b = append(b, flags)
	b = binary.AppendVarint(b, r.KafkaOffset-prev)
	b = binary.AppendVarint(b, r.Timestamp)
	var ok bool
	if b, ok = p.appendData(b, r.KeySchema, r.Key); !ok {
		return b, false
	}
	if b, ok = p.appendData(b, r.ValueSchema, r.Value); !ok {
		return b, false
	}
	if flags&packedHeaders != 0 {
		b = binary.AppendUvarint(b, uint64(len(r.Headers)))
		for _, h := range r.Headers {
			b = appendStr(b, h.Key)
			if b, ok = p.appendData(b, h.Schema, h.Value); !ok {
				return b, false
			}
		}
	}
	if flags&packedOriginal != 0 {
		b = appendStr(b, r.OriginalTopic)
		b = binary.AppendVarint(b, int64(r.OriginalPartition))
		b = binary.AppendVarint(b, r.OriginalOffset)
	}
	return b, true
}

func (p *packer) appendData(b []byte, s *data.Schema, v any) ([]byte, bool) {
	k, ok := dataKind(s, v, p.version)
	if !ok {
		return b, false
	}
	b = append(b, k)
	switch k {
	case kindTree:
		return appendTree(b, v, 0)
	case kindSchema:
		b = binary.AppendUvarint(b, uint64(p.table.add(s)))
		return appendValue(b, s, v, 0)
	}
	switch x := v.(type) {
	case []byte:
		b = binary.AppendUvarint(b, uint64(len(x)))
		b = append(b, x...)
	case string:
		b = appendStr(b, x)
	}
	return b, true
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// packedReader slices a packed buffer; the first error sticks.
type packedReader struct {
	buf     []byte
	boxes   boxes   // keys and values boxed without an allocation each
	structs structs // version 3 structs, from slabs too
	off     int
	text    string // buf as a string, made on the first text value
	version uint64
	schemas []*data.Schema // version 3: the batch's schema table
	owned   bool           // values own their memory (the schema table)
	err     error

	headers     slab[data.Header] // records' headers, chunk at a time
	prevHeaders []data.Header     // the record before's, for flag 8 (version 4)
}

func (r *packedReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("connectv1: packed batch: bad %s at byte %d", what, r.off)
	}
}

func (r *packedReader) uvarint(what string) uint64 { return readVarint(r, what, binary.Uvarint) }

func (r *packedReader) varint(what string) int64 { return readVarint(r, what, binary.Varint) }

func readVarint[T int64 | uint64](r *packedReader, what string, read func([]byte) (T, int)) T {
	if r.err != nil {
		return 0
	}
	v, n := read(r.buf[r.off:])
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.off += n
	return v
}

func (r *packedReader) int32(what string) int32 {
	v := r.varint(what)
	if v != int64(int32(v)) {
		r.fail(what)
		return 0
	}
	return int32(v)
}

func (r *packedReader) byte(what string) byte {
	if r.err != nil {
		return 0
	}
	if r.off >= len(r.buf) {
		r.fail(what)
		return 0
	}
	c := r.buf[r.off]
	r.off++
	return c
}

// span returns the bounds of the next length-prefixed field.
func (r *packedReader) span(what string) (int, int) {
	n := r.uvarint(what)
	if r.err != nil {
		return 0, 0
	}
	if n > uint64(len(r.buf)-r.off) {
		r.fail(what)
		return 0, 0
	}
	start := r.off
	r.off += int(n)
	return start, r.off
}

func (r *packedReader) bytes(what string) []byte {
	s, e := r.span(what)
	if r.err != nil {
		return nil
	}
	if r.owned {
		return append([]byte{}, r.buf[s:e]...)
	}
	return r.buf[s:e:e]
}

// str returns a substring of one copy of the whole buffer, so text values
// cost no allocation each.
func (r *packedReader) str(what string) string {
	s, e := r.span(what)
	if r.err != nil {
		return ""
	}
	if r.owned {
		return string(r.buf[s:e])
	}
	if r.text == "" {
		r.text = string(r.buf)
	}
	return r.text[s:e]
}

var packedSchemas = [...]*data.Schema{
	schemaBytes: data.BytesSchema, schemaString: data.StringSchema,
	schemaBytes | kindOptional: data.OptionalBytesSchema, schemaString | kindOptional: data.OptionalStringSchema,
}

func (r *packedReader) data(what string) (*data.Schema, any) {
	k := r.byte(what)
	if r.err != nil {
		return nil, nil
	}
	if k == kindTree && r.version >= PackedTreesVersion {
		return nil, r.tree(what, 0)
	}
	if k == kindSchema && r.version >= PackedSchemasVersion {
		i := r.uvarint("schema index") // no concatenation: this runs per record
		if r.err == nil && i >= uint64(len(r.schemas)) {
			r.fail(what + " schema index")
		}
		if r.err != nil {
			return nil, nil
		}
		s := r.schemas[i]
		return s, r.value(s, 0)
	}
	sk := k &^ 3
	if k&^(3|3<<2|kindOptional) != 0 || sk&(3<<2) == 3<<2 || (sk&(3<<2) == 0 && sk&kindOptional != 0) {
		r.fail(what + " kind")
		return nil, nil
	}
	s := packedSchemas[sk]
	switch k & 3 {
	case kindNull:
		return s, nil
	case kindBytes:
		if sk&(3<<2) == schemaString {
			r.fail(what + " kind")
			return nil, nil
		}
		b := r.bytes(what)
		if r.err != nil {
			return nil, nil
		}
		return s, r.boxes.bytesValue(b)
	case kindString:
		if sk&(3<<2) == schemaBytes {
			r.fail(what + " kind")
			return nil, nil
		}
		t := r.str(what)
		if r.err != nil {
			return nil, nil
		}
		return s, r.boxes.stringValue(t)
	}
	r.fail(what + " kind")
	return nil, nil
}

// newHeaders returns n headers from the batch's slab (n > 0), capped so
// that appending to them copies rather than running into the next
// record's.
func (r *packedReader) newHeaders(n int) []data.Header {
	if cap(r.headers)-len(r.headers) < n {
		r.headers = make(slab[data.Header], 0, max(r.boxes.chunk, n))
	}
	l := len(r.headers)
	r.headers = r.headers[:l+n]
	return r.headers[l : l+n : l+n]
}

// sameHeaders reports whether a record with headers a may be sent as
// having those of the record before it, b (flag 8): the same keys, and
// the same schemas and values where a value is text, bytes or null (what
// compares cheaply and exactly; anything else is sent again).
func sameHeaders(a, b []data.Header) bool {
	if len(a) != len(b) || len(a) == 0 {
		return false
	}
	if &a[0] == &b[0] {
		return true // one slice shared by both records (a file tail's path)
	}
	for i := range a {
		x, y := &a[i], &b[i]
		if x.Key != y.Key || x.Schema != y.Schema {
			return false
		}
		switch xv := x.Value.(type) {
		case nil:
			if y.Value != nil {
				return false
			}
		case string:
			if yv, ok := y.Value.(string); !ok || xv != yv {
				return false
			}
		case []byte:
			if yv, ok := y.Value.([]byte); !ok || !bytes.Equal(xv, yv) || (xv == nil) != (yv == nil) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// Unpack decodes a packed buffer. Byte values share buf's memory, so buf
// must not change afterwards; text values share one copy of it. A
// malformed buffer is an error.
func Unpack(buf []byte) ([]*data.Record, error) { return unpack(buf, false) }

// PollPackedField is PollResponse.packed's field number in connect.proto:
// the Poll codecs of the SDK and the host write and find a batch by it
// without decoding the whole message.
const PollPackedField = 4

// UnpackShared is Unpack for a buffer its caller owns and never changes
// or reuses (one received for this batch alone): text values share buf's
// memory as byte values do, so the buffer is not copied into a string
// first. Values never overlap in the buffer, so a caller changing a
// byte value in place cannot change another value's text.
func UnpackShared(buf []byte) ([]*data.Record, error) { return unpack(buf, true) }

func unpack(buf []byte, shareText bool) ([]*data.Record, error) {
	r := &packedReader{buf: buf}
	if shareText && len(buf) > 0 {
		// A file tail's batch is ~2 MB of text: a copy of it was ~6% of
		// the worker's CPU, and a fresh 2 MB allocation per batch.
		r.text = unsafe.String(unsafe.SliceData(buf), len(buf))
	}
	r.boxes.chunk, r.structs.chunk = 16, 16
	switch r.version = r.uvarint("version"); {
	case r.err != nil:
	case r.version < PackedVersion || r.version > PackedNewestVersion:
		return nil, fmt.Errorf("connectv1: packed batch version %d, want %d to %d", r.version, PackedVersion, PackedNewestVersion)
	case r.version >= PackedSchemasVersion:
		r.readSchemas()
	}
	total := r.uvarint("record count")
	if r.err != nil {
		return nil, r.err
	}
	if total > uint64(len(buf)-r.off)/packedMinRecordLen {
		return nil, fmt.Errorf("connectv1: packed batch: %d records cannot fit in %d bytes", total, len(buf))
	}
	r.boxes.chunk, r.structs.chunk = max(int(total), 16), max(int(total), 16)
	slab := make([]data.Record, total)
	out := make([]*data.Record, 0, total)
	var topic string
	for r.err == nil && r.off < len(buf) {
		// Topics are few: one string per distinct topic in a row, so a
		// batch of raw bytes never copies the buffer to a string.
		if t := r.bytes("topic"); r.err == nil && string(t) != topic {
			topic = string(t)
		}
		part := r.int32("partition")
		prev := r.varint("base offset")
		n := r.uvarint("run length")
		if r.err == nil && (n == 0 || n > total-uint64(len(out))) {
			r.fail("run length")
		}
		for i := uint64(0); i < n && r.err == nil; i++ {
			rec := &slab[len(out)]
			rec.Topic, rec.Partition = topic, part
			r.record(rec, prev)
			prev = rec.KafkaOffset
			out = append(out, rec)
		}
	}
	if r.err == nil && uint64(len(out)) != total {
		r.fail("record count")
	}
	if r.err != nil {
		return nil, r.err
	}
	return out, nil
}

func (r *packedReader) record(rec *data.Record, prev int64) {
	flags := r.byte("record flags")
	if flags&^packedKnownFlags != 0 || flags&(packedOriginal|packedNoOriginal) == packedOriginal|packedNoOriginal ||
		flags&packedSameHeaders != 0 && (r.version < PackedSharedHeadersVersion || flags&packedHeaders != 0 || r.prevHeaders == nil) {
		r.fail("record flags")
		return
	}
	rec.KafkaOffset = prev + r.varint("offset")
	rec.Timestamp = r.varint("timestamp")
	rec.KeySchema, rec.Key = r.data("key")
	rec.ValueSchema, rec.Value = r.data("value")
	if flags&packedHeaders != 0 {
		n := r.uvarint("header count")
		if r.err == nil && (n == 0 || n > uint64(len(r.buf)-r.off)/2) {
			r.fail("header count")
			return
		}
		rec.Headers = r.newHeaders(int(n))
		for i := range rec.Headers {
			h := &rec.Headers[i]
			h.Key = r.str("header key")
			h.Schema, h.Value = r.data("header value")
		}
	}
	if flags&packedSameHeaders != 0 {
		// A copy of the previous record's: a transform may change one
		// record's headers in place (DropHeaders does) without touching
		// the other's. Keys and values are the same strings, so the
		// worker sees equal headers and converts them once.
		rec.Headers = r.newHeaders(len(r.prevHeaders))
		copy(rec.Headers, r.prevHeaders)
	}
	r.prevHeaders = rec.Headers
	switch {
	case flags&packedOriginal != 0:
		rec.OriginalTopic = r.str("original topic")
		rec.OriginalPartition = r.int32("original partition")
		rec.OriginalOffset = r.varint("original offset")
	case flags&packedNoOriginal == 0:
		rec.OriginalTopic, rec.OriginalPartition, rec.OriginalOffset = rec.Topic, rec.Partition, rec.KafkaOffset
	}
}
