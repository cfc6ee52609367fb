package main

// The file tail source's benchmark (issue 20: 200-byte lines into Sluice at
// 100 MB/s or more). Files of 200-byte lines (newline included) are written
// first; a FileTailSource connector then reads them from the beginning into
// a topic, and the run counts from the connector's creation until the topic
// holds every line, reading the CPU of the plugin, the worker and the
// broker over that stretch. One file, then four (the fair share between
// files at work).

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { registerConnectorBench(connectorBench{Name: "filetail", Run: runFiletailBench}) }

const (
	filetailTarget    = ">= 100 MB/s"
	filetailTargetBps = 100e6
	filetailLineBytes = 200
)

func runFiletailBench(ctx context.Context, env *connectorEnv) ([]connectorRow, error) {
	adm, cl, err := newAdmin(env.Bootstrap)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	total := int64(1 << 30)
	if env.Quick {
		total = 128 << 20
	}
	var rows []connectorRow
	for _, w := range []struct {
		files  int
		header bool
	}{{1, true}, {4, true}, {1, false}} {
		if ctx.Err() != nil {
			break
		}
		if !env.Wants(filetailWorkload(w.files, w.header, total)) {
			continue
		}
		row, err := filetailRun(ctx, env, adm, w.files, w.header, total)
		if err != nil {
			row.Err = err.Error()
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// filetailRun measures one workload: files files holding total bytes of
// lines between them, each record with the path header (the default) or
// none (file_key empty: what the header costs).
func filetailRun(ctx context.Context, env *connectorEnv, adm *kadm.Client, files int, header bool, total int64) (connectorRow, error) {
	lines := total / filetailLineBytes
	row := connectorRow{Tool: "sluice connect", Unit: "lines", Target: filetailTarget,
		Workload: filetailWorkload(files, header, total)}
	fileKey := "file"
	if !header {
		fileKey = ""
	}
	dir := filepath.Join(env.Dir, fmt.Sprintf("logs-%d", files))
	if err := filetailWrite(dir, files, lines); err != nil {
		return row, err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	topic := fmt.Sprintf("bench-filetail-%d-%t", files, header)
	if resp, err := adm.CreateTopic(ctx, 4, 1, nil, topic); err != nil || resp.Err != nil {
		return row, fmt.Errorf("creating %s: %v %v", topic, err, resp.Err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = adm.DeleteTopics(dctx, topic)
	}()
	name := topic
	before, err := cpus(map[string]int{"worker": env.WorkerPID, "broker": env.BrokerPID})
	if err != nil {
		return row, err
	}
	start := time.Now()
	if err := env.REST.create(ctx, name, map[string]string{
		"connector.class": "sluice.connect.FileTailSource", "tasks.max": "1",
		"topic": topic, "include": filepath.Join(dir, "*.log"), "file_key": fileKey,
		"key.converter":   "org.apache.kafka.connect.storage.StringConverter",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
	}); err != nil {
		return row, err
	}
	defer filetailDelete(env, name)
	plugin, err := filetailPlugin(ctx, env)
	if err != nil {
		return row, err
	}
	pluginBefore, _ := cpuOf(plugin)
	if err := filetailWait(ctx, adm, topic, lines, start); err != nil {
		return row, err
	}
	row.Seconds = time.Since(start).Seconds()
	row.Count, row.Bytes = lines, lines*filetailLineBytes
	after, err := cpus(map[string]int{"worker": env.WorkerPID, "broker": env.BrokerPID, "plugin": plugin})
	if err != nil {
		return row, err
	}
	before["plugin"] = pluginBefore
	row.CPU = map[string]float64{}
	for k := range after {
		row.CPU[k] = (after[k] - before[k]) * 1e6 / float64(lines)
	}
	row.Met = "missed"
	if float64(row.Bytes)/row.Seconds >= filetailTargetBps {
		row.Met = "met"
	}
	env.Logf("%s: %.1f MB/s, %.0f lines/s; CPU µs/line %v", row.Workload, float64(row.Bytes)/row.Seconds/1e6, rate(row), row.CPU)
	return row, nil
}

// filetailWorkload describes a workload, in the report and for --workload.
func filetailWorkload(files int, header bool, total int64) string {
	w := fmt.Sprintf("%d MiB of %d-byte lines, %d file(s)", total>>20, filetailLineBytes, files)
	if !header {
		w += ", no path header"
	}
	return w
}

// filetailWrite writes lines lines of filetailLineBytes bytes, spread over
// files files.
func filetailWrite(dir string, files int, lines int64) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pad := strings.Repeat("x", filetailLineBytes)
	for f := range files {
		fh, err := os.Create(filepath.Join(dir, fmt.Sprintf("app-%d.log", f)))
		if err != nil {
			return err
		}
		w := bufio.NewWriterSize(fh, 1<<20)
		for i := int64(f); i < lines; i += int64(files) {
			head := fmt.Sprintf("2026-12-05T01:02:03.000Z INFO line %012d ", i)
			_, _ = w.WriteString(head)
			_, _ = w.WriteString(pad[:filetailLineBytes-1-len(head)])
			_ = w.WriteByte('\n')
		}
		if err := w.Flush(); err != nil {
			return err
		}
		if err := fh.Close(); err != nil {
			return err
		}
	}
	return nil
}

// filetailPlugin finds the filetail plugin process under the worker.
func filetailPlugin(ctx context.Context, env *connectorEnv) (int, error) {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		for _, c := range children(env.WorkerPID) {
			if c.name == "filetail" {
				return c.pid, nil
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	return 0, fmt.Errorf("no filetail plugin process under worker %d", env.WorkerPID)
}

// filetailWait waits until topic holds n records, failing after a stall.
func filetailWait(ctx context.Context, adm *kadm.Client, topic string, n int64, start time.Time) error {
	last, lastMove := int64(-1), time.Now()
	for {
		ends, err := adm.ListEndOffsets(ctx, topic)
		var got int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { got += o.Offset })
		}
		if got >= n {
			return nil
		}
		if got != last {
			last, lastMove = got, time.Now()
		}
		if time.Since(lastMove) > 30*time.Second {
			return fmt.Errorf("stalled at %d of %d lines after %.0fs", got, n, time.Since(start).Seconds())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func filetailDelete(env *connectorEnv, name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := env.REST.delete(ctx, name); err != nil {
		env.Logf("deleting %s: %v", name, err)
	}
	for ctx.Err() == nil {
		gone := true
		for _, c := range children(env.WorkerPID) {
			gone = gone && c.name != "filetail"
		}
		if gone {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}
