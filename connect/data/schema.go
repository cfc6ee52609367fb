// Package data is Kafka Connect's data model in Go: schemas, structured
// values and the records that flow between connectors, converters and
// transformations. It mirrors org.apache.kafka.connect.data so that
// converters and SMTs behave as Kafka's do, and it has no dependencies so
// that plugins can import it.
//
// Values are plain Go values: nil, bool, int8, int16, int32, int64, float32,
// float64, []byte, string, []any (array), map[string]any (a map with string
// keys, and every schemaless map), *Map (a map with non-string keys),
// *Struct. Logical types are chosen by the schema's Name, as in Kafka:
// Decimal values are Decimal, Date/Time/Timestamp values are time.Time.
//
// Schemas are shared freely between records and treated as immutable once
// built: copy one (Copy, AsOptional) before changing it.
package data

import (
	"bytes"
	"fmt"
	"maps"
	"reflect"
	"slices"
	"time"
)

// Type is a schema type, spelled as Kafka's Schema.Type in lower case.
type Type string

// The schema types.
const (
	TypeInt8    Type = "int8"
	TypeInt16   Type = "int16"
	TypeInt32   Type = "int32"
	TypeInt64   Type = "int64"
	TypeFloat32 Type = "float32"
	TypeFloat64 Type = "float64"
	TypeBoolean Type = "boolean"
	TypeString  Type = "string"
	TypeBytes   Type = "bytes"
	TypeArray   Type = "array"
	TypeMap     Type = "map"
	TypeStruct  Type = "struct"
)

// IsPrimitive reports whether t is neither array, map nor struct.
func (t Type) IsPrimitive() bool {
	switch t {
	case TypeArray, TypeMap, TypeStruct:
		return false
	}
	return true
}

// Schema describes a value: Kafka's ConnectSchema. Version 0 means none.
type Schema struct {
	Type       Type
	Optional   bool
	Name       string
	Version    int32
	Doc        string
	Parameters map[string]string
	Default    any

	Fields []Field // struct
	Items  *Schema // array element
	Keys   *Schema // map key
	Values *Schema // map value
}

// Field is one field of a struct schema; Index is its position in Fields.
type Field struct {
	Name   string
	Index  int
	Schema *Schema
}

// The primitive schemas, required and optional, as Kafka's Schema.*_SCHEMA
// constants. Do not modify them.
var (
	Int8Schema            = &Schema{Type: TypeInt8}
	Int16Schema           = &Schema{Type: TypeInt16}
	Int32Schema           = &Schema{Type: TypeInt32}
	Int64Schema           = &Schema{Type: TypeInt64}
	Float32Schema         = &Schema{Type: TypeFloat32}
	Float64Schema         = &Schema{Type: TypeFloat64}
	BooleanSchema         = &Schema{Type: TypeBoolean}
	StringSchema          = &Schema{Type: TypeString}
	BytesSchema           = &Schema{Type: TypeBytes}
	OptionalInt8Schema    = &Schema{Type: TypeInt8, Optional: true}
	OptionalInt16Schema   = &Schema{Type: TypeInt16, Optional: true}
	OptionalInt32Schema   = &Schema{Type: TypeInt32, Optional: true}
	OptionalInt64Schema   = &Schema{Type: TypeInt64, Optional: true}
	OptionalFloat32Schema = &Schema{Type: TypeFloat32, Optional: true}
	OptionalFloat64Schema = &Schema{Type: TypeFloat64, Optional: true}
	OptionalBooleanSchema = &Schema{Type: TypeBoolean, Optional: true}
	OptionalStringSchema  = &Schema{Type: TypeString, Optional: true}
	OptionalBytesSchema   = &Schema{Type: TypeBytes, Optional: true}
)

// PrimitiveSchema returns a fresh schema of primitive type t.
func PrimitiveSchema(t Type, optional bool) *Schema {
	return &Schema{Type: t, Optional: optional}
}

// ArrayOf returns a required array schema of items.
func ArrayOf(items *Schema) *Schema { return &Schema{Type: TypeArray, Items: items} }

// MapOf returns a required map schema.
func MapOf(keys, values *Schema) *Schema { return &Schema{Type: TypeMap, Keys: keys, Values: values} }

// StructOf returns a required struct schema with fields in the given
// order; it sets each field's Index.
func StructOf(name string, fields ...Field) *Schema {
	s := &Schema{Type: TypeStruct, Name: name, Fields: make([]Field, len(fields))}
	for i, f := range fields {
		f.Index = i
		s.Fields[i] = f
	}
	return s
}

