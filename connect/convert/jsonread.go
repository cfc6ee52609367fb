package convert

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/data"
)

// ToConnect parses b. Nil bytes (a tombstone) give a nil schema and value.
// With schemas.enable the message must be exactly an envelope with
// "schema" and "payload", as Kafka insists.
func (c *JSONConverter) ToConnect(_ string, b []byte) (*data.Schema, any, error) {
	if b == nil {
		return nil, nil, nil
	}
	if c.schemas {
		if s, v, ok := c.readKnown(b); ok {
			return s, v, nil
		}
	}
	p := &jsonParser{b: b, plain: !c.schemas}
	node, err := p.top()
	if err != nil {
		if !c.schemas && err == errEmpty {
			return nil, nil, nil
		}
		return nil, nil, &data.DataError{Msg: fmt.Sprintf("Converting byte[] to Kafka Connect data failed due to serialization error: %v", err)}
	}
	if !c.schemas {
		return nil, node, nil // plain: numbers already converted as schemaless does
	}
	env, ok := node.(map[string]any)
	_, hasSchema := env["schema"]
	_, hasPayload := env["payload"]
	if !ok || len(env) != 2 || !hasSchema || !hasPayload {
		return nil, nil, &data.DataError{Msg: `JsonConverter with schemas.enable requires "schema" and "payload" fields and may not contain additional fields. If you are trying to deserialize plain JSON data, set schemas.enable=false in your converter configuration.`}
	}
	s, err := c.cachedSchema(b, p.spans[0], env["schema"])
	if err != nil {
		return nil, nil, err
	}
	v, err := c.toConnect(s, env["payload"], true)
	if err != nil {
		return nil, nil, err
	}
	return s, v, nil
}

// readKnown reads an envelope whose schema text was read before, without
// building the schema's tree, and its payload straight into Connect
// values. It reports false, leaving the message to the full path that
// also words the errors, for anything else: a new schema, any error, any
// doubt.
func (c *JSONConverter) readKnown(b []byte) (*data.Schema, any, bool) {
	p := &jsonParser{b: b, skipEnvelope: true}
	node, err := p.top()
	env, ok := node.(map[string]any)
	if err != nil || !ok || len(env) != 2 {
		return nil, nil, false
	}
	_, hasSchema := env["schema"]
	pv, hasPayload := env["payload"]
	if !hasSchema || !hasPayload {
		return nil, nil, false
	}
	s, ok := c.knownSchema(b, p.spans[0])
	if !ok {
		return nil, nil, false
	}
	if _, ok := pv.(skipped); !ok {
		v, err := c.toConnect(s, pv, true)
		return s, v, err == nil
	}
	v, ok := c.decodeDirect(b, p.spans[1], s)
	return s, v, ok
}

// knownSchema returns the schema whose JSON text is b[span] if that text
// was parsed before (or is null), which makes the span trustworthy.
func (c *JSONConverter) knownSchema(b []byte, span [2]int) (*data.Schema, bool) {
	key := b[span[0]:span[1]]
	if string(key) == "null" {
		return nil, true
	}
	c.cacheMu.Lock()
	s, ok := c.read[string(key)]
	c.cacheMu.Unlock()
	return s, ok
}

// cachedSchema returns the schema whose JSON text is b[span], parsing
// node only when the text has not been seen.
func (c *JSONConverter) cachedSchema(b []byte, span [2]int, node any) (*data.Schema, error) {
	if node == nil {
		return nil, nil
	}
	key := b[span[0]:span[1]]
	if s, ok := c.knownSchema(b, span); ok {
		return s, nil
	}
	s, err := c.parseSchema(node)
	if err != nil {
		return nil, err
	}
	c.cacheMu.Lock()
	if c.read == nil || len(c.read) >= c.cacheSize {
		c.read = map[string]*data.Schema{}
	}
	if c.cacheSize > 0 {
		c.read[string(key)] = s
	}
	c.cacheMu.Unlock()
	return s, nil
}

