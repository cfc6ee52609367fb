package connectv1

import (
	"encoding/binary"
	"math"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// Trees (packed version 2): a schemaless structured key, value or header
// (a JSON-like map, an array, a number or a boolean; what a syslog or JSON
// source makes with no Connect schema) as one tagged encoding inside the
// packed buffer, instead of a Value message per node:
//
//	data := kindTree tree                        (kind 3, no schema)
//	tree := tag payload
//	  0 null, 1 false, 2 true
//	  3 int8, 4 int16, 5 int32, 6 int64          zigzag varint
//	  7 float32, 8 float64                       IEEE 754 bits, little endian
//	  9 string, 10 bytes                         uvarint(len) bytes
//	  11 array                                   uvarint(n) tree{n}
//	  12 map with string keys                    uvarint(n) (str(key) tree){n}
//	  13 map with other keys                     uvarint(n) (tree tree){n}
//
// It decodes to exactly the Go values ValueFromProto gives for the same
// value sent as messages under no schema: map[string]any when every key
// is a string, else *data.Map.

// PackedTreesVersion is the packed format with trees; a side sends it
// only to a peer that said it reads it (StartResponse.packed_version,
// PollRequest.packed_version).
const PackedTreesVersion = 2

const kindTree = 3

const (
	treeNull byte = iota
	treeFalse
	treeTrue
	treeInt8
	treeInt16
	treeInt32
	treeInt64
	treeFloat32
	treeFloat64
	treeString
	treeBytes
	treeArray
	treeStringMap
	treeMap
)

// maxTreeDepth bounds nesting, so a hostile buffer cannot exhaust the
// decoder's stack; deeper values travel as messages.
const maxTreeDepth = 100

// isTree reports whether v's top level is carried as a tree (strings and
// bytes keep their raw kinds).
func isTree(v any) bool {
	switch v.(type) {
	case bool, int8, int16, int32, int64, float32, float64, []any, map[string]any, *data.Map:
		return true
	}
	return false
}

// appendTree appends v, or reports false for a value a tree cannot carry
// (a struct, which needs its schema; a Go type Connect has no name for).
func appendTree(b []byte, v any, depth int) ([]byte, bool) {
	if depth > maxTreeDepth {
		return b, false
	}
	switch x := v.(type) {
	case nil:
		return append(b, treeNull), true
	case bool:
		if x {
			return append(b, treeTrue), true
		}
		return append(b, treeFalse), true
	case int8:
		return binary.AppendVarint(append(b, treeInt8), int64(x)), true
	case int16:
		return binary.AppendVarint(append(b, treeInt16), int64(x)), true
	case int32:
		return binary.AppendVarint(append(b, treeInt32), int64(x)), true
	case int64:
		return binary.AppendVarint(append(b, treeInt64), x), true
	case float32:
		return binary.LittleEndian.AppendUint32(append(b, treeFloat32), math.Float32bits(x)), true
	case float64:
		return binary.LittleEndian.AppendUint64(append(b, treeFloat64), math.Float64bits(x)), true
	case string:
		return appendStr(append(b, treeString), x), true
	case []byte:
		b = binary.AppendUvarint(append(b, treeBytes), uint64(len(x)))
		return append(b, x...), true
	case []any:
		b = binary.AppendUvarint(append(b, treeArray), uint64(len(x)))
		for _, e := range x {
			var ok bool
			if b, ok = appendTree(b, e, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case map[string]any:
		b = binary.AppendUvarint(append(b, treeStringMap), uint64(len(x)))
		for k, e := range x {
			b = appendStr(b, k)
			var ok bool
			if b, ok = appendTree(b, e, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case *data.Map:
		if x == nil { // as messages: a map with no entries
			return binary.AppendUvarint(append(b, treeStringMap), 0), true
		}
		tag := byte(treeStringMap)
		for _, e := range x.Entries {
			if _, ok := e.Key.(string); !ok {
				tag = treeMap
				break
			}
		}
		b = binary.AppendUvarint(append(b, tag), uint64(len(x.Entries)))
		for _, e := range x.Entries {
			var ok bool
			if tag == treeStringMap {
				b = appendStr(b, e.Key.(string))
			} else if b, ok = appendTree(b, e.Key, depth+1); !ok {
				return b, false
			}
			if b, ok = appendTree(b, e.Value, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	}
	return b, false
}

// treeSize is what a tree weighs for max_bytes, counted as Data.SizeOf
// counts messages: the payload bytes of its leaves and keys.
func treeSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []byte:
		return len(x)
	case bool, int8:
		return 1
	case int16:
		return 2
	case int32, float32:
		return 4
	case int64, float64:
		return 8
	case []any:
		n := 0
		for _, e := range x {
			n += treeSize(e)
		}
		return n
	case map[string]any:
		n := 0
		for k, e := range x {
			n += len(k) + treeSize(e)
		}
		return n
	case *data.Map:
		n := 0
		if x != nil {
			for _, e := range x.Entries {
				n += treeSize(e.Key) + treeSize(e.Value)
			}
		}
		return n
	case *data.Struct: // version 3
		n := 0
		if x != nil {
			for _, e := range structValues(x) {
				n += treeSize(e)
			}
		}
		return n
	case data.Decimal:
		if x.Unscaled == nil {
			return 1
		}
		return x.Unscaled.BitLen()/8 + 1
	case time.Time:
		return 8
	}
	return 0
}

// tree decodes one tree.
func (r *packedReader) tree(what string, depth int) any {
	if depth > maxTreeDepth {
		r.fail(what + ": nested too deep")
		return nil
	}
	tag := r.byte(what)
	if r.err != nil {
		return nil
	}
	switch tag {
	case treeNull:
		return nil
	case treeFalse:
		return false
	case treeTrue:
		return true
	case treeInt8, treeInt16, treeInt32, treeInt64:
		v := r.varint(what)
		switch {
		case tag == treeInt8 && v == int64(int8(v)):
			return int8(v)
		case tag == treeInt16 && v == int64(int16(v)):
			return int16(v)
		case tag == treeInt32 && v == int64(int32(v)):
			return int32(v)
		case tag == treeInt64:
			return v
		}
		r.fail(what + ": integer out of range")
		return nil
	case treeFloat32:
		if len(r.buf)-r.off < 4 {
			r.fail(what)
			return nil
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.off:]))
		r.off += 4
		return v
	case treeFloat64:
		if len(r.buf)-r.off < 8 {
			r.fail(what)
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.off:]))
		r.off += 8
		return v
	case treeString:
		return r.str(what)
	case treeBytes:
		return r.bytes(what)
	case treeArray:
		n := r.count(what)
		a := make([]any, n)
		for i := range a {
			a[i] = r.tree(what, depth+1)
		}
		return a
	case treeStringMap:
		n := r.count(what)
		m := make(map[string]any, n)
		for range n {
			k := r.str(what + " key")
			m[k] = r.tree(what, depth+1)
		}
		return m
	case treeMap:
		n := r.count(what)
		dm := &data.Map{Entries: make([]data.MapEntry, n)}
		for i := range dm.Entries {
			dm.Entries[i].Key = r.tree(what+" key", depth+1)
			dm.Entries[i].Value = r.tree(what, depth+1)
		}
		return dm
	}
	r.fail(what + ": unknown tree tag")
	return nil
}

// count reads an element count no larger than the bytes left could hold
// (every element takes at least one byte), so a hostile count cannot make
// the decoder allocate more than the buffer's size.
func (r *packedReader) count(what string) int {
	n := r.uvarint(what + " count")
	if r.err == nil && n > uint64(len(r.buf)-r.off) {
		r.fail(what + " count")
	}
	if r.err != nil {
		return 0
	}
	return int(n)
}
