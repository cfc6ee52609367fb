package connectv1

import (
	"encoding/binary"
	"maps"
	"math"
	"slices"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// Schemas (packed version 3): keys, values and headers with a Connect
// schema (a Debezium envelope, a JDBC row) in the packed buffer instead
// of a Schema message and a Value message per node per record. Each
// distinct schema travels once per batch in a table after the version;
// a record's data names its schema by index and its value follows in the
// schema's order, structs positionally with no field names:
//
//	packed := uvarint(3) uvarint(n) schema{n} uvarint(total records) run*
//	data   := kindSchema uvarint(schema index) value     (kind 0x20)
//	schema := byte(type) byte(flags) [str(name)] [zigzag(version)] [str(doc)]
//	          [uvarint(n) (str(key) str(value)){n}]      parameters, keys sorted
//	          struct: uvarint(n) (str(field name) schema){n}
//	          array: schema(items)   map: schema(keys) schema(values)
//	          [value(default)]                           not for a struct
//	  flags: 1 optional, 2 name, 4 version, 8 doc, 16 parameters, 32 default
//	value  := byte(0) (null) | byte(1) payload
//	payload by schema type (logical types in Kafka's physical form):
//	  int8..int64 zigzag varint; float32, float64 IEEE 754 bits little endian;
//	  boolean byte(0 or 1); string str; bytes uvarint(len) bytes;
//	  array uvarint(n) value{n}; map uvarint(n) (value(key) value(value)){n};
//	  struct a bitmap of the non-null fields, ceil(fields/8) bytes, bit i%8
//	         of byte i/8 for field i, then the payload of each non-null field
//
// It decodes to what the same record decodes to sent as messages: the
// schema as SchemaFromProto gives it (shared by the batch's records that
// name it), values as ValueFromProto gives them. A record whose value
// does not fit its schema the way messages would carry it (an int64
// under an INT32 schema, a struct with another schema, an array schema
// without items) is not packed: the batch travels as messages, which
// keep whatever they keep.

// PackedSchemasVersion is the packed format with schemas; a side sends it
// only to a peer that said it reads it.
const PackedSchemasVersion = 3

// PackedSharedHeadersVersion adds record flag 8: the record has the
// headers of the record before it, which are not written again.
const PackedSharedHeadersVersion = 4

// PackedNewestVersion is the newest packed format this package reads and
// writes: what a host puts in PollRequest.packed_version and a sink task
// in StartResponse.packed_version.
const PackedNewestVersion = PackedSharedHeadersVersion

// NegotiatePacked returns the packed version to write to a peer that
// reads up to peer: 0 (a peer from before versions) is 1, and never newer
// than this package writes.
func NegotiatePacked(peer uint32) uint32 {
	return max(1, min(peer, PackedNewestVersion))
}

const kindSchema = 0x20

// Schema flags.
const (
	schemaOptional = 1 << iota
	schemaName
	schemaVersion
	schemaDoc
	schemaParams
	schemaDefault
	schemaKnownFlags = 1<<iota - 1
)

// Schema types, in connect.proto's order.
var schemaTypes = [...]data.Type{data.TypeInt8, data.TypeInt16, data.TypeInt32, data.TypeInt64,
	data.TypeFloat32, data.TypeFloat64, data.TypeBoolean, data.TypeString, data.TypeBytes,
	data.TypeArray, data.TypeMap, data.TypeStruct}

func schemaTypeCode(t data.Type) (byte, bool) {
	i := slices.Index(schemaTypes[:], t)
	return byte(i), i >= 0
}

// maxTableScan bounds how many table entries a schema new by pointer is
// compared with structurally, so a connector that builds a new but equal
// schema per record still shares one entry without making a large batch
// of distinct schemas quadratic.
const maxTableScan = 16

// schemaTable is a batch's distinct schemas while it is packed.
type schemaTable struct {
	index map[*data.Schema]int // by pointer, including equal aliases
	list  []*data.Schema
	last  *data.Schema // one-entry cache: most batches have one or two schemas
	lastI int
}

// add returns s's index, adding it if it is new.
func (t *schemaTable) add(s *data.Schema) int {
	if s == t.last {
		return t.lastI
	}
	i, ok := t.index[s]
	if !ok {
		i = -1
		if len(t.list) <= maxTableScan {
			for j, o := range t.list {
				if o.Equal(s) {
					i = j
					break
				}
			}
		}
		if i < 0 {
			i = len(t.list)
			t.list = append(t.list, s)
		}
		if t.index == nil {
			t.index = make(map[*data.Schema]int)
		}
		t.index[s] = i
	}
	t.last, t.lastI = s, i
	return i
}

// needsTable reports whether a key, value or header with schema s and
// value v travels through the schema table in version 3 (not as the
// plain kinds of version 1).
func needsTable(s *data.Schema, v any) bool {
	if s == nil {
		return false
	}
	_, plain := plainKind(s, v)
	return !plain
}

// collect fills t with the schemas of recs that need the table.
func (t *schemaTable) collect(recs []*data.Record) {
	for _, r := range recs {
		if needsTable(r.KeySchema, r.Key) {
			t.add(r.KeySchema)
		}
		if needsTable(r.ValueSchema, r.Value) {
			t.add(r.ValueSchema)
		}
		for _, h := range r.Headers {
			if needsTable(h.Schema, h.Value) {
				t.add(h.Schema)
			}
		}
	}
}

// appendTo appends the table, or reports false for a schema the
// format cannot carry as messages would decode it.
func (t *schemaTable) appendTo(b []byte) ([]byte, bool) {
	b = binary.AppendUvarint(b, uint64(len(t.list)))
	for _, s := range t.list {
		var ok bool
		if b, ok = appendSchema(b, s, 0); !ok {
			return b, false
		}
	}
	return b, true
}

func appendSchema(b []byte, s *data.Schema, depth int) ([]byte, bool) {
	if s == nil || depth > maxTreeDepth {
		return b, false
	}
	code, ok := schemaTypeCode(s.Type)
	if !ok {
		return b, false
	}
	var flags byte
	if s.Optional {
		flags |= schemaOptional
	}
	if s.Name != "" {
		flags |= schemaName
	}
	if s.Version != 0 {
		flags |= schemaVersion
	}
	if s.Doc != "" {
		flags |= schemaDoc
	}
	if len(s.Parameters) > 0 {
		flags |= schemaParams
	}
	if s.Default != nil {
		flags |= schemaDefault
	}
	b = append(b, code, flags)
	if s.Name != "" {
		b = appendStr(b, s.Name)
	}
	if s.Version != 0 {
		b = binary.AppendVarint(b, int64(s.Version))
	}
	if s.Doc != "" {
		b = appendStr(b, s.Doc)
	}
	if len(s.Parameters) > 0 {
		b = binary.AppendUvarint(b, uint64(len(s.Parameters)))
		for _, k := range slices.Sorted(maps.Keys(s.Parameters)) {
			b = appendStr(appendStr(b, k), s.Parameters[k])
		}
	}
	switch s.Type {
	case data.TypeStruct:
		// Messages decode fields by position and name them by Index = i;
		// a schema whose indexes say otherwise, or with a name twice
		// (which Put by name would fold into one field), goes as messages.
		b = binary.AppendUvarint(b, uint64(len(s.Fields)))
		for i, f := range s.Fields {
			if f.Index != i || (len(s.Fields) <= 32 && slices.IndexFunc(s.Fields[:i], func(g data.Field) bool { return g.Name == f.Name }) >= 0) {
				return b, false
			}
			if b, ok = appendSchema(appendStr(b, f.Name), f.Schema, depth+1); !ok {
				return b, false
			}
		}
		if len(s.Fields) > 32 && !uniqueNames(s.Fields) {
			return b, false
		}
	case data.TypeArray:
		if b, ok = appendSchema(b, s.Items, depth+1); !ok {
			return b, false
		}
	case data.TypeMap:
		if b, ok = appendSchema(b, s.Keys, depth+1); !ok {
			return b, false
		}
		if b, ok = appendSchema(b, s.Values, depth+1); !ok {
			return b, false
		}
	default:
		if s.Items != nil || s.Keys != nil || s.Values != nil || len(s.Fields) > 0 {
			return b, false // messages would carry these; keep them exact
		}
	}
	if s.Default != nil {
		if s.Type == data.TypeStruct {
			// A struct's default is a struct of that very schema: decoded,
			// a cycle that Schema.Equal never finishes comparing.
			return b, false
		}
		return appendValue(b, s, s.Default, depth)
	}
	return b, true
}

func uniqueNames(fs []data.Field) bool {
	seen := make(map[string]bool, len(fs))
	for _, f := range fs {
		if seen[f.Name] {
			return false
		}
		seen[f.Name] = true
	}
	return true
}

// appendValue appends a value: null, or present and its payload.
func appendValue(b []byte, s *data.Schema, v any, depth int) ([]byte, bool) {
	if v == nil {
		return append(b, 0), true
	}
	return appendPayload(append(b, 1), s, v, depth)
}

// appendPayload appends v under s, or reports false when v's Go type is
// not the one s calls for (messages would carry the mismatch as it is).
func appendPayload(b []byte, s *data.Schema, v any, depth int) ([]byte, bool) {
	if depth > maxTreeDepth {
		return b, false
	}
	switch s.Name {
	case data.DecimalName:
		d, ok := v.(data.Decimal)
		if !ok || s.Type != data.TypeBytes {
			return b, false
		}
		u, err := data.DecimalToBytes(s, d)
		if err != nil {
			return b, false
		}
		return append(binary.AppendUvarint(b, uint64(len(u))), u...), true
	case data.DateName, data.TimeName, data.TimestampName:
		t, ok := v.(time.Time)
		if !ok {
			return b, false
		}
		switch {
		case s.Name == data.TimestampName && s.Type == data.TypeInt64:
			return binary.AppendVarint(b, data.TimestampToMillis(t)), true
		case s.Name == data.DateName && s.Type == data.TypeInt32:
			d, err := data.DateToDays(t)
			return binary.AppendVarint(b, int64(d)), err == nil
		case s.Name == data.TimeName && s.Type == data.TypeInt32:
			ms, err := data.TimeToMillis(t)
			return binary.AppendVarint(b, int64(ms)), err == nil
		}
		return b, false
	}
	switch s.Type {
	case data.TypeInt8:
		x, ok := v.(int8)
		return binary.AppendVarint(b, int64(x)), ok
	case data.TypeInt16:
		x, ok := v.(int16)
		return binary.AppendVarint(b, int64(x)), ok
	case data.TypeInt32:
		x, ok := v.(int32)
		return binary.AppendVarint(b, int64(x)), ok
	case data.TypeInt64:
		x, ok := v.(int64)
		return binary.AppendVarint(b, x), ok
	case data.TypeFloat32:
		x, ok := v.(float32)
		return binary.LittleEndian.AppendUint32(b, math.Float32bits(x)), ok
	case data.TypeFloat64:
		x, ok := v.(float64)
		return binary.LittleEndian.AppendUint64(b, math.Float64bits(x)), ok
	case data.TypeBoolean:
		x, ok := v.(bool)
		if x {
			return append(b, 1), ok
		}
		return append(b, 0), ok
	case data.TypeString:
		x, ok := v.(string)
		return appendStr(b, x), ok
	case data.TypeBytes:
		x, ok := v.([]byte)
		return append(binary.AppendUvarint(b, uint64(len(x))), x...), ok
	case data.TypeArray:
		x, ok := v.([]any)
		if !ok {
			return b, false
		}
		b = binary.AppendUvarint(b, uint64(len(x)))
		for _, e := range x {
			if b, ok = appendValue(b, s.Items, e, depth+1); !ok {
				return b, false
			}
		}
		return b, true
	case data.TypeMap:
		return appendMap(b, s, v, depth)
	case data.TypeStruct:
		return appendStruct(b, s, v, depth)
	}
	return b, false
}

func appendMap(b []byte, s *data.Schema, v any, depth int) ([]byte, bool) {
	// Messages decode a map under a plain STRING key schema to
	// map[string]any, where a null key is an error: keep that as messages.
	stringKeys := s.Keys.Type == data.TypeString && s.Keys.Name == ""
	var ok bool
	switch x := v.(type) {
	case map[string]any:
		b = binary.AppendUvarint(b, uint64(len(x)))
		for k, e := range x {
			if b, ok = appendPayload(append(b, 1), s.Keys, k, depth+1); !ok {
				return b, false
			}
			if b, ok = appendValue(b, s.Values, e, depth+1); !ok {
				return b, false
			}
		}
	case *data.Map:
		if x == nil {
			return binary.AppendUvarint(b, 0), true
		}
		b = binary.AppendUvarint(b, uint64(len(x.Entries)))
		for _, e := range x.Entries {
			if e.Key == nil && stringKeys {
				return b, false
			}
			if b, ok = appendValue(b, s.Keys, e.Key, depth+1); !ok {
				return b, false
			}
			if b, ok = appendValue(b, s.Values, e.Value, depth+1); !ok {
				return b, false
			}
		}
	default:
		return b, false
	}
	return b, true
}

func appendStruct(b []byte, s *data.Schema, v any, depth int) ([]byte, bool) {
	st, ok := v.(*data.Struct)
	if !ok || st == nil {
		return b, false
	}
	// Messages encode the fields under the struct's own schema and decode
	// them under s; packing writes them under s, so the two must agree.
	if ss := st.Schema(); ss != s && !ss.Equal(s) {
		return b, false
	}
	vals := structValues(st)
	if len(vals) != len(s.Fields) {
		return b, false
	}
	at := len(b)
	for range (len(vals) + 7) / 8 {
		b = append(b, 0)
	}
	for i, f := range s.Fields {
		if vals[i] == nil {
			continue
		}
		b[at+i/8] |= 1 << (i % 8)
		if b, ok = appendPayload(b, f.Schema, vals[i], depth+1); !ok {
			return b, false
		}
	}
	return b, true
}
