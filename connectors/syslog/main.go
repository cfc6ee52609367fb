// Command syslog is the syslog source plugin, class
// sluice.connect.SyslogSource (Confluent's
// io.confluent.connect.syslog.SyslogSourceConnector is an alias, and its
// listener keys are used, so a Confluent config POSTs unchanged).
//
// It listens on UDP, TCP and TLS (syslog.listener, one port for all), takes
// RFC 5424 and RFC 3164 messages (told apart per message), and on TCP and
// TLS RFC 6587 octet-counted or LF-terminated frames (told apart per
// frame, so rsyslog, syslog-ng and devices all work without a setting).
// Each message is one record:
//
//   - value (syslog.value.format=map, the default): a map of facility and
//     severity (numbers), timestamp (RFC 3339; RFC 3164's year-less ones
//     completed from the receive time, in syslog.timezone), hostname,
//     app_name (RFC 3164's TAG), proc_id, msg_id, structured_data
//     ({id: {param: value}}), message, format (rfc5424 or rfc3164) and
//     remote_address; raw (the message as received) when
//     syslog.include.raw is set. Absent fields are left out. JsonConverter
//     renders it as a JSON object. syslog.value.format=json makes the same
//     object as JSON bytes in the plugin, for ByteArrayConverter: several
//     times less CPU per message; raw sends the message as received.
//   - a message that is neither RFC is kept, not dropped: message and raw
//     hold its text, parse_error says why.
//   - a message longer than syslog.max.message.bytes is truncated to it and
//     marked truncated=true; truncations, parse failures and UDP drops are
//     counted, the first of each logged at once and the counts every 30 s.
//   - key (syslog.record.key): none, host (HOSTNAME, else the sender's IP)
//     or app_name; the topic is the topic key.
//
// Delivery is at most once, as syslog's is. A sender forgets a message once
// written to its socket and nothing can be re-read, so the source offsets
// ({"listener": "tcp://addr:port"} -> {"seq": n}) only count messages. A
// crash of the plugin or the worker loses what was received but not yet
// written to Sluice: at most syslog.queue.max.size messages queued in the
// plugin plus the batches the worker was producing (and, for TCP, what sat
// in the kernel's socket buffers). The queue is bounded for that reason:
// when it is full TCP and TLS stop reading, so senders block (rsyslog
// queues on its side) instead of the plugin dropping; UDP cannot be slowed
// and drops, counted. Use TCP or TLS where loss matters.
package main

import "github.com/sluice-io/sluice/connect/sdk"

func main() {
	sdk.Serve(connector{})
}
