package connectv1

import (
	"encoding/binary"
	"math"

	"github.com/sluice-io/sluice/connect/data"
)

// Decoding packed version 3 (packed_schema.go has the format): the schema
// table, then values under its schemas, built as ValueFromProto builds
// them but from slabs (boxes, structs).

// readSchemas reads a version 3 buffer's schema table.
//
// Schemas outlive their batch (the JSON converter caches them by
// pointer), so nothing in one may hold on to the batch: names, docs,
// parameters and defaults are copied out of the buffer and boxed apart
// from the records' slabs, where one default would keep a slab of record
// values, and through them the batch's text, alive.
func (r *packedReader) readSchemas() {
	n := r.count("schema table")
	r.schemas = make([]*data.Schema, n)
	recBoxes, recStructs := r.boxes, r.structs
	r.boxes, r.structs, r.owned = boxes{chunk: 1}, structs{chunk: 1}, true
	for i := range r.schemas {
		r.schemas[i] = r.schema(0)
	}
	r.boxes, r.structs, r.owned = recBoxes, recStructs, false
}

func (r *packedReader) schema(depth int) *data.Schema {
	if depth > maxTreeDepth {
		r.fail("schema: nested too deep")
		return nil
	}
	code, flags := r.byte("schema type"), r.byte("schema flags")
	if r.err != nil {
		return nil
	}
	if int(code) >= len(schemaTypes) {
		r.fail("schema type")
		return nil
	}
	if flags&^schemaKnownFlags != 0 {
		r.fail("schema flags")
		return nil
	}
	s := &data.Schema{Type: schemaTypes[code], Optional: flags&schemaOptional != 0}
	if flags&schemaName != 0 {
		s.Name = r.str("schema name")
	}
	if flags&schemaVersion != 0 {
		s.Version = r.int32("schema version")
	}
	if flags&schemaDoc != 0 {
		s.Doc = r.str("schema doc")
	}
	if flags&schemaParams != 0 {
		n := r.count("schema parameters")
		if r.err == nil && n == 0 {
			r.fail("schema parameters count")
		}
		s.Parameters = make(map[string]string, n)
		for range n {
			k := r.str("schema parameter")
			s.Parameters[k] = r.str("schema parameter")
		}
	}
	switch s.Type {
	case data.TypeStruct:
		if n := r.count("struct fields"); n > 0 { // none stays nil, as SchemaFromProto leaves it
			s.Fields = make([]data.Field, n)
		}
		for i := range s.Fields {
			s.Fields[i] = data.Field{Name: r.str("field name"), Index: i, Schema: r.schema(depth + 1)}
		}
	case data.TypeArray:
		s.Items = r.schema(depth + 1)
	case data.TypeMap:
		s.Keys = r.schema(depth + 1)
		s.Values = r.schema(depth + 1)
	}
	if flags&schemaDefault != 0 && s.Type == data.TypeStruct {
		r.fail("schema: a struct with a default") // see appendSchema
	}
	if flags&schemaDefault != 0 && r.err == nil {
		s.Default = r.value(s, depth)
		if r.err == nil && s.Default == nil {
			r.fail("schema default")
		}
	}
	if r.err != nil {
		return nil
	}
	return s
}

// value reads a value under s: null or present and its payload.
func (r *packedReader) value(s *data.Schema, depth int) any {
	switch r.byte("value") {
	case 0:
		return nil
	case 1:
		return r.payload(s, depth)
	}
	if r.err == nil {
		r.fail("value presence")
	}
	return nil
}

