package sdk

import (
	"fmt"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// encodeBatch encodes one cut batch the way the host asked (w), and
// returns the newest position per source partition for Commit. The
// positions always travel in PollResponse.positions; per record too unless
// the host reads them per batch; the records are packed when the host
// takes that and every record allows it.
func encodeBatch(batch []pendingRecord, w wire) (*connectv1.PollResponse, batchPositions, error) {
	resp := &connectv1.PollResponse{}
	bp := batchPositions{pos: make(map[string]Position, 1)}
	var order []string
	packable := w.positions && w.packed > 0
	for _, pr := range batch {
		if pr.pb != nil {
			packable = false
		}
		if pr.key == "" {
			continue
		}
		if _, ok := bp.pos[pr.key]; !ok {
			order = append(order, pr.key)
		}
		bp.pos[pr.key] = Position{Partition: pr.rec.SourcePartition, Offset: pr.rec.SourceOffset}
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
		for i, pr := range batch {
			recs[i] = pr.rec
		}
		// A record that does not fit its schema (ErrNotPackable) sends
		// the batch as messages, which carry it as they always did.
		b, err := connectv1.AppendPackedVersion(nil, recs, w.packed)
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
			oj, err := connectv1.OffsetToJSON(pr.rec.SourceOffset)
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
