package connectv1

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/sluice-io/sluice/connect/data"
)

// This file converts between the wire messages and connect/data, for the
// host (connect/pluginhost) and the Go SDK (connect/sdk) alike, so both
// ends agree by construction.

var typeToProto = map[data.Type]Type{
	data.TypeInt8: Type_TYPE_INT8, data.TypeInt16: Type_TYPE_INT16, data.TypeInt32: Type_TYPE_INT32,
	data.TypeInt64: Type_TYPE_INT64, data.TypeFloat32: Type_TYPE_FLOAT32, data.TypeFloat64: Type_TYPE_FLOAT64,
	data.TypeBoolean: Type_TYPE_BOOLEAN, data.TypeString: Type_TYPE_STRING, data.TypeBytes: Type_TYPE_BYTES,
	data.TypeArray: Type_TYPE_ARRAY, data.TypeMap: Type_TYPE_MAP, data.TypeStruct: Type_TYPE_STRUCT,
}

var typeFromProto = func() map[Type]data.Type {
	m := make(map[Type]data.Type, len(typeToProto))
	for k, v := range typeToProto {
		m[v] = k
	}
	return m
}()

// SchemaToProto encodes a schema; nil stays nil (schemaless).
func SchemaToProto(s *data.Schema) (*Schema, error) {
	if s == nil {
		return nil, nil
	}
	t, ok := typeToProto[s.Type]
	if !ok {
		return nil, fmt.Errorf("connectv1: unknown schema type %q", s.Type)
	}
	p := &Schema{Type: t, Optional: s.Optional, Name: s.Name, Version: s.Version, Doc: s.Doc, Parameters: s.Parameters}
	var err error
	if s.Default != nil {
		if p.DefaultValue, err = ValueToProto(s, s.Default); err != nil {
			return nil, fmt.Errorf("connectv1: default of %v: %w", s, err)
		}
	}
	for _, f := range s.Fields {
		fs, err := SchemaToProto(f.Schema)
		if err != nil {
			return nil, fmt.Errorf("connectv1: field %q: %w", f.Name, err)
		}
		p.Fields = append(p.Fields, &Field{Name: f.Name, Index: int32(f.Index), Schema: fs})
	}
	if p.Items, err = SchemaToProto(s.Items); err != nil {
		return nil, err
	}
	if p.Keys, err = SchemaToProto(s.Keys); err != nil {
		return nil, err
	}
	if p.Values, err = SchemaToProto(s.Values); err != nil {
		return nil, err
	}
	return p, nil
}

// SchemaFromProto decodes a schema; nil stays nil.
func SchemaFromProto(p *Schema) (*data.Schema, error) {
	if p == nil {
		return nil, nil
	}
	t, ok := typeFromProto[p.Type]
	if !ok {
		return nil, fmt.Errorf("connectv1: unknown schema type %v", p.Type)
	}
	s := &data.Schema{Type: t, Optional: p.Optional, Name: p.Name, Version: p.Version, Doc: p.Doc}
	if len(p.Parameters) > 0 {
		s.Parameters = p.Parameters
	}
	var err error
	for i, f := range p.Fields {
		fs, err := SchemaFromProto(f.Schema)
		if err != nil {
			return nil, fmt.Errorf("connectv1: field %q: %w", f.Name, err)
		}
		s.Fields = append(s.Fields, data.Field{Name: f.Name, Index: i, Schema: fs})
	}
	if s.Items, err = SchemaFromProto(p.Items); err != nil {
		return nil, err
	}
	if s.Keys, err = SchemaFromProto(p.Keys); err != nil {
		return nil, err
	}
	if s.Values, err = SchemaFromProto(p.Values); err != nil {
		return nil, err
	}
	if p.DefaultValue != nil {
		if s.Default, err = ValueFromProto(s, p.DefaultValue); err != nil {
			return nil, fmt.Errorf("connectv1: default of %v: %w", s, err)
		}
	}
	return s, nil
}

