package plan

import (
	"fmt"
	"slices"
	"sort"

	"github.com/sluice-io/sluice/connect/data"
)

// Column is a column a record writes: its name and the Connect schema of
// its value (inferred from the value when the record is schemaless).
type Column struct {
	Name   string
	Schema *data.Schema
}

// Row is what one record does to one table: write (per insert.mode) or
// delete the row with key Key.
type Row struct {
	Index   int    // the record's index in its Put batch
	Table   string // table.name.format applied, not yet parsed
	Delete  bool
	Key     []Column // primary-key columns, empty with pk.mode=none
	KeyVals []any
	Cols    []Column // the other columns (none for a delete)
	Vals    []any
}

// field is one named value of a record's key or value.
type field struct {
	name   string
	schema *data.Schema
	value  any
}

// RowOf plans the row of record r, at index i of its batch. skip is true
// for records that change nothing: tombstones without delete.enabled,
// Debezium truncate and message events. An error means the record does
// not fit (errors.tolerance and the dead letter queue apply to it).
func (c *Config) RowOf(i int, r *data.Record) (row Row, skip bool, err error) {
	row = Row{Index: i, Table: c.TableName(r.Topic)}
	value, vschema := r.Value, r.ValueSchema
	var before any
	if env, ok := envelopeOf(value); ok {
		switch env.op {
		case "c", "r", "u":
			value, vschema = env.after, env.afterSchema
			if value == nil {
				return row, false, fmt.Errorf("debezium event op=%s without an after value", env.op)
			}
		case "d":
			value, before = nil, env.before
			row.Delete = true
		default: // t (truncate), m (message): nothing to write
			return row, true, nil
		}
	} else if value == nil {
		if !c.DeleteEnabled {
			return row, true, nil // a tombstone writes nothing
		}
		row.Delete = true
	}
	if row.Delete && c.PKMode != PKRecordKey && c.PKMode != PKRecordValue {
		return row, false, fmt.Errorf("a delete needs pk.mode record_key or record_value, not %s", c.PKMode)
	}
	var vfields []field
	if !row.Delete {
		if vfields, err = fieldsOf(value, vschema, "value"); err != nil {
			return row, false, err
		}
	}
	var keyNames []string
	switch c.PKMode {
	case PKKafka:
		names := KafkaPKNames
		if len(c.PKFields) == 3 {
			names = c.PKFields
		}
		row.Key = []Column{{names[0], data.StringSchema}, {names[1], data.Int32Schema}, {names[2], data.Int64Schema}}
		row.KeyVals = []any{r.Topic, r.Partition, r.KafkaOffset}
	case PKRecordKey:
		if r.Key == nil {
			return row, false, fmt.Errorf("pk.mode=record_key but the record has no key")
		}
		kfields, err := keyFieldsOf(r.Key, r.KeySchema, c.PKFields)
		if err != nil {
			return row, false, err
		}
		keyNames = c.setKey(&row, kfields)
	case PKRecordValue:
		src := vfields
		if row.Delete {
			if before == nil {
				return row, false, fmt.Errorf("debezium delete without a before value cannot give pk.mode=record_value's key")
			}
			env, _ := envelopeOf(r.Value)
			if src, err = fieldsOf(before, env.beforeSchema, "before"); err != nil {
				return row, false, err
			}
		}
		kfields, err := pick(src, c.PKFields, "value")
		if err != nil {
			return row, false, err
		}
		keyNames = c.setKey(&row, kfields)
	}
	for k, v := range row.KeyVals {
		if v == nil {
			return row, false, fmt.Errorf("primary-key field %s is null", row.Key[k].Name)
		}
	}
	row.Cols = make([]Column, 0, len(vfields))
	row.Vals = make([]any, 0, len(vfields))
	for _, f := range vfields {
		if slices.Contains(keyNames, f.name) || c.Fields != nil && !c.Fields[f.name] {
			continue
		}
		row.Cols = append(row.Cols, Column{f.name, f.schema})
		row.Vals = append(row.Vals, f.value)
	}
	if !row.Delete && len(row.Cols) == 0 && len(row.Key) == 0 {
		return row, false, fmt.Errorf("the record has no fields to write")
	}
	return row, false, nil
}

func (c *Config) setKey(row *Row, kf []field) []string {
	names := make([]string, len(kf))
	row.Key, row.KeyVals = make([]Column, len(kf)), make([]any, len(kf))
	for i, f := range kf {
		row.Key[i], row.KeyVals[i], names[i] = Column{f.name, f.schema}, f.value, f.name
	}
	return names
}

