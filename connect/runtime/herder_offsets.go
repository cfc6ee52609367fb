package runtime

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/storage"
)

// The offsets API (KIP-875): read any time; alter and reset only while the
// connector is STOPPED, so no task writes offsets at the same time.

// ConnectorOffsets is a connector's committed offsets: the offsets store
// for a source, the connect-<name> group for a sink.
func (h *Herder) ConnectorOffsets(ctx context.Context, name string) (*api.ConnectorOffsets, error) {
	cfg, _, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	out := &api.ConnectorOffsets{Offsets: []api.ConnectorOffset{}}
	switch h.connectorType(cfg) {
	case api.TypeSink:
		offs, err := h.sinks.Read(ctx, name)
		if err != nil {
			return nil, err
		}
		out.Offsets = append(out.Offsets, offs...)
	default:
		offs, err := h.offsets.Read(ctx, name)
		if err != nil {
			return nil, err
		}
		for _, o := range offs {
			if o.Offset != nil {
				out.Offsets = append(out.Offsets, api.ConnectorOffset{Partition: o.Partition, Offset: o.Offset})
			}
		}
	}
	return out, nil
}

func (h *Herder) stoppedConnector(name string) (map[string]string, error) {
	cfg, snap, err := h.connectorConfig(name)
	if err != nil {
		return nil, err
	}
	if targetOf(snap, name) != storage.TargetStopped {
		return nil, api.NotStopped(name)
	}
	return cfg, nil
}

// AlterConnectorOffsets writes offsets of a STOPPED connector.
func (h *Herder) AlterConnectorOffsets(ctx context.Context, name string, offsets []api.ConnectorOffset) (string, error) {
	if err := h.leaderOnly(); err != nil {
		return "", err
	}
	cfg, err := h.stoppedConnector(name)
	if err != nil {
		return "", err
	}
	if len(offsets) == 0 {
		return "", api.BadRequest("Partitions / offsets need to be provided for an alter offsets request")
	}
	if h.connectorType(cfg) == api.TypeSink {
		// The connector has its say first (Kafka's SinkConnector.alterOffsets):
		// a sink keeping its own offsets, such as the exactly-once
		// PostgreSQL sink, rewinds from them, not from the group.
		sink, err := sinkOffsets(offsets)
		if err != nil {
			return "", err
		}
		handled, err := h.alterHook(ctx, name, cfg, nil, sink)
		if err != nil {
			return "", err
		}
		if err := h.sinks.Alter(ctx, name, offsets); err != nil {
			return "", err
		}
		if !handled {
			return api.MsgOffsetsAlteredExternal, nil
		}
		return api.MsgOffsetsAltered, nil
	}
	batch := make([]SourceOffset, 0, len(offsets))
	for _, o := range offsets {
		if o.Partition == nil {
			return "", api.BadRequest("Source partitions may not be null")
		}
		batch = append(batch, SourceOffset{Partition: plainNumbers(o.Partition), Offset: plainNumbers(o.Offset)})
	}
	handled, err := h.alterHook(ctx, name, cfg, batch, nil)
	if err != nil {
		return "", err
	}
	if err := h.offsets.Write(ctx, name, batch); err != nil {
		return "", err
	}
	if !handled {
		return api.MsgOffsetsAlteredExternal, nil
	}
	return api.MsgOffsetsAltered, nil
}

