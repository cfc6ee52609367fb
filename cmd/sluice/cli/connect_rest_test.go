package cli

import (
	"context"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/sluice-io/sluice/connect/api"
	"github.com/sluice-io/sluice/connect/rest"
)

// restHerder is the least of a worker that lets the client talk to
// Sluice's own REST server (connect/rest), so that the client and the
// server agree beyond the canned answers of fakeConnect. Routes it does
// not implement panic through the nil embedded interface, which the
// server answers as a 500.
type restHerder struct {
	api.Herder
	mu       sync.Mutex
	configs  map[string]map[string]string
	stopped  map[string]bool
	conflict int // answer this many writes with 409 first
}

func (h *restHerder) info(name string) *api.ConnectorInfo {
	return &api.ConnectorInfo{Name: name, Config: h.configs[name], Tasks: []api.ConnectorTaskID{{Connector: name, Task: 0}}, Type: api.TypeSource}
}

func (h *restHerder) Connectors(context.Context) ([]string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for n := range h.configs {
		out = append(out, n)
	}
	return out, nil
}

func (h *restHerder) ConnectorInfo(_ context.Context, name string) (*api.ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configs[name] == nil {
		return nil, api.ConnectorNotFound(name)
	}
	return h.info(name), nil
}

func (h *restHerder) ConnectorStatus(_ context.Context, name string) (*api.ConnectorStateInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configs[name] == nil {
		return nil, api.ConnectorNotFound(name)
	}
	return &api.ConnectorStateInfo{
		Name:      name,
		Connector: api.ConnectorState{State: api.StateRunning, WorkerID: "127.0.0.1:8083"},
		Tasks:     []api.TaskState{{ID: 0, State: api.StateFailed, WorkerID: "127.0.0.1:8083", Trace: "boom\n\tat here"}},
		Type:      api.TypeSource,
	}, nil
}

func (h *restHerder) CreateConnector(_ context.Context, name string, config map[string]string, _ api.TargetState) (*api.ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.conflict > 0 {
		h.conflict--
		return nil, api.ErrStaleConfig
	}
	if h.configs[name] != nil {
		return nil, api.ConnectorExists(name)
	}
	h.configs[name] = config
	return h.info(name), nil
}

func (h *restHerder) PatchConnectorConfig(_ context.Context, name string, patch api.ConfigPatch) (*api.ConnectorInfo, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configs[name] == nil {
		return nil, api.ConnectorNotFound(name)
	}
	h.configs[name] = patch.Apply(h.configs[name])
	return h.info(name), nil
}

func (h *restHerder) StopConnector(_ context.Context, name string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.configs[name] == nil {
		return api.ConnectorNotFound(name)
	}
	h.stopped[name] = true
	return nil
}

func (h *restHerder) ConnectorOffsets(context.Context, string) (*api.ConnectorOffsets, error) {
	return &api.ConnectorOffsets{Offsets: []api.ConnectorOffset{
		{Partition: map[string]any{"filename": "test.txt"}, Offset: map[string]any{"position": 30}},
	}}, nil
}

func (h *restHerder) ResetConnectorOffsets(_ context.Context, name string) (string, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.stopped[name] {
		return "", api.NotStopped(name)
	}
	return api.MsgOffsetsReset, nil
}

func (h *restHerder) HealthCheck(context.Context) error { return nil }
func (h *restHerder) Ready() bool                       { return true }

// The quickstart's source connector through Sluice's own REST server:
// created from Kafka's .properties file after a 409, shown, patched,
// stopped and its offsets reset.
func TestConnectAgainstSluiceREST(t *testing.T) {
	fastRetries(t)
	h := &restHerder{configs: map[string]map[string]string{}, stopped: map[string]bool{}, conflict: 2}
	srv := httptest.NewServer(rest.NewHandler(h, rest.Config{}))
	defer srv.Close()
	steps := []struct {
		args   []string
		code   int
		stdout string // a line the output must hold
	}{
		{[]string{"create", "-f", "testdata/connect/file-source.properties"}, 0, "local-file-source  created"},
		{[]string{"create", "-f", "testdata/connect/file-source.properties"}, 1, ""},
		{[]string{"list"}, 0, "local-file-source"},
		{[]string{"status", "local-file-source"}, 0, "0          FAILED   127.0.0.1:8083  boom"},
		{[]string{"describe", "local-file-source"}, 0, "topic            connect-test"},
		{[]string{"config", "local-file-source", "--set", "batch.size=100", "--unset", "topic"}, 0, "batch.size       100"},
		{[]string{"offsets", "local-file-source", "--reset"}, 1, ""},
		{[]string{"stop", "local-file-source"}, 0, "local-file-source  stop requested"},
		{[]string{"offsets", "local-file-source"}, 0, `{"filename":"test.txt"}  {"position":30}`},
		{[]string{"offsets", "local-file-source", "--reset"}, 0, api.MsgOffsetsReset},
		{[]string{"health"}, 0, "Status:   healthy"},
		{[]string{"status", "nope"}, 1, ""},
	}
	for _, s := range steps {
		r := runConnectCLI(append(s.args, "--url", srv.URL)...)
		if r.code != s.code || !strings.Contains(r.stdout, s.stdout) {
			t.Errorf("%s: exit %d (want %d), stdout %q (want a line %q), stderr %q", s.args, r.code, s.code, r.stdout, s.stdout, r.stderr)
		}
	}
	if got := h.configs["local-file-source"]; got["batch.size"] != "100" || got["topic"] != "" || got["file"] != "test.txt" {
		t.Errorf("config after the patch: %v", got)
	}
}
