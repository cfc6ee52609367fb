package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// Kafka's FileStreamSource: one task, reading file (stdin when unset) from
// its committed position, one record per line with the line's text as a
// string value. Offsets are {"filename": F} -> {"position": bytes read},
// as in Kafka, so offsets REST requests written for Kafka work unchanged.

const (
	sourceClass     = "org.apache.kafka.connect.file.FileStreamSourceConnector"
	filenameKey     = "filename"
	positionKey     = "position"
	defaultBatch    = 2000
	missingFileWait = time.Second
)

var version = "1.0.0"

func strptr(s string) *string { return &s }

type sourceConnector struct{}

func (sourceConnector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Source, Class: sourceClass, Aliases: []string{"FileStreamSource"}, Version: version, AlterOffsets: true,
		Config: []sdk.ConfigKey{
			{Name: "file", Type: "STRING", Default: strptr(""), Importance: "HIGH",
				Documentation: "Source filename. If not specified, the standard input will be used"},
			{Name: "topic", Type: "STRING", Required: true, Importance: "HIGH",
				Documentation: "The topic to publish data to"},
			{Name: "batch.size", Type: "INT", Default: strptr(strconv.Itoa(defaultBatch)), Importance: "LOW",
				Documentation: "The maximum number of records the source task can read from the file each time it is polled"},
		},
	}
}

func (c sourceConnector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), cfg)
	for i := range out {
		switch out[i].Name {
		case "topic":
			if v := cfg["topic"]; v != "" && containsComma(v) {
				out[i].Errors = append(out[i].Errors, "'topic' in FileStreamSourceConnector configuration requires definition of a single topic")
			}
		case "batch.size":
			if v, ok := cfg["batch.size"]; ok {
				if n, err := strconv.Atoi(v); err != nil || n < 1 {
					out[i].Errors = append(out[i].Errors, fmt.Sprintf("Invalid value %s for configuration batch.size: must be a positive integer", v))
				}
			}
		}
	}
	return out, nil
}

func containsComma(s string) bool {
	for _, r := range s {
		if r == ',' {
			return true
		}
	}
	return false
}

// TaskConfigs is always one task: a file has one reader.
func (sourceConnector) TaskConfigs(_ context.Context, cfg map[string]string, _ int) ([]map[string]string, error) {
	task := map[string]string{}
	for k, v := range cfg {
		task[k] = v
	}
	return []map[string]string{task}, nil
}

// AlterOffsets accepts only Kafka's shape: {"filename"} -> {"position"}
// with a non-negative integer position.
func (sourceConnector) AlterOffsets(_ context.Context, _ map[string]string, offs sdk.Offsets) (bool, error) {
	for _, p := range offs.Source {
		if _, ok := p.Partition[filenameKey]; !ok {
			return false, fmt.Errorf("partition %v has no %q key", p.Partition, filenameKey)
		}
		if p.Offset == nil {
			continue
		}
		if n, ok := asInt(p.Offset[positionKey]); !ok || n < 0 {
			return false, fmt.Errorf("offset %v needs a non-negative integer %q", p.Offset, positionKey)
		}
	}
	return true, nil
}

func (sourceConnector) NewTask() sdk.SourceTask { return &sourceTask{} }

func asInt(v any) (int64, bool) {
	switch x := v.(type) {
	case int64:
		return x, true
	case int32:
		return int64(x), true
	case int:
		return int64(x), true
	case float64:
		if x == float64(int64(x)) {
			return int64(x), true
		}
	}
	return 0, false
}

type sourceTask struct {
	filename string // "" = stdin
	topic    string
	batch    int

	mu       sync.Mutex
	file     *os.File
	reader   *bufio.Reader
	position int64  // bytes consumed through the last complete line
	partial  []byte // the start of a line not yet ended
	stopped  chan struct{}
	stopOnce sync.Once
	log      sdk.TaskContext
}

