package cli

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

var updateGolden = flag.Bool("update", false, "rewrite the golden files under testdata/connect")

// answer is what the fake worker says to one request.
type answer struct {
	status int
	body   string
}

// fakeConnect answers as a Kafka Connect worker does, from canned answers
// keyed by "METHOD /path?query", and records every request it gets. A key
// with several answers gives them in turn, the last one from then on.
type fakeConnect struct {
	t       *testing.T
	mu      sync.Mutex
	answers map[string][]answer
	log     []string
}

func (f *fakeConnect) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	key := r.Method + " " + r.URL.RequestURI()
	entry := "> " + key
	if len(body) > 0 {
		if ct := r.Header.Get("Content-Type"); ct != "application/json" {
			f.t.Errorf("%s: Content-Type %q", key, ct)
		}
		entry += "\n  " + canonicalJSON(body)
	}
	if a := r.Header.Get("Accept"); a != "application/json" {
		f.t.Errorf("%s: Accept %q", key, a)
	}
	f.mu.Lock()
	f.log = append(f.log, entry)
	as := f.answers[key]
	a := answer{404, `{"error_code":404,"message":"HTTP 404 Not Found"}`} // Jersey's answer to an unknown route
	if len(as) > 0 {
		a = as[0]
		if len(as) > 1 {
			f.answers[key] = as[1:]
		}
	}
	f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	if a.status != http.StatusNoContent {
		io.WriteString(w, a.body)
	}
}

func startFakeConnect(t *testing.T, answers map[string][]answer) (*fakeConnect, string) {
	t.Helper()
	f := &fakeConnect{t: t, answers: answers}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	return f, srv.URL
}

func runConnectCLI(args ...string) result {
	var stdout, stderr bytes.Buffer
	code := RunConnect(args, &stdout, &stderr)
	return result{code, stdout.String(), stderr.String()}
}

// fastRetries shortens the 409 backoff for the test.
func fastRetries(t *testing.T) {
	t.Helper()
	old := connectBackoff
	connectBackoff = time.Millisecond
	t.Cleanup(func() { connectBackoff = old })
}

// Kafka-shaped answers (entities of ../shared/reference/connect.md §1.2).
const (
	sourceStatus = `{"name":"local-file-source","connector":{"state":"RUNNING","worker_id":"10.0.0.5:8083"},` +
		`"tasks":[{"id":1,"state":"FAILED","worker_id":"10.0.0.6:8083","trace":"org.apache.kafka.connect.errors.ConnectException: java.nio.file.NoSuchFileException: test.txt\n\tat org.apache.kafka.connect.file.FileStreamSourceTask.poll(FileStreamSourceTask.java:107)\n"},` +
		`{"id":0,"state":"RUNNING","worker_id":"10.0.0.5:8083"}],"type":"source"}`
	sourceInfo = `{"name":"local-file-source","config":{"connector.class":"FileStreamSource","tasks.max":"2","file":"test.txt",` +
		`"topic":"connect-test","name":"local-file-source"},"tasks":[{"connector":"local-file-source","task":0},{"connector":"local-file-source","task":1}],"type":"source"}`
	sinkStatus = `{"name":"local-file-sink","connector":{"state":"PAUSED","worker_id":"10.0.0.6:8083"},` +
		`"tasks":[{"id":0,"state":"PAUSED","worker_id":"10.0.0.6:8083"}],"type":"sink"}`
	sinkInfo = `{"name":"local-file-sink","config":{"connector.class":"org.apache.kafka.connect.file.FileStreamSinkConnector","tasks.max":"1",` +
		`"file":"test.sink.txt","topics":"connect-test","name":"local-file-sink"},"tasks":[{"connector":"local-file-sink","task":0}],"type":"sink"}`
	sinkCreated = `{"name":"local-file-sink","config":{"connector.class":"FileStreamSink","tasks.max":"1","file":"test.sink.txt",` +
		`"topics":"connect-test","name":"local-file-sink"},"tasks":[],"type":"sink"}`
	sourceCreated = `{"name":"local-file-source","config":{"connector.class":"FileStreamSource","tasks.max":"1","file":"test.txt",` +
		`"topic":"connect-test","name":"local-file-source"},"tasks":[],"type":"source"}`
	notFound   = `{"error_code":404,"message":"Connector nope not found"}`
	rebalance  = `{"error_code":409,"message":"Cannot complete request momentarily due to stale configuration (typically caused by a concurrent config change)"}`
	notStopped = `{"error_code":400,"message":"Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/local-file-sink/stop' endpoint"}`
)

