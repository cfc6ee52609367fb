package sdk

import (
	"context"
	"encoding/binary"
	"fmt"
	"reflect"
	"testing"
	"time"

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
		{"packing without batch positions", wire{packed: 1}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), false, true},
		{"packed", wire{positions: true, packed: 1}, pending(rec("a", 1), rec("b", 1), rec("a", 2)), true, false},
		{"one structured record", wire{positions: true, packed: 1}, pending(rec("a", 1), structured, rec("a", 2)), false, false},
	} {
		resp, bp, err := encodeBatch(c.batch, c.w, nil)
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
	resp, _, err := encodeBatch(batch, wire{positions: true, packed: 2}, nil)
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

// The packed version follows the host's PollRequest: a host that reads
// version 2 (or older, or none) never gets version 3, and a struct with
// a schema then travels as messages; a host reading 3 gets 3, one reading
// 4 or newer gets 4, with the struct back as it was.
func TestPackedVersionFollowsTheHost(t *testing.T) {
	row := data.StructOf("row", data.F("id", data.Int64Schema), data.F("name", data.OptionalStringSchema))
	withSchema := rec("a", 2)
	withSchema.ValueSchema, withSchema.Value = row, data.NewStruct(row).MustPut("id", int64(7)).MustPut("name", "x")
	for _, c := range []struct {
		accept  bool
		version uint32
		want    uint64 // packed version sent, 0 for messages
	}{
		{false, 3, 0}, {true, 0, 0}, {true, 1, 0}, {true, 2, 0}, {true, 3, 3}, {true, 4, 4}, {true, 9, 4},
	} {
		w := wire{positions: true}
		if c.accept {
			w.packed = connectv1.NegotiatePacked(c.version)
		}
		batch := []pendingRecord{{rec: rec("a", 1), key: `{"file":"a"}`}, {rec: withSchema, key: `{"file":"a"}`}}
		if !connectv1.PackableVersion(withSchema, max(w.packed, 1)) {
			pb, err := connectv1.SourceRecordBodyToProto(withSchema)
			if err != nil {
				t.Fatal(err)
			}
			batch[1].pb = pb
		}
		resp, _, err := encodeBatch(batch, w, nil)
		if err != nil {
			t.Fatal(err)
		}
		got := uint64(0)
		if p := resp.GetPacked(); len(p) > 0 {
			got, _ = binary.Uvarint(p)
		}
		if got != c.want || (got > 0) == (len(resp.GetRecords()) == 2) {
			t.Errorf("accept %v version %d: packed version %d with %d messages, want %d", c.accept, c.version, got, len(resp.GetRecords()), c.want)
		}
		if got == 0 {
			continue
		}
		recs, err := connectv1.Unpack(resp.GetPacked())
		if err != nil || len(recs) != 2 || !recs[1].ValueSchema.Equal(row) || !data.ValueEqual(recs[1].Value, withSchema.Value) {
			t.Fatalf("version %d: unpacked %v, %v", got, recs, err)
		}
	}
}

// Positions are set once per run of a partition's records: still the
// newest per partition, in order of first appearance, when runs of one
// partition come back after another's (a file tail alternating files).
func TestEncodeBatchPositionsOfRuns(t *testing.T) {
	keys := map[string]string{"a": `{"file":"a"}`, "b": `{"file":"b"}`}
	var batch []pendingRecord
	for i, f := range []string{"a", "a", "b", "b", "b", "a", "a"} {
		batch = append(batch, pendingRecord{rec: rec(f, int64(i)), key: keys[f]})
	}
	batch = append(batch, pendingRecord{rec: &data.Record{Topic: "t", Value: []byte("no partition")}})
	resp, bp, err := encodeBatch(batch, wire{positions: true, packed: 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var ps []string
	for _, p := range resp.GetPositions() {
		ps = append(ps, string(p.GetPartitionJson())+"="+string(p.GetOffsetJson()))
	}
	if want := `[{"file":"a"}={"pos":6} {"file":"b"}={"pos":4}]`; fmt.Sprint(ps) != want {
		t.Errorf("positions %v, want %s", ps, want)
	}
	if len(bp.pos) != 2 || bp.pos[keys["a"]].Offset["pos"] != int64(6) || bp.pos[keys["b"]].Offset["pos"] != int64(4) {
		t.Errorf("commit positions %v", bp.pos)
	}
}

// One map object is the same partition whatever it holds, nested values
// included; equal content in two maps still compares by content.
func TestSameFlatMapSharedMap(t *testing.T) {
	nested := map[string]any{"l": []any{"x"}}
	if !sameFlatMap(nested, nested) {
		t.Error("a map is not the same as itself")
	}
	if sameFlatMap(nested, map[string]any{"l": []any{"x"}}) {
		t.Error("two nested maps compared equal without being encoded")
	}
	if sameFlatMap(map[string]any{}, nil) != true || sameFlatMap(map[string]any{"f": "x"}, map[string]any{"f": "y"}) {
		t.Error("empty or different maps")
	}
}

// offsetsAtTask leaves its records' offsets nil and gives them on demand,
// counting the asks.
type offsetsAtTask struct {
	linesTask
	asked []int
	nilAt int // answers nil for this index (-1: never)
}

func (t *offsetsAtTask) SourceOffsetAt(i int) map[string]any {
	t.asked = append(t.asked, i)
	if i == t.nilAt {
		return nil
	}
	if i == 99 {
		panic("a bug in the task")
	}
	return map[string]any{"pos": int64(i * 10)}
}

// A SourceOffsetsAt task is asked for the offsets of the records whose
// positions go out: one per run of a partition for a host reading
// positions per batch, every record for one reading them per record. A
// nil answer (or a panic) fails the Poll instead of sending no offset.
func TestSourceOffsetsAt(t *testing.T) {
	a, b := map[string]any{"file": "a"}, map[string]any{"file": "b"}
	var recs []*data.Record
	for _, p := range []map[string]any{a, a, a, b, b, a} {
		recs = append(recs, &data.Record{Topic: "t", Partition: -1, Value: []byte("x"), SourcePartition: p})
	}
	limits := PollLimits{MaxRecords: 100, MaxBytes: 1 << 20, MaxWait: time.Second}
	for _, c := range []struct {
		w     wire
		asked string
	}{
		{wire{positions: true, packed: connectv1.PackedNewestVersion}, "[2 4 5]"},
		{wire{}, "[2 4 5 0 1 2 3 4 5]"},
	} {
		task := &offsetsAtTask{linesTask: linesTask{recs: recs}, nilAt: -1}
		st := &sourceTask{task: task}
		if err := st.fill(context.Background(), limits, c.w); err != nil {
			t.Fatal(err)
		}
		resp, err := st.takeBatch(limits, c.w)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(task.asked) != c.asked {
			t.Errorf("%+v: asked for %v, want %s", c.w, task.asked, c.asked)
		}
		var ps []string
		for _, p := range resp.GetPositions() {
			ps = append(ps, string(p.GetPartitionJson())+"="+string(p.GetOffsetJson()))
		}
		if want := `[{"file":"a"}={"pos":50} {"file":"b"}={"pos":40}]`; fmt.Sprint(ps) != want {
			t.Errorf("%+v: positions %v, want %s", c.w, ps, want)
		}
		if pos := st.batches[0].pos[`{"file":"a"}`]; pos.Offset["pos"] != int64(50) {
			t.Errorf("%+v: commit position %v", c.w, pos)
		}
		for i, r := range resp.GetRecords() {
			if want := fmt.Sprintf(`{"pos":%d}`, i*10); string(r.GetPosition().GetOffsetJson()) != want {
				t.Errorf("%+v: record %d offset %s, want %s", c.w, i, r.GetPosition().GetOffsetJson(), want)
			}
		}
	}
	for _, nilAt := range []int{4, 99} {
		task := &offsetsAtTask{linesTask: linesTask{recs: recs}, nilAt: nilAt}
		if nilAt == 99 {
			task.recs = append(append([]*data.Record{}, recs...), make([]*data.Record, 94)...)
			for i := 6; i < 100; i++ {
				task.recs[i] = &data.Record{Topic: "t", Partition: -1, Value: []byte("x"), SourcePartition: b}
			}
		}
		st := &sourceTask{task: task}
		w := wire{positions: true, packed: connectv1.PackedNewestVersion}
		if err := st.fill(context.Background(), limits, w); err != nil {
			t.Fatal(err)
		}
		if _, err := st.takeBatch(limits, w); err == nil {
			t.Errorf("no offset for record %d, but the batch went out", nilAt)
		}
	}
}
