package pluginhost

import (
	"fmt"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/proto/connectv1"
)

// batchFromProto decodes a Poll response: packed or message records, and
// the batch's positions, from PollResponse.positions when the plugin sent
// them, else from the records' own positions (older or simpler plugins).
func batchFromProto(resp *connectv1.PollResponse) (Batch, error) {
	b := Batch{Seq: resp.GetBatchSeq()}
	var err error
	if packed := resp.GetPacked(); len(packed) > 0 {
		if len(resp.GetRecords()) > 0 {
			return Batch{}, fmt.Errorf("both packed and message records")
		}
		// The response is this batch's alone (pollCodec), so its text
		// values may share its buffer.
		if b.Records, err = connectv1.UnpackShared(packed); err != nil {
			return Batch{}, err
		}
		for _, r := range b.Records {
			r.KafkaOffset = -1 // a source record has none, as SourceRecordFromProto says
		}
	} else {
		b.Records = make([]*data.Record, len(resp.GetRecords()))
		for i, r := range resp.GetRecords() {
			if b.Records[i], err = connectv1.SourceRecordFromProto(r); err != nil {
				return Batch{}, fmt.Errorf("record %d: %w", i, err)
			}
		}
	}
	if ps := resp.GetPositions(); len(ps) > 0 {
		b.Positions = make([]BatchPosition, 0, len(ps))
		for _, p := range ps {
			if b.Positions, err = appendPosition(b.Positions, p); err != nil {
				return Batch{}, err
			}
		}
		return b, nil
	}
	// Newest per partition from the records: one canonical encoding per
	// distinct partition_json as sent, not per record.
	at := map[string]int{}
	for i, r := range resp.GetRecords() {
		pj := r.GetPosition().GetPartitionJson()
		if len(pj) == 0 {
			continue
		}
		if j, ok := at[string(pj)]; ok {
			b.Positions[j].Offset = b.Records[i].SourceOffset
			continue
		}
		key, err := connectv1.OffsetToJSON(b.Records[i].SourcePartition)
		if err != nil {
			return Batch{}, fmt.Errorf("record %d: source partition: %w", i, err)
		}
		at[string(pj)] = len(b.Positions)
		b.Positions = append(b.Positions, BatchPosition{Key: string(key),
			Position: connectv1.Position{Partition: b.Records[i].SourcePartition, Offset: b.Records[i].SourceOffset}})
	}
	return b, nil
}

// appendPosition decodes one of PollResponse.positions, keyed by the
// partition's canonical JSON (partition_json itself when it already is).
func appendPosition(ps []BatchPosition, p *connectv1.SourceOffset) ([]BatchPosition, error) {
	part, err := connectv1.OffsetFromJSON(p.GetPartitionJson())
	if err != nil {
		return nil, fmt.Errorf("batch position: %w", err)
	}
	if part == nil {
		return nil, fmt.Errorf("batch position without a source partition")
	}
	off, err := connectv1.OffsetFromJSON(p.GetOffsetJson())
	if err != nil {
		return nil, fmt.Errorf("batch position: %w", err)
	}
	key, err := connectv1.OffsetToJSON(part)
	if err != nil {
		return nil, fmt.Errorf("batch position: %w", err)
	}
	return append(ps, BatchPosition{Key: string(key), Position: connectv1.Position{Partition: part, Offset: off}}), nil
}

// putRequest builds a Put: packed when the task takes it and the records
// allow, else one message per record.
func (t *SinkTask) putRequest(recs []*data.Record) (*connectv1.PutRequest, error) {
	req := &connectv1.PutRequest{Task: t.id, Generation: t.g}
	if t.packed > 0 {
		if b, err := connectv1.AppendPackedVersion(nil, recs, t.packed); err == nil {
			req.Packed = b
			return req, nil
		}
	}
	req.Records = make([]*connectv1.SinkRecord, len(recs))
	for i, r := range recs {
		pr, err := connectv1.SinkRecordToProto(r)
		if err != nil {
			return nil, fmt.Errorf("pluginhost: put: record %d (%s-%d@%d): %w", i, r.Topic, r.Partition, r.KafkaOffset, err)
		}
		req.Records[i] = pr
	}
	return req, nil
}
