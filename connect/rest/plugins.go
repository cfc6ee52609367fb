package rest

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/sluice-io/sluice/connect/api"
)

func (h *Handler) serverInfo(ctx context.Context, _ *request) (response, error) {
	info, err := h.herder.ServerInfo(ctx)
	return ok(info), err
}

// health answers 200 when the herder answers its health check in time; past
// HealthTimeout, 503 "starting" while the worker is not ready, else 500
// "unhealthy". Each carries a WorkerStatus body.
func (h *Handler) health(ctx context.Context, _ *request) (response, error) {
	hctx, cancel := context.WithTimeout(ctx, h.cfg.HealthTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.herder.HealthCheck(hctx) }()
	var err error
	select {
	case err = <-done:
	case <-hctx.Done():
		err = hctx.Err()
	}
	switch {
	case err == nil:
		return ok(api.HealthHealthy), nil
	case !errors.Is(err, context.DeadlineExceeded):
		return response{}, err
	case !h.herder.Ready():
		return response{status: http.StatusServiceUnavailable, body: api.HealthStarting("")}, nil
	default:
		return response{status: http.StatusInternalServerError, body: api.HealthUnhealthy("")}, nil
	}
}

// listPlugins lists connector plugins, or every plugin with
// ?connectorsOnly=false.
func (h *Handler) listPlugins(ctx context.Context, req *request) (response, error) {
	ps, err := h.herder.Plugins(ctx, boolParam(req, "connectorsOnly", true))
	if ps == nil {
		ps = []api.PluginInfo{}
	}
	return ok(ps), err
}

func (h *Handler) pluginConfig(ctx context.Context, req *request) (response, error) {
	keys, err := h.herder.PluginConfig(ctx, req.params[0])
	if keys == nil {
		keys = []api.ConfigKeyInfo{}
	}
	return ok(keys), err
}

// validateConfig answers 200 with the validation result, errors included.
// A connector.class that names another plugin than the path is a 400.
func (h *Handler) validateConfig(ctx context.Context, req *request) (response, error) {
	plugin := req.params[0]
	var cfg api.ConfigMap
	if err := decode(req.body, &cfg); err != nil {
		return response{}, err
	}
	if cfg == nil {
		cfg = api.ConfigMap{}
	}
	if class, has := cfg["connector.class"]; has && !pluginMatches(class, plugin) {
		return response{}, api.BadRequest("Included connector type %s does not match request type %s", class, plugin)
	}
	infos, err := h.herder.ValidateConfig(ctx, map[string]string(cfg))
	return ok(infos), err
}

// pluginMatches reports whether a connector.class names the plugin in the
// path. Both may be a full class name or an alias, and an alias may drop
// the "Connector" suffix: FileStreamSink and
// org.apache.kafka.connect.file.FileStreamSinkConnector match.
func pluginMatches(class, plugin string) bool {
	return strings.HasSuffix(trimConnectorSuffix(class), trimConnectorSuffix(plugin))
}

func trimConnectorSuffix(s string) string {
	const suffix = "Connector"
	if len(s) > len(suffix) && strings.HasSuffix(s, suffix) {
		return s[:len(s)-len(suffix)]
	}
	return s
}

func (h *Handler) listLoggers(ctx context.Context, _ *request) (response, error) {
	ls, err := h.herder.Loggers(ctx)
	if ls == nil {
		ls = map[string]api.LoggerLevel{}
	}
	return ok(ls), err
}

func (h *Handler) getLogger(ctx context.Context, req *request) (response, error) {
	name := req.params[0]
	l, err := h.herder.Logger(ctx, name)
	if err != nil {
		return response{}, err
	}
	if l == nil {
		return response{}, api.NotFound("Logger %s not found.", name)
	}
	return ok(l), nil
}

// logLevels are the level names Kafka's logging backend accepts.
var logLevels = map[string]bool{
	"OFF": true, "FATAL": true, "ERROR": true, "WARN": true,
	"INFO": true, "DEBUG": true, "TRACE": true, "ALL": true,
}

// setLogger sets a level: 200 with the changed loggers for scope=worker
// (the default, also for unknown scopes), 204 for scope=cluster.
func (h *Handler) setLogger(ctx context.Context, req *request) (response, error) {
	name := req.params[0]
	var body map[string]any
	if err := decode(req.body, &body); err != nil {
		return response{}, err
	}
	raw, has := body["level"]
	level, isString := raw.(string)
	if !has || raw == nil {
		return response{}, api.BadRequest("Desired 'level' parameter was not specified in request.")
	}
	if !isString || !logLevels[strings.ToUpper(level)] {
		return response{}, api.NotFound("invalid log level '%v'.", raw)
	}
	scope := api.ScopeWorker
	if v := req.query.Get("scope"); strings.EqualFold(v, string(api.ScopeCluster)) {
		scope = api.ScopeCluster
	} else if v != "" && !strings.EqualFold(v, string(api.ScopeWorker)) {
		h.log.Warn("unknown logger scope; using worker", "scope", v)
	}
	changed, err := h.herder.SetLoggerLevel(ctx, name, strings.ToUpper(level), scope)
	if err != nil {
		return response{}, err
	}
	if scope == api.ScopeCluster {
		return response{status: http.StatusNoContent}, nil
	}
	if changed == nil {
		changed = []string{}
	}
	return ok(changed), nil
}
