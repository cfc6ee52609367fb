package itest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
)

// httpsinkReceiver is a loopback HTTP endpoint that fails now and then, as
// a real one does: 503s, 429s with Retry-After, dropped connections, and
// batches it takes but answers 500 for, which the sink must send again
// (with the same idempotency key). It records every request.
type httpsinkReceiver struct {
	mu     sync.Mutex
	n      int
	reqs   []httpsinkRequest
	reject func(body string) bool // answer 400 to these bodies
	addr   string
}

type httpsinkRequest struct {
	key, body string
	taken     bool // the receiver kept the records (2xx, or the 500 after taking them)
	status    int  // 0: connection dropped
}

func startHTTPSinkReceiver(t *testing.T, reject func(string) bool) *httpsinkReceiver {
	t.Helper()
	rc := &httpsinkReceiver{reject: reject}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: rc, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	rc.addr = "http://" + ln.Addr().String() + "/ingest"
	return rc
}

func (rc *httpsinkReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	req := httpsinkRequest{key: r.Header.Get("Idempotency-Key"), body: string(b)}
	rc.mu.Lock()
	rc.n++
	n := rc.n
	rc.mu.Unlock()
	switch {
	case rc.reject != nil && rc.reject(req.body):
		req.status = 400
	case n%9 == 3:
		req.status = 503
	case n%13 == 5 && n < 80:
		req.status = 429
		w.Header().Set("Retry-After", "1")
	case n%11 == 7:
		req.status = 0
	case n%10 == 0:
		req.status, req.taken = 500, true
	default:
		req.status, req.taken = 200, true
	}
	rc.mu.Lock()
	rc.reqs = append(rc.reqs, req)
	rc.mu.Unlock()
	if req.status == 0 {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		req.status = 502
	}
	w.WriteHeader(req.status)
}

func (rc *httpsinkReceiver) requests() []httpsinkRequest {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]httpsinkRequest(nil), rc.reqs...)
}

// received replays what the receiver took, as a receiver deduplicating by
// idempotency key would: per partition the record numbers in arrival
// order, plus how many batches came again under a key already taken. It
// fails the test if a key ever named two different bodies.
func (rc *httpsinkReceiver) received(t *testing.T) (map[int][]int, int) {
	t.Helper()
	bodies := map[string]string{}
	taken := map[string]bool{}
	out := map[int][]int{}
	dups := 0
	for _, r := range rc.requests() {
		if r.key == "" {
			t.Fatalf("a request without an Idempotency-Key: %q", r.body)
		}
		if b, ok := bodies[r.key]; ok && b != r.body {
			t.Fatalf("key %s named two bodies:\n%s\n%s", r.key, b, r.body)
		}
		bodies[r.key] = r.body
		if !r.taken {
			continue
		}
		if taken[r.key] {
			dups++
			continue
		}
		taken[r.key] = true
		for _, line := range strings.Split(strings.TrimSuffix(r.body, "\n"), "\n") {
			var v struct{ P, I int }
			if err := json.Unmarshal([]byte(line), &v); err != nil {
				t.Fatalf("line %q of %s: %v", line, r.key, err)
			}
			out[v.P] = append(out[v.P], v.I)
		}
	}
	return out, dups
}

func httpsinkProduce(t *testing.T, cl *kgo.Client, topic string, parts, from, to int) {
	t.Helper()
	var recs []*kgo.Record
	for i := from; i < to; i++ {
		for p := 0; p < parts; p++ {
			recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(p), Value: []byte(fmt.Sprintf(`{"p":%d,"i":%d}`, p, i))})
		}
	}
	produceSync(t, cl, recs...)
}

