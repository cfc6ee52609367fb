package connectv1

import (
	"github.com/sluice-io/sluice/connect/data"
)

// Version 3 reads and builds a data.Struct's field values by position
// (data.Struct.Values, data.InitStruct): access by field name is a linear
// search per field plus, for Put, a validation per field that a decoder
// producing values from the schema itself does not need; on a Debezium
// envelope that was most of the decoding.

// structValues returns st's field values by index (read only).
func structValues(st *data.Struct) []any { return st.Values() }

// structs hands out a batch's decoded structs from slabs, as boxes does
// for scalars: one allocation per chunk of structs and of field values,
// not two per struct.
type structs struct {
	chunk  int
	slab   []data.Struct
	values []any
}

// alloc returns a struct of schema s whose field values are vals (filled
// in by the caller before the struct is used).
func (a *structs) alloc(s *data.Schema) (*data.Struct, []any) {
	n := len(s.Fields)
	if len(a.slab) == cap(a.slab) {
		a.slab = make([]data.Struct, 0, a.chunk)
	}
	if n > cap(a.values)-len(a.values) {
		// About eight fields a record, but no more than a megabyte at a
		// time whatever record count a (hostile) buffer claims.
		a.values = make([]any, 0, max(n, min(8*a.chunk, 1<<16)))
	}
	vals := a.values[len(a.values) : len(a.values)+n : len(a.values)+n]
	if n == 0 {
		vals = []any{} // empty, not nil, as NewStruct makes it
	}
	a.values = a.values[:len(a.values)+n]
	a.slab = a.slab[:len(a.slab)+1]
	st := &a.slab[len(a.slab)-1]
	data.InitStruct(st, s, vals)
	return st, vals
}
