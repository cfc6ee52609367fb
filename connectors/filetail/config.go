package main

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/filetail/tail"
)

// Config keys: Connect's topic, the rest Vector's file source names
// (include, exclude, read_from, max_line_bytes, max_read_bytes,
// fingerprint.*, multiline.*, glob_minimum_cooldown_ms, rotate_wait_secs,
// file_key), with long_lines and record.key, which Vector has no name for.
const (
	class = "sluice.connect.FileTailSource"

	keyTopic        = "topic"
	keyInclude      = "include"
	keyExclude      = "exclude"
	keyReadFrom     = "read_from"
	keyMaxLine      = "max_line_bytes"
	keyLongLines    = "long_lines"
	keyMaxRead      = "max_read_bytes"
	keyFPLines      = "fingerprint.lines"
	keyFPHeader     = "fingerprint.ignored_header_bytes"
	keyMLStart      = "multiline.start_pattern"
	keyMLCondition  = "multiline.condition_pattern"
	keyMLMode       = "multiline.mode"
	keyMLTimeout    = "multiline.timeout_ms"
	keyCooldown     = "glob_minimum_cooldown_ms"
	keyRotateWait   = "rotate_wait_secs"
	keyFileKey      = "file_key"
	keyRecordKey    = "record.key"
	fingerprintPart = "fingerprint"
	positionOffset  = "position"
	pathOffset      = "path"
)

var version = "1.0.0"

// maxEventBytes bounds a multiline event.
const maxEventBytes = 10 << 20

func strptr(s string) *string { return &s }

var configKeys = []sdk.ConfigKey{
	{Name: keyTopic, Type: "STRING", Required: true, Importance: "HIGH", Documentation: "The topic to write the lines to."},
	{Name: keyInclude, Type: "LIST", Required: true, Importance: "HIGH",
		Documentation: "Comma-separated globs of the files to tail (filepath.Match syntax per path element, e.g. /var/log/app/*.log)."},
	{Name: keyExclude, Type: "LIST", Default: strptr(""), Importance: "MEDIUM",
		Documentation: "Globs of files not to tail; a glob without a '/' is matched against the file's base name too (*.gz)."},
	{Name: keyReadFrom, Type: "STRING", Default: strptr("beginning"), Importance: "MEDIUM",
		Documentation: "Where to start files never seen before that exist when the task starts: beginning or end. Files that appear later are always read from the beginning; files with a committed position resume there."},
	{Name: keyMaxLine, Type: "INT", Default: strptr("102400"), Importance: "MEDIUM",
		Documentation: "The longest line, in bytes; longer lines are handled as long_lines says, and counted and logged."},
	{Name: keyLongLines, Type: "STRING", Default: strptr("truncate"), Importance: "LOW",
		Documentation: "What happens to a line longer than max_line_bytes: truncate (keep its first max_line_bytes, drop the rest) or split (several records of at most max_line_bytes each)."},
	{Name: keyMaxRead, Type: "INT", Default: strptr("65536"), Importance: "LOW",
		Documentation: "The bytes read from one file in its turn before the next file's turn, so that a busy file cannot starve the others."},
	{Name: keyFPLines, Type: "INT", Default: strptr("1"), Importance: "LOW",
		Documentation: "How many first lines identify a file (their checksum); a file is read once it has them."},
	{Name: keyFPHeader, Type: "INT", Default: strptr("0"), Importance: "LOW",
		Documentation: "Bytes at the start of each file left out of its identity (a header every file shares)."},
	{Name: keyMLStart, Type: "STRING", Default: strptr(""), Importance: "MEDIUM",
		Documentation: "A regular expression matching the first line of a multiline event; empty means every line is a record. An event is sent once it reaches 10 MiB."},
	{Name: keyMLCondition, Type: "STRING", Default: strptr(""), Importance: "MEDIUM",
		Documentation: "A regular expression deciding, with multiline.mode, whether the next line belongs to the event."},
	{Name: keyMLMode, Type: "STRING", Default: strptr("continue_through"), Importance: "MEDIUM",
		Documentation: "continue_through, continue_past, halt_before or halt_with, as in Vector."},
	{Name: keyMLTimeout, Type: "LONG", Default: strptr("1000"), Importance: "LOW",
		Documentation: "A multiline event waiting this long for its next line is sent as it is."},
	{Name: keyCooldown, Type: "LONG", Default: strptr("1000"), Importance: "LOW",
		Documentation: "The period of the full rescan of the globs, besides file system notifications (which can miss events)."},
	{Name: keyRotateWait, Type: "LONG", Default: strptr("5"), Importance: "LOW",
		Documentation: "How long a file that left the globs (rotated away, deleted) is kept open after it last grew, for writers still holding it."},
	{Name: keyFileKey, Type: "STRING", Default: strptr("file"), Importance: "LOW",
		Documentation: "The header that carries the file's path; empty for none."},
	{Name: keyRecordKey, Type: "STRING", Default: strptr("none"), Importance: "LOW",
		Documentation: "The record key: none, or path (the file's path, so one file's lines share a partition)."},
}

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{Type: sdk.Source, Class: class, Aliases: []string{"FileTailSource", "FileTail"},
		Version: version, AlterOffsets: true, Config: configKeys}
}

// settings is a parsed, checked connector config.
type settings struct {
	topic     string
	engine    tail.Config
	cooldown  time.Duration
	fileKey   string
	keyByPath bool
}