var nullValue = &Value{Kind: &Value_Null{}}

// ValueToProto encodes v under schema s (nil = schemaless, the type is then
// inferred from the Go value). Logical values take their physical form.
func ValueToProto(s *data.Schema, v any) (*Value, error) {
	if v == nil {
		return nullValue, nil
	}
	if s != nil {
		switch s.Name {
		case data.DecimalName:
			d, ok := v.(data.Decimal)
			if !ok {
				return nil, fmt.Errorf("connectv1: Decimal value is %T", v)
			}
			b, err := data.DecimalToBytes(s, d)
			if err != nil {
				return nil, err
			}
			return &Value{Kind: &Value_Bytes{Bytes: b}}, nil
		case data.DateName, data.TimeName, data.TimestampName:
			t, ok := v.(time.Time)
			if !ok {
				return nil, fmt.Errorf("connectv1: %s value is %T", s.Name, v)
			}
			switch s.Name {
			case data.DateName:
				d, err := data.DateToDays(t)
				return &Value{Kind: &Value_Int32{Int32: d}}, err
			case data.TimeName:
				ms, err := data.TimeToMillis(t)
				return &Value{Kind: &Value_Int32{Int32: ms}}, err
			}
			return &Value{Kind: &Value_Int64{Int64: data.TimestampToMillis(t)}}, nil
		}
	}
	switch x := v.(type) {
	case bool:
		return &Value{Kind: &Value_Boolean{Boolean: x}}, nil
	case int8:
		return &Value{Kind: &Value_Int8{Int8: int32(x)}}, nil
	case int16:
		return &Value{Kind: &Value_Int16{Int16: int32(x)}}, nil
	case int32:
		return &Value{Kind: &Value_Int32{Int32: x}}, nil
	case int64:
		return &Value{Kind: &Value_Int64{Int64: x}}, nil
	case float32:
		return &Value{Kind: &Value_Float32{Float32: x}}, nil
	case float64:
		return &Value{Kind: &Value_Float64{Float64: x}}, nil
	case string:
		return &Value{Kind: &Value_String_{String_: x}}, nil
	case []byte:
		return &Value{Kind: &Value_Bytes{Bytes: x}}, nil
	case []any:
		var items *data.Schema
		if s != nil {
			items = s.Items
		}
		a := &Array{Items: make([]*Value, len(x))}
		for i, e := range x {
			pv, err := ValueToProto(items, e)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
			a.Items[i] = pv
		}
		return &Value{Kind: &Value_Array{Array: a}}, nil
	case map[string]any, *data.Map:
		var ks, vs *data.Schema
		if s != nil {
			ks, vs = s.Keys, s.Values
		}
		m := &Map{}
		var err error
		data.Entries(x)(func(k, e any) bool {
			var pk, pv *Value
			if pk, err = ValueToProto(ks, k); err != nil {
				err = fmt.Errorf("map key %v: %w", k, err)
				return false
			}
			if pv, err = ValueToProto(vs, e); err != nil {
				err = fmt.Errorf("map value for %v: %w", k, err)
				return false
			}
			m.Entries = append(m.Entries, &MapEntry{Key: pk, Value: pv})
			return true
		})
		if err != nil {
			return nil, err
		}
		return &Value{Kind: &Value_Map{Map: m}}, nil
	case *data.Struct:
		ss := x.Schema()
		st := &Struct{Fields: make([]*Value, len(ss.Fields))}
		for i, f := range ss.Fields {
			fv, err := ValueToProto(f.Schema, x.GetWithoutDefault(f.Name))
			if err != nil {
				return nil, fmt.Errorf("struct field %q: %w", f.Name, err)
			}
			st.Fields[i] = fv
		}
		return &Value{Kind: &Value_Struct{Struct: st}}, nil
	}
	return nil, fmt.Errorf("connectv1: cannot encode a %T", v)
}

