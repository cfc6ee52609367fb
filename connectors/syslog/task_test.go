package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connect/data"
	"github.com/sluice-io/sluice/connect/sdk"
	"github.com/sluice-io/sluice/connectors/syslog/testcert"
	"github.com/sluice-io/sluice/internal/testkit"
)

func startTask(t *testing.T, cfg map[string]string) *task {
	t.Helper()
	full := map[string]string{kAddress: "127.0.0.1", kTopic: "logs"}
	for k, v := range cfg {
		full[k] = v
	}
	tk := connector{}.NewTask().(*task)
	if err := tk.Start(context.Background(), sdk.TaskContext{Logger: slog.New(slog.DiscardHandler)}, full, nil); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tk.Stop(context.Background()) })
	return tk
}

// pollN polls until n records have come (or 10 s pass).
func pollN(t *testing.T, tk *task, n int) []*data.Record {
	t.Helper()
	var out []*data.Record
	deadline := time.Now().Add(10 * time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
		recs, err := tk.Poll(ctx, sdk.PollLimits{MaxRecords: 500})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		if len(recs) > 500 {
			t.Fatalf("Poll returned %d records, over MaxRecords 500", len(recs))
		}
		out = append(out, recs...)
	}
	if len(out) != n {
		t.Fatalf("polled %d records, want %d", len(out), n)
	}
	return out
}

func messages(recs []*data.Record) []string {
	var out []string
	for _, r := range recs {
		out = append(out, r.Value.(map[string]any)["message"].(string))
	}
	return out
}

