package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
)

// receiver is a loopback HTTP server that answers from a script and
// records what it got.
type receiver struct {
	mu     sync.Mutex
	script []func(w http.ResponseWriter) // one per request; 200 when run out
	got    []request
}

type request struct {
	method, contentType, key, auth, custom string
	body                                   string
}

func newReceiver(t *testing.T) (*receiver, string) {
	rc := &receiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, request{r.Method, r.Header.Get("Content-Type"), r.Header.Get("Idempotency-Key"),
			r.Header.Get("Authorization"), r.Header.Get("X-Team"), string(b)})
		var answer func(http.ResponseWriter)
		if len(rc.script) > 0 {
			answer, rc.script = rc.script[0], rc.script[1:]
		}
		rc.mu.Unlock()
		if answer == nil {
			w.WriteHeader(200)
			return
		}
		answer(w)
	}))
	t.Cleanup(srv.Close)
	return rc, srv.URL
}

func (rc *receiver) then(answers ...func(http.ResponseWriter)) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.script = append(rc.script, answers...)
}

func (rc *receiver) requests() []request {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]request(nil), rc.got...)
}

func status(code int, retryAfter string) func(http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		if retryAfter != "" {
			w.Header().Set("Retry-After", retryAfter)
		}
		w.WriteHeader(code)
		_, _ = io.WriteString(w, http.StatusText(code))
	}
}

func startTask(t *testing.T, url string, extra ...string) *task {
	t.Helper()
	cfg := map[string]string{"http.api.url": url, "retry.backoff.ms": "5", "retry.backoff.max.ms": "20"}
	for i := 0; i+1 < len(extra); i += 2 {
		cfg[extra[i]] = extra[i+1]
	}
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(context.Background(), sdk.TaskContext{Connector: "hs", Logger: slog.Default()}, cfg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tk.Stop(context.Background()) })
	return tk
}

func rec(topic string, part int32, off int64, v any) *data.Record {
	return &data.Record{Topic: topic, Partition: part, Value: v, KafkaOffset: off,
		OriginalTopic: topic, OriginalPartition: part, OriginalOffset: off}
}

func TestJSONArrayBatchesWithHeadersAndAuth(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "batch.max.size", "2", "headers", "X-Team: data|X-Other:1",
		"auth.type", "basic", "connection.user", "u", "connection.password", "p", "request.method", "PUT")
	err := tk.Put(context.Background(), []*data.Record{
		rec("t", 0, 5, `{"a": 1}`), rec("t", 0, 6, "plain text"), rec("t", 0, 7, []byte(`[1, 2]`)),
		rec("t", 0, 8, map[string]any{"k": int64(3)}), rec("t", 0, 9, nil),
	})
	if err != nil {
		t.Fatal(err)
	}
	got := rc.requests()
	want := []struct{ body, key string }{
		{`[{"a":1},"plain text"]`, "hs-t-0-5-6"},
		{`[[1,2],{"k":3}]`, "hs-t-0-7-8"},
		{`[null]`, "hs-t-0-9-9"},
	}
	if len(got) != len(want) {
		t.Fatalf("%d requests, want %d: %+v", len(got), len(want), got)
	}
	for i, w := range want {
		g := got[i]
		if g.body != w.body || g.key != w.key || g.method != "PUT" || g.contentType != "application/json" ||
			g.custom != "data" || g.auth != "Basic dTpw" {
			t.Errorf("request %d: %+v, want body %s key %s", i, g, w.body, w.key)
		}
	}
}

func TestNDJSONAndRawBodies(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "request.body.format", "ndjson", "auth.type", "bearer", "bearer.token", "tok")
	if err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 0, "{\n \"a\": 1\n}"), rec("t", 0, 1, "x")}); err != nil {
		t.Fatal(err)
	}
	g := rc.requests()
	if len(g) != 1 || g[0].body != "{\"a\":1}\n\"x\"\n" || g[0].contentType != "application/x-ndjson" || g[0].auth != "Bearer tok" {
		t.Fatalf("ndjson: %+v", g)
	}

	rc, url = newReceiver(t)
	tk = startTask(t, url, "request.body.format", "raw", "batch.max.size", "100")
	if err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 0, []byte("a b\n")), rec("t", 0, 1, "c")}); err != nil {
		t.Fatal(err)
	}
	g = rc.requests()
	if len(g) != 2 || g[0].body != "a b\n" || g[1].body != "c" || g[1].key != "hs-t-0-1-1" {
		t.Fatalf("raw: one request per record, value as it is: %+v", g)
	}
}

