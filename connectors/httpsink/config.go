package main

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sluice-io/sluice/connect/sdk"
)

// Config keys follow Confluent's HTTP Sink connector where it has one
// (http.api.url, request.method, headers, header.separator,
// batch.max.size, batch.json.as.array, request.body.format, max.retries,
// retry.backoff.ms, auth.type, connection.user, connection.password,
// http.connect.timeout.ms, http.request.timeout.ms), so an existing
// config posts unchanged; the rest have plain names of our own.

const (
	class        = "sluice.connect.HttpSink"
	confluentCls = "io.confluent.connect.http.HttpSinkConnector"
	version      = "1.0.0"
)

// Body formats.
const (
	formatJSON   = "json"   // a JSON array of the batch's values (or one value, see batch.json.as.array)
	formatNDJSON = "ndjson" // one JSON value per line
	formatRaw    = "raw"    // one record per request, the value's bytes as they are
)

func strptr(s string) *string { return &s }

func configKeys() []sdk.ConfigKey {
	k := func(name, typ, def, imp, doc string) sdk.ConfigKey {
		return sdk.ConfigKey{Name: name, Type: typ, Default: strptr(def), Importance: imp, Documentation: doc}
	}
	return []sdk.ConfigKey{
		{Name: "http.api.url", Type: "STRING", Required: true, Importance: "HIGH",
			Documentation: "The URL records are sent to (http or https)."},
		k("request.method", "STRING", "POST", "HIGH", "POST, PUT or PATCH."),
		k("request.body.format", "STRING", formatJSON, "HIGH",
			"json (a JSON array of values, or one value per request when batch.json.as.array=false), ndjson (one JSON value per line) or raw (one record per request, the value as it is; also accepted as string)."),
		k("batch.json.as.array", "BOOLEAN", "true", "MEDIUM", "With request.body.format=json, send the batch as a JSON array; false sends one record per request."),
		k("batch.max.size", "INT", "500", "MEDIUM", "Most records in one request."),
		k("batch.max.bytes", "INT", "1048576", "MEDIUM", "Most bytes of encoded records in one request (a larger single record is sent alone)."),
		k("linger.ms", "LONG", "0", "MEDIUM",
			"How long a partial batch waits for more records. 0 sends every Put's records before Put returns, which keeps rejected records reportable to the dead letter queue."),
		k("headers", "STRING", "", "MEDIUM", "Extra request headers, Name:Value pairs separated by header.separator."),
		k("header.separator", "STRING", "|", "LOW", "The separator between the pairs in headers."),
		k("idempotency.key.header", "STRING", "Idempotency-Key", "MEDIUM",
			"The header carrying <connector>-<topic>-<partition>-<first offset>-<last offset>, the same on every retry of a batch; empty to send none."),
		k("max.retries", "INT", "10", "MEDIUM", "Retries of a batch after network errors, 408, 429 and 5xx before the task fails; -1 retries forever."),
		k("retry.backoff.ms", "LONG", "100", "MEDIUM", "The first retry's backoff; it doubles on each retry (with jitter) up to retry.backoff.max.ms. A Retry-After answer overrides it."),
		k("retry.backoff.max.ms", "LONG", "10000", "LOW", "The longest backoff between retries."),
		k("http.connect.timeout.ms", "INT", "30000", "LOW", "Timeout for connecting."),
		k("http.request.timeout.ms", "INT", "30000", "LOW", "Timeout for one request, answer included."),
		k("auth.type", "STRING", "none", "MEDIUM", "none, basic (connection.user and connection.password) or bearer (bearer.token)."),
		k("connection.user", "STRING", "", "MEDIUM", "The user for basic authentication."),
		{Name: "connection.password", Type: "PASSWORD", Default: strptr(""), Importance: "MEDIUM", Documentation: "The password for basic authentication."},
		{Name: "bearer.token", Type: "PASSWORD", Default: strptr(""), Importance: "MEDIUM", Documentation: "The token for bearer authentication."},
	}
}

// config is a parsed connector config.
type config struct {
	url            string
	method         string
	format         string
	singleJSON     bool // json format, batch.json.as.array=false
	limits         batchLimits
	headers        [][2]string
	keyHeader      string
	retry          retryPolicy
	connectTimeout time.Duration
	requestTimeout time.Duration
	authType       string
	user, password string
	token          string
	tolerateAll    bool // errors.tolerance=all
}

