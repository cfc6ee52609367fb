package transform

import (
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// This file holds the SMTs that add, remove, rename, move or mask fields:
// InsertField, ReplaceField, ValueToKey, ExtractField, HoistField.

const optionalityDoc = "Suffix with <code>!</code> to make this a required field, or <code>?</code> to keep it optional (the default)."

func init() {
	register(&plugin{class: "InsertField", kind: kindTransformation, keyed: true, newStage: newInsertField, params: []param{
		nullable("topic.field", "STRING", "MEDIUM", "Field name for Kafka topic. "+optionalityDoc),
		nullable("partition.field", "STRING", "MEDIUM", "Field name for Kafka partition. "+optionalityDoc),
		nullable("offset.field", "STRING", "MEDIUM", "Field name for Kafka offset - only applicable to sink connectors.<br/>"+optionalityDoc),
		nullable("timestamp.field", "STRING", "MEDIUM", "Field name for record timestamp. "+optionalityDoc),
		nullable("static.field", "STRING", "MEDIUM", "Field name for static data field. "+optionalityDoc),
		nullable("static.value", "STRING", "MEDIUM", "Static field value, if field name configured."),
		replaceNullParam,
	}})
	register(&plugin{class: "ReplaceField", kind: kindTransformation, keyed: true, newStage: newReplaceField,
		aliases: map[string]string{"blacklist": "exclude", "whitelist": "include"}, params: []param{
			optional("exclude", "LIST", "", "MEDIUM", "Fields to exclude. This takes precedence over the fields to include."),
			optional("include", "LIST", "", "MEDIUM", "Fields to include. If specified, only these fields will be used."),
			optional("renames", "LIST", "", "MEDIUM", "Field rename mappings."),
			replaceNullParam,
		}})
	register(&plugin{class: "ValueToKey", kind: kindTransformation, newStage: newValueToKey, params: []param{
		required("fields", "LIST", "HIGH", "Field names on the record value to extract as the record key."),
		replaceNullParam,
	}})
	register(&plugin{class: "ExtractField", kind: kindTransformation, keyed: true, newStage: newExtractField, params: []param{
		required("field", "STRING", "MEDIUM", "Field name to extract."),
		replaceNullParam,
		optional("field.syntax.version", "STRING", "V1", "HIGH", "Defines the version of the syntax to access fields. If set to `V1`, then the field paths are limited to access the elements at the root level of the struct or map. If set to `V2`, the syntax will support accessing nested elements. To access nested elements, dotted notation is used. If dots are already included in the field name, then backtick pairs can be used to wrap field names containing dots."),
	}})
	register(&plugin{class: "HoistField", kind: kindTransformation, keyed: true, newStage: newHoistField, params: []param{
		required("field", "STRING", "MEDIUM", "Field name for the single field that will be created in the resulting Struct or Map."),
	}})
}

type insertSpec struct {
	name     string
	optional bool
}

// parseInsertSpec reads "name", "name?" (optional) or "name!" (required).
func parseInsertSpec(c *config, key string) *insertSpec {
	v, ok := c.str(key)
	if !ok {
		return nil
	}
	switch {
	case strings.HasSuffix(v, "?"):
		return &insertSpec{name: v[:len(v)-1], optional: true}
	case strings.HasSuffix(v, "!"):
		return &insertSpec{name: v[:len(v)-1]}
	}
	return &insertSpec{name: v, optional: true}
}

func newInsertField(c *config, o operand) (stageFunc, error) {
	topicF, partF, offF, tsF, staticF := parseInsertSpec(c, "topic.field"), parseInsertSpec(c, "partition.field"),
		parseInsertSpec(c, "offset.field"), parseInsertSpec(c, "timestamp.field"), parseInsertSpec(c, "static.field")
	staticV, hasStatic := c.str("static.value")
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	if topicF == nil && partF == nil && offF == nil && tsF == nil && staticF == nil {
		return nil, &ConfigError{Msg: "no field insertion configured"}
	}
	if staticF != nil && !hasStatic {
		return nil, c.errorf("static.value", "no value specified for static field: %s", staticF.name)
	}
	const purpose = "field insertion"
	pick := func(spec *insertSpec, opt, req *data.Schema) *data.Schema {
		if spec.optional {
			return opt
		}
		return req
	}
	build := func(s *data.Schema) (*data.Schema, error) {
		out := copySchemaBasics(s, data.TypeStruct)
		for _, f := range s.Fields {
			addField(out, f.Name, f.Schema)
		}
		if topicF != nil {
			addField(out, topicF.name, pick(topicF, data.OptionalStringSchema, data.StringSchema))
		}
		if partF != nil {
			addField(out, partF.name, pick(partF, data.OptionalInt32Schema, data.Int32Schema))
		}
		if offF != nil {
			addField(out, offF.name, pick(offF, data.OptionalInt64Schema, data.Int64Schema))
		}
		if tsF != nil {
			addField(out, tsF.name, pick(tsF, data.TimestampSchema.AsOptional(), data.TimestampSchema))
		}
		if staticF != nil {
			addField(out, staticF.name, pick(staticF, data.OptionalStringSchema, data.StringSchema))
		}
		return out, nil
	}
	smt := &fieldSMT{purpose: purpose, build: build}
	smt.onMap = func(r *data.Record, m map[string]any) (any, error) {
		if topicF != nil {
			m[topicF.name] = r.Topic
		}
		if partF != nil && r.Partition >= 0 {
			m[partF.name] = r.Partition
		}
		if offF != nil {
			m[offF.name] = r.KafkaOffset
		}
		if tsF != nil && r.Timestamp >= 0 {
			m[tsF.name] = r.Timestamp
		}
		if staticF != nil {
			m[staticF.name] = staticV
		}
		return m, nil
	}
	smt.onStruct = func(r *data.Record, st, out *data.Struct) error {
		type put struct {
			name string
			v    any
		}
		puts := make([]put, 0, len(st.Schema().Fields)+5)
		for _, f := range st.Schema().Fields {
			puts = append(puts, put{f.Name, fieldValue(st, f.Name, withDefault)})
		}
		if topicF != nil {
			puts = append(puts, put{topicF.name, r.Topic})
		}
		if partF != nil && r.Partition >= 0 {
			puts = append(puts, put{partF.name, r.Partition})
		}
		if offF != nil {
			puts = append(puts, put{offF.name, r.KafkaOffset})
		}
		if tsF != nil && r.Timestamp >= 0 {
			puts = append(puts, put{tsF.name, data.TimestampFromMillis(r.Timestamp)})
		}
		if staticF != nil {
			puts = append(puts, put{staticF.name, staticV})
		}
		for _, p := range puts {
			if err := out.Put(p.name, p.v); err != nil {
				return err
			}
		}
		return nil
	}
	stage := smt.stage(o)
	return func(r *data.Record) (*data.Record, error) {
		if _, v := o.get(r); v != nil && offF != nil && !r.IsSink() {
			return nil, dataErr("only SinkRecord supported for [%s], found: SourceRecord", purpose)
		}
		return stage(r)
	}, nil
}

func newReplaceField(c *config, o operand) (stageFunc, error) {
	exclude, include := c.list("exclude"), c.list("include")
	renames := map[string]string{}
	reverse := map[string]string{}
	for _, m := range c.list("renames") {
		parts := strings.Split(m, ":")
		if len(parts) != 2 {
			return nil, c.errorf("renames", "invalid rename mapping: %s", m)
		}
		renames[parts[0]] = parts[1]
		reverse[parts[1]] = parts[0]
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	keep := func(name string) bool {
		return !contains(exclude, name) && (len(include) == 0 || contains(include, name))
	}
	renamed := func(name string) string {
		if n, ok := renames[name]; ok {
			return n
		}
		return name
	}
	build := func(s *data.Schema) (*data.Schema, error) {
		out := copySchemaBasics(s, data.TypeStruct)
		for _, f := range s.Fields {
			if keep(f.Name) {
				addField(out, renamed(f.Name), f.Schema)
			}
		}
		return out, nil
	}
	smt := &fieldSMT{purpose: "field replacement", build: build}
	smt.onMap = func(_ *data.Record, m map[string]any) (any, error) {
		out := make(map[string]any, len(m))
		for k, e := range m {
			if keep(k) {
				out[renamed(k)] = e
			}
		}
		return out, nil
	}
	smt.onStruct = func(_ *data.Record, st, out *data.Struct) error {
		for _, f := range out.Schema().Fields {
			orig := f.Name
			if n, ok := reverse[f.Name]; ok {
				orig = n
			}
			if err := out.Put(f.Name, fieldValue(st, orig, withDefault)); err != nil {
				return err
			}
		}
		return nil
	}
	return smt.stage(o), nil
}

func contains(list []string, s string) bool {
	for _, e := range list {
		if e == s {
			return true
		}
	}
	return false
}

func newValueToKey(c *config, _ operand) (stageFunc, error) {
	fields, err := c.nonEmptyList("fields")
	if err != nil {
		return nil, err
	}
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	const purpose = "copying fields from value to key"
	var cache schemaCache
	build := func(s *data.Schema) (*data.Schema, error) {
		out := &data.Schema{Type: data.TypeStruct}
		for _, name := range fields {
			f := s.Field(name)
			if f == nil {
				return nil, dataErr("field does not exist: %s", name)
			}
			addField(out, name, f.Schema)
		}
		return out, nil
	}
	return func(r *data.Record) (*data.Record, error) {
		if r.ValueSchema == nil {
			m, err := requireMap(r.Value, purpose)
			if err != nil {
				return nil, err
			}
			key := make(map[string]any, len(fields))
			for _, f := range fields {
				key[f] = data.CloneValue(m[f])
			}
			r.KeySchema, r.Key = nil, key
			return r, nil
		}
		st, err := requireStruct(r.Value, purpose)
		if err != nil {
			return nil, err
		}
		ks, err := cache.get(st.Schema(), build)
		if err != nil {
			return nil, err
		}
		key := data.NewStruct(ks)
		for _, f := range fields {
			if err := key.Put(f, data.CloneValue(fieldValue(st, f, withDefault))); err != nil {
				return nil, err
			}
		}
		r.KeySchema, r.Key, r.ValueSchema = ks, key, st.Schema()
		return r, nil
	}, nil
}

func newExtractField(c *config, o operand) (stageFunc, error) {
	field, _ := c.str("field")
	withDefault, err := c.boolean("replace.null.with.default")
	if err != nil {
		return nil, err
	}
	version, err := c.oneOf("field.syntax.version", true, "V1", "V2")
	if err != nil {
		return nil, err
	}
	path := []string{field}
	if version == "V2" {
		if path, err = parseFieldPath(field); err != nil {
			return nil, c.errorf("field", "%v", err)
		}
	}
	const purpose = "field extraction"
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if s == nil {
			if v == nil {
				return o.set(r, nil, nil), nil
			}
			m, err := requireMap(v, purpose)
			if err != nil {
				return nil, err
			}
			for _, step := range path[:len(path)-1] {
				next := m[step]
				if next == nil {
					return o.set(r, nil, nil), nil
				}
				if m, err = requireMap(next, "nested field access"); err != nil {
					return nil, err
				}
			}
			return o.set(r, nil, m[path[len(path)-1]]), nil
		}
		fs := s
		for _, step := range path {
			f := fs.Field(step)
			if f == nil || fs.Type != data.TypeStruct {
				return nil, dataErr("unknown field: %s", field)
			}
			fs = f.Schema
		}
		if v == nil {
			return o.set(r, fs, nil), nil
		}
		st, err := requireStruct(v, purpose)
		if err != nil {
			return nil, err
		}
		for _, step := range path[:len(path)-1] {
			next := st.Get(step)
			if next == nil {
				return o.set(r, fs, nil), nil
			}
			if st, err = requireStruct(next, "nested field access"); err != nil {
				return nil, err
			}
		}
		return o.set(r, fs, fieldValue(st, path[len(path)-1], withDefault)), nil
	}, nil
}

// parseFieldPath splits a field.syntax.version=V2 path: dots separate
// steps, a step wrapped in backticks may contain dots, and \` before a
// closing backtick-dot keeps the backtick.
func parseFieldPath(p string) ([]string, error) {
	var steps []string
	i := 0
	for i < len(p) {
		if p[i] != '`' {
			j := strings.IndexByte(p[i:], '.')
			if j < 0 {
				steps = append(steps, p[i:])
				break
			}
			steps = append(steps, p[i:i+j])
			i += j + 1
			continue
		}
		open := i
		i++
		var b strings.Builder
		start := i
		for {
			j := strings.IndexByte(p[i:], '`')
			if j < 0 {
				return nil, errIncompleteBacktick(p, open)
			}
			i += j
			escaped := p[i-1] == '\\'
			if i == len(p)-1 {
				if escaped {
					return nil, errIncompleteBacktick(p, open)
				}
				b.WriteString(p[start:i])
				steps = append(steps, b.String())
				i++
				break
			}
			if p[i+1] != '.' {
				i++
				continue
			}
			if escaped {
				b.WriteString(p[start : i-1])
				b.WriteByte('`')
				i++
				start = i
				continue
			}
			b.WriteString(p[start:i])
			steps = append(steps, b.String())
			i += 2
			break
		}
	}
	if p != "" && p[len(p)-1] == '.' {
		steps = append(steps, "")
	}
	if len(steps) == 0 {
		steps = []string{""}
	}
	return steps, nil
}

func errIncompleteBacktick(p string, at int) error {
	return &ConfigError{Msg: "incomplete backtick pair in path: [" + p + "], consider adding a backslash before backtick at position " + strconv.Itoa(at) + " to escape it"}
}

func newHoistField(c *config, o operand) (stageFunc, error) {
	field, _ := c.str("field")
	var cache schemaCache
	build := func(s *data.Schema) (*data.Schema, error) {
		return data.StructOf("", data.F(field, s)), nil
	}
	return func(r *data.Record) (*data.Record, error) {
		s, v := o.get(r)
		if s == nil {
			return o.set(r, nil, map[string]any{field: v}), nil
		}
		ns, _ := cache.get(s, build)
		st := data.NewStruct(ns)
		if err := st.Put(field, v); err != nil {
			return nil, err
		}
		return o.set(r, ns, st), nil
	}, nil
}
