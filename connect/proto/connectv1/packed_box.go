package connectv1

import (
	"time"
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
)

// Boxing a []byte or a string in an interface copies its header to the
// heap: one allocation per key and value, which is most of what Unpack
// allocates. boxes keeps a batch's headers in slabs instead (chunk
// entries each, a new slab when one is full: a slab never grows, so boxed
// entries stay put) and builds each interface pointing into them, as the
// compiler would point it at its own copy. That relies on the
// (long-stable) layout of an empty interface, a type word and a data
// word, and on nothing writing to a slab entry once boxed: both hold
// here, the slabs are private to one Unpack. Version 3 struct fields box
// their numbers and times the same way.
type boxes struct {
	chunk   int
	bytes   slab[[]byte]
	strings slab[string]
	int32s  slab[int32]
	int64s  slab[int64]
	float64 slab[float64]
	times   slab[time.Time]
	decs    slab[data.Decimal]
}

type slab[T any] []T

type eface struct {
	typ, data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	bytesType   = typeWord([]byte(nil))
	stringType  = typeWord("")
	int32Type   = typeWord(int32(0))
	int64Type   = typeWord(int64(0))
	float64Type = typeWord(float64(0))
	timeType    = typeWord(time.Time{})
	decType     = typeWord(data.Decimal{})
)

func box(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// put stores v in the slab (a new one of chunk entries when full) and
// boxes it with type word typ, which must be v's type.
func put[T any](s *slab[T], chunk int, typ unsafe.Pointer, v T) any {
	if len(*s) == cap(*s) {
		*s = make([]T, 0, chunk)
	}
	*s = append(*s, v)
	return box(typ, unsafe.Pointer(&(*s)[len(*s)-1]))
}

// bytesValue boxes v in the bytes slab.
func (b *boxes) bytesValue(v []byte) any { return put(&b.bytes, b.chunk, bytesType, v) }

// stringValue is bytesValue for text.
func (b *boxes) stringValue(s string) any { return put(&b.strings, b.chunk, stringType, s) }

func (b *boxes) int32Value(v int32) any { return put(&b.int32s, b.chunk, int32Type, v) }

func (b *boxes) int64Value(v int64) any { return put(&b.int64s, b.chunk, int64Type, v) }

func (b *boxes) float64Value(v float64) any { return put(&b.float64, b.chunk, float64Type, v) }

func (b *boxes) timeValue(v time.Time) any { return put(&b.times, b.chunk, timeType, v) }

func (b *boxes) decimalValue(v data.Decimal) any { return put(&b.decs, b.chunk, decType, v) }