// parseSchema is Kafka's asConnectSchema.
func (c *JSONConverter) parseSchema(node any) (*data.Schema, error) {
	if node == nil {
		return nil, nil
	}
	obj, ok := node.(map[string]any)
	if !ok {
		return nil, &data.DataError{Msg: "schema must be a JSON object"}
	}
	typ, ok := obj["type"].(string)
	if !ok {
		return nil, &data.DataError{Msg: "Schema must contain 'type' field"}
	}
	s := &data.Schema{}
	var err error
	switch typ {
	case "boolean", "int8", "int16", "int32", "int64", "bytes", "string":
		s.Type = data.Type(typ)
	case "float":
		s.Type = data.TypeFloat32
	case "double":
		s.Type = data.TypeFloat64
	case "array":
		s.Type = data.TypeArray
		if obj["items"] == nil {
			return nil, &data.DataError{Msg: "array schema did not specify the element type"}
		}
		if s.Items, err = c.parseSchema(obj["items"]); err != nil {
			return nil, err
		}
	case "map":
		s.Type = data.TypeMap
		for _, k := range []string{"keys", "values"} {
			if _, ok := obj[k]; !ok {
				return nil, &data.DataError{Msg: fmt.Sprintf("map schema did not specify the %s type", strings.TrimSuffix(k, "s"))}
			}
		}
		if s.Keys, err = c.parseSchema(obj["keys"]); err != nil {
			return nil, err
		}
		if s.Values, err = c.parseSchema(obj["values"]); err != nil {
			return nil, err
		}
	case "struct":
		s.Type = data.TypeStruct
		fields, ok := obj["fields"].([]any)
		if !ok {
			return nil, &data.DataError{Msg: `struct schema's "fields" argument is not an array`}
		}
		for i, f := range fields {
			fo, _ := f.(map[string]any)
			name, ok := fo["field"].(string)
			if !ok {
				return nil, &data.DataError{Msg: "struct schema's field name not specified properly"}
			}
			if s.Field(name) != nil {
				return nil, &data.DataError{Msg: fmt.Sprintf("cannot create field because of field name duplication %s", name)}
			}
			fs, err := c.parseSchema(fo)
			if err != nil {
				return nil, err
			}
			s.Fields = append(s.Fields, data.Field{Name: name, Index: i, Schema: fs})
		}
	default:
		return nil, &data.DataError{Msg: "unknown schema type: " + typ}
	}
	s.Optional, _ = obj["optional"].(bool)
	s.Name, _ = obj["name"].(string)
	if n, ok := obj["version"].(json.Number); ok && isIntegral(n) {
		v, _ := strconv.ParseInt(string(n), 10, 64)
		s.Version = int32(v)
	}
	s.Doc, _ = obj["doc"].(string)
	if params, ok := obj["parameters"].(map[string]any); ok {
		s.Parameters = make(map[string]string, len(params))
		for k, v := range params {
			sv, ok := v.(string)
			if !ok {
				return nil, &data.DataError{Msg: "schema parameters must have string values"}
			}
			s.Parameters[k] = sv
		}
	}
	if def, ok := obj["default"]; ok && def != nil {
		// The default is read with the schema built so far, as Kafka's
		// builder does; a null default means none.
		if s.Default, err = c.toConnect(s, def, false); err != nil {
			return nil, err
		}
	}
	return s, nil
}

func isIntegral(n json.Number) bool { return !strings.ContainsAny(string(n), ".eE") }

func invalid(format string, args ...any) error {
	return &data.DataError{Msg: fmt.Sprintf(format, args...)}
}

// toConnect is Kafka's convertToConnect. replace says whether a null may
// be replaced by the schema default (not while reading that default).
func (c *JSONConverter) toConnect(s *data.Schema, node any, replace bool) (any, error) {
	if s == nil {
		return schemaless(node)
	}
	if node == nil {
		switch {
		case replace && s.Default != nil && c.replaceDefaults:
			return s.Default, nil
		case s.Optional:
			return nil, nil
		}
		return nil, invalid("invalid null value for required %s field", strings.ToUpper(string(s.Type)))
	}
	switch s.Name {
	case data.DecimalName:
		return toDecimal(s, node)
	case data.DateName:
		n, ok := node.(json.Number)
		d, err := strconv.ParseInt(string(n), 10, 32)
		if !ok || err != nil {
			return nil, invalid("invalid type for Date, underlying representation should be integer but was %s", nodeType(node))
		}
		return data.DateFromDays(int32(d)), nil
	case data.TimeName:
		n, ok := node.(json.Number)
		ms, err := strconv.ParseInt(string(n), 10, 32)
		if !ok || err != nil {
			return nil, invalid("invalid type for Time, underlying representation should be integer but was %s", nodeType(node))
		}
		return data.TimeFromMillis(int32(ms))
	case data.TimestampName:
		n, ok := node.(json.Number)
		if !ok || !isIntegral(n) {
			return nil, invalid("invalid type for Timestamp, underlying representation should be integral but was %s", nodeType(node))
		}
		return data.TimestampFromMillis(javaLong(n)), nil
	}
	switch s.Type {
	case data.TypeBoolean:
		if v, ok := node.(bool); ok {
			return v, nil
		}
	case data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64:
		if n, ok := node.(json.Number); ok {
			l := javaLong(n)
			switch s.Type {
			case data.TypeInt8:
				return int8(l), nil
			case data.TypeInt16:
				return int16(l), nil
			case data.TypeInt32:
				return int32(l), nil
			}
			return l, nil
		}
	case data.TypeFloat32, data.TypeFloat64:
		if f, ok := jsonFloat(node, s.Type); ok {
			return f, nil
		}
	case data.TypeString:
		if v, ok := node.(string); ok {
			return v, nil
		}
	case data.TypeBytes:
		if v, ok := node.(string); ok {
			b, err := base64.StdEncoding.DecodeString(v)
			if err != nil {
				return nil, invalid("invalid bytes field: %v", err)
			}
			return b, nil
		}
	case data.TypeArray:
		if arr, ok := node.([]any); ok {
			out := make([]any, len(arr))
			for i, e := range arr {
				v, err := c.toConnect(s.Items, e, true)
				if err != nil {
					return nil, err
				}
				out[i] = v
			}
			return out, nil
		}
	case data.TypeMap:
		return c.toConnectMap(s, node)
	case data.TypeStruct:
		obj, ok := node.(map[string]any)
		if !ok {
			return nil, invalid("structs should be encoded as JSON objects, but found %s", nodeType(node))
		}
		st := data.NewStruct(s)
		for _, f := range s.Fields {
			v, err := c.toConnect(f.Schema, obj[f.Name], true)
			if err != nil {
				return nil, err
			}
			if err := st.Put(f.Name, v); err != nil {
				return nil, err
			}
		}
		return st, nil
	}
	return nil, invalid("invalid JSON %s for schema type %s", nodeType(node), strings.ToUpper(string(s.Type)))
}