func (r *packedReader) payload(s *data.Schema, depth int) any {
	if r.err != nil {
		return nil
	}
	if depth > maxTreeDepth {
		r.fail("value: nested too deep")
		return nil
	}
	switch s.Type {
	case data.TypeInt8, data.TypeInt16, data.TypeInt32:
		v := r.varint("int")
		switch {
		case r.err != nil:
			return nil
		case s.Type == data.TypeInt8 && v == int64(int8(v)):
			return int8(v)
		case s.Type == data.TypeInt16 && v == int64(int16(v)):
			return int16(v)
		case s.Type == data.TypeInt32 && v == int64(int32(v)):
			switch s.Name {
			case data.DateName:
				return r.boxes.timeValue(data.DateFromDays(int32(v)))
			case data.TimeName:
				t, err := data.TimeFromMillis(int32(v))
				if err != nil {
					r.fail("Time value")
					return nil
				}
				return r.boxes.timeValue(t)
			}
			return r.boxes.int32Value(int32(v))
		}
		r.fail("int: out of range")
		return nil
	case data.TypeInt64:
		v := r.varint("int64")
		if r.err != nil {
			return nil
		}
		if s.Name == data.TimestampName {
			return r.boxes.timeValue(data.TimestampFromMillis(v))
		}
		return r.boxes.int64Value(v)
	case data.TypeFloat32:
		if len(r.buf)-r.off < 4 {
			r.fail("float32")
			return nil
		}
		v := math.Float32frombits(binary.LittleEndian.Uint32(r.buf[r.off:]))
		r.off += 4
		return v
	case data.TypeFloat64:
		if len(r.buf)-r.off < 8 {
			r.fail("float64")
			return nil
		}
		v := math.Float64frombits(binary.LittleEndian.Uint64(r.buf[r.off:]))
		r.off += 8
		return r.boxes.float64Value(v)
	case data.TypeBoolean:
		switch r.byte("boolean") {
		case 0:
			return false
		case 1:
			return true
		}
		r.fail("boolean")
		return nil
	case data.TypeString:
		t := r.str("string")
		if r.err != nil {
			return nil
		}
		return r.boxes.stringValue(t)
	case data.TypeBytes:
		b := r.bytes("bytes")
		if r.err != nil {
			return nil
		}
		if s.Name == data.DecimalName {
			d, err := data.DecimalFromBytes(s, b)
			if err != nil {
				r.fail("Decimal value")
				return nil
			}
			return r.boxes.decimalValue(d)
		}
		return r.boxes.bytesValue(b)
	case data.TypeArray:
		a := make([]any, r.count("array"))
		for i := range a {
			a[i] = r.value(s.Items, depth+1)
		}
		return a
	case data.TypeMap:
		return r.mapValue(s, depth)
	case data.TypeStruct:
		return r.structValue(s, depth)
	}
	r.fail("schema type")
	return nil
}

func (r *packedReader) mapValue(s *data.Schema, depth int) any {
	n := r.count("map")
	if r.err != nil {
		return nil
	}
	if s.Keys.Type == data.TypeString && s.Keys.Name == "" {
		m := make(map[string]any, n)
		for range n {
			k, ok := r.value(s.Keys, depth+1).(string)
			if !ok && r.err == nil {
				r.fail("map: null key under a string key schema")
			}
			m[k] = r.value(s.Values, depth+1)
		}
		return m
	}
	dm := &data.Map{Entries: make([]data.MapEntry, n)}
	for i := range dm.Entries {
		dm.Entries[i].Key = r.value(s.Keys, depth+1)
		dm.Entries[i].Value = r.value(s.Values, depth+1)
	}
	return dm
}

func (r *packedReader) structValue(s *data.Schema, depth int) any {
	n := len(s.Fields)
	nb := (n + 7) / 8
	if len(r.buf)-r.off < nb {
		r.fail("struct null bitmap")
		return nil
	}
	bits := r.buf[r.off : r.off+nb]
	r.off += nb
	if n%8 != 0 && bits[nb-1]>>(n%8) != 0 {
		r.fail("struct null bitmap: bits past the last field")
		return nil
	}
	st, vals := r.structs.alloc(s)
	for i := range vals {
		if bits[i/8]&(1<<(i%8)) != 0 {
			vals[i] = r.payload(s.Fields[i].Schema, depth+1)
		}
	}
	if r.err != nil {
		return nil
	}
	return st
}
