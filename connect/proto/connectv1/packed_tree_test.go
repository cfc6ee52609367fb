package connectv1_test

import (
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// randomTree makes a schemaless value of every kind a tree carries.
func randomTree(r *rand.Rand, depth int) any {
	n := 12
	if depth > 3 {
		n = 9 // leaves only
	}
	switch r.IntN(n) {
	case 0:
		return nil
	case 1:
		return r.IntN(2) == 0
	case 2:
		return int8(r.IntN(256) - 128)
	case 3:
		return int16(r.IntN(1<<16) - 1<<15)
	case 4:
		return int32(r.Uint32())
	case 5:
		return int64(r.Uint64())
	case 6:
		return float32(r.NormFloat64())
	case 7:
		return r.NormFloat64() * 1e6
	case 8:
		if r.IntN(2) == 0 {
			return fmt.Sprintf("text-%d", r.IntN(1000))
		}
		return []byte{byte(r.IntN(256)), 1, 2}
	case 9:
		a := make([]any, r.IntN(4))
		for i := range a {
			a[i] = randomTree(r, depth+1)
		}
		return a
	case 10:
		m := map[string]any{}
		for i := range r.IntN(5) {
			m[fmt.Sprintf("k%d", i)] = randomTree(r, depth+1)
		}
		return m
	default:
		dm := &data.Map{}
		for i := range r.IntN(4) {
			dm.Entries = append(dm.Entries, data.MapEntry{Key: int32(i), Value: randomTree(r, depth+1)})
		}
		return dm
	}
}

func treeRecords(r *rand.Rand, n int) []*data.Record {
	recs := make([]*data.Record, n)
	for i := range recs {
		recs[i] = &data.Record{Topic: "t", Partition: int32(i % 2), KafkaOffset: int64(i), Timestamp: int64(i),
			Key: randomTree(r, 0), Value: map[string]any{"n": int64(i), "v": randomTree(r, 0)},
			Headers: []data.Header{{Key: "h", Value: randomTree(r, 0)}}}
	}
	return recs
}

// viaMessages is what the same value becomes sent as protobuf messages.
func viaMessages(t *testing.T, v any) any {
	t.Helper()
	p, err := connectv1.ValueToProto(nil, v)
	if err != nil {
		t.Fatalf("ValueToProto(%#v): %v", v, err)
	}
	back, err := connectv1.ValueFromProto(nil, p)
	if err != nil {
		t.Fatal(err)
	}
	return back
}

// A schemaless structured key, value or header packed as a tree decodes to
// exactly what the same value decodes to sent as messages: the host cannot
// tell which way a batch came.
func TestPackedTreesDecodeAsMessagesDo(t *testing.T) {
	seed := uint64(20261205)
	r := rand.New(rand.NewPCG(seed, 7))
	for round := range 200 {
		recs := treeRecords(r, 5)
		b, err := connectv1.AppendPackedTrees(nil, recs)
		if err != nil {
			t.Fatalf("round %d (seed %d): %v", round, seed, err)
		}
		got, err := connectv1.Unpack(b)
		if err != nil {
			t.Fatalf("round %d: %v", round, err)
		}
		for i, rec := range recs {
			want := []any{viaMessages(t, rec.Key), viaMessages(t, rec.Value), viaMessages(t, rec.Headers[0].Value)}
			have := []any{got[i].Key, got[i].Value, got[i].Headers[0].Value}
			if !reflect.DeepEqual(withoutNaNValue(want), withoutNaNValue(have)) {
				t.Fatalf("round %d record %d:\npacked   %#v\nmessages %#v", round, i, have, want)
			}
			if got[i].KeySchema != nil || got[i].ValueSchema != nil || got[i].Headers[0].Schema != nil {
				t.Fatalf("round %d record %d: a tree came back with a schema", round, i)
			}
		}
	}
}

func TestPackedTreesOnlyWhereTheyMayGo(t *testing.T) {
	tree := &data.Record{Topic: "t", Value: map[string]any{"a": int64(1)}}
	if connectv1.Packable(tree) || !connectv1.PackableTrees(tree) {
		t.Fatal("a schemaless map is packable only in the trees version")
	}
	if _, err := connectv1.AppendPacked(nil, []*data.Record{tree}); !errors.Is(err, connectv1.ErrNotPackable) {
		t.Fatalf("version 1 packed a tree: %v", err)
	}
	// A struct needs its schema, wherever it sits; a Go int has no Connect
	// name; nesting past the bound travels as messages.
	st := data.NewStruct(data.StructOf("s", data.F("f", data.StringSchema)))
	deep := any(int64(1))
	for range 200 {
		deep = []any{deep}
	}
	for name, v := range map[string]any{
		"struct in a map":   map[string]any{"s": st},
		"int in an array":   []any{1},
		"nested too deep":   deep,
		"struct, no schema": st,
	} {
		rec := &data.Record{Topic: "t", Value: v}
		if _, err := connectv1.AppendPackedTrees(nil, []*data.Record{rec}); !errors.Is(err, connectv1.ErrNotPackable) {
			t.Errorf("%s: packed (%v)", name, err)
		}
	}
	// Under a schema the value keeps its message form: trees are schemaless.
	withSchema := &data.Record{Topic: "t", ValueSchema: data.Int64Schema, Value: int64(5)}
	if connectv1.PackableTrees(withSchema) {
		t.Error("an INT64 value under its schema was packable as a tree")
	}
}

func TestUnpackRefusesDeepTrees(t *testing.T) {
	b := []byte{2, 1, 1, 't', 0, 0, 1, 0, 0, 0, 0, 3}
	for range 150 {
		b = append(b, 11, 1) // an array of one element, nested
	}
	b = append(b, 0)
	if _, err := connectv1.Unpack(b); err == nil || !strings.Contains(err.Error(), "too deep") {
		t.Fatalf("150 nested arrays: %v, want a refusal", err)
	}
}

// withoutNaN copies records with NaN floats replaced by a marker, since NaN
// is unequal to itself under reflect.DeepEqual.
func withoutNaN(recs []*data.Record) []*data.Record {
	out := make([]*data.Record, len(recs))
	for i, r := range recs {
		c := *r
		c.Key, c.Value = withoutNaNValue(r.Key), withoutNaNValue(r.Value)
		c.KeySchema, c.ValueSchema = withoutNaNSchema(r.KeySchema), withoutNaNSchema(r.ValueSchema)
		c.Headers = make([]data.Header, len(r.Headers))
		for j, h := range r.Headers {
			c.Headers[j] = h
			c.Headers[j].Value = withoutNaNValue(h.Value)
			c.Headers[j].Schema = withoutNaNSchema(h.Schema)
		}
		out[i] = &c
	}
	return out
}

func withoutNaNValue(v any) any {
	switch x := v.(type) {
	case float32:
		if math.IsNaN(float64(x)) {
			return "NaN32"
		}
	case float64:
		if math.IsNaN(x) {
			return "NaN64"
		}
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = withoutNaNValue(e)
		}
		return out
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = withoutNaNValue(e)
		}
		return out
	case *data.Map:
		out := &data.Map{Entries: make([]data.MapEntry, len(x.Entries))}
		for i, e := range x.Entries {
			out.Entries[i] = data.MapEntry{Key: withoutNaNValue(e.Key), Value: withoutNaNValue(e.Value)}
		}
		return out
	case *data.Struct:
		s := x.Schema()
		out := []any{"struct", withoutNaNSchema(s)}
		for _, f := range s.Fields {
			out = append(out, withoutNaNValue(x.GetWithoutDefault(f.Name)))
		}
		return out
	}
	return v
}

// withoutNaNSchema is a copy of s with NaN defaults replaced, nested
// schemas too.
func withoutNaNSchema(s *data.Schema) *data.Schema {
	if s == nil {
		return nil
	}
	c := s.Copy()
	c.Default = withoutNaNValue(s.Default)
	for i := range c.Fields {
		c.Fields[i].Schema = withoutNaNSchema(c.Fields[i].Schema)
	}
	c.Items, c.Keys, c.Values = withoutNaNSchema(s.Items), withoutNaNSchema(s.Keys), withoutNaNSchema(s.Values)
	return c
}
