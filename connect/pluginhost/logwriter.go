package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"
)

// logWriter turns a plugin's stderr into the host's log: one record per
// line, tagged with the plugin and connector (the SDK adds the task).
// JSON lines in hclog's shape ({"@level","@message",...}) keep their level
// and fields; anything else is logged as is at INFO. The last lines are
// kept so a failure's reason can show them (go-plugin#164: a broken start
// is otherwise unexplained).
type logWriter struct {
	log *slog.Logger

	mu    sync.Mutex
	buf   []byte
	tail  []string
	panic string // a Go panic's first line: the stack after it says less
	pid   int
}

const tailLines = 8

func newLogWriter(log *slog.Logger) *logWriter { return &logWriter{log: log} }

func (w *logWriter) setPID(pid int) {
	w.mu.Lock()
	w.pid = pid
	w.mu.Unlock()
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		line := string(bytes.TrimRight(w.buf[:i], "\r"))
		w.buf = w.buf[i+1:]
		if line != "" {
			w.emit(line)
		}
	}
	if len(w.buf) > 64<<10 { // a runaway line without newline
		w.emit(string(w.buf))
		w.buf = w.buf[:0]
	}
	return len(p), nil
}

func (w *logWriter) emit(line string) {
	w.tail = append(w.tail, line)
	if len(w.tail) > tailLines {
		w.tail = w.tail[1:]
	}
	if w.panic == "" && (strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ")) {
		w.panic = line
	}
	level, msg, attrs := parseLine(line)
	if w.pid != 0 {
		attrs = append(attrs, slog.Int("pid", w.pid))
	}
	w.log.LogAttrs(context.Background(), level, msg, attrs...)
}

func parseLine(line string) (slog.Level, string, []slog.Attr) {
	if strings.HasPrefix(line, "{") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			if msg, ok := m["@message"].(string); ok {
				lvl, _ := m["@level"].(string)
				delete(m, "@message")
				delete(m, "@level")
				delete(m, "@timestamp")
				delete(m, "@module")
				delete(m, "connector") // the host's tag is the authority
				keys := make([]string, 0, len(m))
				for k := range m {
					keys = append(keys, k)
				}
				// The task first, right after the connector, then the rest
				// in a stable order.
				sort.Slice(keys, func(i, j int) bool {
					if (keys[i] == "task") != (keys[j] == "task") {
						return keys[i] == "task"
					}
					return keys[i] < keys[j]
				})
				attrs := make([]slog.Attr, 0, len(m))
				for _, k := range keys {
					attrs = append(attrs, slog.Any(k, m[k]))
				}
				return levelOf(lvl), msg, attrs
			}
		}
	}
	if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		return slog.LevelError, line, []slog.Attr{slog.String("stream", "stderr")}
	}
	return slog.LevelInfo, line, []slog.Attr{slog.String("stream", "stderr")}
}

func levelOf(s string) slog.Level {
	switch strings.ToLower(s) {
	case "trace", "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// tailNote is the last stderr lines, for an error message.
func (w *logWriter) tailNote() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	note := ""
	if w.panic != "" {
		note = "; " + w.panic
	}
	if len(w.tail) > 0 {
		note += fmt.Sprintf("; last stderr: %s", strings.Join(w.tail, " | "))
	}
	return note
}
