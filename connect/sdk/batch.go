package sdk

import (
	"fmt"
	"unsafe"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// encodeBatch encodes one cut batch the way the host asked (w), and
// returns the newest position per source partition for Commit. The
// positions always travel in PollResponse.positions; per record too unless
// the host reads them per batch; the records are packed when the host
// takes that and every record allows it.
//
// at, if not nil, gives the offsets of records that carry none
// (SourceOffsetsAt).
func encodeBatch(batch []pendingRecord, w wire, at func(int) map[string]any) (*connectv1.PollResponse, batchPositions, error) {
	offsetOf := func(pr pendingRecord) (map[string]any, error) {
		if pr.rec.SourceOffset != nil || at == nil {
			return pr.rec.SourceOffset, nil
		}
		o := safeOffset(at, pr.idx)
		if o == nil {
			return nil, fmt.Errorf("record %d of the poll: the task gave no source offset", pr.idx)
		}
		return o, nil
	}
	resp := &connectv1.PollResponse{}
	bp := batchPositions{pos: make(map[string]Position, 1)}
	var order []string
	packable := w.positions && w.packed > 0
	for i, pr := range batch {
		if pr.pb != nil {
			packable = false
		}
		// Only the last record of a run of one partition's records sets
		// its position (the later one wins anyway): a hash per run, not
		// per record. Keys of one run share their bytes, so comparing
		// them is a pointer check.
		if pr.key == "" || (i+1 < len(batch) && batch[i+1].key == pr.key) {
			continue
		}
		if _, ok := bp.pos[pr.key]; !ok {
			order = append(order, pr.key)
		}
		o, err := offsetOf(pr)
		if err != nil {
			return nil, bp, err
		}
		bp.pos[pr.key] = Position{Partition: pr.rec.SourcePartition, Offset: o}
	}
	resp.Positions = make([]*connectv1.SourceOffset, len(order))
	for i, k := range order {
		oj, err := connectv1.OffsetToJSON(bp.pos[k].Offset)
		if err != nil {
			return nil, bp, fmt.Errorf("source offset of partition %s: %w", k, err)
		}
		resp.Positions[i] = &connectv1.SourceOffset{PartitionJson: []byte(k), OffsetJson: oj}
	}
	if packable {
		recs := make([]*data.Record, len(batch))
		payload := 0
		for i, pr := range batch {
			recs[i] = pr.rec
			payload += int(pr.size) // PackedSize, from fill
		}
		// A record that does not fit its schema (ErrNotPackable) sends
		// the batch as messages, which carry it as they always did.
		b, err := connectv1.AppendPackedVersionSized(nil, recs, w.packed, payload)
		if err == nil {
			resp.Packed = b
			return resp, bp, nil
		}
	}
	resp.Records = make([]*connectv1.SourceRecord, len(batch))
	for i, pr := range batch {
		pb := pr.pb
		if pb == nil {
			var err error
			if pb, err = connectv1.SourceRecordBodyToProto(pr.rec); err != nil {
				return nil, bp, fmt.Errorf("record %d (topic %q): %w", i, pr.rec.Topic, err)
			}
		}
		if !w.positions {
			o, err := offsetOf(pr)
			if err != nil {
				return nil, bp, err
			}
			oj, err := connectv1.OffsetToJSON(o)
			if err != nil {
				return nil, bp, fmt.Errorf("record %d: source offset: %w", i, err)
			}
			var pj []byte
			if pr.key != "" {
				pj = []byte(pr.key)
			}
			pb.Position = &connectv1.SourceOffset{PartitionJson: pj, OffsetJson: oj}
		}
		resp.Records[i] = pb
	}
	return resp, bp, nil
}

// sameFlatMap reports whether a and b hold the same keys with equal
// scalar values; nested or unusual values compare unequal (the caller
// then encodes the map, which is always correct).
func sameFlatMap(a, b map[string]any) bool {
	if len(a) != len(b) {
		return false
	}
	if len(a) > 0 && sameMap(a, b) {
		// One map shared by the records (a file tail's partition): the
		// same content, without walking it per record.
		return true
	}
	for k, av := range a {
		bv, ok := b[k]
		if !ok {
			return false
		}
		switch av.(type) {
		case string, bool, int64, int, int32:
			if av != bv {
				return false
			}
		case nil:
			if bv != nil {
				return false
			}
		default:
			return false
		}
	}
	return true
}

// sameMap reports whether a and b are the same map object (Go compares
// maps only with nil; a map value is a pointer to its header).
func sameMap(a, b map[string]any) bool {
	return *(*unsafe.Pointer)(unsafe.Pointer(&a)) == *(*unsafe.Pointer)(unsafe.Pointer(&b))
}

// safeOffset is at(i), with a panic in the task's code a nil offset (so
// a failed Poll) rather than the plugin's end.
func safeOffset(at func(int) map[string]any, i int) (o map[string]any) {
	defer func() {
		if recover() != nil {
			o = nil
		}
	}()
	return at(i)
}