// Records of a three-partition topic are posted to an endpoint that fails
// in every way a real one does: every record arrives, in order within its
// partition, and a batch arrives twice only as a retry under the same
// idempotency key; the group's committed offsets reach the end only
// through acknowledged batches.
func TestConnectHTTPSinkDeliversEveryRecordInOrder(t *testing.T) {
	const parts, n = 3, 1000
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "orders", parts, nil)
	cl := newClient(t, b.Addr())
	httpsinkProduce(t, cl, "orders", parts, 0, n/2)
	rc := startHTTPSinkReceiver(t, nil)
	w := startWorker(t, b.Addr(), connectPlugins(t))
	var info map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "orders-http", "config": map[string]string{
		// Confluent's class and keys: an existing config posts unchanged.
		"connector.class": "io.confluent.connect.http.HttpSinkConnector", "tasks.max": "2", "topics": "orders",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
		"http.api.url":    rc.addr, "request.body.format": "ndjson", "batch.max.size": "40",
		"max.retries": "-1", "retry.backoff.ms": "10", "retry.backoff.max.ms": "200",
	}}, &info); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, info)
	}
	t0 := time.Now()
	httpsinkProduce(t, cl, "orders", parts, n/2, n)
	waitFor(t, 60*time.Second, "every record at the receiver", func() bool {
		got, _ := rc.received(t)
		total := 0
		for _, l := range got {
			total += len(l)
		}
		return total >= parts*n
	})
	t.Logf("all received after %v", time.Since(t0))
	got, dups := rc.received(t)
	for p := 0; p < parts; p++ {
		if len(got[p]) != n {
			t.Fatalf("partition %d: %d records taken, want %d", p, len(got[p]), n)
		}
		for i, v := range got[p] {
			if v != i {
				t.Fatalf("partition %d: record %d arrived where %d should (out of order or repeated under a new key)", p, v, i)
			}
		}
	}
	statuses := map[int]int{}
	for _, r := range rc.requests() {
		statuses[r.status]++
	}
	t.Logf("%d requests by status %v; %d batches taken twice under their key", len(rc.requests()), statuses, dups)
	if statuses[503] == 0 || statuses[429] == 0 || statuses[0] == 0 || dups == 0 {
		t.Errorf("the receiver's failures did not all happen (%v, %d repeats): the test proves less than it says", statuses, dups)
	}
	waitFor(t, 30*time.Second, "the group's offsets at the end of every partition", func() bool {
		offs, err := admin(t, b.Addr()).FetchOffsets(testCtx(t, 5*time.Second), "connect-orders-http")
		if err != nil {
			return false
		}
		for p := int32(0); p < parts; p++ {
			if o, ok := offs.Lookup("orders", p); !ok || o.At != n {
				return false
			}
		}
		return true
	})
	t.Logf("offsets after %v", time.Since(t0))
	if st := w.taskStates("orders-http"); len(st) != 2 || st[0] != "RUNNING" || st[1] != "RUNNING" {
		t.Errorf("tasks %v, want two RUNNING", st)
	}
}

// A record the endpoint refuses with a 4xx goes to the dead letter queue
// (errors.tolerance=all); the others are delivered and the task runs on.
func TestConnectHTTPSinkRejectedRecordsGoToTheDeadLetterQueue(t *testing.T) {
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "events", 1, nil)
	createTopic(t, b.Addr(), "events-dlq", 1, nil)
	cl := newClient(t, b.Addr())
	var recs []*kgo.Record
	for i := 0; i < 50; i++ {
		v := fmt.Sprintf(`{"p":0,"i":%d}`, i)
		if i%10 == 4 {
			v = fmt.Sprintf(`{"p":0,"i":%d,"poison":true}`, i)
		}
		recs = append(recs, &kgo.Record{Topic: "events", Value: []byte(v)})
	}
	produceSync(t, cl, recs...)
	rc := startHTTPSinkReceiver(t, func(body string) bool { return strings.Contains(body, "poison") })
	w := startWorker(t, b.Addr(), connectPlugins(t))
	var info map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": "events-http", "config": map[string]string{
		"connector.class": "sluice.connect.HttpSink", "topics": "events",
		"value.converter": "org.apache.kafka.connect.storage.StringConverter",
		"http.api.url":    rc.addr, "request.body.format": "json", "batch.json.as.array": "false",
		"max.retries": "-1", "retry.backoff.ms": "10",
		"errors.tolerance": "all", "errors.deadletterqueue.topic.name": "events-dlq",
		"errors.deadletterqueue.context.headers.enable": "true",
	}}, &info); code != 201 {
		t.Fatalf("POST /connectors: %d %v", code, info)
	}
	waitFor(t, 60*time.Second, "five records in the dead letter queue", func() bool {
		return endOffsets(t, b.Addr(), "events-dlq")[0] >= 5
	})
	dlq := consumeAll(t, b.Addr(), "events-dlq")
	if len(dlq) != 5 {
		t.Fatalf("%d records in the dead letter queue, want the 5 refused", len(dlq))
	}
	for _, r := range dlq {
		if !strings.Contains(string(r.Value), "poison") {
			t.Errorf("dead letter %s was not refused", r.Value)
		}
		stage := ""
		for _, h := range r.Headers {
			if h.Key == "__connect.errors.exception.message" {
				stage = string(h.Value)
			}
		}
		if !strings.Contains(stage, "400") {
			t.Errorf("dead letter %s: exception message %q does not name the 400", r.Value, stage)
		}
	}
	waitFor(t, 30*time.Second, "the 45 good records at the receiver", func() bool {
		got, _ := rc.received(t)
		return len(got[0]) == 45
	})
	if st := w.taskStates("events-http"); len(st) != 1 || st[0] != "RUNNING" {
		t.Errorf("tasks %v, want one RUNNING", st)
	}
}
