package connectv1

import (
	"fmt"

	"github.com/sluice-io/sluice/connect/data"
)

// HeadersToProto encodes record headers.
func HeadersToProto(hs []data.Header) ([]*Header, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make([]*Header, len(hs))
	for i, h := range hs {
		d, err := DataToProto(h.Schema, h.Value)
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.Key, err)
		}
		out[i] = &Header{Key: h.Key, Value: d}
	}
	return out, nil
}

// HeadersFromProto decodes record headers.
func HeadersFromProto(hs []*Header) ([]data.Header, error) {
	if len(hs) == 0 {
		return nil, nil
	}
	out := make([]data.Header, len(hs))
	for i, h := range hs {
		s, v, err := DataFromProto(h.GetValue())
		if err != nil {
			return nil, fmt.Errorf("header %q: %w", h.GetKey(), err)
		}
		out[i] = data.Header{Key: h.GetKey(), Schema: s, Value: v}
	}
	return out, nil
}

func keyValueToProto(r *data.Record) (k, v *Data, hs []*Header, err error) {
	if k, err = DataToProto(r.KeySchema, r.Key); err != nil {
		return nil, nil, nil, fmt.Errorf("key: %w", err)
	}
	if v, err = DataToProto(r.ValueSchema, r.Value); err != nil {
		return nil, nil, nil, fmt.Errorf("value: %w", err)
	}
	hs, err = HeadersToProto(r.Headers)
	return k, v, hs, err
}

func keyValueFromProto(r *data.Record, k, v *Data, hs []*Header) error {
	var err error
	if r.KeySchema, r.Key, err = DataFromProto(k); err != nil {
		return fmt.Errorf("key: %w", err)
	}
	if r.ValueSchema, r.Value, err = DataFromProto(v); err != nil {
		return fmt.Errorf("value: %w", err)
	}
	r.Headers, err = HeadersFromProto(hs)
	return err
}

// SourceRecordToProto encodes a source record.
func SourceRecordToProto(r *data.Record) (*SourceRecord, error) {
	p, err := SourceRecordBodyToProto(r)
	if err != nil {
		return nil, err
	}
	pj, err := OffsetToJSON(r.SourcePartition)
	if err != nil {
		return nil, fmt.Errorf("source partition: %w", err)
	}
	oj, err := OffsetToJSON(r.SourceOffset)
	if err != nil {
		return nil, fmt.Errorf("source offset: %w", err)
	}
	p.Position = &SourceOffset{PartitionJson: pj, OffsetJson: oj}
	return p, nil
}

// SourceRecordBodyToProto encodes a source record without its position,
// for a batch whose positions travel in PollResponse.positions.
func SourceRecordBodyToProto(r *data.Record) (*SourceRecord, error) {
	k, v, hs, err := keyValueToProto(r)
	if err != nil {
		return nil, err
	}
	return &SourceRecord{Topic: r.Topic, Partition: r.Partition, Key: k, Value: v, Headers: hs, TimestampMs: r.Timestamp}, nil
}

// SourceRecordFromProto decodes a source record.
func SourceRecordFromProto(p *SourceRecord) (*data.Record, error) {
	r := &data.Record{Topic: p.GetTopic(), Partition: p.GetPartition(), Timestamp: p.GetTimestampMs(), KafkaOffset: -1}
	if err := keyValueFromProto(r, p.GetKey(), p.GetValue(), p.GetHeaders()); err != nil {
		return nil, err
	}
	var err error
	if r.SourcePartition, err = OffsetFromJSON(p.GetPosition().GetPartitionJson()); err != nil {
		return nil, err
	}
	if r.SourceOffset, err = OffsetFromJSON(p.GetPosition().GetOffsetJson()); err != nil {
		return nil, err
	}
	return r, nil
}

// SinkRecordToProto encodes a sink record.
func SinkRecordToProto(r *data.Record) (*SinkRecord, error) {
	k, v, hs, err := keyValueToProto(r)
	if err != nil {
		return nil, err
	}
	return &SinkRecord{
		Topic: r.Topic, Partition: r.Partition, Offset: r.KafkaOffset,
		Key: k, Value: v, Headers: hs, TimestampMs: r.Timestamp,
		OriginalTopic: r.OriginalTopic, OriginalPartition: r.OriginalPartition, OriginalOffset: r.OriginalOffset,
	}, nil
}

// SinkRecordFromProto decodes a sink record.
func SinkRecordFromProto(p *SinkRecord) (*data.Record, error) {
	r := &data.Record{
		Topic: p.GetTopic(), Partition: p.GetPartition(), KafkaOffset: p.GetOffset(), Timestamp: p.GetTimestampMs(),
		OriginalTopic: p.GetOriginalTopic(), OriginalPartition: p.GetOriginalPartition(), OriginalOffset: p.GetOriginalOffset(),
	}
	if err := keyValueFromProto(r, p.GetKey(), p.GetValue(), p.GetHeaders()); err != nil {
		return nil, err
	}
	return r, nil
}

// Position is one source partition and its offset, both JSON-like maps as
// in data.Record; a nil Offset is no offset (a reset).
type Position struct {
	Partition, Offset map[string]any
}

// PositionsToProto encodes source partition → offset pairs.
func PositionsToProto(ps []Position) ([]*SourceOffset, error) {
	out := make([]*SourceOffset, 0, len(ps))
	for _, p := range ps {
		pj, err := OffsetToJSON(p.Partition)
		if err != nil {
			return nil, fmt.Errorf("source partition: %w", err)
		}
		oj, err := OffsetToJSON(p.Offset)
		if err != nil {
			return nil, fmt.Errorf("source offset: %w", err)
		}
		out = append(out, &SourceOffset{PartitionJson: pj, OffsetJson: oj})
	}
	return out, nil
}

// PositionsFromProto decodes source partition → offset pairs.
func PositionsFromProto(ps []*SourceOffset) ([]Position, error) {
	out := make([]Position, 0, len(ps))
	for _, p := range ps {
		part, err := OffsetFromJSON(p.GetPartitionJson())
		if err != nil {
			return nil, err
		}
		off, err := OffsetFromJSON(p.GetOffsetJson())
		if err != nil {
			return nil, err
		}
		out = append(out, Position{Partition: part, Offset: off})
	}
	return out, nil
}