// parse reads cfg with the defaults, returning the errors per key.
func parse(cfg map[string]string) (settings, map[string][]string) {
	get := func(k string) string {
		if v, ok := cfg[k]; ok {
			return strings.TrimSpace(v)
		}
		for _, c := range configKeys {
			if c.Name == k && c.Default != nil {
				return *c.Default
			}
		}
		return ""
	}
	errs := map[string][]string{}
	bad := func(k, format string, a ...any) { errs[k] = append(errs[k], fmt.Sprintf(format, a...)) }
	num := func(k string, least int64) int64 {
		v := get(k)
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < least {
			bad(k, "Invalid value %s for configuration %s: must be an integer of at least %d", v, k, least)
		}
		return n
	}
	re := func(k string) *regexp.Regexp {
		v := get(k)
		if v == "" {
			return nil
		}
		r, err := regexp.Compile(v)
		if err != nil {
			bad(k, "Invalid regular expression %q for configuration %s: %v", v, k, err)
		}
		return r
	}
	var s settings
	s.topic = get(keyTopic)
	if s.topic == "" {
		bad(keyTopic, "Missing required configuration %q which has no default value.", keyTopic)
	} else if strings.Contains(s.topic, ",") {
		bad(keyTopic, "%s must name a single topic", keyTopic)
	}
	s.engine.Include = list(get(keyInclude))
	if len(s.engine.Include) == 0 {
		bad(keyInclude, "Missing required configuration %q which has no default value.", keyInclude)
	}
	s.engine.Exclude = list(get(keyExclude))
	for _, k := range []string{keyInclude, keyExclude} {
		for _, g := range list(get(k)) {
			if _, err := pathMatch(g); err != nil {
				bad(k, "Invalid glob %q: %v", g, err)
			}
		}
	}
	switch v := get(keyReadFrom); v {
	case "beginning":
	case "end":
		s.engine.ReadFromEnd = true
	default:
		bad(keyReadFrom, "Invalid value %s for configuration %s: want beginning or end", v, keyReadFrom)
	}
	s.engine.MaxLineBytes = int(num(keyMaxLine, 1))
	switch v := get(keyLongLines); v {
	case "truncate":
	case "split":
		s.engine.LongLines = tail.Split
	default:
		bad(keyLongLines, "Invalid value %s for configuration %s: want truncate or split", v, keyLongLines)
	}
	s.engine.MaxReadBytes = int(num(keyMaxRead, 1))
	s.engine.FingerprintLines = int(num(keyFPLines, 1))
	s.engine.IgnoredHeader = num(keyFPHeader, 0)
	// An event that never ends is sent once it reaches 10 MiB, as
	// Filebeat's multiline.max_bytes does.
	ml := tail.Multiline{Start: re(keyMLStart), Condition: re(keyMLCondition), MaxBytes: maxEventBytes}
	mode, err := tail.ParseMode(get(keyMLMode))
	if err != nil {
		bad(keyMLMode, "%v", err)
	}
	ml.Mode = mode
	ml.Timeout = time.Duration(num(keyMLTimeout, 0)) * time.Millisecond
	if (ml.Start == nil) != (ml.Condition == nil) && len(errs[keyMLStart])+len(errs[keyMLCondition]) == 0 {
		bad(keyMLStart, "%s and %s go together: set both or neither", keyMLStart, keyMLCondition)
	}
	if ml.Start != nil && ml.Condition != nil {
		s.engine.Multiline = ml
	}
	s.cooldown = time.Duration(num(keyCooldown, 10)) * time.Millisecond
	s.engine.RotateWait = time.Duration(num(keyRotateWait, 0)) * time.Second
	s.fileKey = get(keyFileKey)
	switch v := get(keyRecordKey); v {
	case "none":
	case "path":
		s.keyByPath = true
	default:
		bad(keyRecordKey, "Invalid value %s for configuration %s: want none or path", v, keyRecordKey)
	}
	return s, errs
}

func list(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), cfg)
	_, errs := parse(cfg)
	for i := range out {
		for _, e := range errs[out[i].Name] {
			if len(out[i].Errors) == 0 || out[i].Errors[0] != e {
				out[i].Errors = append(out[i].Errors, e)
			}
		}
	}
	return out, nil
}

// TaskConfigs is one task: reading is cheap next to producing, and one
// task sees every file, so that a rotated file's identity is never split
// between tasks.
func (connector) TaskConfigs(_ context.Context, cfg map[string]string, _ int) ([]map[string]string, error) {
	return []map[string]string{maps.Clone(cfg)}, nil
}

// AlterOffsets accepts {"fingerprint"} -> {"position"} with a
// non-negative position (or a reset).
func (connector) AlterOffsets(_ context.Context, _ map[string]string, offs sdk.Offsets) (bool, error) {
	for _, p := range offs.Source {
		if s, ok := p.Partition[fingerprintPart].(string); !ok || s == "" {
			return false, fmt.Errorf("partition %v has no %q string", p.Partition, fingerprintPart)
		}
		if p.Offset == nil {
			continue
		}
		if n, ok := asInt(p.Offset[positionOffset]); !ok || n < 0 {
			return false, fmt.Errorf("offset %v needs a non-negative integer %q", p.Offset, positionOffset)
		}
	}
	return true, nil
}

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
