// Command discardsink is the connect benchmark's sink plugin,
// sluice.bench.DiscardSink: every Put is accepted and its records
// dropped, so what the benchmark measures is the worker and the contract,
// not a destination. Progress shows in the worker's
// sluice_connect_sink_records_put_total. Built by perf/connectbench into a
// temporary plugin.path, not shipped.
package main

import (
	"context"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

const class = "sluice.bench.DiscardSink"

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{Type: sdk.Sink, Class: class, Aliases: []string{"DiscardSink"}, Version: "1.0.0"}
}

func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	return sdk.ValidateRequired(c.Describe(), cfg), nil
}

func (connector) TaskConfigs(_ context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	return sdk.SameTaskConfigs(cfg, maxTasks), nil
}

func (connector) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return false, nil
}

func (connector) NewTask() sdk.SinkTask { return task{} }

type task struct{}

func (task) Start(context.Context, sdk.TaskContext, map[string]string) error { return nil }

func (task) Open(context.Context, []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	return nil, nil
}

func (task) Put(context.Context, []*data.Record) error { return nil }

// PreCommit: everything put is "written", so every offset is safe.
func (task) PreCommit(_ context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	return offs, nil
}

func (task) Close(context.Context, []sdk.TopicPartition) error { return nil }

func (task) Stop(context.Context) error { return nil }

func main() { sdk.Serve(connector{}) }
