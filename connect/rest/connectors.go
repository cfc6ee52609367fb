package rest

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/sluice-io/sluice/connect/api"
)

// routes registers every route of Kafka Connect's public REST API.
func (h *Handler) routes() {
	rt := &h.router
	rt.add(http.MethodGet, "/", h.serverInfo)
	rt.add(http.MethodGet, "/health", h.health).health = true

	rt.add(http.MethodGet, "/connectors", h.listConnectors)
	rt.add(http.MethodPost, "/connectors", h.createConnector)
	rt.add(http.MethodGet, "/connectors/{c}", h.getConnector)
	rt.add(http.MethodDelete, "/connectors/{c}", h.deleteConnector)
	rt.add(http.MethodGet, "/connectors/{c}/config", h.getConfig)
	rt.add(http.MethodPut, "/connectors/{c}/config", h.putConfig)
	rt.add(http.MethodPatch, "/connectors/{c}/config", h.patchConfig)
	rt.add(http.MethodGet, "/connectors/{c}/status", h.getStatus)
	rt.add(http.MethodPost, "/connectors/{c}/restart", h.restartConnector)
	rt.add(http.MethodPut, "/connectors/{c}/pause", h.pauseConnector)
	rt.add(http.MethodPut, "/connectors/{c}/resume", h.resumeConnector)
	rt.add(http.MethodPut, "/connectors/{c}/stop", h.stopConnector)
	rt.add(http.MethodGet, "/connectors/{c}/tasks", h.getTasks)
	rt.add(http.MethodGet, "/connectors/{c}/tasks-config", h.getTasksConfig)
	rt.add(http.MethodGet, "/connectors/{c}/tasks/{t}/status", h.getTaskStatus)
	rt.add(http.MethodPost, "/connectors/{c}/tasks/{t}/restart", h.restartTask)
	rt.add(http.MethodGet, "/connectors/{c}/topics", h.getTopics)
	rt.add(http.MethodPut, "/connectors/{c}/topics/reset", h.resetTopics)
	rt.add(http.MethodGet, "/connectors/{c}/offsets", h.getOffsets)
	rt.add(http.MethodPatch, "/connectors/{c}/offsets", h.alterOffsets)
	rt.add(http.MethodDelete, "/connectors/{c}/offsets", h.resetOffsets)

	rt.add(http.MethodGet, "/connector-plugins", h.listPlugins)
	rt.add(http.MethodGet, "/connector-plugins/{p}/config", h.pluginConfig)
	rt.add(http.MethodPut, "/connector-plugins/{p}/config/validate", h.validateConfig)

	rt.add(http.MethodGet, "/admin/loggers", h.listLoggers)
	rt.add(http.MethodGet, "/admin/loggers/{l}", h.getLogger)
	rt.add(http.MethodPut, "/admin/loggers/{l}", h.setLogger)
}

// listConnectors answers the names, or with ?expand= a map of the asked
// expansions per connector. Unknown expansions are ignored, and connectors
// deleted while the map is built are left out.
func (h *Handler) listConnectors(ctx context.Context, req *request) (response, error) {
	names, err := h.herder.Connectors(ctx)
	if err != nil {
		return response{}, err
	}
	expand, has := req.query["expand"]
	if !has {
		if names == nil {
			names = []string{}
		}
		return ok(names), nil
	}
	out := make(map[string]api.ConnectorExpansion, len(names))
next:
	for _, name := range names {
		var x api.ConnectorExpansion
		for _, e := range expand {
			switch e {
			case "status":
				x.Status, err = h.herder.ConnectorStatus(ctx, name)
			case "info":
				x.Info, err = h.herder.ConnectorInfo(ctx, name)
			default:
				continue
			}
			if isNotFound(err) {
				continue next
			}
			if err != nil {
				return response{}, err
			}
		}
		out[name] = x
	}
	return ok(out), nil
}

func isNotFound(err error) bool {
	return err != nil && api.AsError(err).Code == http.StatusNotFound
}

