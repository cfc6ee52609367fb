package rest

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/api"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the handler's answers")

// goldenCase is one request against a fresh fake herder holding the sink
// connector "local-file-sink" with two tasks (task 1 failed).
type goldenCase struct {
	name   string
	method string
	target string
	body   string
	setup  func(f *fakeHerder)
	cfg    Config
}

func stopped(f *fakeHerder) { f.conns["local-file-sink"].target = api.TargetStopped }

var goldenCases = []goldenCase{
	// Root and health.
	{name: "server_info", method: "GET", target: "/"},
	{name: "health_healthy", method: "GET", target: "/health"},
	{name: "health_starting_503", method: "GET", target: "/health", cfg: Config{HealthTimeout: time.Millisecond},
		setup: func(f *fakeHerder) { f.healthy, f.ready = false, false }},
	{name: "health_unhealthy_500", method: "GET", target: "/health", cfg: Config{HealthTimeout: time.Millisecond},
		setup: func(f *fakeHerder) { f.healthy = false }},

	// Listing.
	{name: "connectors_list", method: "GET", target: "/connectors"},
	{name: "connectors_list_empty", method: "GET", target: "/connectors", setup: func(f *fakeHerder) { f.conns = map[string]*fakeConn{} }},
	{name: "connectors_expand_status_info", method: "GET", target: "/connectors?expand=status&expand=info&expand=bogus"},
	{name: "connectors_expand_unknown_only", method: "GET", target: "/connectors?expand=bogus"},

	// Create.
	{name: "create_201", method: "POST", target: "/connectors",
		body: `{"name":"local-file-source","config":{"connector.class":"FileStreamSource","tasks.max":1,"file":"test.txt","topic":"connect-test"}}`},
	{name: "create_201_trimmed_name_escaped_location", method: "POST", target: "/connectors",
		body: `{"name":"  my source  ","config":{"connector.class":"FileStreamSource"},"initial_state":"paused"}`},
	{name: "create_409_exists", method: "POST", target: "/connectors",
		body: `{"name":"local-file-sink","config":{"connector.class":"FileStreamSink"}}`},
	{name: "create_400_name_mismatch", method: "POST", target: "/connectors",
		body: `{"name":"a","config":{"name":"b","connector.class":"FileStreamSink"}}`},
	{name: "create_400_malformed_json", method: "POST", target: "/connectors", body: `{"name":"a","config":{`},
	{name: "create_400_empty_body", method: "POST", target: "/connectors"},
	{name: "create_400_bad_initial_state", method: "POST", target: "/connectors",
		body: `{"name":"a","config":{},"initial_state":"sleeping"}`},
	{name: "create_400_no_name", method: "POST", target: "/connectors", body: `{"name":"  ","config":{}}`},

	// One connector.
	{name: "connector_info", method: "GET", target: "/connectors/local-file-sink"},
	{name: "connector_404", method: "GET", target: "/connectors/nope"},
	{name: "connector_delete_204", method: "DELETE", target: "/connectors/local-file-sink"},
	{name: "connector_delete_404", method: "DELETE", target: "/connectors/nope"},
	{name: "config_get", method: "GET", target: "/connectors/local-file-sink/config"},
	{name: "config_put_201_created", method: "PUT", target: "/connectors/new-sink/config",
		body: `{"connector.class":"FileStreamSink","topics":"t","file":"/tmp/o.txt"}`},
	{name: "config_put_200_updated", method: "PUT", target: "/connectors/local-file-sink/config",
		body: `{"connector.class":"FileStreamSink","topics":"t2","name":"local-file-sink"}`},
	{name: "config_put_400_name_mismatch", method: "PUT", target: "/connectors/local-file-sink/config",
		body: `{"connector.class":"FileStreamSink","name":"other"}`},
	{name: "config_put_400_not_object", method: "PUT", target: "/connectors/local-file-sink/config", body: `["a"]`},
	{name: "config_patch_200", method: "PATCH", target: "/connectors/local-file-sink/config",
		body: `{"file":null,"topics":"t3","tasks.max":4}`},
	{name: "status", method: "GET", target: "/connectors/local-file-sink/status"},
	{name: "tasks", method: "GET", target: "/connectors/local-file-sink/tasks"},
	{name: "tasks_config", method: "GET", target: "/connectors/local-file-sink/tasks-config"},
	{name: "task_status", method: "GET", target: "/connectors/local-file-sink/tasks/1/status"},
	{name: "task_status_404_unknown_task", method: "GET", target: "/connectors/local-file-sink/tasks/7/status"},
	{name: "task_status_404_not_a_number", method: "GET", target: "/connectors/local-file-sink/tasks/x/status"},
	{name: "task_restart_204", method: "POST", target: "/connectors/local-file-sink/tasks/0/restart"},

	// Restart, pause, resume, stop.
	{name: "restart_204_connector_only", method: "POST", target: "/connectors/local-file-sink/restart"},
	{name: "restart_202_include_tasks", method: "POST", target: "/connectors/local-file-sink/restart?includeTasks=true"},
	{name: "restart_202_only_failed", method: "POST", target: "/connectors/local-file-sink/restart?includeTasks=TRUE&onlyFailed=true"},
	{name: "restart_404", method: "POST", target: "/connectors/nope/restart?includeTasks=true"},
	{name: "pause_202", method: "PUT", target: "/connectors/local-file-sink/pause"},
	{name: "resume_202", method: "PUT", target: "/connectors/local-file-sink/resume"},
	{name: "stop_204", method: "PUT", target: "/connectors/local-file-sink/stop"},

	// Topics.
	{name: "topics", method: "GET", target: "/connectors/local-file-sink/topics"},
	{name: "topics_403_disabled", method: "GET", target: "/connectors/local-file-sink/topics", setup: func(f *fakeHerder) { f.tracking = false }},
	{name: "topics_reset_202", method: "PUT", target: "/connectors/local-file-sink/topics/reset"},

	// Offsets.
	{name: "offsets_get", method: "GET", target: "/connectors/local-file-sink/offsets"},
	{name: "offsets_patch_200", method: "PATCH", target: "/connectors/local-file-sink/offsets", setup: stopped,
		body: `{"offsets":[{"partition":{"kafka_topic":"t","kafka_partition":3},"offset":{"kafka_offset":1000}},{"partition":{"kafka_topic":"t","kafka_partition":4},"offset":null}]}`},
	{name: "offsets_patch_400_empty", method: "PATCH", target: "/connectors/local-file-sink/offsets", setup: stopped, body: `{"offsets":[]}`},
	{name: "offsets_patch_400_not_stopped", method: "PATCH", target: "/connectors/local-file-sink/offsets",
		body: `{"offsets":[{"partition":{"filename":"test.txt"},"offset":{"position":30}}]}`},
	{name: "offsets_delete_200", method: "DELETE", target: "/connectors/local-file-sink/offsets", setup: stopped},

	// Plugins.
	{name: "plugins", method: "GET", target: "/connector-plugins"},
	{name: "plugins_all", method: "GET", target: "/connector-plugins?connectorsOnly=false"},
	{name: "plugin_config", method: "GET", target: "/connector-plugins/FileStreamSink/config"},
	{name: "plugin_config_404", method: "GET", target: "/connector-plugins/Nope/config"},
	{name: "validate_200_with_errors", method: "PUT", target: "/connector-plugins/FileStreamSinkConnector/config/validate",
		body: `{"connector.class":"org.apache.kafka.connect.file.FileStreamSinkConnector","topics":"t"}`},
	{name: "validate_200_alias", method: "PUT", target: "/connector-plugins/FileStreamSink/config/validate",
		body: `{"connector.class":"FileStreamSink","file":"/tmp/<o>&.txt"}`},
	{name: "validate_400_class_mismatch", method: "PUT", target: "/connector-plugins/FileStreamSource/config/validate",
		body: `{"connector.class":"FileStreamSink"}`},

	// Loggers.
	{name: "loggers", method: "GET", target: "/admin/loggers"},
	{name: "logger", method: "GET", target: "/admin/loggers/org.apache.kafka.connect"},
	{name: "logger_404", method: "GET", target: "/admin/loggers/nope"},
	{name: "logger_set_worker_200", method: "PUT", target: "/admin/loggers/org.apache.kafka.connect", body: `{"level":"debug"}`},
	{name: "logger_set_cluster_204", method: "PUT", target: "/admin/loggers/org.apache.kafka.connect?scope=cluster", body: `{"level":"DEBUG"}`},
	{name: "logger_set_400_no_level", method: "PUT", target: "/admin/loggers/x", body: `{"lvl":"DEBUG"}`},
	{name: "logger_set_404_bad_level", method: "PUT", target: "/admin/loggers/x", body: `{"level":"LOUD"}`},

	// Routing and the cluster.
	{name: "route_404", method: "GET", target: "/connectorz"},
	{name: "route_405", method: "POST", target: "/connectors/local-file-sink/config"},
	{name: "timeout_500", method: "GET", target: "/connectors", cfg: Config{RequestTimeout: 20 * time.Millisecond},
		setup: func(f *fakeHerder) { f.block = true }},
	{name: "follower_409_no_leader", method: "PUT", target: "/connectors/local-file-sink/pause",
		setup: func(f *fakeHerder) { f.follower = &api.NotLeaderError{} }},
	{name: "follower_409_hops_exhausted", method: "PUT", target: "/connectors/local-file-sink/pause?forward=false",
		setup: func(f *fakeHerder) { f.follower = &api.NotLeaderError{LeaderURL: "http://127.0.0.1:1"} }},
	{name: "stale_config_409", method: "DELETE", target: "/connectors/local-file-sink",
		setup: func(f *fakeHerder) { f.failWrites = fmt.Errorf("writing the config topic: %w", api.ErrStaleConfig) }},
	{name: "internal_500", method: "PUT", target: "/connectors/local-file-sink/stop",
		setup: func(f *fakeHerder) { f.failWrites = errors.New("config topic unavailable") }},
	{name: "config_put_400_array_value", method: "PUT", target: "/connectors/x/config", body: `{"topics":["a","b"]}`},
	{name: "create_400_config_not_object", method: "POST", target: "/connectors", body: `{"name":"a","config":"x"}`},
	{name: "create_400_trailing_data", method: "POST", target: "/connectors", body: `{"name":"a","config":{}} {}`},
}

