package connectv1

import (
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
)

// Version 3 reads and builds a data.Struct's field values by position.
// data.Struct keeps them private and offers only access by field name,
// a linear search per field plus (for Put) a validation per field that
// a decoder producing values from the schema itself does not need; on a
// Debezium envelope that is most of the decoding. So, as packed_box.go
// does for interfaces, this file relies on the Struct's layout: a schema
// pointer then the values slice. structLayoutOK checks it at start-up on
// a probe struct, through the public API; if data.Struct ever changes
// shape, the name-based path below is used instead, slower but correct.
type structLayout struct {
	schema *data.Schema
	values []any
}

var structLayoutOK = func() bool {
	if unsafe.Sizeof(data.Struct{}) != unsafe.Sizeof(structLayout{}) ||
		unsafe.Alignof(data.Struct{}) != unsafe.Alignof(structLayout{}) {
		return false
	}
	s := data.StructOf("probe", data.F("a", data.OptionalInt32Schema), data.F("b", data.OptionalStringSchema))
	st := data.NewStruct(s).MustPut("b", "x")
	l := (*structLayout)(unsafe.Pointer(st))
	if l.schema != s || len(l.values) != 2 || l.values[0] != nil || l.values[1] != "x" {
		return false
	}
	var probe data.Struct
	pl := (*structLayout)(unsafe.Pointer(&probe))
	pl.schema, pl.values = s, []any{int32(7), nil}
	return probe.Schema() == s && probe.GetWithoutDefault("a") == int32(7) && probe.GetWithoutDefault("b") == nil
}()

// useStructLayout is structLayoutOK; tests turn it off to cover the
// name-based path.
var useStructLayout = structLayoutOK

// structValues returns st's field values by index (read only).
func structValues(st *data.Struct) []any {
	if useStructLayout {
		return (*structLayout)(unsafe.Pointer(st)).values
	}
	s := st.Schema()
	vs := make([]any, len(s.Fields))
	for _, f := range s.Fields {
		vs[f.Index] = st.GetWithoutDefault(f.Name)
	}
	return vs
}

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
	if !useStructLayout {
		return data.NewStruct(s), make([]any, n)
	}
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
	l := (*structLayout)(unsafe.Pointer(st))
	l.schema, l.values = s, vals
	return st, vals
}

// finishStruct completes a struct from alloc once vals hold its fields: with
// the layout, vals already are its values; without it they are Put by
// name (they fit the schema by construction, so Put cannot fail unless
// data.Struct's rules changed, which is then an error).
func finishStruct(st *data.Struct, vals []any) error {
	if useStructLayout {
		return nil
	}
	for i, f := range st.Schema().Fields {
		if vals[i] == nil {
			continue
		}
		if err := st.Put(f.Name, vals[i]); err != nil {
			return err
		}
	}
	return nil
}
