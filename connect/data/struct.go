package data

import (
	"fmt"
	"iter"
	"sort"
	"strings"
)

// Struct is a structured value with a struct schema: Kafka's Struct.
// Values are stored by field index and checked against the field schema
// on Put.
type Struct struct {
	schema *Schema
	values []any
}

// NewStruct returns an empty struct of schema s, which must be of type
// struct.
func NewStruct(s *Schema) *Struct {
	if s == nil || s.Type != TypeStruct {
		panic(fmt.Sprintf("data: NewStruct needs a struct schema, got %v", s))
	}
	return &Struct{schema: s, values: make([]any, len(s.Fields))}
}

// Schema returns the struct's schema.
func (st *Struct) Schema() *Schema { return st.schema }

func (st *Struct) field(name string) (*Field, error) {
	f := st.schema.Field(name)
	if f == nil {
		return nil, dataErrorf("%s is not a valid field name", name)
	}
	return f, nil
}

// Get returns the value of field name, or the field schema's default if
// the value is nil, or nil if there is no such field.
func (st *Struct) Get(name string) any {
	f := st.schema.Field(name)
	if f == nil {
		return nil
	}
	v := st.values[f.Index]
	if v == nil {
		return f.Schema.Default
	}
	return v
}

// Lookup is Get with an error for an unknown field name, as Kafka's get.
func (st *Struct) Lookup(name string) (any, error) {
	if _, err := st.field(name); err != nil {
		return nil, err
	}
	return st.Get(name), nil
}

// GetWithoutDefault returns the stored value of field name, ignoring the
// field's default.
func (st *Struct) GetWithoutDefault(name string) any {
	f := st.schema.Field(name)
	if f == nil {
		return nil
	}
	return st.values[f.Index]
}

// Put sets field name to v after checking v against the field's schema.
func (st *Struct) Put(name string, v any) error {
	f, err := st.field(name)
	if err != nil {
		return err
	}
	if err := f.Schema.ValidateField(name, v); err != nil {
		return err
	}
	st.values[f.Index] = v
	return nil
}

// MustPut is Put that panics on error, returning st for chaining; for
// building values in code and tests.
func (st *Struct) MustPut(name string, v any) *Struct {
	if err := st.Put(name, v); err != nil {
		panic(err)
	}
	return st
}

// Validate checks every field: a nil value is fine for an optional field
// or one with a default, anything else must fit the field's schema.
func (st *Struct) Validate() error {
	for _, f := range st.schema.Fields {
		v := st.values[f.Index]
		if v == nil && (f.Schema.Optional || f.Schema.Default != nil) {
			continue
		}
		if err := f.Schema.ValidateField(f.Name, v); err != nil {
			return err
		}
	}
	return nil
}

// Clone returns a deep copy of st sharing its schema.
func (st *Struct) Clone() *Struct {
	if st == nil {
		return nil
	}
	c := &Struct{schema: st.schema, values: make([]any, len(st.values))}
	for i, v := range st.values {
		c.values[i] = CloneValue(v)
	}
	return c
}

// String renders the struct as Kafka's Struct.toString: Struct{a=1,b=x},
// omitting nil fields, values as Java's toString prints them (JavaString).
func (st *Struct) String() string {
	var b strings.Builder
	b.WriteString("Struct{")
	first := true
	for _, f := range st.schema.Fields {
		v := st.values[f.Index]
		if v == nil {
			continue
		}
		if !first {
			b.WriteByte(',')
		}
		first = false
		b.WriteString(f.Name)
		b.WriteByte('=')
		b.WriteString(JavaString(v))
	}
	b.WriteByte('}')
	return b.String()
}

// Map is a map value whose keys are not all strings (a map schema with a
// non-string key schema). Entries keep their order.
type Map struct {
	Entries []MapEntry
}

// MapEntry is one key/value pair of a Map.
type MapEntry struct {
	Key, Value any
}

// Get returns the value for key k (compared with ValueEqual) and whether
// it exists.
func (m *Map) Get(k any) (any, bool) {
	for _, e := range m.Entries {
		if ValueEqual(e.Key, k) {
			return e.Value, true
		}
	}
	return nil, false
}

// Put sets key k to v, replacing an existing entry.
func (m *Map) Put(k, v any) {
	for i := range m.Entries {
		if ValueEqual(m.Entries[i].Key, k) {
			m.Entries[i].Value = v
			return
		}
	}
	m.Entries = append(m.Entries, MapEntry{Key: k, Value: v})
}

// Entries iterates the pairs of a map value (map[string]any in key order,
// or *Map in entry order); other values yield nothing.
func Entries(v any) iter.Seq2[any, any] {
	return func(yield func(any, any) bool) {
		switch m := v.(type) {
		case map[string]any:
			keys := make([]string, 0, len(m))
			for k := range m {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				if !yield(k, m[k]) {
					return
				}
			}
		case *Map:
			if m == nil {
				return
			}
			for _, e := range m.Entries {
				if !yield(e.Key, e.Value) {
					return
				}
			}
		}
	}
}

// CloneValue deep-copies a value: byte slices, arrays, maps, *Map and
// *Struct are copied; schemas and immutable values are shared.
func CloneValue(v any) any {
	switch x := v.(type) {
	case []byte:
		if x == nil {
			return x
		}
		return append([]byte{}, x...)
	case []any:
		if x == nil {
			return x
		}
		c := make([]any, len(x))
		for i, e := range x {
			c[i] = CloneValue(e)
		}
		return c
	case map[string]any:
		return CloneMap(x)
	case *Map:
		if x == nil {
			return x
		}
		c := &Map{Entries: make([]MapEntry, len(x.Entries))}
		for i, e := range x.Entries {
			c.Entries[i] = MapEntry{Key: CloneValue(e.Key), Value: CloneValue(e.Value)}
		}
		return c
	case *Struct:
		return x.Clone()
	case Decimal:
		return x.Clone()
	}
	return v
}

// CloneMap deep-copies a string-keyed map (nil stays nil).
func CloneMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	c := make(map[string]any, len(m))
	for k, e := range m {
		c[k] = CloneValue(e)
	}
	return c
}

// Values returns the struct's field values by field index, nil where a
// field is unset. The slice is the struct's own, for encoders that walk a
// struct by position: callers must not change it.
func (st *Struct) Values() []any { return st.values }

// InitStruct makes *st a struct of schema s whose field values are vals,
// by field index, taking vals as its own. It checks nothing but the shape:
// it is for decoders that built each value from s itself (a packed batch
// decodes thousands of structs, and Put's name lookup and validation per
// field were most of the work), and it lets them place structs in one
// slab instead of allocating each. It panics if s is not a struct schema
// or vals has not one entry per field, as NewStruct panics.
func InitStruct(st *Struct, s *Schema, vals []any) {
	if s == nil || s.Type != TypeStruct {
		panic(fmt.Sprintf("data: InitStruct needs a struct schema, got %v", s))
	}
	if len(vals) != len(s.Fields) {
		panic(fmt.Sprintf("data: InitStruct: %d values for %d fields", len(vals), len(s.Fields)))
	}
	st.schema, st.values = s, vals
}