// F is shorthand for a Field in StructOf.
func F(name string, s *Schema) Field { return Field{Name: name, Schema: s} }

// Copy returns a shallow copy of s whose Fields and Parameters can be
// changed without touching s. Nested schemas are shared.
func (s *Schema) Copy() *Schema {
	if s == nil {
		return nil
	}
	c := *s
	c.Fields = slices.Clone(s.Fields)
	c.Parameters = maps.Clone(s.Parameters)
	return &c
}

// AsOptional returns s if it is optional, else an optional copy.
func (s *Schema) AsOptional() *Schema {
	if s == nil || s.Optional {
		return s
	}
	c := s.Copy()
	c.Optional = true
	return c
}

// Field returns the struct field called name, or nil.
func (s *Schema) Field(name string) *Field {
	if s == nil {
		return nil
	}
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i]
		}
	}
	return nil
}

// String names the schema as Kafka's toString does: Schema{name:TYPE}.
func (s *Schema) String() string {
	if s == nil {
		return "Schema{null}"
	}
	if s.Name != "" {
		return fmt.Sprintf("Schema{%s:%s}", s.Name, upper(s.Type))
	}
	return fmt.Sprintf("Schema{%s}", upper(s.Type))
}

func upper(t Type) string {
	b := []byte(t)
	for i, c := range b {
		if c >= 'a' && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// Equal reports whether two schemas are structurally equal, as Kafka's
// ConnectSchema.equals (type, optional, name, version, doc, parameters,
// default, fields, key and value schemas).
func (s *Schema) Equal(o *Schema) bool {
	if s == o {
		return true
	}
	if s == nil || o == nil {
		return false
	}
	if s.Type != o.Type || s.Optional != o.Optional || s.Name != o.Name || s.Version != o.Version ||
		s.Doc != o.Doc || !maps.Equal(s.Parameters, o.Parameters) || !ValueEqual(s.Default, o.Default) ||
		len(s.Fields) != len(o.Fields) || !s.Items.Equal(o.Items) || !s.Keys.Equal(o.Keys) || !s.Values.Equal(o.Values) {
		return false
	}
	for i := range s.Fields {
		a, b := s.Fields[i], o.Fields[i]
		if a.Name != b.Name || a.Index != b.Index || !a.Schema.Equal(b.Schema) {
			return false
		}
	}
	return true
}

// ValueEqual compares two values deeply, comparing structs by schema
// equality rather than pointer identity and Decimals by numeric value and
// scale.
func ValueEqual(a, b any) bool {
	switch x := a.(type) {
	case *Struct:
		y, ok := b.(*Struct)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil || x == y {
			return true
		}
		if !x.schema.Equal(y.schema) || len(x.values) != len(y.values) {
			return false
		}
		for i := range x.values {
			if !ValueEqual(x.values[i], y.values[i]) {
				return false
			}
		}
		return true
	case Decimal:
		y, ok := b.(Decimal)
		return ok && x.Scale == y.Scale && x.unscaled().Cmp(y.unscaled()) == 0
	case []byte:
		y, ok := b.([]byte)
		return ok && bytes.Equal(x, y)
	case time.Time:
		y, ok := b.(time.Time)
		return ok && x.Equal(y)
	case []any:
		y, ok := b.([]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for i := range x {
			if !ValueEqual(x[i], y[i]) {
				return false
			}
		}
		return true
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok || len(x) != len(y) {
			return false
		}
		for k, v := range x {
			w, ok := y[k]
			if !ok || !ValueEqual(v, w) {
				return false
			}
		}
		return true
	case *Map:
		y, ok := b.(*Map)
		if !ok || (x == nil) != (y == nil) {
			return false
		}
		if x == nil {
			return true
		}
		if len(x.Entries) != len(y.Entries) {
			return false
		}
		for i := range x.Entries {
			if !ValueEqual(x.Entries[i].Key, y.Entries[i].Key) || !ValueEqual(x.Entries[i].Value, y.Entries[i].Value) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}

// Validate checks v against s as Kafka's ConnectSchema.validateValue: a nil
// value needs an optional schema, the Go type must match the schema type
// (or the logical type chosen by Name), and arrays, maps and structs are
// checked element by element.
func (s *Schema) Validate(v any) error { return validate(s, v, location{}) }

// ValidateField is Validate with the error naming a struct field.
func (s *Schema) ValidateField(field string, v any) error {
	return validate(s, v, location{field: field, isField: true})
}

// DataError is a value that does not fit its schema, or a schema that is
// malformed: Kafka's DataException.
type DataError struct{ Msg string }

func (e *DataError) Error() string { return e.Msg }

func dataErrorf(format string, args ...any) error {
	return &DataError{Msg: fmt.Sprintf(format, args...)}
}

// location names where a value sits for error messages, built only when
// one is needed (validation runs for every Struct.Put).
type location struct {
	prefix  string // "element of array ", "key of map ", ... outermost last
	field   string
	isField bool
}

func (l location) String() string {
	base := "value"
	if l.isField {
		base = fmt.Sprintf("field: %q", l.field)
	}
	return l.prefix + base
}

func (l location) in(prefix string) location {
	l.prefix = prefix + l.prefix
	return l
}

func validate(s *Schema, v any, loc location) error {
	if s == nil {
		return dataErrorf("no schema defined for %s", loc)
	}
	if v == nil {
		if !s.Optional {
			return dataErrorf("invalid value: null used for required %s, schema type: %s", loc, upper(s.Type))
		}
		return nil
	}
	if !typeMatches(s, v) {
		name := ""
		if s.Name != "" {
			name = fmt.Sprintf(" %q", s.Name)
		}
		return dataErrorf("invalid Go value for schema%s with type %s: %T for %s", name, upper(s.Type), v, loc)
	}
	switch s.Type {
	case TypeStruct:
		st := v.(*Struct)
		if !st.schema.Equal(s) {
			return dataErrorf("struct schemas do not match for %s", loc)
		}
		return st.Validate()
	case TypeArray:
		eloc := loc.in("element of array ")
		if s.Items == nil {
			return dataErrorf("no schema defined for %s", eloc)
		}
		for _, e := range v.([]any) {
			if err := validate(s.Items, e, eloc); err != nil {
				return err
			}
		}
	case TypeMap:
		kloc, vloc := loc.in("key of map "), loc.in("value of map ")
		if s.Keys == nil {
			return dataErrorf("no schema defined for %s", kloc)
		}
		if s.Values == nil {
			return dataErrorf("no schema defined for %s", vloc)
		}
		var err error
		Entries(v)(func(k, e any) bool {
			if err = validate(s.Keys, k, kloc); err == nil {
				err = validate(s.Values, e, vloc)
			}
			return err == nil
		})
		return err
	}
	return nil
}

func typeMatches(s *Schema, v any) bool {
	switch s.Name {
	case DecimalName:
		_, ok := v.(Decimal)
		return ok
	case DateName, TimeName, TimestampName:
		_, ok := v.(time.Time)
		return ok
	}
	var ok bool
	switch s.Type {
	case TypeInt8:
		_, ok = v.(int8)
	case TypeInt16:
		_, ok = v.(int16)
	case TypeInt32:
		_, ok = v.(int32)
	case TypeInt64:
		_, ok = v.(int64)
	case TypeFloat32:
		_, ok = v.(float32)
	case TypeFloat64:
		_, ok = v.(float64)
	case TypeBoolean:
		_, ok = v.(bool)
	case TypeString:
		_, ok = v.(string)
	case TypeBytes:
		_, ok = v.([]byte)
	case TypeArray:
		_, ok = v.([]any)
	case TypeMap:
		switch v.(type) {
		case map[string]any, *Map:
			ok = true
		}
	case TypeStruct:
		var st *Struct
		st, ok = v.(*Struct)
		ok = ok && st != nil
	}
	return ok
}

// InferType returns the schema type of a schemaless Go value (Kafka's
// ConnectSchema.schemaType), or "" for nil and unknown types.
func InferType(v any) Type {
	switch v.(type) {
	case int8:
		return TypeInt8
	case int16:
		return TypeInt16
	case int32:
		return TypeInt32
	case int64:
		return TypeInt64
	case float32:
		return TypeFloat32
	case float64:
		return TypeFloat64
	case bool:
		return TypeBoolean
	case string:
		return TypeString
	case []byte:
		return TypeBytes
	case []any:
		return TypeArray
	case map[string]any, *Map:
		return TypeMap
	case *Struct:
		return TypeStruct
	}
	return ""
}
