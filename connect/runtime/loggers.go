package runtime

import (
	"context"
	"log/slog"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/sluice-io/sluice/connect/api"
)

// loggerLevels backs /admin/loggers (KIP-495). Sluice logs through one
// slog handler, so the root logger's level is the one that takes effect;
// levels set on named loggers are kept and reported as Kafka does, so
// tools that set them see their change.
type loggerLevels struct {
	mu     sync.Mutex
	root   *slog.LevelVar
	levels map[string]api.LoggerLevel
}

func newLoggerLevels(root *slog.LevelVar) loggerLevels {
	if root == nil {
		root = new(slog.LevelVar)
	}
	return loggerLevels{root: root, levels: map[string]api.LoggerLevel{}}
}

var log4jLevels = map[string]slog.Level{
	"TRACE": slog.LevelDebug - 4, "DEBUG": slog.LevelDebug, "INFO": slog.LevelInfo,
	"WARN": slog.LevelWarn, "ERROR": slog.LevelError, "FATAL": slog.LevelError + 4, "OFF": slog.LevelError + 8,
}

func log4jName(l slog.Level) string {
	best, name := slog.Level(-100), "INFO"
	for n, v := range log4jLevels {
		if v <= l && v > best {
			best, name = v, n
		}
	}
	return name
}

// Loggers lists the root logger and every logger set explicitly.
func (h *Herder) Loggers(context.Context) (map[string]api.LoggerLevel, error) {
	l := &h.loggers
	l.mu.Lock()
	defer l.mu.Unlock()
	out := map[string]api.LoggerLevel{"root": {Level: log4jName(l.root.Level())}}
	for k, v := range l.levels {
		out[k] = v
	}
	return out, nil
}

// Logger is one logger's level, nil when it was never set.
func (h *Herder) Logger(ctx context.Context, name string) (*api.LoggerLevel, error) {
	all, _ := h.Loggers(ctx)
	if v, ok := all[name]; ok {
		return &v, nil
	}
	return nil, nil
}

// SetLoggerLevel sets a logger's level on this worker. Cluster scope is
// applied here too: Sluice's workers do not yet relay it through the
// config topic.
func (h *Herder) SetLoggerLevel(_ context.Context, name, level string, scope api.LoggerScope) ([]string, error) {
	lv, ok := log4jLevels[strings.ToUpper(level)]
	if !ok {
		return nil, api.BadRequest("Invalid log level '%s'.", level)
	}
	l := &h.loggers
	l.mu.Lock()
	defer l.mu.Unlock()
	now := time.Now().UnixMilli()
	changed := []string{name}
	if name == "root" || name == "" {
		l.root.Set(lv)
		changed = []string{"root"}
		for k := range l.levels {
			changed = append(changed, k)
			l.levels[k] = api.LoggerLevel{Level: strings.ToUpper(level), LastModified: &now}
		}
	} else {
		for k := range l.levels {
			if strings.HasPrefix(k, name+".") {
				changed = append(changed, k)
				l.levels[k] = api.LoggerLevel{Level: strings.ToUpper(level), LastModified: &now}
			}
		}
		l.levels[name] = api.LoggerLevel{Level: strings.ToUpper(level), LastModified: &now}
	}
	sort.Strings(changed)
	if scope == api.ScopeCluster {
		return nil, nil
	}
	return changed, nil
}