// Each golden file shows the request, then the status line, the headers
// clients rely on, a blank line and the body byte for byte.
func TestGolden(t *testing.T) {
	for _, c := range goldenCases {
		t.Run(c.name, func(t *testing.T) {
			f := newFake()
			sink := f.addSink("local-file-sink", 2)
			sink.tasks[1] = api.TaskState{ID: 1, State: api.StateFailed, WorkerID: "10.0.0.2:8083",
				Trace: "org.apache.kafka.connect.errors.ConnectException: disk full\n\tat FileStreamSinkTask.put"}
			sink.offsets = []api.ConnectorOffset{{
				Partition: map[string]any{api.SinkTopicKey: "t", api.SinkPartitionKey: 0},
				Offset:    map[string]any{api.SinkOffsetKey: 42},
			}}
			f.addSink("z-paused", 0).state.State = api.StatePaused
			if c.setup != nil {
				c.setup(f)
			}
			h := NewHandler(f, c.cfg)
			var body *strings.Reader
			if c.body != "" {
				body = strings.NewReader(c.body)
			} else {
				body = strings.NewReader("")
			}
			req := httptest.NewRequest(c.method, c.target, body)
			req.Header.Set("Content-Type", "application/json")
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			got := render(c, rec)
			path := filepath.Join("testdata", c.name+".golden")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run with -update to create)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("answer differs from %s\n--- got\n%s\n--- want\n%s", path, got, want)
			}
		})
	}
}

func render(c goldenCase, rec *httptest.ResponseRecorder) []byte {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s %s\n", c.method, c.target)
	if c.body != "" {
		fmt.Fprintf(&b, "%s\n", c.body)
	}
	fmt.Fprintf(&b, "----\n%d %s\n", rec.Code, http.StatusText(rec.Code))
	for _, k := range []string{"Content-Type", "Location", "Allow"} {
		if v := rec.Header().Get(k); v != "" {
			fmt.Fprintf(&b, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintf(&b, "\n%s", rec.Body.Bytes())
	return b.Bytes()
}