func ok(body string) []answer               { return []answer{{200, body}} }
func noContent() []answer                   { return []answer{{204, ""}} }
func accepted() []answer                    { return []answer{{202, ""}} }
func status(code int, body string) []answer { return []answer{{code, body}} }

type connectCase struct {
	name    string
	args    []string
	answers map[string][]answer
	code    int
}

var connectCases = []connectCase{
	{"list", []string{"list"}, map[string][]answer{
		"GET /connectors": ok(`["local-file-source","a-sink"]`)}, 0},
	{"list-json", []string{"list", "--json"}, map[string][]answer{
		"GET /connectors": ok(`["local-file-source","a-sink"]`)}, 0},
	{"list-expand", []string{"list", "--expand"}, map[string][]answer{
		"GET /connectors?expand=status&expand=info": ok(`{"local-file-source":{"status":` + sourceStatus + `,"info":` + sourceInfo +
			`},"local-file-sink":{"status":` + sinkStatus + `,"info":` + sinkInfo + `}}`)}, 0},
	{"status", []string{"status", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source/status": ok(sourceStatus)}, 0},
	{"status-json", []string{"status", "--json", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source/status": ok(sourceStatus)}, 0},
	{"status-not-found", []string{"status", "nope"}, map[string][]answer{
		"GET /connectors/nope/status": status(404, notFound)}, 1},
	{"status-escaped-name", []string{"status", "a/b c"}, map[string][]answer{}, 1},
	{"describe", []string{"describe", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source":        ok(sourceInfo),
		"GET /connectors/local-file-source/status": ok(sourceStatus)}, 0},
	{"describe-no-status", []string{"describe", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source": ok(sourceInfo),
		"GET /connectors/local-file-source/status": status(404,
			`{"error_code":404,"message":"No status found for connector local-file-source"}`)}, 0},
	{"describe-json", []string{"describe", "local-file-sink", "--json"}, map[string][]answer{
		"GET /connectors/local-file-sink":        ok(sinkInfo),
		"GET /connectors/local-file-sink/status": ok(sinkStatus)}, 0},
	{"create-properties", []string{"create", "-f", "testdata/connect/file-source.properties"}, map[string][]answer{
		"POST /connectors": status(201, sourceCreated)}, 0},
	{"create-kafka-body", []string{"create", "--file", "testdata/connect/file-sink.json", "--initial-state", "paused"}, map[string][]answer{
		"POST /connectors": status(201, sinkCreated)}, 0},
	{"create-bare-config", []string{"create", "-f", "testdata/connect/bare.json", "--json"}, map[string][]answer{
		"POST /connectors": status(201, sinkCreated)}, 0},
	{"create-exists", []string{"create", "-f", "testdata/connect/file-sink.json"}, map[string][]answer{
		"POST /connectors": status(409, `{"error_code":409,"message":"Connector local-file-sink already exists"}`)}, 1},
	{"create-no-file", []string{"create"}, nil, 2},
	{"config", []string{"config", "local-file-sink"}, map[string][]answer{
		"GET /connectors/local-file-sink/config": ok(`{"connector.class":"FileStreamSink","tasks.max":"1","file":"test.sink.txt","topics":"connect-test","name":"local-file-sink"}`)}, 0},
	{"config-patch", []string{"config", "local-file-sink", "--set", "tasks.max=2", "--set", "errors.tolerance=all", "--unset", "file"}, map[string][]answer{
		"PATCH /connectors/local-file-sink/config": ok(`{"name":"local-file-sink","config":{"connector.class":"FileStreamSink","tasks.max":"2","errors.tolerance":"all","topics":"connect-test","name":"local-file-sink"},"tasks":[{"connector":"local-file-sink","task":0}],"type":"sink"}`)}, 0},
	{"config-patch-old-worker", []string{"config", "local-file-sink", "--set", "tasks.max=2", "--unset", "file"}, map[string][]answer{
		"PATCH /connectors/local-file-sink/config": status(405, `{"error_code":405,"message":"HTTP 405 Method Not Allowed"}`),
		"GET /connectors/local-file-sink/config":   ok(`{"connector.class":"FileStreamSink","tasks.max":"1","file":"test.sink.txt","topics":"connect-test","name":"local-file-sink"}`),
		"PUT /connectors/local-file-sink/config":   ok(`{"name":"local-file-sink","config":{"connector.class":"FileStreamSink","tasks.max":"2","topics":"connect-test","name":"local-file-sink"},"tasks":[{"connector":"local-file-sink","task":0}],"type":"sink"}`)}, 0},
	{"config-set-and-unset", []string{"config", "x", "--set", "a=1", "--unset", "a"}, nil, 2},
	{"pause-some-missing", []string{"pause", "local-file-source", "nope", "local-file-sink"}, map[string][]answer{
		"PUT /connectors/local-file-source/pause": accepted(),
		"PUT /connectors/nope/pause":              status(404, notFound),
		"PUT /connectors/local-file-sink/pause":   accepted()}, 1},
	{"resume", []string{"resume", "local-file-sink"}, map[string][]answer{
		"PUT /connectors/local-file-sink/resume": accepted()}, 0},
	{"stop", []string{"stop", "local-file-sink"}, map[string][]answer{
		"PUT /connectors/local-file-sink/stop": noContent()}, 0},
	{"delete", []string{"delete", "local-file-sink", "--json"}, map[string][]answer{
		"DELETE /connectors/local-file-sink": noContent()}, 0},
	{"restart", []string{"restart", "local-file-source"}, map[string][]answer{
		"POST /connectors/local-file-source/restart": noContent()}, 0},
	{"restart-tasks", []string{"restart", "local-file-source", "--include-tasks", "--only-failed"}, map[string][]answer{
		"POST /connectors/local-file-source/restart?includeTasks=true&onlyFailed=true": status(202,
			`{"name":"local-file-source","connector":{"state":"RUNNING","worker_id":"10.0.0.5:8083"},"tasks":[{"id":0,"state":"RUNNING","worker_id":"10.0.0.5:8083"},{"id":1,"state":"RESTARTING","worker_id":"10.0.0.6:8083"}],"type":"source"}`)}, 0},
	{"restart-tasks-old-worker", []string{"restart", "local-file-source", "--include-tasks"}, map[string][]answer{
		"POST /connectors/local-file-source/restart?includeTasks=true": noContent()}, 1},
	{"restart-task", []string{"restart-task", "local-file-source", "1"}, map[string][]answer{
		"POST /connectors/local-file-source/tasks/1/restart": noContent()}, 0},
	{"restart-task-bad-id", []string{"restart-task", "local-file-source", "one"}, nil, 2},
	{"offsets-sink", []string{"offsets", "local-file-sink"}, map[string][]answer{
		"GET /connectors/local-file-sink/offsets": ok(`{"offsets":[{"partition":{"kafka_topic":"connect-test","kafka_partition":1},"offset":{"kafka_offset":17}},` +
			`{"partition":{"kafka_topic":"connect-test","kafka_partition":0},"offset":{"kafka_offset":1000}}]}`)}, 0},
	{"offsets-source", []string{"offsets", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source/offsets": ok(`{"offsets":[{"partition":{"filename":"test.txt"},"offset":{"position":30}},{"partition":{"filename":"a&b.txt"},"offset":null}]}`)}, 0},
	{"offsets-reset", []string{"offsets", "local-file-sink", "--reset"}, map[string][]answer{
		"DELETE /connectors/local-file-sink/offsets": ok(`{"message":"The offsets for this connector have been reset successfully"}`)}, 0},
	{"offsets-reset-running", []string{"offsets", "local-file-sink", "--reset"}, map[string][]answer{
		"DELETE /connectors/local-file-sink/offsets": status(400, notStopped)}, 1},
	{"offsets-set", []string{"offsets", "local-file-sink", "--set", "testdata/connect/offsets-set.json"}, map[string][]answer{
		"PATCH /connectors/local-file-sink/offsets": ok(`{"message":"The offsets for this connector have been altered successfully"}`)}, 0},
	{"plugins", []string{"plugins"}, map[string][]answer{
		"GET /connector-plugins": ok(`[{"class":"org.apache.kafka.connect.file.FileStreamSinkConnector","type":"sink","version":"3.9.0"},` +
			`{"class":"org.apache.kafka.connect.file.FileStreamSourceConnector","type":"source","version":"3.9.0"}]`)}, 0},
	{"plugins-all", []string{"plugins", "--all"}, map[string][]answer{
		"GET /connector-plugins?connectorsOnly=false": ok(`[{"class":"org.apache.kafka.connect.file.FileStreamSinkConnector","type":"sink","version":"3.9.0"},` +
			`{"class":"org.apache.kafka.connect.transforms.InsertField$Value","type":"transformation","version":"3.9.0"},` +
			`{"class":"org.apache.kafka.connect.json.JsonConverter","type":"converter"}]`)}, 0},
	{"validate-errors", []string{"validate", "-f", "testdata/connect/validate.properties"}, map[string][]answer{
		"PUT /connector-plugins/FileStreamSink/config/validate": ok(`{"name":"org.apache.kafka.connect.file.FileStreamSinkConnector","error_count":2,"groups":["Common"],"configs":[` +
			`{"definition":{"name":"name","type":"STRING","required":true,"default_value":null,"importance":"HIGH","documentation":"Globally unique name","group":"Common","order":1,"width":"MEDIUM","display_name":"Connector name","dependents":[]},"value":{"name":"name","value":null,"recommended_values":[],"errors":["Missing required configuration \"name\" which has no default value."],"visible":true}},` +
			`{"definition":{"name":"tasks.max","type":"INT","required":false,"default_value":"1","importance":"HIGH","documentation":"Maximum number of tasks","group":"Common","order":3,"width":"SHORT","display_name":"Tasks max","dependents":[]},"value":{"name":"tasks.max","value":"one","recommended_values":[],"errors":["Invalid value one for configuration tasks.max: Not a number of type INT"],"visible":true}},` +
			`{"definition":{"name":"topics","type":"LIST","required":false,"default_value":"","importance":"HIGH","documentation":"","group":"Common","order":4,"width":"LONG","display_name":"Topics","dependents":[]},"value":{"name":"topics","value":"","recommended_values":[],"errors":[],"visible":true}}]}`)}, 1},
	{"validate-ok", []string{"validate", "org.apache.kafka.connect.file.FileStreamSourceConnector", "-f", "testdata/connect/file-source.properties"}, map[string][]answer{
		"PUT /connector-plugins/org.apache.kafka.connect.file.FileStreamSourceConnector/config/validate": ok(
			`{"name":"org.apache.kafka.connect.file.FileStreamSourceConnector","error_count":0,"groups":["Common"],"configs":[]}`)}, 0},
	{"health", []string{"health"}, map[string][]answer{
		"GET /health": ok(`{"status":"healthy","message":"Worker has completed startup and is ready to handle requests."}`)}, 0},
	{"health-starting", []string{"health"}, map[string][]answer{
		"GET /health": status(503, `{"status":"starting","message":"Worker is still starting up."}`)}, 1},
	{"health-old-worker", []string{"health", "--json"}, map[string][]answer{
		"GET /": ok(`{"version":"3.8.0","commit":"771b9576b00ecf5b","kafka_cluster_id":"I4ZmrWqfT2e-upky_4fdPA"}`)}, 0},
	{"retry-409", []string{"status", "local-file-source"}, map[string][]answer{
		"GET /connectors/local-file-source/status": {{409, rebalance}, {409, rebalance}, {200, sourceStatus}}}, 0},
	{"retry-409-exhausted", []string{"pause", "local-file-source"}, map[string][]answer{
		"PUT /connectors/local-file-source/pause": status(409, rebalance)}, 1},
	{"not-kafka-error", []string{"list"}, map[string][]answer{
		"GET /connectors": status(502, "<html><body><h1>502 Bad Gateway</h1>\n</body></html>")}, 1},
	{"unknown-verb", []string{"frobnicate"}, nil, 2},
}

// TestConnectCommands runs each case against a fake worker and compares
// the transcript (requests sent, exit code, stdout, stderr) with its
// golden file; -update rewrites them.
func TestConnectCommands(t *testing.T) {
	fastRetries(t)
	for _, tc := range connectCases {
		t.Run(tc.name, func(t *testing.T) {
			answers := make(map[string][]answer)
			for k, v := range tc.answers {
				answers[k] = slices.Clone(v)
			}
			f, url := startFakeConnect(t, answers)
			r := runConnectCLI(append(slices.Clone(tc.args), "--url", url)...)
			if r.code != tc.code {
				t.Errorf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", r.code, tc.code, r.stdout, r.stderr)
			}
			var got strings.Builder
			fmt.Fprintf(&got, "$ sluice connect %s\n", strings.Join(tc.args, " "))
			f.mu.Lock()
			for _, e := range f.log {
				got.WriteString(e + "\n")
			}
			f.mu.Unlock()
			fmt.Fprintf(&got, "exit %d\n--- stdout\n%s--- stderr\n%s", r.code, r.stdout, strings.ReplaceAll(r.stderr, url, "$URL"))
			checkGolden(t, filepath.Join("testdata", "connect", tc.name+".golden"), got.String())
		})
	}
}

func checkGolden(t *testing.T, path, got string) {
	t.Helper()
	if *updateGolden {
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs (-update rewrites it)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

// A worker that answers 409 all along is asked exactly connectAttempts
// times; one that says the name is taken is asked once.
func TestConnectRetriesConflicts(t *testing.T) {
	fastRetries(t)
	f, url := startFakeConnect(t, map[string][]answer{"PUT /connectors/c/stop": status(409, rebalance)})
	r := runConnectCLI("stop", "c", "--url", url)
	if r.code != 1 || len(f.log) != connectAttempts || !strings.Contains(r.stderr, "gave up after 6 attempts") {
		t.Errorf("exit %d after %d requests, stderr %q", r.code, len(f.log), r.stderr)
	}

	f, url = startFakeConnect(t, map[string][]answer{"POST /connectors": status(409, `{"error_code":409,"message":"Connector c already exists"}`)})
	r = runConnectCLI("create", "-f", "testdata/connect/file-sink.json", "--url", url)
	if r.code != 1 || len(f.log) != 1 {
		t.Errorf("exit %d after %d requests", r.code, len(f.log))
	}
}

func TestConnectNothingListening(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	// A bare host:port is taken as http.
	r := runConnectCLI("list", "--url", addr)
	want := "sluice: nothing listens at http://" + addr + ": is a Connect worker running there?"
	if r.code != 1 || !strings.HasPrefix(r.stderr, want) {
		t.Errorf("exit %d, stderr %q, want prefix %q", r.code, r.stderr, want)
	}
}

func TestConnectTimeout(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { <-r.Context().Done() }))
	defer srv.Close()
	start := time.Now()
	r := runConnectCLI("list", "--url", srv.URL, "--timeout", "200ms")
	if r.code != 1 || !strings.Contains(r.stderr, "raise --timeout?") || time.Since(start) > 5*time.Second {
		t.Errorf("exit %d after %s, stderr %q", r.code, time.Since(start), r.stderr)
	}
}

func TestConnectURLFromEnvironment(t *testing.T) {
	f, url := startFakeConnect(t, map[string][]answer{"GET /connectors": ok(`[]`)})
	t.Setenv(connectURLEnv, url+"/")
	if r := runConnectCLI("list"); r.code != 0 || len(f.log) != 1 {
		t.Errorf("exit %d, stderr %q, %d requests", r.code, r.stderr, len(f.log))
	}
	t.Setenv(connectURLEnv, "ftp://x")
	if r := runConnectCLI("list"); r.code != 2 || !strings.Contains(r.stderr, "$SLUICE_CONNECT_URL") {
		t.Errorf("exit %d, stderr %q", r.code, r.stderr)
	}
}

// Credentials in the URL go out as basic auth and stay out of messages.
func TestConnectBasicAuth(t *testing.T) {
	var user, pass string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, _ = r.BasicAuth()
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"error_code":401,"message":"User cannot access the resource."}`)
	}))
	defer srv.Close()
	u := strings.Replace(srv.URL, "http://", "http://connect:s3cret@", 1)
	r := runConnectCLI("list", "--url", u)
	if user != "connect" || pass != "s3cret" || r.code != 1 || strings.Contains(r.stderr, "s3cret") ||
		r.stderr != "sluice: User cannot access the resource. (HTTP 401 Unauthorized)\n" {
		t.Errorf("server saw %q:%q; exit %d, stderr %q", user, pass, r.code, r.stderr)
	}
}

func TestConnectCreateFromStdin(t *testing.T) {
	old := connectStdin
	connectStdin = strings.NewReader(`{"name":"s","config":{"connector.class":"FileStreamSource"}}`)
	defer func() { connectStdin = old }()
	f, url := startFakeConnect(t, map[string][]answer{"POST /connectors": status(201, sourceCreated)})
	r := runConnectCLI("create", "-f", "-", "--url", url)
	want := `> POST /connectors` + "\n  " + `{"config":{"connector.class":"FileStreamSource"},"name":"s"}`
	if r.code != 0 || len(f.log) != 1 || f.log[0] != want {
		t.Errorf("exit %d, stderr %q, requests %q", r.code, r.stderr, f.log)
	}
}

func TestParseProperties(t *testing.T) {
	got, err := parseProperties("# comment\n! also\n  name = a\\\n    b\nk:v\nspace  value with  spaces\n" +
		"path=C:\\\\dir\\\\file\nuni=caf\\u00e9\\tx\nkey\\=with\\:seps=1\r\nempty\nlast=\\\n")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"name": "ab", "k": "v", "space": "value with  spaces", "path": `C:\dir\file`,
		"uni": "café\tx", "key=with:seps": "1", "empty": "", "last": "",
	}
	if !mapsEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if _, err := parseProperties(`k=\u12`); err == nil {
		t.Error("a short \\u escape parsed")
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

func TestConnectorFileForms(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, text, wantName, wantErr string
		wantConfig                    map[string]string
	}{
		{"body.json", `{"name":"n","config":{"a":"1"},"initial_state":"PAUSED"}`, "n", "", map[string]string{"a": "1"}},
		{"info.json", `{"name":"n","config":{"a":"1"},"tasks":[],"type":"sink"}`, "n", "", map[string]string{"a": "1"}},
		{"name-in-config.json", `{"config":{"name":"m","a":"1"}}`, "m", "", map[string]string{"name": "m", "a": "1"}},
		{"bare.json", `{"name":"n","n":1.5e3,"b":false}`, "n", "", map[string]string{"name": "n", "n": "1.5e3", "b": "false"}},
		{"sniffed.conf", ` {"name":"n"}`, "n", "", map[string]string{"name": "n"}},
		{"props.conf", "name=n\n", "n", "", map[string]string{"name": "n"}},
		{"nested.json", `{"name":"n","x":{"y":1}}`, "", `"x": the value must be a string`, nil},
		{"null.json", `{"name":"n","x":null}`, "", `"x": the value must be a string`, nil},
		{"extra.json", `{"name":"n","config":{},"bogus":1}`, "", `"bogus": unknown field`, nil},
		{"bad-config.json", `{"name":"n","config":[1]}`, "", `"config"`, nil},
	} {
		path := filepath.Join(dir, tc.name)
		os.WriteFile(path, []byte(tc.text), 0o644)
		f, err := readConnectorFile(path)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || f.name != tc.wantName || !mapsEqual(f.config, tc.wantConfig) {
			t.Errorf("%s: %+v, %v", tc.name, f, err)
		}
	}
}

// The completion table's connect entries list exactly the flags each
// subcommand documents and accepts.
func TestConnectCommandSpecs(t *testing.T) {
	for _, spec := range connectCommandSpecs {
		if !IsConnectVerb(spec.name) {
			t.Errorf("%s is not a connect verb", spec.name)
		}
		r := runConnectCLI(spec.name, "--help")
		if r.code != 0 || !strings.HasPrefix(r.stdout, "usage: sluice connect "+spec.name+" ") {
			t.Errorf("%s --help: exit %d, stdout %q", spec.name, r.code, r.stdout)
			continue
		}
		if !strings.Contains(ConnectUsage, "\n  "+spec.name+" ") {
			t.Errorf("ConnectUsage does not list %s", spec.name)
		}
		var table []string
		for _, f := range spec.flags {
			table = append(table, f.name)
			args := []string{spec.name, f.name}
			if f.value {
				args = append(args, sampleValue(f))
			}
			if r := runConnectCLI(append(args, "--help")...); r.code != 0 {
				t.Errorf("%s does not accept %q: exit %d, stderr %q", spec.name, args, r.code, r.stderr)
			}
		}
		slices.Sort(table)
		if got := helpFlags(r.stdout); !slices.Equal(got, table) {
			t.Errorf("%s: --help lists %q, the table %q", spec.name, got, table)
		}
	}
	if len(connectCommandSpecs) != len(connectVerbs) {
		t.Errorf("%d specs for %d verbs", len(connectCommandSpecs), len(connectVerbs))
	}
	for _, w := range []string{"--config", "--standalone", "", "connect"} {
		if IsConnectVerb(w) {
			t.Errorf("IsConnectVerb(%q)", w)
		}
	}
}

// The JSON of the requests is what Kafka's resources read; the entities
// are checked here field by field, apart from the transcripts.
func TestConnectRequestBodies(t *testing.T) {
	f, url := startFakeConnect(t, map[string][]answer{"POST /connectors": status(201, sinkCreated)})
	runConnectCLI("create", "-f", "testdata/connect/bare.json", "--url", url, "--initial-state", "stopped")
	if len(f.log) != 1 {
		t.Fatalf("requests %q", f.log)
	}
	_, body, _ := strings.Cut(f.log[0], "\n  ")
	var req struct {
		Name         string            `json:"name"`
		Config       map[string]string `json:"config"`
		InitialState string            `json:"initial_state"`
	}
	decodeStrict(t, body, &req)
	if req.Name != "local-file-sink" || req.InitialState != "STOPPED" || req.Config["tasks.max"] != "1" ||
		req.Config["errors.deadletterqueue.context.headers.enable"] != "true" || req.Config["name"] != "local-file-sink" {
		t.Errorf("%+v", req)
	}
	var raw map[string]json.RawMessage
	json.Unmarshal([]byte(body), &raw)
	if string(raw["config"]) == "" || strings.Contains(string(raw["config"]), ":1") {
		t.Errorf("config values must be JSON strings: %s", raw["config"])
	}
}
