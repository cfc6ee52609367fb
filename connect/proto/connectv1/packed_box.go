package connectv1

import "unsafe"

// Boxing a []byte or a string in an interface copies its header to the
// heap: one allocation per key and value, which is most of what Unpack
// allocates. boxes keeps a batch's headers in slabs instead (chunk
// entries each, a new slab when one is full: a slab never grows, so boxed
// entries stay put) and builds each interface pointing into them, as the
// compiler would point it at its own copy. That relies on the
// (long-stable) layout of an empty interface, a type word and a data
// word, and on nothing writing to a slab entry once boxed: both hold
// here, the slabs are private to one Unpack.
type boxes struct {
	chunk   int
	bytes   [][]byte
	strings []string
}

type eface struct {
	typ, data unsafe.Pointer
}

func typeWord(v any) unsafe.Pointer { return (*eface)(unsafe.Pointer(&v)).typ }

var (
	bytesType  = typeWord([]byte(nil))
	stringType = typeWord("")
)

func box(typ, data unsafe.Pointer) (v any) {
	e := (*eface)(unsafe.Pointer(&v))
	e.typ, e.data = typ, data
	return v
}

// bytesValue boxes v in the bytes slab.
func (b *boxes) bytesValue(v []byte) any {
	if len(b.bytes) == cap(b.bytes) {
		b.bytes = make([][]byte, 0, b.chunk)
	}
	b.bytes = append(b.bytes, v)
	return box(bytesType, unsafe.Pointer(&b.bytes[len(b.bytes)-1]))
}

// stringValue is bytesValue for text.
func (b *boxes) stringValue(s string) any {
	if len(b.strings) == cap(b.strings) {
		b.strings = make([]string, 0, b.chunk)
	}
	b.strings = append(b.strings, s)
	return box(stringType, unsafe.Pointer(&b.strings[len(b.strings)-1]))
}
