package itest

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sluice-io/sluice/connectors/syslog/testcert"
	"github.com/sluice-io/sluice/internal/testkit"
	"github.com/twmb/franz-go/pkg/kgo"
)

const rsyslogd = "/usr/sbin/rsyslogd"

// Syslog end to end with Debian's rsyslog: messages written into rsyslog
// are forwarded by it to the syslog connector over TCP with octet-counted
// framing (as RFC 5424), over TCP with LF framing (as RFC 3164, rsyslog's
// traditional forward format) and over UDP, all to one port, and arrive in
// the topic with their fields, keyed by app name. The connector is
// configured with Confluent's class name and listener keys. Then a Go
// client sends over TLS, and a message no RFC parses is kept raw.
func TestConnectSyslogFromRsyslog(t *testing.T) {
	if _, err := os.Stat(rsyslogd); err != nil {
		t.Skipf("rsyslog is not installed (%v); .ci/run installs it", err)
	}
	b := startBroker(t, "std", t.TempDir())
	createTopic(t, b.Addr(), "syslog", 3, nil)
	createTopic(t, b.Addr(), "syslog-tls", 1, nil)
	w := startWorker(t, b.Addr(), connectPlugins(t))
	ports := testkit.FreePorts(t, 5)
	port, tlsPort, inOctet, inLF, inUDP := ports[0], ports[1], ports[2], ports[3], ports[4]

	syslogCreate(t, w, "syslog", map[string]string{
		"connector.class": "io.confluent.connect.syslog.SyslogSourceConnector",
		"syslog.listener": "TCP,UDP", "syslog.port": strconv.Itoa(port), "syslog.listen.address": "127.0.0.1",
		"topic": "syslog", "syslog.record.key": "app_name",
	})
	syslogWaitListening(t, port)

	rs := startRsyslog(t, fmt.Sprintf(`
module(load="imtcp")
input(type="imtcp" address="127.0.0.1" port="%[2]d" ruleset="octet")
input(type="imtcp" address="127.0.0.1" port="%[3]d" ruleset="lf")
input(type="imtcp" address="127.0.0.1" port="%[4]d" ruleset="udp")
ruleset(name="octet") {
  action(type="omfwd" target="127.0.0.1" port="%[1]d" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")
}
ruleset(name="lf") {
  action(type="omfwd" target="127.0.0.1" port="%[1]d" protocol="tcp" TCP_Framing="traditional" template="RSYSLOG_TraditionalForwardFormat")
}
ruleset(name="udp") {
  action(type="omfwd" target="127.0.0.1" port="%[1]d" protocol="udp" template="RSYSLOG_SyslogProtocol23Format")
}
`, port, inOctet, inLF, inUDP), inOctet, inLF, inUDP)

	const n = 40
	var octet, lf, udp strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&octet, "<165>1 2026-12-05T01:02:03.004Z src-a app-octet 4242 ID7 [ex@32473 seq=\"%d\" k=\"v\"] octet message %d\n", i, i)
		fmt.Fprintf(&lf, "<13>Dec  5 01:02:03 src-b app-lf[77]: lf message %d\n", i)
		fmt.Fprintf(&udp, "<14>1 2026-12-05T01:02:03Z src-c app-udp - - - udp message %d\n", i)
	}
	rs.send(t, inOctet, octet.String())
	rs.send(t, inLF, lf.String())
	// UDP is lossy by nature; paced, nothing is lost on loopback.
	for _, line := range strings.SplitAfter(udp.String(), "\n") {
		if line != "" {
			rs.send(t, inUDP, line)
			time.Sleep(5 * time.Millisecond)
		}
	}

	recs := syslogWaitRecords(t, b.Addr(), "syslog", 3*n)
	byApp := map[string][]map[string]any{}
	partOf := map[string]map[int32]bool{}
	for _, r := range recs {
		var v map[string]any
		if err := json.Unmarshal(r.Value, &v); err != nil {
			t.Fatalf("value %q is not JSON: %v", r.Value, err)
		}
		app, _ := v["app_name"].(string)
		if string(r.Key) != app {
			t.Errorf("record key %q, app_name %q", r.Key, app)
		}
		if partOf[app] == nil {
			partOf[app] = map[int32]bool{}
		}
		partOf[app][r.Partition] = true
		byApp[app] = append(byApp[app], v)
	}
	for app, parts := range partOf {
		if len(parts) != 1 {
			t.Errorf("records keyed %q are spread over partitions %v", app, parts)
		}
	}
	check := func(app, prefix string, want map[string]any) {
		t.Helper()
		got := byApp[app]
		seen := map[string]bool{}
		for _, v := range got {
			for k, wv := range want {
				if fmt.Sprint(v[k]) != fmt.Sprint(wv) {
					t.Errorf("%s: %s=%v, want %v (value %v)", app, k, v[k], wv, v)
				}
			}
			seen[fmt.Sprint(v["message"])] = true
		}
		for i := 0; i < n; i++ {
			if m := fmt.Sprintf("%s message %d", prefix, i); !seen[m] {
				t.Errorf("%s: %q missing (%d records)", app, m, len(got))
			}
		}
		if len(got) != n {
			t.Errorf("%s: %d records, want %d", app, len(got), n)
		}
	}
	check("app-octet", "octet", map[string]any{"format": "rfc5424", "facility": 20, "severity": 5, "hostname": "src-a",
		"proc_id": "4242", "msg_id": "ID7", "timestamp": "2026-12-05T01:02:03.004Z"})
	check("app-lf", "lf", map[string]any{"format": "rfc3164", "facility": 1, "severity": 5, "hostname": "src-b", "proc_id": "77"})
	check("app-udp", "udp", map[string]any{"format": "rfc5424", "facility": 1, "severity": 6, "hostname": "src-c"})
	if v := byApp["app-octet"]; len(v) > 0 {
		sd, _ := v[0]["structured_data"].(map[string]any)
		ex, _ := sd["ex@32473"].(map[string]any)
		if ex["k"] != "v" || ex["seq"] == nil {
			t.Errorf("structured data through rsyslog: %v", v[0]["structured_data"])
		}
	}
	rs.stop(t)

	// TLS, from a Go client, with JSON values made by the plugin; and a
	// message that is no syslog, kept raw.
	certFile, keyFile, pool := syslogSelfSigned(t)
	syslogCreate(t, w, "syslog-tls", map[string]string{
		"connector.class": "sluice.connect.SyslogSource", "syslog.listener": "TCPSSL",
		"syslog.port": strconv.Itoa(tlsPort), "syslog.listen.address": "127.0.0.1", "topic": "syslog-tls",
		"syslog.ssl.cert.chain.path": certFile, "syslog.ssl.key.path": keyFile, "syslog.record.key": "host",
		// The plugin renders the JSON; the worker passes it through.
		"syslog.value.format": "json", "value.converter": "org.apache.kafka.connect.converters.ByteArrayConverter",
	})
	syslogWaitListening(t, tlsPort)
	c, err := tls.Dial("tcp", "127.0.0.1:"+strconv.Itoa(tlsPort), &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	m := `<86>1 2026-12-05T01:02:03Z vault sshd 9 - - Accepted publickey`
	if _, err := fmt.Fprintf(c, "%d %sthis is not syslog\n", len(m), m); err != nil {
		t.Fatal(err)
	}
	_ = c.Close()
	recs = syslogWaitRecords(t, b.Addr(), "syslog-tls", 2)
	var first, second map[string]any
	_ = json.Unmarshal(recs[0].Value, &first)
	_ = json.Unmarshal(recs[1].Value, &second)
	if first["message"] != "Accepted publickey" || first["app_name"] != "sshd" || string(recs[0].Key) != "vault" {
		t.Errorf("TLS record: key %q value %v", recs[0].Key, first)
	}
	if second["raw"] != "this is not syslog" || second["parse_error"] == nil || string(recs[1].Key) != "127.0.0.1" {
		t.Errorf("unparsable record: key %q value %v", recs[1].Key, second)
	}
}

