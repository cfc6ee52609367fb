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

// This file holds Cast and TimestampConverter, the SMTs that change a
// field's type.

func init() {
	register(&plugin{class: "Cast", kind: kindTransformation, keyed: true, newStage: newCast, params: []param{
		required("spec", "LIST", "HIGH", "List of fields and the type to cast them to of the form field1:type,field2:type to cast fields of Maps or Structs. A single type to cast the entire value. Valid types are int8, int16, int32, int64, float32, float64, boolean, and string. Note that binary fields can only be cast to string."),
		replaceNullParam,
	}})
	register(&plugin{class: "TimestampConverter", kind: kindTransformation, keyed: true, newStage: newTimestampConverter, params: []param{
		optional("field", "STRING", "", "HIGH", "The field containing the timestamp, or empty if the entire value is a timestamp"),
		required("target.type", "STRING", "HIGH", "The desired timestamp representation: string, unix, Date, Time, or Timestamp"),
		optional("format", "STRING", "", "MEDIUM", "A SimpleDateFormat-compatible format for the timestamp. Used to generate the output when type=string or used to parse the input if the input is a string."),
		optional("unix.precision", "STRING", "milliseconds", "LOW", "The desired Unix precision for the timestamp: seconds, milliseconds, microseconds, or nanoseconds. Used to generate the output when type=unix or used to parse the input if the input is a Long.Note: This SMT will cause precision loss during conversions from, and to, values with sub-millisecond components."),
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

type tsConverter struct {
	target    string
	format    *javaDateFormat
	precision string
}

func newTimestampConverter(c *config, o operand) (stageFunc, error) {
	field, _ := c.str("field")
	target, err := c.oneOf("target.type", false, "string", "unix", "Date", "Time", "Timestamp")
	if err != nil {
		return nil, err
	}
	precision, err := c.oneOf("unix.precision", false, "nanoseconds", "microseconds", "milliseconds", "seconds")
	if err != nil {
		return nil, err
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	tc := &tsConverter{target: target, precision: precision}
	pattern, _ := c.str("format")
	if target == "string" && strings.TrimSpace(pattern) == "" {
		return nil, &ConfigError{Msg: "TimestampConverter requires format option to be specified when using string timestamps"}
	}
	if strings.TrimSpace(pattern) != "" {
		if tc.format, err = newJavaDateFormat(pattern); err != nil {
			return nil, c.errorf("format", "TimestampConverter requires a SimpleDateFormat-compatible pattern for string timestamps: %v", err)
		}
	}
	const purpose = "converting timestamp formats"
	convertStruct := func(st *data.Struct, ns *data.Schema) (*data.Struct, error) {
		if st == nil {
			return nil, nil
		}
		out := data.NewStruct(ns)
		for _, f := range st.Schema().Fields {
			fv := fieldValue(st, f.Name, withDefault)
			if f.Name == field {
				from, err := tsTypeOf(f.Schema)
				if err != nil {
					return nil, err
				}
				if fv, err = tc.convert(fv, from); err != nil {
					return nil, err
				}
			}
			if err := out.Put(f.Name, fv); err != nil {
				return nil, err
			}
		}
		return out, nil
	}
	var cache schemaCache
	build := func(s *data.Schema) (*data.Schema, error) {
		out := copySchemaBasics(s, data.TypeStruct)
		for _, f := range s.Fields {
			fs := f.Schema
			if f.Name == field {
				fs = tc.schema(f.Schema.Optional)
			}
			addField(out, f.Name, fs)
		}
		out.Optional = s.Optional
		if d, ok := s.Default.(*data.Struct); ok {
			nd, err := convertStruct(d, out)
			if err != nil {
				return nil, err
			}
			out.Default = nd
		}
		return out, nil
	}
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if s == nil {
			if v == nil || field == "" {
				cv, err := tc.convert(v, "")
				if err != nil {
					return nil, err
				}
				return o.set(r, nil, cv), nil
			}
			m, err := requireMap(v, purpose)
			if err != nil {
				return nil, err
			}
			cv, err := tc.convert(m[field], "")
			if err != nil {
				return nil, err
			}
			m[field] = cv
			return r, nil
		}
		if field == "" {
			from, err := tsTypeOf(s)
			if err != nil {
				return nil, err
			}
			cv, err := tc.convert(v, from)
			if err != nil {
				return nil, err
			}
			return o.set(r, tc.schema(s.Optional), cv), nil
		}
		var st *data.Struct
		if v != nil {
			var err error
			if st, err = requireStruct(v, purpose); err != nil {
				return nil, err
			}
		}
		ns, err := cache.get(s, build)
		if err != nil {
			return nil, err
		}
		out, err := convertStruct(st, ns)
		if err != nil {
			return nil, err
		}
		if out == nil {
			return o.set(r, ns, nil), nil
		}
		return o.set(r, ns, out), nil
	}, nil
}

func tsTypeOf(s *data.Schema) (string, error) {
	switch {
	case s.Name == data.TimestampName:
		return "Timestamp", nil
	case s.Name == data.DateName:
		return "Date", nil
	case s.Name == data.TimeName:
		return "Time", nil
	case s.Type == data.TypeString:
		return "string", nil
	case s.Type == data.TypeInt64:
		return "unix", nil
	}
	return "", dataErr("schema %s does not correspond to a known timestamp type format", s)
}

func (tc *tsConverter) schema(optional bool) *data.Schema {
	var s *data.Schema
	switch tc.target {
	case "string":
		s = data.StringSchema
	case "unix":
		s = data.Int64Schema
	case "Date":
		s = data.DateSchema
	case "Time":
		s = data.TimeSchema
	default:
		s = data.TimestampSchema
	}
	if optional {
		return s.AsOptional()
	}
	return s
}

// convert turns a timestamp of type from ("" = infer from the Go value)
// into the target type.
func (tc *tsConverter) convert(v any, from string) (any, error) {
	if v == nil {
		return nil, nil
	}
	if from == "" {
		switch v.(type) {
		case time.Time:
			from = "Timestamp"
		case int64:
			from = "unix"
		case string:
			from = "string"
		default:
			return nil, dataErr("TimestampConverter does not support %T objects as timestamps", v)
		}
	}
	var raw time.Time
	switch from {
	case "string":
		str, ok := v.(string)
		if !ok {
			return nil, dataErr("expected string timestamp to be a String, but found %T", v)
		}
		if tc.format == nil {
			return nil, dataErr("could not parse timestamp: value (%s) and no format configured", str)
		}
		t, err := tc.format.Parse(str)
		if err != nil {
			return nil, dataErr("could not parse timestamp: value (%s) does not match pattern (%s)", str, tc.format.pattern)
		}
		raw = t
	case "unix":
		n, ok := v.(int64)
		if !ok {
			return nil, dataErr("expected Unix timestamp to be a Long, but found %T", v)
		}
		switch tc.precision {
		case "seconds":
			n *= 1000
		case "microseconds":
			n /= 1000
		case "nanoseconds":
			n /= 1_000_000
		}
		raw = time.UnixMilli(n).UTC()
	default:
		t, ok := v.(time.Time)
		if !ok {
			return nil, dataErr("expected %s to be a time.Time, but found %T", from, v)
		}
		raw = t.UTC()
	}
	ms := raw.UnixMilli()
	switch tc.target {
	case "string":
		return tc.format.Format(raw), nil
	case "unix":
		switch tc.precision {
		case "seconds":
			return ms / 1000, nil
		case "microseconds":
			return ms * 1000, nil
		case "nanoseconds":
			return ms * 1_000_000, nil
		}
		return ms, nil
	case "Date":
		return time.UnixMilli(ms - mod(ms, 86_400_000)).UTC(), nil
	case "Time":
		return time.UnixMilli(mod(ms, 86_400_000)).UTC(), nil
	}
	return raw, nil
}

func mod(a, b int64) int64 {
	m := a % b
	if m < 0 {
		m += b
	}
	return m
}
