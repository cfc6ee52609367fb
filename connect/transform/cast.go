package transform

import (
	"encoding/base64"
	"math"
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// This file holds Cast, which changes a field's or the whole value's type.

func init() {
	register(&plugin{class: "Cast", kind: kindTransformation, keyed: true, newStage: newCast, params: []param{
		required("spec", "LIST", "HIGH", "List of fields and the type to cast them to of the form field1:type,field2:type to cast fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, int16, int32, int64, float32, float64, boolean, and string. Note that binary fields can only be cast to string."),
		replaceNullParam,
	}})
}

var castOutputs = []data.Type{data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64, data.TypeFloat32, data.TypeFloat64, data.TypeBoolean, data.TypeString}

func castInputOK(t data.Type) bool { return t == data.TypeBytes || containsType(castOutputs, t) }

func containsType(ts []data.Type, t data.Type) bool {
	for _, e := range ts {
		if e == t {
			return true
		}
	}
	return false
}

func newCast(c *config, o operand) (stageFunc, error) {
	spec := c.list("spec")
	if len(spec) == 0 {
		return nil, c.errorf("spec", "must specify at least one field to cast")
	}
	casts := map[string]data.Type{}
	var whole data.Type
	for _, m := range spec {
		parts := strings.Split(m, ":")
		if len(parts) > 2 {
			return nil, c.errorf("spec", "invalid cast mapping: %s", m)
		}
		t := data.Type(strings.ToLower(strings.TrimSpace(parts[len(parts)-1])))
		if !containsType(castOutputs, t) {
			return nil, c.errorf("spec", "cast transformation does not support casting to %s; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING]", strings.ToUpper(string(t)))
		}
		if len(parts) == 1 {
			whole = t
		} else {
			casts[strings.TrimSpace(parts[0])] = t
		}
	}
	if whole != "" && len(spec) > 1 {
		return nil, c.errorf("spec", "cast transformations that specify a type to cast the entire value to may only specify a single cast in their spec")
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	build := func(s *data.Schema) (*data.Schema, error) {
		var out *data.Schema
		if whole != "" {
			out = copySchemaBasics(s, whole)
		} else {
			out = copySchemaBasics(s, data.TypeStruct)
			for _, f := range s.Fields {
				t, ok := casts[f.Name]
				if !ok {
					addField(out, f.Name, f.Schema)
					continue
				}
				fs := &data.Schema{Type: t, Optional: f.Schema.Optional}
				if f.Schema.Default != nil {
					d, err := castValue(f.Schema, f.Schema.Default, t)
					if err != nil {
						return nil, err
					}
					fs.Default = d
				}
				addField(out, f.Name, fs)
			}
		}
		out.Optional = s.Optional
		if s.Default != nil {
			d, err := castValue(s, s.Default, out.Type)
			if err != nil {
				return nil, err
			}
			out.Default = d
		}
		return out, nil
	}
	smt := &fieldSMT{purpose: "cast types", build: build}
	if whole != "" {
		return func(r *data.Record) (*data.Record, error) {
			s, v := o.get(r)
			if v == nil {
				return r, nil
			}
			var ns *data.Schema
			if s != nil {
				var err error
				if ns, err = smt.cache.get(s, build); err != nil {
					return nil, err
				}
			}
			cv, err := castValue(s, v, whole)
			if err != nil {
				return nil, err
			}
			return o.set(r, ns, cv), nil
		}, nil
	}
	smt.onMap = func(_ *data.Record, m map[string]any) (any, error) {
		for f, t := range casts {
			cv, err := castValue(nil, m[f], t)
			if err != nil {
				return nil, err
			}
			m[f] = cv
		}
		return m, nil
	}
	smt.onStruct = func(_ *data.Record, st, out *data.Struct) error {
		for _, f := range st.Schema().Fields {
			fv := fieldValue(st, f.Name, withDefault)
			if t, ok := casts[f.Name]; ok {
				var err error
				if fv, err = castValue(f.Schema, fv, t); err != nil {
					return err
				}
			}
			if err := out.Put(f.Name, fv); err != nil {
				return err
			}
		}
		return nil
	}
	return smt.stage(o), nil
}

// castValue is Kafka's Cast.castValueToType: numbers narrow as Java's
// Number.xxxValue, booleans become 1/0, strings are parsed, and anything
// can become a string (bytes as base64, dates in ISO 8601).
func castValue(s *data.Schema, v any, to data.Type) (any, error) {
	if v == nil {
		return nil, nil
	}
	from := data.InferType(v)
	if s != nil {
		from = s.Type
	}
	if from == "" {
		return nil, dataErr("cast transformation was passed a value of type %T which is not supported by Connect's data API", v)
	}
	if !castInputOK(from) {
		return nil, dataErr("cast transformation does not support casting from %s; supported types are [INT8, INT16, INT32, INT64, FLOAT32, FLOAT64, BOOLEAN, STRING, BYTES]", strings.ToUpper(string(from)))
	}
	if to == data.TypeString {
		switch x := v.(type) {
		case []byte:
			return base64.StdEncoding.EncodeToString(x), nil
		case time.Time:
			return data.FormatTime(x), nil
		}
		return data.ToString(v), nil
	}
	if t, ok := v.(time.Time); ok && s != nil {
		switch s.Name {
		case data.DateName:
			n, err := data.DateToDays(t)
			if err != nil {
				return nil, err
			}
			v = n
		case data.TimeName:
			n, err := data.TimeToMillis(t)
			if err != nil {
				return nil, err
			}
			v = n
		default:
			v = data.TimestampToMillis(t)
		}
	}
	outOfRange := func() error {
		return dataErr("value (%v) was out of range for requested data type", v)
	}
	switch x := v.(type) {
	case string:
		t := strings.TrimSpace(x)
		switch to {
		case data.TypeBoolean:
			return strings.EqualFold(x, "true"), nil
		case data.TypeFloat32, data.TypeFloat64:
			bits := 64
			if to == data.TypeFloat32 {
				bits = 32
			}
			f, err := strconv.ParseFloat(strings.TrimRight(t, "fFdD"), bits)
			if err != nil {
				return nil, outOfRange()
			}
			if bits == 32 {
				return float32(f), nil
			}
			return f, nil
		}
		bits := map[data.Type]int{data.TypeInt8: 8, data.TypeInt16: 16, data.TypeInt32: 32, data.TypeInt64: 64}[to]
		n, err := strconv.ParseInt(strings.TrimPrefix(x, "+"), 10, bits)
		if err != nil {
			return nil, outOfRange()
		}
		return narrowInt(n, to), nil
	case bool:
		n := int64(0)
		if x {
			n = 1
		}
		return castInt(n, to), nil
	case int8:
		return castInt(int64(x), to), nil
	case int16:
		return castInt(int64(x), to), nil
	case int32:
		return castInt(int64(x), to), nil
	case int64:
		return castInt(x, to), nil
	case float32, float64:
		f := float64(0)
		if y, ok := x.(float32); ok {
			f = float64(y)
		} else {
			f = x.(float64)
		}
		return castFloat(f, to), nil
	case data.Decimal:
		switch to {
		case data.TypeFloat32:
			fl, _ := x.Rat().Float32()
			return fl, nil
		case data.TypeFloat64:
			return x.Float64(), nil
		}
		// BigDecimal.longValue: the integral part, low 64 bits.
		i := new(big.Int).Quo(x.Rat().Num(), x.Rat().Denom())
		n := int64(new(big.Int).And(i, new(big.Int).SetUint64(math.MaxUint64)).Uint64())
		if to == data.TypeBoolean {
			return n != 0, nil
		}
		return narrowInt(n, to), nil
	}
	return nil, dataErr("unexpected type in Cast transformation: %T", v)
}

// castInt is Java's Long.xxxValue plus Cast's boolean rule (non-zero).
func castInt(n int64, to data.Type) any {
	switch to {
	case data.TypeBoolean:
		return n != 0
	case data.TypeFloat32, data.TypeFloat64:
		return narrowFloat(float64(n), to)
	}
	return narrowInt(n, to)
}

// narrowInt wraps like Java's (byte)/(short)/(int) casts.
func narrowInt(n int64, to data.Type) any {
	switch to {
	case data.TypeInt8:
		return int8(n)
	case data.TypeInt16:
		return int16(n)
	case data.TypeInt32:
		return int32(n)
	}
	return n
}

func narrowFloat(f float64, to data.Type) any {
	if to == data.TypeFloat32 {
		return float32(f)
	}
	return f
}

// castFloat is Java's Double.xxxValue: int and long conversions saturate
// (NaN is 0); byte and short narrow the saturated int.
func castFloat(f float64, to data.Type) any {
	switch to {
	case data.TypeFloat32, data.TypeFloat64:
		return narrowFloat(f, to)
	case data.TypeBoolean:
		return satInt(f, math.MinInt64, math.MaxInt64) != 0
	case data.TypeInt64:
		return satInt(f, math.MinInt64, math.MaxInt64)
	}
	return narrowInt(satInt(f, math.MinInt32, math.MaxInt32), to)
}

func satInt(f float64, lo, hi int64) int64 {
	switch {
	case math.IsNaN(f):
		return 0
	case f <= float64(lo):
		return lo
	case f >= float64(hi):
		return hi
	}
	return int64(f)
}