func (t *sourceTask) Start(_ context.Context, tc sdk.TaskContext, cfg map[string]string, committed []sdk.Position) error {
	t.filename, t.topic, t.log = cfg["file"], cfg["topic"], tc
	t.batch = defaultBatch
	if v := cfg["batch.size"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return fmt.Errorf("batch.size=%q: want a positive integer", v)
		}
		t.batch = n
	}
	if t.topic == "" {
		return errors.New("topic is required")
	}
	for _, p := range committed {
		if p.Partition[filenameKey] == t.filename && p.Offset != nil {
			if n, ok := asInt(p.Offset[positionKey]); ok {
				t.position = n
			}
		}
	}
	t.stopped = make(chan struct{})
	return nil
}

// open opens the file at the committed position; a file that does not
// exist yet is waited for, as Kafka's task does.
func (t *sourceTask) open() error {
	if t.filename == "" {
		t.file, t.reader = os.Stdin, bufio.NewReaderSize(os.Stdin, 64<<10)
		return nil
	}
	f, err := os.Open(t.filename)
	if err != nil {
		return err
	}
	if t.position > 0 {
		if _, err := f.Seek(t.position, io.SeekStart); err != nil {
			_ = f.Close()
			return fmt.Errorf("seeking %s to %d: %w", t.filename, t.position, err)
		}
	}
	t.file, t.reader = f, bufio.NewReaderSize(f, 64<<10)
	return nil
}

func (t *sourceTask) Poll(ctx context.Context, limits sdk.PollLimits) ([]*data.Record, error) {
	deadline := time.Now().Add(limits.MaxWait)
	for {
		recs, err := t.readLines(limits)
		if err != nil || len(recs) > 0 {
			return recs, err
		}
		wait := min(100*time.Millisecond, time.Until(deadline))
		if wait <= 0 {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, nil
		case <-t.stopped:
			return nil, nil
		case <-time.After(wait):
		}
	}
}

// readLines reads the complete lines available now, up to batch.size.
func (t *sourceTask) readLines(limits sdk.PollLimits) ([]*data.Record, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file == nil {
		if err := t.open(); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				t.log.Logger.Warn("couldn't find file for FileStreamSourceTask, sleeping to wait for it to be created", "file", t.filename)
				time.Sleep(min(missingFileWait, limits.MaxWait))
				return nil, nil
			}
			return nil, err
		}
	}
	limit := t.batch
	if limits.MaxRecords > 0 && limits.MaxRecords < limit {
		limit = limits.MaxRecords
	}
	var recs []*data.Record
	for len(recs) < limit {
		chunk, err := t.reader.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			t.partial = append(t.partial, chunk...)
			continue
		}
		if err != nil {
			// EOF (or an error): keep what was read of an unfinished
			// line; the next Poll reads on from here.
			t.partial = append(t.partial, chunk...)
			if err == io.EOF {
				break
			}
			return recs, fmt.Errorf("reading %s: %w", t.filename, err)
		}
		line := append(t.partial, chunk...)
		t.partial = nil
		t.position += int64(len(line))
		text := string(line[:len(line)-1])
		if n := len(text); n > 0 && text[n-1] == '\r' {
			text = text[:n-1]
		}
		recs = append(recs, &data.Record{
			Topic: t.topic, Partition: -1, Timestamp: -1,
			ValueSchema: data.StringSchema, Value: text,
			SourcePartition: map[string]any{filenameKey: t.filename},
			SourceOffset:    map[string]any{positionKey: t.position},
		})
	}
	return recs, nil
}

func (t *sourceTask) Commit(context.Context, sdk.Commit) error { return nil }

func (t *sourceTask) Stop(context.Context) error {
	t.stopOnce.Do(func() {
		if t.stopped != nil {
			close(t.stopped)
		}
	})
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.file != nil && t.file != os.Stdin {
		_ = t.file.Close()
	}
	t.file = nil
	return nil
}