// createConnector answers 201 with the new connector and its Location. The
// name is trimmed; a name inside the config must agree with it.
func (h *Handler) createConnector(ctx context.Context, req *request) (response, error) {
	var cr api.CreateConnectorRequest
	if err := decode(req.body, &cr); err != nil {
		return response{}, err
	}
	name := strings.TrimSpace(cr.Name)
	if name == "" {
		return response{}, api.BadRequest("Connector name must not be empty")
	}
	if cr.Config == nil {
		return response{}, api.BadRequest("Connector config for %s must be provided", name)
	}
	config := map[string]string(cr.Config)
	if err := checkName(name, config); err != nil {
		return response{}, err
	}
	info, err := h.herder.CreateConnector(ctx, name, config, cr.InitialState.Target())
	if err != nil {
		return response{}, err
	}
	return response{status: http.StatusCreated, body: info, location: connectorPath(name)}, nil
}

// checkName refuses a config whose "name" differs from the connector's, and
// fills it in when absent.
func checkName(name string, config map[string]string) error {
	if in, ok := config["name"]; ok {
		if in != name {
			return api.BadRequest("Connector name configuration (%s) doesn't match connector name in the URL (%s)", in, name)
		}
		return nil
	}
	config["name"] = name
	return nil
}

func (h *Handler) getConnector(ctx context.Context, req *request) (response, error) {
	info, err := h.herder.ConnectorInfo(ctx, req.params[0])
	return ok(info), err
}

func (h *Handler) deleteConnector(ctx context.Context, req *request) (response, error) {
	return noContent(h.herder.DeleteConnector(ctx, req.params[0]))
}

func (h *Handler) getConfig(ctx context.Context, req *request) (response, error) {
	cfg, err := h.herder.ConnectorConfig(ctx, req.params[0])
	if cfg == nil {
		cfg = map[string]string{}
	}
	return ok(cfg), err
}

// putConfig creates (201 + Location) or replaces (200) a connector's config.
func (h *Handler) putConfig(ctx context.Context, req *request) (response, error) {
	name := req.params[0]
	var cfg api.ConfigMap
	if err := decode(req.body, &cfg); err != nil {
		return response{}, err
	}
	if cfg == nil {
		return response{}, api.BadRequest("Connector config for %s must be provided", name)
	}
	config := map[string]string(cfg)
	if err := checkName(name, config); err != nil {
		return response{}, err
	}
	info, created, err := h.herder.PutConnectorConfig(ctx, name, config)
	if err != nil {
		return response{}, err
	}
	if created {
		return response{status: http.StatusCreated, body: info, location: connectorPath(name)}, nil
	}
	return ok(info), nil
}

func (h *Handler) patchConfig(ctx context.Context, req *request) (response, error) {
	var patch api.ConfigPatch
	if err := decode(req.body, &patch); err != nil {
		return response{}, err
	}
	if patch == nil {
		return response{}, api.BadRequest("Connector config patch for %s must be provided", req.params[0])
	}
	info, err := h.herder.PatchConnectorConfig(ctx, req.params[0], patch)
	return ok(info), err
}

func (h *Handler) getStatus(ctx context.Context, req *request) (response, error) {
	st, err := h.herder.ConnectorStatus(ctx, req.params[0])
	return ok(st), err
}

// restartConnector answers 204 for the legacy connector-only restart and
// 202 with the status (restarting instances shown RESTARTING) otherwise.
func (h *Handler) restartConnector(ctx context.Context, req *request) (response, error) {
	rr := api.RestartRequest{
		Connector:    req.params[0],
		IncludeTasks: boolParam(req, "includeTasks", false),
		OnlyFailed:   boolParam(req, "onlyFailed", false),
	}
	st, err := h.herder.RestartConnector(ctx, rr)
	if err != nil {
		return response{}, err
	}
	if rr.ConnectorOnly() {
		return response{status: http.StatusNoContent}, nil
	}
	res := response{status: http.StatusAccepted}
	if st != nil {
		res.body = st
	}
	return res, nil
}