// ResetConnectorOffsets removes every offset of a STOPPED connector.
func (h *Herder) ResetConnectorOffsets(ctx context.Context, name string) (string, error) {
	if err := h.leaderOnly(); err != nil {
		return "", err
	}
	cfg, err := h.stoppedConnector(name)
	if err != nil {
		return "", err
	}
	if h.connectorType(cfg) == api.TypeSink {
		// Every partition the group has an offset for is reset in the
		// connector too (Kafka passes each with a null offset).
		current, err := h.sinks.Read(ctx, name)
		if err != nil {
			return "", err
		}
		sink, err := sinkOffsets(current)
		if err != nil {
			return "", err
		}
		for i := range sink {
			sink[i].Offset = -1
		}
		handled, err := h.alterHook(ctx, name, cfg, nil, sink)
		if err != nil {
			return "", err
		}
		if err := h.sinks.Reset(ctx, name); err != nil {
			return "", err
		}
		if !handled {
			return api.MsgOffsetsResetExternal, nil
		}
		return api.MsgOffsetsReset, nil
	}
	current, err := h.offsets.Read(ctx, name)
	if err != nil {
		return "", err
	}
	tombstones := make([]SourceOffset, 0, len(current))
	for _, o := range current {
		tombstones = append(tombstones, SourceOffset{Partition: o.Partition})
	}
	handled, err := h.alterHook(ctx, name, cfg, tombstones, nil)
	if err != nil {
		return "", err
	}
	if len(tombstones) > 0 {
		if err := h.offsets.Write(ctx, name, tombstones); err != nil {
			return "", err
		}
	}
	if !handled {
		return api.MsgOffsetsResetExternal, nil
	}
	return api.MsgOffsetsReset, nil
}

// alterHook gives the connector's plugin its say (Kafka's
// SourceConnector.alterOffsets): it may refuse the change; handled is its
// answer, true when the connector knows the change (Kafka's implementations
// return true), false for one that does not implement the hook, in which
// case the answer warns that offsets it keeps elsewhere are unchanged.
func (h *Herder) alterHook(ctx context.Context, name string, cfg map[string]string, source []SourceOffset, sink []SinkOffset) (bool, error) {
	if h.catalog.Kind(cfg["connector.class"]) == "" {
		return false, nil
	}
	proc, err := h.worker.process(ctx, name, cfg)
	if err != nil {
		return false, fmt.Errorf("starting the connector's plugin to alter its offsets: %w", err)
	}
	defer h.worker.releaseProcess(name)
	handled, err := proc.Connector().AlterOffsets(ctx, cfg, source, sink)
	if err != nil {
		return false, api.BadRequest("The connector refused the offsets: %v", err)
	}
	return handled, nil
}

// plainNumbers turns the json.Number values of a decoded REST body into
// int64 or float64, the types offsets have everywhere else (a connector
// reads {"position": 35} back as an integer, as from Kafka's Jackson).
func plainNumbers(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = plainNumber(v)
	}
	return out
}

func plainNumber(v any) any {
	switch x := v.(type) {
	case json.Number:
		if i, err := x.Int64(); err == nil {
			return i
		}
		if f, err := x.Float64(); err == nil {
			return f
		}
		return x.String()
	case map[string]any:
		return plainNumbers(x)
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = plainNumber(e)
		}
		return out
	}
	return v
}

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int:
		return int64(x), true
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	}
	return 0, false
}

// sinkOffsets turns a sink connector's REST offsets
// ({"kafka_topic","kafka_partition"} -> {"kafka_offset"} or null) into the
// connector's view, -1 for a reset, in a stable order.
func sinkOffsets(offsets []api.ConnectorOffset) ([]SinkOffset, error) {
	parsed, err := parseSinkOffsets(offsets)
	if err != nil {
		return nil, err
	}
	out := make([]SinkOffset, 0, len(parsed))
	for tp, o := range parsed {
		so := SinkOffset{TopicPartition: TopicPartition{Topic: tp.Topic, Partition: tp.Partition}, Offset: -1}
		if o != nil {
			so.Offset = *o
		}
		out = append(out, so)
	}
	slices.SortFunc(out, func(a, b SinkOffset) int {
		if c := strings.Compare(a.Topic, b.Topic); c != 0 {
			return c
		}
		return int(a.Partition) - int(b.Partition)
	})
	return out, nil
}

// parseSinkOffsets checks a sink connector's REST offsets, a bad shape
// being the client's error (400), as in Kafka.
func parseSinkOffsets(offsets []api.ConnectorOffset) (map[storage.TopicPartition]*int64, error) {
	in := make([]storage.ConnectorOffset, 0, len(offsets))
	for _, o := range offsets {
		in = append(in, storage.ConnectorOffset(o))
	}
	parsed, err := storage.ParseSinkOffsets(in)
	var bad *storage.BadOffsetsError
	if errors.As(err, &bad) {
		return nil, api.BadRequest("%s", bad.Msg)
	}
	return parsed, err
}
