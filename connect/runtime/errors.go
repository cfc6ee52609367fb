package runtime

import (
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/data"
)

// errorPolicy is a connector's errors.* settings (Kafka's
// ConnectorConfig): fail fast by default, or skip bad records and go on.
type errorPolicy struct {
	tolerateAll     bool   // errors.tolerance=all
	log             bool   // errors.log.enable
	includeMessages bool   // errors.log.include.messages
	dlqTopic        string // sink only: errors.deadletterqueue.topic.name
	dlqHeaders      bool   // errors.deadletterqueue.context.headers.enable
	dlqRF           int16  // errors.deadletterqueue.topic.replication.factor
	retry           retrier
}

func parseErrorPolicy(cfg map[string]string) (errorPolicy, error) {
	var p errorPolicy
	switch t := strings.ToLower(strings.TrimSpace(cfg["errors.tolerance"])); t {
	case "", "none":
	case "all":
		p.tolerateAll = true
	default:
		return p, fmt.Errorf("errors.tolerance=%q: want none or all", t)
	}
	var err error
	if p.log, err = boolSetting(cfg, "errors.log.enable", false); err != nil {
		return p, err
	}
	if p.includeMessages, err = boolSetting(cfg, "errors.log.include.messages", false); err != nil {
		return p, err
	}
	if p.dlqHeaders, err = boolSetting(cfg, "errors.deadletterqueue.context.headers.enable", false); err != nil {
		return p, err
	}
	p.dlqTopic = strings.TrimSpace(cfg["errors.deadletterqueue.topic.name"])
	p.dlqRF = 3
	if v := strings.TrimSpace(cfg["errors.deadletterqueue.topic.replication.factor"]); v != "" {
		n, err := strconv.ParseInt(v, 10, 16)
		if err != nil {
			return p, fmt.Errorf("errors.deadletterqueue.topic.replication.factor=%q: not an integer", v)
		}
		p.dlqRF = int16(n)
	}
	timeout, err := msSetting(cfg, "errors.retry.timeout", 0, -1)
	if err != nil {
		return p, err
	}
	maxDelay, err := msSetting(cfg, "errors.retry.delay.max.ms", 60000, 0)
	if err != nil {
		return p, err
	}
	p.retry = newRetrier(timeout, maxDelay)
	return p, nil
}

// msSetting reads a millisecond setting of at least least (-1 meaning
// forever where allowed).
func msSetting(cfg map[string]string, key string, def, least int64) (time.Duration, error) {
	v := strings.TrimSpace(cfg[key])
	n := def
	if v != "" {
		var err error
		if n, err = strconv.ParseInt(v, 10, 64); err != nil {
			return 0, fmt.Errorf("%s=%q: not an integer", key, v)
		}
	}
	if n < least {
		return 0, fmt.Errorf("%s=%d: must be at least %d", key, n, least)
	}
	if n < 0 {
		return -1, nil
	}
	return time.Duration(n) * time.Millisecond, nil
}

func boolSetting(cfg map[string]string, key string, def bool) (bool, error) {
	v := strings.TrimSpace(cfg[key])
	if v == "" {
		return def, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("%s=%q: want true or false", key, v)
	}
	return b, nil
}

// tolerate decides one failure: nil when errors are tolerated (the record
// is skipped, and logged when errors.log.enable is set), else the error
// that fails the task, saying which stage failed.
func (p errorPolicy) tolerate(logger *slog.Logger, stage string, err error, r *data.Record) error {
	if !p.tolerateAll {
		return fmt.Errorf("%s: %w (errors.tolerance=none)", stage, err)
	}
	if p.log {
		attrs := []any{"stage", stage, "err", err}
		if r != nil {
			attrs = append(attrs, "topic", r.Topic)
			if p.includeMessages {
				attrs = append(attrs, "key", fmt.Sprint(r.Key), "value", fmt.Sprint(r.Value))
			}
		}
		logger.Error("skipping a record (errors.tolerance=all)", attrs...)
	}
	return nil
}