// boolParam reads a boolean query parameter as Kafka's server does: absent
// is def, "true" in any case is true, anything else false.
func boolParam(req *request, key string, def bool) bool {
	v, ok := req.query[key]
	if !ok || len(v) == 0 {
		return def
	}
	return strings.EqualFold(v[0], "true")
}

func (h *Handler) pauseConnector(ctx context.Context, req *request) (response, error) {
	return accepted(h.herder.PauseConnector(ctx, req.params[0]))
}

func (h *Handler) resumeConnector(ctx context.Context, req *request) (response, error) {
	return accepted(h.herder.ResumeConnector(ctx, req.params[0]))
}

func (h *Handler) stopConnector(ctx context.Context, req *request) (response, error) {
	return noContent(h.herder.StopConnector(ctx, req.params[0]))
}

func noContent(err error) (response, error) {
	return response{status: http.StatusNoContent}, err
}

func accepted(err error) (response, error) {
	return response{status: http.StatusAccepted}, err
}

func (h *Handler) getTasks(ctx context.Context, req *request) (response, error) {
	tasks, err := h.herder.TaskConfigs(ctx, req.params[0])
	if tasks == nil {
		tasks = []api.TaskInfo{}
	}
	return ok(tasks), err
}

func (h *Handler) getTasksConfig(ctx context.Context, req *request) (response, error) {
	m, err := h.herder.TasksConfig(ctx, req.params[0])
	if m == nil {
		m = map[string]map[string]string{}
	}
	return ok(m), err
}

// taskID parses the {t} path parameter. A non-integer matches no route,
// as in Kafka, whose integer path parameter makes the path unknown.
func taskID(req *request) (api.ConnectorTaskID, error) {
	t, err := strconv.Atoi(req.params[1])
	if err != nil {
		return api.ConnectorTaskID{}, api.NotFound("HTTP 404 Not Found")
	}
	return api.ConnectorTaskID{Connector: req.params[0], Task: t}, nil
}

func (h *Handler) getTaskStatus(ctx context.Context, req *request) (response, error) {
	id, err := taskID(req)
	if err != nil {
		return response{}, err
	}
	st, err := h.herder.TaskStatus(ctx, id)
	return ok(st), err
}

func (h *Handler) restartTask(ctx context.Context, req *request) (response, error) {
	id, err := taskID(req)
	if err != nil {
		return response{}, err
	}
	return noContent(h.herder.RestartTask(ctx, id))
}

// getTopics answers {"<connector>":{"topics":[...]}}.
func (h *Handler) getTopics(ctx context.Context, req *request) (response, error) {
	name := req.params[0]
	topics, err := h.herder.ConnectorTopics(ctx, name)
	return ok(map[string]api.ActiveTopics{name: {Topics: topics}}), err
}

func (h *Handler) resetTopics(ctx context.Context, req *request) (response, error) {
	return accepted(h.herder.ResetConnectorTopics(ctx, req.params[0]))
}

func (h *Handler) getOffsets(ctx context.Context, req *request) (response, error) {
	offs, err := h.herder.ConnectorOffsets(ctx, req.params[0])
	if offs == nil {
		offs = &api.ConnectorOffsets{}
	}
	return ok(offs), err
}

func (h *Handler) alterOffsets(ctx context.Context, req *request) (response, error) {
	var offs api.ConnectorOffsets
	if err := decode(req.body, &offs); err != nil {
		return response{}, err
	}
	if len(offs.Offsets) == 0 {
		return response{}, api.BadRequest("Partitions / offsets need to be provided for an alter offsets request")
	}
	msg, err := h.herder.AlterConnectorOffsets(ctx, req.params[0], offs.Offsets)
	return ok(api.Message{Message: msg}), err
}

func (h *Handler) resetOffsets(ctx context.Context, req *request) (response, error) {
	msg, err := h.herder.ResetConnectorOffsets(ctx, req.params[0])
	return ok(api.Message{Message: msg}), err
}
