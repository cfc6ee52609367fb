package sdk

import (
	"fmt"
	"reflect"
	"testing"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// How a cut batch goes on the wire for each thing the host may ask:
// positions always per batch (newest per partition, in order of first
// appearance), per record only when the host wants them, packed only when
// the host takes both and every record allows it.
func TestEncodeBatchFollowsTheRequest(t *testing.T) {
	pending := func(recs ...*data.Record) []pendingRecord {
		out := make([]pendingRecord, len(recs))
		for i, r := range recs {
			out[i] = pendingRecord{rec: r, key: fmt.Sprintf(`{"file":%q}`, r.SourcePartition["file"])}
			if !connectv1.Packable(r) {
				pb, err := connectv1.SourceRecordBodyToProto(r)
				if err != nil {
					t.Fatal(err)
				}
				out[i].pb = pb
			}
		}
		return out
	}
	structured := rec("c", 7)
	structured.Value = map[string]any{"n": int64(1)}
	for _, c := range []struct {
		name          string
		w             wire
		batch         []pendingRecord
		packed, perRe bool
	}{
		{"per-record positions", wire{}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), false, true},
		{"batch positions, no packing", wire{positions: true}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), false, false},
		{"packing without batch positions", wire{packed: true}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), false, true},
		{"packed", wire{positions: true, packed: true}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), true, false},
		{"one structured record", wire{positions: true, packed: true}, pending(rec("a", 1), structured, rec("a", 2)), false, false},
	} {
		resp, bp, err := encodeBatch(c.batch, c.w)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		var ps []string
		for _, p := range resp.GetPositions() {
			ps = append(ps, string(p.GetPartitionJson())+"="+string(p.GetOffsetJson()))
		}
		second := `{"file":"b"}={"pos":1}`
		if c.batch[1].rec == structured {
			second = `{"file":"c"}={"pos":7}`
		}
		if want := `[{"file":"a"}={"pos":2} ` + second + `]`; fmt.Sprint(ps) != want {
			t.Errorf("%s: positions %v, want %s", c.name, ps, want)
		}
		if len(bp.pos) != 2 || bp.pos[`{"file":"a"}`].Offset["pos"] != int64(2) {
			t.Errorf("%s: commit positions %v", c.name, bp.pos)
		}
		if got := len(resp.GetPacked()) > 0; got != c.packed || got == (len(resp.GetRecords()) == 3) {
			t.Errorf("%s: packed %v with %d messages", c.name, got, len(resp.GetRecords()))
		}
		for i, r := range resp.GetRecords() {
			if (r.GetPosition() != nil) != c.perRe {
				t.Errorf("%s: record %d position %v", c.name, i, r.GetPosition())
			}
		}
	}

	// A host reading version 2 gets a schemaless map packed as a tree,
	// and the values back as they were.
	batch := []pendingRecord{{rec: rec("a", 1), key: `{"file":"a"}`}, {rec: structured, key: `{"file":"c"}`}}
	resp, _, err := encodeBatch(batch, wire{positions: true, packed: true, trees: true})
	if err != nil || len(resp.GetPacked()) == 0 || len(resp.GetRecords()) > 0 {
		t.Fatalf("trees: packed %d bytes, %d messages, %v", len(resp.GetPacked()), len(resp.GetRecords()), err)
	}
	recs, err := connectv1.Unpack(resp.GetPacked())
	if err != nil || len(recs) != 2 || !reflect.DeepEqual(recs[1].Value, structured.Value) {
		t.Fatalf("trees: unpacked %v, %v", recs, err)
	}
}

func TestSameFlatMap(t *testing.T) {
	for _, c := range []struct {
		a, b map[string]any
		want bool
	}{
		{map[string]any{"f": "x", "n": int64(1), "b": true, "z": nil}, map[string]any{"f": "x", "n": int64(1), "b": true, "z": nil}, true},
		{map[string]any{"f": "x"}, map[string]any{"f": "y"}, false},
		{map[string]any{"n": int64(1)}, map[string]any{"n": 1}, false}, // encodes the same, but safe to say no
		{map[string]any{"f": "x"}, map[string]any{"g": "x"}, false},
		{map[string]any{"f": "x"}, map[string]any{"f": "x", "g": "y"}, false},
		{map[string]any{"z": nil}, map[string]any{"z": "x"}, false},
		{map[string]any{"l": []any{"x"}}, map[string]any{"l": []any{"x"}}, false}, // nested: always encoded
	} {
		if got := sameFlatMap(c.a, c.b); got != c.want {
			t.Errorf("sameFlatMap(%v, %v) = %v", c.a, c.b, got)
		}
	}
}
