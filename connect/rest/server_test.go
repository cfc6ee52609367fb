package rest

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestServerListensOnListeners(t *testing.T) {
	ls, err := ParseListeners(" http://127.0.0.1:0 , http://127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewServer(newFake(), ls, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err != nil {
		t.Fatal(err)
	}
	urls := s.URLs()
	if len(urls) != 2 || urls[0] == urls[1] || strings.HasSuffix(urls[0], ":0") {
		t.Fatalf("URLs %q", urls)
	}
	for _, u := range urls {
		resp, err := http.Get(u + "/")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(b), `"kafka_cluster_id"`) {
			t.Errorf("%s: %d %s", u, resp.StatusCode, b)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := http.Get(urls[0] + "/"); err == nil {
		t.Error("still serving after Close")
	}
}

func TestServerStartFailsWholly(t *testing.T) {
	first, err := NewServer(newFake(), []string{"http://127.0.0.1:0"}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	taken := first.URLs()[0]
	s, err := NewServer(newFake(), []string{"http://127.0.0.1:0", taken}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(); err == nil {
		s.Close()
		t.Fatalf("started on a taken port %s", taken)
	}
	if len(s.URLs()) != 0 {
		t.Errorf("a failed Start left listeners %q", s.URLs())
	}
}

func TestParseListeners(t *testing.T) {
	for _, bad := range []string{"", " , ", "https://h:8443", "http://h", "h:8083", "http://h:8083/x"} {
		if _, err := ParseListeners(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	got, err := ParseListeners("http://:8083,http://localhost:9000/")
	if err != nil || len(got) != 2 {
		t.Errorf("got %q %v", got, err)
	}
}

func TestPluginAliasRule(t *testing.T) {
	cases := []struct {
		class, path string
		match       bool
	}{
		{"FileStreamSink", "FileStreamSink", true},
		{"FileStreamSinkConnector", "FileStreamSink", true},
		{"FileStreamSink", "FileStreamSinkConnector", true},
		{"org.apache.kafka.connect.file.FileStreamSinkConnector", "FileStreamSink", true},
		{"org.apache.kafka.connect.file.FileStreamSinkConnector", "org.apache.kafka.connect.file.FileStreamSinkConnector", true},
		{"FileStreamSink", "FileStreamSource", false},
		{"FileStreamSink", "org.apache.kafka.connect.file.FileStreamSinkConnector", false},
		{"Connector", "Connector", true},
	}
	for _, c := range cases {
		if got := pluginMatches(c.class, c.path); got != c.match {
			t.Errorf("pluginMatches(%q, %q) = %v, want %v", c.class, c.path, got, c.match)
		}
	}
}

func TestEscapedNamesAndTrailingSlash(t *testing.T) {
	f := newFake()
	f.addSink("a/b c", 1)
	h := NewHandler(f, Config{})
	for _, target := range []string{"/connectors/a%2Fb%20c/status", "/connectors/a%2Fb%20c/status/", "/connectors/"} {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest("GET", target, nil))
		if rec.Code != 200 {
			t.Errorf("%s: %d %s", target, rec.Code, rec.Body)
		}
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("HEAD", "/connectors", nil))
	if rec.Code != 200 {
		t.Errorf("HEAD: %d", rec.Code)
	}
}

// A panicking herder answers 500 and leaves the server running.
func TestHerderPanicIs500(t *testing.T) {
	h := NewHandler(panicHerder{newFake()}, Config{})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/connectors", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"error_code":500`) {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

type panicHerder struct{ *fakeHerder }

func (panicHerder) Connectors(context.Context) ([]string, error) {
	panic("boom")
}

// The health check answers its own 500 body even when its timeout is
// longer than the request timeout.
func TestHealthNotCutByRequestTimeout(t *testing.T) {
	f := newFake()
	f.healthy = false
	h := NewHandler(f, Config{RequestTimeout: 10 * time.Millisecond, HealthTimeout: 50 * time.Millisecond})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/health", nil))
	if rec.Code != 500 || !strings.Contains(rec.Body.String(), `"status":"unhealthy"`) {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}