// syslogCreate creates a syslog connector writing string keys and
// schemaless JSON values, and waits for its task to run.
func syslogCreate(t *testing.T, w *workerProc, name string, cfg map[string]string) {
	t.Helper()
	for k, v := range map[string]string{"tasks.max": "1", "key.converter": stringConverter,
		"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable": "false"} {
		if _, ok := cfg[k]; !ok {
			cfg[k] = v
		}
	}
	var answer map[string]any
	if code := w.call("POST", "/connectors", map[string]any{"name": name, "config": cfg}, &answer); code != 201 {
		t.Fatalf("POST /connectors %s: %d %v", name, code, answer)
	}
	waitFor(t, 60*time.Second, name+" RUNNING", func() bool {
		st := w.taskStates(name)
		return len(st) == 1 && st[0] == "RUNNING"
	})
}

func syslogWaitListening(t *testing.T, port int) {
	t.Helper()
	waitFor(t, 30*time.Second, fmt.Sprintf("the connector listening on %d", port), func() bool {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			_ = c.Close()
		}
		return err == nil
	})
}

// syslogWaitRecords waits for a topic to hold n records and returns them.
func syslogWaitRecords(t *testing.T, addr, topic string, n int) []*kgo.Record {
	t.Helper()
	waitFor(t, 60*time.Second, fmt.Sprintf("%d records in %s", n, topic), func() bool {
		var total int64
		for _, e := range endOffsets(t, addr, topic) {
			total += e
		}
		return total >= int64(n)
	})
	recs := consumeAll(t, addr, topic)
	if len(recs) != n {
		t.Fatalf("%s holds %d records, want %d", topic, len(recs), n)
	}
	return recs
}

