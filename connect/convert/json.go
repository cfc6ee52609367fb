package convert

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// JSON converter config keys, as Kafka's JsonConverterConfig.
const (
	SchemasEnableConfig          = "schemas.enable"
	SchemasCacheSizeConfig       = "schemas.cache.size"
	DecimalFormatConfig          = "decimal.format"
	ReplaceNullWithDefaultConfig = "replace.null.with.default"
)

// JSONConverter is Kafka's org.apache.kafka.connect.json.JsonConverter:
// with schemas.enable (the default) every message is an envelope
// {"schema":…,"payload":…}; without it, plain JSON whose schema is
// inferred on read (integers int64, other numbers float64, objects maps).
type JSONConverter struct {
	schemas         bool
	decimalNumeric  bool
	replaceDefaults bool

	// Schemas are translated once and cached, as Kafka does: written ones
	// by schema pointer (schemas are immutable), read ones by their JSON
	// text. Both are bounded by schemas.cache.size.
	cacheMu   sync.Mutex
	cacheSize int
	written   map[*data.Schema][]byte
	read      map[string]*data.Schema
}

// Configure reads schemas.enable, decimal.format (BASE64 or NUMERIC,
// case-insensitive), replace.null.with.default and schemas.cache.size.
func (c *JSONConverter) Configure(props map[string]string, _ bool) error {
	var err error
	if c.schemas, err = boolProp(props, SchemasEnableConfig, true); err != nil {
		return err
	}
	if c.replaceDefaults, err = boolProp(props, ReplaceNullWithDefaultConfig, true); err != nil {
		return err
	}
	c.cacheSize = 1000
	if v, ok := props[SchemasCacheSizeConfig]; ok {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("invalid value %s for configuration %s: not a number of type INT", v, SchemasCacheSizeConfig)
		}
		c.cacheSize = n
	}
	switch f := strings.ToUpper(strings.TrimSpace(props[DecimalFormatConfig])); f {
	case "", "BASE64":
		c.decimalNumeric = false
	case "NUMERIC":
		c.decimalNumeric = true
	default:
		return fmt.Errorf("invalid value %s for configuration %s: string must be one of: BASE64, NUMERIC", props[DecimalFormatConfig], DecimalFormatConfig)
	}
	return nil
}

func boolProp(props map[string]string, key string, def bool) (bool, error) {
	v, ok := props[key]
	if !ok {
		return def, nil
	}
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "true":
		return true, nil
	case "false":
		return false, nil
	}
	return false, fmt.Errorf("invalid value %s for configuration %s: expected value to be either true or false", v, key)
}

// FromConnect serializes v. A nil schema and nil value is a tombstone
// (nil bytes), as in Kafka.
func (c *JSONConverter) FromConnect(_ string, s *data.Schema, v any) ([]byte, error) {
	if s == nil && v == nil {
		return nil, nil
	}
	// The message is built in a pooled buffer and copied out at its exact
	// size: one allocation per record instead of a buffer grown by
	// doubling (whose copying and clearing were most of the cost).
	bp := writeBufs.Get().(*[]byte)
	b, err := c.appendMessage((*bp)[:0], s, v)
	var out []byte
	if err == nil {
		out = make([]byte, len(b))
		copy(out, b) // make+copy: the compiler skips zeroing out
	}
	if cap(b) <= maxPooledBuf {
		*bp = b
		writeBufs.Put(bp)
	}
	return out, err
}

// maxPooledBuf keeps one huge record from pinning its buffer in the pool.
const maxPooledBuf = 64 << 10

var writeBufs = sync.Pool{New: func() any { b := make([]byte, 0, 1024); return &b }}

func (c *JSONConverter) appendMessage(b []byte, s *data.Schema, v any) ([]byte, error) {
	var err error
	if c.schemas {
		b = append(b, `{"schema":`...)
		js, err := c.schemaJSON(s)
		if err != nil {
			return b, err
		}
		b = append(b, js...)
		b = append(b, `,"payload":`...)
	}
	// appendValue returns a nil slice on error; keep b to pool it.
	out, err := c.appendValue(b, s, v)
	if err != nil {
		return b, fmt.Errorf("converting Kafka Connect data to JSON: %w", err)
	}
	if c.schemas {
		out = append(out, '}')
	}
	return out, nil
}

// schemaJSON returns s in Kafka's JSON schema form, from the cache when
// it can.
func (c *JSONConverter) schemaJSON(s *data.Schema) ([]byte, error) {
	if s == nil {
		return nullJSON, nil
	}
	c.cacheMu.Lock()
	js, ok := c.written[s]
	c.cacheMu.Unlock()
	if ok {
		return js, nil
	}
	js, err := c.appendSchema(nil, s)
	if err != nil {
		return nil, err
	}
	c.cacheMu.Lock()
	if c.written == nil || len(c.written) >= c.cacheSize {
		c.written = map[*data.Schema][]byte{} // a full cache starts over
	}
	if c.cacheSize > 0 {
		c.written[s] = js
	}
	c.cacheMu.Unlock()
	return js, nil
}