func TestTaskTCPAndUDPOnOnePort(t *testing.T) {
	port := testkit.FreePorts(t, 1)[0]
	tk := startTask(t, map[string]string{kListener: "UDP,TCP", kPort: strconv.Itoa(port), kRecordKey: "app_name"})
	addr := "127.0.0.1:" + strconv.Itoa(port)

	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	m1 := `<13>1 2026-12-05T01:00:00Z h1 app1 - - - octet one`
	m2 := `<13>Dec  5 01:00:01 h1 app2: lf two`
	_, _ = fmt.Fprintf(c, "%d %s%s\n", len(m1), m1, m2)
	recs := pollN(t, tk, 2)
	if got := strings.Join(messages(recs), ","); got != "octet one,lf two" {
		t.Fatalf("tcp messages %q", got)
	}
	if recs[0].Key != "app1" || recs[1].Key != "app2" || recs[0].KeySchema != data.OptionalStringSchema {
		t.Fatalf("keys %v %v", recs[0].Key, recs[1].Key)
	}
	r := recs[1]
	if r.Topic != "logs" || r.Partition != -1 || r.SourcePartition[listenerKey] != "tcp://"+addr || r.SourceOffset != nil {
		t.Fatalf("record %+v", r)
	}
	// The offset of the latest Poll's last record: the second message on
	// the listener.
	if o := tk.SourceOffsetAt(len(tk.last) - 1); o[seqKey] != int64(2) || tk.SourceOffsetAt(len(tk.last)) != nil {
		t.Fatalf("source offset %v", o)
	}

	u, err := net.Dial("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = u.Write([]byte("<14>1 2026-12-05T01:00:02Z h2 app3 - - - by udp\n"))
	recs = pollN(t, tk, 1)
	if recs[0].Value.(map[string]any)["message"] != "by udp" || recs[0].SourcePartition[listenerKey] != "udp://"+addr {
		t.Fatalf("udp record %+v", recs[0])
	}
	// A half-sent last line is delivered when the peer closes.
	_, _ = c.Write([]byte("<13>Dec  5 01:00:03 h1 app2: last"))
	_ = c.Close()
	if got := messages(pollN(t, tk, 1)); got[0] != "last" {
		t.Fatalf("last line %q", got)
	}
}

// When the queue is full a TCP sender is made to wait, and nothing is
// lost; UDP datagrams are dropped and counted instead.
func TestTaskBackpressure(t *testing.T) {
	port := testkit.FreePorts(t, 1)[0]
	tk := startTask(t, map[string]string{kListener: "TCP,UDP", kPort: strconv.Itoa(port), kQueueMax: "10"})
	addr := "127.0.0.1:" + strconv.Itoa(port)
	const n = 20000
	body := strings.Repeat("p", 1000)
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	done := make(chan error, 1)
	go func() {
		var err error
		for i := 0; i < n && err == nil; i++ {
			_, err = fmt.Fprintf(c, "<13>Dec  5 01:00:00 h app: %d %s\n", i, body)
		}
		done <- err
	}()
	// 20 MB cannot sit in the sockets' buffers: the sender must be held.
	time.Sleep(time.Second)
	select {
	case err := <-done:
		t.Fatalf("the sender finished (%v) while nothing was polled", err)
	default:
	}
	if q := len(tk.queue); q != 10 {
		t.Fatalf("queue holds %d, want its 10", q)
	}
	if tk.stats.stalls.Load() == 0 {
		t.Fatal("no stall counted")
	}
	// UDP meanwhile drops.
	u, _ := net.Dial("udp", addr)
	for i := 0; i < 5; i++ {
		_, _ = u.Write([]byte("<13>Dec  5 01:00:00 h app: udp"))
	}
	waitUntil(t, "5 UDP drops", func() bool { return tk.stats.udpDropped.Load() == 5 })

	recs := pollN(t, tk, n)
	for i, m := range messages(recs) {
		if !strings.HasPrefix(m, strconv.Itoa(i)+" ") {
			t.Fatalf("record %d is %.20q: lost or reordered", i, m)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestTaskTLS(t *testing.T) {
	cert, key, pool := selfSigned(t)
	port := testkit.FreePorts(t, 1)[0]
	tk := startTask(t, map[string]string{kListener: "TCPSSL", kPort: strconv.Itoa(port), kCert: cert, kKey: key,
		kMaxBytes: "100", kIncludeRaw: "true"})
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	long := "<13>1 2026-12-05T01:00:00Z h app - - - " + strings.Repeat("z", 200)
	_, _ = fmt.Fprintf(c, "%d %s", len(long), long)
	_, _ = fmt.Fprintf(c, "garbage over tls\n")
	recs := pollN(t, tk, 2)
	v := recs[0].Value.(map[string]any)
	if v["truncated"] != true || len(v["raw"].(string)) != 100 {
		t.Fatalf("oversize message: %v", v)
	}
	if tk.stats.truncated.Load() != 1 {
		t.Fatalf("truncations counted: %d", tk.stats.truncated.Load())
	}
	v = recs[1].Value.(map[string]any)
	if v["raw"] != "garbage over tls" || v["parse_error"] == nil || tk.stats.parseFailed.Load() != 1 {
		t.Fatalf("unparsed message: %v", v)
	}
	// A plain-text client gets nowhere.
	p, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	_, _ = p.Write([]byte("<13>Dec  5 01:00:00 h app: plain\n"))
	_ = p.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if recs, _ := tk.Poll(ctx, sdk.PollLimits{}); len(recs) != 0 {
		t.Fatalf("a plain-text message came through TLS: %v", recs[0].Value)
	}
}

// selfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func selfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}

func TestStopEndsAWaitingPollAndABlockedReader(t *testing.T) {
	port := testkit.FreePorts(t, 1)[0]
	tk := startTask(t, map[string]string{kListener: "TCP", kPort: strconv.Itoa(port), kQueueMax: "1"})
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, _ = c.Write([]byte("<13>Dec  5 01:00:00 h app: a\n<13>Dec  5 01:00:00 h app: b\n<13>Dec  5 01:00:00 h app: c\n"))
	waitUntil(t, "a reader blocked on the full queue", func() bool { return tk.stats.stalls.Load() > 0 })
	stopped := make(chan struct{})
	go func() { _ = tk.Stop(context.Background()); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(5 * time.Second):
		t.Fatal("Stop hangs on a reader waiting for room")
	}
	if recs, err := tk.Poll(context.Background(), sdk.PollLimits{}); err != nil || len(recs) > 1 {
		t.Fatalf("poll after stop: %v %v", recs, err)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		cfg     map[string]string
		bad     string // the key with an error, "" for none
		message string
	}{
		{map[string]string{kPort: "514"}, "", ""},
		{map[string]string{kPort: "514", kListener: "tcp, udp"}, "", ""},
		{map[string]string{}, kPort, "required"},
		{map[string]string{kPort: "70000"}, kPort, "not a port"},
		{map[string]string{kPort: "514", kListener: "RELP"}, kListener, "not a listener"},
		{map[string]string{kPort: "514", kListener: "TCP,TCPSSL", kCert: "c", kKey: "k"}, kListener, "cannot share"},
		{map[string]string{kPort: "514", kListener: "TCPSSL"}, kCert, "required with TCPSSL"},
		{map[string]string{kPort: "514", kQueueMax: "0"}, kQueueMax, "integer from 1"},
		{map[string]string{kPort: "514", kRecordKey: "pid"}, kRecordKey, "none, host or app_name"},
		{map[string]string{kPort: "514", kTimezone: "Mars/Olympus"}, kTimezone, "not a time zone"},
		{map[string]string{kPort: "514", kIncludeRaw: "yes please"}, kIncludeRaw, "true or false"},
		{map[string]string{kPort: "514", kTopic: "a,b"}, kTopic, "one topic"},
		{map[string]string{kPort: "514", kAddress: "not-an-ip"}, kAddress, "not an IP"},
	} {
		vals, err := connector{}.Validate(context.Background(), tc.cfg)
		if err != nil {
			t.Fatal(err)
		}
		var errs []string
		for _, v := range vals {
			for _, e := range v.Errors {
				errs = append(errs, v.Name+": "+e)
			}
		}
		joined := strings.Join(errs, "; ")
		if tc.bad == "" {
			if len(errs) != 0 {
				t.Errorf("%v: unexpected errors %s", tc.cfg, joined)
			}
			continue
		}
		if !strings.Contains(joined, tc.bad+": ") || !strings.Contains(joined, tc.message) {
			t.Errorf("%v: errors %q, want one on %s saying %q", tc.cfg, joined, tc.bad, tc.message)
		}
		// Start refuses the same config with a message, never a panic.
		tk := connector{}.NewTask()
		if err := tk.Start(context.Background(), sdk.TaskContext{Logger: slog.New(slog.DiscardHandler)}, tc.cfg, nil); err == nil {
			_ = tk.Stop(context.Background())
			t.Errorf("%v: Start accepted it", tc.cfg)
		}
	}
}

func TestStartFailsClearlyWhenThePortIsTaken(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tk := connector{}.NewTask()
	err = tk.Start(context.Background(), sdk.TaskContext{Logger: slog.New(slog.DiscardHandler)},
		map[string]string{kListener: "TCP", kPort: strconv.Itoa(port), kAddress: "127.0.0.1"}, nil)
	if err == nil || !strings.Contains(err.Error(), "address already in use") {
		t.Fatalf("Start on a taken port: %v", err)
	}
}

// The shipped examples pass validation.
func TestExamplesValidate(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("..", "..", "examples", "connect", "syslog*.json"))
	if len(files) == 0 {
		t.Fatal("no examples/connect/syslog*.json")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var ex struct {
			Config map[string]string `json:"config"`
		}
		if err := json.Unmarshal(b, &ex); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		cls := ex.Config["connector.class"]
		if d := (connector{}).Describe(); cls != d.Class && !contains(d.Aliases, cls) {
			t.Errorf("%s: connector.class %q is not this connector's", f, cls)
		}
		vals, _ := connector{}.Validate(context.Background(), ex.Config)
		for _, v := range vals {
			if len(v.Errors) > 0 {
				t.Errorf("%s: %s: %v", f, v.Name, v.Errors)
			}
		}
	}
}

// A task restarted on the same port (a connector restart, a rebalance back
// to this worker) binds again at once, even with connections just closed.
func TestRestartOnTheSamePort(t *testing.T) {
	port := testkit.FreePorts(t, 1)[0]
	cfg := map[string]string{kListener: "TCP,UDP", kPort: strconv.Itoa(port)}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	for round := 0; round < 2; round++ {
		tk := startTask(t, cfg)
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = fmt.Fprintf(c, "<13>Dec  5 01:00:00 h app: round %d\n", round)
		if got := messages(pollN(t, tk, 1)); got[0] != fmt.Sprintf("round %d", round) {
			t.Fatalf("round %d: %q", round, got)
		}
		_ = tk.Stop(context.Background())
		_ = c.Close()
	}
}
