package transform

import (
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// This file holds TimestampConverter, which converts timestamps between
// Unix epoch numbers, formatted strings and Connect's Date, Time and
// Timestamp types.

func init() {
	register(&plugin{class: "TimestampConverter", kind: kindTransformation, keyed: true, newStage: newTimestampConverter, params: []param{
		optional("field", "STRING", "", "HIGH", "The field containing the timestamp, or empty if the entire value is a timestamp"),
		required("target.type", "STRING", "HIGH", "The desired timestamp representation: string, unix, Date, Time, or Timestamp"),
		optional("format", "STRING", "", "MEDIUM", "A SimpleDateFormat-compatible format for the timestamp. Used to generate the output when type=string or used to parse the input if the input is a string."),
		optional("unix.precision", "STRING", "milliseconds", "LOW", "The desired Unix precision for the timestamp: seconds, milliseconds, microseconds, or nanoseconds. Used to generate the output when type=unix or used to parse the input if the input is a Long.Note: This SMT will cause precision loss during conversions from, and to, values with sub-millisecond components."),
		replaceNullParam,
	}})
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