var nullJSON = []byte("null")

// appendSchema writes Kafka's JSON schema: type, then items/keys/values/
// fields, then optional, name, version, doc, parameters, default.
func (c *JSONConverter) appendSchema(b []byte, s *data.Schema) ([]byte, error) {
	if s == nil {
		return append(b, "null"...), nil
	}
	return c.appendSchemaBody(b, s, "")
}

func jsonTypeName(t data.Type) (string, bool) {
	switch t {
	case data.TypeFloat32:
		return "float", true
	case data.TypeFloat64:
		return "double", true
	case data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64, data.TypeBoolean, data.TypeString,
		data.TypeBytes, data.TypeArray, data.TypeMap, data.TypeStruct:
		return string(t), true
	}
	return "", false
}

// appendSchemaBody writes the schema object; a non-empty field name is
// appended last as "field", as Kafka does for struct fields.
func (c *JSONConverter) appendSchemaBody(b []byte, s *data.Schema, field string) ([]byte, error) {
	name, ok := jsonTypeName(s.Type)
	if !ok {
		return nil, &data.DataError{Msg: fmt.Sprintf("couldn't translate unsupported schema type %s", s)}
	}
	var err error
	b = append(b, `{"type":`...)
	b = appendString(b, name)
	switch s.Type {
	case data.TypeArray:
		b = append(b, `,"items":`...)
		if b, err = c.appendSchema(b, s.Items); err != nil {
			return nil, err
		}
	case data.TypeMap:
		b = append(b, `,"keys":`...)
		if b, err = c.appendSchema(b, s.Keys); err != nil {
			return nil, err
		}
		b = append(b, `,"values":`...)
		if b, err = c.appendSchema(b, s.Values); err != nil {
			return nil, err
		}
	case data.TypeStruct:
		b = append(b, `,"fields":[`...)
		for i, f := range s.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = c.appendSchemaBody(b, f.Schema, f.Name); err != nil {
				return nil, err
			}
		}
		b = append(b, ']')
	}
	b = append(b, `,"optional":`...)
	b = strconv.AppendBool(b, s.Optional)
	if s.Name != "" {
		b = append(b, `,"name":`...)
		b = appendString(b, s.Name)
	}
	if s.Version != 0 {
		b = append(b, `,"version":`...)
		b = strconv.AppendInt(b, int64(s.Version), 10)
	}
	if s.Doc != "" {
		b = append(b, `,"doc":`...)
		b = appendString(b, s.Doc)
	}
	if s.Parameters != nil {
		b = append(b, `,"parameters":{`...)
		for i, k := range slices.Sorted(maps.Keys(s.Parameters)) {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			b = appendString(b, s.Parameters[k])
		}
		b = append(b, '}')
	}
	if s.Default != nil {
		b = append(b, `,"default":`...)
		if b, err = c.appendValue(b, s, s.Default); err != nil {
			return nil, err
		}
	}
	if field != "" {
		b = append(b, `,"field":`...)
		b = appendString(b, field)
	}
	return append(b, '}'), nil
}