// keyFieldsOf gives pk.mode=record_key's key columns: a primitive key is
// one column (pk.fields' one name, or __connect_key); a struct or map key
// gives its fields named in pk.fields, or all of them.
func keyFieldsOf(key any, s *data.Schema, pkFields []string) ([]field, error) {
	switch key.(type) {
	case *data.Struct, map[string]any:
		fs, err := fieldsOf(key, s, "key")
		if err != nil {
			return nil, err
		}
		return pick(fs, pkFields, "key")
	}
	if len(pkFields) > 1 {
		return nil, fmt.Errorf("a primitive key gives one column but pk.fields names %d", len(pkFields))
	}
	name := DefaultKeyColumn
	if len(pkFields) == 1 {
		name = pkFields[0]
	}
	if s == nil {
		s = inferSchema(key)
	}
	if s.Type == data.TypeStruct || s.Type == data.TypeMap || s.Type == data.TypeArray {
		return nil, fmt.Errorf("key of schema %s cannot be a primary key", s)
	}
	return []field{{name, s, key}}, nil
}

// pick keeps the fields named in names, in that order (all when empty).
func pick(fs []field, names []string, what string) ([]field, error) {
	if len(names) == 0 {
		if len(fs) == 0 {
			return nil, fmt.Errorf("the record %s has no fields for a primary key", what)
		}
		return fs, nil
	}
	out := make([]field, 0, len(names))
	for _, n := range names {
		found := false
		for _, f := range fs {
			if f.name == n {
				out, found = append(out, f), true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("pk.fields names %s, which the record %s does not have", n, what)
		}
	}
	return out, nil
}

// fieldsOf lists the fields of a struct value, or of a schemaless map in
// name order with inferred schemas.
func fieldsOf(v any, s *data.Schema, what string) ([]field, error) {
	switch x := v.(type) {
	case *data.Struct:
		sch := x.Schema()
		out := make([]field, len(sch.Fields))
		for i, f := range sch.Fields {
			out[i] = field{f.Name, f.Schema, x.Get(f.Name)}
		}
		return out, nil
	case map[string]any:
		names := make([]string, 0, len(x))
		for k := range x {
			names = append(names, k)
		}
		sort.Strings(names)
		out := make([]field, len(names))
		for i, n := range names {
			var fs *data.Schema
			if s != nil && s.Type == data.TypeMap && s.Values != nil {
				fs = s.Values
			} else {
				fs = inferSchema(x[n])
			}
			out[i] = field{n, fs, x[n]}
		}
		return out, nil
	case nil:
		return nil, fmt.Errorf("the record %s is null", what)
	}
	return nil, fmt.Errorf("the record %s is a %T, not a struct or a map: a table row needs named fields", what, v)
}

// inferSchema is the optional schema of a schemaless value, so that
// auto-create can name a column type: integers bigint, other numbers
// double, maps and arrays jsonb.
func inferSchema(v any) *data.Schema {
	switch v.(type) {
	case bool:
		return data.OptionalBooleanSchema
	case int8, int16, int32, int64, int:
		return data.OptionalInt64Schema
	case float32, float64:
		return data.OptionalFloat64Schema
	case []byte:
		return data.OptionalBytesSchema
	case data.Decimal:
		return data.DecimalSchema(0).AsOptional()
	case map[string]any, *data.Map, *data.Struct, []any:
		return &data.Schema{Type: data.TypeMap, Optional: true, Keys: data.StringSchema, Values: data.OptionalStringSchema}
	}
	return data.OptionalStringSchema
}

// envelope is a Debezium change event.
type envelope struct {
	op                        string
	before, after             any
	beforeSchema, afterSchema *data.Schema
}

// envelopeOf recognises a Debezium change event: a struct or map with a
// string op and before and after fields.
func envelopeOf(v any) (envelope, bool) {
	switch x := v.(type) {
	case *data.Struct:
		s := x.Schema()
		fb, fa, fo := s.Field("before"), s.Field("after"), s.Field("op")
		if fb == nil || fa == nil || fo == nil || fo.Schema.Type != data.TypeString {
			return envelope{}, false
		}
		op, _ := x.Get("op").(string)
		return envelope{op: op, before: x.Get("before"), after: x.Get("after"), beforeSchema: fb.Schema, afterSchema: fa.Schema}, true
	case map[string]any:
		op, ok := x["op"].(string)
		_, hb := x["before"]
		_, ha := x["after"]
		if !ok || !hb || !ha {
			return envelope{}, false
		}
		return envelope{op: op, before: x["before"], after: x["after"]}, true
	}
	return envelope{}, false
}
