// Command gensource is the connect benchmark's source plugin,
// sluice.bench.GeneratorSource: one task that makes records as fast as
// the worker polls, each with a distinct key, a value of record.bytes
// bytes and a source offset, and stops after `records` of them. It is
// built by perf/connectbench into a temporary plugin.path, not shipped.
package main

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/perf/connectbench/gen"
)

const class = "sluice.bench.GeneratorSource"

func strptr(s string) *string { return &s }

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Source, Class: class, Aliases: []string{"GeneratorSource"}, Version: "1.0.0",
		Config: []sdk.ConfigKey{
			{Name: "topic", Type: "STRING", Required: true, Importance: "HIGH",
				Documentation: "The topic to write to"},
			{Name: "record.bytes", Type: "INT", Default: strptr("100"), Importance: "HIGH",
				Documentation: "Size of each record's value in bytes (for value.type=json, of its JSON text)"},
			{Name: "records", Type: "LONG", Default: strptr("0"), Importance: "HIGH",
				Documentation: "Stop after this many records; 0 never stops"},
			{Name: "value.type", Type: "STRING", Default: strptr("bytes"), Importance: "MEDIUM",
				Documentation: "bytes (for ByteArrayConverter), string (StringConverter) or json (a schemaless map for JsonConverter)"},
		},
	}
}

func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), cfg)
	if _, err := parseConfig(cfg); err != nil {
		out = append(out, sdk.ConfigValue{Name: "config", Errors: []string{err.Error()}, Visible: true})
	}
	return out, nil
}

// TaskConfigs is one task: the benchmark measures one pipeline.
func (connector) TaskConfigs(_ context.Context, cfg map[string]string, _ int) ([]map[string]string, error) {
	task := make(map[string]string, len(cfg))
	for k, v := range cfg {
		task[k] = v
	}
	return []map[string]string{task}, nil
}

func (connector) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return false, nil
}

func (connector) NewTask() sdk.SourceTask { return &task{} }

// config is a task's parsed configuration.
type config struct {
	topic     string
	bytes     int
	records   int64
	valueType string
}

func parseConfig(cfg map[string]string) (config, error) {
	c := config{topic: cfg["topic"], bytes: 100, valueType: "bytes"}
	if c.topic == "" {
		return c, errors.New("topic is required")
	}
	if v := cfg["record.bytes"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return c, fmt.Errorf("record.bytes=%q: want a non-negative integer", v)
		}
		c.bytes = n
	}
	if v := cfg["records"]; v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			return c, fmt.Errorf("records=%q: want a non-negative integer", v)
		}
		c.records = n
	}
	if v := cfg["value.type"]; v != "" {
		c.valueType = v
	}
	switch c.valueType {
	case "bytes", "string", "json":
	default:
		return c, fmt.Errorf("value.type=%q: want bytes, string or json", c.valueType)
	}
	return c, nil
}

type task struct {
	cfg       config
	partition map[string]any // the one source partition, shared by every record
	next      int64          // sequence number of the next record
	value     []byte         // value.type=bytes: shared by every record
	text      string         // value.type=string
	filler    string         // value.type=json: the msg field
	stopped   chan struct{}
}

func (t *task) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string, committed []sdk.Position) error {
	c, err := parseConfig(cfg)
	if err != nil {
		return err
	}
	t.cfg = c
	t.partition = map[string]any{"generator": tc.Connector}
	for _, p := range committed {
		if p.Partition["generator"] == tc.Connector && p.Offset != nil {
			if n, ok := p.Offset["seq"].(int64); ok {
				t.next = n + 1
			}
		}
	}
	t.value = gen.Payload(c.bytes)
	t.text = string(t.value)
	t.filler = gen.Filler(c.bytes)
	t.stopped = make(chan struct{})
	return nil
}

func (t *task) Poll(ctx context.Context, limits sdk.PollLimits) ([]*data.Record, error) {
	n := int64(limits.MaxRecords)
	if t.cfg.records > 0 {
		n = min(n, t.cfg.records-t.next)
	}
	if n <= 0 {
		// Done: wait out the poll rather than spin.
		select {
		case <-ctx.Done():
		case <-t.stopped:
		}
		return nil, nil
	}
	out := make([]*data.Record, n)
	for i := range out {
		seq := t.next
		t.next++
		r := &data.Record{
			Topic: t.cfg.topic, Partition: -1, Timestamp: -1, Key: gen.Key(seq),
			SourcePartition: t.partition, SourceOffset: map[string]any{"seq": seq},
		}
		switch t.cfg.valueType {
		case "bytes":
			r.Value = t.value
		case "string":
			r.Value = t.text
		case "json":
			r.Value = gen.JSONValue(seq, t.filler)
		}
		out[i] = r
	}
	return out, nil
}

func (t *task) Commit(context.Context, sdk.Commit) error { return nil }

func (t *task) Stop(context.Context) error {
	select {
	case <-t.stopped:
	default:
		close(t.stopped)
	}
	return nil
}

func main() { sdk.Serve(connector{}) }
