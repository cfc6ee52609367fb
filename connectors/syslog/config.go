package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Config keys. The listener keys are those of Confluent's syslog source
// (io.confluent.connect.syslog.SyslogSourceConnector), so its configs POST
// unchanged; the rest are ours, named in the same style.
const (
	kTopic       = "topic"
	kListener    = "syslog.listener"
	kPort        = "syslog.port"
	kAddress     = "syslog.listen.address"
	kCert        = "syslog.ssl.cert.chain.path"
	kKey         = "syslog.ssl.key.path"
	kQueueMax    = "syslog.queue.max.size"
	kBatch       = "syslog.queue.batch.size"
	kMaxBytes    = "syslog.max.message.bytes"
	kRecordKey   = "syslog.record.key"
	kIncludeRaw  = "syslog.include.raw"
	kTimezone    = "syslog.timezone"
	kUDPRecvBuf  = "syslog.udp.receive.buffer.bytes"
	kMaxConns    = "syslog.tcp.max.connections"
	kValueFormat = "syslog.value.format"
	defTopic     = "syslog"
	defListener  = "UDP"
	defAddress   = "0.0.0.0"
	defQueueMax  = 20000
	defBatch     = 2000
	defMaxBytes  = 64 << 10
	defMaxConns  = 1000
	maxUDPBytes  = 65535
	defRecordKey = "none"
)

// transport is one kind of listener.
type transport string

const (
	udpT transport = "udp"
	tcpT transport = "tcp"
	tlsT transport = "tls"
)

// config is a parsed, checked connector config.
type config struct {
	topic      string
	transports []transport
	address    string
	port       int
	certPath   string
	keyPath    string
	queueMax   int
	batch      int
	maxBytes   int
	key        keyMode
	format     valueFormat
	includeRaw bool
	tz         *time.Location
	udpRecvBuf int
	maxConns   int
}

// configErrors maps a config key to what is wrong with its value.
type configErrors map[string][]string

func (e configErrors) add(key, format string, args ...any) {
	e[key] = append(e[key], fmt.Sprintf(format, args...))
}

func (e configErrors) err() error {
	if len(e) == 0 {
		return nil
	}
	var parts []string
	for _, k := range configKeyOrder {
		for _, m := range e[k] {
			parts = append(parts, k+": "+m)
		}
	}
	return fmt.Errorf("invalid syslog source config: %s", strings.Join(parts, "; "))
}

// configKeyOrder is the order errors are reported in.
var configKeyOrder = []string{kTopic, kListener, kPort, kAddress, kCert, kKey, kQueueMax, kBatch,
	kMaxBytes, kRecordKey, kValueFormat, kIncludeRaw, kTimezone, kUDPRecvBuf, kMaxConns}

// parseConfig reads cfg with the defaults; every problem is reported
// against its key, none panics.
func parseConfig(cfg map[string]string) (config, configErrors) {
	errs := configErrors{}
	c := config{topic: defTopic, address: defAddress, tz: time.UTC}
	if v, ok := cfg[kTopic]; ok {
		c.topic = strings.TrimSpace(v)
		if c.topic == "" || strings.Contains(c.topic, ",") {
			errs.add(kTopic, "want one topic name, got %q", v)
		}
	}
	listeners := defListener
	if v, ok := cfg[kListener]; ok && strings.TrimSpace(v) != "" {
		listeners = v
	}
	seen := map[transport]bool{}
	for _, l := range strings.Split(listeners, ",") {
		var t transport
		switch strings.ToUpper(strings.TrimSpace(l)) {
		case "UDP":
			t = udpT
		case "TCP":
			t = tcpT
		case "TCPSSL", "TLS", "SSL":
			t = tlsT
		default:
			errs.add(kListener, "%q is not a listener: want UDP, TCP or TCPSSL (a comma-separated list for several)", strings.TrimSpace(l))
			continue
		}
		if !seen[t] {
			seen[t] = true
			c.transports = append(c.transports, t)
		}
	}
	if seen[tcpT] && seen[tlsT] {
		errs.add(kListener, "TCP and TCPSSL cannot share %s: create two connectors", kPort)
	}
	if v, ok := cfg[kPort]; !ok || strings.TrimSpace(v) == "" {
		errs.add(kPort, "required: the port to listen on")
	} else if n, err := strconv.Atoi(strings.TrimSpace(v)); err != nil || n < 1 || n > 65535 {
		errs.add(kPort, "%q is not a port (1-65535)", v)
	} else {
		c.port = n
	}
	if v, ok := cfg[kAddress]; ok && strings.TrimSpace(v) != "" {
		c.address = strings.TrimSpace(v)
		if net.ParseIP(c.address) == nil && c.address != "localhost" {
			errs.add(kAddress, "%q is not an IP address", v)
		}
	}
	c.certPath, c.keyPath = strings.TrimSpace(cfg[kCert]), strings.TrimSpace(cfg[kKey])
	if seen[tlsT] {
		if c.certPath == "" {
			errs.add(kCert, "required with TCPSSL: a PEM file with the server certificate (and its chain)")
		}
		if c.keyPath == "" {
			errs.add(kKey, "required with TCPSSL: a PEM file with the certificate's private key (unencrypted)")
		}
	}
	c.queueMax = intKey(cfg, kQueueMax, defQueueMax, 1, 10_000_000, errs)
	c.batch = intKey(cfg, kBatch, defBatch, 1, 1_000_000, errs)
	c.maxBytes = intKey(cfg, kMaxBytes, defMaxBytes, 64, 100<<20, errs)
	c.udpRecvBuf = intKey(cfg, kUDPRecvBuf, 0, 0, 1<<30, errs)
	c.maxConns = intKey(cfg, kMaxConns, defMaxConns, 1, 1_000_000, errs)
	switch v := strings.ToLower(strings.TrimSpace(cfg[kRecordKey])); v {
	case "", "none":
		c.key = keyNone
	case "host", "hostname":
		c.key = keyHost
	case "app", "app_name", "appname":
		c.key = keyApp
	default:
		errs.add(kRecordKey, "%q: want none, host or app_name", cfg[kRecordKey])
	}
	switch v := strings.ToLower(strings.TrimSpace(cfg[kValueFormat])); v {
	case "", "map":
		c.format = formatMap
	case "json":
		c.format = formatJSON
	case "raw":
		c.format = formatRaw
	default:
		errs.add(kValueFormat, "%q: want map, json or raw", cfg[kValueFormat])
	}
	if v, ok := cfg[kIncludeRaw]; ok && strings.TrimSpace(v) != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			errs.add(kIncludeRaw, "%q: want true or false", v)
		}
		c.includeRaw = b
	}
	if v := strings.TrimSpace(cfg[kTimezone]); v != "" {
		loc, err := time.LoadLocation(v)
		if err != nil {
			errs.add(kTimezone, "%q is not a time zone (an IANA name such as Europe/Paris, or UTC, or Local)", v)
		} else {
			c.tz = loc
		}
	}
	return c, errs
}

func intKey(cfg map[string]string, key string, def, lo, hi int, errs configErrors) int {
	v, ok := cfg[key]
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		errs.add(key, "%q: want an integer from %d to %d", v, lo, hi)
		return def
	}
	return n
}

// listenAddr is the host:port a transport listens on.
func (c config) listenAddr() string {
	return net.JoinHostPort(c.address, strconv.Itoa(c.port))
}
