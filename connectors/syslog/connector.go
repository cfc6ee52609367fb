package main

import (
	"context"
	"maps"
	"strconv"

	"github.com/sluice-io/sluice/connect/sdk"
)

const (
	class   = "sluice.connect.SyslogSource"
	version = "1.0.0"
)

type connector struct{}

func strptr(s string) *string { return &s }

func (connector) Describe() sdk.Descriptor {
	return sdk.Descriptor{
		Type: sdk.Source, Class: class, Version: version,
		// Confluent's class, so its configs POST unchanged.
		Aliases: []string{"io.confluent.connect.syslog.SyslogSourceConnector", "SyslogSource", "SyslogSourceConnector"},
		Config: []sdk.ConfigKey{
			{Name: kTopic, Type: "STRING", Default: strptr(defTopic), Importance: "HIGH", Group: "Listener", OrderInGroup: 1,
				Documentation: "The topic every message is written to."},
			{Name: kListener, Type: "LIST", Default: strptr(defListener), Importance: "HIGH", Group: "Listener", OrderInGroup: 2,
				Documentation: "UDP, TCP or TCPSSL (TLS), or a comma-separated list of them on the same port (UDP,TCP or UDP,TCPSSL). TCP and TLS accept octet-counted and LF-terminated framing (RFC 6587), told apart per message."},
			{Name: kPort, Type: "INT", Required: true, Importance: "HIGH", Group: "Listener", OrderInGroup: 3,
				Documentation: "The port to listen on."},
			{Name: kAddress, Type: "STRING", Default: strptr(defAddress), Importance: "LOW", Group: "Listener", OrderInGroup: 4,
				Documentation: "The IP address to listen on."},
			{Name: kCert, Type: "STRING", Default: strptr(""), Importance: "HIGH", Group: "TLS", OrderInGroup: 1,
				Documentation: "TCPSSL: a PEM file with the server certificate followed by its chain."},
			{Name: kKey, Type: "STRING", Default: strptr(""), Importance: "HIGH", Group: "TLS", OrderInGroup: 2,
				Documentation: "TCPSSL: a PEM file with the certificate's private key, unencrypted."},
			{Name: kQueueMax, Type: "INT", Default: strptr(strconv.Itoa(defQueueMax)), Importance: "MEDIUM", Group: "Queue", OrderInGroup: 1,
				Documentation: "Messages received but not yet handed to the worker, at most. When it is full TCP and TLS stop reading (the sender waits) and UDP drops (counted and logged). A crash loses what it holds: syslog cannot be replayed."},
			{Name: kBatch, Type: "INT", Default: strptr(strconv.Itoa(defBatch)), Importance: "LOW", Group: "Queue", OrderInGroup: 2,
				Documentation: "Messages handed to the worker per poll, at most."},
			{Name: kMaxBytes, Type: "INT", Default: strptr(strconv.Itoa(defMaxBytes)), Importance: "MEDIUM", Group: "Messages", OrderInGroup: 1,
				Documentation: "Longest message kept whole, in bytes; a longer one is truncated to this length (its value has truncated=true), counted and logged."},
			{Name: kRecordKey, Type: "STRING", Default: strptr(defRecordKey), Importance: "MEDIUM", Group: "Messages", OrderInGroup: 2,
				Documentation: "The record key: none, host (the message's HOSTNAME, else the sender's IP) or app_name (APP-NAME, RFC 3164's TAG)."},
			{Name: kValueFormat, Type: "STRING", Default: strptr("map"), Importance: "MEDIUM", Group: "Messages", OrderInGroup: 3,
				Documentation: "The record value: map (the fields as a map, which any converter renders: JsonConverter as a JSON object), json (the same fields as JSON bytes made by the plugin, for ByteArrayConverter: the worker passes them through, several times cheaper per message) or raw (the message as received, a string)."},
			{Name: kIncludeRaw, Type: "BOOLEAN", Default: strptr("false"), Importance: "LOW", Group: "Messages", OrderInGroup: 4,
				Documentation: "Add the message as received in field raw. A message that cannot be parsed always has it, with parse_error."},
			{Name: kTimezone, Type: "STRING", Default: strptr("UTC"), Importance: "LOW", Group: "Messages", OrderInGroup: 5,
				Documentation: "The time zone of RFC 3164 timestamps, which carry none (an IANA name, UTC or Local)."},
			{Name: kUDPRecvBuf, Type: "INT", Default: strptr("0"), Importance: "LOW", Group: "Listener", OrderInGroup: 5,
				Documentation: "The UDP socket's receive buffer in bytes (SO_RCVBUF); 0 keeps the system's default."},
			{Name: kMaxConns, Type: "INT", Default: strptr(strconv.Itoa(defMaxConns)), Importance: "LOW", Group: "Listener", OrderInGroup: 6,
				Documentation: "TCP and TLS connections served at once; more are closed as they arrive, and logged."},
		},
	}
}

// Validate reports every problem against its key.
func (c connector) Validate(_ context.Context, cfg map[string]string) ([]sdk.ConfigValue, error) {
	out := sdk.ValidateRequired(c.Describe(), cfg)
	_, errs := parseConfig(cfg)
	for i := range out {
		for _, m := range errs[out[i].Name] {
			if !contains(out[i].Errors, m) && !(out[i].Name == kPort && len(out[i].Errors) > 0) {
				out[i].Errors = append(out[i].Errors, m)
			}
		}
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// TaskConfigs is one task: a port has one listener.
func (connector) TaskConfigs(_ context.Context, cfg map[string]string, _ int) ([]map[string]string, error) {
	return []map[string]string{maps.Clone(cfg)}, nil
}

// AlterOffsets accepts any change: the offsets are a receive count kept
// for monitoring, and a listener never resumes from them.
func (connector) AlterOffsets(context.Context, map[string]string, sdk.Offsets) (bool, error) {
	return true, nil
}

func (connector) NewTask() sdk.SourceTask { return &task{} }
