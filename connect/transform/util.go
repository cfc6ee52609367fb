package transform

import (
	"fmt"
	"maps"
	"sync"

	"github.com/sluice-io/sluice/connect/data"
)

func dataErr(format string, args ...any) error {
	return &data.DataError{Msg: fmt.Sprintf(format, args...)}
}

func typeName(v any) string {
	if v == nil {
		return "null"
	}
	return fmt.Sprintf("%T", v)
}

// requireMap is Kafka's Requirements.requireMap: schemaless values must be
// maps.
func requireMap(v any, purpose string) (map[string]any, error) {
	m, ok := v.(map[string]any)
	if !ok {
		return nil, dataErr("only Map objects supported in absence of schema for [%s], found: %s", purpose, typeName(v))
	}
	return m, nil
}

// requireStruct is Kafka's Requirements.requireStruct.
func requireStruct(v any, purpose string) (*data.Struct, error) {
	st, ok := v.(*data.Struct)
	if !ok || st == nil {
		return nil, dataErr("only Struct objects supported for [%s], found: %s", purpose, typeName(v))
	}
	return st, nil
}

// copySchemaBasics starts a schema of type t with s's name, version, doc
// and parameters (Kafka's SchemaUtil.copySchemaBasics; optionality and
// default are not copied).
func copySchemaBasics(s *data.Schema, t data.Type) *data.Schema {
	return &data.Schema{Type: t, Name: s.Name, Version: s.Version, Doc: s.Doc, Parameters: maps.Clone(s.Parameters)}
}

// addField appends a field to a struct schema being built.
func addField(s *data.Schema, name string, fs *data.Schema) {
	s.Fields = append(s.Fields, data.Field{Name: name, Index: len(s.Fields), Schema: fs})
}

func fieldValue(st *data.Struct, name string, withDefault bool) any {
	if withDefault {
		return st.Get(name)
	}
	return st.GetWithoutDefault(name)
}

// schemaCache remembers the output schema built for an input schema, as
// Kafka's SMTs do, so records sharing a schema keep sharing one. Schemas
// are immutable, so the pointer is the key.
type schemaCache struct {
	mu sync.Mutex
	m  map[*data.Schema]*data.Schema
}

func (c *schemaCache) get(in *data.Schema, build func(*data.Schema) (*data.Schema, error)) (*data.Schema, error) {
	c.mu.Lock()
	out, ok := c.m[in]
	c.mu.Unlock()
	if ok {
		return out, nil
	}
	out, err := build(in)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) >= 16 {
		c.m = map[*data.Schema]*data.Schema{}
	}
	c.m[in] = out
	c.mu.Unlock()
	return out, nil
}

// fieldSMT is the shape most field-level SMTs share: a nil operand passes
// through, a schemaless one must be a map, and a schema'd one a struct
// whose output schema is built once per input schema.
type fieldSMT struct {
	purpose string
	build   func(*data.Schema) (*data.Schema, error) // nil: the schema is kept
	// onMap returns the new schemaless value (it may change m in place:
	// the chain works on a copy of the record).
	onMap func(r *data.Record, m map[string]any) (any, error)
	// onStruct fills out (of the output schema) from st.
	onStruct func(r *data.Record, st, out *data.Struct) error
	cache    schemaCache
}

func (f *fieldSMT) stage(o operand) stageFunc {
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if v == nil {
			return r, nil
		}
		if s == nil {
			m, err := requireMap(v, f.purpose)
			if err != nil {
				return nil, err
			}
			nv, err := f.onMap(r, m)
			if err != nil {
				return nil, err
			}
			return o.set(r, nil, nv), nil
		}
		st, err := requireStruct(v, f.purpose)
		if err != nil {
			return nil, err
		}
		ns := s
		if f.build != nil {
			if ns, err = f.cache.get(st.Schema(), f.build); err != nil {
				return nil, err
			}
		}
		out := data.NewStruct(ns)
		if err := f.onStruct(r, st, out); err != nil {
			return nil, err
		}
		return o.set(r, ns, out), nil
	}
}
