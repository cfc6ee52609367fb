package main

import (
	"errors"
	"net"
	"time"

	syslog "github.com/leodido/go-syslog/v4"
	"github.com/leodido/go-syslog/v4/auto"
	"github.com/leodido/go-syslog/v4/rfc3164"
	"github.com/leodido/go-syslog/v4/rfc5424"
)

// keyMode is what a record's key is (syslog.record.key).
type keyMode int

const (
	keyNone keyMode = iota
	keyHost         // the message's HOSTNAME, else the sender's IP
	keyApp          // the message's APP-NAME (or RFC 3164 TAG), else null
)

// parser turns one framed message into a record's key and value. It keeps
// a go-syslog machine, which is not safe for concurrent use: one parser per
// connection (or UDP socket).
type parser struct {
	m          syslog.Machine
	tz         *time.Location
	key        keyMode
	format     valueFormat
	includeRaw bool
}

func newParser(tz *time.Location, key keyMode, format valueFormat, includeRaw bool) *parser {
	// RFC 5424 or RFC 3164 is chosen per message by what follows the PRI
	// (a version digit and a space, or a month name), falling back to
	// the other grammar when the first fails. RFC 3164 is parsed with
	// the extensions senders use (RFC 3339 and fractional timestamps,
	// zero-padded days); its year-less timestamps are completed in
	// value, from the receive time.
	m := auto.NewMachine(
		auto.WithRFC3164Options(
			rfc3164.WithLocaleTimezone(tz),
			rfc3164.WithRFC3339(),
			rfc3164.WithSecondFractions(),
			rfc3164.WithLenientDay(),
			rfc3164.WithEmbeddedNewlines(),
		),
		auto.WithRFC5424Options(),
	)
	return &parser{m: m, tz: tz, key: key, format: format, includeRaw: includeRaw}
}

// parsed is one message made into a record's key and value.
type parsed struct {
	key    any // string or nil
	value  any // map[string]any, or JSON []byte, or the raw string: see valueFormat
	failed bool
	// parseError is why the message was kept raw.
	parseError string
}

// parse parses msg, received from remote (ip:port) at recv. A message that
// parses as neither RFC is kept whole: its value has the text as message
// and raw, and the parser's complaint as parse_error.
func (p *parser) parse(msg []byte, truncated bool, remote string, recv time.Time) parsed {
	if p.format == formatRaw && p.key == keyNone {
		// Nothing needs the message's parts.
		return parsed{value: string(msg)}
	}
	m := message{remote: remote, truncated: truncated}
	out := parsed{}
	sm, err := p.m.Parse(msg)
	var base *syslog.Base
	switch x := sm.(type) {
	case *rfc5424.SyslogMessage:
		base, m.format = &x.Base, "rfc5424"
		if x.StructuredData != nil && len(*x.StructuredData) > 0 {
			m.sd = *x.StructuredData
		}
	case *rfc3164.SyslogMessage:
		base, m.format = &x.Base, "rfc3164"
	}
	if base == nil || err != nil {
		m = message{remote: remote, truncated: truncated, text: string(msg), failed: true}
		m.raw, m.parseError = m.text, parseErrorText(err)
		out.failed, out.parseError = true, m.parseError
		if p.key == keyHost {
			out.key = hostOf(remote)
		}
		out.value = p.value(&m, msg)
		return out
	}
	if base.Facility != nil {
		m.hasPri, m.facility, m.severity = true, *base.Facility, *base.Severity
	}
	if base.Timestamp != nil {
		ts := *base.Timestamp
		if m.format == "rfc3164" {
			ts = completeYear(ts, recv.In(p.tz))
		}
		m.timestamp = ts.Format(time.RFC3339Nano)
	}
	m.hostname, m.appName, m.procID, m.msgID = str(base.Hostname), str(base.Appname), str(base.ProcID), str(base.MsgID)
	if base.Message != nil {
		m.text = *base.Message
	}
	if p.includeRaw {
		m.raw = string(msg)
	}
	switch p.key {
	case keyHost:
		if m.hostname != "" {
			out.key = m.hostname
		} else {
			out.key = hostOf(remote)
		}
	case keyApp:
		if m.appName != "" {
			out.key = m.appName
		}
	}
	out.value = p.value(&m, msg)
	return out
}

// value renders m as the configured value format.
func (p *parser) value(m *message, msg []byte) any {
	switch p.format {
	case formatJSON:
		return m.appendJSON(make([]byte, 0, 2*len(msg)+128))
	case formatRaw:
		return string(msg)
	}
	return m.toMap()
}

// str is a field's text; "" for absent and for RFC 5424's NILVALUE.
func str(s *string) string {
	if s == nil || *s == "-" {
		return ""
	}
	return *s
}

func parseErrorText(err error) string {
	if err == nil {
		return "not a syslog message"
	}
	var pe *auto.ParseError
	if errors.As(err, &pe) && pe.Err != nil {
		return pe.Err.Error()
	}
	return err.Error()
}

// hostOf is the IP of an ip:port address (the address itself when it has
// no port).
func hostOf(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// completeYear gives an RFC 3164 timestamp, which has no year, the year it
// most likely has: the receive time's, or the year before when that would
// put it more than a month ahead (a December message read in January).
// RFC 3339 timestamps some senders use instead carry their year and are
// left alone.
func completeYear(ts, recv time.Time) time.Time {
	if ts.Year() != 0 {
		return ts
	}
	year := recv.Year()
	t := time.Date(year, ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), ts.Location())
	if t.Sub(recv) > 31*24*time.Hour {
		t = time.Date(year-1, ts.Month(), ts.Day(), ts.Hour(), ts.Minute(), ts.Second(), ts.Nanosecond(), ts.Location())
	}
	return t
}
