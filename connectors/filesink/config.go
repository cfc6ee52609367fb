package main

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/sdk"
)

// Config keys: flush.size and rotate.interval.ms are the names of
// Confluent's HDFS and S3 sinks, which commit files the same way; the
// rest are plain names of our own.

const (
	class   = "sluice.connect.FileSink"
	version = "1.0.0"
)

func strptr(s string) *string { return &s }

func configKeys() []sdk.ConfigKey {
	k := func(name, typ, def, imp, doc string) sdk.ConfigKey {
		return sdk.ConfigKey{Name: name, Type: typ, Default: strptr(def), Importance: imp, Documentation: doc}
	}
	return []sdk.ConfigKey{
		{Name: "directory", Type: "STRING", Required: true, Importance: "HIGH",
			Documentation: "The directory files are written to, as <topic>-<partition>-<first offset>-<last offset>.<txt|json|ndjson> once committed."},
		k("format", "STRING", formatNDJSON, "HIGH",
			"raw (each value's text as a line), ndjson (one JSON object per line) or json (each file one JSON array of objects)."),
		k("record.fields", "LIST", "key,headers,timestamp", "MEDIUM",
			"What json and ndjson objects carry besides value: any of topic, partition, offset, timestamp, key, headers."),
		k("flush.size", "LONG", "0", "MEDIUM", "Commit a file once it holds this many records (0: no limit)."),
		k("rotate.size.bytes", "LONG", "67108864", "MEDIUM", "Commit a file once it holds this many bytes (0: no limit)."),
		k("rotate.interval.ms", "LONG", "0", "MEDIUM",
			"Commit a file once it has been open this long (0: no limit). Files are committed at every offset commit too."),
	}
}

type config struct {
	dir    string
	format string
	fields []string
	rotate rotation
}

func parseConfig(m map[string]string) (*config, map[string]string) {
	errs := map[string]string{}
	get := func(k, def string) string {
		if v, ok := m[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	num := func(k string, def int64) int64 {
		v := get(k, strconv.FormatInt(def, 10))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < 0 {
			errs[k] = fmt.Sprintf("Invalid value %s for configuration %s: must be a non-negative integer", v, k)
			return def
		}
		return n
	}
	c := &config{dir: get("directory", ""), format: strings.ToLower(get("format", formatNDJSON))}
	c.rotate = rotation{
		maxRecords: num("flush.size", 0),
		maxBytes:   num("rotate.size.bytes", 64<<20),
		interval:   time.Duration(num("rotate.interval.ms", 0)) * time.Millisecond,
	}
	if c.dir == "" {
		errs["directory"] = "Missing required configuration \"directory\" which has no default value."
	} else if !filepath.IsAbs(c.dir) {
		errs["directory"] = fmt.Sprintf("Invalid value %s for configuration directory: must be an absolute path", c.dir)
	}
	if _, ok := extensions[c.format]; !ok {
		errs["format"] = fmt.Sprintf("Invalid value %s for configuration format: must be raw, json or ndjson", c.format)
	}
	for _, f := range strings.Split(get("record.fields", "key,headers,timestamp"), ",") {
		f = strings.ToLower(strings.TrimSpace(f))
		if f == "" || f == "none" {
			continue
		}
		if !slices.Contains(allFields, f) {
			errs["record.fields"] = fmt.Sprintf("Invalid field %s in configuration record.fields: must be among %s", f, strings.Join(allFields, ", "))
			continue
		}
		c.fields = append(c.fields, f)
	}
	return c, errs
}

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{Type: sdk.Sink, Class: class, Aliases: []string{"FileSink"}, Version: version, Config: configKeys()}
}

func (c connector) Validate(_ context.Context, m map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), m)
	_, errs := parseConfig(m)
	for i := range out {
		if e, ok := errs[out[i].Name]; ok && len(out[i].Errors) == 0 {
			out[i].Errors = append(out[i].Errors, e)
		}
	}
	return out, nil
}

// TaskConfigs gives every task the same config: tasks own different
// partitions, and a partition's files are named for it.
func (connector) TaskConfigs(_ context.Context, m map[string]string, maxTasks int) ([]map[string]string, error) {
	return sdk.SameTaskConfigs(m, maxTasks), nil
}

// AlterOffsets refuses: the files' names are the sink's offsets, and Open
// resumes from them whatever the group says. Delete or move files to
// replay.
func (connector) AlterOffsets(_ context.Context, m map[string]string, _ sdk.Offsets) (bool, error) {
	return false, fmt.Errorf("the file sink keeps its offsets in its file names in %s: remove files there to replay records", m["directory"])
}

func (connector) NewTask() sdk.SinkTask { return &task{} }