// ValueFromProto decodes a value under schema s (nil = schemaless: Go
// types follow the wire kinds). A struct needs its schema.
func ValueFromProto(s *data.Schema, p *Value) (any, error) {
	if p == nil {
		return nil, nil
	}
	var v any
	switch k := p.Kind.(type) {
	case nil, *Value_Null:
		return nil, nil
	case *Value_Boolean:
		v = k.Boolean
	case *Value_Int8:
		v = int8(k.Int8)
	case *Value_Int16:
		v = int16(k.Int16)
	case *Value_Int32:
		v = k.Int32
	case *Value_Int64:
		v = k.Int64
	case *Value_Float32:
		v = k.Float32
	case *Value_Float64:
		v = k.Float64
	case *Value_String_:
		v = k.String_
	case *Value_Bytes:
		v = k.Bytes
	case *Value_Array:
		var items *data.Schema
		if s != nil {
			items = s.Items
		}
		a := make([]any, len(k.Array.GetItems()))
		for i, e := range k.Array.GetItems() {
			ev, err := ValueFromProto(items, e)
			if err != nil {
				return nil, fmt.Errorf("array element %d: %w", i, err)
			}
			a[i] = ev
		}
		return a, nil
	case *Value_Map:
		return mapFromProto(s, k.Map)
	case *Value_Struct:
		if s == nil || s.Type != data.TypeStruct {
			return nil, fmt.Errorf("connectv1: struct value without a struct schema")
		}
		fields := k.Struct.GetFields()
		if len(fields) != len(s.Fields) {
			return nil, fmt.Errorf("connectv1: struct has %d values for %d fields", len(fields), len(s.Fields))
		}
		st := data.NewStruct(s)
		for i, f := range s.Fields {
			fv, err := ValueFromProto(f.Schema, fields[i])
			if err != nil {
				return nil, fmt.Errorf("struct field %q: %w", f.Name, err)
			}
			if fv == nil {
				continue // unset stays unset, as it was sent
			}
			if err := st.Put(f.Name, fv); err != nil {
				return nil, err
			}
		}
		return st, nil
	default:
		return nil, fmt.Errorf("connectv1: unknown value kind %T", k)
	}
	if s == nil {
		return v, nil
	}
	return logicalFromPhysical(s, v)
}

func logicalFromPhysical(s *data.Schema, v any) (any, error) {
	switch s.Name {
	case data.DecimalName:
		b, ok := v.([]byte)
		if !ok {
			return nil, fmt.Errorf("connectv1: Decimal sent as %T", v)
		}
		return data.DecimalFromBytes(s, b)
	case data.DateName:
		d, ok := v.(int32)
		if !ok {
			return nil, fmt.Errorf("connectv1: Date sent as %T", v)
		}
		return data.DateFromDays(d), nil
	case data.TimeName:
		ms, ok := v.(int32)
		if !ok {
			return nil, fmt.Errorf("connectv1: Time sent as %T", v)
		}
		return data.TimeFromMillis(ms)
	case data.TimestampName:
		ms, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("connectv1: Timestamp sent as %T", v)
		}
		return data.TimestampFromMillis(ms), nil
	}
	return v, nil
}

