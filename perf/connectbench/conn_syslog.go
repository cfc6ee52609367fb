package main

// The syslog source's benchmark (issue 20: syslog over TCP at 100k msg/s
// or more). The same ~200-byte RFC 5424 messages go into Sluice three ways:
//   - a Go client straight to the connector's TCP port (octet-counted):
//     the connector's own rate;
//   - a Go client into rsyslog's imtcp, forwarded by omfwd (octet-counted
//     TCP) to the connector: a typical relay setup;
//   - the same client into rsyslog's imtcp, written by rsyslog's own
//     Kafka output, omkafka, to the broker: the peer, with a JSON template
//     giving the same fields the connector's values have.
// Each run counts from the first byte sent until the topic holds every
// message, and reads the CPU of the plugin, the worker, the broker and
// rsyslogd over that stretch.

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
)

func init() { registerConnectorBench(connectorBench{Name: "syslog", Run: runSyslogBench}) }

const (
	syslogTarget  = ">= 100k msg/s"
	syslogTargetN = 100_000
	rsyslogdBin   = "/usr/sbin/rsyslogd"
	omkafkaPlugin = "/usr/lib/x86_64-linux-gnu/rsyslog/omkafka.so"
)

// appendSyslogMsg appends message i to b: ~200 bytes, with structured
// data (conn_syslog_test.go's syslogMsg says it with fmt). The sender runs
// on the machine it measures: rendering each message with fmt took ~1 µs
// of CPU per message (~6% of what the connector, its worker and the
// broker spend), which this cuts to about a quarter (1.08 to 0.24 µs).
func appendSyslogMsg(b []byte, i int) []byte {
	start := len(b)
	b = append(b, "<165>1 2026-12-05T01:02:03."...)
	b = appendPadded(b, i%1000, 3)
	b = append(b, "Z web-"...)
	b = appendPadded(b, i%16, 2)
	b = append(b, ` nginx 4242 ACCESS [req@32473 id="`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, `" zone="eu-west-1"] GET /api/v1/items/`...)
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, ` 200 1532 "curl/8.5"`...)
	if pad := 200 - (len(b) - start); pad > 0 {
		b = append(b, ' ')
		for range pad - 1 {
			b = append(b, 'x')
		}
	}
	return b
}

// appendPadded appends n (>= 0) in decimal, zero-padded to width digits.
func appendPadded(b []byte, n, width int) []byte {
	var d [20]byte
	s := strconv.AppendInt(d[:0], int64(n), 10)
	for range width - len(s) {
		b = append(b, '0')
	}
	return append(b, s...)
}

type syslogRun struct {
	env      *connectorEnv
	adm      *kadm.Client
	n        int
	workload string
}

func runSyslogBench(ctx context.Context, env *connectorEnv) ([]connectorRow, error) {
	adm, cl, err := newAdmin(env.Bootstrap)
	if err != nil {
		return nil, err
	}
	defer cl.Close()
	n := 1_000_000
	if env.Quick {
		n = 200_000
	}
	r := &syslogRun{env: env, adm: adm, n: n, workload: fmt.Sprintf("%d RFC 5424 messages of 200 bytes, TCP", n)}
	var rows []connectorRow
	for _, mode := range []string{"direct-map", "direct-json", "omfwd", "omkafka"} {
		if ctx.Err() != nil {
			break
		}
		if _, workload := r.describe(mode); !env.Wants(workload) {
			continue
		}
		row, err := r.run(ctx, mode)
		if err != nil {
			row = connectorRow{Workload: r.workload, Tool: row.Tool, Err: err.Error()}
		}
		rows = append(rows, row)
	}
	return rows, nil
}

