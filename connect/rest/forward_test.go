package rest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/api"
)

// hopCounter records the requests a server saw, with their forward parameter.
type hopCounter struct {
	mu   sync.Mutex
	seen []string
	next http.Handler
}

func (c *hopCounter) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c.mu.Lock()
	c.seen = append(c.seen, r.Method+" "+r.URL.RequestURI()+" auth="+r.Header.Get("Authorization"))
	c.mu.Unlock()
	c.next.ServeHTTP(w, r)
}

func (c *hopCounter) requests() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.seen...)
}

// cluster starts a leader and a follower that forwards to it.
func cluster(t *testing.T) (leader, follower *fakeHerder, leaderSrv, followerSrv *httptest.Server, lc *hopCounter) {
	leader, follower = newFake(), newFake()
	leader.addSink("local-file-sink", 2)
	follower.addSink("local-file-sink", 2)
	lc = &hopCounter{next: NewHandler(leader, Config{})}
	leaderSrv = httptest.NewServer(lc)
	t.Cleanup(leaderSrv.Close)
	follower.follower = &api.NotLeaderError{LeaderURL: leaderSrv.URL}
	followerSrv = httptest.NewServer(NewHandler(follower, Config{}))
	t.Cleanup(followerSrv.Close)
	return
}

func do(t *testing.T, method, url, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Basic dXNlcjpwYXNz")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestFollowerForwardsCreateToLeader(t *testing.T) {
	leader, follower, leaderSrv, followerSrv, lc := cluster(t)
	body := `{"name":"src","config":{"connector.class":"FileStreamSource","tasks.max":2}}`
	resp, got := do(t, "POST", followerSrv.URL+"/connectors", body)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	// The client asked the follower, so Location names the follower.
	if loc := resp.Header.Get("Location"); loc != followerSrv.URL+"/connectors/src" {
		t.Errorf("Location %q, want the follower's %q", loc, followerSrv.URL+"/connectors/src")
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	want := `{"name":"src","config":{"connector.class":"FileStreamSource","name":"src","tasks.max":"2"},"tasks":[],"type":"source"}`
	if got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	if _, ok := leader.conns["src"]; !ok {
		t.Error("the leader did not create the connector")
	}
	if _, ok := follower.conns["src"]; ok {
		t.Error("the follower created the connector itself")
	}
	seen := lc.requests()
	if len(seen) != 1 || seen[0] != "POST /connectors?forward=true auth=Basic dXNlcjpwYXNz" {
		t.Errorf("leader saw %q, want one POST with forward=true and the client's Authorization", seen)
	}
	_ = leaderSrv
}

func TestForwardKeepsQueryAndRelaysErrors(t *testing.T) {
	_, _, _, followerSrv, lc := cluster(t)
	resp, got := do(t, "POST", followerSrv.URL+"/connectors/local-file-sink/restart?includeTasks=true&onlyFailed=false", "")
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("status %d: %s", resp.StatusCode, got)
	}
	var st api.ConnectorStateInfo
	if err := json.Unmarshal([]byte(got), &st); err != nil || st.Connector.State != api.StateRestarting {
		t.Errorf("restart body %s (%v)", got, err)
	}
	// The leader's 404 comes back as is.
	resp, got = do(t, "DELETE", followerSrv.URL+"/connectors/nope", "")
	if resp.StatusCode != http.StatusNotFound || got != `{"error_code":404,"message":"Connector nope not found"}` {
		t.Errorf("relayed error: %d %s", resp.StatusCode, got)
	}
	seen := lc.requests()
	if len(seen) != 2 || !strings.Contains(seen[0], "includeTasks=true") || !strings.Contains(seen[0], "onlyFailed=false") ||
		!strings.Contains(seen[0], "forward=true") {
		t.Errorf("leader saw %q", seen)
	}
	// Reads are the herder's to answer locally: the follower's fake serves them.
	if resp, _ := do(t, "GET", followerSrv.URL+"/connectors/local-file-sink/status", ""); resp.StatusCode != http.StatusOK {
		t.Errorf("status read: %d", resp.StatusCode)
	}
	if n := len(lc.requests()); n != 2 {
		t.Errorf("a read reached the leader (%d requests)", n)
	}
}

// Two workers that each think the other leads: the request goes A -> B -> A
// and stops there with Kafka's 409, two hops in all.
func TestForwardStopsAfterTwoHops(t *testing.T) {
	a, b := newFake(), newFake()
	ac := &hopCounter{next: NewHandler(a, Config{})}
	bc := &hopCounter{next: NewHandler(b, Config{})}
	as, bs := httptest.NewServer(ac), httptest.NewServer(bc)
	defer as.Close()
	defer bs.Close()
	a.follower = &api.NotLeaderError{LeaderURL: bs.URL}
	b.follower = &api.NotLeaderError{LeaderURL: as.URL}

	resp, got := do(t, "PUT", as.URL+"/connectors/x/stop", "")
	if resp.StatusCode != http.StatusConflict ||
		got != `{"error_code":409,"message":"Cannot complete request because of a conflicting operation (e.g. worker rebalance)"}` {
		t.Fatalf("got %d %s", resp.StatusCode, got)
	}
	wantA := []string{"PUT /connectors/x/stop auth=Basic dXNlcjpwYXNz", "PUT /connectors/x/stop?forward=false auth=Basic dXNlcjpwYXNz"}
	wantB := []string{"PUT /connectors/x/stop?forward=true auth=Basic dXNlcjpwYXNz"}
	if strings.Join(ac.requests(), "|") != strings.Join(wantA, "|") || strings.Join(bc.requests(), "|") != strings.Join(wantB, "|") {
		t.Errorf("hops: A saw %q, B saw %q", ac.requests(), bc.requests())
	}
}

func TestForwardToUnreachableLeader(t *testing.T) {
	f := newFake()
	dead := httptest.NewServer(http.NotFoundHandler())
	url := dead.URL
	dead.Close()
	f.follower = &api.NotLeaderError{LeaderURL: url}
	rec := httptest.NewRecorder()
	NewHandler(f, Config{}).ServeHTTP(rec, httptest.NewRequest("PUT", "/connectors/x/pause", nil))
	if rec.Code != http.StatusInternalServerError || !strings.Contains(rec.Body.String(), "IO Error trying to forward REST request") {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
}

// A herder that ignores its context still gets a timely 500.
func TestTimeoutWithoutHerderCooperation(t *testing.T) {
	f := newFake()
	f.ignoreCtx = make(chan struct{})
	defer close(f.ignoreCtx)
	h := NewHandler(f, Config{RequestTimeout: 30 * time.Millisecond})
	rec := httptest.NewRecorder()
	start := time.Now()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/connectors/x", nil))
	if rec.Code != http.StatusInternalServerError || rec.Body.String() != `{"error_code":500,"message":"Request timed out"}` {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("answered after %v", d)
	}
}
