package pgjdbc

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math/big"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/sluice-io/sluice/connect/data"
)

// ColumnType is the PostgreSQL column type for a Connect schema (the
// table in the package comment), for CREATE TABLE and ALTER TABLE ADD
// COLUMN.
func ColumnType(s *data.Schema) (string, error) {
	if t, ok := debeziumTypes[s.Name]; ok {
		return t, nil
	}
	switch s.Name {
	case data.DecimalName:
		return "numeric", nil
	case data.DateName:
		return "date", nil
	case data.TimeName:
		return "time", nil
	case data.TimestampName:
		return "timestamp", nil
	}
	switch s.Type {
	case data.TypeInt8, data.TypeInt16:
		return "smallint", nil
	case data.TypeInt32:
		return "integer", nil
	case data.TypeInt64:
		return "bigint", nil
	case data.TypeFloat32:
		return "real", nil
	case data.TypeFloat64:
		return "double precision", nil
	case data.TypeBoolean:
		return "boolean", nil
	case data.TypeString:
		return "text", nil
	case data.TypeBytes:
		return "bytea", nil
	case data.TypeStruct, data.TypeMap:
		return "jsonb", nil
	case data.TypeArray:
		if s.Items == nil {
			return "", fmt.Errorf("array schema without an element schema")
		}
		switch s.Items.Type {
		case data.TypeArray, data.TypeStruct, data.TypeMap:
			return "jsonb", nil
		}
		el, err := ColumnType(s.Items)
		if err != nil {
			return "", err
		}
		return el + "[]", nil
	}
	return "", fmt.Errorf("no PostgreSQL type for schema %s", s)
}

// SchemaFor is the Connect schema of a PostgreSQL column of type oid with
// type modifier typmod (-1 when none), as pgx's FieldDescription gives
// them; optional for a nullable column.
func SchemaFor(oid uint32, typmod int32, optional bool) *data.Schema {
	var s *data.Schema
	switch oid {
	case pgtype.Int2OID:
		s = data.PrimitiveSchema(data.TypeInt16, false)
	case pgtype.Int4OID, pgtype.OIDOID:
		s = data.PrimitiveSchema(data.TypeInt32, false)
	case pgtype.Int8OID:
		s = data.PrimitiveSchema(data.TypeInt64, false)
	case pgtype.Float4OID:
		s = data.PrimitiveSchema(data.TypeFloat32, false)
	case pgtype.Float8OID:
		s = data.PrimitiveSchema(data.TypeFloat64, false)
	case pgtype.BoolOID:
		s = data.PrimitiveSchema(data.TypeBoolean, false)
	case pgtype.ByteaOID:
		s = data.PrimitiveSchema(data.TypeBytes, false)
	case pgtype.NumericOID:
		if typmod >= 4 { // numeric(p,s): ((p << 16) | s) + 4
			s = data.DecimalSchema(int((typmod - 4) & 0xffff))
		} else {
			s = data.PrimitiveSchema(data.TypeString, false)
		}
	case pgtype.DateOID:
		s = data.DateSchema.Copy()
	case pgtype.TimeOID, pgtype.TimetzOID:
		s = data.TimeSchema.Copy()
	case pgtype.TimestampOID, pgtype.TimestamptzOID:
		s = data.TimestampSchema.Copy()
	default:
		s = data.PrimitiveSchema(data.TypeString, false)
	}
	s.Optional = optional
	return s
}