// run measures one way in; each has its own topic, connector and rsyslogd,
// removed afterwards.
func (r *syslogRun) run(ctx context.Context, mode string) (connectorRow, error) {
	row := connectorRow{Workload: r.workload, Unit: "messages", Bytes: int64(r.n) * 200}
	direct := strings.HasPrefix(mode, "direct")
	valueFormat, valueConverter := "json", "org.apache.kafka.connect.converters.ByteArrayConverter"
	if mode == "direct-map" {
		valueFormat, valueConverter = "map", "org.apache.kafka.connect.json.JsonConverter"
	}
	row.Tool, row.Workload = r.describe(mode)
	topic := "bench-syslog-" + mode
	if resp, err := r.adm.CreateTopic(ctx, 1, 1, nil, topic); err != nil || resp.Err != nil {
		return row, fmt.Errorf("creating %s: %v %v", topic, err, resp.Err)
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		_, _ = r.adm.DeleteTopics(dctx, topic)
	}()
	ports, err := syslogPorts(2)
	if err != nil {
		return row, err
	}
	connPort, inPort := ports[0], ports[1]
	pids := map[string]int{"worker": r.env.WorkerPID, "broker": r.env.BrokerPID}
	if mode != "omkafka" {
		name := "bench-syslog-" + mode
		if err := r.env.REST.create(ctx, name, map[string]string{
			"connector.class": "sluice.connect.SyslogSource", "tasks.max": "1",
			"syslog.listener": "TCP", "syslog.port": strconv.Itoa(connPort), "syslog.listen.address": "127.0.0.1",
			"topic": topic, "key.converter": "org.apache.kafka.connect.storage.StringConverter",
			"syslog.value.format": valueFormat,
			"value.converter":     valueConverter, "value.converter.schemas.enable": "false",
		}); err != nil {
			return row, err
		}
		defer r.deleteConnector(name)
		if err := r.env.REST.waitRunning(ctx, name, 60*time.Second); err != nil {
			return row, err
		}
		if err := waitDial(ctx, connPort); err != nil {
			return row, err
		}
		plugin := 0
		for _, c := range children(r.env.WorkerPID) {
			if c.name == "syslog" {
				plugin = c.pid
			}
		}
		if plugin == 0 {
			return row, fmt.Errorf("no syslog plugin process under worker %d", r.env.WorkerPID)
		}
		pids["plugin"] = plugin
	}
	sendPort := connPort
	if !direct {
		rs, err := r.startRsyslog(mode, topic, inPort, connPort)
		if err != nil {
			return row, err
		}
		defer rs.stop(10 * time.Second)
		pids["rsyslogd"] = rs.pid()
		sendPort = inPort
	}
	before, err := cpus(pids)
	if err != nil {
		return row, err
	}
	start := time.Now()
	sent := make(chan error, 1)
	go func() { sent <- syslogSend(ctx, sendPort, r.n, direct) }()
	if err := r.waitCount(ctx, topic, sent, start); err != nil {
		return row, err
	}
	row.Seconds = time.Since(start).Seconds()
	row.Count = int64(r.n)
	after, err := cpus(pids)
	if err != nil {
		return row, err
	}
	row.CPU = map[string]float64{}
	for k := range pids {
		row.CPU[k] = (after[k] - before[k]) * 1e6 / float64(r.n)
	}
	if mode != "omkafka" {
		row.Target, row.Met = syslogTarget, "missed"
		if rate(row) >= syslogTargetN {
			row.Met = "met"
		}
	}
	return row, nil
}

// describe names the tool and the workload of a mode, in the report and
// for --workload.
func (r *syslogRun) describe(mode string) (tool, workload string) {
	switch mode {
	case "direct-map":
		return "sluice connect", r.workload + ", Go client to the connector, map values + JsonConverter"
	case "direct-json":
		return "sluice connect", r.workload + ", Go client to the connector, value.format=json + ByteArrayConverter"
	case "omfwd":
		return "sluice connect", r.workload + ", via rsyslog omfwd, value.format=json + ByteArrayConverter"
	default:
		return "rsyslog omkafka", r.workload + ", via rsyslog omkafka"
	}
}

