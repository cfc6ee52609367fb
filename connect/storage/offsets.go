package storage

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
)

// OffsetStore keeps source connectors' offsets (Kafka's OffsetBackingStore
// seen through OffsetStorageReader and OffsetStorageWriter).
type OffsetStore interface {
	// Offsets is every partition of connector with a stored offset, sorted
	// by partition. It includes writes acknowledged before the call.
	Offsets(ctx context.Context, connector string) ([]ConnectorOffset, error)
	// Write stores a batch of connector's offsets durably before it
	// returns; a nil Offset deletes the partition's offset.
	Write(ctx context.Context, connector string, offsets []ConnectorOffset) error
	Close() error
}

// ResetOffsets deletes every offset of connector (DELETE
// /connectors/{c}/offsets of a stopped source connector).
func ResetOffsets(ctx context.Context, s OffsetStore, connector string) error {
	offs, err := s.Offsets(ctx, connector)
	if err != nil {
		return err
	}
	for i := range offs {
		offs[i].Offset = nil
	}
	return s.Write(ctx, connector, offs)
}

// OffsetKey is the key a source partition's offset is stored under:
// JSON ["<connector>",{<partition>}] as OffsetStorageWriter writes it, with
// the partition's keys sorted so one partition always has one key (the
// offsets topic is compacted by key bytes).
func OffsetKey(connector string, partition map[string]any) ([]byte, error) {
	if err := validateOffsetMap("partition", partition); err != nil {
		return nil, err
	}
	if partition == nil {
		partition = map[string]any{}
	}
	return appendJSON(nil, []any{connector, partition})
}

// OffsetValue is the stored form of an offset: its JSON object, or nil (a
// tombstone) for a nil offset.
func OffsetValue(offset map[string]any) ([]byte, error) {
	if offset == nil {
		return nil, nil
	}
	if err := validateOffsetMap("offset", offset); err != nil {
		return nil, err
	}
	return appendJSON(nil, offset)
}

// ParseOffsetKey reads a key of the offsets topic. Like Kafka's readers it
// accepts only a 2-element [string, object] list; ok is false otherwise.
func ParseOffsetKey(key []byte) (connector string, partition map[string]any, ok bool) {
	if key == nil {
		return "", nil, false
	}
	v, err := decodeJSON(key)
	if err != nil {
		return "", nil, false
	}
	l, _ := v.([]any)
	if len(l) != 2 {
		return "", nil, false
	}
	connector, ok1 := l[0].(string)
	partition, ok2 := l[1].(map[string]any)
	if !ok1 || !ok2 {
		return "", nil, false
	}
	return connector, partition, true
}

// validateOffsetMap allows what Kafka's OffsetUtils.validateFormat allows:
// primitive values only.
func validateOffsetMap(what string, m map[string]any) error {
	for k, v := range m {
		switch v.(type) {
		case nil, bool, string, []byte, int, int8, int16, int32, int64, uint8, uint16, uint32, float32, float64:
		default:
			return fmt.Errorf("Offsets may only contain primitive types as values, but %s field %s contains %T", what, k, v) //nolint:revive,staticcheck // Kafka's message
		}
	}
	return nil
}

// parsedKey is a stored key understood.
type parsedKey struct {
	connector string
	partition map[string]any
	canonical string // OffsetKey of the same partition
}

// offsetState is the content of the offsets topic (or file) by raw key; it
// does no I/O. Keys written by other implementations may order a
// partition's fields differently: they are matched to the canonical key,
// and the canonical one wins when both are there.
type offsetState struct {
	values map[string][]byte    // raw key -> raw value
	keys   map[string]parsedKey // raw key -> parsed, for the keys in values that parse
	log    *slog.Logger
}

func newOffsetState(log *slog.Logger) *offsetState {
	return &offsetState{values: map[string][]byte{}, keys: map[string]parsedKey{}, log: log}
}

func (s *offsetState) apply(key, value []byte) {
	if key == nil {
		s.log.Warn("ignoring offset record with a null key")
		return
	}
	k := string(key)
	if value == nil {
		delete(s.values, k)
		delete(s.keys, k)
		return
	}
	// Every value is kept (the file store writes back what it read); only
	// the keys that name a connector's partition are offsets.
	s.values[k] = value
	if _, ok := s.keys[k]; ok {
		return
	}
	conn, part, ok := ParseOffsetKey(key)
	if !ok {
		s.log.Warn("ignoring offset record whose key is not [connector, {partition}]", "key", k)
		return
	}
	canon, err := appendJSON(nil, []any{conn, part})
	if err != nil {
		s.log.Warn("ignoring offset record with an unencodable key", "key", k, "err", err)
		return
	}
	s.keys[k] = parsedKey{conn, part, string(canon)}
}

// offsets is connector's stored offsets, sorted by canonical key.
func (s *offsetState) offsets(connector string) []ConnectorOffset {
	type found struct {
		canonicalRaw bool
		off          ConnectorOffset
	}
	byCanon := map[string]found{}
	for raw, pk := range s.keys {
		if pk.connector != connector {
			continue
		}
		isCanon := raw == pk.canonical
		if prev, ok := byCanon[pk.canonical]; ok && (prev.canonicalRaw || !isCanon) {
			continue
		}
		v, err := decodeJSON(s.values[raw])
		off, ok := v.(map[string]any)
		if err != nil || !ok {
			s.log.Warn("ignoring offset that is not a JSON object", "key", raw)
			continue
		}
		byCanon[pk.canonical] = found{isCanon, ConnectorOffset{Partition: pk.partition, Offset: off}}
	}
	canons := make([]string, 0, len(byCanon))
	for c := range byCanon {
		canons = append(canons, c)
	}
	sort.Strings(canons)
	out := make([]ConnectorOffset, len(canons))
	for i, c := range canons {
		out[i] = byCanon[c].off
	}
	return out
}

// variants is the raw keys other than canonical that name the same
// partition; a write tombstones them so they cannot resurface.
func (s *offsetState) variants(canonical string) []string {
	var out []string
	for raw, pk := range s.keys {
		if pk.canonical == canonical && raw != canonical {
			out = append(out, raw)
		}
	}
	sort.Strings(out)
	return out
}

// encodedOffset is one offset ready to store.
type encodedOffset struct {
	key, value []byte
}

// encodeOffsets encodes a batch, with tombstones for the non-canonical
// variants of its keys first.
func (s *offsetState) encodeOffsets(connector string, offsets []ConnectorOffset) ([]encodedOffset, error) {
	var out []encodedOffset
	for _, o := range offsets {
		k, err := OffsetKey(connector, o.Partition)
		if err != nil {
			return nil, err
		}
		v, err := OffsetValue(o.Offset)
		if err != nil {
			return nil, err
		}
		for _, raw := range s.variants(string(k)) {
			out = append(out, encodedOffset{key: []byte(raw)})
		}
		out = append(out, encodedOffset{k, v})
	}
	return out, nil
}