func (c *JSONConverter) toConnectMap(s *data.Schema, node any) (any, error) {
	if s.Keys != nil && s.Keys.Type == data.TypeString {
		obj, ok := node.(map[string]any)
		if !ok {
			return nil, invalid("maps with string fields should be encoded as JSON objects, but found %s", nodeType(node))
		}
		out := make(map[string]any, len(obj))
		for k, e := range obj {
			v, err := c.toConnect(s.Values, e, true)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	arr, ok := node.([]any)
	if !ok {
		return nil, invalid("maps with non-string fields should be encoded as JSON array of tuples, but found %s", nodeType(node))
	}
	m := &data.Map{}
	for _, e := range arr {
		pair, ok := e.([]any)
		if !ok {
			return nil, invalid("found invalid map entry instead of array tuple: %s", nodeType(e))
		}
		if len(pair) != 2 {
			return nil, invalid("found invalid map entry, expected length 2 but found: %d", len(pair))
		}
		k, err := c.toConnect(s.Keys, pair[0], true)
		if err != nil {
			return nil, err
		}
		v, err := c.toConnect(s.Values, pair[1], true)
		if err != nil {
			return nil, err
		}
		m.Put(k, v)
	}
	return m, nil
}

// schemaless converts JSON without a schema: integers become int64, other
// numbers float64, objects map[string]any.
func schemaless(node any) (any, error) {
	switch x := node.(type) {
	case nil, bool, string:
		return x, nil
	case json.Number:
		if isIntegral(x) {
			return javaLong(x), nil
		}
		f, _ := strconv.ParseFloat(string(x), 64)
		return f, nil
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			v, err := schemaless(e)
			if err != nil {
				return nil, err
			}
			out[i] = v
		}
		return out, nil
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			v, err := schemaless(e)
			if err != nil {
				return nil, err
			}
			out[k] = v
		}
		return out, nil
	}
	return nil, invalid("unknown JSON value %T", node)
}

// javaLong is Jackson's longValue: the integral part, truncated toward
// zero, in 64-bit two's complement.
func javaLong(n json.Number) int64 {
	if v, err := strconv.ParseInt(string(n), 10, 64); err == nil {
		return v
	}
	r, ok := new(big.Rat).SetString(string(n))
	if !ok {
		return 0
	}
	i := new(big.Int).Quo(r.Num(), r.Denom())
	if i.IsInt64() {
		return i.Int64()
	}
	// Keep the low 64 bits as Java's narrowing does.
	m := new(big.Int).And(i, new(big.Int).SetUint64(math.MaxUint64))
	return int64(m.Uint64())
}

func jsonFloat(node any, t data.Type) (any, bool) {
	bits := 64
	if t == data.TypeFloat32 {
		bits = 32
	}
	var f float64
	switch x := node.(type) {
	case json.Number:
		var err error
		if f, err = strconv.ParseFloat(string(x), bits); err != nil && !isRangeErr(err) {
			return nil, false
		}
	case string: // what Jackson writes for NaN and the infinities
		switch x {
		case "NaN":
			f = math.NaN()
		case "Infinity":
			f = math.Inf(1)
		case "-Infinity":
			f = math.Inf(-1)
		default:
			return nil, false
		}
	default:
		return nil, false
	}
	if bits == 32 {
		return float32(f), true
	}
	return f, true
}

func isRangeErr(err error) bool {
	ne, ok := err.(*strconv.NumError)
	return ok && ne.Err == strconv.ErrRange
}

func toDecimal(s *data.Schema, node any) (any, error) {
	switch x := node.(type) {
	case json.Number:
		return data.ParseDecimal(string(x))
	case string:
		b, err := base64.StdEncoding.DecodeString(x)
		if err != nil {
			return nil, invalid("invalid bytes for Decimal field: %v", err)
		}
		return data.DecimalFromBytes(s, b)
	}
	return nil, invalid("invalid type for Decimal, underlying representation should be numeric or bytes but was %s", nodeType(node))
}

func nodeType(node any) string {
	switch node.(type) {
	case nil:
		return "NULL"
	case bool:
		return "BOOLEAN"
	case json.Number:
		return "NUMBER"
	case string:
		return "STRING"
	case []any:
		return "ARRAY"
	case map[string]any:
		return "OBJECT"
	}
	return "UNKNOWN"
}