func TestRetriesKeepTheBatchAndItsKey(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "batch.max.size", "10")
	rc.then(status(429, "1"), status(503, ""), func(http.ResponseWriter) { panic(http.ErrAbortHandler) }, status(200, ""))
	start := time.Now()
	if err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 0, "1"), rec("t", 0, 1, "2")}); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took < time.Second {
		t.Errorf("Put returned after %v: Retry-After: 1 was not honoured", took)
	}
	g := rc.requests()
	if len(g) != 4 {
		t.Fatalf("%d requests, want 4 (429, 503, a dropped connection, 200)", len(g))
	}
	for _, r := range g {
		if r.body != "[1,2]" || r.key != "hs-t-0-0-1" {
			t.Errorf("retry changed the batch: %+v", r)
		}
	}
}

func TestRejectedRecordsAreReportedAndTheRestGoesOn(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "batch.max.size", "2")
	rc.then(status(200, ""), status(400, ""))
	err := tk.Put(context.Background(), []*data.Record{
		rec("t", 0, 0, "a"), rec("t", 0, 1, "b"), rec("t", 0, 2, "c"), rec("t", 0, 3, "d"), rec("t", 0, 4, "e")})
	var pe *sdk.PutErrors
	if !errors.As(err, &pe) {
		t.Fatalf("Put: %v, want PutErrors", err)
	}
	if len(pe.Errors) != 2 || pe.Errors[2] == nil || pe.Errors[3] == nil || !strings.Contains(pe.Errors[2].Error(), "400") {
		t.Fatalf("failed records %v, want indexes 2 and 3 with the 400", pe.Errors)
	}
	if n := len(rc.requests()); n != 3 {
		t.Fatalf("%d requests, want 3: the batch after the rejected one is still sent", n)
	}
	offs, err := tk.PreCommit(context.Background(), []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 5}})
	if err != nil || len(offs) != 1 || offs[0].Offset != 5 {
		t.Fatalf("PreCommit: %v %v, want offset 5 (rejected records are reported, not held)", offs, err)
	}
}

func TestGivingUpFailsTheTaskAndCommitsNothingPast(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "max.retries", "2")
	rc.then(status(500, ""), status(500, ""), status(500, ""))
	err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 7, "a")})
	if err == nil || !strings.Contains(err.Error(), "giving up") {
		t.Fatalf("Put: %v, want giving up", err)
	}
	offs, _ := tk.PreCommit(context.Background(), []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 8}})
	if len(offs) != 1 || offs[0].Offset != 7 {
		t.Fatalf("PreCommit: %v, want 7: an unacknowledged record is never committed", offs)
	}
}

func TestOrderPerPartitionUnderRetries(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "batch.max.size", "3", "request.body.format", "ndjson")
	// Every other request fails: partitions interleave, and each one's
	// batches must still arrive in offset order, each acknowledged once.
	for i := 0; i < 40; i++ {
		rc.then(status(503, ""), status(200, ""))
	}
	var recs []*data.Record
	for off := int64(0); off < 30; off++ {
		for p := int32(0); p < 3; p++ {
			recs = append(recs, rec("t", p, off, map[string]any{"p": int64(p), "o": off}))
		}
	}
	if err := tk.Put(context.Background(), recs); err != nil {
		t.Fatal(err)
	}
	seenKeys := map[string]bool{}
	next := map[string]int64{}
	for _, r := range rc.requests() {
		if seenKeys[r.key] {
			continue // a retry of a batch already seen: the same key
		}
		seenKeys[r.key] = true
		for _, line := range strings.Split(strings.TrimSpace(r.body), "\n") {
			var p, o int64
			if _, err := fmt.Sscanf(line, `{"o":%d,"p":%d}`, &o, &p); err != nil {
				t.Fatalf("line %q: %v", line, err)
			}
			k := string(rune('0' + p))
			if o != next[k] {
				t.Fatalf("partition %d: offset %d arrived after %d", p, o, next[k]-1)
			}
			next[k] = o + 1
		}
	}
	for p := 0; p < 3; p++ {
		if n := next[string(rune('0'+p))]; n != 30 {
			t.Errorf("partition %d: %d records, want 30", p, n)
		}
	}
}

