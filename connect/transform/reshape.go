package transform

import (
	"math/big"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// This file holds the SMTs that rewrite values in place or reshape them:
// MaskField, Flatten and SetSchemaMetadata.

func init() {
	register(&plugin{class: "MaskField", kind: kindTransformation, keyed: true, newStage: newMaskField, params: []param{
		required("fields", "LIST", "HIGH", "Names of fields to mask."),
		nullable("replacement", "STRING", "LOW", "Custom value replacement, that will be applied to all 'fields' values (numeric or non-empty string values only)."),
		replaceNullParam,
	}})
	register(&plugin{class: "Flatten", kind: kindTransformation, keyed: true, newStage: newFlatten, params: []param{
		optional("delimiter", "STRING", ".", "MEDIUM", "Delimiter to insert between field names from the input record when generating field names for the output record"),
	}})
	register(&plugin{class: "SetSchemaMetadata", kind: kindTransformation, keyed: true, newStage: newSetSchemaMetadata, params: []param{
		nullable("schema.name", "STRING", "HIGH", "Schema name to set."),
		nullable("schema.version", "INT", "HIGH", "Schema version to set."),
		replaceNullParam,
	}})
}

func newMaskField(c *config, o operand) (stageFunc, error) {
	fields, err := c.nonEmptyList("fields")
	if err != nil {
		return nil, err
	}
	replacement, custom := c.str("replacement")
	if custom && replacement == "" {
		return nil, c.errorf("replacement", "string must be non-empty")
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	mask := func(v any) (any, error) {
		if v == nil {
			return nil, nil
		}
		if custom {
			return maskWith(v, replacement)
		}
		return maskZero(v)
	}
	smt := &fieldSMT{purpose: "mask fields"}
	smt.onMap = func(_ *data.Record, m map[string]any) (any, error) {
		for _, f := range fields {
			mv, err := mask(m[f])
			if err != nil {
				return nil, err
			}
			m[f] = mv
		}
		return m, nil
	}
	smt.onStruct = func(_ *data.Record, st, out *data.Struct) error {
		for _, f := range st.Schema().Fields {
			fv := fieldValue(st, f.Name, withDefault)
			if contains(fields, f.Name) {
				var err error
				if fv, err = mask(fv); err != nil {
					return err
				}
			}
			if err := out.Put(f.Name, fv); err != nil {
				return err
			}
		}
		return nil
	}
	// Kafka throws on a null operand; a tombstone has nothing to mask, so
	// here it passes through.
	return smt.stage(o), nil
}

// maskZero is MaskField's "null value" for a type: 0, false, "", the epoch,
// an empty array or map.
func maskZero(v any) (any, error) {
	switch x := v.(type) {
	case bool:
		return false, nil
	case int8:
		return int8(0), nil
	case int16:
		return int16(0), nil
	case int32:
		return int32(0), nil
	case int64:
		return int64(0), nil
	case float32:
		return float32(0), nil
	case float64:
		return float64(0), nil
	case data.Decimal:
		// Kafka uses BigDecimal.ZERO (scale 0); keeping the scale keeps the
		// value valid for its Decimal schema.
		return data.Decimal{Unscaled: new(big.Int), Scale: x.Scale}, nil
	case time.Time:
		return time.UnixMilli(0).UTC(), nil
	case string:
		return "", nil
	case []any:
		return []any{}, nil
	case map[string]any:
		return map[string]any{}, nil
	case *data.Map:
		return &data.Map{}, nil
	}
	return nil, dataErr("cannot mask value of type: %s", typeName(v))
}

func maskWith(v any, repl string) (any, error) {
	bad := func(err error) error {
		return dataErr("unable to convert %s (string) to number: %v", repl, err)
	}
	t := strings.TrimSpace(repl)
	switch v.(type) {
	case string:
		return repl, nil
	case int8, int16, int32, int64:
		n, err := strconv.ParseInt(t, 10, 64)
		if err != nil {
			return nil, bad(err)
		}
		switch v.(type) {
		case int8:
			return int8(n), nil
		case int16:
			return int16(n), nil
		case int32:
			return int32(n), nil
		}
		return n, nil
	case float32:
		f, err := strconv.ParseFloat(t, 32)
		if err != nil {
			return nil, bad(err)
		}
		return float32(f), nil
	case float64:
		f, err := strconv.ParseFloat(t, 64)
		if err != nil {
			return nil, bad(err)
		}
		return f, nil
	case data.Decimal:
		d, err := data.ParseDecimal(t)
		if err != nil {
			return nil, bad(err)
		}
		return d, nil
	}
	return nil, dataErr("cannot mask value of type %s with custom replacement", typeName(v))
}

func newFlatten(c *config, o operand) (stageFunc, error) {
	delim, _ := c.str("delimiter")
	name := func(prefix, f string) string {
		if prefix == "" {
			return f
		}
		return prefix + delim + f
	}
	const purpose = "flattening"
	var flatMap func(in map[string]any, prefix string, out map[string]any) error
	flatMap = func(in map[string]any, prefix string, out map[string]any) error {
		for k, v := range in {
			n := name(prefix, k)
			if v == nil {
				out[n] = nil
				continue
			}
			switch data.InferType(v) {
			case data.TypeMap:
				m, err := requireMap(v, purpose)
				if err != nil {
					return err
				}
				if err := flatMap(m, n, out); err != nil {
					return err
				}
			case data.TypeStruct, "":
				return dataErr("flatten transformation does not support %s for record without schemas (for field %s)", typeName(v), n)
			default:
				out[n] = v
			}
		}
		return nil
	}
	var buildSchema func(s *data.Schema, prefix string, out *data.Schema, optional bool, parentDefault *data.Struct) error
	buildSchema = func(s *data.Schema, prefix string, out *data.Schema, optional bool, parentDefault *data.Struct) error {
		for _, f := range s.Fields {
			n := name(prefix, f.Name)
			opt := optional || f.Schema.Optional
			def := f.Schema.Default
			if def == nil && parentDefault != nil {
				def = parentDefault.Get(f.Name)
			}
			switch f.Schema.Type {
			case data.TypeStruct:
				pd, _ := def.(*data.Struct)
				if err := buildSchema(f.Schema, n, out, opt, pd); err != nil {
					return err
				}
			case data.TypeMap:
				return dataErr("flatten transformation does not support MAP for record with schemas (for field %s)", n)
			default:
				fs := copySchemaBasics(f.Schema, f.Schema.Type)
				fs.Items = f.Schema.Items
				fs.Optional = opt
				fs.Default = def
				addField(out, n, fs)
			}
		}
		return nil
	}
	var buildValue func(st *data.Struct, prefix string, out *data.Struct) error
	buildValue = func(st *data.Struct, prefix string, out *data.Struct) error {
		if st == nil {
			return nil
		}
		for _, f := range st.Schema().Fields {
			n := name(prefix, f.Name)
			if f.Schema.Type == data.TypeStruct {
				nested, _ := st.GetWithoutDefault(f.Name).(*data.Struct)
				if err := buildValue(nested, n, out); err != nil {
					return err
				}
				continue
			}
			if err := out.Put(n, st.Get(f.Name)); err != nil {
				return err
			}
		}
		return nil
	}
	build := func(s *data.Schema) (*data.Schema, error) {
		out := copySchemaBasics(s, data.TypeStruct)
		pd, _ := s.Default.(*data.Struct)
		if err := buildSchema(s, "", out, s.Optional, pd); err != nil {
			return nil, err
		}
		return out, nil
	}
	smt := &fieldSMT{purpose: purpose, build: build}
	smt.onMap = func(_ *data.Record, m map[string]any) (any, error) {
		out := make(map[string]any, len(m))
		return out, flatMap(m, "", out)
	}
	smt.onStruct = func(_ *data.Record, st, out *data.Struct) error { return buildValue(st, "", out) }
	return smt.stage(o), nil
}

func newSetSchemaMetadata(c *config, o operand) (stageFunc, error) {
	name, hasName := c.str("schema.name")
	vs, hasVersion := c.str("schema.version")
	var version int32
	if hasVersion {
		var err error
		if version, err = parseInt32(vs); err != nil {
			return nil, c.errorf("schema.version", "invalid value %s: not a number of type INT", vs)
		}
	}
	if !hasName && !hasVersion {
		return nil, &ConfigError{Msg: "neither schema name nor version configured"}
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if s == nil && v == nil {
			return r, nil
		}
		if s == nil {
			return nil, dataErr("schema required for [updating schema metadata]")
		}
		ns := s.Copy()
		if hasName {
			ns.Name = name
		}
		if hasVersion {
			ns.Version = version
		}
		if st, ok := v.(*data.Struct); ok && st != nil {
			out := data.NewStruct(ns)
			for _, f := range ns.Fields {
				if err := out.Put(f.Name, fieldValue(st, f.Name, withDefault)); err != nil {
					return nil, err
				}
			}
			v = out
		}
		return o.set(r, ns, v), nil
	}, nil
}