// appendValue is Kafka's convertToJson.
func (c *JSONConverter) appendValue(b []byte, s *data.Schema, v any) ([]byte, error) {
	if v == nil {
		switch {
		case s == nil || s.Optional && (s.Default == nil || !c.replaceDefaults):
			return append(b, "null"...), nil
		case s.Default != nil && c.replaceDefaults:
			return c.appendValue(b, s, s.Default)
		}
		return nil, &data.DataError{Msg: "conversion error: null value for field that is required and has no default value"}
	}
	if s != nil {
		switch s.Name {
		case data.DecimalName:
			d, ok := v.(data.Decimal)
			if !ok {
				return nil, &data.DataError{Msg: fmt.Sprintf("invalid type for Decimal, expected data.Decimal but was %T", v)}
			}
			if c.decimalNumeric {
				return append(b, d.String()...), nil
			}
			raw, err := data.DecimalToBytes(s, d)
			if err != nil {
				return nil, err
			}
			return appendBase64(b, raw), nil
		case data.DateName, data.TimeName, data.TimestampName:
			return appendTime(b, s.Name, v)
		}
	}
	t := data.InferType(v)
	if s != nil {
		t = s.Type
	}
	if t == "" {
		return nil, &data.DataError{Msg: fmt.Sprintf("Go type %T does not have a corresponding schema type", v)}
	}
	switch t {
	case data.TypeStruct:
		st, ok := v.(*data.Struct)
		if !ok {
			break
		}
		if !st.Schema().Equal(s) {
			return nil, &data.DataError{Msg: "mismatching schema"}
		}
		b = append(b, '{')
		var err error
		for i, f := range s.Fields {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, f.Name)
			b = append(b, ':')
			if b, err = c.appendValue(b, f.Schema, st.GetWithoutDefault(f.Name)); err != nil {
				return nil, err
			}
		}
		return append(b, '}'), nil
	case data.TypeArray:
		arr, ok := v.([]any)
		if !ok {
			break
		}
		var items *data.Schema
		if s != nil {
			items = s.Items
		}
		b = append(b, '[')
		var err error
		for i, e := range arr {
			if i > 0 {
				b = append(b, ',')
			}
			if b, err = c.appendValue(b, items, e); err != nil {
				return nil, err
			}
		}
		return append(b, ']'), nil
	case data.TypeMap:
		if m, ok := v.(map[string]any); ok && (s == nil || s.Keys != nil && s.Keys.Type == data.TypeString) {
			var vs *data.Schema
			if s != nil {
				vs = s.Values
			}
			return c.appendObject(b, vs, m)
		}
		if data.InferType(v) != data.TypeMap {
			break
		}
		return c.appendMap(b, s, v)
	default:
		if out, ok := appendPrimitive(b, t, v); ok {
			return out, nil
		}
	}
	return nil, &data.DataError{Msg: fmt.Sprintf("invalid type for %s: %T", strings.ToUpper(string(t)), v)}
}

func appendTime(b []byte, name string, v any) ([]byte, error) {
	t, ok := v.(time.Time)
	if !ok {
		return nil, &data.DataError{Msg: fmt.Sprintf("invalid type for %s, expected time.Time but was %T", name[strings.LastIndexByte(name, '.')+1:], v)}
	}
	switch name {
	case data.DateName:
		n, err := data.DateToDays(t)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(b, int64(n), 10), nil
	case data.TimeName:
		n, err := data.TimeToMillis(t)
		if err != nil {
			return nil, err
		}
		return strconv.AppendInt(b, int64(n), 10), nil
	}
	return strconv.AppendInt(b, data.TimestampToMillis(t), 10), nil
}

func appendPrimitive(b []byte, t data.Type, v any) ([]byte, bool) {
	switch x := v.(type) {
	case int8:
		return strconv.AppendInt(b, int64(x), 10), t == data.TypeInt8
	case int16:
		return strconv.AppendInt(b, int64(x), 10), t == data.TypeInt16
	case int32:
		return strconv.AppendInt(b, int64(x), 10), t == data.TypeInt32
	case int64:
		return strconv.AppendInt(b, x, 10), t == data.TypeInt64
	case float32:
		return appendJavaFloat(b, float64(x), 32), t == data.TypeFloat32
	case float64:
		return appendJavaFloat(b, x, 64), t == data.TypeFloat64
	case bool:
		return strconv.AppendBool(b, x), t == data.TypeBoolean
	case string:
		return appendString(b, x), t == data.TypeString
	case []byte:
		return appendBase64(b, x), t == data.TypeBytes
	}
	return b, false
}

// appendMap writes a map as a JSON object when its keys are strings (by
// schema, or all of them when schemaless), else as an array of [key,value]
// pairs.
func (c *JSONConverter) appendMap(b []byte, s *data.Schema, v any) ([]byte, error) {
	var ks, vs *data.Schema
	objectMode := true
	if s != nil {
		ks, vs = s.Keys, s.Values
		objectMode = ks != nil && ks.Type == data.TypeString
	} else {
		for k := range data.Entries(v) {
			if _, ok := k.(string); !ok {
				objectMode = false
				break
			}
		}
	}
	open, closing := byte('['), byte(']')
	if objectMode {
		open, closing = '{', '}'
	}
	b = append(b, open)
	first := true
	var err error
	for k, e := range data.Entries(v) {
		if !first {
			b = append(b, ',')
		}
		first = false
		if objectMode {
			ksv, ok := k.(string)
			if !ok {
				return nil, &data.DataError{Msg: fmt.Sprintf("invalid type for map key: %T", k)}
			}
			b = appendString(b, ksv)
			b = append(b, ':')
			if b, err = c.appendValue(b, vs, e); err != nil {
				return nil, err
			}
			continue
		}
		b = append(b, '[')
		if b, err = c.appendValue(b, ks, k); err != nil {
			return nil, err
		}
		b = append(b, ',')
		if b, err = c.appendValue(b, vs, e); err != nil {
			return nil, err
		}
		b = append(b, ']')
	}
	return append(b, closing), nil
}