func TestLingerHoldsBatchesAndCommitsOnlyWhatWasAcknowledged(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "linger.ms", "300", "batch.max.size", "3")
	if err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 10, "a"), rec("t", 0, 11, "b")}); err != nil {
		t.Fatal(err)
	}
	if n := len(rc.requests()); n != 0 {
		t.Fatalf("%d requests for a partial batch within its linger", n)
	}
	offs, _ := tk.PreCommit(context.Background(), []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 12}})
	if offs[0].Offset != 10 {
		t.Fatalf("PreCommit while lingering: %d, want 10", offs[0].Offset)
	}
	if err := tk.Put(context.Background(), []*data.Record{rec("t", 0, 12, "c"), rec("t", 0, 13, "d")}); err != nil {
		t.Fatal(err)
	}
	if g := rc.requests(); len(g) != 1 || g[0].body != `["a","b","c"]` {
		t.Fatalf("a full batch goes at once: %+v", g)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(rc.requests()) < 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if g := rc.requests(); len(g) != 2 || g[1].body != `["d"]` {
		t.Fatalf("the lingering record is sent by the timer: %+v", g)
	}
	offs, _ = tk.PreCommit(context.Background(), []sdk.TopicPartitionOffset{{Topic: "t", Partition: 0, Offset: 14}})
	if offs[0].Offset != 14 {
		t.Fatalf("PreCommit after the timer sent it: %d, want 14", offs[0].Offset)
	}
}

func TestStopEndsARetryingPut(t *testing.T) {
	rc, url := newReceiver(t)
	tk := startTask(t, url, "max.retries", "-1")
	for i := 0; i < 1000; i++ {
		rc.then(status(503, "1"))
	}
	done := make(chan error, 1)
	go func() { done <- tk.Put(context.Background(), []*data.Record{rec("t", 0, 0, "a")}) }()
	time.Sleep(100 * time.Millisecond)
	_ = tk.Stop(context.Background())
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("Put stopped mid-retry returned nil")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Put still retrying 5 s after Stop")
	}
}

func TestValidateNamesTheBadKeys(t *testing.T) {
	vals, _ := connector{}.Validate(context.Background(), map[string]string{
		"http.api.url": "ftp://x", "request.body.format": "xml", "batch.max.size": "0", "headers": "nocolon",
	})
	bad := map[string]bool{}
	for _, v := range vals {
		if len(v.Errors) > 0 {
			bad[v.Name] = true
		}
	}
	for _, k := range []string{"http.api.url", "request.body.format", "batch.max.size", "headers"} {
		if !bad[k] {
			t.Errorf("%s: no error", k)
		}
	}
	if err := (&task{}).Start(context.Background(), sdk.TaskContext{}, map[string]string{}); err == nil {
		t.Error("Start without http.api.url: no error")
	}
}

// BenchmarkPutNDJSON measures the sink against a loopback receiver that
// reads and discards: 200-byte JSON values, Puts of 500 records in
// batches of 500, four partitions.
func BenchmarkPutNDJSON(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}))
	defer srv.Close()
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(context.Background(), sdk.TaskContext{Logger: slog.Default()},
		map[string]string{"http.api.url": srv.URL, "request.body.format": "ndjson", "batch.max.size": "500"}); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = tk.Stop(context.Background()) }()
	value := `{"v":"` + strings.Repeat("x", 192) + `"}`
	batch := make([]*data.Record, 500)
	b.SetBytes(int64(len(batch) * len(value)))
	off := int64(0)
	for b.Loop() {
		for j := range batch {
			batch[j] = rec("t", int32(j%4), off, value)
			off++
		}
		if err := tk.Put(context.Background(), batch); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(off)/b.Elapsed().Seconds(), "records/s")
}
