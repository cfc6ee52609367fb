package main

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"sync"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// Kafka's FileStreamSink: every record's value as one line appended to
// file (stdout when unset), visible as soon as Put returns. Unlike Kafka's,
// PreCommit fsyncs the file before offsets are committed, so a committed
// record is on disk.

const sinkClass = "org.apache.kafka.connect.file.FileStreamSinkConnector"

type sinkConnector struct{}

func (sinkConnector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Sink, Class: sinkClass, Aliases: []string{"FileStreamSink"}, Version: version,
		Config: []sdk.ConfigKey{
			{Name: "file", Type: "STRING", Default: strptr(""), Importance: "HIGH",
				Documentation: "Destination filename. If not specified, the standard output will be used"},
		},
	}
}

func (c sinkConnector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	return sdk.ValidateRequired(c.Describe(), cfg), nil
}

// TaskConfigs gives every task the connector's config: each appends to
// the same file, as Kafka's does.
func (sinkConnector) TaskConfigs(_ context.Context, cfg map[string]string, maxTasks int) ([]map[string]string, error) {
	return sdk.SameTaskConfigs(cfg, maxTasks), nil
}

// AlterOffsets accepts any change: the sink keeps no offsets of its own,
// so the group's are the whole truth (Kafka's returns true too).
func (sinkConnector) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return true, nil
}

func (sinkConnector) NewTask() sdk.SinkTask { return &sinkTask{} }

type sinkTask struct {
	mu   sync.Mutex
	file *os.File // nil = stdout
	out  *bufio.Writer
}

func (t *sinkTask) Start(_ context.Context, _ sdk.TaskContext, cfg map[string]string) error {
	name := cfg["file"]
	if name == "" {
		t.out = bufio.NewWriter(os.Stderr) // the SDK owns stdout: see package sdk
		return nil
	}
	f, err := os.OpenFile(name, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("couldn't find or create file '%s' for FileStreamSinkTask: %w", name, err)
	}
	t.file, t.out = f, bufio.NewWriterSize(f, 64<<10)
	return nil
}

func (t *sinkTask) Open(context.Context, []sdk.TopicPartition) ([]sdk.TopicPartitionOffset, error) {
	return nil, nil
}

func (t *sinkTask) Put(_ context.Context, recs []*data.Record) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range recs {
		if _, err := t.out.WriteString(valueText(r.Value)); err != nil {
			return err
		}
		if err := t.out.WriteByte('\n'); err != nil {
			return err
		}
	}
	// Kafka's sink writes each line through to the file, so `cat` shows
	// it at once; one write per batch does the same without a syscall
	// per line. fsync waits for PreCommit.
	return t.out.Flush()
}

// valueText prints a value as Kafka's sink prints record.value(): Java's
// toString of the Connect value.
func valueText(v any) string {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return data.JavaString(v)
}

// PreCommit flushes and fsyncs, so the offsets committed next are of
// lines on disk.
func (t *sinkTask) PreCommit(_ context.Context, offs []sdk.TopicPartitionOffset) ([]sdk.TopicPartitionOffset, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if err := t.out.Flush(); err != nil {
		return nil, err
	}
	if t.file != nil {
		if err := t.file.Sync(); err != nil {
			return nil, err
		}
	}
	return offs, nil
}

func (t *sinkTask) Close(context.Context, []sdk.TopicPartition) error { return nil }

func (t *sinkTask) Stop(context.Context) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.out != nil {
		_ = t.out.Flush()
	}
	if t.file != nil {
		_ = t.file.Sync()
		return t.file.Close()
	}
	return nil
}