// rsyslogProc is an rsyslogd of the test's own: its config, pid file and
// work directory in a temp dir, no system path touched.
type rsyslogProc struct {
	cmd  *exec.Cmd
	dir  string
	done chan struct{}
}

// startRsyslog runs rsyslogd in the foreground with conf (its own
// messages go to a file in its dir) and waits for its TCP inputs.
func startRsyslog(t *testing.T, conf string, inputs ...int) *rsyslogProc {
	t.Helper()
	dir := t.TempDir()
	full := fmt.Sprintf("global(workDirectory=%q)\n%s\n*.* action(type=\"omfile\" file=%q)\n",
		dir, conf, filepath.Join(dir, "rsyslogd.log"))
	confFile := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confFile, []byte(full), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(rsyslogd, "-n", "-f", confFile, "-i", filepath.Join(dir, "rsyslogd.pid"))
	out, err := os.Create(filepath.Join(dir, "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting rsyslogd: %v", err)
	}
	p := &rsyslogProc{cmd: cmd, dir: dir, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); _ = out.Close(); close(p.done) }()
	t.Cleanup(func() { p.stop(t) })
	for _, port := range inputs {
		waitFor(t, 15*time.Second, fmt.Sprintf("rsyslogd listening on %d (%s)", port, p.logs()), func() bool {
			c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
			if err == nil {
				_ = c.Close()
			}
			return err == nil
		})
	}
	return p
}

func (p *rsyslogProc) logs() string {
	a, _ := os.ReadFile(filepath.Join(p.dir, "stderr"))
	b, _ := os.ReadFile(filepath.Join(p.dir, "rsyslogd.log"))
	return strings.TrimSpace(string(a) + string(b))
}

// send writes LF-framed messages into one of rsyslog's TCP inputs.
func (p *rsyslogProc) send(t *testing.T, port int, text string) {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		t.Fatalf("rsyslog input %d: %v", port, err)
	}
	defer c.Close()
	if _, err := c.Write([]byte(text)); err != nil {
		t.Fatalf("rsyslog input %d: %v", port, err)
	}
}

// stop ends rsyslogd by its PID: SIGTERM, then SIGKILL.
func (p *rsyslogProc) stop(t *testing.T) {
	select {
	case <-p.done:
		return
	default:
	}
	_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		t.Logf("rsyslogd ignored SIGTERM for 10 s; killing it")
		_ = syscall.Kill(p.cmd.Process.Pid, syscall.SIGKILL)
		<-p.done
	}
}

// syslogSelfSigned writes a self-signed certificate for 127.0.0.1 and its key.
func syslogSelfSigned(t *testing.T) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	certFile, keyFile, pool, err := testcert.Write(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile, pool
}