// waitCount waits until topic holds n records, failing early when the
// sender fails and after a generous stall.
func (r *syslogRun) waitCount(ctx context.Context, topic string, sent chan error, start time.Time) error {
	last, lastMove := int64(-1), time.Now()
	for {
		ends, err := r.adm.ListEndOffsets(ctx, topic)
		var total int64
		if err == nil {
			ends.Each(func(o kadm.ListedOffset) { total += o.Offset })
		}
		if total >= int64(r.n) {
			return nil
		}
		if total != last {
			last, lastMove = total, time.Now()
		}
		if time.Since(lastMove) > 30*time.Second {
			return fmt.Errorf("stalled at %d of %d messages after %.0fs", total, r.n, time.Since(start).Seconds())
		}
		select {
		case err := <-sent:
			if err != nil {
				return fmt.Errorf("sending: %w", err)
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (r *syslogRun) deleteConnector(name string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := r.env.REST.delete(ctx, name); err != nil {
		r.env.Logf("deleting %s: %v", name, err)
	}
	for ctx.Err() == nil {
		gone := true
		for _, c := range children(r.env.WorkerPID) {
			gone = gone && c.name != "syslog"
		}
		if gone {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startRsyslog runs an rsyslogd of the benchmark's own (config, pid file
// and work directory in the scratch dir) whose imtcp input on inPort goes
// to the connector by omfwd or to the broker by omkafka.
func (r *syslogRun) startRsyslog(mode, topic string, inPort, connPort int) (*proc, error) {
	if _, err := os.Stat(rsyslogdBin); err != nil {
		return nil, fmt.Errorf("rsyslog is not installed: %w", err)
	}
	dir := filepath.Join(r.env.Dir, "rsyslog-"+mode)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var action string
	switch mode {
	case "omfwd":
		action = fmt.Sprintf(`action(type="omfwd" target="127.0.0.1" port="%d" protocol="tcp" TCP_Framing="octet-counted" template="RSYSLOG_SyslogProtocol23Format")`, connPort)
	case "omkafka":
		if _, err := os.Stat(omkafkaPlugin); err != nil {
			return nil, fmt.Errorf("rsyslog-kafka (omkafka) is not installed: %w", err)
		}
		action = fmt.Sprintf(`action(type="omkafka" broker=["%s"] topic="%s" template="sluicejson")`, r.env.Bootstrap, topic)
	}
	conf := fmt.Sprintf(`global(workDirectory=%q)
module(load="imtcp")
%s
template(name="sluicejson" type="list" option.jsonf="on") {
  property(outname="facility" name="syslogfacility" format="jsonf" datatype="number")
  property(outname="severity" name="syslogseverity" format="jsonf" datatype="number")
  property(outname="timestamp" name="timereported" dateFormat="rfc3339" format="jsonf")
  property(outname="hostname" name="hostname" format="jsonf")
  property(outname="app_name" name="app-name" format="jsonf")
  property(outname="proc_id" name="procid" format="jsonf")
  property(outname="msg_id" name="msgid" format="jsonf")
  property(outname="structured_data" name="structured-data" format="jsonf")
  property(outname="message" name="msg" format="jsonf")
}
input(type="imtcp" address="127.0.0.1" port="%d" ruleset="out")
ruleset(name="out") {
  %s
}
*.* action(type="omfile" file=%q)
`, dir, omkafkaLoad(mode), inPort, action, filepath.Join(dir, "rsyslogd.log"))
	confPath := filepath.Join(dir, "rsyslog.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	p, err := start("rsyslogd", []string{rsyslogdBin, "-n", "-f", confPath, "-i", filepath.Join(dir, "rsyslogd.pid")},
		nil, filepath.Join(dir, "stderr.log"), nil)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := waitDial(ctx, inPort); err != nil {
		p.stop(5 * time.Second)
		b, _ := os.ReadFile(filepath.Join(dir, "stderr.log"))
		return nil, fmt.Errorf("rsyslogd did not open its input: %w (%s)", err, strings.TrimSpace(string(b)))
	}
	return p, nil
}

func omkafkaLoad(mode string) string {
	if mode == "omkafka" {
		return `module(load="omkafka")`
	}
	return ""
}

// syslogSend writes n messages on one TCP connection: octet-counted to the
// connector, LF-terminated into rsyslog's imtcp (what most senders use).
func syslogSend(ctx context.Context, port, n int, octet bool) error {
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return err
	}
	defer c.Close()
	w := bufio.NewWriterSize(c, 256<<10)
	var m, frame []byte
	for i := 0; i < n; i++ {
		m = appendSyslogMsg(m[:0], i)
		frame = frame[:0]
		if octet {
			frame = strconv.AppendInt(frame, int64(len(m)), 10)
			frame = append(frame, ' ')
			frame = append(frame, m...)
		} else {
			frame = append(append(frame, m...), '\n')
		}
		if _, err = w.Write(frame); err != nil {
			return err
		}
	}
	return w.Flush()
}

func waitDial(ctx context.Context, port int) error {
	for {
		c, err := net.DialTimeout("tcp", "127.0.0.1:"+strconv.Itoa(port), time.Second)
		if err == nil {
			return c.Close()
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("nothing listens on %d: %w", port, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// syslogPorts picks n free loopback ports.
func syslogPorts(n int) ([]int, error) {
	var out []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