// FromPG converts a value pgx decoded (rows.Values) for a column whose
// schema SchemaFor gave into the Connect value for that schema.
func FromPG(s *data.Schema, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	switch s.Name {
	case data.DecimalName:
		n, ok := v.(pgtype.Numeric)
		if !ok || !n.Valid || n.NaN || n.InfinityModifier != pgtype.Finite {
			return nil, fmt.Errorf("numeric value %v does not fit a Decimal", v)
		}
		scale, err := data.DecimalScale(s)
		if err != nil {
			return nil, err
		}
		return rescale(n, scale), nil
	case data.DateName, data.TimestampName:
		t, ok := v.(time.Time)
		if !ok {
			return nil, fmt.Errorf("%T is not a date or timestamp", v)
		}
		if s.Name == data.DateName {
			return time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC), nil
		}
		return t.UTC(), nil
	case data.TimeName:
		switch t := v.(type) {
		case pgtype.Time:
			return time.UnixMilli(t.Microseconds / 1000).UTC(), nil
		case time.Time:
			return time.Date(1970, 1, 1, t.Hour(), t.Minute(), t.Second(), t.Nanosecond()/1e6*1e6, time.UTC), nil
		}
		return nil, fmt.Errorf("%T is not a time of day", v)
	}
	switch s.Type {
	case data.TypeInt16:
		if x, ok := v.(int16); ok {
			return x, nil
		}
	case data.TypeInt32:
		switch x := v.(type) {
		case int32:
			return x, nil
		case uint32:
			return int32(x), nil
		}
	case data.TypeInt64:
		if x, ok := v.(int64); ok {
			return x, nil
		}
	case data.TypeFloat32:
		if x, ok := v.(float32); ok {
			return x, nil
		}
	case data.TypeFloat64:
		if x, ok := v.(float64); ok {
			return x, nil
		}
	case data.TypeBoolean:
		if x, ok := v.(bool); ok {
			return x, nil
		}
	case data.TypeBytes:
		if x, ok := v.([]byte); ok {
			return x, nil
		}
	case data.TypeString:
		return textOf(v)
	}
	return nil, fmt.Errorf("%T does not fit schema %s", v, s)
}

// textOf renders the value of a column SchemaFor maps to string.
func textOf(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case [16]byte: // uuid
		h := hex.EncodeToString(x[:])
		return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:], nil
	case pgtype.Numeric:
		b, err := x.MarshalJSON()
		return string(b), err
	case fmt.Stringer:
		return x.String(), nil
	}
	b, err := json.Marshal(v) // json, jsonb, arrays and the rest
	if err != nil {
		return "", fmt.Errorf("rendering %T as text: %w", v, err)
	}
	return string(b), nil
}

// rescale turns a numeric into a Decimal of the given scale.
func rescale(n pgtype.Numeric, scale int32) data.Decimal {
	u := new(big.Int).Set(n.Int)
	exp := n.Exp + scale // value = Int × 10^Exp = u × 10^-scale
	ten := big.NewInt(10)
	for ; exp > 0; exp-- {
		u.Mul(u, ten)
	}
	for ; exp < 0; exp++ {
		u.Quo(u, ten)
	}
	return data.Decimal{Unscaled: u, Scale: scale}
}

// ToPG converts a Connect value of schema s (nil s: schemaless) into a
// value pgx encodes for the column type ColumnType(s) names: Decimals
// as numerics, times of day as pgtype.Time, structs, maps and nested
// arrays as JSON text.
func ToPG(s *data.Schema, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	if out, ok, err := debeziumToPG(s, v); ok {
		return out, err
	}
	switch x := v.(type) {
	case data.Decimal:
		return pgtype.Numeric{Int: x.Unscaled, Exp: -x.Scale, Valid: true}, nil
	case *data.Struct, *data.Map, map[string]any:
		return jsonText(v)
	case time.Time:
		if s != nil && s.Name == data.TimeName {
			ms, err := data.TimeToMillis(x)
			if err != nil {
				return nil, err
			}
			return pgtype.Time{Microseconds: int64(ms) * 1000, Valid: true}, nil
		}
		return x, nil
	case []any:
		if s == nil || s.Items == nil {
			return jsonText(v)
		}
		if t, _ := ColumnType(s); t == "jsonb" {
			return jsonText(v)
		}
		out := make([]any, len(x))
		for i, e := range x {
			c, err := ToPG(s.Items, e)
			if err != nil {
				return nil, err
			}
			out[i] = c
		}
		return out, nil
	}
	return v, nil
}

// jsonText renders a structured value as JSON for a jsonb column.
func jsonText(v any) (string, error) {
	b, err := json.Marshal(plain(v))
	if err != nil {
		return "", fmt.Errorf("rendering a value as JSON: %w", err)
	}
	return string(b), nil
}

// plain turns Connect values into what encoding/json renders naturally.
func plain(v any) any {
	switch x := v.(type) {
	case *data.Struct:
		m := make(map[string]any, len(x.Schema().Fields))
		for _, f := range x.Schema().Fields {
			m[f.Name] = plain(x.Get(f.Name))
		}
		return m
	case *data.Map:
		m := make(map[string]any, len(x.Entries))
		for _, e := range x.Entries {
			m[data.ToString(e.Key)] = plain(e.Value)
		}
		return m
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = plain(e)
		}
		return m
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plain(e)
		}
		return out
	case data.Decimal:
		return json.Number(x.PlainString())
	}
	return v
}