// parseConfig reads a config, returning every problem by key.
func parseConfig(m map[string]string) (*config, map[string]string) {
	errs := map[string]string{}
	get := func(k, def string) string {
		if v, ok := m[k]; ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	num := func(k string, def, lo int64) int64 {
		v := get(k, strconv.FormatInt(def, 10))
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || n < lo {
			errs[k] = fmt.Sprintf("Invalid value %s for configuration %s: must be an integer of at least %d", v, k, lo)
			return def
		}
		return n
	}
	ms := func(k string, def, lo int64) time.Duration { return time.Duration(num(k, def, lo)) * time.Millisecond }
	c := &config{
		url:            get("http.api.url", ""),
		method:         strings.ToUpper(get("request.method", "POST")),
		format:         strings.ToLower(get("request.body.format", formatJSON)),
		keyHeader:      get("idempotency.key.header", "Idempotency-Key"),
		connectTimeout: ms("http.connect.timeout.ms", 30000, 1),
		requestTimeout: ms("http.request.timeout.ms", 30000, 1),
		authType:       strings.ToLower(get("auth.type", "none")),
		user:           m["connection.user"],
		password:       m["connection.password"],
		token:          m["bearer.token"],
		tolerateAll:    get("errors.tolerance", "none") == "all",
	}
	if v, ok := m["idempotency.key.header"]; ok && strings.TrimSpace(v) == "" {
		c.keyHeader = ""
	}
	c.limits = batchLimits{
		maxRecords: int(num("batch.max.size", 500, 1)),
		maxBytes:   int(num("batch.max.bytes", 1<<20, 1)),
		linger:     ms("linger.ms", 0, 0),
	}
	c.retry = retryPolicy{
		base:       ms("retry.backoff.ms", 100, 1),
		max:        ms("retry.backoff.max.ms", 10000, 1),
		maxRetries: int(num("max.retries", 10, -1)),
	}
	if u, err := url.Parse(c.url); c.url == "" {
		errs["http.api.url"] = "Missing required configuration \"http.api.url\" which has no default value."
	} else if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs["http.api.url"] = fmt.Sprintf("Invalid value %s for configuration http.api.url: must be an http or https URL", c.url)
	}
	switch c.method {
	case "POST", "PUT", "PATCH":
	default:
		errs["request.method"] = fmt.Sprintf("Invalid value %s for configuration request.method: must be POST, PUT or PATCH", c.method)
	}
	switch c.format {
	case formatJSON:
		if b := strings.ToLower(get("batch.json.as.array", "true")); b == "false" {
			c.limits.maxRecords, c.singleJSON = 1, true
		} else if b != "true" {
			errs["batch.json.as.array"] = fmt.Sprintf("Invalid value %s for configuration batch.json.as.array: must be true or false", b)
		}
	case formatNDJSON:
	case formatRaw, "string":
		c.format, c.limits.maxRecords = formatRaw, 1
	default:
		errs["request.body.format"] = fmt.Sprintf("Invalid value %s for configuration request.body.format: must be json, ndjson or raw", c.format)
	}
	sep := get("header.separator", "|")
	if hs := get("headers", ""); hs != "" {
		for _, pair := range strings.Split(hs, sep) {
			name, value, ok := strings.Cut(pair, ":")
			name = strings.TrimSpace(name)
			if !ok || name == "" {
				errs["headers"] = fmt.Sprintf("Invalid header %q in configuration headers: want Name:Value pairs separated by %q", pair, sep)
				break
			}
			c.headers = append(c.headers, [2]string{name, strings.TrimSpace(value)})
		}
	}
	switch c.authType {
	case "none":
	case "basic":
		if c.user == "" {
			errs["connection.user"] = "auth.type=basic needs connection.user"
		}
	case "bearer":
		if c.token == "" {
			errs["bearer.token"] = "auth.type=bearer needs bearer.token"
		}
	default:
		errs["auth.type"] = fmt.Sprintf("Invalid value %s for configuration auth.type: must be none, basic or bearer", c.authType)
	}
	return c, errs
}

type connector struct{}

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{Type: sdk.Sink, Class: class, Aliases: []string{"HttpSink", confluentCls}, Version: version, Config: configKeys()}
}

// Validate reports each bad key with a message saying what it must be.
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

// TaskConfigs gives every task the same config; the worker splits the
// topics' partitions between them.
func (connector) TaskConfigs(_ context.Context, m map[string]string, maxTasks int) ([]map[string]string, error) {
	return sdk.SameTaskConfigs(m, maxTasks), nil
}

// AlterOffsets accepts any change: the group's offsets are the sink's only
// record of progress.
func (connector) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return true, nil
}

func (connector) NewTask() sdk.SinkTask { return &task{} }