// mapFromProto returns map[string]any when the keys are strings (by schema,
// or every key when schemaless), else *data.Map, as connect/data expects.
func mapFromProto(s *data.Schema, p *Map) (any, error) {
	var ks, vs *data.Schema
	if s != nil {
		ks, vs = s.Keys, s.Values
	}
	stringKeys := ks != nil && ks.Type == data.TypeString && ks.Name == ""
	if ks == nil {
		stringKeys = true
		for _, e := range p.GetEntries() {
			if _, ok := e.GetKey().GetKind().(*Value_String_); !ok {
				stringKeys = false
				break
			}
		}
	}
	var sm map[string]any
	var dm *data.Map
	if stringKeys {
		sm = make(map[string]any, len(p.GetEntries()))
	} else {
		dm = &data.Map{Entries: make([]data.MapEntry, 0, len(p.GetEntries()))}
	}
	for _, e := range p.GetEntries() {
		k, err := ValueFromProto(ks, e.GetKey())
		if err != nil {
			return nil, fmt.Errorf("map key: %w", err)
		}
		v, err := ValueFromProto(vs, e.GetValue())
		if err != nil {
			return nil, fmt.Errorf("map value for %v: %w", k, err)
		}
		if sm != nil {
			ksv, ok := k.(string)
			if !ok {
				return nil, fmt.Errorf("connectv1: map key %T under a string key schema", k)
			}
			sm[ksv] = v
		} else {
			dm.Entries = append(dm.Entries, data.MapEntry{Key: k, Value: v})
		}
	}
	if sm != nil {
		return sm, nil
	}
	return dm, nil
}

// DataToProto encodes a schema and value; a byte payload without a logical
// schema takes the raw fast path.
func DataToProto(s *data.Schema, v any) (*Data, error) {
	ps, err := SchemaToProto(s)
	if err != nil {
		return nil, err
	}
	if b, ok := v.([]byte); ok && (s == nil || s.Name == "") {
		return &Data{Schema: ps, Body: &Data_Raw{Raw: b}}, nil
	}
	if v == nil {
		return &Data{Schema: ps}, nil
	}
	pv, err := ValueToProto(s, v)
	if err != nil {
		return nil, err
	}
	return &Data{Schema: ps, Body: &Data_Value{Value: pv}}, nil
}

// DataFromProto decodes a schema and value.
func DataFromProto(p *Data) (*data.Schema, any, error) {
	if p == nil {
		return nil, nil, nil
	}
	s, err := SchemaFromProto(p.Schema)
	if err != nil {
		return nil, nil, err
	}
	switch b := p.Body.(type) {
	case *Data_Raw:
		if b.Raw == nil {
			return s, []byte{}, nil
		}
		return s, b.Raw, nil
	case *Data_Value:
		v, err := ValueFromProto(s, b.Value)
		return s, v, err
	}
	return s, nil, nil
}

// SizeOf is the bytes a record's key and value weigh for max_bytes:
// the raw payload, or the encoded size of a structured value.
func (d *Data) SizeOf() int {
	switch b := d.GetBody().(type) {
	case *Data_Raw:
		return len(b.Raw)
	case *Data_Value:
		return proto.Size(b.Value)
	}
	return 0
}

// OffsetToJSON encodes a source partition or offset map as a JSON object;
// nil encodes as empty (no offset).
func OffsetToJSON(m map[string]any) ([]byte, error) {
	if m == nil {
		return nil, nil
	}
	if b, ok := appendFlatJSON(make([]byte, 0, 64), m); ok {
		return b, nil
	}
	return json.Marshal(toJSONable(m))
}

func toJSONable(v any) any {
	switch x := v.(type) {
	case map[string]any:
		o := make(map[string]any, len(x))
		for k, e := range x {
			o[k] = toJSONable(e)
		}
		return o
	case []any:
		o := make([]any, len(x))
		for i, e := range x {
			o[i] = toJSONable(e)
		}
		return o
	}
	return v
}

// OffsetFromJSON decodes a JSON object: integers become int64 (offsets
// such as LSNs exceed float64's exact range), other numbers float64.
// Empty input is nil.
func OffsetFromJSON(b []byte) (map[string]any, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if m, ok := parseFlatJSON(b); ok {
		return m, nil
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		return nil, fmt.Errorf("connectv1: offset JSON %q: %w", b, err)
	}
	return fromJSONNumbers(m).(map[string]any), nil
}

func fromJSONNumbers(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = fromJSONNumbers(e)
		}
	case []any:
		for i, e := range x {
			x[i] = fromJSONNumbers(e)
		}
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		f, err := x.Float64()
		if err != nil || math.IsInf(f, 0) {
			return x.String()
		}
		return f
	}
	return v
}
